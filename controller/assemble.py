"""The composition root: one place builds a whole unit from its settings and a clock.

Nothing is global, so several units can run in one process (tests and fleet simulations do).
Hardware libraries are imported only when a config uses them.
"""

from __future__ import annotations

from controller.clock import Clock
from controller.daemon import Daemon
from controller.errors import StreetlightError
from controller.settings import Settings
from drivers.base import Output
from drivers.sim import LuminaireModel, SimOutput


class UnsupportedHardware(StreetlightError, NotImplementedError):
    """The config names hardware this version of the controller cannot drive yet."""


def build_outputs(settings: Settings, clock: Clock) -> dict[str, list[Output]]:
    """Every zone's outputs, built from its config."""
    outputs: dict[str, list[Output]] = {}
    for i, zone in enumerate(settings.zones):
        built: list[Output] = []
        for j, spec in enumerate(zone.outputs):
            if spec.type == "sim":
                model = LuminaireModel(rated_w=zone.rated_w, standby_w=spec.standby_w)
                built.append(SimOutput(f"{zone.id}/sim", model, clock.now))
            else:
                raise UnsupportedHardware(
                    f"zones[{i}].outputs[{j}] (zone {zone.id!r}): output type {spec.type!r} is "
                    "not driven by this version yet; use type = 'sim' to try the unit"
                )
        outputs[zone.id] = built
    return outputs


def build(settings: Settings, clock: Clock) -> Daemon:
    """A ready-to-run daemon for the unit described by `settings`, on `clock`."""
    return Daemon(settings, clock, build_outputs(settings, clock))
