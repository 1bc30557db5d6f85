"""Motion: rise, hold after the last event, fade back to the schedule; never lower, only when on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedules.anchors import parse_anchor
from schedules.decide import Override, ZoneInputs, ZonePlan, decide
from schedules.motion import (
    MotionRule,
    accepted_trigger,
    boost_at,
    boost_ends,
    boost_next_change,
)
from schedules.night import NightRule
from schedules.profile import Profile, Step
from schedules.solar import Site

BANGKOK = ZoneInfo("Asia/Bangkok")
SITE = Site(17.155, 104.147, BANGKOK)
RULE = MotionRule(level=100, rise_s=2, hold_s=60, fade_s=30)
T0 = datetime(2026, 11, 21, 21, 0, tzinfo=BANGKOK).astimezone(UTC)  # a night, lamps at 20 %
PATH = ZonePlan(
    "school-path",
    Profile("motion-path", NightRule(), (Step(parse_anchor("on"), 20),)),
    motion=RULE,
)

FAST = settings(max_examples=100, deadline=None)


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --------------------------------------------------------------------------------------------
# the sensor pulse


def test_a_pulse_shorter_than_min_active_is_a_false_trigger() -> None:
    assert accepted_trigger(_s(0), _s(0.1), 0.2) is None
    assert accepted_trigger(_s(0), _s(0.19), 0.2) is None


def test_a_long_enough_pulse_counts_from_min_active_after_it_started() -> None:
    assert accepted_trigger(_s(0), _s(0.2), 0.2) == _s(0.2)
    assert accepted_trigger(_s(0), _s(5), 0.2) == _s(0.2)
    assert accepted_trigger(_s(0), None, 0.2) == _s(0.2)  # still active
    assert accepted_trigger(_s(0), None, 0.0) == _s(0)


@given(length=st.floats(0, 20, allow_nan=False), min_active=st.floats(0, 10, allow_nan=False))
@FAST
def test_a_pulse_counts_exactly_when_it_lasts_min_active(length: float, min_active: float) -> None:
    fall = _s(length)
    accepted = accepted_trigger(T0, fall, min_active)
    threshold = T0 + timedelta(seconds=min_active)
    if fall < threshold:
        assert accepted is None
    else:
        assert accepted == threshold


# --------------------------------------------------------------------------------------------
# the boost curve


def test_one_event_rises_holds_and_fades_back_to_the_base() -> None:
    events = (_s(0),)
    assert boost_at(RULE, events, _s(-1), 20) == 20
    assert boost_at(RULE, events, _s(0), 20) == 20
    assert boost_at(RULE, events, _s(1), 20) == pytest.approx(60)  # half way up in 1 of 2 s
    assert boost_at(RULE, events, _s(2), 20) == 100
    assert boost_at(RULE, events, _s(61.9), 20) == 100
    assert boost_at(RULE, events, _s(62), 20) == 100  # the hold ends 62 s after the event
    assert boost_at(RULE, events, _s(77), 20) == pytest.approx(60)  # half way down
    assert boost_at(RULE, events, _s(92), 20) == 20
    assert boost_at(RULE, events, _s(500), 20) == 20
    assert RULE.lasts == timedelta(seconds=92)
    assert boost_ends(RULE, events, _s(10)) == _s(92)
    assert boost_ends(RULE, events, _s(92)) is None
    assert boost_ends(RULE, (), _s(10)) is None
    assert boost_ends(RULE, events, _s(-1)) is None  # an event not yet happened


def test_a_new_event_during_the_hold_extends_it() -> None:
    events = (_s(0), _s(50))
    assert boost_at(RULE, events, _s(100), 20) == 100  # 50 + 2 + 60 = 112
    assert boost_at(RULE, events, _s(111.9), 20) == 100
    assert boost_at(RULE, events, _s(127), 20) == pytest.approx(60)
    assert boost_at(RULE, events, _s(142), 20) == 20
    assert boost_ends(RULE, events, _s(100)) == _s(142)


def test_a_new_event_during_the_fade_rises_from_where_the_fade_had_got() -> None:
    # the fade from the first event is at 60 % at 77 s
    events = (_s(0), _s(77))
    assert boost_at(RULE, events, _s(77), 20) == pytest.approx(60)
    assert boost_at(RULE, events, _s(78), 20) == pytest.approx(80)  # 60 -> 100 over 2 s
    assert boost_at(RULE, events, _s(79), 20) == 100
    # no flicker: the level just before and at the event are the same
    before = boost_at(RULE, events[:1], _s(77) - timedelta(milliseconds=1), 20)
    assert boost_at(RULE, events, _s(77), 20) == pytest.approx(before, abs=0.01)


def test_events_may_come_in_any_order() -> None:
    assert boost_at(RULE, (_s(77), _s(0)), _s(78), 20) == pytest.approx(80)


def test_motion_goes_to_the_higher_of_its_level_and_the_schedule() -> None:
    low = MotionRule(level=50, rise_s=2, hold_s=60, fade_s=30)
    assert boost_at(low, (_s(0),), _s(30), 80) == 80
    assert boost_at(low, (_s(0),), _s(30), 20) == 50


def test_a_zero_length_rise_or_fade_steps() -> None:
    rule = MotionRule(level=90, rise_s=0, hold_s=10, fade_s=0)
    assert boost_at(rule, (_s(0),), _s(0), 20) == 90
    assert boost_at(rule, (_s(0),), _s(9.999), 20) == 90
    assert boost_at(rule, (_s(0),), _s(10), 20) == 20


def test_boost_next_change_phases() -> None:
    events = (_s(0),)
    assert boost_next_change(RULE, (), _s(0), 20) is None
    during_rise = boost_next_change(RULE, events, _s(0), 20)
    assert during_rise is not None
    assert _s(0) < during_rise <= _s(2)
    assert boost_next_change(RULE, events, _s(10), 20) == _s(62)
    during_fade = boost_next_change(RULE, events, _s(70), 20)
    assert during_fade is not None
    assert _s(70) < during_fade <= _s(92)
    assert boost_next_change(RULE, events, _s(92), 20) is None


@given(
    base=st.floats(0, 100),
    rule=st.builds(
        MotionRule,
        level=st.integers(1, 100),
        rise_s=st.floats(0, 60),
        hold_s=st.floats(1, 3600),
        fade_s=st.floats(0, 3600),
    ),
    offsets=st.lists(st.floats(0, 7200), min_size=1, max_size=6),
    at=st.floats(-10, 9000),
)
@FAST
def test_the_boost_never_lowers_and_never_exceeds_its_top(
    base: float, rule: MotionRule, offsets: list[float], at: float
) -> None:
    boosted = boost_at(rule, tuple(_s(o) for o in offsets), _s(at), base)
    assert base <= boosted <= max(base, float(rule.level)) + 1e-9
    if at >= max(offsets) + rule.lasts.total_seconds() + 0.001:  # datetimes are to the µs
        assert boosted == base


# --------------------------------------------------------------------------------------------
# through decide


def test_decide_reports_motion_while_the_boost_is_above_the_schedule() -> None:
    inputs = ZoneInputs(motion_events=(_s(0),))
    assert decide(SITE, PATH, _s(-1), inputs).source == "schedule"
    for seconds, level in ((1, 60), (2, 100), (30, 100), (77, 60)):
        decision = decide(SITE, PATH, _s(seconds), inputs)
        assert (decision.level, decision.source) == (level, "motion")
    back = decide(SITE, PATH, _s(92), inputs)
    assert (back.level, back.source) == (20, "schedule")
    # the boost's phases bound the next decision
    in_hold = decide(SITE, PATH, _s(30), inputs)
    assert in_hold.next_change == _s(62)


def test_motion_does_nothing_while_the_zone_is_scheduled_off() -> None:
    noon = datetime(2026, 11, 22, 12, 30, tzinfo=BANGKOK).astimezone(UTC)
    inputs = ZoneInputs(motion_events=(noon - timedelta(seconds=5),))
    decision = decide(SITE, PATH, noon, inputs)
    assert (decision.level, decision.source) == (0, "schedule")
    assert decision == decide(SITE, PATH, noon)


def test_a_zone_without_a_motion_rule_ignores_events() -> None:
    plain = ZonePlan("soi-3", PATH.profile)
    inputs = ZoneInputs(motion_events=(_s(0),))
    assert decide(SITE, plain, _s(5), inputs) == decide(SITE, plain, _s(5))


def test_motion_does_not_change_a_schedule_already_at_the_motion_level() -> None:
    bright = ZonePlan(
        "soi-3", Profile("p", NightRule(), (Step(parse_anchor("on"), 100),)), motion=RULE
    )
    inputs = ZoneInputs(motion_events=(_s(0),))
    decision = decide(SITE, bright, _s(10), inputs)
    assert (decision.level, decision.source) == (100, "schedule")


def test_an_override_beats_motion_even_at_level_0() -> None:
    until = _s(3600)
    for level in (0, 10, 100):
        inputs = ZoneInputs(motion_events=(_s(0),), override=Override(level, until))
        decision = decide(SITE, PATH, _s(10), inputs)
        assert (decision.level, decision.source, decision.next_change) == (level, "override", until)


def test_during_the_motion_fade_the_decision_holds_until_next_change() -> None:
    inputs = ZoneInputs(motion_events=(_s(0),))
    now = _s(62)  # the fade from 100 to 20 over 30 s starts: one level every 0.375 s
    for _ in range(20):
        decision = decide(SITE, PATH, now, inputs)
        assert decision.next_change is not None
        for k in range(1, 10):
            sample = now + (decision.next_change - timedelta(milliseconds=2) - now) * k / 10
            later = decide(SITE, PATH, sample, inputs)
            assert (later.level, later.source) == (decision.level, decision.source), sample
        now = decision.next_change


def test_during_the_motion_rise_the_decision_holds_until_next_change() -> None:
    inputs = ZoneInputs(motion_events=(_s(0),))
    now = _s(0)
    for _ in range(20):
        decision = decide(SITE, PATH, now, inputs)
        assert decision.next_change is not None
        sample = now + (decision.next_change - timedelta(milliseconds=2) - now) / 2
        later = decide(SITE, PATH, sample, inputs)
        assert (later.level, later.source) == (decision.level, decision.source), sample
        now = decision.next_change


def test_a_zone_answers_its_own_sensors_and_those_of_zones_naming_it() -> None:
    from schedules.motion import events_for_zone

    t = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
    events = {
        "soi-3": [t + timedelta(seconds=5)],
        "school-path": [t],
        "market": [t + timedelta(seconds=9)],
    }
    neighbours = {"soi-3": ("school-path",), "market": ()}
    assert events_for_zone("school-path", events, neighbours) == (t, t + timedelta(seconds=5))
    assert events_for_zone("soi-3", events, neighbours) == (t + timedelta(seconds=5),)
    assert events_for_zone("market", events, neighbours) == (t + timedelta(seconds=9),)
