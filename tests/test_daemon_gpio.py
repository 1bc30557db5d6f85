"""The daemon drives the GPIO header of deploy/examples/pi-gpio.toml on gpiozero MockFactory pins.

Pin states are what a relay board and a PWM-to-0-10 V module would see. Time is a ManualClock;
only the PIR's minimum active time (0.3 s, timed on the event loop as on a Pi) takes real time.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory

from controller.assemble import build
from controller.clock import ManualClock
from controller.commands.commission import commission
from controller.config_load import load_settings
from controller.daemon import Daemon
from controller.settings import MotionSettings, Settings
from tests.conftest import eventually

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "pi-gpio.toml"
BANGKOK = ZoneInfo("Asia/Bangkok")
RELAY, PWM, PIR, PHOTOCELL = 17, 18, 4, 27


def settings_for(tmp_path: Path, **zone_changes: Any) -> Settings:
    settings = load_settings(EXAMPLE, data_dir=tmp_path, mqtt={"enabled": False})
    zones = [zone.model_copy(update=zone_changes) for zone in settings.zones]
    return settings.model_copy(update={"zones": zones})


async def run(daemon: Daemon) -> asyncio.Task[None]:
    task = asyncio.create_task(daemon.run())
    await eventually(lambda: "soi-7" in daemon.states, "soi-7 decided", timeout_s=3.0)
    return task


async def stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    daemon.stop()
    await asyncio.wait_for(task, 5)


async def test_relay_and_inverted_pwm_follow_the_night(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    clock = ManualClock(datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK))
    daemon = build(settings_for(tmp_path), clock, pin_factory=gpio_pins)
    # claimed at the level the schedule wants now: on, from the first instant
    assert gpio_pins.pin(RELAY).state == 0  # active-low board: LOW = relay on
    assert gpio_pins.pin(PWM).state == 0.0  # inverting module: 0 % duty = 10 V = full light
    task = await run(daemon)
    assert daemon.states["soi-7"].level == 100
    # 22:00-22:10 the profile fades to 60 %: duty 0.4 after inversion
    await clock.advance_to(datetime(2026, 11, 21, 22, 30, tzinfo=BANGKOK))
    assert daemon.states["soi-7"].level == 60
    assert gpio_pins.pin(PWM).state == pytest.approx(0.4)
    assert gpio_pins.pin(PWM).frequency == 1000
    # at sunrise the relay opens first: HIGH = off
    await clock.advance_to(datetime(2026, 11, 22, 9, 0, tzinfo=BANGKOK))
    assert daemon.states["soi-7"].level == 0
    assert gpio_pins.pin(RELAY).state == 1
    await clock.advance_to(datetime(2026, 11, 22, 20, 0, tzinfo=BANGKOK))  # on again
    await stop(daemon, task)
    # a stopped unit leaves its lamps lit: the pins keep driving (a released pin would float,
    # and an active-low board with a pull-up would switch the lamps off)
    assert gpio_pins.pin(RELAY).function == "output" and gpio_pins.pin(RELAY).state == 0
    assert gpio_pins.pin(PWM).function == "output" and gpio_pins.pin(PWM).state == 0.0


async def test_a_passer_by_on_the_pir_raises_the_dimmed_street(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    motion = MotionSettings(level=100, rise_s=0, hold_s=60, fade_s=0)
    clock = ManualClock(datetime(2026, 11, 22, 1, 0, tzinfo=BANGKOK))  # after midnight: 30 %
    daemon = build(settings_for(tmp_path, motion=motion), clock, pin_factory=gpio_pins)
    task = await run(daemon)
    assert daemon.states["soi-7"].level == 30
    gpio_pins.pin(PIR).drive_high()
    await eventually(
        lambda: daemon.states["soi-7"].source == "motion", "raised by motion", timeout_s=3.0
    )
    assert daemon.states["soi-7"].level == 100
    assert gpio_pins.pin(PWM).state == 0.0
    gpio_pins.pin(PIR).drive_low()
    await clock.advance(61)
    assert daemon.states["soi-7"].level == 30
    await stop(daemon, task)


async def test_a_short_pir_glitch_raises_nothing(tmp_path: Path, gpio_pins: MockFactory) -> None:
    motion = MotionSettings(level=100, rise_s=0, hold_s=60, fade_s=0)
    clock = ManualClock(datetime(2026, 11, 22, 1, 0, tzinfo=BANGKOK))
    daemon = build(settings_for(tmp_path, motion=motion), clock, pin_factory=gpio_pins)
    task = await run(daemon)
    gpio_pins.pin(PIR).drive_high()
    await asyncio.sleep(0.05)  # well under min_active_s = 0.3 s
    gpio_pins.pin(PIR).drive_low()
    await asyncio.sleep(0.4)  # past the time the pulse would have been accepted
    assert daemon.states["soi-7"].source == "schedule"
    await stop(daemon, task)


async def test_a_relay_pin_taken_by_another_program_fails_safe_then_recovers(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    intruder = OutputDevice(RELAY, pin_factory=gpio_pins)  # someone else holds GPIO17
    clock = ManualClock(datetime(2026, 11, 21, 12, 0, tzinfo=BANGKOK))  # daytime: off
    daemon = build(settings_for(tmp_path), clock, pin_factory=gpio_pins)
    task = await run(daemon)
    assert daemon.states["soi-7"].source == "failsafe"
    fault = daemon.outputs["soi-7"].fault
    assert fault is not None and "GPIO17" in fault
    assert gpio_pins.pin(PWM).state == 0.0  # the dimmer it can drive is at full (fail-safe)
    intruder.close()
    await clock.advance(11)
    await eventually(
        lambda: daemon.states["soi-7"].source == "schedule", "back on schedule", timeout_s=3.0
    )
    assert daemon.outputs["soi-7"].fault is None
    assert gpio_pins.pin(RELAY).state == 1  # daytime: relay off (active-low: HIGH)
    await stop(daemon, task)


async def test_zones_sharing_one_photocell_share_one_driver(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    settings = load_settings(EXAMPLE, data_dir=tmp_path, mqtt={"enabled": False})
    (zone,) = settings.zones
    relay = zone.outputs[0].model_copy(update={"pin": 22})
    twin = zone.model_copy(update={"id": "soi-7-east", "outputs": [relay], "motion_inputs": []})
    settings = settings.model_copy(update={"zones": [zone, twin]})
    clock = ManualClock(datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK))
    daemon = build(settings, clock, pin_factory=gpio_pins)
    lights = daemon.hardware.light_inputs
    assert lights["soi-7"] is lights["soi-7-east"]
    assert lights["soi-7"].fault is None
    task = await run(daemon)
    await stop(daemon, task)


def test_commission_on_mock_pins_passes_when_the_technician_does_their_part(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        EXAMPLE.read_text().replace('data_dir = "/var/lib/streetlight"', f'data_dir = "{tmp_path}"')
    )
    out = io.StringIO()

    def technician() -> None:
        """Walks past the PIR when asked, then shines a torch on the photocell when asked."""
        deadline = time.monotonic() + 10
        while "walk in front of the sensor" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        gpio_pins.pin(PIR).drive_high()
        while "cover the cell" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        gpio_pins.pin(PHOTOCELL).drive_low()  # dark_when = "high": LOW is daylight

    helper = threading.Thread(target=technician)
    helper.start()
    code = commission(str(config), hold_s=0, wait_s=4, pin_factory=gpio_pins, out=out)
    helper.join()
    text = out.getvalue()
    assert code == 0, text
    for pin in ("GPIO17", "GPIO18", "GPIO4", "GPIO27"):
        assert pin in text
    assert text.count("PASS") == 3 and "FAIL" not in text


def test_commission_says_what_to_do_when_nobody_walks_past(
    tmp_path: Path, gpio_pins: MockFactory
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        EXAMPLE.read_text().replace('data_dir = "/var/lib/streetlight"', f'data_dir = "{tmp_path}"')
    )
    out = io.StringIO()
    code = commission(str(config), hold_s=0, wait_s=0.1, pin_factory=gpio_pins, out=out)
    text = out.getvalue()
    assert code == 1
    assert "GPIO4" in text.split("FAIL", 1)[1]  # the sensor's pin is named in the fix
