"""The simulated hardware: its power model, its meter, its passers-by, its photocell, its faults."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral.sun import elevation as astral_elevation
from astral.sun import sun
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.clock import ManualClock, settle
from drivers.base import (
    LightInput,
    LightReading,
    Meter,
    MeterReading,
    MotionEvent,
    MotionInput,
    Output,
)
from drivers.errors import DeviceFault, ImplausibleReading
from drivers.sim import (
    DAILY_SHAPE,
    LuminaireModel,
    SimMeter,
    SimOutput,
    SimPassersBy,
    SimPhotocell,
    clear_sky_lux,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


class SteppedTime:
    """A `now` that a synchronous test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def fault_of(device: SimOutput | SimMeter) -> str | None:
    """`device.fault` through a call, so mypy does not keep a narrowing from before a fault."""
    return device.fault


# --------------------------------------------------------------------------------------------
# the luminaire model


def test_power_is_nothing_off_standby_and_overhead_when_dim_and_rated_at_full() -> None:
    model = LuminaireModel(rated_w=100.0, standby_w=0.5, overhead=0.05)
    assert model.power_w(0) == 0.0
    assert model.power_w(1) == pytest.approx(0.5 + 99.5 * 0.05 + 99.5 * 0.95 / 100)
    assert model.power_w(50) == pytest.approx(0.5 + 99.5 * (0.05 + 0.95 * 0.5))
    assert model.power_w(100) == pytest.approx(100.0)
    fixed_w, per_level_w = model.affine_w()
    assert model.power_w(37) == pytest.approx(fixed_w + per_level_w * 37)


def test_power_factor_falls_at_light_load_like_an_led_driver() -> None:
    model = LuminaireModel(rated_w=60.0)
    assert model.power_factor(100) >= 0.95
    assert 0.6 <= model.power_factor(10) <= 0.8
    with pytest.raises(ValueError, match="power factors"):
        LuminaireModel(rated_w=60.0, pf_idle=0.9, pf_full=0.8)


@given(
    rated_w=st.floats(1.0, 2000.0),
    standby_share=st.floats(0.0, 0.1),
    overhead=st.floats(0.0, 0.5),
)
def test_power_and_power_factor_rise_with_level(
    rated_w: float, standby_share: float, overhead: float
) -> None:
    model = LuminaireModel(rated_w=rated_w, standby_w=rated_w * standby_share, overhead=overhead)
    powers = [model.power_w(level) for level in range(101)]
    assert powers[0] == 0.0
    assert all(a <= b for a, b in itertools.pairwise(powers))
    assert powers[1] >= model.standby_w
    assert powers[100] == pytest.approx(rated_w)
    pfs = [model.power_factor(level) for level in range(1, 101)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(pfs))
    assert all(model.pf_idle <= pf <= model.pf_full for pf in pfs)


# --------------------------------------------------------------------------------------------
# outputs


def test_a_sim_output_is_an_output_that_identifies_itself() -> None:
    output: Output = SimOutput("z/sim", LuminaireModel(rated_w=60.0), SteppedTime())
    assert isinstance(output, Output)
    identity = output.identify()
    assert (identity.kind, identity.where) == ("sim", "simulation")
    assert identity.model.startswith("simulated")
    assert "z/sim" in repr(output)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        # whole microseconds: datetimes cannot hold finer steps, so the test's own sum and
        # the simulation's would differ by rounding, not by a bug
        st.tuples(st.integers(0, 4 * 3600 * 10**6).map(lambda us: us / 10**6), st.integers(0, 100)),
        min_size=1,
        max_size=30,
    )
)
def test_output_energy_is_the_exact_integral_of_power_over_its_levels(
    steps: list[tuple[float, int]],
) -> None:
    model = LuminaireModel(rated_w=80.0, standby_w=0.7, overhead=0.08)
    now = SteppedTime()
    output = SimOutput("z", model, now)
    expected_wh = 0.0
    level = 0
    asked = [(now(), 0)]

    async def drive() -> None:
        nonlocal expected_wh, level
        for seconds, new_level in steps:
            now.advance(seconds)
            expected_wh += model.power_w(level) * seconds / 3600
            await output.set_level(new_level)
            if new_level != level:
                asked.append((now(), new_level))
            level = new_level
        now.advance(600)
        expected_wh += model.power_w(level) * 600 / 3600

    asyncio.run(drive())
    assert output.energy_kwh() * 1000 == pytest.approx(expected_wh, rel=1e-9, abs=1e-9)
    assert output.history == asked
    assert output.level == level


async def test_set_level_refuses_what_is_no_level() -> None:
    output = SimOutput("z", LuminaireModel(rated_w=60.0), SteppedTime())
    for bad in (-1, 101, 50.0, True):
        with pytest.raises(ValueError, match="0 to 100"):
            await output.set_level(bad)  # type: ignore[arg-type]
    assert output.level == 0 and output.history == [(T0, 0)]


async def test_a_switched_output_lights_fully_at_any_level() -> None:
    model = LuminaireModel(rated_w=60.0)
    output = SimOutput("z", model, SteppedTime(), switched=True)
    await output.set_level(30)
    assert output.level == 30
    assert output.power_w == pytest.approx(model.power_w(100))


async def test_failed_lamps_draw_nothing_but_the_output_does_not_know() -> None:
    model = LuminaireModel(rated_w=100.0)
    now = SteppedTime()
    output = SimOutput("z", model, now)
    await output.set_level(100)
    now.advance(3600)
    output.fail_lamps(0.25)
    assert output.level == 100 and output.fault is None
    assert output.power_w == pytest.approx(0.75 * model.power_w(100))
    now.advance(3600)
    output.fail_lamps()
    assert output.power_w == 0.0
    now.advance(3600)
    assert output.energy_kwh() * 1000 == pytest.approx(100.0 + 75.0)
    output.repair()
    assert output.power_w == pytest.approx(100.0)
    with pytest.raises(ValueError, match="share"):
        output.fail_lamps(1.5)


async def test_a_relay_stuck_on_keeps_the_lamps_at_their_last_lit_level() -> None:
    model = LuminaireModel(rated_w=100.0)
    now = SteppedTime()
    output = SimOutput("z", model, now)
    await output.set_level(60)
    output.stick_relay()
    await output.set_level(0)
    assert (output.level, output.fault, output.physical_level) == (0, None, 60)
    assert output.power_w == pytest.approx(model.power_w(60))
    await output.set_level(30)  # the dimmer still works
    assert output.power_w == pytest.approx(model.power_w(30))
    await output.set_level(0)
    now.advance(3600)
    assert output.energy_kwh() * 1000 == pytest.approx(model.power_w(30))
    output.repair()
    assert output.power_w == 0.0


async def test_a_relay_stuck_before_ever_lighting_burns_at_full_and_stuck_off_stays_dark() -> None:
    model = LuminaireModel(rated_w=100.0)
    output = SimOutput("z", model, SteppedTime())
    output.stick_relay(on=True)
    assert output.physical_level == 100 and output.power_w == pytest.approx(100.0)
    output.stick_relay(on=False)
    await output.set_level(100)
    assert output.level == 100 and output.power_w == 0.0 and output.fault is None


async def test_a_broken_driver_says_so_and_its_lamps_stop_following() -> None:
    model = LuminaireModel(rated_w=100.0)
    output = SimOutput("z", model, SteppedTime())
    await output.set_level(80)
    output.break_driver("dimmer module does not answer")
    assert output.fault == "dimmer module does not answer"
    await output.set_level(0)  # never raises for a hardware fault
    assert output.level == 0 and output.history[-1][1] == 0
    assert output.physical_level == 80
    output.repair()
    assert fault_of(output) is None and output.physical_level == 0


async def test_output_self_test_switches_off_on_and_back() -> None:
    now = SteppedTime()
    output = SimOutput("z", LuminaireModel(rated_w=60.0), now)
    await output.set_level(40)
    result = await output.self_test(hold_s=0)
    assert result.ok and result.problem is None and result.name == "z"
    assert [level for _, level in output.history] == [0, 40, 0, 100, 40]
    assert output.level == 40
    output.break_driver("relay board unplugged")
    result = await output.self_test(hold_s=0)
    assert not result.ok and result.problem == "relay board unplugged"
    await output.close()
    await output.close()


# --------------------------------------------------------------------------------------------
# the meter


def pzem_counter_ok(reading: MeterReading, expected_wh: float) -> bool:
    """The 1 Wh counter shows the integral rounded down (float slack aside)."""
    shown_wh = reading.energy_kwh * 1000
    return expected_wh - 1 - 1e-6 <= shown_wh <= expected_wh + 1e-6


async def test_the_meter_counter_is_the_integral_of_its_outputs_over_a_long_night(
    clock: ManualClock,
) -> None:
    models = [LuminaireModel(rated_w=w, standby_w=0.5) for w in (60.0, 120.0, 35.0)]
    outputs = [SimOutput(f"z{i}", m, clock.now) for i, m in enumerate(models)]
    meter = SimMeter(
        "m", outputs, clock.now, max_power_w=1.25 * sum(m.rated_w for m in models), seed=1
    )
    _: Meter = meter
    assert isinstance(meter, Meter)
    rng = random.Random(4)
    levels = [0, 0, 0]
    alive = [1.0, 1.0, 1.0]
    expected_wh = 0.0
    next_read = clock.now() + timedelta(hours=1)
    end = clock.now() + timedelta(hours=14)
    failed = False
    readings = 0
    while clock.now() < end:
        seconds = rng.uniform(10, 1200)
        power = sum(a * m.power_w(lv) for a, m, lv in zip(alive, models, levels, strict=True))
        if clock.now() + timedelta(seconds=seconds) >= next_read:
            # read on the hour, at a time the test knows the power for
            until = (next_read - clock.now()).total_seconds()
            await clock.advance_to(next_read)
            expected_wh += power * until / 3600
            reading = await meter.read()
            readings += 1
            assert pzem_counter_ok(reading, expected_wh), (reading.energy_kwh, expected_wh)
            assert reading.power == pytest.approx(power, abs=0.05)
            assert reading.counter_break is None and meter.fault is None
            seconds -= until
            next_read += timedelta(hours=1)
        await clock.advance(seconds)
        expected_wh += power * seconds / 3600
        i = rng.randrange(3)
        levels[i] = rng.choice([0, 10, 20, 35, 50, 70, 100])
        await outputs[i].set_level(levels[i])
        if not failed and clock.now() > end - timedelta(hours=7):
            outputs[1].fail_lamps(0.5)
            alive[1] = 0.5
            failed = True
    assert readings == 14 and failed
    assert expected_wh > 500  # the night drew enough to make a wrong integral show


async def test_meter_readings_hold_together(clock: ManualClock) -> None:
    model = LuminaireModel(rated_w=100.0)
    outputs = [SimOutput(f"z{i}", model, clock.now) for i in range(2)]
    meter = SimMeter("m", outputs, clock.now, max_power_w=250.0, seed=3, counter_kwh=1234.5)
    off = await meter.read()
    assert (off.power, off.current, off.power_factor) == (0.0, 0.0, 0.0)
    assert off.energy_kwh == pytest.approx(1234.5)
    await outputs[0].set_level(100)
    await outputs[1].set_level(10)
    await clock.advance(3600)
    r = await meter.read()
    p0, p1 = model.power_w(100), model.power_w(10)
    assert r.power == pytest.approx(p0 + p1, abs=0.05)
    apparent = p0 / model.power_factor(100) + p1 / model.power_factor(10)
    assert r.power_factor == pytest.approx((p0 + p1) / apparent, abs=0.005)
    assert r.current == pytest.approx(apparent / r.voltage, abs=0.0005)
    assert abs(r.voltage - 230.0) < 6 and r.frequency == 50.0
    assert pzem_counter_ok(r, 1234.5e3 + p0 + p1)
    assert r.ts == clock.now()


async def test_meter_noise_is_seeded(clock: ManualClock) -> None:
    async def voltages(seed: int) -> list[float]:
        meter = SimMeter("m", [], clock.now, max_power_w=100.0, seed=seed)
        return [(await meter.read()).voltage for _ in range(5)]

    assert await voltages(8) == await voltages(8)
    assert await voltages(8) != await voltages(9)


async def test_a_silent_meter_raises_device_fault_until_it_answers_again(
    clock: ManualClock,
) -> None:
    meter = SimMeter("cabinet", [], clock.now, max_power_w=100.0, seed=0)
    meter.go_silent()
    with pytest.raises(DeviceFault, match="meter cabinet does not answer"):
        await meter.read()
    assert meter.fault is not None and "does not answer" in meter.fault
    result = await meter.self_test()
    assert not result.ok and result.problem is not None and "does not answer" in result.problem
    meter.answer_again()
    assert fault_of(meter) is None
    await meter.read()
    assert (await meter.self_test()).ok


async def test_a_counter_reset_is_held_back_then_passed_on_as_a_reset(clock: ManualClock) -> None:
    output = SimOutput("z", LuminaireModel(rated_w=100.0), clock.now)
    meter = SimMeter("m", [output], clock.now, max_power_w=125.0, seed=0)
    await output.set_level(100)
    await clock.advance(2 * 3600)
    assert (await meter.read()).energy_kwh == pytest.approx(0.2)
    meter.reset_counter()
    await clock.advance(60)
    for _ in range(2):
        with pytest.raises(ImplausibleReading, match="went back"):
            await meter.read()
        assert meter.fault is not None and "went back" in meter.fault
        await clock.advance(60)
    confirmed = await meter.read()
    assert confirmed.counter_break == "reset" and meter.fault is None
    assert pzem_counter_ok(confirmed, 100.0 * 180 / 3600)
    await clock.advance(60)
    assert (await meter.read()).counter_break is None


async def test_a_counter_that_leaps_forward_is_passed_on_as_a_jump(clock: ManualClock) -> None:
    meter = SimMeter("m", [], clock.now, max_power_w=100.0, seed=0, counter_kwh=5.0)
    await meter.read()
    meter.set_counter(900.0)  # a replaced meter
    breaks = []
    for _ in range(3):
        await clock.advance(60)
        try:
            breaks.append((await meter.read()).counter_break)
        except ImplausibleReading:
            breaks.append(None)
    assert breaks == [None, None, "jump"]


async def test_an_injected_negative_power_is_flagged_and_not_passed_on(clock: ManualClock) -> None:
    output = SimOutput("z", LuminaireModel(rated_w=100.0), clock.now)
    meter = SimMeter("m", [output], clock.now, max_power_w=125.0, seed=0)
    await output.set_level(100)
    meter.inject_reading(power=-50.0)
    with pytest.raises(ImplausibleReading, match="negative"):
        await meter.read()
    assert meter.fault is not None and "negative" in meter.fault
    meter.answer_again()  # it never stopped answering: the fault stands until a good read
    assert meter.fault is not None
    reading = await meter.read()  # the injection was for one read only
    assert reading.power == pytest.approx(100.0) and fault_of(meter) is None
    with pytest.raises(TypeError, match="watts"):
        meter.inject_reading(watts=3)


async def test_a_closed_meter_does_not_answer(clock: ManualClock) -> None:
    meter = SimMeter("m", [], clock.now, max_power_w=100.0)
    assert meter.identify().kind == "sim" and "m" in repr(meter)
    await meter.close()
    await meter.close()
    with pytest.raises(DeviceFault):
        await meter.read()


# --------------------------------------------------------------------------------------------
# passers-by


def passers(
    clock: ManualClock, *, seed: int | None = 1, per_hour: float = 12.0, **options: float
) -> SimPassersBy:
    return SimPassersBy("z/pir", clock, passers_per_hour=per_hour, seed=seed, tz=BANGKOK, **options)


def test_daily_shape_averages_one_and_is_busy_in_the_evening() -> None:
    assert len(DAILY_SHAPE) == 24
    assert sum(DAILY_SHAPE) / 24 == pytest.approx(1.0)
    assert min(DAILY_SHAPE[17:23]) > 1.2
    assert max(DAILY_SHAPE[1:6]) < 0.35


def test_passers_are_the_same_for_a_seed_and_differ_between_seeds(clock: ManualClock) -> None:
    end = T0 + timedelta(days=2)
    first = passers(clock, seed=5).arrivals(T0, end)
    assert first == passers(clock, seed=5).arrivals(T0, end)
    assert first != passers(clock, seed=6).arrivals(T0, end)
    assert first == sorted(first) and all(T0 <= at < end for at in first)
    unseeded = passers(clock, seed=None)
    assert unseeded.arrivals(T0, end) == unseeded.arrivals(T0, end)


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0, 3 * 86400),
    ab=st.floats(0, 86400),
    bc=st.floats(0, 86400),
    min_active_s=st.sampled_from([0.0, 1.5]),
)
def test_arrivals_do_not_depend_on_how_time_is_sliced(
    a: float, ab: float, bc: float, min_active_s: float
) -> None:
    sensor = SimPassersBy(
        "pir",
        ManualClock(T0),
        passers_per_hour=20,
        seed=11,
        tz=BANGKOK,
        min_active_s=min_active_s,
        false_triggers_per_hour=5,
    )
    start = T0 + timedelta(seconds=a)
    middle = start + timedelta(seconds=ab)
    end = middle + timedelta(seconds=bc)
    whole = sensor.arrivals(start, end)
    assert whole == sensor.arrivals(start, middle) + sensor.arrivals(middle, end)
    # a fresh instance (empty cache), asked only the second half, agrees
    fresh = SimPassersBy(
        "pir",
        ManualClock(T0),
        passers_per_hour=20,
        seed=11,
        tz=BANGKOK,
        min_active_s=min_active_s,
        false_triggers_per_hour=5,
    )
    assert fresh.arrivals(middle, end) == [at for at in whole if at >= middle]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_passers_come_at_the_mean_rate_and_follow_the_daily_shape(
    clock: ManualClock, seed: int
) -> None:
    per_hour, days = 12.0, 60
    start = datetime(2026, 1, 1, tzinfo=BANGKOK)
    events = passers(clock, seed=seed, per_hour=per_hour).arrivals(
        start, start + timedelta(days=days)
    )
    expected = per_hour * 24 * days
    # a Poisson count: within 4.5 standard deviations, a bound a correct model misses ~1e-5
    assert abs(len(events) - expected) < 4.5 * math.sqrt(expected)
    by_hour = [0] * 24
    for at in events:
        by_hour[at.astimezone(BANGKOK).hour] += 1
    for hour, count in enumerate(by_hour):
        mean = per_hour * DAILY_SHAPE[hour] * days
        assert abs(count - mean) < 4.5 * math.sqrt(mean) + 1, (hour, count, mean)
    assert by_hour[19] > 10 * by_hour[3]


def test_the_rate_follows_local_time(clock: ManualClock) -> None:
    sensor = passers(clock, per_hour=10.0)
    evening = datetime(2026, 11, 21, 19, 30, tzinfo=BANGKOK)
    night = datetime(2026, 11, 22, 3, 30, tzinfo=BANGKOK)
    assert sensor.rate_per_hour(evening) == pytest.approx(10.0 * DAILY_SHAPE[19])
    assert sensor.rate_per_hour(night.astimezone(UTC)) == pytest.approx(10.0 * DAILY_SHAPE[3])
    with pytest.raises(ValueError, match="timezone-aware"):
        sensor.arrivals(datetime(2026, 1, 1), datetime(2026, 1, 2))


def test_a_minimum_active_time_filters_false_triggers_and_delays_events(
    clock: ManualClock,
) -> None:
    end = T0 + timedelta(days=3)
    clean = passers(clock, seed=9).arrivals(T0, end)
    noisy = passers(clock, seed=9, false_triggers_per_hour=6.0).arrivals(T0, end)
    filtered = passers(clock, seed=9, false_triggers_per_hour=6.0, min_active_s=1.0)
    assert set(clean) < set(noisy)
    assert len(noisy) - len(clean) > 6 * 72 * 0.7
    one_s = timedelta(seconds=1)
    assert filtered.arrivals(T0 + one_s, end + one_s) == [at + one_s for at in clean]


async def test_events_are_delivered_on_the_clock_in_time_order(clock: ManualClock) -> None:
    sensor = passers(clock, per_hour=30.0)
    _: MotionInput = sensor
    assert isinstance(sensor, MotionInput)
    seen: list[tuple[MotionEvent, datetime]] = []
    also: list[MotionEvent] = []
    sensor.subscribe(lambda event: seen.append((event, clock.now())))
    sensor.subscribe(also.append)
    start = clock.now()
    await clock.advance(3 * 3600)
    expected = sensor.arrivals(start, clock.now())
    assert len(expected) > 20
    assert [event.at for event, _ in seen] == expected
    assert all(event.at == when and event.sensor == "z/pir" for event, when in seen)
    assert [event for event, _ in seen] == also
    await sensor.close()
    await sensor.close()
    assert clock.next_wakeup is None
    await clock.advance(3 * 3600)
    assert len(seen) == len(expected)
    with pytest.raises(RuntimeError, match="closed"):
        sensor.subscribe(also.append)


async def test_a_failing_subscriber_does_not_stop_the_others(clock: ManualClock) -> None:
    sensor = passers(clock, per_hour=30.0)
    seen: list[MotionEvent] = []

    def broken(event: MotionEvent) -> None:
        raise RuntimeError("subscriber bug")

    sensor.subscribe(broken)
    sensor.subscribe(seen.append)
    await clock.advance(3600)
    assert len(seen) == len(sensor.arrivals(clock.now() - timedelta(hours=1), clock.now()))
    await sensor.close()


async def test_a_broken_sensor_loses_events_until_repaired(clock: ManualClock) -> None:
    sensor = passers(clock, per_hour=30.0)
    seen: list[MotionEvent] = []
    sensor.subscribe(seen.append)
    start = clock.now()
    await clock.advance(3600)
    sensor.break_sensor("PIR cable cut")
    assert sensor.fault == "PIR cable cut"
    await clock.advance(3600)
    sensor.repair()
    await clock.advance(3600)
    hour = timedelta(hours=1)
    expected = sensor.arrivals(start, start + hour) + sensor.arrivals(
        start + 2 * hour, start + 3 * hour
    )
    assert [event.at for event in seen] == expected
    await sensor.close()


async def test_passers_by_self_test_waits_on_the_clock(clock: ManualClock) -> None:
    sensor = passers(clock, per_hour=30.0)
    first = sensor.arrivals(clock.now(), clock.now() + timedelta(hours=1))[0]
    task = asyncio.create_task(sensor.self_test(timeout_s=3600))
    await settle()
    assert not task.done()
    await clock.advance_to(first)
    result = await task
    assert result.ok and result.problem is None and f"{first:%H:%M:%S}" in result.steps[-1]
    empty = passers(clock, per_hour=0.0)
    task = asyncio.create_task(empty.self_test(timeout_s=600))
    await clock.advance(600)
    result = await task
    assert not result.ok and result.problem is not None and "no motion" in result.problem
    sensor.break_sensor("lens painted over")
    result = await sensor.self_test()
    assert not result.ok and result.problem == "lens painted over"
    identity = sensor.identify()
    assert (identity.kind, identity.where) == ("sim", "simulation") and "z/pir" in repr(sensor)


async def test_no_passers_keep_the_sensor_quiet_without_blocking_the_loop(
    clock: ManualClock,
) -> None:
    sensor = passers(clock, per_hour=0.0)
    seen: list[MotionEvent] = []
    sensor.subscribe(seen.append)
    await clock.advance(2 * 86400)
    assert seen == []
    await sensor.close()


# --------------------------------------------------------------------------------------------
# the photocell


def test_clear_sky_lux_rises_with_the_sun_through_twilight() -> None:
    elevations = [e / 4 for e in range(-80, 361)]
    lux = [clear_sky_lux(e) for e in elevations]
    assert all(a < b for a, b in itertools.pairwise(lux))
    assert clear_sky_lux(0) == pytest.approx(400.0)
    assert clear_sky_lux(-6) == pytest.approx(3.0)
    assert clear_sky_lux(-1e-9) == pytest.approx(clear_sky_lux(1e-9))
    assert clear_sky_lux(-12) < 0.01
    assert 8e4 < clear_sky_lux(90) < 1.3e5


def falling_then_rising(start: datetime, deg_per_min: float = 0.1) -> Callable[[datetime], float]:
    """From +6 deg at `start`, down to -6 deg after two hours, back up over the next two."""

    def elevation(at: datetime) -> float:
        minutes = (at - start).total_seconds() / 60
        return 6 - deg_per_min * min(minutes, 240 - minutes)

    return elevation


async def test_the_photocell_goes_dark_below_and_light_above_the_hysteresis_band(
    clock: ManualClock,
) -> None:
    start = clock.now()
    elevation = falling_then_rising(start)
    cell = SimPhotocell("z/cell", clock, elevation=elevation, check_every_s=60)
    _: LightInput = cell
    assert isinstance(cell, LightInput)
    changes: list[LightReading] = []
    cell.subscribe(changes.append)
    first = cell.read()
    assert first is not None and not first.dark and first.lux == pytest.approx(clear_sky_lux(6))
    await clock.advance(4 * 3600)
    # down through -2 deg after 80 min; up through -1 deg after 240 - 70 = 170 min
    assert [(c.dark, c.at - start) for c in changes] == [
        (True, timedelta(minutes=81)),
        (False, timedelta(minutes=171)),
    ]
    assert changes[0].lux == pytest.approx(clear_sky_lux(elevation(changes[0].at)))
    await cell.close()
    await cell.close()
    assert clock.next_wakeup is None


@pytest.mark.parametrize(("hysteresis_deg", "changes_at_most"), [(1.0, 1), (0.0, 10)])
async def test_hysteresis_keeps_a_wavering_sky_from_chattering(
    clock: ManualClock, hysteresis_deg: float, changes_at_most: int
) -> None:
    start = clock.now()

    def wavering(at: datetime) -> float:
        minutes = (at - start).total_seconds() / 60
        return -2.0 + 0.4 * math.sin(minutes / 7) - minutes / 6000

    cell = SimPhotocell("c", clock, elevation=wavering, hysteresis_deg=hysteresis_deg)
    changes: list[LightReading] = []
    cell.subscribe(changes.append)
    await clock.advance(3 * 3600)
    await cell.close()
    assert 1 <= len(changes) <= changes_at_most
    if hysteresis_deg == 0:
        assert len(changes) > 4  # without hysteresis it does chatter: the test can fail


async def test_the_photocell_follows_the_real_sun(clock: ManualClock) -> None:
    observer = Observer(latitude=17.155, longitude=104.147)
    cell = SimPhotocell(
        "c", clock, elevation=lambda at: astral_elevation(observer, at), check_every_s=60
    )
    changes: list[LightReading] = []
    cell.subscribe(changes.append)
    await clock.advance(86400)  # 10:00 to 10:00 local
    await cell.close()
    dusk = sun(observer, date(2026, 11, 21), tzinfo=BANGKOK)["sunset"]
    dawn = sun(observer, date(2026, 11, 22), tzinfo=BANGKOK)["sunrise"]
    assert [c.dark for c in changes] == [True, False]
    # -2 deg is about 5 minutes after sunset here, -1 deg about a minute before sunrise
    assert dusk < changes[0].at < dusk + timedelta(minutes=12)
    assert dawn - timedelta(minutes=5) < changes[1].at < dawn + timedelta(minutes=2)


async def test_a_covered_cell_reads_dark_by_day(clock: ManualClock) -> None:
    cell = SimPhotocell("c", clock, elevation=lambda at: 45.0, check_every_s=60)
    changes: list[LightReading] = []
    cell.subscribe(changes.append)
    cell.cover_cell()
    reading = cell.read()
    assert reading is not None and reading.dark and reading.lux == 0.0 and cell.fault is None
    await clock.advance(60)
    cell.repair()
    await clock.advance(60)
    assert [(c.dark, c.at - T0) for c in changes] == [
        (True, timedelta(seconds=60)),
        (False, timedelta(seconds=120)),
    ]
    await cell.close()


async def test_a_broken_cell_cannot_be_read(clock: ManualClock) -> None:
    cell = SimPhotocell("c", clock, elevation=lambda at: 45.0)
    cell.break_sensor("photocell wire broken")
    assert cell.read() is None and cell.fault == "photocell wire broken"
    result = await cell.self_test(timeout_s=0)
    assert not result.ok and result.problem == "photocell wire broken"
    cell.repair()
    assert cell.read() is not None and cell.fault is None


async def test_photocell_self_test_reports_the_reading_and_a_change(clock: ManualClock) -> None:
    cell = SimPhotocell("c", clock, elevation=lambda at: 45.0, check_every_s=10)
    result = await cell.self_test(timeout_s=0)
    assert result.ok and result.steps[0].startswith("reads light")
    task = asyncio.create_task(cell.self_test(timeout_s=120))
    await clock.advance(30)
    cell.cover_cell()  # the technician's hand
    await clock.advance(30)
    result = await task
    assert result.ok and "changed" in result.steps[-1] and "dark" in result.steps[-1]
    cell.repair()
    task = asyncio.create_task(cell.self_test(timeout_s=60))
    await clock.advance(60)
    result = await task
    assert result.ok and result.steps[-1] == "no change within 60 s"
    identity = cell.identify()
    assert (identity.kind, identity.where) == ("sim", "simulation") and "'c'" in repr(cell)
