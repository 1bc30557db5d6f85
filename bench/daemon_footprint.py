"""Daemon footprint: start-up to first State, memory, idle CPU and imports of `streetlight run`.

The daemon is the real program, `streetlight run --config deploy/examples/sim.toml` (three
zones with simulated outputs, passers-by, photocells and a meter), started as a subprocess
with MQTT switched on by environment variables, as `bench/mqtt_latency.py` does (its
`start_daemon`), against a fresh mosquitto on 127.0.0.1 (`start_broker`, nodelay on). A
paho-mqtt client subscribed to `streetlight/skn-001/#` is connected before each start;
retained messages are ignored.

- start-up: from just before `subprocess.Popen` to the arrival of the first live zone State,
  `time.perf_counter`, 5 starts one after the other (each stopped with SIGTERM, same data_dir),
  median. Warm: the venv's files are in the page cache and its `.pyc` files compiled.
- memory: VmRSS from /proc/<pid>/status 2 s after the first State of the 5th start, and again
  after 60 s idle; VmHWM (peak RSS) at the end. In MB of 10^6 bytes.
- idle CPU: utime + stime from /proc/<pid>/stat (all threads) over those 60 s, as a share of
  one core (the target's figure; it counts 10 ms clock ticks, so one tick in 60 s is 0.017 %),
  and the same from the process's CPU clock (`clock_gettime`, nanoseconds), for precision.
  Idle means no commands and no subscriber activity: the daemon does what it does on its own
  at this time of day (schedules, simulated passers-by, the meter every 60 s, MQTT
  keep-alive). The unit's local time and the messages it published in the minute are printed.
- imports: one more start as `python -X importtime -c "from controller.cli import main; ..."`
  (the console script's code), stopped 2 s after its first State; from its stderr, the total
  of the top-level imports (the interpreter's own start-up imports included), the packages
  whose modules took the most time themselves, and whether gpiozero, pymodbus or serial
  (pyserial) were imported at all. sim.toml uses no GPIO and no Modbus, so none may be.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import Result
from bench.mqtt_latency import (
    CONFIG,
    UNIT,
    BenchClient,
    start_broker,
    start_daemon,
    stop_daemon,
)
from tests.conftest import Broker

STARTS = 5
SETTLE_S = 2.0
IDLE_S = 60.0
FIRST_STATE_TIMEOUT_S = 15.0
TARGET_START_S = 0.5
TARGET_RSS_MB = 45.0
TARGET_IDLE_CPU_PCT = 0.1
HARDWARE_LIBRARIES = ("gpiozero", "pymodbus", "serial")
UNIT_TZ = ZoneInfo("Asia/Bangkok")  # sim.toml's unit.timezone
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


def vm_kib(pid: int, key: str) -> int:
    """A `VmXxx:` figure of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {key}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def cpu_clock_seconds(pid: int) -> float:
    """The process's CPU time in ns resolution: Linux's per-process CPU clock
    (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)), read with clock_gettime."""
    return time.clock_gettime(((~pid) << 3) | 2)


def _drain(client: BenchClient, seconds: float) -> None:
    client.wait_until(lambda: False, seconds, "nothing")


def _start(
    client: BenchClient, port: int, workdir: Path, argv: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start the daemon; return it and the seconds from Popen to its first live State."""
    got = client.received
    got.forget_first_state()
    start = time.perf_counter()
    daemon = start_daemon(port, workdir, argv)
    if not client.wait_until(
        lambda: got.first_state_at is not None, FIRST_STATE_TIMEOUT_S, "the first state"
    ):
        stop_daemon(daemon)
        log = (workdir / "daemon.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"no state within {FIRST_STATE_TIMEOUT_S} s; daemon log:\n{log}")
    arrived = got.first_state_at
    assert arrived is not None
    return daemon, arrived - start


@dataclass(frozen=True)
class Idle:
    """What one started daemon did and held over the idle minute."""

    rss_start_kib: int
    rss_end_kib: int
    hwm_kib: int
    cpu_pct: float
    cpu_clock_pct: float
    messages: dict[str, int]
    local_start: datetime


def _idle(client: BenchClient, daemon: subprocess.Popen[bytes]) -> Idle:
    _drain(client, SETTLE_S)
    pid = daemon.pid
    rss_start = vm_kib(pid, "VmRSS")
    got = client.received
    got.other.clear()
    states_before, acks_before = got.live_states, len(got.acks)
    local_start = datetime.now(UTC).astimezone(UNIT_TZ)
    cpu_before, clock_before = cpu_seconds(pid), cpu_clock_seconds(pid)
    wall_before = time.monotonic()
    _drain(client, IDLE_S)
    cpu_after, clock_after = cpu_seconds(pid), cpu_clock_seconds(pid)
    wall_after = time.monotonic()
    if daemon.poll() is not None:
        raise RuntimeError(f"the daemon exited during the idle minute ({daemon.returncode})")
    messages = dict(got.other)
    messages["state"] = got.live_states - states_before
    messages["ack"] = len(got.acks) - acks_before
    return Idle(
        rss_start_kib=rss_start,
        rss_end_kib=vm_kib(pid, "VmRSS"),
        hwm_kib=vm_kib(pid, "VmHWM"),
        cpu_pct=100 * (cpu_after - cpu_before) / (wall_after - wall_before),
        cpu_clock_pct=100 * (clock_after - clock_before) / (wall_after - wall_before),
        messages=messages,
        local_start=local_start,
    )


@dataclass(frozen=True)
class Imports:
    """What `-X importtime` reported for one start of the daemon."""

    top_level_us: dict[str, int]  # cumulative microseconds of each top-level import
    by_root_us: dict[str, int]  # self microseconds of every module, summed by root package
    hardware: list[str]  # which of HARDWARE_LIBRARIES were imported


def parse_importtime(text: str) -> Imports:
    """Top-level imports and hardware libraries from `-X importtime` output (other lines are
    ignored: the daemon logs to the same stream)."""
    top: dict[str, int] = {}
    by_root: dict[str, int] = {}
    names: set[str] = set()
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match is None:
            continue
        own, cumulative, indent, name = int(match[1]), int(match[2]), len(match[3]), match[4]
        names.add(name)
        root = name.split(".")[0]
        by_root[root] = by_root.get(root, 0) + own
        if indent <= 1:  # the top level is written with no or one space of indent
            top[name] = top.get(name, 0) + cumulative
    hardware = [
        lib for lib in HARDWARE_LIBRARIES if any(n == lib or n.startswith(f"{lib}.") for n in names)
    ]
    return Imports(top, by_root, hardware)


def _importtime_argv(config: Path) -> list[str]:
    code = (
        "import sys; from controller.cli import main; "
        f"sys.exit(main(['run', '--config', {str(config)!r}]))"
    )
    return [sys.executable, "-X", "importtime", "-c", code]


def _measure(broker: Broker, workdir: Path) -> tuple[list[float], Idle, Imports]:
    client = BenchClient(broker.port, f"bench-footprint-{os.getpid()}")
    client.connect([f"{UNIT}/#"])
    try:
        starts: list[float] = []
        idle: Idle | None = None
        for attempt in range(STARTS):
            daemon, seconds = _start(client, broker.port, workdir)
            starts.append(seconds)
            try:
                if attempt == STARTS - 1:
                    idle = _idle(client, daemon)
            finally:
                stop_daemon(daemon)
            _drain(client, 0.3)
        imports_dir = workdir / "importtime"
        imports_dir.mkdir()
        daemon, _ = _start(client, broker.port, imports_dir, _importtime_argv(CONFIG))
        _drain(client, SETTLE_S)
        stop_daemon(daemon)
        imports = parse_importtime((imports_dir / "daemon.log").read_text(errors="replace"))
    finally:
        client.close()
    assert idle is not None
    return starts, idle, imports


def run() -> list[Result]:
    """The figures above, measured on this machine."""
    with tempfile.TemporaryDirectory(prefix="streetlight-bench-") as tmp:
        workdir = Path(tmp)
        broker = start_broker(workdir, nodelay=True)
        try:
            starts, idle, imports = _measure(broker, workdir)
        finally:
            broker.stop()
    published = ", ".join(f"{n} {kind}" for kind, n in sorted(idle.messages.items()) if n)
    print(
        f"daemon_footprint: idle minute from {idle.local_start:%Y-%m-%d %H:%M:%S %Z} "
        f"(unit time); published in it: {published or 'nothing'}"
    )
    print(f"daemon_footprint: starts to first state: {', '.join(f'{s:.3f}' for s in starts)} s")
    print(f"daemon_footprint: hardware libraries imported: {', '.join(imports.hardware) or 'none'}")
    costly = sorted(imports.by_root_us.items(), key=lambda item: -item[1])[:6]
    mb = 1000 * 1000 / 1024  # KiB in a MB (10^6 bytes, the stricter reading of "45 MB")
    results = [
        Result(
            f"start to first State, median of {STARTS}",
            statistics.median(starts),
            "s",
            high=TARGET_START_S,
        ),
        Result("start to first State, fastest", min(starts), "s"),
        Result("start to first State, slowest", max(starts), "s"),
        Result(
            f"VmRSS {SETTLE_S:g} s after the first State",
            idle.rss_start_kib / mb,
            "MB",
            high=TARGET_RSS_MB,
            fmt=",.1f",
        ),
        Result(
            f"VmRSS after {IDLE_S:g} s idle",
            idle.rss_end_kib / mb,
            "MB",
            high=TARGET_RSS_MB,
            fmt=",.1f",
        ),
        Result("VmHWM (peak RSS)", idle.hwm_kib / mb, "MB", fmt=",.1f"),
        Result(
            f"CPU over {IDLE_S:g} s idle, share of one core",
            idle.cpu_pct,
            "%",
            high=TARGET_IDLE_CPU_PCT,
        ),
        Result(
            f"CPU over {IDLE_S:g} s idle, process CPU clock (ns resolution)",
            idle.cpu_clock_pct,
            "%",
            fmt=",.4f",
        ),
        Result(
            "imports at start, top level, total (-X importtime)",
            sum(imports.top_level_us.values()) / 1000,
            "ms",
            fmt=",.0f",
        ),
        *(
            Result(f"  of which {name}.* (their own time)", us / 1000, "ms", fmt=",.0f")
            for name, us in costly
        ),
        Result(
            f"hardware libraries imported ({', '.join(HARDWARE_LIBRARIES)})",
            len(imports.hardware),
            "",
            high=1,
            fmt=",.0f",
        ),
    ]
    return results
