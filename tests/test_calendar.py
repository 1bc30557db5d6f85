"""Calendar dates and entries: which night an entry covers, for which zones, and who wins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schedules.anchors import parse_anchor
from schedules.calendar import (
    WEEKDAYS,
    CalendarEntry,
    DateRule,
    DateRuleError,
    entry_for,
    parse_date_rule,
)
from schedules.decide import Override, ZoneInputs, ZonePlan, decide, plan_night
from schedules.motion import MotionRule
from schedules.night import NightRule, night_of
from schedules.profile import Profile, Step
from schedules.solar import Site

BANGKOK = ZoneInfo("Asia/Bangkok")
SITE = Site(17.155, 104.147, BANGKOK)
RESIDENTIAL = Profile("residential", NightRule(), (Step(parse_anchor("on"), 100),))
LATE = Profile("market-late", NightRule(on_offset_min=60), (Step(parse_anchor("on"), 80),))

FAST = settings(max_examples=100, deadline=None)
DAYS = st.dates(date(2020, 1, 1), date(2035, 12, 31))


def _rule(*texts: str) -> tuple[DateRule, ...]:
    return tuple(parse_date_rule(text) for text in texts)


def _entry(
    name: str,
    *dates: str,
    zones: frozenset[str] = frozenset(),
    groups: frozenset[str] = frozenset(),
    weekdays: frozenset[int] = frozenset(),
    level: int | None = None,
    profile: str | None = None,
) -> CalendarEntry:
    return CalendarEntry(name, _rule(*dates), weekdays, zones, groups, level, profile)


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BANGKOK)


def _plan(
    *entries: CalendarEntry, motion: MotionRule | None = None, groups: frozenset[str] = frozenset()
) -> ZonePlan:
    return ZonePlan(
        "soi-3",
        RESIDENTIAL,
        groups=groups,
        motion=motion,
        calendar=entries,
        other_profiles=(LATE,),
    )


# --------------------------------------------------------------------------------------------
# date syntax


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026-11-24", (2026, 11, 24), (2026, 11, 24)),
        ("2026-12-24..2027-01-02", (2026, 12, 24), (2027, 1, 2)),
        ("04-13", (0, 4, 13), (0, 4, 13)),
        ("04-13..04-15", (0, 4, 13), (0, 4, 15)),
        ("12-30..01-02", (0, 12, 30), (0, 1, 2)),
        ("02-29", (0, 2, 29), (0, 2, 29)),
        ("2028-02-29", (2028, 2, 29), (2028, 2, 29)),
        (" 2026-11-24 ", (2026, 11, 24), (2026, 11, 24)),
        ("2026-11-24..2026-11-24", (2026, 11, 24), (2026, 11, 24)),
    ],
)
def test_parse_date_rule(
    text: str, first: tuple[int, int, int], last: tuple[int, int, int]
) -> None:
    assert parse_date_rule(text) == DateRule(first, last)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-02-29",  # not a leap year
        "2026-13-01",
        "2026-11-31",
        "02-30",
        "00-10",
        "2026-1-5",
        "24-11-2026",
        "2026/11/24",
        "2026-12-24..2026-12-01",  # a dated range that ends before it starts
        "2027-01-02..2026-12-24",
        "04-15..04-13",  # a yearly range reversed within one month
        "2026-12-24..01-02",  # one end with a year, one without
        "12-24..2027-01-02",
        "2026-12-24 .. 2027-01-02",
        "2026-12-24...2027-01-02",
        "mon",
    ],
)
def test_bad_dates_are_refused(text: str) -> None:
    with pytest.raises(DateRuleError) as caught:
        parse_date_rule(text)
    assert isinstance(caught.value, ValueError)
    assert repr(text.strip()) in str(caught.value)


def test_one_date() -> None:
    (rule,) = _rule("2026-11-24")
    assert rule.matches(date(2026, 11, 24))
    assert not rule.matches(date(2026, 11, 23))
    assert not rule.matches(date(2026, 11, 25))
    assert not rule.matches(date(2027, 11, 24))


def test_a_range_includes_both_ends_and_runs_over_the_new_year() -> None:
    (rule,) = _rule("2026-12-24..2027-01-02")
    assert rule.matches(date(2026, 12, 24))
    assert rule.matches(date(2026, 12, 31))
    assert rule.matches(date(2027, 1, 1))
    assert rule.matches(date(2027, 1, 2))
    assert not rule.matches(date(2026, 12, 23))
    assert not rule.matches(date(2027, 1, 3))
    assert not rule.matches(date(2027, 12, 25))


def test_a_yearly_date_and_range_match_every_year() -> None:
    single, songkran = _rule("04-13", "04-13..04-15")
    for year in (2020, 2026, 2035):
        assert single.matches(date(year, 4, 13))
        assert not single.matches(date(year, 4, 14))
        assert [songkran.matches(date(year, 4, d)) for d in range(12, 17)] == [
            False,
            True,
            True,
            True,
            False,
        ]


def test_a_yearly_range_over_the_new_year() -> None:
    (rule,) = _rule("12-30..01-02")
    assert [rule.matches(date(2026, 12, d)) for d in (28, 29, 30, 31)] == [False, False, True, True]
    assert [rule.matches(date(2027, 1, d)) for d in (1, 2, 3)] == [True, True, False]
    assert not rule.matches(date(2027, 6, 15))


def test_a_yearly_29_february_matches_only_in_leap_years() -> None:
    (rule,) = _rule("02-29")
    assert rule.matches(date(2028, 2, 29))
    assert not any(rule.matches(date(2027, 2, d)) for d in (28,))
    assert not rule.matches(date(2027, 3, 1))


@given(first=DAYS, length=st.integers(0, 400), day=DAYS)
@FAST
def test_a_dated_range_matches_exactly_the_days_in_it(first: date, length: int, day: date) -> None:
    last = first + timedelta(days=length)
    text = f"{first.isoformat()}..{last.isoformat()}" if length else first.isoformat()
    assert parse_date_rule(text).matches(day) == (first <= day <= last)
    assert parse_date_rule(text).matches(first)
    assert parse_date_rule(text).matches(last)


_LEAP_DAYS = st.dates(date(2024, 1, 2), date(2024, 12, 30))


@given(a=_LEAP_DAYS, b=_LEAP_DAYS, day=DAYS)
@FAST
def test_a_yearly_range_and_its_wrapped_complement_split_the_year(
    a: date, b: date, day: date
) -> None:
    """`a..b` and `(b+1)..(a-1)` (over the new year) cover every day exactly once."""
    assume(a <= b)
    after, before = b + timedelta(days=1), a - timedelta(days=1)
    inside = DateRule((0, a.month, a.day), (0, b.month, b.day))
    outside = DateRule((0, after.month, after.day), (0, before.month, before.day))
    assert inside.matches(day) != outside.matches(day)
    if before.month < after.month:  # the syntax accepts a wrap that changes month
        text = f"{after.month:02d}-{after.day:02d}..{before.month:02d}-{before.day:02d}"
        assert parse_date_rule(text) == outside


@given(day=DAYS, other=DAYS)
@FAST
def test_a_yearly_date_matches_that_month_and_day_in_any_year(day: date, other: date) -> None:
    rule = parse_date_rule(f"{day.month:02d}-{day.day:02d}")
    assert rule.matches(other) == ((other.month, other.day) == (day.month, day.day))


# --------------------------------------------------------------------------------------------
# entries: weekdays, zones and groups, the last one wins


def test_weekdays_narrow_dates_or_make_a_weekly_rule() -> None:
    friday = WEEKDAYS.index("fri")
    weekly = CalendarEntry("market nights", weekdays=frozenset({friday}))
    assert weekly.applies("soi-3", frozenset(), date(2026, 11, 27))  # a Friday
    assert not weekly.applies("soi-3", frozenset(), date(2026, 11, 28))
    assert weekly.applies("soi-3", frozenset(), date(2035, 12, 28))
    narrowed = _entry("december fridays", "2026-12-01..2026-12-31", weekdays=frozenset({friday}))
    fridays = [d for d in range(1, 32) if narrowed.applies("z", frozenset(), date(2026, 12, d))]
    assert fridays == [4, 11, 18, 25]
    assert not narrowed.applies("z", frozenset(), date(2026, 11, 27))


def test_an_entry_without_zones_or_groups_applies_to_every_zone() -> None:
    entry = _entry("loy krathong", "2026-11-24", level=100)
    assert entry.applies("soi-3", frozenset(), date(2026, 11, 24))
    assert entry.applies("market", frozenset({"main-road"}), date(2026, 11, 24))


def test_zones_and_groups_scope_an_entry() -> None:
    day = date(2026, 11, 25)
    by_zone = _entry("cable work", "2026-11-25", zones=frozenset({"soi-3"}), level=0)
    assert by_zone.applies("soi-3", frozenset(), day)
    assert not by_zone.applies("market", frozenset(), day)
    by_group = _entry("songkran", "2026-11-25", groups=frozenset({"main-road"}), level=100)
    assert by_group.applies("market", frozenset({"main-road", "east"}), day)
    assert not by_group.applies("school-path", frozenset({"east"}), day)
    both = _entry("both", "2026-11-25", zones=frozenset({"soi-3"}), groups=frozenset({"main-road"}))
    assert both.applies("soi-3", frozenset(), day)
    assert both.applies("market", frozenset({"main-road"}), day)
    assert not both.applies("school-path", frozenset(), day)
    assert not both.applies("soi-3", frozenset(), day + timedelta(days=1))


def test_the_last_matching_entry_in_the_file_wins() -> None:
    new_year = _entry("New Year", "12-31..01-01", level=100)
    market = CalendarEntry(
        "Market nights", weekdays=frozenset({4, 5}), zones=frozenset({"market"}), profile="x"
    )
    entries = (new_year, market)
    night = date(2027, 1, 1)  # a Friday
    assert entry_for(entries, "market", frozenset(), night) is market
    assert entry_for(entries, "soi-3", frozenset(), night) is new_year
    assert entry_for((market, new_year), "market", frozenset(), night) is new_year
    assert entry_for(entries, "soi-3", frozenset(), date(2027, 1, 2)) is None
    assert entry_for((), "soi-3", frozenset(), night) is None


# --------------------------------------------------------------------------------------------
# through decide: the night of a date, the entry's level or profile


def test_an_entry_covers_the_night_from_its_evening_to_the_next_morning() -> None:
    plan = _plan(_entry("Loy Krathong", "2026-11-24", level=30))
    for now, level, source in (
        (_local(23, 20), 100, "schedule"),
        (_local(24, 3), 100, "schedule"),  # still the night of the 23rd
        (_local(24, 12, 30), 0, "schedule"),  # daytime
        (_local(24, 20), 30, "calendar"),
        (_local(25, 3), 30, "calendar"),  # the morning after is the same night
        (_local(25, 20), 100, "schedule"),
    ):
        decision = decide(SITE, plan, now.astimezone(UTC))
        assert (decision.level, decision.source) == (level, source), now


def test_a_level_entry_is_flat_from_switch_on_to_switch_off() -> None:
    plan = _plan(_entry("festival", "2026-11-24", level=70))
    tonight = plan_night(SITE, plan, date(2026, 11, 24))
    night = night_of(SITE, date(2026, 11, 24), RESIDENTIAL.night)
    assert (tonight.source, tonight.entry) == ("calendar", "festival")
    assert night.on_at is not None
    assert night.off_at is not None
    assert [(p.at, p.level, p.fade_s) for p in tonight.points] == [
        (night.on_at, 70, 0),
        (night.off_at, 0, 0),
    ]
    before = decide(SITE, plan, night.on_at - timedelta(seconds=1))
    assert (before.level, before.source, before.next_change) == (0, "schedule", night.on_at)
    at_on = decide(SITE, plan, night.on_at)
    assert (at_on.level, at_on.source, at_on.next_change) == (70, "calendar", night.off_at)
    assert decide(SITE, plan, night.off_at).level == 0


def test_a_level_0_night_is_off_and_motion_does_not_raise_it() -> None:
    plan = _plan(
        _entry("cable work", "2026-11-25", zones=frozenset({"soi-3"}), level=0),
        motion=MotionRule(level=100),
    )
    now = _local(25, 21).astimezone(UTC)
    inputs = ZoneInputs(motion_events=(now - timedelta(seconds=5),))
    assert decide(SITE, plan, now) == decide(SITE, plan, now, inputs)
    decision = decide(SITE, plan, now, inputs)
    assert (decision.level, decision.source) == (0, "calendar")
    # an override still switches it on
    override = ZoneInputs(override=Override(60, now + timedelta(hours=1)))
    assert decide(SITE, plan, now, override).level == 60


def test_a_profile_entry_brings_its_own_switching_times_and_steps() -> None:
    plan = _plan(_entry("market", "2026-11-24", profile="market-late"))
    tonight = plan_night(SITE, plan, date(2026, 11, 24))
    assert (tonight.source, tonight.entry) == ("calendar", "market")
    sunset = night_of(SITE, date(2026, 11, 24), NightRule()).on_at
    assert sunset is not None
    assert tonight.night.on_at == sunset + timedelta(minutes=60)
    early = decide(SITE, plan, sunset + timedelta(minutes=30))
    assert (early.level, early.source) == (0, "schedule")
    late = decide(SITE, plan, sunset + timedelta(minutes=61))
    assert (late.level, late.source) == (80, "calendar")


def test_entries_scoped_to_other_zones_leave_the_zone_alone() -> None:
    plan = _plan(
        _entry("other zone", "2026-11-24", zones=frozenset({"market"}), level=10),
        _entry("other group", "2026-11-24", groups=frozenset({"east"}), level=20),
    )
    decision = decide(SITE, plan, _local(24, 21).astimezone(UTC))
    assert (decision.level, decision.source) == (100, "schedule")
    grouped = _plan(
        _entry("other group", "2026-11-24", groups=frozenset({"east"}), level=20),
        groups=frozenset({"east"}),
    )
    decision = decide(SITE, grouped, _local(24, 21).astimezone(UTC))
    assert (decision.level, decision.source) == (20, "calendar")


def test_the_last_entry_wins_through_decide() -> None:
    now = _local(24, 21).astimezone(UTC)
    first, second = _entry("a", "11-24", level=10), _entry("b", "2026-11-20..2026-11-30", level=90)
    assert decide(SITE, _plan(first, second), now).level == 90
    assert decide(SITE, _plan(second, first), now).level == 10


def test_a_dated_rule_with_year_0000_is_refused() -> None:
    with pytest.raises(DateRuleError):
        parse_date_rule("0000-01-01")
