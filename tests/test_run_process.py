"""`streetlight run` as systemd runs it: a real process, a real broker, real signals.

kill -9 and restart, SIGTERM, SIGHUP with a good and a bad config, and the sd_notify messages
systemd would receive (on a real datagram socket), all on the simulated unit of sim.toml.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Broker, eventually
from tests.mqtt_client import Operator

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "deploy" / "examples" / "sim.toml"
P = "streetlight/skn-001"


class Daemon:
    """One `streetlight run` process; its output goes to a file the test can read."""

    def __init__(self, config: Path, broker: Broker, data_dir: Path, extra_env: dict[str, str]):
        self.log_path = data_dir.parent / f"daemon-{data_dir.name}.log"
        env = {
            **os.environ,
            "STREETLIGHT_DATA_DIR": str(data_dir),
            "STREETLIGHT_MQTT__ENABLED": "true",
            "STREETLIGHT_MQTT__HOST": broker.host,
            "STREETLIGHT_MQTT__PORT": str(broker.port),
            "STREETLIGHT_MQTT__RECONNECT_MIN_S": "0.1",
            "STREETLIGHT_MQTT__RECONNECT_MAX_S": "1",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = 15.0) -> int:
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of sim.toml the test may change, with the sensors' randomness left as it is."""
    path = tmp_path / "config.toml"
    path.write_text(SIM.read_text())
    return path


@pytest.fixture
def daemons(config: Path, mosquitto: Broker, tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def start(
    daemons: list[Daemon], config: Path, broker: Broker, data_dir: Path, **env: str
) -> Daemon:
    daemon = Daemon(config, broker, data_dir, env)
    daemons.append(daemon)
    return daemon


@pytest.fixture
def operator(mosquitto: Broker) -> Iterator[Operator]:
    op = Operator(mosquitto.host, mosquitto.port, [f"{P}/#"])
    yield op
    op.close()


def edit(config: Path, old: str, new: str) -> None:
    """Change the config file as a technician would, before sending SIGHUP."""
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


async def online(op: Operator, after: int = 0) -> None:
    await op.wait_for(f"{P}/status", lambda m: m.text == "online", after=after, timeout_s=15)


async def test_kill_9_leaves_the_will_and_a_restart_keeps_the_override(
    daemons: list[Daemon], config: Path, mosquitto: Broker, tmp_path: Path, operator: Operator
) -> None:
    data = tmp_path / "data"
    first = start(daemons, config, mosquitto, data)
    await online(operator)
    operator.command(f"{P}/zone/market/set", {"id": "keep-me", "level": 35, "duration": 7200})
    ack = await operator.wait_for(f"{P}/ack", lambda m: m.json()["id"] == "keep-me")
    assert ack.json()["ok"] is True
    await operator.wait_for(f"{P}/zone/market/state", lambda m: m.json()["command_id"] == "keep-me")
    statuses = operator.count(f"{P}/status")
    first.signal(signal.SIGKILL)
    first.wait()
    # the broker sees the socket close and publishes the unit's will
    await operator.wait_for(f"{P}/status", lambda m: m.text == "offline", after=statuses)
    late = Operator(mosquitto.host, mosquitto.port, [f"{P}/status"], client_id="late")
    try:  # the will is retained: a platform that looks later still sees the unit is offline
        assert (await late.wait_for(f"{P}/status")).text == "offline"
    finally:
        late.close()
    start(daemons, config, mosquitto, data)
    await online(operator, after=statuses)
    restored = await operator.wait_for(
        f"{P}/zone/market/state",
        lambda m: m.json()["command_id"] == "keep-me" and m.json()["source"] == "override",
        after=0,
    )
    assert restored.json()["level"] == 35


async def test_sigterm_publishes_offline_and_exits_0(
    daemons: list[Daemon], config: Path, mosquitto: Broker, tmp_path: Path, operator: Operator
) -> None:
    daemon = start(daemons, config, mosquitto, tmp_path / "data")
    await online(operator)
    statuses = operator.count(f"{P}/status")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.output()
    offline = await operator.wait_for(f"{P}/status", after=statuses)
    assert offline.text == "offline"
    out = daemon.output()
    assert "event=stop_requested signal=SIGTERM" in out
    assert "event=unit_stopped" in out


async def test_sighup_reloads_a_good_config_and_refuses_a_bad_one(
    daemons: list[Daemon], config: Path, mosquitto: Broker, tmp_path: Path, operator: Operator
) -> None:
    daemon = start(daemons, config, mosquitto, tmp_path / "data")
    await online(operator)
    infos = operator.count(f"{P}/info")
    edit(config, 'name = "Night market"', 'name = "Talat"')
    daemon.signal(signal.SIGHUP)
    event = await operator.wait_for(f"{P}/event", lambda m: m.json()["kind"] == "config_reloaded")
    assert event.json()["zone"] is None
    info = await operator.wait_for(f"{P}/info", after=infos)
    assert [z["name"] for z in info.json()["zones"]][1] == "Talat"
    # a bad config is refused, logged, and the unit keeps running with the old one
    edit(config, "latitude = 17.155", "latitude = 170")
    daemon.signal(signal.SIGHUP)
    await eventually(lambda: "event=config_reload_refused" in daemon.output(), "refused", 10)
    assert "unit.latitude" in daemon.output()
    operator.command(f"{P}/zone/market/set", {"id": "still-here", "level": 20})
    ack = await operator.wait_for(f"{P}/ack", lambda m: m.json()["id"] == "still-here")
    assert ack.json()["ok"] is True
    assert daemon.process.poll() is None


async def test_systemd_hears_ready_watchdog_reloading_and_stopping(
    daemons: list[Daemon], config: Path, mosquitto: Broker, tmp_path: Path, operator: Operator
) -> None:
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(address))
        systemd.settimeout(10)
        daemon = start(
            daemons,
            config,
            mosquitto,
            tmp_path / "data",
            NOTIFY_SOCKET=str(address),
            WATCHDOG_USEC="200000",  # a ping every 0.1 s, so the test sees several
        )

        def receive(expected: str) -> list[str]:
            heard: list[str] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = systemd.recv(4096).decode()
                heard.append(message)
                if message.startswith(expected):
                    return heard
            raise AssertionError(f"no {expected!r}; heard {heard}")

        receive("READY=1")
        assert receive("WATCHDOG=1")
        assert receive("WATCHDOG=1")
        daemon.signal(signal.SIGHUP)
        heard = receive("RELOADING=1")
        assert "MONOTONIC_USEC=" in heard[-1]
        receive("READY=1")  # the reload is done
        daemon.signal(signal.SIGTERM)
        receive("STOPPING=1")
        assert daemon.wait() == 0, daemon.output()
