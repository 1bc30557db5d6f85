"""`streetlight report --forecast`: a year's scheduled energy, now and with other profiles."""

from __future__ import annotations

import io
import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.cli import EXIT_CONFIG, EXIT_OK
from controller.clock import SystemClock
from controller.commands.forecast import forecast_command
from controller.config_load import load_settings
from controller.energy_model import zone_power
from controller.forecast import (
    ForecastError,
    forecast,
    forecast_json,
    parse_spec,
    resolve_alternative,
)
from controller.plans import plans_of, site_of
from controller.settings import Settings
from schedules import decide, solar
from schedules.decide import scheduled
from schedules.profile import local_time_on

SIM = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sim.toml"
FIRST = date(2026, 11, 21)

# soi-3's residential profile, dimmed further: same switching edges, lower levels
DIMMER = """
[profiles.dimmer]
steps = [
  { at = "on", level = 80 },
  { at = "21:00", level = 40, fade_s = 600 },
  { at = "virtual_midnight", level = 25, fade_s = 600 },
  { at = "off-00:45", level = 60, fade_s = 600 },
]
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(SIM, data_dir=tmp_path)


def _run(*alternatives: str, fmt: str = "json", start: date | None = FIRST) -> tuple[int, str]:
    out = io.StringIO()
    code = forecast_command(
        str(SIM),
        alternatives=alternatives,
        start=start,
        fmt="json" if fmt == "json" else "text",
        out=out,
    )
    return code, out.getvalue()


def _json(*alternatives: str) -> dict[str, Any]:
    code, text = _run(*alternatives)
    assert code == EXIT_OK
    result: dict[str, Any] = json.loads(text)
    return result


def _minute_by_minute(settings: Settings, first: date, nights: int) -> dict[str, tuple[float, ...]]:
    """(kWh, baseline kWh, burning hours) per zone from the level the daemon would follow,
    sampled at the middle of every minute from noon to noon: independent of the plan's
    pieces and of `lit_and_level_hours`."""
    site = site_of(settings)
    plans = plans_of(settings)
    result: dict[str, tuple[float, ...]] = {}
    for zone in settings.zones:
        power = zone_power(zone)
        wh = lit_min = 0.0
        start = local_time_on(site, first, datetime.min.time().replace(hour=12))
        for minute in range(nights * 24 * 60):
            moment = start + timedelta(minutes=minute, seconds=30)
            level, _, _ = scheduled(site, plans[zone.id], moment)
            if level > 0:
                wh += power.watts(level) / 60
                lit_min += 1
        result[zone.id] = (wh / 1000, zone.baseline_power_w * lit_min / 60 / 1000, lit_min / 60)
    return result


def test_current_energy_agrees_with_the_level_integrated_minute_by_minute(
    settings: Settings,
) -> None:
    nights = 3
    result = forecast(settings, FIRST, nights=nights)
    expected = _minute_by_minute(settings, FIRST, nights)
    for zone in result.zones:
        kwh, baseline_kwh, burn_h = expected[zone.zone_id]
        assert zone.current.kwh == pytest.approx(kwh, rel=0.005), zone.zone_id
        assert zone.current.baseline_kwh == pytest.approx(baseline_kwh, rel=0.005), zone.zone_id
        assert zone.current.burn_h == pytest.approx(burn_h, rel=0.005), zone.zone_id
        assert 10.5 * nights < zone.current.burn_h < 13.5 * nights  # November nights at 17° N


def test_the_calendar_is_in_the_forecast(tmp_path: Path) -> None:
    # a maintenance night off for soi-3 and a festival night at full light for market
    calendar = [
        {"name": "Cable work", "dates": ["2026-11-22"], "zones": ["soi-3"], "level": 0},
        {"name": "Loy Krathong", "dates": ["2026-11-22"], "zones": ["market"], "level": 100},
    ]
    plain = forecast(load_settings(SIM, data_dir=tmp_path), FIRST, nights=3)
    with_calendar = forecast(
        load_settings(SIM, data_dir=tmp_path, calendar=calendar), FIRST, nights=3
    )
    before = {z.zone_id: z.current for z in plain.zones}
    after = {z.zone_id: z.current for z in with_calendar.zones}
    assert after["soi-3"].burn_h == pytest.approx(before["soi-3"].burn_h * 2 / 3, rel=0.01)
    assert after["soi-3"].kwh < before["soi-3"].kwh * 0.7
    assert after["market"].kwh > before["market"].kwh
    assert after["school-path"] == before["school-path"]


def test_a_year_has_365_nights_and_plausible_figures() -> None:
    result = _json()
    assert result["from"] == "2026-11-21"
    assert result["to"] == "2027-11-20"
    assert result["nights"] == 365
    assert result["alternatives"] == []
    assert result["total"]["alternative"] is None
    for zone in result["zones"].values():
        current = zone["current"]
        assert 11.2 * 365 < current["burn_h"] < 12.3 * 365  # 17° N: nights of 11-13 hours
        assert current["kwh"] < current["baseline_kwh"]
        assert zone["alternative"] is None
        assert zone["difference"] is None
    soi3 = result["zones"]["soi-3"]["current"]
    assert soi3["profile"] == "residential"
    assert soi3["baseline_kwh"] == pytest.approx(1.0 * soi3["burn_h"], abs=0.01)  # 1000 W


def test_cost_and_co2_use_the_configured_rates(tmp_path: Path) -> None:
    settings = load_settings(
        SIM, data_dir=tmp_path, energy={"tariff_thb_per_kwh": 3.98, "co2_kg_per_kwh": 0.5812}
    )
    result = forecast_json(forecast(settings, FIRST, nights=7))
    assert result["tariff_thb_per_kwh"] == 3.98
    for zone in result["zones"].values():
        current = zone["current"]
        assert current["thb"] == pytest.approx(current["kwh"] * 3.98, abs=0.01)
        assert current["kg_co2e"] == pytest.approx(current["kwh"] * 0.5812, abs=0.01)


def test_defaults_are_the_reference_tariff_and_the_tgo_factor() -> None:
    result = _json()
    assert result["tariff_thb_per_kwh"] == 4.15
    assert result["co2_kg_per_kwh"] == 0.475


def test_a_lower_profile_from_a_file_saves_energy(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "draft.toml").write_text(DIMMER)
    monkeypatch.chdir(tmp_path)  # a file's path starts from the current directory
    result = _json("draft.toml:dimmer")
    assert result["alternatives"] == ["draft.toml:dimmer"]
    for zone in result["zones"].values():
        assert zone["alternative"]["profile"] == "draft.toml:dimmer"
    soi3 = result["zones"]["soi-3"]
    # same switching edges as residential (sunset to sunrise): same hours, less energy
    assert soi3["difference"]["burn_h"] == 0
    assert soi3["difference"]["baseline_kwh"] == 0
    assert soi3["difference"]["kwh"] < -100
    assert soi3["difference"]["thb"] < 0
    assert soi3["difference"]["kg_co2e"] < 0
    assert soi3["alternative"]["saved_vs_baseline_pct"] > soi3["current"]["saved_vs_baseline_pct"]
    # market (100 % then 50 %) also saves; the footpath at 20 % would use more at 25-80 %
    assert result["zones"]["market"]["difference"]["kwh"] < 0
    assert result["zones"]["school-path"]["difference"]["kwh"] > 0


def test_a_config_profile_for_every_zone() -> None:
    result = _json("motion-path")  # 20 % all night
    for zone_id in ("soi-3", "market"):
        zone = result["zones"][zone_id]
        assert zone["alternative"]["profile"] == "motion-path"
        assert zone["difference"]["kwh"] < 0
    unchanged = result["zones"]["school-path"]
    assert unchanged["alternative"] == unchanged["current"]
    assert result["total"]["difference"]["kwh"] < 0


def test_a_zone_alternative_changes_only_that_zone() -> None:
    current = _json()
    result = _json("soi-3=motion-path")
    assert result["zones"]["soi-3"]["alternative"]["profile"] == "motion-path"
    assert result["zones"]["soi-3"]["difference"]["kwh"] < 0
    for zone_id in ("market", "school-path"):
        zone = result["zones"][zone_id]
        assert zone["current"] == current["zones"][zone_id]["current"]
        assert zone["alternative"] == zone["current"]
        assert set(zone["difference"].values()) == {0}
    assert result["total"]["difference"] == result["zones"]["soi-3"]["difference"]


def test_later_specs_win() -> None:
    result = _json("motion-path", "market=market")
    assert result["zones"]["soi-3"]["alternative"]["profile"] == "motion-path"
    assert result["zones"]["market"]["alternative"]["profile"] == "market"
    assert set(result["zones"]["market"]["difference"].values()) == {0}


def test_json_totals_are_the_sums_of_the_zones() -> None:
    result = _json("soi-3=motion-path", "school-path=residential")
    zones = result["zones"].values()
    for part in ("current", "alternative", "difference"):
        for key in ("kwh", "baseline_kwh", "thb", "kg_co2e", "burn_h"):
            total = sum(zone[part][key] for zone in zones)
            assert result["total"][part][key] == pytest.approx(total, abs=1e-6), (part, key)
    for zone in [*zones, result["total"]]:
        for key in ("kwh", "thb", "kg_co2e", "burn_h"):
            diff = zone["alternative"][key] - zone["current"][key]
            assert zone["difference"][key] == pytest.approx(diff, abs=1e-6)


def test_the_text_table_says_what_is_left_out() -> None:
    code, text = _run("soi-3=motion-path", fmt="text")
    assert code == EXIT_OK
    assert "365 nights: from the night of Sat 2026-11-21 to the night of Sat 2027-11-20" in text
    assert "With the current profiles" in text
    assert "With the alternative (soi-3=motion-path)" in text
    assert "The change would save" in text
    assert "Motion boosts are not included: soi-3, school-path" in text
    assert "avoided cost at a reference tariff of 4.15 THB/kWh" in text
    assert "not billed" in text
    total_line = next(line for line in text.splitlines() if line.strip().startswith("total"))
    kwh = _json()["total"]["current"]["kwh"]
    assert f"{kwh:,.1f}" in total_line


def test_text_without_an_alternative_shows_the_current_profiles_only() -> None:
    code, text = _run(fmt="text")
    assert code == EXIT_OK
    assert "residential" in text
    assert "With the alternative" not in text
    assert "Difference" not in text


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("nope", "no profile named 'nope' (known: market, motion-path, residential)"),
        ("soi-9=market", "no zone with id 'soi-9' (known: soi-3, market, school-path)"),
        ("soi-3=nope", "no profile named 'nope'"),
        ("Dimmer", "'Dimmer' is not a profile name"),
        ("missing.toml:dimmer", "the file missing.toml does not exist"),
        (":dimmer", "names no file before ':'"),
    ],
)
def test_an_unknown_name_exits_2_and_says_what_exists(
    spec: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(spec)
    assert code == EXIT_CONFIG
    assert out == ""
    err = capsys.readouterr().err
    assert said in err
    assert f"--alternative {spec!r}" in err
    assert "fix:" in err


def test_a_bad_profile_in_a_file_is_explained(
    tmp_path: Path, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("draft.toml").write_text(
        '[profiles.dimmer]\nsteps = [{ at = "22.00", level = 40 }]\n[profiles.other]\n'
    )
    assert _run("draft.toml:dimmer")[0] == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "profiles.dimmer.steps[0].at" in err
    assert "'22.00' is not an anchor" in err
    assert _run("draft.toml:brighter")[0] == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "no [profiles.brighter] table (profiles there: dimmer, other)" in err
    Path("broken.toml").write_text("[profiles.dimmer\n")
    assert _run("broken.toml:dimmer")[0] == EXIT_CONFIG
    assert "TOML syntax error in broken.toml" in capsys.readouterr().err


def test_a_broken_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = forecast_command(
        str(tmp_path / "none.toml"), alternatives=(), start=None, fmt="text", out=out
    )
    assert code == EXIT_CONFIG
    assert "no forecast until the config is fixed" in capsys.readouterr().err


def test_the_first_night_defaults_to_today_at_the_unit() -> None:
    before = SystemClock().now()
    result = json.loads(_run(start=None)[1])
    after = SystemClock().now()
    bangkok = load_settings(SIM).unit.tz
    today = {before.astimezone(bangkok).date(), after.astimezone(bangkok).date()}
    assert date.fromisoformat(result["from"]) in today


def test_spec_forms() -> None:
    assert parse_spec("dim").zone is None
    spec = parse_spec("soi-3=plans/new.toml:dim")
    assert (spec.zone, spec.file, spec.profile, spec.label) == (
        "soi-3",
        "plans/new.toml",
        "dim",
        "plans/new.toml:dim",
    )
    with pytest.raises(ForecastError):
        parse_spec("soi-3=")


def test_resolve_without_specs_keeps_every_zone_on_its_profile(settings: Settings) -> None:
    chosen = resolve_alternative(settings, [])
    assert {zone: label for zone, (label, _) in chosen.items()} == {
        "soi-3": "residential",
        "market": "market",
        "school-path": "motion-path",
    }


def test_a_year_of_sim_toml_is_fast_even_cold(settings: Settings) -> None:
    chosen = resolve_alternative(settings, [parse_spec("motion-path")])
    seconds = []
    for _ in range(3):
        decide.plan_night.cache_clear()
        decide._cached_night_of.cache_clear()
        solar.crossing.cache_clear()
        solar.solar_noon.cache_clear()
        start = time.perf_counter()
        forecast(settings, FIRST, alternative=chosen, alternatives=["motion-path"])
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 1.0, seconds


def test_unrounded_totals_match_the_json(settings: Settings) -> None:
    chosen = resolve_alternative(settings, [parse_spec("soi-3=motion-path")])
    result = forecast(settings, FIRST, nights=30, alternative=chosen, alternatives=["x"])
    as_json = forecast_json(result)["total"]
    current, other = result.total_current(), result.total_alternative()
    assert other is not None
    assert current.kwh == pytest.approx(as_json["current"]["kwh"], abs=0.01)
    assert other.kwh == pytest.approx(as_json["alternative"]["kwh"], abs=0.01)
    assert forecast(settings, FIRST, nights=30).total_alternative() is None
