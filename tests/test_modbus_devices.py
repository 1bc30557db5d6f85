"""Meter, relay and dimmer drivers against simulated devices on real pymodbus servers.

Every shipped meter profile is read through the driver over TCP and over RTU (a socat pty
pair), and each value must match what the simulated meter serves. Tolerances: the test values
are exact multiples of each profile's resolution (0.1 V, 0.001 A, ... for the PZEM), so a
scaled-integer profile must give them back to 1e-9 (float arithmetic only); a float32 profile
gives back the float32 nearest the value, within 1e-6 relative (float32 keeps 24 bits, a
relative error of at most 6e-8; summing three phases adds no more than that).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from drivers.base import Meter, MeterReading, Output
from drivers.errors import DeviceFault, HardwareConfigError, ImplausibleReading
from drivers.modbus.bus import BusTiming, ModbusBus, RtuLink, TcpLink
from drivers.modbus.devices import ModbusDimmer, ModbusMeter, ModbusRelay
from drivers.modbus.profiles import DeviceProfile, load_profile, parse_profile
from drivers.modbus.sim_device import SimulatedBus
from tests.conftest import LOOPBACK, PtyPair, free_port

TIMING = BusTiming(timeout_s=0.1, retries=1, frame_gap_ms=0, backoff_max_s=4.0)
MAX_POWER_W = 5000.0
# exact multiples of every shipped profile's resolution
SERVED = {
    "voltage": 231.7,
    "current": 4.56,
    "power": 1020.5,
    "power_factor": 0.97,
    "frequency": 49.9,
    "energy_kwh": 12345.678,
}
METER_PROFILES = ["sdm120", "sdm630", "pzem-016"]
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class FakeClock:
    """Both clocks the drivers take: monotonic seconds (back-off) and wall time (readings)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


pytestmark = pytest.mark.usefixtures("quiet_pymodbus")


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


Rig = tuple[SimulatedBus, ModbusBus]


class RigFactory(Protocol):
    """Starts simulated `devices` (id -> profile) on "tcp" or "rtu" and a bus to them."""

    def __call__(
        self,
        transport: str,
        devices: dict[int, DeviceProfile],
        values: dict[int, dict[str, float]] | None = None,
    ) -> Awaitable[Rig]: ...


@pytest.fixture
async def rig_factory(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> AsyncIterator[RigFactory]:
    """Starts simulated devices on TCP or RTU and a bus to them; stops both at teardown."""
    made: list[Rig] = []

    async def make(
        transport: str,
        devices: dict[int, DeviceProfile],
        values: dict[int, dict[str, float]] | None = None,
    ) -> Rig:
        if transport == "tcp":
            port = free_port()
            server_link: RtuLink | TcpLink = TcpLink(LOOPBACK, port)
            client_link: RtuLink | TcpLink = TcpLink(LOOPBACK, port)
        else:
            pty_pair: PtyPair = request.getfixturevalue("pty_pair")
            server_link, client_link = RtuLink(pty_pair.a), RtuLink(pty_pair.b)
        sim = SimulatedBus(server_link, devices, values)
        await sim.start()
        bus = ModbusBus(transport, client_link, TIMING, monotonic=fake_clock)
        made.append((sim, bus))
        return sim, bus

    yield make
    for sim, bus in made:
        await bus.close()
        await sim.stop()


def meter(bus: ModbusBus, device_id: int, profile: str, fake_clock: FakeClock) -> ModbusMeter:
    return ModbusMeter(
        "feed", bus, device_id, load_profile(profile), now=fake_clock.now, max_power_w=MAX_POWER_W
    )


def sdm120_read_two_registers_at_a_time() -> DeviceProfile:
    text = Path(load_profile("sdm120").origin).read_text()
    return parse_profile(text.replace("max_read_registers = 80", "max_read_registers = 2"), "n", "")


def fault_of(output: ModbusRelay) -> str | None:
    """`output.fault` (through a call, so mypy does not narrow the property)."""
    return output.fault


def values_of(reading: MeterReading) -> dict[str, float]:
    return {
        "voltage": reading.voltage,
        "current": reading.current,
        "power": reading.power,
        "power_factor": reading.power_factor,
        "frequency": reading.frequency,
        "energy_kwh": reading.energy_kwh,
    }


# --------------------------------------------------------------------------------------------
# meters


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
@pytest.mark.parametrize("profile", METER_PROFILES)
async def test_each_meter_profile_reads_what_the_device_serves(
    rig_factory: RigFactory,
    fake_clock: FakeClock,
    profile: str,
    transport: str,
) -> None:
    sim, bus = await rig_factory(transport, {10: load_profile(profile)}, {10: SERVED})
    reading = await meter(bus, 10, profile, fake_clock).read()
    floats = load_profile(profile).registers["voltage"].type == "float32"
    for name, served in SERVED.items():
        expected = pytest.approx(served, rel=1e-6) if floats else pytest.approx(served, abs=1e-9)
        assert values_of(reading)[name] == expected, name
    assert reading.ts == fake_clock.now() and reading.counter_break is None
    # and a second set of values, so nothing above is a coincidence of the first
    other = {**SERVED, "voltage": 219.3, "current": 0.125, "power": 26.4, "energy_kwh": 12346.0}
    await sim.set_values(10, other)
    fake_clock.advance(3600)
    second = values_of(await meter(bus, 10, profile, fake_clock).read())
    assert second == {k: pytest.approx(v, rel=1e-6) for k, v in other.items()}


def float_words(value: float) -> list[int]:
    """IEEE-754 float32, high word first: the Eastron layout, written out by hand."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


async def test_meters_decode_the_datasheet_layout_of_their_words(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    """Raw words laid out as the datasheets say, not made by the profile's own encoder."""
    sdm120, sdm630, pzem = (load_profile(p) for p in METER_PROFILES)
    sim, bus = await rig_factory("tcp", {1: sdm120, 2: sdm630, 3: pzem})
    for device_id in (1, 2):
        for address, value in ((0x46, 49.9), (0x156, 12345.678), (0x1E, 0.97), (0x34, 900.0)):
            await sim.set_raw(device_id, "input", address, float_words(value))
    await sim.set_raw(1, "input", 0x00, float_words(231.7))
    await sim.set_raw(1, "input", 0x06, float_words(4.56))
    await sim.set_raw(1, "input", 0x0C, float_words(1020.5))
    for address, value in ((0, 230.0), (2, 232.0), (4, 234.0), (6, 1.0), (8, 2.0), (10, 3.5)):
        await sim.set_raw(2, "input", address, float_words(value))
    await sim.set_raw(2, "input", 0x3E, float_words(0.97))
    # PZEM: 231.7 V, 4.560 A, 1020.5 W, 12345678 Wh, 49.9 Hz, pf 0.97; 32-bit values low word first
    await sim.set_raw(3, "input", 0, [2317, 4560, 0, 10205, 0, 0x614E, 0x00BC, 499, 97])

    sdm120_reading = values_of(await meter(bus, 1, "sdm120", fake_clock).read())
    assert sdm120_reading == {k: pytest.approx(v, rel=1e-6) for k, v in SERVED.items()}
    three_phase = await meter(bus, 2, "sdm630", fake_clock).read()
    assert three_phase.voltage == pytest.approx(232.0, rel=1e-6)  # mean of the phases
    assert three_phase.current == pytest.approx(6.5, rel=1e-6)  # sum of the phases
    assert three_phase.power == pytest.approx(900.0, rel=1e-6)  # the system total, 0x0034
    pzem_reading = values_of(await meter(bus, 3, "pzem-016", fake_clock).read())
    assert pzem_reading == {k: pytest.approx(v, abs=1e-9) for k, v in SERVED.items()}


async def test_two_meters_share_one_rtu_line(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    low = {**SERVED, "power": 100.0, "energy_kwh": 5.0}
    _, bus = await rig_factory(
        "rtu",
        {1: load_profile("sdm120"), 2: load_profile("pzem-016")},
        {1: SERVED, 2: low},
    )
    first, second = meter(bus, 1, "sdm120", fake_clock), meter(bus, 2, "pzem-016", fake_clock)
    readings = await asyncio.gather(*(m.read() for m in (first, second, first, second)))
    assert [r.power for r in readings] == [
        pytest.approx(1020.5),
        100.0,
        pytest.approx(1020.5),
        100.0,
    ]
    assert [r.energy_kwh for r in readings][1::2] == [5.0, 5.0]


async def test_a_meter_reads_in_blocks_no_longer_than_its_profile_allows(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    narrow = sdm120_read_two_registers_at_a_time()
    sim, bus = await rig_factory("tcp", {1: narrow}, {1: SERVED})
    sent = sim.requests
    reading = await ModbusMeter(
        "feed", bus, 1, narrow, now=fake_clock.now, max_power_w=MAX_POWER_W
    ).read()
    assert sim.requests - sent == 6  # one request per float
    assert reading.frequency == pytest.approx(49.9, rel=1e-6)


async def test_implausible_values_are_flagged_not_passed_on(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    sim, bus = await rig_factory("tcp", {1: load_profile("sdm120")}, {1: SERVED})
    feed = meter(bus, 1, "sdm120", fake_clock)
    await feed.read()
    await sim.set_values(1, {"power": -800.0})
    fake_clock.advance(60)
    with pytest.raises(ImplausibleReading, match=r"active power -800 W is negative") as caught:
        await feed.read()
    assert feed.fault == str(caught.value)
    assert feed.fault.endswith(f"(Eastron SDM120-Modbus, {bus.describe()}, device 1)")
    await sim.set_values(1, {"power": 800.0})
    assert (await feed.read()).power == 800.0
    assert feed.fault is None


async def test_an_energy_counter_that_goes_back_is_held_until_confirmed(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    sim, bus = await rig_factory("rtu", {7: load_profile("pzem-016")}, {7: SERVED})
    feed = meter(bus, 7, "pzem-016", fake_clock)
    assert (await feed.read()).energy_kwh == pytest.approx(12345.678)
    await sim.set_values(7, {"energy_kwh": 0.002})  # a technician reset the PZEM
    for _ in range(2):
        fake_clock.advance(60)
        with pytest.raises(ImplausibleReading, match=r"energy counter went back"):
            await feed.read()
        assert feed.fault is not None and "went back" in feed.fault
    fake_clock.advance(60)
    confirmed = await feed.read()
    assert (confirmed.energy_kwh, confirmed.counter_break) == (0.002, "reset")
    assert feed.fault is None


async def test_a_meter_that_stops_answering_is_faulty_then_recovers(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    sim, bus = await rig_factory("rtu", {1: load_profile("sdm630")}, {1: SERVED})
    feed = meter(bus, 1, "sdm630", fake_clock)
    await feed.read()
    sim.set_answer(1, "silent")
    with pytest.raises(DeviceFault, match=r"device 1 on bus rtu .* did not answer within 0\.1 s"):
        await feed.read()
    assert feed.fault is not None and "did not answer" in feed.fault
    sim.set_answer(1, "answer")
    fake_clock.advance(2)
    assert (await feed.read()).voltage == pytest.approx(231.7, rel=1e-6)
    assert feed.fault is None


async def test_meter_identity_and_self_test(rig_factory: RigFactory, fake_clock: FakeClock) -> None:
    sim, bus = await rig_factory("tcp", {10: load_profile("sdm120")}, {10: SERVED})
    feed = meter(bus, 10, "sdm120", fake_clock)
    assert isinstance(feed, Meter)
    identity = feed.identify()
    assert (identity.kind, identity.model) == ("modbus_meter", "Eastron SDM120-Modbus")
    assert identity.where == f"bus tcp (127.0.0.1:{bus.link.port}), device 10"
    result = await feed.self_test()
    assert result.ok and result.problem is None
    assert result.steps[1:] == (
        "voltage 231.7 V",
        "current 4.560 A",
        "power 1020.5 W",
        "power factor 0.97",
        "frequency 49.90 Hz",
        "energy counter 12345.678 kWh",
    )
    sim.set_answer(10, "silent")
    failed = await feed.self_test()
    assert not failed.ok and failed.problem is not None and "did not answer" in failed.problem


# --------------------------------------------------------------------------------------------
# outputs


async def test_relay_levels_switch_the_coil(
    rig_factory: RigFactory,
) -> None:
    sim, bus = await rig_factory("tcp", {1: load_profile("generic-relay")})
    relays = [ModbusRelay(f"zone-{c}", bus, 1, c, load_profile("generic-relay")) for c in (0, 7)]
    assert isinstance(relays[0], Output) and relays[0].switched
    for level, on in ((100, True), (1, True), (0, False), (40, True)):
        await relays[1].set_level(level)
        assert await sim.get_output(1, 7) is on
        assert relays[1].level == level and relays[1].fault is None
    assert await sim.get_output(1, 0) is False  # the other channel was never touched
    with pytest.raises(ValueError, match=r"0 to 100, got 101"):
        await relays[0].set_level(101)
    assert relays[0].level == 0


async def test_dimmer_levels_become_register_values(
    rig_factory: RigFactory,
) -> None:
    profile = load_profile("generic-0-10v")
    sim, bus = await rig_factory("rtu", {2: profile})
    dimmer = ModbusDimmer("market", bus, 2, 3, profile, min_level=15)
    assert isinstance(dimmer, Output) and not dimmer.switched
    for level, raw in ((0, 0), (1, 1500), (15, 1500), (16, 1600), (55, 5500), (100, 10000)):
        await dimmer.set_level(level)
        assert await sim.get_output(2, 3) == raw, level
        assert dimmer.level == level and dimmer.fault is None
    assert ModbusDimmer("x", bus, 2, 0, profile).raw_value(5) == 1000  # default min_level 10


async def test_an_output_on_a_dead_module_records_the_fault_and_writes_again(
    rig_factory: RigFactory, fake_clock: FakeClock
) -> None:
    sim, bus = await rig_factory("rtu", {1: load_profile("generic-relay")})
    relay = ModbusRelay("zone", bus, 1, 2, load_profile("generic-relay"))
    sim.set_answer(1, "silent")
    await relay.set_level(100)  # never raises for the hardware
    assert relay.level == 100
    assert relay.fault is not None and relay.fault.startswith("device 1 on bus rtu")
    assert "coil 2 (on)" in relay.fault
    sim.set_answer(1, "answer")
    await relay.set_level(100)  # still backing off: the fault stays, nothing is sent
    assert relay.fault is not None and await sim.get_output(1, 2) is False
    fake_clock.advance(1.0)
    await relay.set_level(100)  # the same level again: it is written
    assert (fault_of(relay), await sim.get_output(1, 2)) == (None, True)


async def test_outputs_identify_and_self_test_then_restore(
    rig_factory: RigFactory,
) -> None:
    sim, bus = await rig_factory(
        "tcp", {1: load_profile("generic-relay"), 2: load_profile("generic-0-10v")}
    )
    relay = ModbusRelay("zone", bus, 1, 4, load_profile("waveshare-relay-8"))
    dimmer = ModbusDimmer("zone-dim", bus, 2, 0, load_profile("generic-0-10v"), min_level=20)
    where = f"bus tcp (127.0.0.1:{bus.link.port})"
    assert relay.identify().where == f"{where}, device 1, channel 4"
    assert relay.identify().kind == "modbus_relay"
    assert dimmer.identify().kind == "modbus_dimmer"
    assert dimmer.identify().model.startswith("Modbus 0-10 V output module")

    await relay.set_level(100)
    result = await relay.self_test(hold_s=0)
    assert result.ok, result.problem
    assert result.steps == (
        "switched coil 4 on; it reads back on",
        "switched coil 4 off; it reads back off",
        "put back level 100",
    )
    assert await sim.get_output(1, 4) is True

    await dimmer.set_level(30)
    result = await dimmer.self_test(hold_s=0)
    assert result.ok, result.problem
    assert result.steps == (
        "level 20 %: wrote 2000 (2.00 V) to register 0; it reads back 2000",
        "level 50 %: wrote 5000 (5.00 V) to register 0; it reads back 5000",
        "level 100 %: wrote 10000 (10.00 V) to register 0; it reads back 10000",
        "put back level 30",
    )
    assert await sim.get_output(2, 0) == 3000

    sim.set_answer(1, "silent")
    failed = await relay.self_test(hold_s=0)
    assert not failed.ok and failed.problem is not None and "did not answer" in failed.problem


def test_drivers_refuse_a_profile_of_the_wrong_kind_or_channel() -> None:
    bus = ModbusBus("rs485", RtuLink("/dev/null"))
    with pytest.raises(HardwareConfigError, match=r"describes a relay, not a meter"):
        ModbusMeter("m", bus, 1, load_profile("generic-relay"), now=lambda: T0, max_power_w=1)
    with pytest.raises(HardwareConfigError, match=r"describes a meter, not a dimmer"):
        ModbusDimmer("d", bus, 1, 0, load_profile("sdm120"))
    with pytest.raises(HardwareConfigError, match=r"has channels 0 to 7, not 8"):
        ModbusRelay("r", bus, 1, 8, load_profile("generic-relay"))
    with pytest.raises(HardwareConfigError, match=r"min_level is a whole percent"):
        ModbusDimmer("d", bus, 1, 0, load_profile("generic-0-10v"), min_level=101)
