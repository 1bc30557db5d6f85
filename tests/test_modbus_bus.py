"""The Modbus bus against real pymodbus servers: TCP on loopback and RTU over a socat pty pair.

Faults are staged for real: a TCP server that never answers, a device id nobody answers to, a
device whose answers have a broken CRC, a server stopped and started again on its port, and the
serial "cable" unplugged and plugged back. The back-off runs on an injected clock, so no test
waits for it; the only real waits are the short answer timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import pytest

from drivers.errors import DeviceFault, HardwareConfigError
from drivers.modbus.bus import BusTiming, ModbusBus, RtuLink, TcpLink
from drivers.modbus.profiles import load_profile
from drivers.modbus.sim_device import SimulatedBus
from tests.conftest import LOOPBACK, PtyPair, free_port

TIMEOUT_S = 0.1
FAST = BusTiming(timeout_s=TIMEOUT_S, retries=2, frame_gap_ms=0, backoff_max_s=8.0)
# slack for scheduling on a busy 2-core VM, on top of the time a wait must take
SLACK_S = 0.25
METER_VALUES = {
    "voltage": 230.5,
    "current": 1.25,
    "power": 280.0,
    "power_factor": 0.97,
    "frequency": 50.0,
    "energy_kwh": 12.5,
}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


pytestmark = pytest.mark.usefixtures("quiet_pymodbus")


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tcp_sim() -> AsyncIterator[SimulatedBus]:
    """A meter (1), a relay module (2) and a 0-10 V module (3) on a TCP server."""
    sim = SimulatedBus(
        TcpLink(LOOPBACK, free_port()),
        {
            1: load_profile("sdm120"),
            2: load_profile("generic-relay"),
            3: load_profile("generic-0-10v"),
        },
        {1: METER_VALUES},
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def rtu_sim(pty_pair: PtyPair) -> AsyncIterator[SimulatedBus]:
    """Meters 1 and 2 on an RTU server at one end of the pty pair; the bus uses the other."""
    sdm120 = load_profile("sdm120")
    sim = SimulatedBus(RtuLink(pty_pair.a), {1: sdm120, 2: sdm120}, {1: METER_VALUES})
    await sim.start()
    yield sim
    await sim.stop()


def tcp_bus(sim: SimulatedBus, fake_clock: FakeClock, timing: BusTiming = FAST) -> ModbusBus:
    assert isinstance(sim.link, TcpLink)
    return ModbusBus("gw", TcpLink(LOOPBACK, sim.link.port), timing, monotonic=fake_clock)


def rtu_bus(pty_pair: PtyPair, fake_clock: FakeClock, timing: BusTiming = FAST) -> ModbusBus:
    return ModbusBus("rs485", RtuLink(pty_pair.b), timing, monotonic=fake_clock)


def faults(bus: ModbusBus, device_id: int) -> tuple[str | None, str | None]:
    """The bus's fault and the device's (a call, so mypy does not narrow the property)."""
    return bus.fault, bus.device_fault(device_id)


async def timed_failure(request: Awaitable[object]) -> tuple[DeviceFault, float]:
    """Await `request`, which must raise DeviceFault; the fault and how long it took."""
    start = time.monotonic()
    with pytest.raises(DeviceFault) as caught:
        await request
    return caught.value, time.monotonic() - start


# --------------------------------------------------------------------------------------------
# plain requests


def test_describe_names_the_line() -> None:
    rtu = ModbusBus("rs485", RtuLink("/dev/ttyUSB0", 2400, "E", 8, 1))
    assert rtu.describe() == "bus rs485 (/dev/ttyUSB0, 2400 8E1)"
    assert ModbusBus("gw", TcpLink("10.0.0.5")).describe() == "bus gw (10.0.0.5:502)"


async def test_reads_and_writes_reach_the_devices(
    tcp_sim: SimulatedBus, fake_clock: FakeClock
) -> None:
    bus = tcp_bus(tcp_sim, fake_clock)
    try:
        words = await bus.read_registers(1, "input", 0, 2)
        assert words == [0x4366, 0x8000]  # 230.5 as float32, high word first
        await bus.write_coil(2, 5, True)
        assert await tcp_sim.get_output(2, 5) is True
        assert await bus.read_bits(2, "coil", 4, 3) == [False, True, False]
        await bus.write_register(3, 7, 4321)
        assert await tcp_sim.get_output(3, 7) == 4321
        assert await bus.read_registers(3, "holding", 6, 2) == [0, 4321]
        assert faults(bus, 1) == (None, None)
    finally:
        await bus.close()


async def test_requests_from_many_tasks_take_turns(
    rtu_sim: SimulatedBus, pty_pair: PtyPair, fake_clock: FakeClock
) -> None:
    await rtu_sim.set_values(2, {"voltage": 110.0})
    bus = rtu_bus(pty_pair, fake_clock)
    try:
        answers = await asyncio.gather(
            *(bus.read_registers(1 + i % 2, "input", 0, 2) for i in range(12))
        )
    finally:
        await bus.close()
    assert answers == [[0x4366, 0x8000], [0x42DC, 0x0000]] * 6  # 230.5 V and 110.0 V


async def test_frame_gap_keeps_the_line_quiet_between_frames(
    tcp_sim: SimulatedBus, fake_clock: FakeClock
) -> None:
    async def ten_reads(gap_ms: int) -> float:
        timing = BusTiming(timeout_s=TIMEOUT_S, retries=0, frame_gap_ms=gap_ms)
        bus = tcp_bus(tcp_sim, fake_clock, timing)
        try:
            await bus.read_registers(1, "input", 0, 2)  # connects
            start = time.monotonic()
            for _ in range(10):
                await bus.read_registers(1, "input", 0, 2)
            return time.monotonic() - start
        finally:
            await bus.close()

    assert await ten_reads(30) >= 10 * 0.030
    assert await ten_reads(0) < 10 * 0.030  # loopback answers in well under a millisecond


async def test_arguments_outside_modbus_are_refused(fake_clock: FakeClock) -> None:
    bus = ModbusBus("gw", TcpLink(LOOPBACK, free_port()), FAST, monotonic=fake_clock)
    with pytest.raises(ValueError, match=r"1 to 125 items"):
        await bus.read_registers(1, "input", 0, 126)
    with pytest.raises(ValueError, match=r"address 65535 and count 2"):
        await bus.read_bits(1, "coil", 65535, 2)
    with pytest.raises(ValueError, match=r"0 to 65535, got 70000"):
        await bus.write_register(1, 0, 70000)
    with pytest.raises(HardwareConfigError, match=r"timeout_s above 0"):
        BusTiming(timeout_s=0)
    assert bus.fault is None  # nothing was sent


async def test_close_is_idempotent_and_ends_requests(
    tcp_sim: SimulatedBus, fake_clock: FakeClock
) -> None:
    bus = tcp_bus(tcp_sim, fake_clock)
    await bus.read_registers(1, "input", 0, 2)
    await bus.close()
    await bus.close()
    with pytest.raises(DeviceFault, match=r"bus gw \(127\.0\.0\.1:\d+\) is closed"):
        await bus.read_registers(1, "input", 0, 2)


# --------------------------------------------------------------------------------------------
# exception responses, timeouts, damaged frames


async def test_exception_response_is_a_fault_that_says_the_profile_does_not_fit(
    tcp_sim: SimulatedBus, fake_clock: FakeClock
) -> None:
    bus = tcp_bus(tcp_sim, fake_clock)
    try:
        with pytest.raises(DeviceFault) as caught:
            await bus.read_registers(1, "input", 500, 2)
        assert str(caught.value) == (
            f"device 1 on {bus.describe()} refused input registers 500-501 with exception code "
            "2, illegal data address: the device profile does not fit this device (check the "
            "model named in the config)"
        )
        assert bus.device_fault(1) == str(caught.value)
        assert bus.device_fault(2) is None and bus.fault is None
        # the device answered, so there is no back-off: the next request goes out at once
        sent = tcp_sim.requests
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        assert tcp_sim.requests == sent + 1
        assert bus.device_fault(1) is None
    finally:
        await bus.close()


async def test_a_server_that_never_answers_times_out_within_the_bound(
    fake_clock: FakeClock,
) -> None:
    frames: list[bytes] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(260):
            frames.append(data)
        writer.close()

    server = await asyncio.start_server(swallow, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    bus = ModbusBus("gw", TcpLink(LOOPBACK, port), FAST, monotonic=fake_clock)
    try:
        fault, took = await timed_failure(bus.read_registers(10, "input", 0, 2))
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()
    bound = TIMEOUT_S * (FAST.retries + 1)
    assert bound <= took < bound + SLACK_S
    assert str(fault) == (
        f"device 10 on bus gw (127.0.0.1:{port}) did not answer within 0.1 s (2 retries) when "
        "asked for input registers 0-1: check its unit id (device_id), that the gateway reaches "
        "it, and its power"
    )
    assert len(frames) == 3  # the request and its two retries
    assert bus.device_fault(10) == str(fault)


async def test_a_tcp_line_where_nobody_answers_is_opened_afresh(fake_clock: FakeClock) -> None:
    connections = 0

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(260):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    timing = BusTiming(timeout_s=TIMEOUT_S, retries=0, frame_gap_ms=0)
    bus = ModbusBus("gw", TcpLink(LOOPBACK, port), timing, monotonic=fake_clock)
    try:
        for device_id in (1, 2):
            await timed_failure(bus.read_registers(device_id, "input", 0, 2))
        assert connections == 1  # two silent requests could be two dead devices
        await timed_failure(bus.read_registers(3, "input", 0, 2))
        await timed_failure(bus.read_registers(4, "input", 0, 2))
        assert connections == 2  # after three, the connection itself is suspect
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()


async def test_a_dead_device_backs_off_and_never_stalls_the_others(
    rtu_sim: SimulatedBus, pty_pair: PtyPair, fake_clock: FakeClock
) -> None:
    bus = rtu_bus(pty_pair, fake_clock)
    try:
        # nobody on the line answers to address 7
        fault, took = await timed_failure(bus.read_registers(7, "input", 0, 2))
        assert took >= TIMEOUT_S * 3
        assert str(fault).startswith(
            f"device 7 on bus rs485 ({pty_pair.b}, 9600 8N1) did not answer within 0.1 s "
            "(2 retries) when asked for input registers 0-1: check its Modbus address, the A/B "
            "wiring, the baud rate and its power"
        )
        # while it backs off, asking for it costs no bus time, and device 1 answers promptly
        for _ in range(3):
            sent = rtu_sim.requests
            again, took = await timed_failure(bus.read_registers(7, "input", 0, 2))
            assert str(again) == str(fault) and took < TIMEOUT_S / 2
            assert rtu_sim.requests == sent
            start = time.monotonic()
            assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
            assert time.monotonic() - start < TIMEOUT_S / 2
        # the first back-off is 0.75-1 s (jitter); then one request is tried, without retries
        fake_clock.advance(0.74)
        await timed_failure(bus.read_registers(7, "input", 0, 2))
        assert rtu_sim.requests == sent + 1  # only device 1's read went out
        fake_clock.advance(0.27)
        sent = rtu_sim.requests
        _, took = await timed_failure(bus.read_registers(7, "input", 0, 2))
        assert rtu_sim.requests == sent + 1 and TIMEOUT_S <= took < 2 * TIMEOUT_S
        # the back-off doubles (1.5-2 s now) and stops growing at backoff_max_s (6-8 s)
        waits = []
        for _ in range(6):
            sent = rtu_sim.requests
            waited = 0.0
            while rtu_sim.requests == sent:
                fake_clock.advance(0.25)
                waited += 0.25
                await timed_failure(bus.read_registers(7, "input", 0, 2))
            waits.append(waited)
        assert 1.5 <= waits[0] <= 2.0 and 3.0 <= waits[1] <= 4.0
        assert all(6.0 <= w <= 8.0 for w in waits[2:])
        assert bus.device_fault(1) is None and bus.fault is None
    finally:
        await bus.close()


async def test_a_device_that_answers_again_is_cleared(
    rtu_sim: SimulatedBus, pty_pair: PtyPair, fake_clock: FakeClock
) -> None:
    bus = rtu_bus(pty_pair, fake_clock)
    try:
        rtu_sim.set_answer(1, "silent")
        await timed_failure(bus.read_registers(1, "input", 0, 2))
        assert bus.device_fault(1) is not None
        rtu_sim.set_answer(1, "answer")
        await timed_failure(bus.read_registers(1, "input", 0, 2))  # still backing off
        fake_clock.advance(1.0)
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        assert bus.device_fault(1) is None
    finally:
        await bus.close()


async def test_damaged_frames_are_reported_as_crc_errors(
    rtu_sim: SimulatedBus, pty_pair: PtyPair, fake_clock: FakeClock
) -> None:
    bus = rtu_bus(pty_pair, fake_clock)
    try:
        rtu_sim.set_answer(1, "garbled")
        fault, took = await timed_failure(bus.read_registers(1, "input", 0, 2))
        assert took < TIMEOUT_S * 3 + SLACK_S
        assert str(fault) == (
            f"device 1 on bus rs485 ({pty_pair.b}, 9600 8N1) answered with damaged frames (CRC "
            "errors or a reply from another device) when asked for input registers 0-1: check "
            "the A/B wiring, the terminating resistor at the end of the line, that the baud rate "
            "and parity match, and that no other device uses address 1"
        )
        assert await bus.read_registers(2, "input", 0, 2) == [0, 0]  # its neighbour is fine
        rtu_sim.set_answer(1, "answer")
        fake_clock.advance(1.0)
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        assert bus.device_fault(1) is None
    finally:
        await bus.close()


# --------------------------------------------------------------------------------------------
# the line itself: server restarts, adapters unplugged


async def test_server_stopped_and_started_again_on_its_port(
    tcp_sim: SimulatedBus, fake_clock: FakeClock
) -> None:
    bus = tcp_bus(tcp_sim, fake_clock)
    assert isinstance(tcp_sim.link, TcpLink)
    port = tcp_sim.link.port
    try:
        await bus.write_coil(2, 0, True)
        await tcp_sim.stop()
        lost, took = await timed_failure(bus.read_registers(1, "input", 0, 2))
        assert took < TIMEOUT_S * 3 + SLACK_S
        assert bus.fault is not None and bus.device_fault(1) == bus.fault
        refused, _ = await timed_failure(bus.read_registers(1, "input", 0, 2))
        assert str(refused) == (
            f"nothing answers at 127.0.0.1:{port} for bus gw: check that the device or gateway "
            "is powered and on the network, and the bus's host and port"
        )
        assert bus.fault == str(refused)
        # the bus backs off too: no connection attempt until it expires
        again, took = await timed_failure(bus.read_registers(1, "input", 0, 2))
        assert str(again) == str(refused) and took < 0.05

        await tcp_sim.start()  # same port; the registers survived the restart
        await timed_failure(bus.read_registers(1, "input", 0, 2))
        fake_clock.advance(1.0)
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        assert faults(bus, 1) == (None, None)
        assert await bus.read_bits(2, "coil", 0, 1) == [True]
        assert str(lost).startswith(("the connection to", "nothing answers at", "device 1 on"))
    finally:
        await bus.close()


async def test_serial_adapter_unplugged_and_plugged_back(
    rtu_sim: SimulatedBus, pty_pair: PtyPair, fake_clock: FakeClock
) -> None:
    bus = rtu_bus(pty_pair, fake_clock)
    try:
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        pty_pair.unplug()
        await timed_failure(bus.read_registers(1, "input", 0, 2))
        missing = (
            f"serial adapter {pty_pair.b} is not there: check the USB cable, and that the bus's "
            "`port` names it (use its /dev/serial/by-id/ name)"
        )
        fake_clock.advance(60.0)
        fault, _ = await timed_failure(bus.read_registers(2, "input", 0, 2))
        assert str(fault) == missing
        assert bus.fault == missing and bus.device_fault(1) == missing

        pty_pair.replug()
        await rtu_sim.stop()  # pymodbus's serial server does not reopen its port by itself
        await rtu_sim.start()
        fake_clock.advance(60.0)
        assert await bus.read_registers(1, "input", 0, 2) == [0x4366, 0x8000]
        assert faults(bus, 1) == (None, None)
    finally:
        await bus.close()


async def test_a_missing_adapter_is_a_bus_fault_from_the_start(fake_clock: FakeClock) -> None:
    bus = ModbusBus(
        "rs485", RtuLink("/dev/serial/by-id/no-such-adapter"), FAST, monotonic=fake_clock
    )
    fault, took = await timed_failure(bus.write_coil(1, 0, True))
    assert str(fault).startswith("serial adapter /dev/serial/by-id/no-such-adapter is not there")
    assert took < 0.05
    assert bus.fault == str(fault) and bus.device_fault(4) == str(fault)
    await bus.close()
