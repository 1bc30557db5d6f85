"""`streetlight run` and `streetlight demo` as a person runs them."""

from __future__ import annotations

import io
import os
import selectors
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.cli import main
from controller.commands.demo import demo
from tests.conftest import Broker
from tests.mqtt_client import Operator

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "deploy" / "examples" / "sim.toml"


def _read_until(process: subprocess.Popen[bytes], marker: str, timeout: float = 15.0) -> str:
    """Read the process's stdout until it holds `marker`; fail after `timeout` seconds.

    Reads the raw pipe: a buffered readline() after select() can leave lines that arrived
    together in Python's buffer, where select() never sees them.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while marker.encode() not in seen:
            if not selector.select(timeout):
                pytest.fail(f"no {marker!r} within {timeout} s; output so far:\n{seen.decode()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                pytest.fail(f"process ended before {marker!r}; output:\n{seen.decode()}")
            seen += chunk
    return seen.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_starts_logs_and_stops_cleanly_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    env = {**os.environ, "STREETLIGHT_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(SIM)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        started = _read_until(process, "event=zone_level zone=school-path")
        assert "event=daemon_started unit=skn-001" in started
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=15)
        out = started + rest.decode()
    finally:
        process.kill()
    assert process.returncode == 0, out
    assert f"event=stop_requested signal={signum.name}" in out
    assert "event=daemon_stopped" in out
    assert (tmp_path / "data").is_dir()


def test_run_with_a_broken_config_exits_2_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(SIM.read_text().replace("latitude = 17.155", "latitude = 170"))
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot start" in err and "unit.latitude" in err


def test_demo_simulates_a_night_and_summarises_it() -> None:
    out = io.StringIO()
    # from noon, at a speed where a millisecond's lag in the event loop is under a minute of
    # simulated time (the unit also polls its meter every simulated minute)
    start = datetime(2026, 11, 21, 12, 0, tzinfo=ZoneInfo("Asia/Bangkok"))
    assert demo(nights=1, speed=50_000, start=start, out=out) == 0
    text = out.getvalue()
    rows = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if line.startswith("  ") and "11-2" in line
    }
    assert set(rows) == {"soi-3", "market", "school-path"}
    lit_hours = float(rows["soi-3"][5])
    assert 12.4 < lit_hours < 12.9  # sunset 17:27 to sunrise 06:11
    assert "saved" in text
    # it ends with the funders' report, whose ledger agrees with the simulated meter
    [where] = [line for line in text.splitlines() if line.startswith("The funders' report: ")]
    page = Path(where.split(": ", 1)[1]).read_text(encoding="utf-8")
    assert "<svg" in page and "Soi 3 (residential)" in page
    [ledger_line] = [line for line in text.splitlines() if line.startswith("Energy ledger:")]
    [counter_line] = [line for line in text.splitlines() if "on its own counter" in line]
    ledger_kwh = float(ledger_line.split(" kWh used")[0].rsplit(" ", 1)[1])
    counter_kwh = float(counter_line.split(" kWh on its own counter")[0].rsplit(" ", 1)[1])
    assert ledger_kwh == pytest.approx(counter_kwh, abs=0.01)


def test_version_and_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("run", "check", "demo"):
        assert command in result.stdout


def test_demo_with_a_broker_can_be_watched_over_mqtt(mosquitto: Broker) -> None:
    watcher = Operator(mosquitto.host, mosquitto.port, ["streetlight/skn-001/#"])
    try:
        start = datetime(2026, 11, 21, 15, 0, tzinfo=ZoneInfo("Asia/Bangkok"))
        broker = (mosquitto.host, mosquitto.port)
        assert demo(nights=1, speed=100_000, start=start, out=io.StringIO(), broker=broker) == 0
        states = [m.json() for m in watcher.messages("streetlight/skn-001/zone/soi-3/state")]
        assert [s["level"] for s in states][:2] == [0, 100]  # off in the afternoon, on at dusk
        statuses = [m.text for m in watcher.messages("streetlight/skn-001/status")]
        assert statuses[0] == "online" and statuses[-1] == "offline"
    finally:
        watcher.close()


@pytest.mark.parametrize("bad", ["localhost", "localhost:", ":1883", "host:99999", "host:x"])
def test_demo_refuses_a_broker_that_is_not_host_and_port(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--broker", bad])
    assert exit_info.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err
