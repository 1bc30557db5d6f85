"""`streetlight schedule` and the schedule parts of `check`, as a technician uses them."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from controller.cli import main
from controller.commands.schedule import schedule_json
from controller.config_load import config_warnings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "deploy" / "examples" / "sim.toml"

OSLO = """
[unit]
id = "osl-001"
site = "Oslo test"
latitude = 59.91
longitude = 10.75
timezone = "Europe/Oslo"

[profiles.city]
steps = [{ at = "on", level = 100 }, { at = "22:00", level = 50 }, { at = "05:00", level = 80 }]

[[zones]]
id = "karl-johan"
profile = "city"
rated_w = 100
outputs = [{ type = "sim" }]

[[calendar]]
name = "Constitution Day"
dates = ["05-17"]
level = 100

[[calendar]]
name = "Maintenance"
dates = ["2026-09-15"]
zones = ["karl-johan"]
level = 0
"""

TROMSO = OSLO.replace("latitude = 59.91", "latitude = 69.65").replace(
    "longitude = 10.75", "longitude = 18.96"
)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(argv) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_schedule_json_has_the_contract_shape(capsys: pytest.CaptureFixture[str]) -> None:
    plan = run_json(
        ["schedule", "--config", str(SIM), "--date", "2026-11-21", "--days", "3", "--json"], capsys
    )
    assert plan["unit"] == "skn-001"
    nights = plan["nights"]
    assert isinstance(nights, list) and len(nights) == 3
    first = nights[0]
    assert first["date"] == "2026-11-21"
    for key in ("sunset", "sunrise", "on_at", "off_at"):
        assert first[key].endswith("+07:00")
    assert first["sunset"].startswith("2026-11-21T17:27")  # the almanac: 17:27 in Sakon Nakhon
    assert first["sunrise"].startswith("2026-11-22T06:11")
    soi3 = first["zones"]["soi-3"]
    assert [change["level"] for change in soi3] == [100, 60, 40, 80, 0]
    assert all(change["source"] == "schedule" for change in soi3)
    assert soi3[0]["at"] == first["sunset"]  # soi-3 switches at sunset
    times = [datetime.fromisoformat(change["at"]) for change in soi3]
    assert times == sorted(times)


def test_schedule_table_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "--config", str(SIM), "--date", "2026-11-21"]) == 0
    out = capsys.readouterr().out
    assert "Night of Sat 2026-11-21: sunset 17:27, sunrise 06:11" in out
    assert "soi-3" in out and "22:00 60% (fade 10 min)" in out and "06:11 off" in out


def test_calendar_nights_show_their_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config(tmp_path, OSLO))
    festival = run_json(["schedule", "--config", path, "--date", "2027-05-17", "--json"], capsys)
    changes = festival["nights"][0]["zones"]["karl-johan"]  # type: ignore[index]
    assert [(c["level"], c["source"], c["calendar"]) for c in changes] == [
        (100, "calendar", "Constitution Day"),
        (0, "calendar", "Constitution Day"),
    ]
    maintenance = run_json(["schedule", "--config", path, "--date", "2026-09-15", "--json"], capsys)
    changes = maintenance["nights"][0]["zones"]["karl-johan"]  # type: ignore[index]
    assert {c["level"] for c in changes} == {0}


def test_polar_night_and_day_succeed_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config(tmp_path, TROMSO))
    winter = run_json(["schedule", "--config", path, "--date", "2026-12-21", "--json"], capsys)
    night = winter["nights"][0]  # type: ignore[index]
    assert night["sunset"] is None and night["sunrise"] is None
    assert "polar night" in night["note"]
    assert night["zones"]["karl-johan"][0]["level"] == 100  # on all night by default
    summer = run_json(["schedule", "--config", path, "--date", "2026-06-21", "--json"], capsys)
    night = summer["nights"][0]  # type: ignore[index]
    assert night["on_at"] is None and "polar day" in night["note"]
    assert night["zones"]["karl-johan"] == []


def test_a_year_of_nights_plans_in_one_call(tmp_path: Path) -> None:
    settings = load_settings(SIM, data_dir=tmp_path)
    plan = schedule_json(settings, date(2026, 1, 1), 366)
    assert len(plan["nights"]) == 366
    assert all(n["zones"]["soi-3"][-1]["level"] == 0 for n in plan["nights"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--date", "2026-02-30"], "is not a date"),
        (["--days", "0"], "1 to 366"),
        (["--days", "367"], "1 to 366"),
        (["--days", "two"], "not a number of nights"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["schedule", "--config", str(SIM), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_check_warns_about_a_step_that_crosses_dusk_in_summer(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, OSLO))
    warnings = [str(w) for w in config_warnings(settings, date(2026, 1, 1))]
    crossing = [w for w in warnings if w.startswith("profiles.city.steps[1]")]
    assert crossing, warnings
    assert "'22:00' falls before the lamps go on" in crossing[0]
    assert "it applies from switch-on then" in crossing[0]
    # the 05:00 step falls after dawn on summer mornings
    assert any(
        w.startswith("profiles.city.steps[2]") and "after the lamps go off" in w for w in warnings
    )


def test_a_dimming_time_already_past_at_dusk_applies_from_switch_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config(tmp_path, OSLO))
    summer = run_json(["schedule", "--config", path, "--date", "2026-06-21", "--json"], capsys)
    changes = summer["nights"][0]["zones"]["karl-johan"]  # type: ignore[index]
    assert [c["level"] for c in changes] == [50, 0]  # dusk is after 22:00; 05:00 is after dawn
    winter = run_json(["schedule", "--config", path, "--date", "2026-12-21", "--json"], capsys)
    changes = winter["nights"][0]["zones"]["karl-johan"]  # type: ignore[index]
    assert [c["level"] for c in changes] == [100, 50, 80, 0]


def test_no_step_warnings_for_the_thai_example(tmp_path: Path) -> None:
    settings = load_settings(SIM, data_dir=tmp_path)
    assert [
        w for w in config_warnings(settings, date(2026, 1, 1)) if w.path.startswith("profiles")
    ] == []


def test_calendar_and_motion_config_mistakes_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = OSLO + (
        '\n[[calendar]]\nname = "Bad"\ndates = ["2026-02-30", "11-24..11-20x"]\nlevel = 100\n'
        '\n[[calendar]]\nname = "Both"\ndates = ["12-30"]\nlevel = 100\nprofile = "city"\n'
        '\n[[calendar]]\nname = "Nowhere"\ndates = ["12-31"]\ngroups = ["no-such-group"]\n'
        'profile = "festival"\n'
    )
    broken = broken.replace(
        'outputs = [{ type = "sim" }]',
        'outputs = [{ type = "sim" }]\n'
        'motion = { level = 100, hold_s = 30, neighbours = ["karl-johan", "nope"] }',
    )
    assert main(["check", "--config", str(config(tmp_path, broken))]) == 2
    out = capsys.readouterr().out
    assert "calendar[2].dates" in out and "'2026-02-30' is not a date" in out
    assert "calendar[3]: a calendar entry needs exactly one of level" in out
    assert "calendar[4].groups[0]: no zone is in group 'no-such-group'" in out
    assert "calendar[4].profile: no profile named 'festival'" in out
    assert "zones[0].motion.neighbours[0]" in out and "zones[0].motion.neighbours[1]" in out


def test_profile_step_level_0_is_refused_with_the_alternative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = OSLO.replace('{ at = "22:00", level = 50 }', '{ at = "22:00", level = 0 }')
    assert main(["check", "--config", str(config(tmp_path, text))]) == 2
    assert "profiles.city.steps[1].level" in capsys.readouterr().out


def test_a_neighbour_without_its_own_motion_table_answers_by_the_namers(tmp_path: Path) -> None:
    from controller.plans import neighbours_of, plans_of

    settings = load_settings(SIM, data_dir=tmp_path)
    plans = plans_of(settings)
    assert neighbours_of(settings) == {"soi-3": ("school-path",), "school-path": ()}
    assert plans["school-path"].motion is not None and plans["school-path"].motion.hold_s == 90
    assert plans["market"].motion is None  # no motion table, named by nobody
    text = SIM.read_text().replace(
        "motion = { level = 100, rise_s = 2, hold_s = 90, fade_s = 30 }\n", ""
    )
    settings = load_settings(config(tmp_path, text.replace('"../../var/sim"', '"data"')))
    inherited = plans_of(settings)["school-path"].motion
    assert inherited is not None and inherited.hold_s == 60  # soi-3's table
