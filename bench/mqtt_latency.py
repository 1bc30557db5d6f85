"""MQTT command latency: a zone command published to the zone's new state received, on loopback.

The daemon is the real program, `streetlight run --config deploy/examples/sim.toml`, started
as a subprocess with MQTT switched on by environment variables (127.0.0.1, a fresh broker,
`STREETLIGHT_MQTT__MAX_COMMANDS_PER_S=1000` instead of the default 20, and a data_dir in a
temporary directory on the machine's disk: every accepted command is written to SQLite with
`synchronous=FULL`, so its fsync is part of what is timed). The broker is mosquitto with
`set_tcp_nodelay true`, mosquitto's default logging and no persistence (`start_broker`). Once
the daemon's first zone state has arrived, a paho-mqtt 2.x client (MQTT 5, TCP_NODELAY on its
socket) publishes commands `{"id": ..., "level": ..., "duration": 600}` at QoS 1 to
`streetlight/skn-001/zone/<zone>/set` and times each one with `time.perf_counter`: from just
before `publish()` to the arrival of the zone's State whose `command_id` is the command's id.

The client runs paho's network loop in the measuring thread itself (no `loop_start`): a
publish is written to the socket inside `publish()`, and a message is timestamped as paho reads
it, with no thread hand-off on the client side. Commands go round the three zones and
alternate each zone's level between two values, so every command changes a zone's level.

- one at a time: the next command is sent when the previous one's State has arrived; 20
  warm-up commands, then 1,000 timed. The Ack (sent before the State) is timed too. Should
  the daemon answer in under 1 ms, the client waits (untimed) so that no more than 990
  commands fall in any 1.05 s, inside the daemon's limit of 1,000 a second.
- burst: after a 1.5 s pause (so the 1-second command limit starts empty), 1,000 commands as
  fast as the client can publish them (paho keeps at most 20 QoS 1 messages in flight; the
  rest wait in its queue, and their time counts). The daemon may apply several commands for
  a zone with one write; it still sends a State with each command's id. Each command is timed
  from its own `publish()` to the first State of its zone that carries it or a later command
  for that zone (when the zone shows it); how many got a State with their own id is counted,
  and must be all of them (the contract: every accepted command is confirmed by a State).
  The burst brings the client about 2,000 QoS 1 messages (an Ack and a State per command),
  more than mosquitto's default queue of 1,000 per client, so this broker has
  `max_queued_messages 10000`; with the default the broker itself drops States.
- one at a time again, against a second mosquitto with `set_tcp_nodelay false` (mosquitto's
  default), with a new daemon: for comparison only.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bench import Result
from controller.mqtt_link import send_at_once
from tests.conftest import LOOPBACK, Broker, ManagedProcess, find_tool, free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "examples" / "sim.toml"
UNIT = "streetlight/skn-001"
ZONES = ("soi-3", "market", "school-path")
LEVELS = (30, 70)
COMMANDS = 1000
WARMUP = 20
MAX_COMMANDS_PER_S = 1000
# one at a time sends at most PACE_MAX commands in any PACE_WINDOW_S, inside the daemon's limit
PACE_MAX = MAX_COMMANDS_PER_S - 10
PACE_WINDOW_S = 1.05
# how long to wait for a State before counting the command as unanswered
ANSWER_TIMEOUT_S = 5.0
BURST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
TARGET_ONE_P99_MS = 2.0


def streetlight_program() -> Path:
    """The `streetlight` console script of the interpreter running the benchmarks."""
    program = Path(sys.executable).with_name("streetlight")
    if not program.exists():
        raise SystemExit(f"{program} is missing: install the project with `make venv`")
    return program


def daemon_env(port: int, data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `streetlight run`: ours without STREETLIGHT_* or systemd variables,
    with MQTT on 127.0.0.1:`port`, the command limit raised and `data_dir`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STREETLIGHT_") and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")
    }
    env.update(
        {
            "STREETLIGHT_MQTT__ENABLED": "true",
            "STREETLIGHT_MQTT__HOST": LOOPBACK,
            "STREETLIGHT_MQTT__PORT": str(port),
            "STREETLIGHT_MQTT__MAX_COMMANDS_PER_S": str(MAX_COMMANDS_PER_S),
            "STREETLIGHT_DATA_DIR": str(data_dir),
        }
    )
    env.update(extra or {})
    return env


def daemon_argv() -> list[str]:
    """`streetlight run --config deploy/examples/sim.toml`, as systemd would run it."""
    return [str(streetlight_program()), "run", "--config", str(CONFIG)]


def start_daemon(
    port: int, workdir: Path, argv: Sequence[str] | None = None, log_name: str = "daemon.log"
) -> subprocess.Popen[bytes]:
    """Start the daemon on `port`'s broker, its data_dir and log (stdout and stderr) in
    `workdir`; returns at once."""
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    with (workdir / log_name).open("ab") as out:
        return subprocess.Popen(
            list(argv) if argv is not None else daemon_argv(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=daemon_env(port, data_dir),
            cwd=ROOT,
        )


def stop_daemon(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the daemon and wait for it (SIGKILL after STOP_TIMEOUT_S); its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
    return process.returncode


def start_broker(workdir: Path, *, nodelay: bool) -> Broker:
    """mosquitto on a free 127.0.0.1 port with exactly this config, `set_tcp_nodelay` on or
    off; returns once it accepts connections. The caller must `stop()` it.

    Not tests/conftest.py's `mosquitto_config`, whose defaults are the tests' to change: this
    is a broker as a city would run it (mosquitto's default logging, which writes nothing per
    message), with nothing persisted and a per-client queue large enough for the burst.
    """
    config = workdir / "mosquitto.conf"
    for attempt in range(3):
        port = free_port()
        lines = [
            *(["user root"] if os.geteuid() == 0 else []),
            "persistence false",
            f"log_dest file {workdir / 'mosquitto.log'}",
            f"set_tcp_nodelay {'true' if nodelay else 'false'}",
            "max_queued_messages 10000",  # the burst's Acks and States (see the docstring)
            f"listener {port} {LOOPBACK}",
            "allow_anonymous true",
        ]
        config.write_text("\n".join(lines) + "\n")
        process = ManagedProcess([find_tool("mosquitto"), "-c", str(config)], workdir / "out")
        broker = Broker(LOOPBACK, port, workdir / "mosquitto.log", config, process)
        try:
            broker.start()
        except RuntimeError:
            broker.stop()
            if attempt < 2 and "Address already in use" in process.output():
                continue
            raise
        return broker
    raise AssertionError("unreachable")


@dataclass
class Received:
    """What the client has seen: arrival times by command id, and every live State."""

    states: dict[str, float] = field(default_factory=dict)
    # every live State in arrival order: (arrival, zone, command_id)
    zone_states: list[tuple[float, str, str | None]] = field(default_factory=list)
    acks: dict[str, float] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    live_states: int = 0
    first_state_at: float | None = None
    other: dict[str, int] = field(default_factory=dict)

    def forget_first_state(self) -> None:
        """Wait for a new first State (the daemon is started again)."""
        self.first_state_at = None


class BenchClient:
    """A paho-mqtt 2.x MQTT 5 client whose network loop runs in the caller's thread.

    Retained messages (what the broker held before we subscribed) are ignored: only live
    messages count. Every State and Ack is timestamped with `time.perf_counter` as it is read.
    """

    def __init__(self, port: int, client_id: str) -> None:
        self.port = port
        self.received = Received()
        self._connected = False
        self._subscribed = False
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        client.on_socket_open = send_at_once
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            raise RuntimeError(f"the broker refused the benchmark client: {reason_code}")
        self._connected = True

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscribed = True

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        if msg.retain:
            return
        got = self.received
        topic = msg.topic
        if topic.endswith("/state"):
            got.live_states += 1
            if got.first_state_at is None:
                got.first_state_at = now
            command_id = json.loads(msg.payload).get("command_id")
            got.zone_states.append((now, topic.split("/")[-2], command_id))
            if command_id is not None:
                got.states.setdefault(command_id, now)
        elif topic == f"{UNIT}/ack":
            ack = json.loads(msg.payload)
            if ack.get("id") is not None:
                got.acks.setdefault(ack["id"], now)
                if not ack.get("ok"):
                    got.refused[ack["id"]] = str(ack.get("error"))
        else:
            kind = topic.rsplit("/", 1)[-1]
            got.other[kind] = got.other.get(kind, 0) + 1

    def connect(self, topics: Sequence[str]) -> None:
        """Connect and subscribe (QoS 1); returns once the broker has confirmed both."""
        self.client.connect(LOOPBACK, self.port, keepalive=60)
        self.wait_until(lambda: self._connected, START_TIMEOUT_S, "the broker's CONNACK")
        self.client.subscribe([(topic, 1) for topic in topics])
        self.wait_until(lambda: self._subscribed, START_TIMEOUT_S, "the broker's SUBACK")

    def wait_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> bool:
        """Run the network loop until `done()`; False after `timeout_s` (no exception)."""
        deadline = time.monotonic() + timeout_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            rc = self.client.loop(timeout=min(left, 0.5))
            if rc != paho.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"MQTT connection lost while waiting for {what}: {rc}")
        return True

    def publish(self, topic: str, payload: str) -> None:
        """Publish at QoS 1; written to the socket at once unless 20 are already in flight."""
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"cannot publish to {topic}: {info.rc}")

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()


def command(index: int, prefix: str) -> tuple[str, str, str]:
    """The `index`th command of a run: (topic, payload, id). Zones in turn, each zone's level
    alternating between LEVELS, so every command changes its zone's level."""
    zone = ZONES[index % len(ZONES)]
    level = LEVELS[(index // len(ZONES)) % len(LEVELS)]
    command_id = f"{prefix}-{index}"
    payload = json.dumps({"id": command_id, "level": level, "duration": 600})
    return f"{UNIT}/zone/{zone}/set", payload, command_id


@dataclass
class Running:
    """A broker, a daemon connected to it and the client measuring them."""

    broker: Broker
    daemon: subprocess.Popen[bytes]
    client: BenchClient
    workdir: Path

    def log_tail(self) -> str:
        """The end of the daemon's log, for error messages."""
        try:
            return (self.workdir / "daemon.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Stop client, daemon and broker, in that order; each even if another fails."""
        try:
            self.client.close()
        finally:
            try:
                stop_daemon(self.daemon)
            finally:
                self.broker.stop()


def start_all(workdir: Path, *, nodelay: bool) -> Running:
    """Start mosquitto (`set_tcp_nodelay` as given), connect the client, start the daemon and
    wait for its first live State."""
    broker = start_broker(workdir, nodelay=nodelay)
    client = BenchClient(broker.port, f"bench-{os.getpid()}")
    try:
        client.connect([f"{UNIT}/zone/+/state", f"{UNIT}/ack"])
    except BaseException:
        broker.stop()
        raise
    running = Running(broker, start_daemon(broker.port, workdir), client, workdir)
    try:
        got = running.client.received
        if not running.client.wait_until(
            lambda: got.first_state_at is not None, START_TIMEOUT_S, "the daemon's first state"
        ):
            raise RuntimeError(
                f"the daemon published no state within {START_TIMEOUT_S} s; its log:\n"
                f"{running.log_tail()}"
            )
    except BaseException:
        running.stop()
        raise
    return running


def one_at_a_time(running: Running, prefix: str) -> tuple[list[float], list[float]]:
    """Seconds from publish to State, and to Ack, of COMMANDS commands sent one at a time."""
    client, got = running.client, running.client.received
    to_state: list[float] = []
    to_ack: list[float] = []
    recent: deque[float] = deque()  # send times within the daemon's 1-second command window
    for index in range(WARMUP + COMMANDS):
        topic, payload, command_id = command(index, prefix)
        # a daemon faster than 1 ms a command would refuse the 1,001st within a second: wait
        # (untimed) rather than be refused
        while recent and time.monotonic() - recent[0] > PACE_WINDOW_S:
            recent.popleft()
        if len(recent) >= PACE_MAX:
            client.wait_until(lambda: False, recent[0] + PACE_WINDOW_S - time.monotonic(), "")
            recent.popleft()
        recent.append(time.monotonic())
        start = time.perf_counter()
        client.publish(topic, payload)
        answered = functools.partial(operator.contains, got.states, command_id)
        if not client.wait_until(answered, ANSWER_TIMEOUT_S, "a state"):
            refused = got.refused.get(command_id)
            raise RuntimeError(
                f"no state for command {command_id} within {ANSWER_TIMEOUT_S} s"
                + (f" (refused: {refused})" if refused else "")
                + f"; daemon log:\n{running.log_tail()}"
            )
        if index >= WARMUP:
            to_state.append(got.states[command_id] - start)
            # the Ack is published before the State, so it has arrived too (or never will)
            if command_id in got.acks:
                to_ack.append(got.acks[command_id] - start)
    return to_state, to_ack


@dataclass(frozen=True)
class Burst:
    """A burst's outcome.

    `in_effect` has, for every command, the seconds from its publish to the first State of its
    zone that carries it or a later command for the same zone: when the zone showed it (or
    something newer). `own` has the commands that got a State with their own id, `to_ack`
    every Ack.
    """

    in_effect: list[float]
    own: list[float]
    to_ack: list[float]
    refused: int
    unanswered: int
    sending_s: float
    total_s: float


def burst(running: Running, prefix: str) -> Burst:
    """COMMANDS commands published as fast as the client can, each one timed to its State."""
    client, got = running.client, running.client.received
    commands = [command(index, prefix) for index in range(COMMANDS)]
    ids = [command_id for _, _, command_id in commands]
    first_state, acks_before = len(got.zone_states), len(got.acks)
    sent: list[float] = []
    begin = time.perf_counter()
    for topic, payload, _ in commands:
        sent.append(time.perf_counter())
        client.publish(topic, payload)
        client.client.loop(timeout=0)  # take PUBACKs, Acks and States in as they come
    sending_s = time.perf_counter() - begin
    last = ids[-len(ZONES) :]  # each zone's last command: never superseded

    def settled() -> bool:  # cheap: it runs after every packet
        return len(got.acks) - acks_before >= COMMANDS and all(i in got.states for i in last)

    client.wait_until(settled, BURST_TIMEOUT_S, "the burst's acks and last states")
    client.wait_until(lambda: False, 0.2, "late states")  # anything still on its way
    # when each zone first showed command `index` or a later one
    index_of = {command_id: index for index, command_id in enumerate(ids)}
    shown: list[float | None] = [None] * COMMANDS
    for arrival, zone, command_id in got.zone_states[first_state:]:
        newest = index_of.get(command_id) if command_id is not None else None
        if newest is None:
            continue
        if zone != ZONES[newest % len(ZONES)]:
            raise RuntimeError(f"command {command_id} shown on zone {zone}")
        for index in range(newest, -1, -len(ZONES)):  # the same zone's commands up to it
            if shown[index] is not None:
                break
            shown[index] = arrival
    in_effect = [t - sent[i] for i, t in enumerate(shown) if t is not None]
    ends = [t for t in shown if t is not None]
    return Burst(
        in_effect=in_effect,
        own=[got.states[i] - sent[index_of[i]] for i in ids if i in got.states],
        to_ack=[got.acks[i] - sent[index_of[i]] for i in ids if i in got.acks],
        refused=sum(1 for i in ids if i in got.refused),
        unanswered=sum(1 for t in shown if t is None),
        sending_s=sending_s,
        total_s=(max(ends) if ends else time.perf_counter()) - begin,
    )


def percentile(samples: Sequence[float], pct: int) -> float:
    """The `pct`th percentile (1-99), inclusive method, as the other benchmarks compute p99."""
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def _ms(seconds: float) -> float:
    return seconds * 1000


def run() -> list[Result]:
    """The figures above, measured on this machine."""
    with tempfile.TemporaryDirectory(prefix="streetlight-bench-") as tmp:
        fast_dir, slow_dir = Path(tmp) / "nodelay", Path(tmp) / "default"
        fast_dir.mkdir()
        slow_dir.mkdir()
        running = start_all(fast_dir, nodelay=True)
        try:
            one, ack = one_at_a_time(running, "one")
            time.sleep(1.5)  # the 1-second command limit starts empty for the burst
            flood = burst(running, "burst")
        finally:
            running.stop()
        running = start_all(slow_dir, nodelay=False)
        try:
            plain, _ = one_at_a_time(running, "plain")
        finally:
            running.stop()
    n = f"{COMMANDS:,}"
    results = [
        Result(f"one at a time ({n}), nodelay broker: p50", _ms(percentile(one, 50)), "ms"),
        Result(
            f"one at a time ({n}), nodelay broker: p99",
            _ms(percentile(one, 99)),
            "ms",
            high=TARGET_ONE_P99_MS,
        ),
        Result("one at a time: max", _ms(max(one)), "ms"),
        Result("one at a time: command to Ack, p50", _ms(percentile(ack, 50)), "ms"),
        Result("one at a time: command to Ack, p99", _ms(percentile(ack, 99)), "ms"),
    ]
    if len(flood.in_effect) >= 2:
        results += [
            Result(
                f"burst ({n}): p50, to the zone showing it",
                _ms(percentile(flood.in_effect, 50)),
                "ms",
            ),
            Result(
                f"burst ({n}): p99, to the zone showing it",
                _ms(percentile(flood.in_effect, 99)),
                "ms",
            ),
        ]
    if len(flood.to_ack) >= 2:
        results += [
            Result("burst: command to Ack, p50", _ms(percentile(flood.to_ack, 50)), "ms"),
            Result("burst: command to Ack, p99", _ms(percentile(flood.to_ack, 99)), "ms"),
        ]
    results += [
        Result(
            "burst: commands confirmed by a State with their id", len(flood.own), "", fmt=",.0f"
        ),
        Result(
            "burst: commands with no State of their own id",
            COMMANDS - len(flood.own),
            "",
            high=1,
            fmt=",.0f",
        ),
        Result("burst: commands refused (Ack ok=false)", flood.refused, "", fmt=",.0f"),
        Result(
            f"burst: commands not shown by any State in {BURST_TIMEOUT_S:g} s",
            flood.unanswered,
            "",
            fmt=",.0f",
        ),
        Result("burst: time to publish all", _ms(flood.sending_s), "ms", fmt=",.1f"),
        Result("burst: first publish to last State", _ms(flood.total_s), "ms", fmt=",.1f"),
        Result(
            "burst: commands per second",
            COMMANDS / flood.total_s if flood.total_s > 0 else 0.0,
            "cmd/s",
            fmt=",.0f",
        ),
        Result(f"one at a time ({n}), default broker: p50", _ms(percentile(plain, 50)), "ms"),
        Result(f"one at a time ({n}), default broker: p99", _ms(percentile(plain, 99)), "ms"),
    ]
    return results
