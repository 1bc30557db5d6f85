"""Motion lighting: a passer-by raises a zone that is on, and it falls back gently after them.

After a motion event the boost rises to `level` over `rise_s`, holds for `hold_s` after the
*last* event, then fades back to the scheduled level over `fade_s`. A new event during the
hold extends it; one during the fade rises again from where the fade had got to, so nothing
flickers. Motion only ever raises a level, and only while the zone is scheduled on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schedules.profile import seconds_to_next_whole


@dataclass(frozen=True, slots=True)
class MotionRule:
    """How a zone answers motion."""

    level: int = 100
    rise_s: float = 2.0
    hold_s: float = 60.0
    fade_s: float = 30.0

    @property
    def lasts(self) -> timedelta:
        """How long after the last event the boost can still be above the base level."""
        return timedelta(seconds=self.rise_s + self.hold_s + self.fade_s)


def accepted_trigger(rise: datetime, fall: datetime | None, min_active_s: float) -> datetime | None:
    """When a sensor pulse from `rise` to `fall` (None: still active) counts as motion.

    A pulse shorter than `min_active_s` is a false trigger and counts never; a longer one
    counts from `rise + min_active_s`.
    """
    accepted = rise + timedelta(seconds=min_active_s)
    if fall is not None and fall < accepted:
        return None
    return accepted


def _boost_after(
    rule: MotionRule, start_level: float, base: float, event: datetime, when: datetime
) -> float:
    """The boost at `when` from one event that started rising from `start_level`."""
    seconds = (when - event).total_seconds()
    if seconds < 0:
        return base
    top = max(float(rule.level), base)
    if seconds < rule.rise_s:
        return start_level + (top - start_level) * seconds / rule.rise_s
    seconds -= rule.rise_s
    if seconds < rule.hold_s:
        return top
    seconds -= rule.hold_s
    if seconds < rule.fade_s:
        return top + (base - top) * seconds / rule.fade_s
    return base


def boost_at(rule: MotionRule, events: Sequence[datetime], when: datetime, base: float) -> float:
    """The level at `when` with motion: never below `base` (the scheduled level then).

    Only events within `rule.lasts` of each other matter, so callers may keep just the
    recent ones.
    """
    level = base
    last: datetime | None = None
    for event in sorted(e for e in events if e <= when):
        level = _boost_after(rule, level, base, last, event) if last is not None else base
        last = event
    if last is None:
        return base
    return max(base, _boost_after(rule, level, base, last, when))


def boost_ends(rule: MotionRule, events: Sequence[datetime], when: datetime) -> datetime | None:
    """When the boost from the events up to `when` is over; None when there is none."""
    past = [e for e in events if e <= when]
    if not past:
        return None
    end = max(past) + rule.lasts
    return end if end > when else None


def boost_next_change(
    rule: MotionRule, events: Sequence[datetime], when: datetime, base: float
) -> datetime | None:
    """When the motion level next shows another whole percent (or its hold ends); None if idle."""
    past = [e for e in events if e <= when]
    if not past:
        return None
    last = max(past)
    top = max(float(rule.level), base)
    rise_end = last + timedelta(seconds=rule.rise_s)
    hold_end = rise_end + timedelta(seconds=rule.hold_s)
    fade_end = hold_end + timedelta(seconds=rule.fade_s)
    if hold_end <= when < fade_end or when < rise_end:
        # a straight ramp to the phase's end: its rate is the distance left over the time left
        phase_end, goal = (rise_end, top) if when < rise_end else (fade_end, base)
        now_level = boost_at(rule, events, when, base)
        rate = (goal - now_level) / (phase_end - when).total_seconds()
        if rate == 0:
            return phase_end
        return min(phase_end, when + timedelta(seconds=seconds_to_next_whole(now_level, rate)))
    if when < hold_end:
        return hold_end
    return None


def events_for_zone(
    zone_id: str,
    events_by_zone: Mapping[str, Sequence[datetime]],
    neighbours: Mapping[str, Sequence[str]],
) -> tuple[datetime, ...]:
    """The motion events a zone answers: its own sensors', and those of every zone that names
    it a neighbour (a passer-by is lit ahead, into the next street), in time order."""
    sources = [zone_id, *(other for other, near in neighbours.items() if zone_id in near)]
    return tuple(sorted(e for source in sources for e in events_by_zone.get(source, ())))
