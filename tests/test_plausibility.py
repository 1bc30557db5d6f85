"""Impossible meter values are flagged and held back; counter restarts pass only once confirmed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import MeterReading
from drivers.errors import ImplausibleReading
from drivers.plausibility import ReadingGuard

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def reading(minutes: float, energy_kwh: float, /, **fields: Any) -> MeterReading:
    base = MeterReading(
        voltage=230.0,
        current=2.0,
        power=440.0,
        power_factor=0.96,
        frequency=50.0,
        energy_kwh=energy_kwh,
        ts=T0 + timedelta(minutes=minutes),
    )
    return replace(base, **fields)


def test_plausible_readings_pass_unchanged() -> None:
    guard = ReadingGuard(max_power_w=1000)
    for minute, kwh in [(0, 100.0), (1, 100.01), (2, 100.02), (60, 100.9)]:
        r = reading(minute, kwh)
        assert guard.check(r) == r


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"power": -50.0}, "negative"),
        ({"voltage": 1200.0}, "outside 0-500 V"),
        ({"frequency": 0.5}, "frequency"),
        ({"power_factor": 3.2}, "power factor"),
        ({"current": -1.0}, "current"),
        ({"power": 50_000.0}, "far above"),
        ({"energy_kwh": float("nan")}, "data types"),
        ({"voltage": float("inf")}, "word order"),
    ],
)
def test_impossible_values_are_refused_with_a_reason(fields: dict[str, float], words: str) -> None:
    guard = ReadingGuard(max_power_w=1000)
    guard.check(reading(0, 10.0))
    with pytest.raises(ImplausibleReading, match=words):
        guard.check(reading(1, 10.0, **fields))
    # the refused reading did not become the counter's base: the next good one still passes
    assert guard.check(reading(2, 10.02)).counter_break is None


def test_a_dead_line_has_no_frequency_and_that_is_fine() -> None:
    guard = ReadingGuard(max_power_w=1000)
    r = reading(0, 10.0, voltage=0.0, current=0.0, power=0.0, frequency=0.0, power_factor=0.0)
    assert guard.check(r) == r


def test_a_counter_that_goes_back_is_held_until_confirmed_as_a_reset() -> None:
    guard = ReadingGuard(max_power_w=1000, confirm_reads=3)
    guard.check(reading(0, 523.4))
    with pytest.raises(ImplausibleReading, match=r"went back from 523\.400 to 0\.000.*2 more"):
        guard.check(reading(1, 0.0))
    with pytest.raises(ImplausibleReading, match="1 more"):
        guard.check(reading(2, 0.01))
    confirmed = guard.check(reading(3, 0.02))
    assert confirmed.counter_break == "reset"
    assert confirmed.energy_kwh == 0.02
    # from then on the new base is normal
    assert guard.check(reading(4, 0.03)).counter_break is None


def test_a_single_glitch_back_does_not_rebase_the_counter() -> None:
    guard = ReadingGuard(max_power_w=1000, confirm_reads=3)
    guard.check(reading(0, 523.4))
    with pytest.raises(ImplausibleReading):
        guard.check(reading(1, 12.0))  # one garbled frame
    r = reading(2, 523.43)
    assert guard.check(r) == r  # back on the old base: nothing was reset


def test_a_leap_forward_beyond_what_the_lamps_can_draw_is_held_back() -> None:
    guard = ReadingGuard(max_power_w=1000, confirm_reads=2)
    guard.check(reading(0, 100.0))
    # 1 kW for one minute is 0.017 kWh; +50 kWh is impossible
    with pytest.raises(ImplausibleReading, match="leapt forward"):
        guard.check(reading(1, 150.0))
    confirmed = guard.check(reading(2, 150.01))
    assert confirmed.counter_break == "jump"


def test_a_candidate_base_that_does_not_hold_starts_over() -> None:
    guard = ReadingGuard(max_power_w=1000, confirm_reads=2)
    guard.check(reading(0, 100.0))
    with pytest.raises(ImplausibleReading):
        guard.check(reading(1, 5.0))
    with pytest.raises(ImplausibleReading, match="1 more"):
        guard.check(reading(2, 60.0))  # neither the old base nor the candidate's
    assert guard.check(reading(3, 60.01)).counter_break == "reset"


def test_reset_forgets_the_base() -> None:
    guard = ReadingGuard(max_power_w=1000)
    guard.check(reading(0, 100.0))
    guard.reset()
    r = reading(1, 3.0)
    assert guard.check(r) == r


def test_bad_guard_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_power_w"):
        ReadingGuard(max_power_w=0)


@given(steps=st.lists(st.tuples(st.floats(1, 3600), st.floats(0, 1.0)), min_size=1, max_size=40))
def test_any_counter_the_lamps_could_have_made_passes(steps: list[tuple[float, float]]) -> None:
    """Time steps and powers up to the maximum never trip the guard."""
    guard = ReadingGuard(max_power_w=1000)
    seconds, kwh = 0.0, 42.0
    guard.check(reading(0, kwh))
    for dt, share in steps:
        seconds += dt
        kwh += 1000 * share * dt / 3600 / 1000
        r = reading(seconds / 60, kwh, power=1000 * share)
        assert guard.check(r) == r
