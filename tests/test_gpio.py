"""GPIO drivers on gpiozero's MockFactory: pin levels, PWM duty, inputs on the loop, faults."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from controller.clock import ManualClock
from drivers.base import Identity, LightInput, LightReading, MotionEvent, MotionInput, Output
from drivers.curves import DimmingCurve
from drivers.errors import HardwareConfigError
from drivers.gpio import (
    INSTALL_LGPIO,
    GpioPhotocell,
    GpioPir,
    GpioPwmDimmer,
    GpioRelay,
    claim_failure,
    pin_factory,
)

# Short real times keep the file fast; the waits below allow for a slow CI machine.
MIN_ACTIVE_S = 0.05
DEBOUNCE_S = 0.05
RETRY_S = 0.05
SETTLE_S = 0.15  # comfortably longer than MIN_ACTIVE_S / DEBOUNCE_S / RETRY_S
WAIT_S = 2.0


def states(factory: MockFactory, pin: int) -> list[float]:
    """Every state the mock pin went through, starting with the one before it was claimed."""
    return [float(s.state) for s in factory.pin(pin).states]


async def wait_until(condition: Callable[[], bool], limit_s: float = WAIT_S) -> None:
    """Return once `condition()` holds; fail the test after `limit_s`."""
    async with asyncio.timeout(limit_s):
        while not condition():  # noqa: ASYNC110 - polls state that drivers change on callbacks
            await asyncio.sleep(0.005)


def fault(driver: Any) -> str | None:
    """`driver.fault`, read through a call so mypy does not keep an earlier narrowing."""
    return driver.fault  # type: ignore[no-any-return]


def relay(factory: MockFactory, *, active_high: bool = False, initial_level: int = 0) -> GpioRelay:
    return GpioRelay(
        "soi-7/gpio_relay",
        pin=17,
        active_high=active_high,
        initial_level=initial_level,
        pin_factory=factory,
    )


def dimmer(
    factory: MockFactory,
    curve: DimmingCurve | None = None,
    *,
    invert: bool = False,
    initial_level: int = 0,
    frequency_hz: int = 1000,
) -> GpioPwmDimmer:
    return GpioPwmDimmer(
        "soi-7/gpio_pwm",
        pin=18,
        frequency_hz=frequency_hz,
        curve=curve or DimmingCurve(),
        invert=invert,
        initial_level=initial_level,
        pin_factory=factory,
    )


def pir(
    factory: MockFactory, clock: ManualClock, *, active_high: bool = True, **kwargs: Any
) -> GpioPir:
    return GpioPir(
        "soi-7/motion",
        pin=4,
        active_high=active_high,
        min_active_s=kwargs.pop("min_active_s", MIN_ACTIVE_S),
        now=clock.now,
        pin_factory=factory,
        retry_s=RETRY_S,
        **kwargs,
    )


def photocell(
    factory: MockFactory, clock: ManualClock, *, dark_when: Any = "high", **kwargs: Any
) -> GpioPhotocell:
    return GpioPhotocell(
        "soi-7/light",
        pin=27,
        dark_when=dark_when,
        now=clock.now,
        pin_factory=factory,
        debounce_s=kwargs.pop("debounce_s", DEBOUNCE_S),
        retry_s=RETRY_S,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# relay


@pytest.mark.parametrize(
    ("active_high", "initial_level", "pin_state"),
    [
        (False, 0, 1.0),  # active-low board, relay off: pin HIGH
        (False, 100, 0.0),  # active-low board, relay on: pin LOW
        (True, 0, 0.0),
        (True, 40, 1.0),
    ],
)
def test_relay_is_claimed_at_its_initial_state_without_a_glitch(
    gpio_pins: MockFactory, active_high: bool, initial_level: int, pin_state: float
) -> None:
    driver = relay(gpio_pins, active_high=active_high, initial_level=initial_level)
    pin = gpio_pins.pin(17)
    assert pin.function == "output"
    assert pin.state == pin_state
    # After the state before the claim, the pin only ever had the initial state.
    assert all(state == pin_state for state in states(gpio_pins, 17)[1:])
    assert driver.fault is None
    assert driver.level == initial_level


async def test_active_low_relay_switches_with_the_pin_low(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=False)
    await driver.set_level(60)
    assert gpio_pins.pin(17).state == 0
    assert driver.level == 60
    await driver.set_level(0)
    assert gpio_pins.pin(17).state == 1
    assert states(gpio_pins, 17)[1:] == [1.0, 0.0, 1.0]


async def test_active_high_relay_switches_with_the_pin_high(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=True)
    await driver.set_level(1)
    assert gpio_pins.pin(17).state == 1
    await driver.set_level(0)
    assert gpio_pins.pin(17).state == 0


@pytest.mark.parametrize("level", [-1, 101, 50.5, True, "on"])
async def test_a_bad_level_is_refused_and_changes_nothing(
    gpio_pins: MockFactory, level: Any
) -> None:
    driver = relay(gpio_pins, initial_level=100)
    with pytest.raises(ValueError, match="0 to 100"):
        await driver.set_level(level)
    assert driver.level == 100
    assert gpio_pins.pin(17).state == 0


def test_relay_says_what_and_where_it_is(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=False, initial_level=100)
    identity = driver.identify()
    assert (identity.kind, identity.where) == ("gpio_relay", "GPIO17, active-low")
    assert "relay" in identity.model
    assert driver.switched is True
    assert isinstance(driver, Output)
    assert repr(driver) == "<GpioRelay 'soi-7/gpio_relay' GPIO17, active-low: level 100, on>"


async def test_a_pin_in_use_is_a_fault_that_clears_when_it_is_freed(
    gpio_pins: MockFactory,
) -> None:
    other = OutputDevice(17, pin_factory=gpio_pins)  # another program's hold on the pin
    driver = relay(gpio_pins, active_high=False, initial_level=100)
    assert driver.fault is not None
    assert "GPIO17 cannot be claimed" in driver.fault
    assert "free it or pick another pin" in driver.fault
    assert "fault" in repr(driver)

    await driver.set_level(0)  # still taken: no exception, the level is remembered
    assert driver.level == 0
    assert driver.fault is not None
    assert not driver.claimed

    other.close()
    await driver.set_level(100)
    assert fault(driver) is None
    assert gpio_pins.pin(17).function == "output"
    assert gpio_pins.pin(17).state == 0  # active-low: on


def test_a_pin_the_board_does_not_have_is_a_fault(gpio_pins: MockFactory) -> None:
    driver = GpioRelay("x", pin=99, active_high=True, initial_level=0, pin_factory=gpio_pins)
    assert driver.fault is not None
    assert "no GPIO99" in driver.fault
    assert "BCM number" in driver.fault


async def test_a_pin_lost_while_in_use_is_claimed_again(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=False, initial_level=0)
    driver._device.close()  # the pin goes away under the driver
    await driver.set_level(100)
    assert driver.fault is not None
    assert "failed while switching the relay" in driver.fault
    await driver.set_level(100)
    assert fault(driver) is None
    assert gpio_pins.pin(17).state == 0


async def test_relay_self_test_switches_on_and_off_then_restores(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=False, initial_level=0)
    result = await driver.self_test(hold_s=0)
    assert result.ok, result
    assert result.problem is None
    assert result.steps == (
        "switched on (GPIO17 LOW), held 0 s",
        "switched off (GPIO17 HIGH), held 0 s",
        "put back off (level 0)",
    )
    assert states(gpio_pins, 17)[1:] == [1.0, 0.0, 1.0]
    assert driver.level == 0


async def test_relay_self_test_restores_on(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, active_high=True, initial_level=70)
    result = await driver.self_test(hold_s=0)
    assert result.ok
    assert gpio_pins.pin(17).state == 1
    assert states(gpio_pins, 17)[-2:] == [0.0, 1.0]


async def test_relay_self_test_reports_a_pin_in_use(gpio_pins: MockFactory) -> None:
    other = OutputDevice(17, pin_factory=gpio_pins)
    driver = relay(gpio_pins)
    result = await driver.self_test(hold_s=0)
    assert not result.ok
    assert result.problem is not None
    assert "cannot be claimed" in result.problem
    other.close()


async def test_close_is_idempotent_and_returns_the_pin_to_input(gpio_pins: MockFactory) -> None:
    driver = relay(gpio_pins, initial_level=100)
    await driver.close()
    await driver.close()
    assert gpio_pins.pin(17).function == "input"
    assert not driver.claimed
    assert "closed" in repr(driver)
    await driver.set_level(0)  # no exception: a fault
    assert driver.level == 0
    assert driver.fault is not None
    assert "closed" in driver.fault
    assert gpio_pins.pin(17).function == "input"
    assert not (await driver.self_test(hold_s=0)).ok
    # the pin is free for someone else
    OutputDevice(17, pin_factory=gpio_pins).close()


# --------------------------------------------------------------------------------------------
# PWM dimmer


@pytest.mark.parametrize(
    ("curve", "invert", "level", "pin_duty"),
    [
        (DimmingCurve(), False, 0, 0.0),
        (DimmingCurve(), False, 50, 0.5),
        (DimmingCurve(), False, 100, 1.0),
        (DimmingCurve(), False, 4, 0.1),  # below min level 10
        (DimmingCurve(min_level=15), False, 4, 0.15),
        (DimmingCurve(), True, 0, 1.0),  # inverted: off is full duty
        (DimmingCurve(), True, 30, 0.7),
        (DimmingCurve(), True, 100, 0.0),
        (DimmingCurve(interface="1-10V"), False, 50, 0.55),
        (DimmingCurve(interface="1-10V"), True, 50, 0.45),
        (DimmingCurve(interface="1-10V"), False, 0, 0.0),
        (DimmingCurve(kind="logarithmic", min_level=1), False, 67, 0.1),
        (DimmingCurve(kind="logarithmic", min_level=1), False, 100, 1.0),
        (DimmingCurve(kind="logarithmic", min_level=1), True, 34, 0.99),
        (DimmingCurve(kind="table", table=((10, 0.2), (100, 0.9))), False, 55, 0.55),
        (DimmingCurve(kind="table", table=((20, 0.3), (80, 0.7))), False, 90, 0.7),
        (DimmingCurve(kind="table", table=((20, 0.3), (80, 0.7))), True, 10, 0.7),
    ],
)
async def test_pwm_duty_goes_through_the_curve_and_inversion(
    gpio_pins: MockFactory, curve: DimmingCurve, invert: bool, level: int, pin_duty: float
) -> None:
    driver = dimmer(gpio_pins, curve, invert=invert, initial_level=100 if level < 50 else 0)
    await driver.set_level(level)
    assert gpio_pins.pin(18).state == pytest.approx(pin_duty)
    assert driver.pin_duty(level) == pytest.approx(pin_duty)
    assert driver.fault is None


@pytest.mark.parametrize("invert", [False, True])
async def test_pwm_keeps_every_whole_percent_through_lgpio_truncation(
    gpio_pins: MockFactory, invert: bool
) -> None:
    # gpiozero's lgpio pin sends int(duty * 100); 0.29 * 100 is 28.999... in floats.
    driver = dimmer(gpio_pins, DimmingCurve(min_level=0), invert=invert)
    for level in range(101):
        await driver.set_level(level)
        percent = int(gpio_pins.pin(18).state * 100)
        assert percent == (100 - level if invert else level), level


@pytest.mark.parametrize(("invert", "pin_duty"), [(False, 0.6), (True, 0.4)])
def test_pwm_starts_at_its_initial_level_and_frequency(
    gpio_pins: MockFactory, invert: bool, pin_duty: float
) -> None:
    driver = dimmer(gpio_pins, invert=invert, initial_level=60, frequency_hz=200)
    assert driver.fault is None
    pin = gpio_pins.pin(18)
    assert pin.function == "output"
    assert pin.frequency == 200
    assert pin.state == pytest.approx(pin_duty)
    assert states(gpio_pins, 18)[1:] == [pytest.approx(pin_duty)]


def test_pwm_says_what_and_where_it_is(gpio_pins: MockFactory) -> None:
    driver = dimmer(gpio_pins, invert=True)
    identity = driver.identify()
    assert identity.kind == "gpio_pwm"
    assert identity.where == "GPIO18, PWM 1000 Hz, inverted, 0-10V, min 10 %"
    assert identity.model == "PWM into a 0-10V dimming module, linear curve"
    assert driver.switched is False
    assert isinstance(driver, Output)
    not_inverted = GpioPwmDimmer(
        "b",
        pin=12,
        frequency_hz=2000,
        curve=DimmingCurve(kind="logarithmic", interface="1-10V", min_level=15),
        invert=False,
        initial_level=0,
        pin_factory=gpio_pins,
    )
    assert not_inverted.identify().where == "GPIO12, PWM 2000 Hz, 1-10V, min 15 %"
    assert "pin duty 0.000" in repr(not_inverted)


async def test_pwm_self_test_ramps_through_min_50_100_and_restores(
    gpio_pins: MockFactory,
) -> None:
    driver = dimmer(gpio_pins, invert=True, initial_level=30)
    result = await driver.self_test(hold_s=0)
    assert result.ok, result
    assert result.steps == (
        "level 10 %: duty 10.0% (pin 90.0%, inverted), held 0 s",
        "level 50 %: duty 50.0% (pin 50.0%, inverted), held 0 s",
        "level 100 %: duty 100.0% (pin 0.0%, inverted), held 0 s",
        "put back to level 30 %: duty 30.0% (pin 70.0%, inverted)",
    )
    assert states(gpio_pins, 18)[1:] == pytest.approx([0.7, 0.9, 0.5, 0.0, 0.7])
    assert driver.level == 30


async def test_pwm_pin_in_use_recovers_on_the_next_set_level(gpio_pins: MockFactory) -> None:
    other = OutputDevice(18, pin_factory=gpio_pins)
    driver = dimmer(gpio_pins, initial_level=40)
    assert driver.fault is not None
    assert "GPIO18 cannot be claimed" in driver.fault
    other.close()
    await driver.set_level(80)
    assert fault(driver) is None
    assert gpio_pins.pin(18).state == pytest.approx(0.8)
    assert gpio_pins.pin(18).frequency == 1000


def test_pwm_on_a_pin_factory_without_pwm_is_a_fault() -> None:
    factory = MockFactory(pin_class=MockPin)
    try:
        driver = dimmer(factory)
        assert driver.fault is not None
        assert "cannot do PWM" in driver.fault
        assert "lgpio" in driver.fault
    finally:
        factory.close()
        factory.reset()


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (Exception("'bad PWM frequency'"), "GPIO18 cannot run PWM at this frequency"),
        (Exception("'GPIO busy'"), "used by another program"),
        (PermissionError(13, "Permission denied"), "sudo usermod -aG gpio"),
        (OSError(5, "Input/output error"), "check that lgpio is installed and works"),
    ],
)
def test_lgpio_errors_are_told_in_plain_words(error: Exception, says: str) -> None:
    # lgpio raises lgpio.error, whose text is the quoted error name; gpiozero passes it on.
    message = claim_failure(18, error)
    assert message.startswith("GPIO18 ")
    assert says in message


@pytest.mark.parametrize("frequency", [0, -5, float("nan")])
def test_a_bad_frequency_is_refused(gpio_pins: MockFactory, frequency: Any) -> None:
    with pytest.raises(ValueError, match="PWM frequency"):
        dimmer(gpio_pins, frequency_hz=frequency)


async def test_pwm_close_is_idempotent(gpio_pins: MockFactory) -> None:
    driver = dimmer(gpio_pins, initial_level=50)
    await driver.close()
    await driver.close()
    assert gpio_pins.pin(18).function == "input"
    await driver.set_level(20)
    assert driver.fault is not None
    assert driver.level == 20


# --------------------------------------------------------------------------------------------
# PIR


class Recorder:
    """A subscriber that notes what it got, on which thread and in which loop."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.threads: list[int] = []
        self.loops: list[asyncio.AbstractEventLoop] = []

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self.threads.append(threading.get_ident())
        self.loops.append(asyncio.get_running_loop())


@pytest.mark.parametrize("min_active_s", [MIN_ACTIVE_S, 0])
async def test_a_long_pulse_is_one_event_on_the_loop(
    gpio_pins: MockFactory, clock: ManualClock, min_active_s: float
) -> None:
    sensor = pir(gpio_pins, clock, min_active_s=min_active_s)
    seen = Recorder()
    sensor.subscribe(seen)
    pin = gpio_pins.pin(4)
    # Driven from another thread, as lgpio calls back from its own thread.
    await asyncio.to_thread(pin.drive_high)
    await wait_until(lambda: len(seen.items) == 1)
    await asyncio.sleep(SETTLE_S)  # still high: no second event
    await asyncio.to_thread(pin.drive_low)
    await asyncio.sleep(SETTLE_S)
    assert seen.items == [MotionEvent(sensor="soi-7/motion", at=clock.now())]
    assert seen.threads == [threading.get_ident()]
    assert seen.loops == [asyncio.get_running_loop()]
    assert sensor.last_event == seen.items[0]


async def test_a_pulse_shorter_than_min_active_is_no_event(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock, min_active_s=0.2)
    seen = Recorder()
    sensor.subscribe(seen)
    pin = gpio_pins.pin(4)
    pin.drive_high()
    await asyncio.sleep(0.02)
    pin.drive_low()
    await asyncio.sleep(0.3)
    assert seen.items == []


async def test_two_pulses_are_two_events(gpio_pins: MockFactory, clock: ManualClock) -> None:
    sensor = pir(gpio_pins, clock)
    seen = Recorder()
    sensor.subscribe(seen)
    pin = gpio_pins.pin(4)
    start = clock.now()
    for expected in (1, 2):
        pin.drive_high()
        await wait_until(lambda: len(seen.items) == expected)  # noqa: B023 - awaited here
        pin.drive_low()
        await clock.advance(60)
    await asyncio.sleep(SETTLE_S)
    assert [e.at for e in seen.items] == [start, start + timedelta(seconds=60)]


async def test_min_active_zero_accepts_every_rising_edge(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock, min_active_s=0)
    seen = Recorder()
    sensor.subscribe(seen)
    pin = gpio_pins.pin(4)
    pin.drive_high()
    await asyncio.sleep(0.01)
    pin.drive_low()
    await asyncio.sleep(0.01)
    assert len(seen.items) == 1


async def test_active_low_pir_is_pulled_up_and_fires_on_low(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock, active_high=False)
    pin = gpio_pins.pin(4)
    assert pin.pull == "up"  # an unconnected input reads inactive
    seen = Recorder()
    sensor.subscribe(seen)
    await asyncio.sleep(SETTLE_S)
    assert seen.items == []
    pin.drive_low()
    await wait_until(lambda: len(seen.items) == 1)
    assert sensor.identify().where == "GPIO4, active-low, min 0.05 s"


async def test_active_high_pir_is_pulled_down(gpio_pins: MockFactory, clock: ManualClock) -> None:
    sensor = pir(gpio_pins, clock)
    assert gpio_pins.pin(4).pull == "down"
    assert sensor.identify().kind == "gpio_pir"
    assert isinstance(sensor, MotionInput)


async def test_a_sensor_already_active_at_subscribe_is_an_event(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock)
    gpio_pins.pin(4).drive_high()
    seen = Recorder()
    sensor.subscribe(seen)
    await wait_until(lambda: len(seen.items) == 1)


async def test_every_subscriber_hears_even_when_one_fails(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock)

    def broken(event: MotionEvent) -> None:
        raise RuntimeError("a bug in a subscriber")

    seen = Recorder()
    sensor.subscribe(broken)
    sensor.subscribe(seen)
    gpio_pins.pin(4).drive_high()
    await wait_until(lambda: len(seen.items) == 1)


async def test_pir_pin_in_use_recovers_on_the_loop_timer(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    other = OutputDevice(4, pin_factory=gpio_pins)
    sensor = pir(gpio_pins, clock)
    assert sensor.fault is not None
    assert "GPIO4 cannot be claimed" in sensor.fault
    seen = Recorder()
    sensor.subscribe(seen)
    await asyncio.sleep(SETTLE_S)  # retries keep failing while the pin is taken
    assert sensor.fault is not None
    other.close()
    await wait_until(lambda: sensor.fault is None)
    assert gpio_pins.pin(4).pull == "down"
    gpio_pins.pin(4).drive_high()
    await wait_until(lambda: len(seen.items) == 1)


def test_an_input_follows_its_user_to_a_new_event_loop(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    # e.g. `streetlight commission` and then the daemon, each with asyncio.run()
    other = OutputDevice(4, pin_factory=gpio_pins)
    sensor = pir(gpio_pins, clock)
    first = Recorder()

    async def first_command() -> None:
        sensor.subscribe(first)  # the pin is taken: a retry timer on this loop
        await asyncio.sleep(0.01)

    asyncio.run(first_command())
    other.close()
    second = Recorder()

    async def second_command() -> None:
        sensor.subscribe(second)
        await wait_until(lambda: sensor.fault is None)
        gpio_pins.pin(4).drive_high()
        await wait_until(lambda: len(second.items) == 1)

    asyncio.run(second_command())
    assert first.items == []


async def test_pir_self_test_sees_motion(gpio_pins: MockFactory, clock: ManualClock) -> None:
    sensor = pir(gpio_pins, clock)
    pin = gpio_pins.pin(4)

    async def walk_past() -> None:
        await asyncio.sleep(0.02)
        await asyncio.to_thread(pin.drive_high)

    walker = asyncio.create_task(walk_past())
    result = await sensor.self_test(timeout_s=WAIT_S)
    await walker
    assert result.ok, result
    assert result.steps == (
        f"waiting up to {WAIT_S:g} s for motion on GPIO4",
        f"motion seen at {clock.now().isoformat(timespec='seconds')}",
    )


async def test_pir_self_test_without_motion_says_what_to_check(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock)
    result = await sensor.self_test(timeout_s=0.05)
    assert not result.ok
    assert result.problem == (
        "no motion seen in 0.05 s: walk in front of the sensor; check its 5 V supply and "
        "that its output is on GPIO4"
    )


async def test_closing_a_pir_ends_its_self_test(gpio_pins: MockFactory, clock: ManualClock) -> None:
    sensor = pir(gpio_pins, clock)
    test = asyncio.create_task(sensor.self_test(timeout_s=WAIT_S))
    await asyncio.sleep(0.01)
    await sensor.close()
    async with asyncio.timeout(0.5):  # well before the self-test's own timeout
        result = await test
    assert not result.ok
    assert result.problem is not None
    assert "is closed" in result.problem


async def test_pir_self_test_with_the_pin_taken(gpio_pins: MockFactory, clock: ManualClock) -> None:
    other = OutputDevice(4, pin_factory=gpio_pins)
    result = await pir(gpio_pins, clock).self_test(timeout_s=0.05)
    assert not result.ok
    assert result.problem is not None
    assert "cannot be claimed" in result.problem
    other.close()


async def test_pir_close_drops_a_pending_pulse_and_is_idempotent(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    sensor = pir(gpio_pins, clock)
    seen = Recorder()
    sensor.subscribe(seen)
    gpio_pins.pin(4).drive_high()
    await asyncio.sleep(0)  # the edge reached the loop; the pulse is not accepted yet
    await sensor.close()
    await sensor.close()
    await asyncio.sleep(SETTLE_S)
    assert seen.items == []
    assert gpio_pins.pin(4).function == "input"
    assert not (await sensor.self_test(timeout_s=0.01)).ok


# --------------------------------------------------------------------------------------------
# photocell


@pytest.mark.parametrize(
    ("dark_when", "drive", "dark"),
    [
        ("high", None, True),  # pulled up: a contact that opens at dark, or a broken wire
        ("high", "low", False),  # daylight closes the contact to GND
        ("low", None, False),
        ("low", "low", True),  # a contact that closes to GND at dark
    ],
)
def test_photocell_reads_dark_per_dark_when(
    gpio_pins: MockFactory, clock: ManualClock, dark_when: str, drive: str | None, dark: bool
) -> None:
    cell = photocell(gpio_pins, clock, dark_when=dark_when)
    pin = gpio_pins.pin(27)
    assert pin.pull == "up"
    if drive == "low":
        pin.drive_low()
    assert cell.read() == LightReading(sensor="soi-7/light", dark=dark, lux=None, at=clock.now())
    assert cell.identify() == Identity(
        kind="gpio_photocell",
        model="photocell contact on a GPIO pin",
        where=f"GPIO27, dark when {dark_when.upper()}, pull up",
    )


def test_photocell_contact_switching_3v3_takes_a_pull_down(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    cell = photocell(gpio_pins, clock, dark_when="high", pull="down")
    pin = gpio_pins.pin(27)
    assert pin.pull == "down"
    reading = cell.read()
    assert reading is not None
    assert not reading.dark
    pin.drive_high()
    reading = cell.read()
    assert reading is not None
    assert reading.dark


@pytest.mark.parametrize("debounce_s", [DEBOUNCE_S, 0])
async def test_photocell_change_reaches_subscribers_on_the_loop(
    gpio_pins: MockFactory, clock: ManualClock, debounce_s: float
) -> None:
    cell = photocell(gpio_pins, clock, debounce_s=debounce_s)
    seen = Recorder()
    cell.subscribe(seen)
    pin = gpio_pins.pin(27)
    # Driven from another thread, as lgpio calls back from its own thread.
    await asyncio.to_thread(pin.drive_low)  # morning: the contact closes
    await wait_until(lambda: len(seen.items) == 1)
    await asyncio.to_thread(pin.drive_high)  # evening: it opens
    await wait_until(lambda: len(seen.items) == 2)
    assert [r.dark for r in seen.items] == [False, True]
    assert seen.threads == [threading.get_ident()] * 2
    assert seen.loops == [asyncio.get_running_loop()] * 2
    assert isinstance(cell, LightInput)


async def test_photocell_chatter_is_debounced(gpio_pins: MockFactory, clock: ManualClock) -> None:
    cell = photocell(gpio_pins, clock, debounce_s=0.15)
    seen = Recorder()
    cell.subscribe(seen)
    pin = gpio_pins.pin(27)
    # Dawn: the contact chatters, every state shorter than the debounce time, and falls back
    # to dark. 0.15 s after the first edge it reads light, which must not count.
    for state, hold_s in (("low", 0.04), ("high", 0.07), ("low", 0.07), ("high", 0.25)):
        getattr(pin, f"drive_{state}")()
        await asyncio.sleep(hold_s)
    assert seen.items == []
    assert is_dark(cell)

    pin.drive_low()  # and then it stays light
    assert is_dark(cell)  # not held long enough yet: subscribers still know "dark"
    await wait_until(lambda: len(seen.items) == 1)
    assert not is_dark(cell)
    assert [r.dark for r in seen.items] == [False]


def is_dark(cell: GpioPhotocell) -> bool:
    reading = cell.read()
    assert reading is not None
    return reading.dark


async def test_photocell_self_test_sees_a_change(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    cell = photocell(gpio_pins, clock, debounce_s=0)
    pin = gpio_pins.pin(27)

    async def shine_a_torch() -> None:
        await asyncio.sleep(0.02)
        await asyncio.to_thread(pin.drive_low)

    torch = asyncio.create_task(shine_a_torch())
    result = await cell.self_test(timeout_s=WAIT_S)
    await torch
    assert result.ok, result
    assert result.steps == (
        "GPIO27 says dark",
        f"waiting up to {WAIT_S:g} s for it to change",
        "changed to light",
    )


@pytest.mark.parametrize(
    ("drive", "advice"),
    [(None, "shine a torch on it"), ("low", "cover it")],
)
async def test_photocell_self_test_without_change_says_what_to_do(
    gpio_pins: MockFactory, clock: ManualClock, drive: str | None, advice: str
) -> None:
    cell = photocell(gpio_pins, clock)
    if drive == "low":
        gpio_pins.pin(27).drive_low()
    result = await cell.self_test(timeout_s=0.05)
    assert not result.ok
    assert result.problem is not None
    assert result.problem.startswith(f"no change seen in 0.05 s: {advice} for more than 0.05 s")
    assert result.problem.endswith("its contact is wired between GPIO27 and GND")


async def test_photocell_pin_in_use_recovers_and_tells_its_state(
    gpio_pins: MockFactory, clock: ManualClock
) -> None:
    other = OutputDevice(27, pin_factory=gpio_pins)
    cell = photocell(gpio_pins, clock)
    assert cell.read() is None
    assert cell.fault is not None
    assert "GPIO27 cannot be claimed" in cell.fault
    assert "unknown" in repr(cell)
    seen = Recorder()
    cell.subscribe(seen)
    other.close()
    await wait_until(lambda: cell.fault is None)
    await wait_until(lambda: len(seen.items) == 1)  # from "unknown" to a known state
    assert seen.items[0].dark  # open contact, pulled up
    assert seen.threads == [threading.get_ident()]
    assert cell.read() is not None


async def test_photocell_close_is_idempotent(gpio_pins: MockFactory, clock: ManualClock) -> None:
    cell = photocell(gpio_pins, clock)
    await cell.close()
    await cell.close()
    assert cell.read() is None
    assert cell.fault is not None
    assert "closed" in cell.fault
    assert gpio_pins.pin(27).function == "input"
    assert "closed" in repr(cell)
    assert not (await cell.self_test(timeout_s=0.01)).ok


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dark_when": "dusk"}, "dark_when"),
        ({"pull": "auto"}, "pull"),
        ({"debounce_s": -1}, "debounce_s"),
    ],
)
def test_photocell_settings_that_cannot_work_are_refused(
    gpio_pins: MockFactory, clock: ManualClock, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        photocell(gpio_pins, clock, **kwargs)


# --------------------------------------------------------------------------------------------
# pin factory


async def test_mock_factory_drives_pwm() -> None:
    factory = pin_factory("mock")
    try:
        assert isinstance(factory, MockFactory)
        assert factory.pin_class is MockPWMPin
        driver = dimmer(factory, initial_level=50)
        assert driver.fault is None
        assert factory.pin(18).state == pytest.approx(0.5)
        await driver.close()
    finally:
        factory.close()


def test_an_unknown_pin_factory_says_which_exist() -> None:
    with pytest.raises(HardwareConfigError, match="unknown GPIO pin factory 'pigpiod'") as info:
        pin_factory("pigpiod")
    assert "'lgpio'" in str(info.value)
    assert "'mock'" in str(info.value)


@pytest.mark.parametrize("model", [None, "QEMU Virtual Machine\0"])
def test_auto_refuses_a_machine_that_is_not_a_pi(tmp_path: Path, model: str | None) -> None:
    path = tmp_path / "model"
    if model is not None:
        path.write_text(model)
    with pytest.raises(HardwareConfigError, match="not a Raspberry Pi"):
        pin_factory(model_path=path)


LGPIO_MISSING = importlib.util.find_spec("lgpio") is None
RPIGPIO_MISSING = importlib.util.find_spec("RPi") is None


@pytest.mark.skipif(not LGPIO_MISSING, reason="lgpio is installed here")
def test_lgpio_missing_gives_the_fix() -> None:
    with pytest.raises(HardwareConfigError) as info:
        pin_factory("lgpio")
    assert INSTALL_LGPIO in str(info.value)


@pytest.mark.skipif(not LGPIO_MISSING, reason="lgpio is installed here")
def test_a_pi_5_uses_lgpio_only(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_text("Raspberry Pi 5 Model B Rev 1.0\0")
    with pytest.raises(HardwareConfigError) as info:
        pin_factory(model_path=path)
    assert INSTALL_LGPIO in str(info.value)
    assert "RPi.GPIO" not in str(info.value)


@pytest.mark.skipif(not (LGPIO_MISSING and RPIGPIO_MISSING), reason="a GPIO library is here")
def test_an_older_pi_falls_back_to_rpigpio(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_text("Raspberry Pi 4 Model B Rev 1.5\0")
    with pytest.raises(HardwareConfigError) as info:
        pin_factory(model_path=path)
    message = str(info.value)
    assert "Raspberry Pi 4 Model B Rev 1.5" in message
    assert INSTALL_LGPIO in message
    assert "RPi.GPIO library cannot be used" in message


def test_lgpio_keeps_a_writable_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LG_WD", "restored-at-teardown")
    monkeypatch.delenv("LG_WD")
    monkeypatch.chdir(tmp_path)
    with contextlib.suppress(HardwareConfigError):
        pin_factory("lgpio")
    assert "LG_WD" not in os.environ  # lgpio may use the current directory


def test_lgpio_gets_a_private_directory_when_the_current_one_is_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LG_WD", "restored-at-teardown")
    monkeypatch.delenv("LG_WD")
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    # a working directory deleted under the process is unusable even for root (who may write
    # anywhere, so a read-only directory would not show it)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with contextlib.suppress(HardwareConfigError):
        pin_factory("lgpio")
    monkeypatch.chdir(tmp_path)
    work_dir = Path(os.environ["LG_WD"])
    assert work_dir.name.startswith("streetlight-lgpio-")
    assert os.access(work_dir, os.W_OK)
    work_dir.rmdir()
