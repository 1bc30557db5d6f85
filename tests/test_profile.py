"""Anchors, the step placement rule, levels through a night, and whole-percent changes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schedules.anchors import Anchor, AnchorSyntaxError, parse_anchor
from schedules.decide import ZonePlan, decide
from schedules.night import Night, NightRule, night_of
from schedules.profile import (
    Point,
    Profile,
    Step,
    StepPlacement,
    level_at,
    local_time_on,
    next_whole_level_change,
    night_points,
    resolve_anchor,
    segments,
    whole,
)
from schedules.solar import Site

BANGKOK = ZoneInfo("Asia/Bangkok")
SITE = Site(13.75, 100.50, BANGKOK)
BERLIN = Site(52.52, 13.40, ZoneInfo("Europe/Berlin"))
NEW_YORK = Site(40.71, -74.01, ZoneInfo("America/New_York"))

DAY = date(2026, 11, 21)
ON_AT = datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK)
OFF_AT = datetime(2026, 11, 22, 6, 0, tzinfo=BANGKOK)
NIGHT = Night(DAY, ON_AT, OFF_AT, ON_AT, OFF_AT)

EARLY = "before the lamps go on"
LATE = "at or after the lamps go off"

FAST = settings(max_examples=100, deadline=None)


def _local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=BANGKOK)


def _steps(*specs: tuple[str, int] | tuple[str, int, int]) -> tuple[Step, ...]:
    return tuple(Step(parse_anchor(spec[0]), *spec[1:]) for spec in specs)


def _points(*specs: tuple[str, int] | tuple[str, int, int], on_level: int = 100) -> list[Point]:
    points, _ = night_points(SITE, NIGHT, _steps(*specs), on_level)
    return points


def _whole_levels_visited(points: list[Point], start: datetime, stop: datetime) -> list[int]:
    """Follow next_whole_level_change from `start` until `stop`, collecting the levels."""
    levels: list[int] = []
    when = start
    for _ in range(10_000):
        following = next_whole_level_change(points, when)
        if following is None or following >= stop:
            return levels
        assert following > when
        when = following
        levels.append(whole(level_at(points, when)))
    raise AssertionError("next_whole_level_change did not get anywhere")


# --------------------------------------------------------------------------------------------
# anchors


@pytest.mark.parametrize(
    ("text", "anchor"),
    [
        ("on", Anchor("on")),
        ("off", Anchor("off")),
        ("midnight", Anchor("midnight")),
        ("virtual_midnight", Anchor("virtual_midnight")),
        ("22:30", Anchor("clock", time(22, 30))),
        ("7:30", Anchor("clock", time(7, 30))),
        ("00:00", Anchor("clock", time(0, 0))),
        ("23:59", Anchor("clock", time(23, 59))),
        ("off-00:45", Anchor("off", None, timedelta(minutes=-45))),
        ("on+00:30", Anchor("on", None, timedelta(minutes=30))),
        ("22:30+00:15", Anchor("clock", time(22, 30), timedelta(minutes=15))),
        ("virtual_midnight-01:00", Anchor("virtual_midnight", None, timedelta(hours=-1))),
        ("on+12:00", Anchor("on", None, timedelta(hours=12))),
        ("off-12:00", Anchor("off", None, timedelta(hours=-12))),
        ("midnight+1:05", Anchor("midnight", None, timedelta(minutes=65))),
        ("  on  ", Anchor("on")),
    ],
)
def test_parse_anchor(text: str, anchor: Anchor) -> None:
    assert parse_anchor(text) == anchor


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("on", "on"),
        ("7:30", "07:30"),
        ("off-00:45", "off-00:45"),
        ("22:30+00:15", "22:30+00:15"),
        ("midnight+1:05", "midnight+01:05"),
        ("on+00:00", "on"),
    ],
)
def test_anchor_text_is_canonical_and_parses_back(text: str, shown: str) -> None:
    assert str(parse_anchor(text)) == shown
    assert parse_anchor(shown) == parse_anchor(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ON",
        "Off",
        "noon",
        "22.00",
        "24:00",
        "22:60",
        "22:30:00",
        "7:5",
        "123:00",
        "on +00:30",
        "on+0030",
        "on+00:60",
        "on+12:01",
        "off-13:00",
        "+00:30",
        "on+00:30+00:10",
        "virtual-midnight",
        "midnight-",
    ],
)
def test_bad_anchors_say_what_an_anchor_is(text: str) -> None:
    with pytest.raises(AnchorSyntaxError) as caught:
        parse_anchor(text)
    assert isinstance(caught.value, ValueError)
    assert repr(text) in str(caught.value)


@given(
    base=st.sampled_from(["on", "off", "midnight", "virtual_midnight", "clock"]),
    clock=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    minutes=st.integers(-720, 720),
)
@FAST
def test_every_anchor_prints_as_text_that_parses_back(base: str, clock: time, minutes: int) -> None:
    text = clock.strftime("%H:%M") if base == "clock" else base
    if minutes:
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    anchor = parse_anchor(text)
    assert anchor.offset == timedelta(minutes=minutes)
    assert anchor.clock == (clock if base == "clock" else None)
    assert parse_anchor(str(anchor)) == anchor


# --------------------------------------------------------------------------------------------
# resolving anchors in a night


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("on", ON_AT),
        ("off", OFF_AT),
        ("off-00:45", _local(22, 5, 15)),
        ("on+00:30", _local(21, 18, 30)),
        ("midnight", _local(22, 0)),
        ("midnight-00:30", _local(21, 23, 30)),
        ("virtual_midnight", _local(22, 0)),
        ("22:30+00:15", _local(21, 22, 45)),
        ("12:00", _local(21, 12, 0)),  # 12:00-23:59 belong to the evening
        ("23:59", _local(21, 23, 59)),
        ("00:00", _local(22, 0)),  # 00:00-11:59 to the morning after
        ("05:00", _local(22, 5)),
        ("11:59", _local(22, 11, 59)),
    ],
)
def test_resolve_anchor(text: str, at: datetime) -> None:
    assert resolve_anchor(SITE, NIGHT, parse_anchor(text)) == at


def test_virtual_midnight_is_halfway_between_on_and_off() -> None:
    night = Night(DAY, None, None, _local(21, 17, 50), _local(22, 6, 10))
    assert resolve_anchor(SITE, night, parse_anchor("virtual_midnight")) == _local(22, 0)
    assert resolve_anchor(SITE, night, parse_anchor("virtual_midnight-01:00")) == _local(21, 23)


def test_anchors_resolve_to_nothing_on_a_night_without_window() -> None:
    night = Night(DAY, None, None, None, None, note="polar day")
    for text in ("on", "off", "midnight", "virtual_midnight", "22:00"):
        assert resolve_anchor(SITE, night, parse_anchor(text)) is None
    steps = _steps(("on", 100), ("22:00", 50))
    assert night_points(SITE, night, steps, 100, explain=True) == ([], [])


# --------------------------------------------------------------------------------------------
# the placement rule: steps in file order, each at its time but never before switch-on or
# before the step listed above it; the last of several at one moment wins; none at/after off


def test_placements_are_explained_only_when_asked() -> None:
    steps = _steps(("on", 100), ("17:00", 50), ("off", 10))
    points, placements = night_points(SITE, NIGHT, steps, 100)
    assert placements == []
    explained, placements = night_points(SITE, NIGHT, steps, 100, explain=True)
    assert explained == points
    assert len(placements) == len(steps)


def test_no_steps_is_the_on_level_all_night() -> None:
    points, placements = night_points(SITE, NIGHT, (), 80, explain=True)
    assert points == [Point(ON_AT, 80), Point(OFF_AT, 0)]
    assert placements == []


def test_before_the_first_step_the_lamps_are_at_the_on_level() -> None:
    points, placements = night_points(SITE, NIGHT, _steps(("22:00", 60)), 80, explain=True)
    assert points == [Point(ON_AT, 80), Point(_local(21, 22), 60), Point(OFF_AT, 0)]
    assert placements == [StepPlacement(0, _local(21, 22), True)]


def test_a_step_at_on_replaces_the_on_level() -> None:
    points, placements = night_points(SITE, NIGHT, _steps(("on", 70, 300)), 100, explain=True)
    assert points == [Point(ON_AT, 70, 300), Point(OFF_AT, 0)]
    assert placements == [StepPlacement(0, ON_AT, True)]


def test_a_step_before_dusk_applies_from_switch_on() -> None:
    points, placements = night_points(
        SITE, NIGHT, _steps(("on", 100), ("17:30", 60, 600), ("22:00", 40)), 100, explain=True
    )
    # 17:30 has passed when the lamps go on at 18:00: it takes effect then, and wins
    assert points == [Point(ON_AT, 60, 600), Point(_local(21, 22), 40), Point(OFF_AT, 0)]
    assert placements == [
        StepPlacement(0, ON_AT, True),
        StepPlacement(1, _local(21, 17, 30), True, EARLY),
        StepPlacement(2, _local(21, 22), True),
    ]


@pytest.mark.parametrize(
    ("specs", "level"),
    [
        ((("17:00", 30), ("17:30", 40)), 40),
        ((("17:30", 40), ("17:00", 30)), 30),  # file order, not time order
        ((("on", 100), ("18:00", 70)), 70),  # 18:00 is on_at itself
        ((("18:00", 70), ("on", 100)), 100),
        ((("17:30", 40), ("on-00:30", 45)), 45),
        ((("on-00:30", 45), ("17:30", 40)), 40),
    ],
)
def test_of_several_steps_at_switch_on_the_last_listed_wins(
    specs: tuple[tuple[str, int], ...], level: int
) -> None:
    points, placements = night_points(SITE, NIGHT, _steps(*specs), 100, explain=True)
    assert points == [Point(ON_AT, level), Point(OFF_AT, 0)]
    assert [p.used for p in placements] == [True, True]


def test_a_step_that_crosses_the_one_above_takes_effect_with_it() -> None:
    points, placements = night_points(
        SITE,
        NIGHT,
        _steps(("on", 100), ("23:00", 60), ("22:00", 40), ("02:00", 20)),
        100,
        explain=True,
    )
    assert points == [
        Point(ON_AT, 100),
        Point(_local(21, 23), 40),  # 22:00 waits for 23:00 and, listed later, wins
        Point(_local(22, 2), 20),
        Point(OFF_AT, 0),
    ]
    assert placements[2] == StepPlacement(
        2, _local(21, 22), True, "before the step listed above it"
    )
    assert [p.why for p in placements[:2] + placements[3:]] == [None, None, None]


def test_a_step_after_midnight_listed_before_an_evening_step_pushes_it_to_the_morning() -> None:
    points = _points(("02:00", 30), ("22:00", 60))
    # the 22:00 step is the evening of the night, before 02:00: it waits for 02:00 and wins
    assert points == [Point(ON_AT, 100), Point(_local(22, 2), 60), Point(OFF_AT, 0)]


def test_steps_at_or_after_off_are_skipped() -> None:
    points, placements = night_points(
        SITE, NIGHT, _steps(("05:30", 50), ("off", 10), ("off+00:10", 20)), 100, explain=True
    )
    assert points == [Point(ON_AT, 100), Point(_local(22, 5, 30), 50), Point(OFF_AT, 0)]
    assert placements == [
        StepPlacement(0, _local(22, 5, 30), True),
        StepPlacement(1, OFF_AT, False, LATE),
        StepPlacement(2, OFF_AT + timedelta(minutes=10), False, LATE),
    ]


def test_a_step_that_crosses_the_one_above_keeps_its_fade() -> None:
    points = _points(("05:50", 50), ("05:00", 30, 600))
    assert points == [Point(ON_AT, 100), Point(_local(22, 5, 50), 30, 600), Point(OFF_AT, 0)]


def test_steps_at_the_same_time_the_last_listed_wins() -> None:
    points = _points(("22:00", 60), ("22:00", 50))
    assert points == [Point(ON_AT, 100), Point(_local(21, 22), 50), Point(OFF_AT, 0)]
    assert level_at(points, _local(21, 22)) == 50


def test_points_are_in_utc_and_in_time_order() -> None:
    points = _points(("22:00", 60), ("midnight", 45), ("02:00", 30))
    assert [p.at for p in points] == [
        ON_AT,
        _local(21, 22),
        _local(22, 0),
        _local(22, 2),
        OFF_AT,
    ]
    assert all(p.at.utcoffset() == timedelta(0) for p in points)


def test_a_night_with_the_example_profile() -> None:
    """docs/configuration.md's residential profile on a Sakon Nakhon night."""
    site = Site(17.155, 104.147, BANGKOK)
    night = night_of(site, DAY, NightRule(on_offset_min=5, off_offset_min=-5))
    steps = _steps(("on", 100), ("22:00", 60, 600), ("midnight", 30, 900), ("off-01:00", 70, 600))
    points, placements = night_points(site, night, steps, 100, explain=True)
    assert night.on_at is not None
    assert night.off_at is not None
    assert [p.at for p in points] == [
        night.on_at,
        _local(21, 22),
        _local(22, 0),
        night.off_at - timedelta(hours=1),
        night.off_at,
    ]
    assert [(p.level, p.fade_s) for p in points] == [
        (100, 0),
        (60, 600),
        (30, 900),
        (70, 600),
        (0, 0),
    ]
    assert all(p.used for p in placements)


# --------------------------------------------------------------------------------------------
# levels, fades and segments


def test_level_before_on_and_after_off_is_zero() -> None:
    points = _points(("22:00", 60))
    assert level_at(points, ON_AT - timedelta(microseconds=1)) == 0.0
    assert level_at(points, ON_AT) == 100.0
    assert level_at(points, OFF_AT - timedelta(microseconds=1)) == 60.0
    assert level_at(points, OFF_AT) == 0.0
    assert level_at(points, OFF_AT + timedelta(days=3)) == 0.0
    assert level_at([], ON_AT) == 0.0


def test_a_fade_moves_linearly_to_its_level_then_holds() -> None:
    points = _points(("22:00", 60, 600))
    assert level_at(points, _local(21, 21, 59, 59)) == 100.0
    assert level_at(points, _local(21, 22)) == 100.0
    assert level_at(points, _local(21, 22, 5)) == pytest.approx(80.0)
    assert level_at(points, _local(21, 22, 7, 30)) == pytest.approx(70.0)
    assert level_at(points, _local(21, 22, 10)) == 60.0
    assert level_at(points, _local(22, 3)) == 60.0


def test_a_fade_cut_short_by_the_next_point_hands_on_where_it_got() -> None:
    # 100 -> 20 over 10 minutes is at 60 after 5; then 80 at once
    points = _points(("22:00", 20, 600), ("22:05", 80))
    assert level_at(points, _local(21, 22, 4, 59)) == pytest.approx(60 + 80 / 600)
    assert level_at(points, _local(21, 22, 5)) == 80.0
    # the same with a fade on the second step: 60 -> 80 over 10 minutes
    points = _points(("22:00", 20, 600), ("22:05", 80, 600))
    assert level_at(points, _local(21, 22, 5)) == pytest.approx(60.0)
    assert level_at(points, _local(21, 22, 10)) == pytest.approx(70.0)
    assert level_at(points, _local(21, 22, 15)) == 80.0


def test_segments_are_the_straight_pieces_of_the_plan() -> None:
    points = _points(("22:00", 60, 600), ("22:00", 60), ("02:00", 20, 1200), ("02:10", 90))
    assert segments(points) == [
        (ON_AT, _local(21, 22), 100.0, 100.0),
        (_local(21, 22), _local(22, 2), 60.0, 60.0),  # the later 22:00 step wins: no fade
        (_local(22, 2), _local(22, 2, 10), 60.0, 40.0),  # fade cut short halfway
        (_local(22, 2, 10), OFF_AT, 90.0, 90.0),
    ]


@pytest.mark.parametrize(
    ("level", "expected"),
    [(0.0, 0), (0.49, 0), (0.5, 1), (49.5, 50), (59.4999, 59), (99.5, 100), (100.0, 100)],
)
def test_whole_rounds_halves_up(level: float, expected: int) -> None:
    assert whole(level) == expected


@pytest.mark.parametrize(("level", "expected"), [(-3.0, 0), (-0.4, 0), (100.4, 100), (130.0, 100)])
def test_whole_stays_within_0_and_100(level: float, expected: int) -> None:
    assert whole(level) == expected


# --------------------------------------------------------------------------------------------
# the next whole-percent change


def test_next_change_on_a_flat_plan_is_the_next_point_with_another_level() -> None:
    points = _points(("22:00", 60), ("midnight", 50))
    assert next_whole_level_change(points, ON_AT - timedelta(hours=1)) == ON_AT
    assert next_whole_level_change(points, ON_AT) == _local(21, 22)
    assert next_whole_level_change(points, _local(21, 22)) == _local(22, 0)
    assert next_whole_level_change(points, _local(22, 0)) == OFF_AT
    assert next_whole_level_change(points, OFF_AT) is None
    assert next_whole_level_change(points, OFF_AT + timedelta(days=1)) is None


def test_next_change_skips_a_point_that_keeps_the_level() -> None:
    points = _points(("22:00", 100))
    assert next_whole_level_change(points, ON_AT) == OFF_AT


def test_a_100_to_60_fade_over_600_s_visits_every_whole_level_once() -> None:
    points = _points(("22:00", 60, 600))
    assert _whole_levels_visited(points, _local(21, 22), OFF_AT) == list(range(99, 59, -1))
    # each level lasts 15 s, the first and the last half as long
    first = next_whole_level_change(points, _local(21, 22))
    assert first is not None
    assert abs((first - _local(21, 22, 0, 7)).total_seconds() - 0.5) < 0.01


def test_a_rising_fade_visits_every_whole_level_once() -> None:
    points = _points(("on", 40), ("22:00", 100, 1800))
    assert _whole_levels_visited(points, ON_AT, OFF_AT) == list(range(41, 101))


def test_a_100_to_60_fade_through_decide_visits_every_whole_level_once() -> None:
    plan = ZonePlan("soi-3", Profile("p", NightRule(), _steps(("on", 100), ("22:00", 60, 600))))
    now = _local(21, 21, 59).astimezone(UTC)
    seen = []
    for _ in range(100):
        decision = decide(SITE, plan, now)
        seen.append(decision.level)
        if decision.level == 60:
            break
        assert decision.next_change is not None
        now = decision.next_change
    assert seen == list(range(100, 59, -1))
    assert decide(SITE, plan, now).next_change == night_of(SITE, DAY, NightRule()).off_at


def test_a_falling_fade_from_a_half_level_visits_every_level() -> None:
    # 100 -> 1 over 600 s is cut at 300 s at exactly 50.5; then 50.5 -> 20 over 600 s
    points = _points(("22:00", 1, 600), ("22:05", 20, 600))
    assert level_at(points, _local(21, 22, 5)) == 50.5
    visited = _whole_levels_visited(points, _local(21, 21), OFF_AT)
    assert visited == list(range(99, 19, -1))


@given(
    first=st.integers(0, 100),
    last=st.integers(0, 100),
    fade_s=st.integers(1, 3600),
    start_s=st.integers(0, 3 * 3600),
)
@FAST
def test_an_uncut_fade_visits_each_whole_level_between_once_and_holds_between(
    first: int, last: int, fade_s: int, start_s: int
) -> None:
    assume(first != last)  # a 'fade' to the same level: see test_next_change_skips_a_point...
    start = ON_AT + timedelta(seconds=start_s)
    points = [Point(ON_AT, first), Point(start, last, fade_s), Point(OFF_AT, 0)]
    visited = _whole_levels_visited(points, ON_AT, OFF_AT)
    step = 1 if last > first else -1
    assert visited == list(range(first + step, last + step, step))
    when = ON_AT
    while (following := next_whole_level_change(points, when)) is not None and following < OFF_AT:
        now_level = whole(level_at(points, when))
        for k in range(1, 4):  # the level holds until (a millisecond before) the change
            sample = when + (following - timedelta(milliseconds=2) - when) * k / 4
            if sample > when:
                assert whole(level_at(points, sample)) == now_level
        when = following


# --------------------------------------------------------------------------------------------
# the placement rule over random steps


_ANCHOR_TEXT = st.one_of(
    st.sampled_from(["on", "off", "midnight", "virtual_midnight"]),
    st.times().map(lambda t: t.strftime("%H:%M")),
).flatmap(
    lambda base: st.one_of(
        st.just(base),
        st.integers(-720, 720).map(
            lambda m: f"{base}{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
        ),
    )
)
_STEP = st.builds(
    Step,
    _ANCHOR_TEXT.map(parse_anchor),
    st.integers(1, 100),
    st.one_of(st.just(0), st.integers(1, 3600)),
)


@given(
    steps=st.lists(_STEP, max_size=6).map(tuple),
    on_shift=st.integers(-240, 240),
    off_shift=st.integers(-240, 240),
    on_level=st.integers(1, 100),
)
@FAST
def test_placement_rule_holds_for_any_steps(
    steps: tuple[Step, ...], on_shift: int, off_shift: int, on_level: int
) -> None:
    on_at = ON_AT + timedelta(minutes=on_shift)
    off_at = OFF_AT + timedelta(minutes=off_shift)
    night = Night(DAY, None, None, on_at, off_at)
    points, placements = night_points(SITE, night, steps, on_level, explain=True)
    times = [resolve_anchor(SITE, night, step.anchor) for step in steps]

    # The rule, step by step in file order: at its time, but not before switch-on nor before
    # the (used) step listed above it; skipped when that is at or after off; of several at one
    # moment the last listed wins. ("Listed above" is read as the nearest step that is used.)
    expected = [Point(on_at.astimezone(UTC), on_level)]
    floor = on_at
    fates: list[tuple[bool, str | None]] = []
    for step, at in zip(steps, times, strict=True):
        assert at is not None
        start = max(at, floor)
        if start >= off_at:
            fates.append((False, LATE))
            continue
        fates.append((True, None if start == at else "?"))
        floor = start
        if expected[-1].at == start:
            expected[-1] = Point(start, step.level, step.fade_s)
        else:
            expected.append(Point(start, step.level, step.fade_s))
    expected.append(Point(off_at, 0))
    assert points == expected

    assert points[0].at == on_at
    assert points[-1] == Point(off_at, 0)
    assert all(a.at < b.at for a, b in itertools.pairwise(points))
    assert [p.index for p in placements] == list(range(len(steps)))
    for placement, (used, why), at in zip(placements, fates, times, strict=True):
        assert placement.at == at
        assert placement.used == used
        if why == "?":
            assert placement.why in (EARLY, "before the step listed above it")
        else:
            assert placement.why == why
    for k in range(25):
        when = on_at + (off_at - on_at) * k / 24
        assert 0.0 <= level_at(points, when) <= 100.0


# --------------------------------------------------------------------------------------------
# daylight saving time


@pytest.mark.parametrize(
    ("site", "day", "clock", "expected_utc"),
    [
        # spring forward: the skipped wall time moves forward by the gap
        (BERLIN, date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        (NEW_YORK, date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # fall back: the repeated wall time is its first occurrence (summer time)
        (BERLIN, date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (NEW_YORK, date(2026, 11, 1), time(1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        # times that exist once are themselves
        (BERLIN, date(2026, 10, 25), time(1, 30), datetime(2026, 10, 24, 23, 30, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 29), time(1, 59), datetime(2026, 3, 29, 0, 59, tzinfo=UTC)),
        (BERLIN, date(2026, 3, 29), time(3, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ],
)
def test_local_time_on_across_clock_changes(
    site: Site, day: date, clock: time, expected_utc: datetime
) -> None:
    found = local_time_on(site, day, clock)
    assert found.tzinfo is site.tz
    assert found.astimezone(UTC) == expected_utc
    # the result is a real wall time that round-trips through UTC
    assert found.astimezone(UTC).astimezone(site.tz).replace(tzinfo=None) == found.replace(
        tzinfo=None
    )


def test_a_step_at_a_skipped_time_takes_effect_at_03_30_summer_time() -> None:
    night = night_of(BERLIN, date(2026, 3, 28), NightRule())
    at = resolve_anchor(BERLIN, night, parse_anchor("02:30"))
    assert at == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN.tz)
    plan = ZonePlan("z", Profile("p", NightRule(), _steps(("on", 100), ("02:30", 50))))
    just_before = datetime(2026, 3, 29, 1, 29, 59, tzinfo=UTC)
    assert decide(BERLIN, plan, just_before).level == 100
    assert decide(BERLIN, plan, just_before).next_change == at
    assert decide(BERLIN, plan, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)).level == 50


def test_a_step_at_a_repeated_time_takes_effect_at_its_first_occurrence() -> None:
    plan = ZonePlan("z", Profile("p", NightRule(), _steps(("on", 100), ("02:30", 50))))
    # 02:30 CEST is 00:30 UTC; the second 02:30 (CET) is 01:30 UTC
    assert decide(BERLIN, plan, datetime(2026, 10, 25, 0, 29, tzinfo=UTC)).level == 100
    assert decide(BERLIN, plan, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)).level == 50
    assert decide(BERLIN, plan, datetime(2026, 10, 25, 1, 15, tzinfo=UTC)).level == 50
    assert decide(BERLIN, plan, datetime(2026, 10, 25, 1, 45, tzinfo=UTC)).level == 50


def test_midnight_on_clock_change_nights_is_local_midnight() -> None:
    for day, utc_hour in ((date(2026, 3, 28), 23), (date(2026, 10, 24), 22)):
        night = night_of(BERLIN, day, NightRule())
        at = resolve_anchor(BERLIN, night, parse_anchor("midnight"))
        assert at is not None
        assert at.astimezone(UTC) == datetime.combine(day, time(utc_hour), tzinfo=UTC)


@pytest.mark.parametrize(
    ("site", "day"),
    [
        (BERLIN, date(2026, 3, 28)),
        (BERLIN, date(2026, 10, 24)),
        (NEW_YORK, date(2026, 3, 7)),
        (NEW_YORK, date(2026, 10, 31)),
    ],
    ids=["berlin-spring", "berlin-autumn", "ny-spring", "ny-autumn"],
)
def test_virtual_midnight_is_the_midpoint_in_elapsed_time(site: Site, day: date) -> None:
    night = night_of(site, day, NightRule())
    assert night.on_at is not None
    assert night.off_at is not None
    on_utc, off_utc = night.on_at.astimezone(UTC), night.off_at.astimezone(UTC)
    at = resolve_anchor(site, night, parse_anchor("virtual_midnight"))
    assert at is not None
    assert at.astimezone(UTC) == on_utc + (off_utc - on_utc) / 2


def test_virtual_midnight_on_an_ordinary_night_in_a_dst_zone() -> None:
    night = night_of(BERLIN, date(2026, 1, 10), NightRule())
    assert night.on_at is not None
    assert night.off_at is not None
    on_utc, off_utc = night.on_at.astimezone(UTC), night.off_at.astimezone(UTC)
    at = resolve_anchor(BERLIN, night, parse_anchor("virtual_midnight"))
    assert at is not None
    assert at.astimezone(UTC) == on_utc + (off_utc - on_utc) / 2


def test_decide_depends_on_the_instant_not_on_the_zone_now_is_written_in() -> None:
    plan = ZonePlan("z", Profile("p", NightRule(), _steps(("on", 100), ("02:30", 50))))
    now = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET, the second 02:15
    local = now.astimezone(BERLIN.tz)
    assert local.fold == 1
    assert decide(BERLIN, plan, local) == decide(BERLIN, plan, now)
