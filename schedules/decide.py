"""A zone's level at a moment, its source, and when that decision next changes.

Priority, highest first: failsafe, override, motion, calendar, schedule. Everything is a
function of the zone's plan, the site, `now` and the zone's inputs, so the daemon, the
`schedule` command, reports and tests all get the same answer, and a year can be simulated
in well under a second.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from schedules.calendar import CalendarEntry, entry_for
from schedules.motion import MotionRule, boost_at, boost_next_change
from schedules.night import Night, night_date_at, night_of
from schedules.profile import (
    Point,
    Profile,
    StepPlacement,
    level_at,
    local_time_on,
    next_whole_level_change,
    night_points,
    whole,
)
from schedules.solar import Site

Source = Literal["schedule", "calendar", "motion", "override", "failsafe"]


@dataclass(frozen=True, slots=True)
class Override:
    """A remote command: `level` until `until`."""

    level: int
    until: datetime
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class ZoneInputs:
    """What the world says about a zone right now."""

    clock_trusted: bool = True
    output_fault: str | None = None
    dark: bool | None = None  # a photocell's verdict; None where there is none
    motion_events: tuple[datetime, ...] = ()
    override: Override | None = None


@dataclass(frozen=True, slots=True)
class ZonePlan:
    """What the schedule core needs to know of one zone."""

    zone_id: str
    profile: Profile
    on_level: int = 100
    failsafe_level: int = 100
    groups: frozenset[str] = frozenset()
    motion: MotionRule | None = None
    calendar: tuple[CalendarEntry, ...] = ()
    other_profiles: tuple[Profile, ...] = field(default=(), repr=False)  # calendar may name them
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # plans are cache keys looked up for every night: hash the nested data once
        fields = (self.zone_id, self.profile, self.on_level, self.failsafe_level, self.groups)
        more = (self.motion, self.calendar, self.other_profiles)
        object.__setattr__(self, "_hash", hash((*fields, *more)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Decision:
    """The level a zone should have now, why, and the time this stops being true.

    `next_change` None means the decision holds until an input changes (a fault clears,
    the clock is synchronised, the photocell flips).
    """

    level: int
    source: Source
    next_change: datetime | None


@dataclass(frozen=True, slots=True)
class NightPlan:
    """One zone's night: its window, its change points, and whether the calendar set them."""

    night: Night
    points: tuple[Point, ...]
    source: Literal["schedule", "calendar"]
    entry: str | None = None


def step_placements(site: Site, plan: ZonePlan, day: date) -> list[StepPlacement]:
    """Where each step of the zone's own profile falls on the night of `day`, and why."""
    night = _cached_night_of(site, day, plan.profile.night)
    return night_points(site, night, plan.profile.steps, plan.on_level, explain=True)[1]


_cached_night_of = functools.lru_cache(maxsize=8192)(night_of)


@functools.lru_cache(maxsize=16384)
def plan_night(site: Site, plan: ZonePlan, day: date) -> NightPlan:
    """The zone's schedule for the night of `day` (profile or calendar; no motion, no override)."""
    entry = entry_for(plan.calendar, plan.zone_id, plan.groups, day)
    profile = plan.profile
    if entry is not None and entry.profile is not None:
        profile = next((p for p in plan.other_profiles if p.name == entry.profile), profile)
    night = _cached_night_of(site, day, profile.night)
    if entry is not None and entry.level is not None:
        if night.on_at is None or night.off_at is None:
            return NightPlan(night, (), "calendar", entry.name)
        all_night = (Point(night.on_at, entry.level), Point(night.off_at, 0))
        return NightPlan(night, all_night, "calendar", entry.name)
    points, _ = night_points(site, night, profile.steps, plan.on_level)
    source: Literal["schedule", "calendar"] = "calendar" if entry is not None else "schedule"
    return NightPlan(night, tuple(points), source, entry.name if entry else None)


def scheduled(site: Site, plan: ZonePlan, now: datetime) -> tuple[float, Source, datetime]:
    """The profile-or-calendar level at `now` (fractional in a fade), its source, and the
    next moment its whole-number level or source changes."""
    day = night_date_at(site, now)
    # A window may start before local noon (the last sunset before a polar night) or end
    # after it (a large off offset), so look at the nights around `now`, not only its own.
    windows: list[tuple[datetime, datetime, NightPlan]] = []
    for k in (-1, 0, 1, 2):
        night_plan = plan_night(site, plan, day + timedelta(days=k))
        on_at, off_at = night_plan.night.on_at, night_plan.night.off_at
        if on_at is not None and off_at is not None:
            windows.append((on_at, off_at, night_plan))
    starts = sorted(on_at for on_at, _, _ in windows if on_at > now)
    current = [(on_at, off_at, p) for on_at, off_at, p in windows if on_at <= now < off_at]
    if current:
        _, off_at, tonight = max(current, key=lambda window: window[0])  # the latest to start
        points = list(tonight.points)
        upcoming = min([next_whole_level_change(points, now) or off_at, off_at, *starts])
        return level_at(points, now), tonight.source, upcoming
    if starts:
        return 0.0, "schedule", starts[0]
    # polar day: nothing to switch for days; look again at noon two days on
    return 0.0, "schedule", local_time_on(site, day + timedelta(days=2), time(12, 0))


def decide(site: Site, plan: ZonePlan, now: datetime, inputs: ZoneInputs | None = None) -> Decision:
    """The zone's level at `now`, its source, and when to ask again, by the priority order."""
    inputs = inputs or ZoneInputs()
    if inputs.output_fault is not None:
        return Decision(plan.failsafe_level, "failsafe", None)
    if not inputs.clock_trusted:
        if inputs.dark is False:  # a photocell says it is day
            return Decision(0, "failsafe", None)
        return Decision(plan.failsafe_level, "failsafe", None)
    try:
        base, source, next_change = scheduled(site, plan, now)
    except (ValueError, ArithmeticError):  # no valid schedule: never leave the street dark
        return Decision(plan.failsafe_level, "failsafe", None)
    override = inputs.override
    if override is not None and now < override.until:
        return Decision(override.level, "override", override.until)
    if plan.motion is not None and base > 0 and inputs.motion_events:
        boosted = boost_at(plan.motion, inputs.motion_events, now, base)
        motion_change = boost_next_change(plan.motion, inputs.motion_events, now, base)
        if motion_change is not None:
            next_change = min(next_change, motion_change)
        if whole(boosted) > whole(base):
            return Decision(whole(boosted), "motion", next_change)
    return Decision(whole(base), source, next_change)
