"""Shared pytest fixtures: a real MQTT broker, a serial pty pair, mock GPIO pins and a manual clock.

Fixtures (all function scope):

- `mosquitto`: a running mosquitto broker on a free 127.0.0.1 port (a `Broker`).
- `mosquitto_factory`: starts more brokers, each with extra config lines (TLS, passwords, ACLs).
- `pty_pair`: two serial ports joined by socat, with stable paths that survive unplug/replug.
- `gpio_pins`: a gpiozero `MockFactory` with PWM-capable pins, passed as `pin_factory=`.
- `clock`: a `ManualClock` at 2026-11-21 10:00 Asia/Bangkok (03:00 UTC).

The process code is in plain functions (`start_mosquitto`, `start_pty_pair`, `free_port`), so a
test that needs something the fixtures do not give can call them directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from controller.clock import ManualClock

LOOPBACK = "127.0.0.1"
# Bounded waits: how long a helper waits for a broker port or for socat's ptys.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_POLL_S = 0.005

# 2026-11-21 10:00 in Thailand, as UTC (03:00): the start of every `clock` fixture.
CLOCK_START = datetime(2026, 11, 21, 10, 0, tzinfo=ZoneInfo("Asia/Bangkok")).astimezone(UTC)


# --------------------------------------------------------------------------------------------
# external programs


def find_tool(name: str) -> str:
    """The path of the program `name` (on PATH or in /usr/sbin); fails the test when missing.

    A missing tool is a broken test machine, not a reason to skip: the tests fail with the
    apt-get command that installs it.
    """
    found = shutil.which(name)
    if found is None and os.access(f"/usr/sbin/{name}", os.X_OK):
        found = f"/usr/sbin/{name}"
    if found is None:
        pytest.fail(
            f"{name} is not installed, and the tests need the real program. "
            f"Install it with: sudo apt-get install -y {name}",
            pytrace=False,
        )
    return found


class ManagedProcess:
    """One external program that can be stopped and started again with the same arguments.

    Its stdout and stderr are appended to `output_path` (a file, so a chatty program can never
    block on a full pipe).
    """

    def __init__(self, argv: Sequence[str], output_path: Path) -> None:
        self.argv = list(argv)
        self.output_path = output_path
        self._popen: subprocess.Popen[bytes] | None = None

    def is_running(self) -> bool:
        """True while the program runs."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the current run, or None when stopped."""
        return self._popen.pid if self._popen is not None else None

    def spawn(self) -> int:
        """Start the program; returns the offset in the output file where this run begins."""
        if self.is_running():
            raise RuntimeError(f"{self.argv[0]} is already running (pid {self.pid})")
        with self.output_path.open("ab") as out:
            offset = out.tell()
            self._popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        return offset

    def exited(self) -> int | None:
        """The exit code when the current run has ended, else None."""
        return self._popen.poll() if self._popen is not None else None

    def terminate(self) -> None:
        """SIGTERM the program and wait for it (SIGKILL after STOP_TIMEOUT_S); idempotent."""
        popen, self._popen = self._popen, None
        if popen is None:
            return
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(STOP_TIMEOUT_S)

    def output(self, offset: int = 0) -> str:
        """What the program printed, from byte `offset` on."""
        try:
            with self.output_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(
    host: str, port: int, process: ManagedProcess, timeout: float = START_TIMEOUT_S
) -> None:
    """Return once `host:port` accepts TCP connections; raise if `process` dies or on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if process.exited() is not None:
            raise RuntimeError(
                f"{process.argv[0]} exited with code {process.exited()} before listening on "
                f"{host}:{port}; its output:\n{process.output()[-2000:]}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")
        time.sleep(_POLL_S)


# --------------------------------------------------------------------------------------------
# mosquitto


@dataclass(frozen=True)
class Broker:
    """A mosquitto broker on `host:port` that a test may stop and start again on the same port.

    Anonymous clients may connect unless the extra config said otherwise. Nothing is persisted:
    retained messages and sessions are lost on `stop()`. `log_path` holds mosquitto's own log
    (`log_type all`: connects, subscriptions, "Denied PUBLISH", ...).
    """

    host: str
    port: int
    log_path: Path
    config_path: Path = field(repr=False)
    process: ManagedProcess = field(repr=False, compare=False)

    def is_running(self) -> bool:
        """True while the broker process runs (a method, so mypy does not narrow it)."""
        return self.process.is_running()

    def stop(self) -> None:
        """Terminate the broker (SIGTERM) and wait until it has exited; idempotent.

        Connected clients see their connection drop, and new connections are refused.
        """
        self.process.terminate()

    def start(self) -> None:
        """Start the broker again, with the same config on the SAME port; returns once it listens.

        Raises RuntimeError if it is already running.
        """
        self.process.spawn()
        wait_for_port(self.host, self.port, self.process)

    def log_text(self) -> str:
        """Everything mosquitto has logged so far, over all its runs."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _keyword(line: str) -> str:
    words = line.split()
    return words[0] if words else ""


def mosquitto_config(port: int, workdir: Path, extra_config: Sequence[str] = ()) -> str:
    """The text of a mosquitto.conf: one listener on 127.0.0.1:`port` plus `extra_config`.

    `extra_config` lines follow the `listener` line, so with `per_listener_settings true`
    (which is moved to the top, where mosquitto wants it) they configure that listener:
    cafile/certfile/keyfile, password_file, acl_file, allow_anonymous false, ...
    `allow_anonymous true` is added unless `extra_config` sets allow_anonymous itself.
    When run as root, `user root` keeps mosquitto from switching to the user `mosquitto`,
    which could neither write the log nor read 0600 key/password files in a 0700 tmp dir.
    """
    first = [line for line in extra_config if _keyword(line) == "per_listener_settings"]
    rest = [line for line in extra_config if _keyword(line) != "per_listener_settings"]
    lines = ["# generated by tests/conftest.py", *first]
    if os.geteuid() == 0:
        lines.append("user root")
    lines += [
        "persistence false",
        # small messages go out at once instead of waiting ~40 ms for a delayed ACK: tests of
        # hundreds of command round trips stay quick
        "set_tcp_nodelay true",
        f"log_dest file {workdir / 'mosquitto.log'}",
        "log_type all",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        f"listener {port} {LOOPBACK}",
    ]
    if not any(_keyword(line) == "allow_anonymous" for line in rest):
        lines.append("allow_anonymous true")
    lines += rest
    return "\n".join(lines) + "\n"


def start_mosquitto(
    extra_config: Sequence[str] = (), *, workdir: Path, port: int | None = None
) -> Broker:
    """Write a config into `workdir`, start mosquitto and return once its port accepts connections.

    With `port=None` a free port is picked (and another one tried if it was taken meanwhile).
    The caller must call `stop()` on the result. Files in `workdir`: mosquitto.conf,
    mosquitto.log (the broker's log) and mosquitto.out (its stdout/stderr).
    """
    binary = find_tool("mosquitto")
    attempts = 3 if port is None else 1
    for attempt in range(attempts):
        chosen = free_port() if port is None else port
        config_path = workdir / "mosquitto.conf"
        config_path.write_text(mosquitto_config(chosen, workdir, extra_config))
        process = ManagedProcess([binary, "-c", str(config_path)], workdir / "mosquitto.out")
        broker = Broker(LOOPBACK, chosen, workdir / "mosquitto.log", config_path, process)
        try:
            broker.start()
        except RuntimeError:
            broker.stop()
            in_use = "Address already in use" in broker.log_text() + process.output()
            if in_use and attempt + 1 < attempts:
                continue
            raise
        except BaseException:
            broker.stop()
            raise
        return broker
    raise AssertionError("unreachable")  # pragma: no cover


class MosquittoFactory(Protocol):
    """Starts a broker with extra mosquitto.conf lines (see `mosquitto_config`)."""

    def __call__(self, extra_config: Sequence[str] = ()) -> Broker: ...


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoFactory]:
    """A function that starts a mosquitto broker with extra config lines and returns its `Broker`.

    Each broker gets its own port and its own tmp dir; every broker started through it is
    stopped at teardown. Example: `mosquitto_factory(["password_file /tmp/x/passwd",
    "allow_anonymous false"])`.
    """
    brokers: list[Broker] = []

    def make(extra_config: Sequence[str] = ()) -> Broker:
        workdir = tmp_path_factory.mktemp("mosquitto")
        broker = start_mosquitto(extra_config, workdir=workdir)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Broker:
    """A running mosquitto broker on 127.0.0.1 with anonymous access and no persistence.

    Already accepting TCP connections when the test starts; stopped at teardown.
    """
    return mosquitto_factory()


# --------------------------------------------------------------------------------------------
# socat pty pair

_PTY_LINE = re.compile(r" PTY is (\S+)")
_SOCAT_READY = "starting data transfer loop"


@dataclass(frozen=True)
class PtyPair:
    """Two serial ports joined by a null-modem cable: bytes written to `a` arrive at `b` and back.

    `a` and `b` are symlinks in a tmp dir, made by socat (`link=`), to the real /dev/pts/N
    devices. `unplug()` kills socat: the links vanish, so opening `a`/`b` fails with
    FileNotFoundError, and file descriptors opened before fail with EIO. `replug()` starts a new
    socat: `a` and `b` are the same paths again, pointing to new ptys (`devices` may change). A
    port opened before the unplug stays dead: it must be closed and opened again, as with a
    real USB adapter. The ptys are raw (no echo, no line editing) and ignore the baud rate.
    """

    a: str
    b: str
    process: ManagedProcess = field(repr=False, compare=False)

    def is_plugged(self) -> bool:
        """True while socat runs, that is while the "cable" is plugged in."""
        return self.process.is_running()

    @property
    def devices(self) -> tuple[str, str]:
        """The /dev/pts/N paths behind `a` and `b` right now (raises OSError when unplugged)."""
        if not self.is_plugged():
            raise FileNotFoundError(f"{self.a} and {self.b} are unplugged")
        return os.path.realpath(self.a), os.path.realpath(self.b)

    def unplug(self) -> None:
        """Kill socat (SIGTERM, waited for) and make sure both links are gone; idempotent."""
        self.process.terminate()
        for link in (self.a, self.b):
            Path(link).unlink(missing_ok=True)

    def replug(self) -> None:
        """Start socat again; returns once `a` and `b` exist and pass data.

        Raises RuntimeError if it is still plugged.
        """
        if self.is_plugged():
            raise RuntimeError("the pty pair is already plugged in")
        self.unplug()  # removes stale links (a socat killed by SIGKILL leaves them behind)
        offset = self.process.spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            output = self.process.output(offset)
            if self.process.exited() is not None:
                raise RuntimeError(f"socat exited with code {self.process.exited()}:\n{output}")
            ptys = _PTY_LINE.findall(output)
            if len(ptys) == 2 and _SOCAT_READY in output:
                break
            if time.monotonic() > deadline:
                self.unplug()
                raise TimeoutError(f"socat not ready after {START_TIMEOUT_S} s:\n{output}")
            time.sleep(_POLL_S)
        if self.devices != (ptys[0], ptys[1]):  # pragma: no cover - socat changed its output
            self.unplug()
            raise RuntimeError(f"links {self.a}, {self.b} do not point to {ptys}")


def start_pty_pair(workdir: Path) -> PtyPair:
    """Start `socat -d -d pty,raw,echo=0,link=<workdir>/ttyA pty,...,link=<workdir>/ttyB`.

    Returns once both ptys exist and socat's data loop runs. The caller must call `unplug()`.
    socat's log (stderr) goes to <workdir>/socat.log.
    """
    a, b = workdir / "ttyA", workdir / "ttyB"
    argv = [find_tool("socat"), "-d", "-d"]
    argv += [f"pty,raw,echo=0,link={link}" for link in (a, b)]
    pair = PtyPair(str(a), str(b), ManagedProcess(argv, workdir / "socat.log"))
    pair.replug()
    return pair


@pytest.fixture
def pty_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PtyPair]:
    """A plugged-in `PtyPair`: paths `a` and `b` (stable across unplug/replug) joined by socat.

    socat is killed at teardown.
    """
    pair = start_pty_pair(tmp_path_factory.mktemp("pty"))
    yield pair
    pair.unplug()


# --------------------------------------------------------------------------------------------
# gpiozero


def release_mock_factory(factory: Any) -> None:
    """Close every device still holding pins of `factory`, then close and reset the factory.

    Closing the devices stops their background threads (blink, PIR sampling), as gpiozero's
    own exit handler does, but only for `Device.pin_factory`. `factory.close()` turns every
    pin back to input; `reset()` forgets pins and reservations.
    """
    with factory._res_lock:
        devices = {
            device
            for refs in factory._reservations.values()
            for ref in refs
            if (device := ref()) is not None
        }
    for device in devices:
        device.close()
    factory.close()
    factory.reset()


@pytest.fixture
def gpio_pins() -> Iterator[MockFactory]:
    """A fresh gpiozero `MockFactory(pin_class=MockPWMPin)`; pass it as `pin_factory=`.

    Pins can do PWM (`pin.state` is the duty cycle, `pin.frequency`). The global
    `Device.pin_factory` is neither read nor changed. At teardown, devices the test left open
    are closed and the factory's pins and reservations are released.
    """
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    release_mock_factory(factory)


# --------------------------------------------------------------------------------------------
# clock


@pytest.fixture
def clock() -> ManualClock:
    """A `ManualClock` at 2026-11-21 10:00 Asia/Bangkok, i.e. 03:00 UTC (`CLOCK_START`).

    Time stands still until the test awaits `clock.advance(seconds)` or `clock.advance_to(dt)`.
    """
    return ManualClock(CLOCK_START)


# --------------------------------------------------------------------------------------------
# pymodbus


@pytest.fixture
def quiet_pymodbus() -> Iterator[None]:
    """pymodbus logs an ERROR with hex dumps on every timeout; tests that stage timeouts use this.

    The drivers report faults themselves; the daemon quiets the same logger in setup_logging.
    """
    logger = logging.getLogger("pymodbus")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# waiting for I/O


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Wait until `check()` holds: for network round trips or the event loop's own timers
    (a PIR's filter), never for a ManualClock, which moves only when a test advances it."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)
