"""Settings turned into the schedule core's plain, hashable data: one conversion, one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from controller.settings import DimmingProfile, Settings, ZoneSettings
from schedules.anchors import parse_anchor
from schedules.calendar import WEEKDAYS, CalendarEntry, parse_date_rule
from schedules.decide import ZonePlan, step_placements
from schedules.motion import MotionRule
from schedules.night import NightRule
from schedules.profile import Profile, Step
from schedules.solar import Site


def site_of(settings: Settings) -> Site:
    """Where the unit stands, for the sun."""
    unit = settings.unit
    return Site(unit.latitude, unit.longitude, unit.tz)


def profile_of(name: str, profile: DimmingProfile) -> Profile:
    """A configured dimming profile as the schedule core takes it."""
    rule = NightRule(
        on_offset_min=profile.on_offset_min,
        on_elevation_deg=profile.on_elevation_deg,
        off_offset_min=profile.off_offset_min,
        off_elevation_deg=profile.off_elevation_deg,
        polar_night=profile.polar_night,
        polar_day=profile.polar_day,
    )
    steps = tuple(Step(parse_anchor(s.at), s.level, s.fade_s) for s in profile.steps)
    return Profile(name, rule, steps)


def calendar_of(settings: Settings) -> tuple[CalendarEntry, ...]:
    """The unit's calendar, in file order (the last matching entry wins)."""
    return tuple(
        CalendarEntry(
            name=entry.name,
            dates=tuple(parse_date_rule(text) for text in entry.dates),
            weekdays=frozenset(WEEKDAYS.index(day) for day in entry.weekdays),
            zones=frozenset(entry.zones),
            groups=frozenset(entry.groups),
            level=entry.level,
            profile=entry.profile,
        )
        for entry in settings.calendar
    )


def _plan_of(
    settings: Settings,
    zone: ZoneSettings,
    calendar: tuple[CalendarEntry, ...],
    other_profiles: tuple[Profile, ...],
) -> ZonePlan:
    """One zone's plan, with the unit-wide calendar parts built once by `plans_of`."""
    # a zone answers motion by its own motion table, or else by that of the first zone that
    # names it a neighbour
    namers = [z for z in settings.zones if z.motion is not None and zone.id in z.motion.neighbours]
    m = zone.motion or (namers[0].motion if namers else None)
    motion = None
    if m is not None:
        motion = MotionRule(level=m.level, rise_s=m.rise_s, hold_s=m.hold_s, fade_s=m.fade_s)
    return ZonePlan(
        zone_id=zone.id,
        profile=profile_of(zone.profile, settings.profiles[zone.profile]),
        on_level=zone.on_level,
        failsafe_level=zone.failsafe_level,
        groups=frozenset(zone.groups),
        motion=motion,
        calendar=calendar,
        other_profiles=other_profiles,
    )


def neighbours_of(settings: Settings) -> dict[str, tuple[str, ...]]:
    """For each zone with a motion table, the zones its sensors also raise."""
    return {z.id: tuple(z.motion.neighbours) for z in settings.zones if z.motion is not None}


def plans_of(settings: Settings) -> dict[str, ZonePlan]:
    """Everything the schedule core needs to decide each zone's level, by zone id."""
    calendar = calendar_of(settings)
    named = sorted({entry.profile for entry in calendar if entry.profile is not None})
    other_profiles = tuple(profile_of(name, settings.profiles[name]) for name in named)
    return {zone.id: _plan_of(settings, zone, calendar, other_profiles) for zone in settings.zones}


@dataclass(frozen=True, slots=True)
class StepNote:
    """A profile step that does not take effect at its own time on some nights of a year."""

    profile: str
    index: int
    at: str
    why: str
    nights: int
    first: date


def displaced_steps(settings: Settings, start: date, days: int = 365) -> list[StepNote]:
    """Steps of the profiles in use that do not happen at their own time on some nights.

    On short summer nights far from the equator a fixed clock time can cross dusk, dawn or
    another step; the placement rule in `schedules.profile` then moves or skips it.
    """
    site = site_of(settings)
    found: dict[tuple[str, int, str], tuple[int, date]] = {}
    in_use = {zone.profile for zone in settings.zones}
    in_use |= {entry.profile for entry in settings.calendar if entry.profile is not None}
    for name in sorted(in_use):
        profile = profile_of(name, settings.profiles[name])
        plan = ZonePlan(zone_id=f"check-{name}", profile=profile)
        for offset in range(days):
            day = start + timedelta(days=offset)
            for placement in step_placements(site, plan, day):
                if placement.why is None:
                    continue
                key = (name, placement.index, placement.why)
                count, first = found.get(key, (0, day))
                found[key] = (count + 1, first)
    return [
        StepNote(name, index, settings.profiles[name].steps[index].at, why, count, first)
        for (name, index, why), (count, first) in sorted(found.items())
    ]


# What the placement rule does with a step, by where it fell.
CONSEQUENCE = {
    "at or after the lamps go off": "it is skipped then",
    "before the lamps go on": "it applies from switch-on then",
    "before the step listed above it": "it takes effect with that step then",
}
