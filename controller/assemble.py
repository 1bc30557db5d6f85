"""The composition root: one place builds a whole unit from its settings and a clock.

Nothing is global, so several units can run in one process (tests and fleet simulations do).
Hardware libraries are imported only when a config uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from controller.clock import Clock
from controller.daemon import Daemon
from controller.hardware import build_hardware
from controller.plans import plans_of, site_of
from controller.settings import Settings
from schedules.decide import decide


def initial_levels(settings: Settings, clock: Clock) -> dict[str, int]:
    """Each zone's level right now, so outputs claimed at start are set to it at once (no
    flash at daytime, no dark gap at night)."""
    site = site_of(settings)
    now = clock.now()
    return {zone_id: decide(site, plan, now).level for zone_id, plan in plans_of(settings).items()}


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
