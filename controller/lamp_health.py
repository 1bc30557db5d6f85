"""Lamp health from a meter's readings: lamp failure, day burner, cycling, and their recovery.

Pure: each reading of a meter comes in with what its zones were commanded and modelled to draw
at that moment; out come the contract's events when a condition starts or clears. A condition
must hold on two readings in a row before it is announced (one odd reading on a noisy line is
not worth a maintenance visit), and must be gone on two in a row before `recovered`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.events import Event, EventKind

CONFIRM_READINGS = 2
# commanded on, the meter sees less than this share of the modelled power: lamps are out
FAILURE_SHARE = 0.5
# commanded off, the meter sees more than this: lamps burn by day (a stuck relay, a bypass)
DAY_BURNER_MIN_W = 10.0
DAY_BURNER_SHARE = 0.05
# lamps going out and back while commanded on, this many times within the window: cycling
CYCLING_SWITCHES = 4
CYCLING_WINDOW = timedelta(hours=1)


@dataclass
class _Condition:
    active: bool = False
    streak: int = 0  # readings in a row that disagree with `active`


@dataclass
class _MeterHealth:
    failure: _Condition = field(default_factory=_Condition)
    day_burner: _Condition = field(default_factory=_Condition)
    cycling: _Condition = field(default_factory=_Condition)
    lit_seen: bool | None = None  # was the meter's load lit at the last reading on command?
    switches: deque[datetime] = field(default_factory=deque)


class LampHealth:
    """Watches each meter's readings against what its zones were told to do."""

    def __init__(self, meter_zones: Mapping[str, Sequence[str]]) -> None:
        self.meter_zones = {m: list(z) for m, z in meter_zones.items()}
        self._meters = {m: _MeterHealth() for m in meter_zones}

    def failing(self, meter: str) -> bool:
        """Whether `meter`'s lamps are out now (a lamp failure reported, not yet recovered)."""
        health = self._meters.get(meter)
        return health is not None and health.failure.active

    def reading(
        self,
        meter: str,
        power_w: float,
        at: datetime,
        *,
        levels: Mapping[str, float],
        modelled_w: Mapping[str, float],
        rated_w: Mapping[str, float],
    ) -> list[Event]:
        """Events for this reading of `meter` (usually none)."""
        health = self._meters.get(meter)
        if health is None:
            return []
        zones = self.meter_zones[meter]
        lit = [z for z in zones if levels.get(z, 0) > 0]
        expected = sum(modelled_w.get(z, 0.0) for z in zones)
        rated = sum(rated_w.get(z, 0.0) for z in zones)
        subject = lit[0] if len(lit) == 1 else (zones[0] if len(zones) == 1 else None)
        events: list[Event] = []

        failing = bool(lit) and expected > 0 and power_w < FAILURE_SHARE * expected
        events += self._update(
            health.failure,
            failing,
            kind="lamp_failure",
            zone=subject,
            at=at,
            started=f"commanded {', '.join(f'{z} {levels.get(z, 0):.0f} %' for z in lit)} "
            f"(modelled {expected:.0f} W) but meter {meter} reads {power_w:.0f} W",
            ended=f"meter {meter} reads {power_w:.0f} W, as modelled: the lamps light again",
        )
        threshold = max(DAY_BURNER_MIN_W, DAY_BURNER_SHARE * rated)
        burning = not lit and power_w > threshold
        events += self._update(
            health.day_burner,
            burning,
            kind="day_burner",
            zone=zones[0] if len(zones) == 1 else None,
            at=at,
            started=f"every zone on meter {meter} ({', '.join(zones)}) is commanded off but "
            f"it reads {power_w:.0f} W: a stuck relay or a bypass",
            ended=f"meter {meter} reads {power_w:.0f} W with its zones off: no longer burning",
        )
        # cycling: lamps commanded on go out and back again and again (a failing driver)
        if lit and expected > 0:
            seen_lit = power_w >= FAILURE_SHARE * expected
            if health.lit_seen is not None and seen_lit != health.lit_seen:
                health.switches.append(at)
            health.lit_seen = seen_lit
        else:
            health.lit_seen = None
        while health.switches and health.switches[0] < at - CYCLING_WINDOW:
            health.switches.popleft()
        cycling = len(health.switches) >= CYCLING_SWITCHES
        events += self._update(
            health.cycling,
            cycling,
            kind="cycling",
            zone=subject,
            at=at,
            started=f"the lamps on meter {meter} went out and back {len(health.switches)} "
            "times in the last hour while commanded on: a failing driver or lamp",
            ended=f"the lamps on meter {meter} stay steady again",
            confirm=1,
        )
        return events

    @staticmethod
    def _update(
        condition: _Condition,
        present: bool,
        *,
        kind: EventKind,
        zone: str | None,
        at: datetime,
        started: str,
        ended: str,
        confirm: int = CONFIRM_READINGS,
    ) -> list[Event]:
        if present == condition.active:
            condition.streak = 0
            return []
        condition.streak += 1
        if condition.streak < confirm:
            return []
        condition.active, condition.streak = present, 0
        if present:
            return [Event(kind, zone, started, at)]
        return [Event("recovered", zone, f"{kind} over: {ended}", at)]
