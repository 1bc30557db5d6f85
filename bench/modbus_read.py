"""Modbus meter reads: one SDM120 read over TCP on loopback, and 16 meters polled in one cycle.

What is timed is the whole driver read (`ModbusMeter.read()`: the profile's two requests, the
decoding and the plausibility check) against `drivers.modbus.sim_device` serving SDM120 meters
from a real pymodbus TCP server on 127.0.0.1, in the same process and event loop. Each figure
is given with the frame gap at 0 ms (the cost of pymodbus and the driver alone) and at the
default 10 ms (what the daemon does on a bus with default settings). The 16-meter cycle reads
meters 1-16 on one server one after the other, as the controller's poll does.

Loopback has no line: on RS-485 the bytes themselves take time. The last figures are computed
from frame lengths, not measured: 11 bits a byte (start, 8 data, parity or second stop, stop),
3.5 characters of silence before each frame, and the frame gap before each request; the
devices' own reply delay is not included.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from bench import Result
from drivers.modbus.bus import BusTiming, ModbusBus, TcpLink
from drivers.modbus.devices import ModbusMeter
from drivers.modbus.profiles import DeviceProfile, load_profile
from drivers.modbus.sim_device import SimulatedBus

READS = 1000
CYCLES = 100
# with the default gap every read takes 20 ms or more: fewer samples keep the run short
GAP_READS = 200
GAP_CYCLES = 20
METERS = 16
DEFAULT_GAP_MS = BusTiming().frame_gap_ms
VALUES = {
    "voltage": 229.4,
    "current": 2.15,
    "power": 480.0,
    "power_factor": 0.96,
    "frequency": 50.0,
    "energy_kwh": 1520.25,
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _now() -> datetime:
    return datetime.now(UTC)


async def _timed_reads(meters: Sequence[ModbusMeter], rounds: int) -> list[float]:
    """Seconds per round of reading every meter once, after a warm-up."""
    for _ in range(max(2, rounds // 20)):
        for meter in meters:
            await meter.read()
    samples: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for meter in meters:
            await meter.read()
        samples.append(time.perf_counter() - start)
    return samples


async def _measure_case(
    profile: DeviceProfile, count: int, gap_ms: int, rounds: int
) -> list[float]:
    port = _free_port()
    ids = range(1, count + 1)
    sim = SimulatedBus(
        TcpLink("127.0.0.1", port), dict.fromkeys(ids, profile), dict.fromkeys(ids, VALUES)
    )
    await sim.start()
    timing = BusTiming(timeout_s=1.0, retries=0, frame_gap_ms=gap_ms)
    bus = ModbusBus("bench", TcpLink("127.0.0.1", port), timing)
    meters = [ModbusMeter(f"m{i}", bus, i, profile, now=_now, max_power_w=2000.0) for i in ids]
    try:
        return await _timed_reads(meters, rounds)
    finally:
        await bus.close()
        await sim.stop()


def _p99(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def rs485_cycle_s(profile: DeviceProfile, meters: int, baud: int, gap_ms: int) -> float:
    """Seconds to poll `meters` meters of `profile` on an RS-485 line, from frame lengths."""
    char_s = 11 / baud
    seconds = 0.0
    for block in profile.read_plan():
        request, reply = 8, 5 + 2 * block.count  # id, function, ..., 2-byte CRC
        seconds += (request + reply + 2 * 3.5) * char_s + gap_ms / 1000
    return seconds * meters


async def _measure() -> list[Result]:
    profile = load_profile("sdm120")
    gc.collect()
    one_fast = await _measure_case(profile, 1, 0, READS)
    one_default = await _measure_case(profile, 1, DEFAULT_GAP_MS, GAP_READS)
    bus_fast = await _measure_case(profile, METERS, 0, CYCLES)
    bus_default = await _measure_case(profile, METERS, DEFAULT_GAP_MS, GAP_CYCLES)
    ms = 1000
    gap = f"{DEFAULT_GAP_MS} ms gap"
    return [
        Result("SDM120 read, TCP loopback, no gap: median", statistics.median(one_fast) * ms, "ms"),
        Result("SDM120 read, TCP loopback, no gap: p99", _p99(one_fast) * ms, "ms"),
        Result(
            f"SDM120 read, TCP loopback, {gap}: median",
            statistics.median(one_default) * ms,
            "ms",
        ),
        Result(f"SDM120 read, TCP loopback, {gap}: p99", _p99(one_default) * ms, "ms"),
        Result(
            f"{METERS} SDM120 on one bus, no gap: cycle median",
            statistics.median(bus_fast) * ms,
            "ms",
        ),
        Result(f"{METERS} SDM120 on one bus, no gap: cycle p99", _p99(bus_fast) * ms, "ms"),
        Result(
            f"{METERS} SDM120 on one bus, {gap}: cycle median",
            statistics.median(bus_default) * ms,
            "ms",
        ),
        Result(
            f"estimate: {METERS} SDM120 on RS-485, 9600 baud, {gap}",
            rs485_cycle_s(profile, METERS, 9600, DEFAULT_GAP_MS),
            "s",
            fmt=".2f",
        ),
        Result(
            f"estimate: {METERS} SDM120 on RS-485, 2400 baud, {gap}",
            rs485_cycle_s(profile, METERS, 2400, DEFAULT_GAP_MS),
            "s",
            fmt=".2f",
        ),
    ]


def run() -> list[Result]:
    """The figures above, measured on this machine."""
    return asyncio.run(_measure())
