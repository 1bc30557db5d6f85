"""`streetlight commission`: every driver says what and where it is, and is tested visibly."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main
from controller.clock import ScaledClock
from controller.commands.commission import commission

EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "examples"
SIM = EXAMPLES / "sim.toml"
EVENING = datetime(2026, 11, 21, 19, 0, tzinfo=ZoneInfo("Asia/Bangkok"))


def test_the_simulated_unit_passes_and_every_driver_is_named() -> None:
    out = io.StringIO()
    # an hour of simulated street a tenth of a second: passers-by come within the wait
    clock = ScaledClock(EVENING, speed=36_000)
    code = commission(str(SIM), hold_s=0, wait_s=3600, clock=clock, out=out)
    text = out.getvalue()
    assert code == EXIT_OK, text
    for zone in ("soi-3", "market", "school-path"):
        assert f"zone {zone}" in text
    assert "meter cabinet" in text
    assert text.count("PASS") == text.count("    PASS") >= 3 + 2 + 3 + 1
    assert "FAIL" not in text
    assert "Result: " in text and "0 failed" in text


def test_a_broken_output_fails_with_its_reason(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        SIM.read_text().replace('data_dir = "../../var/sim"', f'data_dir = "{tmp_path}"')
    )
    out = io.StringIO()
    # no passers-by come in a zero wait, so each motion sensor fails and says what to do
    code = commission(str(config), hold_s=0, wait_s=0, clock=ScaledClock(EVENING, speed=1), out=out)
    text = out.getvalue()
    assert code == EXIT_FAILED
    assert "FAIL  no motion within 0 s: walk past the sensor" in text
    assert "Fix what each FAIL says" in text


def test_a_bad_config_exits_2_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[unit]\nid = 'x'\n")
    assert (
        main(["commission", "--config", str(config), "--hold", "0", "--wait", "0"]) == EXIT_CONFIG
    )
    assert "the hardware cannot be tested" in capsys.readouterr().err


def test_hold_and_wait_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["commission", "--hold", "-1"])
    assert "0 to 600 seconds" in capsys.readouterr().err
