"""The daemon drives Modbus relay and 0-10 V modules on a real pymodbus server, through faults.

The unit is deploy/examples/pi-modbus.toml with its RS-485 line swapped for Modbus TCP on
loopback, served by `drivers.modbus.sim_device.SimulatedBus` playing each device from its
shipped profile. Time is a ManualClock; only the network round trips take real time.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.assemble import build
from controller.clock import ManualClock
from controller.commands.commission import commission
from controller.config_load import load_settings
from controller.daemon import Daemon
from drivers.modbus.bus import TcpLink
from drivers.modbus.profiles import load_profile
from drivers.modbus.sim_device import SimulatedBus
from tests.conftest import LOOPBACK, eventually, free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "pi-modbus.toml"
BANGKOK = ZoneInfo("Asia/Bangkok")
RELAY, DIMMER, METER = 1, 2, 10
ZONES = ["niphat-3-east", "niphat-3-west", "kim-yong-market"]


pytestmark = pytest.mark.usefixtures("quiet_pymodbus")


def tcp_config(tmp_path: Path, port: int, timing: str) -> Path:
    """pi-modbus.toml with its RS-485 line swapped for Modbus TCP on loopback `port`."""
    text = EXAMPLE.read_text()
    rtu = text[text.index("[buses.rs485]") : text.index("[profiles.main-road]")]
    tcp = f'[buses.rs485]\ntype = "tcp"\nhost = "{LOOPBACK}"\nport = {port}\n{timing}\n'
    config = tmp_path / "config.toml"
    config.write_text(text.replace(rtu, tcp).replace("/var/lib/streetlight", str(tmp_path)))
    return config


@pytest.fixture
async def street(tmp_path: Path) -> AsyncIterator[tuple[SimulatedBus, Path]]:
    port = free_port()
    config = tcp_config(
        tmp_path, port, "timeout_s = 0.2\nretries = 0\nframe_gap_ms = 0\nbackoff_max_s = 5\n"
    )
    devices = {
        RELAY: load_profile("generic-relay"),
        DIMMER: load_profile("generic-0-10v"),
        METER: load_profile("sdm120"),
    }
    values = {METER: {"voltage": 230.0, "current": 1.0, "power": 200.0, "power_factor": 0.9,
                      "frequency": 50.0, "energy_kwh": 100.0}}  # fmt: skip
    bus = SimulatedBus(TcpLink(LOOPBACK, port), devices, values)
    await bus.start()
    yield bus, config
    if bus.running:
        await bus.stop()


async def outputs(bus: SimulatedBus) -> list[tuple[bool, int]]:
    return [
        (bool(await bus.get_output(RELAY, ch)), int(await bus.get_output(DIMMER, ch)))
        for ch in range(3)
    ]


async def start(
    config: Path, tmp_path: Path, at: datetime
) -> tuple[Daemon, ManualClock, asyncio.Task[None]]:
    settings = load_settings(config, data_dir=tmp_path / "data", mqtt={"enabled": False})
    clock = ManualClock(at)
    daemon = build(settings, clock)
    return daemon, clock, asyncio.create_task(daemon.run())


async def stop(daemon: Daemon, task: asyncio.Task[None]) -> None:
    daemon.stop()
    await asyncio.wait_for(task, 5)


async def test_modules_switch_and_dim_with_the_schedule(
    street: tuple[SimulatedBus, Path], tmp_path: Path
) -> None:
    bus, config = street
    daemon, clock, task = await start(
        config, tmp_path, datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK)
    )
    await eventually(lambda: all(z in daemon.states for z in ZONES), "every zone decided")
    # 20:00: every zone on at 100 % -> coils on, 10 V (10000 mV) on each channel
    assert await outputs(bus) == [(True, 10000)] * 3
    # 23:40: the market lane has dimmed to 40 % (4 V), the main road to 50 % (5 V)
    await clock.advance_to(datetime(2026, 11, 21, 23, 40, tzinfo=BANGKOK))
    await eventually(lambda: daemon.states["kim-yong-market"].level == 40, "market at 40 %")
    await eventually(lambda: bus.requests > 0, "requests")
    assert (await outputs(bus))[2] == (True, 4000)
    assert (await outputs(bus))[:2] == [(True, 5000)] * 2
    await stop(daemon, task)


async def test_a_silent_dimmer_module_sends_its_zones_to_failsafe_then_recovers(
    street: tuple[SimulatedBus, Path], tmp_path: Path
) -> None:
    bus, config = street
    daemon, clock, task = await start(
        config, tmp_path, datetime(2026, 11, 21, 23, 0, tzinfo=BANGKOK)
    )
    await eventually(lambda: "kim-yong-market" in daemon.states, "market decided")
    bus.set_answer(DIMMER, "silent")
    # 23:30 the market dims: the write to the silent module fails, the zone holds fail-safe
    await clock.advance_to(datetime(2026, 11, 21, 23, 31, tzinfo=BANGKOK))
    await eventually(
        lambda: daemon.states["kim-yong-market"].source == "failsafe", "market in fail-safe"
    )
    fault = daemon.outputs["kim-yong-market"].fault
    assert fault is not None and "device 2" in fault and "did not answer" in fault
    # the relay module on the same bus still answers: the market's relay is on (fail-safe 100 %)
    assert await bus.get_output(RELAY, 2) is True
    # the module answers again: within the 10 s retry the zone is back on its schedule
    bus.set_answer(DIMMER, "answer")
    await clock.advance(11)
    await eventually(
        lambda: daemon.states["kim-yong-market"].source == "schedule", "market back on schedule"
    )
    assert daemon.outputs["kim-yong-market"].fault is None
    level = daemon.states["kim-yong-market"].level
    assert 40 < level < 100  # on its way down the 10-minute fade from 23:30
    assert (await outputs(bus))[2] == (True, level * 100)  # mV
    await stop(daemon, task)


async def test_a_module_that_lost_power_is_told_its_levels_again(
    street: tuple[SimulatedBus, Path], tmp_path: Path
) -> None:
    bus, config = street
    daemon, clock, task = await start(
        config, tmp_path, datetime(2026, 11, 21, 20, 0, tzinfo=BANGKOK)
    )
    await eventually(lambda: all(z in daemon.states for z in ZONES), "every zone decided")
    # the relay module reboots: all its relays come back off, and nobody tells the daemon
    for channel in range(3):
        await bus.set_raw(RELAY, "coil", channel, [0])
    assert [relay for relay, _ in await outputs(bus)] == [False] * 3
    await clock.advance(61)
    for _ in range(50):
        if [relay for relay, _ in await outputs(bus)] == [True] * 3:
            break
        await asyncio.sleep(0.02)
    assert [relay for relay, _ in await outputs(bus)] == [True] * 3
    await stop(daemon, task)


def test_commission_names_the_bus_nobody_answers_on(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = tcp_config(tmp_path, port, "timeout_s = 0.1\n")
    out = io.StringIO()
    code = commission(str(config), hold_s=0, wait_s=0, out=out)
    report = out.getvalue()
    assert code == 1
    assert report.count("    FAIL  ") == 4  # three zones' modules and the meter
    assert f"{LOOPBACK}:{port}" in report
    assert "Result: 0 passed, 4 failed." in report
