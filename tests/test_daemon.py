"""The daemon switches simulated luminaires on at dusk and off at dawn, on an injected clock."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.assemble import build
from controller.clock import ManualClock, settle
from controller.config_load import load_settings
from controller.daemon import Daemon
from controller.settings import Settings
from drivers.sim import SimOutput

SIM = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sim.toml"
BANGKOK = ZoneInfo("Asia/Bangkok")


@pytest.fixture
def lively(tmp_path: Path) -> Settings:
    """The example unit as it is: simulated passers-by trigger its motion sensors."""
    return load_settings(SIM, data_dir=tmp_path, mqtt={"enabled": False})


@pytest.fixture
def settings(lively: Settings) -> Settings:
    """The example unit without its sensors, so levels follow the schedule alone."""
    quiet: dict[str, object] = {"motion_inputs": [], "light_input": None}
    zones = [zone.model_copy(update=quiet) for zone in lively.zones]
    return lively.model_copy(update={"zones": zones})


def sim_output(daemon: Daemon, zone_id: str) -> SimOutput:
    (output,) = daemon.hardware.sim_outputs(zone_id)
    return output


async def test_zones_go_on_at_dusk_and_off_at_dawn(settings: Settings, clock: ManualClock) -> None:
    daemon = build(settings, clock)
    task = asyncio.create_task(daemon.run())
    await settle()
    assert {zone: sim_output(daemon, zone).level for zone in daemon.outputs} == {
        "soi-3": 0,
        "market": 0,
        "school-path": 0,
    }
    # Sunset in Sakon Nakhon on 2026-11-21 is at 17:27 (+07:00); soi-3 switches at sunset.
    await clock.advance_to(datetime(2026, 11, 21, 17, 26, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 0
    await clock.advance_to(datetime(2026, 11, 21, 17, 29, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 100
    assert daemon.states["soi-3"].source == "schedule"
    # school-path switches 10 minutes after sunset, to its profile's 20 %
    assert sim_output(daemon, "school-path").level == 0
    await clock.advance_to(datetime(2026, 11, 21, 17, 39, tzinfo=BANGKOK))
    assert sim_output(daemon, "school-path").level == 20
    # soi-3 fades from 100 to 60 % over ten minutes from 22:00, through every level between
    await clock.advance_to(datetime(2026, 11, 21, 22, 5, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 80
    await clock.advance_to(datetime(2026, 11, 21, 22, 11, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 60
    fade = [lvl for at, lvl in sim_output(daemon, "soi-3").history if at.hour == 15]  # 22:xx local
    assert fade == list(range(99, 59, -1))
    # Sunrise on the 22nd is at 06:11; soi-3 switches off then, market 10 minutes earlier.
    await clock.advance_to(datetime(2026, 11, 22, 6, 0, tzinfo=BANGKOK))
    assert sim_output(daemon, "market").level == 50  # dimmed since 23:30
    await clock.advance_to(datetime(2026, 11, 22, 6, 5, tzinfo=BANGKOK))
    assert sim_output(daemon, "market").level == 0
    assert sim_output(daemon, "soi-3").level == 80  # raised for the morning an hour before off
    await clock.advance_to(datetime(2026, 11, 22, 6, 13, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 0
    daemon.stop()
    await asyncio.wait_for(task, 5)


async def test_daemon_sleeps_until_the_next_change_instead_of_polling(
    settings: Settings, clock: ManualClock
) -> None:
    daemon = build(settings, clock)
    task = asyncio.create_task(daemon.run())
    await settle()
    wake = clock.next_wakeup
    assert wake is not None
    local = wake.astimezone(BANGKOK)
    assert local.date() == datetime(2026, 11, 21).date() and time(17, 26) < local.time() < time(
        17, 29
    )
    daemon.stop()
    await asyncio.wait_for(task, 5)


async def test_each_night_switches_again(settings: Settings, clock: ManualClock) -> None:
    daemon = build(settings, clock)
    task = asyncio.create_task(daemon.run())
    await clock.advance(3 * 86400)
    daemon.stop()
    await asyncio.wait_for(task, 5)
    history = sim_output(daemon, "soi-3").history
    pairs = list(itertools.pairwise(history))
    switch_ons = [at.astimezone(BANGKOK) for (_, was), (at, now) in pairs if was == 0 < now]
    switch_offs = [at.astimezone(BANGKOK) for (_, was), (at, now) in pairs if was > 0 == now]
    assert [t.day for t in switch_ons] == [21, 22, 23]
    assert [t.day for t in switch_offs] == [22, 23, 24]
    for on, off in zip(switch_ons, switch_offs, strict=True):
        assert timedelta(hours=11, minutes=30) < off - on < timedelta(hours=13)


async def test_stop_leaves_lamps_at_their_level_and_is_idempotent(
    settings: Settings, clock: ManualClock
) -> None:
    daemon = build(settings, clock)
    task = asyncio.create_task(daemon.run())
    await clock.advance_to(datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK))
    daemon.stop()
    daemon.stop()
    await asyncio.wait_for(task, 5)
    assert sim_output(daemon, "soi-3").level == 100


async def test_a_faulty_output_holds_its_zone_at_the_failsafe_level(
    settings: Settings, clock: ManualClock
) -> None:
    daemon = build(settings, clock)
    lamps = sim_output(daemon, "school-path")
    lamps.break_driver("dimmer module not answering")
    task = asyncio.create_task(daemon.run())
    await settle()
    assert source_of(daemon, "school-path") == "failsafe"
    assert lamps.level == 100  # its failsafe_level, in daylight too
    lamps.repair()  # the module answers again
    await clock.advance(11)  # a faulty zone looks again every 10 s
    assert source_of(daemon, "school-path") == "schedule"
    assert lamps.level == 0  # 10:00 in the morning: off
    daemon.stop()
    await asyncio.wait_for(task, 5)


def source_of(daemon: Daemon, zone_id: str) -> str:
    return daemon.states[zone_id].source


async def test_a_failing_output_does_not_stop_other_zones(
    settings: Settings, clock: ManualClock
) -> None:
    daemon = build(settings, clock)
    sim_output(daemon, "market").break_driver("relay board not answering")
    task = asyncio.create_task(daemon.run())
    await clock.advance_to(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    assert sim_output(daemon, "soi-3").level == 100
    assert source_of(daemon, "market") == "failsafe"
    assert not task.done()
    daemon.stop()
    await asyncio.wait_for(task, 5)


async def test_two_daemons_run_in_one_process(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    other = load_settings(SIM, data_dir=tmp_path / "other", unit={"id": "skn-002"})
    first, second = build(settings, clock), build(other, clock)
    tasks = [asyncio.create_task(d.run()) for d in (first, second)]
    await clock.advance_to(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    assert sim_output(first, "soi-3").level == sim_output(second, "soi-3").level == 100
    assert sim_output(first, "soi-3") is not sim_output(second, "soi-3")
    for daemon in (first, second):
        daemon.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


async def test_passers_by_raise_a_zone_and_its_neighbour(
    lively: Settings, clock: ManualClock
) -> None:
    daemon = build(lively, clock)
    task = asyncio.create_task(daemon.run())
    # after dusk soi-3 is at 100 % anyway; school-path (its neighbour, 20 % by schedule) and
    # market are raised by motion now and then
    await clock.advance_to(datetime(2026, 11, 21, 21, 0, tzinfo=BANGKOK))
    path = sim_output(daemon, "school-path")
    evening = [lvl for at, lvl in path.history if at.astimezone(BANGKOK).hour >= 18]
    assert 100 in evening and 20 in evening  # raised by someone passing, and back again
    daemon.stop()
    await asyncio.wait_for(task, 5)


def test_a_simulated_unit_loads_no_hardware_library(tmp_path: Path) -> None:
    """gpiozero and pymodbus cost a Pi Zero time and memory; a config without them skips them."""
    import subprocess
    import sys

    code = (
        "import sys; from controller.assemble import build; from controller.clock import "
        "ManualClock; from controller.config_load import load_settings; "
        "from datetime import datetime, UTC; "
        f"s = load_settings({str(SIM)!r}, data_dir={str(tmp_path)!r}); "
        "build(s, ManualClock(datetime(2026, 11, 21, tzinfo=UTC))); "
        "print(sorted(m for m in ('gpiozero', 'pymodbus', 'serial') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class ExplodingPhotocell:
    """A light input whose driver has a bug: every read raises."""

    name = "market/light-buggy"
    fault = None

    def read(self) -> None:
        raise RuntimeError("bug in a driver")

    def subscribe(self, callback: object) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_bug_in_one_zone_holds_that_zone_fail_safe_and_spares_the_others(
    settings: Settings, clock: ManualClock
) -> None:
    daemon = build(settings, clock)
    daemon.hardware.light_inputs["market"] = ExplodingPhotocell()  # type: ignore[assignment]
    task = asyncio.create_task(daemon.run())
    await clock.advance_to(datetime(2026, 11, 21, 18, 0, tzinfo=BANGKOK))
    assert not task.done()
    assert source_of(daemon, "market") == "failsafe" and sim_output(daemon, "market").level == 100
    assert source_of(daemon, "soi-3") == "schedule" and sim_output(daemon, "soi-3").level == 100
    daemon.stop()
    await asyncio.wait_for(task, 5)
