"""decide(): priority failsafe > override > motion > calendar > schedule, and its properties.

The hypothesis properties run over random sites, dates 2020-2035, profiles, calendars,
overrides and motion. A site's longitude is drawn around its time zone's meridian (any
longitude from -160 to 178 occurs), so local noon is daytime as the noon split of
`night_date_at` assumes; the latitude is anything within 60 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from schedules import decide as decide_module
from schedules import profile as profile_module
from schedules import solar as solar_module
from schedules.anchors import parse_anchor
from schedules.calendar import CalendarEntry, entry_for, parse_date_rule
from schedules.decide import (
    Decision,
    Override,
    Source,
    ZoneInputs,
    ZonePlan,
    decide,
    plan_night,
)
from schedules.motion import MotionRule
from schedules.night import NightRule, night_of
from schedules.profile import Profile, Step
from schedules.solar import Site, sun_elevation

BANGKOK = ZoneInfo("Asia/Bangkok")
SAKON_NAKHON = Site(17.155, 104.147, BANGKOK)
BERLIN = Site(52.52, 13.40, ZoneInfo("Europe/Berlin"))
OSLO = Site(59.91, 10.75, ZoneInfo("Europe/Oslo"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
LONGYEARBYEN = Site(78.22, 15.65, ZoneInfo("Arctic/Longyearbyen"))

RESIDENTIAL = Profile(
    "residential",
    NightRule(),
    (Step(parse_anchor("on"), 100), Step(parse_anchor("22:00"), 60, 600)),
)
PLAN = ZonePlan(
    "soi-3",
    RESIDENTIAL,
    failsafe_level=90,
    motion=MotionRule(level=80, rise_s=2, hold_s=60, fade_s=30),
)
SOURCES = set(get_args(Source))

PROPERTY = settings(max_examples=60, deadline=None)


def _local(site: Site, wall: datetime) -> datetime:
    """A local wall time at the site, as an aware UTC datetime (what the daemon passes)."""
    return wall.replace(tzinfo=site.tz).astimezone(UTC)


NIGHT_20H = _local(SAKON_NAKHON, datetime(2026, 11, 21, 20, 0))
NOON = _local(SAKON_NAKHON, datetime(2026, 11, 22, 12, 0))


def _noon(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=site.tz)


def _pair(decision: Decision) -> tuple[int, str]:
    return decision.level, decision.source


# --------------------------------------------------------------------------------------------
# overrides


def test_an_override_holds_until_its_end_then_the_schedule_returns() -> None:
    now = NIGHT_20H
    until = now + timedelta(hours=3)
    inputs = ZoneInputs(override=Override(30, until, "cmd-1"))
    assert decide(SAKON_NAKHON, PLAN, now, inputs) == Decision(30, "override", until)
    last = decide(SAKON_NAKHON, PLAN, until - timedelta(microseconds=1), inputs)
    assert _pair(last) == (30, "override")
    after = decide(SAKON_NAKHON, PLAN, until, inputs)
    assert after == decide(SAKON_NAKHON, PLAN, until)
    assert _pair(after) == (60, "schedule")


def test_an_override_applies_by_day_too() -> None:
    noon = NOON
    inputs = ZoneInputs(override=Override(100, noon + timedelta(minutes=10)))
    assert _pair(decide(SAKON_NAKHON, PLAN, noon, inputs)) == (100, "override")
    assert _pair(decide(SAKON_NAKHON, PLAN, noon)) == (0, "schedule")


def test_an_override_that_has_ended_is_ignored() -> None:
    now = NIGHT_20H
    inputs = ZoneInputs(override=Override(0, now - timedelta(seconds=1)))
    assert decide(SAKON_NAKHON, PLAN, now, inputs) == decide(SAKON_NAKHON, PLAN, now)


def test_a_level_0_override_is_not_raised_by_motion() -> None:
    now = NIGHT_20H
    inputs = ZoneInputs(
        override=Override(0, now + timedelta(hours=1)),
        motion_events=(now - timedelta(seconds=10), now),
    )
    assert _pair(decide(SAKON_NAKHON, PLAN, now + timedelta(seconds=5), inputs)) == (0, "override")


# --------------------------------------------------------------------------------------------
# fail-safe


@pytest.mark.parametrize(
    "now",
    [NIGHT_20H, NOON],
    ids=["night", "day"],
)
def test_an_output_fault_holds_the_failsafe_level_day_or_night(now: datetime) -> None:
    inputs = ZoneInputs(output_fault="relay: stuck")
    assert decide(SAKON_NAKHON, PLAN, now, inputs) == Decision(90, "failsafe", None)


@pytest.mark.parametrize(
    ("dark", "level"), [(None, 90), (True, 90), (False, 0)], ids=["no-photocell", "dark", "light"]
)
@pytest.mark.parametrize(
    "now",
    [NIGHT_20H, NOON],
    ids=["night", "day"],
)
def test_an_untrusted_clock_follows_the_photocell_or_holds_failsafe(
    now: datetime, dark: bool | None, level: int
) -> None:
    inputs = ZoneInputs(clock_trusted=False, dark=dark)
    assert decide(SAKON_NAKHON, PLAN, now, inputs) == Decision(level, "failsafe", None)


def test_failsafe_level_0_is_allowed() -> None:
    plan = replace(PLAN, failsafe_level=0)
    now = NIGHT_20H
    assert decide(SAKON_NAKHON, plan, now, ZoneInputs(output_fault="x")) == Decision(
        0, "failsafe", None
    )


def test_a_photocell_does_not_matter_while_the_clock_is_trusted() -> None:
    night = NIGHT_20H
    day = NOON
    assert decide(SAKON_NAKHON, PLAN, night, ZoneInputs(dark=False)) == decide(
        SAKON_NAKHON, PLAN, night
    )
    assert decide(SAKON_NAKHON, PLAN, day, ZoneInputs(dark=True)) == decide(SAKON_NAKHON, PLAN, day)


# --------------------------------------------------------------------------------------------
# the priority order


def test_priority_failsafe_override_motion_calendar_schedule() -> None:
    now = _local(SAKON_NAKHON, datetime(2026, 11, 24, 23, 0))
    festival = CalendarEntry("festival", (parse_date_rule("2026-11-24"),), level=40)
    plan = replace(PLAN, calendar=(festival,))
    everything = ZoneInputs(
        output_fault="dimmer: no answer",
        override=Override(10, now + timedelta(hours=1)),
        motion_events=(now - timedelta(seconds=5),),
    )
    assert _pair(decide(SAKON_NAKHON, plan, now, everything)) == (90, "failsafe")
    no_fault = replace(everything, output_fault=None)
    assert _pair(decide(SAKON_NAKHON, plan, now, no_fault)) == (10, "override")
    no_override = replace(no_fault, override=None)
    assert _pair(decide(SAKON_NAKHON, plan, now, no_override)) == (80, "motion")
    no_motion = replace(no_override, motion_events=())
    assert _pair(decide(SAKON_NAKHON, plan, now, no_motion)) == (40, "calendar")
    assert _pair(decide(SAKON_NAKHON, PLAN, now, no_motion)) == (60, "schedule")


def test_outside_the_switching_window_the_source_is_schedule_and_the_level_0() -> None:
    night = night_of(SAKON_NAKHON, date(2026, 11, 21), NightRule())
    assert night.on_at is not None
    assert night.off_at is not None
    before = decide(SAKON_NAKHON, PLAN, night.on_at - timedelta(seconds=1))
    assert before == Decision(0, "schedule", night.on_at)
    after = decide(SAKON_NAKHON, PLAN, night.off_at)
    following = night_of(SAKON_NAKHON, date(2026, 11, 22), NightRule()).on_at
    assert after == Decision(0, "schedule", following)


# --------------------------------------------------------------------------------------------
# random scenarios

# IANA zones (several with DST, one with its change at midnight, one 14 h ahead of UTC) and
# the longitudes around their meridians.
ZONES = (
    ("Asia/Bangkok", 97.5, 105.5),
    ("Europe/Berlin", 6.0, 15.0),
    ("America/New_York", -84.0, -70.0),
    ("Australia/Sydney", 141.0, 153.0),
    ("America/Los_Angeles", -124.0, -114.0),
    ("Pacific/Auckland", 167.0, 178.5),
    ("America/Santiago", -75.0, -67.0),
    ("Asia/Tokyo", 129.0, 145.0),
    ("Asia/Kolkata", 70.0, 92.0),
    ("Africa/Nairobi", 34.0, 41.0),
    ("UTC", -10.0, 10.0),
    ("Pacific/Honolulu", -160.0, -155.0),
    ("Pacific/Kiritimati", -158.0, -150.0),
    ("America/Sao_Paulo", -53.0, -35.0),
)


@st.composite
def sites(draw: st.DrawFn) -> Site:
    name, west, east = draw(st.sampled_from(ZONES))
    latitude = draw(st.floats(-60.0, 60.0))
    longitude = draw(st.floats(west, east))
    return Site(latitude, longitude, ZoneInfo(name))


@st.composite
def anchor_texts(draw: st.DrawFn) -> str:
    base = draw(
        st.one_of(
            st.sampled_from(["on", "off", "midnight", "virtual_midnight"]),
            st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
        )
    )
    minutes = draw(st.one_of(st.just(0), st.integers(-720, 720)))
    if minutes:
        sign = "-" if minutes < 0 else "+"
        base += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return base


@st.composite
def night_rules(draw: st.DrawFn) -> NightRule:
    on_elevation = draw(st.one_of(st.none(), st.floats(-18.0, 10.0)))
    off_elevation = draw(st.one_of(st.none(), st.floats(-18.0, 10.0)))
    return NightRule(
        on_offset_min=draw(st.floats(-180.0, 180.0)) if on_elevation is None else 0.0,
        on_elevation_deg=on_elevation,
        off_offset_min=draw(st.floats(-180.0, 180.0)) if off_elevation is None else 0.0,
        off_elevation_deg=off_elevation,
        polar_night=draw(st.sampled_from(["on", "off"])),
        polar_day=draw(st.sampled_from(["on", "off"])),
    )


@st.composite
def profiles(draw: st.DrawFn, name: str) -> Profile:
    steps = draw(
        st.lists(
            st.builds(
                Step,
                anchor_texts().map(parse_anchor),
                st.integers(1, 100),
                st.one_of(st.just(0), st.integers(1, 3600)),
            ),
            max_size=5,
        )
    )
    return Profile(name, draw(night_rules()), tuple(steps))


@st.composite
def calendar_entries(draw: st.DrawFn, day: date, names: tuple[str, ...]) -> CalendarEntry:
    """An entry that may or may not cover the night of `day` (or the nights around it)."""
    near = st.integers(-3, 3).map(lambda k: day + timedelta(days=k))
    single = near.map(lambda d: d.isoformat())
    ranged = st.tuples(near, st.integers(0, 5)).map(
        lambda p: f"{p[0].isoformat()}..{(p[0] + timedelta(days=p[1])).isoformat()}"
    )
    yearly = near.map(lambda d: f"{d.month:02d}-{d.day:02d}")
    wrap = st.just("12-30..01-02")
    texts = draw(st.lists(st.one_of(single, ranged, yearly, wrap), max_size=2))
    weekdays = draw(st.frozensets(st.integers(0, 6), max_size=3))
    if not texts and not weekdays:
        weekdays = frozenset({day.weekday()})
    zones = draw(st.frozensets(st.sampled_from(["z", "other"]), max_size=1))
    groups = draw(st.frozensets(st.sampled_from(["main-road", "east"]), max_size=1))
    use_profile = bool(names) and draw(st.booleans())
    return CalendarEntry(
        name=draw(st.sampled_from(["festival", "maintenance", "market"])),
        dates=tuple(parse_date_rule(text) for text in texts),
        weekdays=weekdays,
        zones=zones,
        groups=groups,
        level=None if use_profile else draw(st.integers(0, 100)),
        profile=draw(st.sampled_from(names)) if use_profile else None,
    )


@st.composite
def zone_plans(draw: st.DrawFn, day: date) -> ZonePlan:
    others = tuple(draw(st.lists(st.sampled_from(["alt-a", "alt-b"]), unique=True, max_size=2)))
    other_profiles = tuple(draw(profiles(name)) for name in others)
    motion = draw(
        st.one_of(
            st.none(),
            st.builds(
                MotionRule,
                st.integers(1, 100),
                st.floats(0.0, 60.0),
                st.floats(1.0, 3600.0),
                st.floats(0.0, 3600.0),
            ),
        )
    )
    return ZonePlan(
        zone_id="z",
        profile=draw(profiles("main")),
        on_level=draw(st.integers(1, 100)),
        failsafe_level=draw(st.integers(0, 100)),
        groups=draw(st.frozensets(st.sampled_from(["main-road", "east"]), max_size=2)),
        motion=motion,
        calendar=tuple(draw(st.lists(calendar_entries(day, others), max_size=3))),
        other_profiles=other_profiles,
    )


@dataclass(frozen=True)
class Scenario:
    site: Site
    day: date
    plan: ZonePlan
    now: datetime
    inputs: ZoneInputs


@st.composite
def scenarios(draw: st.DrawFn, *, healthy: bool = False, with_override: bool = False) -> Scenario:
    """A site, a plan and a moment in the 24 hours from local noon of a date, with inputs.

    `healthy`: a trusted clock and no output fault (no fail-safe); `with_override`: always
    an override (otherwise sometimes).
    """
    site = draw(sites())
    day = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    plan = draw(zone_plans(day))
    noon = _noon(site, day).astimezone(UTC)
    now = noon + timedelta(seconds=draw(st.floats(0.0, 24 * 3600.0)))
    overrides = st.builds(
        Override,
        st.integers(0, 100),
        st.floats(-6 * 3600.0, 6 * 3600.0).map(lambda s: now + timedelta(seconds=s)),
    )
    override = draw(overrides if with_override else st.one_of(st.none(), overrides))
    events = draw(
        st.lists(st.floats(0.0, 3 * 3600.0).map(lambda s: now - timedelta(seconds=s)), max_size=4)
    )
    trusted, fault, dark = True, None, None
    if not healthy:
        trusted = draw(st.booleans())
        fault = draw(st.one_of(st.none(), st.just("relay: stuck")))
        dark = draw(st.one_of(st.none(), st.booleans()))
    inputs = ZoneInputs(
        clock_trusted=trusted,
        output_fault=fault,
        dark=dark,
        motion_events=tuple(events),
        override=override,
    )
    return Scenario(site, day, plan, now, inputs)


@given(scenarios())
@PROPERTY
def test_levels_are_whole_percentages_with_a_known_source(case: Scenario) -> None:
    decision = decide(case.site, case.plan, case.now, case.inputs)
    assert type(decision.level) is int
    assert 0 <= decision.level <= 100
    assert decision.source in SOURCES
    if decision.next_change is not None:
        assert decision.next_change > case.now


def _clear_other_caches() -> None:
    """Empty the schedule core's other memo caches too, whichever exist."""
    for module in (decide_module, solar_module, profile_module):
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


@given(scenarios())
@PROPERTY
def test_decide_is_a_pure_function_of_its_inputs(case: Scenario) -> None:
    first = decide(case.site, case.plan, case.now, case.inputs)
    assert decide(case.site, case.plan, case.now, case.inputs) == first
    plan_night.cache_clear()
    _clear_other_caches()
    assert decide(case.site, case.plan, case.now, case.inputs) == first
    # the same instant written in another zone is the same question
    local = case.now.astimezone(case.site.tz)
    assert decide(case.site, case.plan, local, case.inputs) == first


@given(scenarios(healthy=True), st.floats(0.0, 1.0, exclude_max=True))
@PROPERTY
def test_a_zone_is_never_off_in_its_window_unless_told_to_be(
    case: Scenario, fraction: float
) -> None:
    site, plan = case.site, case.plan
    tonight = plan_night(site, plan, case.day)
    night = tonight.night
    assume(night.on_at is not None and night.off_at is not None)
    assert night.on_at is not None
    assert night.off_at is not None
    # a step with a fade at switch-on fades up from 0 (docs/schedules.md, Fades)
    assume(tonight.points[0].fade_s == 0)
    now = night.on_at + (night.off_at - night.on_at) * fraction
    assume(now < night.off_at)  # timedelta * float rounds to the microsecond
    decision = decide(site, plan, now, case.inputs)
    override = case.inputs.override
    told_off = override is not None and now < override.until and override.level == 0
    entry = entry_for(plan.calendar, plan.zone_id, plan.groups, case.day)
    told_off |= entry is not None and entry.level == 0
    event(f"source {decision.source}" + (", told off" if told_off else ""))
    if not told_off:
        assert decision.level >= 1, (now, decision, tonight)


@given(scenarios())
@PROPERTY
def test_motion_never_lowers_the_level(case: Scenario) -> None:
    with_motion = decide(case.site, case.plan, case.now, case.inputs)
    without = decide(case.site, case.plan, case.now, replace(case.inputs, motion_events=()))
    assert with_motion.level >= without.level
    if with_motion.source == "motion":
        assert with_motion.level > without.level


@given(scenarios(with_override=True))
@PROPERTY
def test_every_override_ends_at_its_until(case: Scenario) -> None:
    override = case.inputs.override
    assert override is not None
    at_end = decide(case.site, case.plan, override.until, case.inputs)
    assert at_end.source != "override"
    assert at_end == decide(
        case.site, case.plan, override.until, replace(case.inputs, override=None)
    )
    if case.inputs.clock_trusted and case.inputs.output_fault is None:
        before = decide(
            case.site, case.plan, override.until - timedelta(microseconds=1), case.inputs
        )
        assert before == Decision(override.level, "override", override.until)


@given(scenarios(), st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
@PROPERTY
def test_the_decision_holds_until_next_change(case: Scenario, fractions: list[float]) -> None:
    site, plan, now, inputs = case.site, case.plan, case.now, case.inputs
    decision = decide(site, plan, now, inputs)
    if decision.next_change is None:
        assert decision.source == "failsafe"
        return
    assert decision.next_change > now
    # next_whole_level_change is a millisecond past the half-way point by design: sample up to
    # 2 ms before next_change
    last = decision.next_change - timedelta(milliseconds=2)
    for fraction in [0.0, *fractions, 1.0]:
        sample = now + (last - now) * fraction
        if sample >= now:
            assert _pair(decide(site, plan, sample, inputs)) == _pair(decision), sample


# --------------------------------------------------------------------------------------------
# a year in the life: follow next_change as the daemon does


def _walk(site: Site, plan: ZonePlan, start: datetime, end: datetime) -> list[str]:
    """Follow next_change from `start`; report every decision that changes before it says."""
    problems = []
    now = start
    while now < end:
        decision = decide(site, plan, now)
        assert decision.next_change is not None
        assert decision.next_change > now
        span = decision.next_change - now
        for fraction in (0.25, 0.5, 0.999):
            sample = now + span * fraction
            if _pair(decide(site, plan, sample)) != _pair(decision):
                local = now.astimezone(site.tz)
                problems.append(f"{local}: {decision} but {decide(site, plan, sample)} at {sample}")
                break
        now = decision.next_change
    return problems


@pytest.mark.parametrize(
    ("site", "rule"),
    [
        (SAKON_NAKHON, NightRule()),
        (BERLIN, NightRule()),
        (BERLIN, NightRule(on_elevation_deg=-6.0, off_elevation_deg=-6.0)),
        (OSLO, NightRule(on_offset_min=30, off_offset_min=-30)),
    ],
    ids=["sakon-nakhon", "berlin", "berlin-civil", "oslo-offsets"],
)
def test_a_year_of_decisions_each_holds_until_its_next_change(site: Site, rule: NightRule) -> None:
    plan = ZonePlan("z", Profile("p", rule, (Step(parse_anchor("midnight"), 50),)))
    start = _local(site, datetime(2026, 1, 1, 12, 0))
    assert _walk(site, plan, start, start + timedelta(days=365)) == []


# --------------------------------------------------------------------------------------------
# polar day and night


@pytest.mark.parametrize("site", [TROMSO, LONGYEARBYEN], ids=["tromso", "longyearbyen"])
def test_decide_never_raises_at_polar_sites_all_year(site: Site) -> None:
    plans = [
        ZonePlan("z", Profile("p", rule, RESIDENTIAL.steps), motion=MotionRule())
        for rule in (
            NightRule(),
            NightRule(polar_night="off", polar_day="on"),
            NightRule(on_elevation_deg=-6.0, off_elevation_deg=-12.0),
        )
    ]
    start = _local(site, datetime(2026, 1, 1, 0, 0))
    for hours in range(0, 365 * 24, 5):
        now = start + timedelta(hours=hours)
        for plan in plans:
            decision = decide(site, plan, now, ZoneInputs(motion_events=(now,)))
            assert 0 <= decision.level <= 100
            assert decision.next_change is not None
            assert decision.next_change > now


def test_polar_night_is_lit_around_the_clock_and_joins_at_noon() -> None:
    plan = ZonePlan("z", Profile("p", NightRule()))
    for day in (date(2026, 12, 10), date(2026, 12, 21), date(2027, 1, 5)):
        for hour in (0, 6, 11, 12, 13, 18):
            now = _local(TROMSO, datetime.combine(day, time(hour)))
            assert _pair(decide(TROMSO, plan, now)) == (100, "schedule"), now
        noon = _noon(TROMSO, day).astimezone(UTC)
        assert decide(TROMSO, plan, noon - timedelta(microseconds=1)).level == 100
        assert decide(TROMSO, plan, noon).level == 100


def test_polar_night_off_by_config_is_dark() -> None:
    plan = ZonePlan("z", Profile("p", NightRule(polar_night="off")))
    now = _local(TROMSO, datetime(2026, 12, 21, 22, 0))
    decision = decide(TROMSO, plan, now)
    assert _pair(decision) == (0, "schedule")
    assert decision.next_change is not None
    assert decision.next_change > now


def test_polar_day_is_off_and_asks_again_later() -> None:
    plan = ZonePlan("z", Profile("p", NightRule()))
    for hour in (0, 1, 12, 23):
        now = _local(TROMSO, datetime(2026, 6, 21, hour, 0))
        decision = decide(TROMSO, plan, now)
        assert _pair(decision) == (0, "schedule")
        assert decision.next_change is not None
        assert now < decision.next_change <= now + timedelta(days=3)


def test_polar_day_on_by_config_is_lit_from_noon_to_noon() -> None:
    plan = ZonePlan("z", Profile("p", NightRule(polar_day="on")), on_level=40)
    for hour in (0, 12, 23):
        assert _pair(decide(TROMSO, plan, _local(TROMSO, datetime(2026, 6, 21, hour, 0)))) == (
            40,
            "schedule",
        )


# --------------------------------------------------------------------------------------------
# found bugs, as the daemon would live them


def test_tromso_first_polar_night_is_lit_from_its_sunset() -> None:
    plan = ZonePlan("z", Profile("p", NightRule()))
    night = night_of(TROMSO, date(2026, 11, 27), NightRule())
    assert night.on_at == night.sunset
    assert night.on_at is not None
    now = _local(TROMSO, datetime(2026, 11, 27, 11, 45))
    assert night.on_at < now
    assert sun_elevation(TROMSO, now) < -0.833
    assert decide(TROMSO, plan, now).level == 100


def test_oslo_window_ending_after_noon_is_followed_to_its_end() -> None:
    rule = NightRule(off_offset_min=180)
    plan = ZonePlan("z", Profile("p", rule))
    night = night_of(OSLO, date(2026, 12, 20), rule)
    now = _local(OSLO, datetime(2026, 12, 21, 12, 5))
    assert night.off_at is not None
    assert now < night.off_at
    assert decide(OSLO, plan, now).level == 100


@pytest.mark.parametrize(
    ("site", "rule", "local", "level"),
    [
        pytest.param(
            OSLO,
            NightRule(on_elevation_deg=-6.0, off_elevation_deg=-6.0),
            datetime(2026, 6, 21, 12, 0),
            0,
            id="oslo-civil-lit-at-noon-in-june",
        ),
        pytest.param(
            TROMSO, NightRule(), datetime(2026, 5, 16, 14, 0), 0, id="tromso-lit-in-may-daylight"
        ),
        pytest.param(
            LONGYEARBYEN,
            NightRule(),
            datetime(2026, 2, 15, 0, 0),
            100,
            id="longyearbyen-dark-in-february",
        ),
    ],
)
def test_lamps_follow_the_sun_at_high_latitudes(
    site: Site, rule: NightRule, local: datetime, level: int
) -> None:
    now = _local(site, local)
    elevation = sun_elevation(site, now)
    assert (elevation > 10) if level == 0 else (elevation < -10)
    assert decide(site, ZonePlan("z", Profile("p", rule)), now).level == level


def test_a_year_of_decisions_at_tromso_each_holds_until_its_next_change() -> None:
    plan = ZonePlan("z", Profile("p", NightRule(), (Step(parse_anchor("midnight"), 50),)))
    start = _local(TROMSO, datetime(2026, 1, 1, 12, 0))
    assert _walk(TROMSO, plan, start, start + timedelta(days=365)) == []
