"""The composition root: one place builds a whole unit from its settings and a clock.

Nothing is global, so several units can run in one process (tests and fleet simulations do).
Hardware libraries are imported only when a config uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from controller.clock import Clock
from controller.daemon import Daemon
from controller.hardware import build_hardware
from controller.plans import plans_of, site_of
from controller.settings import Settings
from schedules.decide import Override, ZoneInputs, decide


def initial_levels(
    settings: Settings,
    clock: Clock,
    *,
    overrides: Mapping[str, Override] | None = None,
    clock_trusted: bool = True,
    current: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Each zone's level right now, so outputs claimed at start are set to it at once (no
    flash at daytime, no dark gap at night): the level it has (`current`, on a reload), else
    what the daemon will decide, overrides and an untrusted clock included."""
    site = site_of(settings)
    now = clock.now()
    overrides = overrides or {}
    current = current or {}
    return {
        zone_id: current[zone_id]
        if zone_id in current
        else decide(
            site,
            plan,
            now,
            ZoneInputs(clock_trusted=clock_trusted, override=overrides.get(zone_id)),
        ).level
        for zone_id, plan in plans_of(settings).items()
    }


def build(
    settings: Settings,
    clock: Clock,
    *,
    pin_factory: object | None = None,
    profile_dirs: Sequence[Path] = (),
) -> Daemon:
    """A ready-to-run daemon for the unit described by `settings`, on `clock`.

    Raises `controller.hardware.HardwareError` when the config names hardware that cannot be
    set up at all on this machine; faults of hardware that may come back are driver states.
    """
    hardware = build_hardware(
        settings,
        clock,
        initial_levels=initial_levels(settings, clock),
        pin_factory=pin_factory,
        profile_dirs=profile_dirs,
    )
    return Daemon(settings, clock, hardware)
