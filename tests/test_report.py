"""`streetlight report`: the energy report, in CSV, HTML and JSON, English and Thai.

The ledger of these tests holds three nights of 15-minute records for the three zones of
sim.toml (one metered, one modelled, one mixed), one zone no longer in the config, records
just outside the period on both sides, and a few health notes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import types
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controller.cli import main
from controller.commands.report import choose_format, parse_period, report
from controller.config_load import load_settings
from controller.ledger import HealthNote, Interval, Ledger
from controller.report import build_report, render, write_html, write_report
from controller.report.charts import HEIGHT, PALETTE, WIDTH, Series, lines, nice_ticks
from controller.report.labels import LANGS, date_time, kind_label, long_date, text, text_keys
from controller.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "deploy" / "examples" / "sim.toml"
TZ = ZoneInfo("Asia/Bangkok")
FIRST = date(2026, 11, 21)
LAST = date(2026, 11, 23)
STEP = timedelta(seconds=900)


def _intervals() -> list[Interval]:
    """Three nights (18:00 to 06:00 local) of every zone, plus records outside the period."""
    items: list[Interval] = []
    for night in range(3):
        start = datetime(2026, 11, 21 + night, 18, 0, tzinfo=TZ)
        for slot in range(48):
            at = start + slot * STEP
            for index, (zone, watts, baseline_w) in enumerate(
                (("soi-3", 440.0, 1000.0), ("market", 660.0, 1500.0), ("school-path", 189.0, 300.0))
            ):
                level = 100.0 if slot < 16 else 40.0 + index * 7.3
                failed = zone == "soi-3" and night == 0 and 16 <= slot < 20  # a lamp failure
                if zone == "soi-3":
                    source = "meter"
                elif zone == "market":
                    source = "model"
                else:
                    source = "meter" if night == 0 else "model"
                kwh = 0.0 if failed else watts * level / 100 * 0.25 / 1000 * (1 + slot / 997)
                items.append(
                    Interval(
                        zone=zone,
                        start=at,
                        end=at + STEP,
                        kwh=kwh,
                        baseline_kwh=baseline_w * 0.25 / 1000,
                        source=source,  # type: ignore[arg-type]
                        burn_s=0 if failed else 900,
                        avg_level=0.0 if failed else level,
                        scheduled_s=900,
                        available_s=0 if failed else 900,
                    )
                )
    # a zone that was removed from the config still counts, named by its id
    old = datetime(2026, 11, 22, 19, 0, tzinfo=TZ)
    items.append(Interval("old-zone", old, old + STEP, 0.1, 0.3, "model", 900, 100.0, 900, 900))
    # a daytime record: lamps off, nothing scheduled
    noon = datetime(2026, 11, 22, 12, 0, tzinfo=TZ)
    items.append(Interval("soi-3", noon, noon + STEP, 0.0001, 0.0, "meter", 0, 0.0, 0, 0))
    # outside the period: the evening before and the midnight after
    before = datetime(2026, 11, 20, 23, 45, tzinfo=TZ)
    after = datetime(2026, 11, 24, 0, 0, tzinfo=TZ)
    for at in (before, after):
        items.append(Interval("soi-3", at, at + STEP, 5.0, 5.0, "meter", 900, 100.0, 900, 900))
    return items


NOTES = (
    HealthNote("lamp_failure", "soi-3", "commanded 100 % but the meter reads 2 W",
               datetime(2026, 11, 21, 22, 5, tzinfo=TZ)),
    HealthNote("recovered", "soi-3", "the meter reads 440 W again",
               datetime(2026, 11, 21, 23, 0, tzinfo=TZ)),
    HealthNote("meter_offline", None, "meter cabinet does not answer",
               datetime(2026, 11, 23, 2, 30, tzinfo=TZ)),
    HealthNote("day_burner", "market", "lit at 40 % by day",
               datetime(2026, 11, 25, 12, 0, tzinfo=TZ)),  # after the period
)  # fmt: skip


def _in_period(item: Interval) -> bool:
    return FIRST <= item.start.astimezone(TZ).date() <= LAST


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ledger")
    ledger = Ledger(folder)
    ledger.append(_intervals(), {})
    for note in NOTES:
        ledger.note_health(note)
    ledger.close()
    return folder


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> Settings:
    return load_settings(SIM, data_dir=data_dir)


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[Ledger]:
    opened = Ledger(data_dir, readonly=True)
    yield opened
    opened.close()


def _expected(zone: str | None = None, day: date | None = None) -> dict[str, float]:
    items = [
        i
        for i in _intervals()
        if _in_period(i)
        and (zone is None or i.zone == zone)
        and (day is None or i.start.astimezone(TZ).date() == day)
    ]
    return {
        "kwh": math.fsum(i.kwh for i in items),
        "baseline_kwh": math.fsum(i.baseline_kwh for i in items),
        "burn_s": sum(i.burn_s for i in items),
        "scheduled_s": sum(i.scheduled_s for i in items),
        "available_s": sum(i.available_s for i in items),
        "records": len(items),
    }


# ---- figures --------------------------------------------------------------------------------


def test_totals_equal_the_ledgers_sums_for_the_period(settings: Settings, ledger: Ledger) -> None:
    built = build_report(settings, ledger, FIRST, LAST)
    want = _expected()
    # the third night's morning falls on the 24th, outside the period
    assert built.total.records == want["records"] == 3 * (24 + 48 + 48) + 2
    assert built.total.kwh == want["kwh"]
    assert built.total.baseline_kwh == want["baseline_kwh"]
    assert built.total.burn_s == want["burn_s"]
    assert built.total.saved_kwh == pytest.approx(want["baseline_kwh"] - want["kwh"])
    assert built.total.saved_thb == pytest.approx((want["baseline_kwh"] - want["kwh"]) * 4.15)
    assert built.total.saved_kg_co2e == pytest.approx((want["baseline_kwh"] - want["kwh"]) * 0.475)
    assert built.total.availability_pct == pytest.approx(
        100 * want["available_s"] / want["scheduled_s"]
    )
    for zone in ("soi-3", "market", "school-path", "old-zone"):
        assert built.zone_totals[zone].kwh == pytest.approx(_expected(zone)["kwh"], rel=1e-12)
    assert [z.id for z in built.zones] == ["soi-3", "market", "school-path", "old-zone"]
    assert built.zones[-1].label == "old-zone"
    assert not built.zones[-1].configured


def test_a_record_belongs_to_the_local_date_it_starts_on(
    settings: Settings, ledger: Ledger
) -> None:
    built = build_report(settings, ledger, FIRST, LAST)
    by_day = dict(built.day_totals)
    # the night of the 21st: 18:00-24:00 on the 21st (24 slots), 00:00-06:00 on the 22nd
    assert by_day[FIRST].records == 3 * 24
    assert by_day[date(2026, 11, 22)].records == 3 * 48 + 2
    assert by_day[LAST].records == 3 * 48
    assert by_day[FIRST].kwh == pytest.approx(_expected(day=FIRST)["kwh"], rel=1e-12)
    one_day = build_report(settings, ledger, LAST, LAST)
    assert one_day.total.records == 3 * 48  # the 24th's midnight record is not the 23rd's


def test_sources_availability_level_and_faults(settings: Settings, ledger: Ledger) -> None:
    built = build_report(settings, ledger, FIRST, LAST)
    zones = built.zone_totals
    assert zones["soi-3"].source == "meter"
    assert zones["market"].source == "model"
    assert zones["school-path"].source == "mixed"
    assert 0 < zones["school-path"].modelled_share_pct < 100
    assert zones["market"].modelled_kwh == zones["market"].kwh
    assert zones["soi-3"].availability_pct == pytest.approx(100 * (120 - 4) / 120)
    assert zones["market"].availability_pct == 100.0
    assert zones["market"].avg_level is not None
    assert 40 < zones["market"].avg_level < 100
    # a zone-day with no records: nothing scheduled, no level, source 'none'
    empty = next(r for r in built.rows if r.zone.id == "old-zone" and r.day == FIRST)
    assert (empty.totals.source, empty.totals.availability_pct, empty.totals.avg_level) == (
        "none",
        None,
        None,
    )
    # faults: the lamp failure and the unit's meter; the recovery is listed, not counted
    assert [e.kind for e in built.events] == ["lamp_failure", "recovered", "meter_offline"]
    assert built.total.faults == 2
    assert zones["soi-3"].faults == 1
    assert built.events[0].at.utcoffset() == timedelta(hours=7)


def test_the_typical_night_averages_each_slot_over_the_nights(
    settings: Settings, ledger: Ledger
) -> None:
    profile = build_report(settings, ledger, FIRST, LAST).profile
    assert profile.slot_s == 900
    assert profile.slots[0].isoformat() == "16:00:00"
    assert len(profile.slots) == 17 * 4
    market = profile.levels["market"]
    assert market[0] is None  # nothing before 18:00
    assert market[8] == pytest.approx(100.0)  # 18:00
    assert market[8 + 16] == pytest.approx(47.3)  # 22:00 on every night
    soi = profile.levels["soi-3"]
    assert soi[8 + 16] == pytest.approx((0 + 40 + 40) / 3)  # failed on the first night


def test_a_period_that_starts_after_it_ends_is_refused(settings: Settings, ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="after"):
        build_report(settings, ledger, LAST, FIRST)


# ---- formats --------------------------------------------------------------------------------


def _csv_rows(content: str) -> list[dict[str, str]]:
    assert content.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(content.removeprefix("\ufeff"))))


def test_csv_has_one_row_per_zone_per_day_summing_to_the_ledger(
    settings: Settings, ledger: Ledger
) -> None:
    content = render(build_report(settings, ledger, FIRST, LAST), "csv", "en")
    rows = _csv_rows(content)
    assert len(rows) == 3 * 4
    assert {(r["date"], r["zone"]) for r in rows} == {
        (d, z)
        for d in ("2026-11-21", "2026-11-22", "2026-11-23")
        for z in ("soi-3", "market", "school-path", "old-zone")
    }
    columns = set(rows[0])
    assert {
        "date", "zone", "zone_name", "kwh", "baseline_kwh", "saved_kwh", "saved_thb",
        "saved_kg_co2e", "burn_h", "availability_pct", "avg_level", "source", "faults",
    } <= columns  # fmt: skip
    want = _expected()
    assert math.fsum(float(r["kwh"]) for r in rows) == pytest.approx(want["kwh"], abs=12 * 5e-7)
    assert math.fsum(float(r["burn_h"]) for r in rows) == pytest.approx(
        want["burn_s"] / 3600, abs=12 * 5e-5
    )
    soi = next(r for r in rows if r["zone"] == "soi-3" and r["date"] == "2026-11-21")
    assert soi["zone_name"] == "Soi 3 (residential)"
    assert soi["source"] == "meter"
    assert soi["faults"] == "1"
    assert re.fullmatch(r"\d+\.\d{6}", soi["kwh"])
    gone = next(r for r in rows if r["zone"] == "old-zone" and r["date"] == "2026-11-21")
    assert (gone["availability_pct"], gone["avg_level"], gone["source"]) == ("", "", "none")
    assert "\r\n" in content
    # Thai keeps the machine columns and ISO dates
    assert render(build_report(settings, ledger, FIRST, LAST), "csv", "th") == content


def test_json_holds_everything_at_full_precision(settings: Settings, ledger: Ledger) -> None:
    data: dict[str, Any] = json.loads(
        render(build_report(settings, ledger, FIRST, LAST), "json", "en")
    )
    want = _expected()
    assert data["unit"] == "skn-001"
    assert data["site"].startswith("Sakon Nakhon")
    assert data["period"] == {
        "from": "2026-11-21",
        "to": "2026-11-23",
        "days": 3,
        "text": "21 November 2026 to 23 November 2026",
    }
    assert data["tariff"]["thb_per_kwh"] == 4.15
    assert "not billed" in data["tariff"]["note"]
    assert data["co2"]["kg_per_kwh"] == 0.475
    assert "TGO" in data["co2"]["source"]
    assert data["totals"]["kwh"] == want["kwh"]
    assert data["totals"]["baseline_kwh"] == want["baseline_kwh"]
    assert data["totals"]["source"] == "mixed"
    assert [z["id"] for z in data["zones"]] == ["soi-3", "market", "school-path", "old-zone"]
    assert data["zones"][1]["totals"]["source"] == "model"
    assert len(data["days"]) == 12
    assert math.fsum(d["kwh"] for d in data["days"]) == pytest.approx(want["kwh"], rel=1e-12)
    assert [f["kind"] for f in data["faults"]] == ["lamp_failure", "recovered", "meter_offline"]
    assert data["faults"][0]["at"] == "2026-11-21T22:05:00+07:00"
    assert data["faults"][2]["zone"] is None


def _no_external_references(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.IGNORECASE)
    assert "<script" not in page
    assert "<link" not in page
    assert "@import" not in page


def test_html_is_one_self_contained_printable_page(settings: Settings, ledger: Ledger) -> None:
    built = build_report(settings, ledger, FIRST, LAST)
    page = render(built, "html", "en")
    _no_external_references(page)
    assert page.count("<svg") == 3
    assert "@media print" in page and "size: A4" in page
    assert "4.15 THB/kWh" in page
    assert "not billed for street lighting" in page
    assert "0.475 kg CO2e/kWh" in page and "TGO" in page
    assert "21 November 2026 to 23 November 2026" in page
    # the total row is the ledger's sum, to the printed precision
    total_row = page.split('<tr class="total">')[1].split("</tr>")[0]
    assert f"{_expected()['kwh']:,.2f}" in total_row
    assert f"{_expected()['baseline_kwh']:,.2f}" in total_row
    assert "modelled" in page and "mixed: " in page
    assert "Night market" in page and "old-zone" in page
    assert "commanded 100 % but the meter reads 2 W" in page
    assert "whole unit" in page
    assert "How these numbers are made" in page
    assert "for as long as the schedule wanted the lamps on" in page


def test_html_in_thai_has_thai_labels_and_buddhist_era_dates(
    settings: Settings, ledger: Ledger
) -> None:
    page = render(build_report(settings, ledger, FIRST, LAST), "html", "th")
    _no_external_references(page)
    assert '<html lang="th">' in page
    assert "21 พฤศจิกายน 2569 ถึง 23 พฤศจิกายน 2569" in page
    assert "2026" not in page.split("<body>")[1].split("Asia/Bangkok")[0]
    for words in ("พลังงานที่ใช้", "พลังงานฐาน", "ค่าไฟฟ้าที่หลีกเลี่ยงได้", "รวม", "โคมไฟเสีย"):
        assert words in page
    assert "4.15 บาท/kWh" in page
    assert "กฟภ." in page
    assert page.count("<svg") == 3


def test_html_summary_fits_a4_and_shows_every_figure_once(
    settings: Settings, ledger: Ledger
) -> None:
    built = build_report(settings, ledger, FIRST, LAST)
    page = render(built, "html", "en")
    # two narrow tables, not one of twelve columns that ran off the page
    energy = page.split('<table class="summary energy">')[1].split("</table>")[0]
    service = page.split('<table class="summary service">')[1].split("</table>")[0]
    assert energy.split("</tr>")[0].count("</th>") == 8
    assert service.split("</tr>")[0].count("</th>") == 5
    assert "Avoided emissions (kg CO2e)" in energy and "Source" in energy
    assert "Burning hours" in service and "Availability (%)" in service and "Faults" in service
    service_total = service.split('<tr class="total">')[1]
    assert f">{built.total.faults}</td>" in service_total
    # key figures: the whole unit's figures, at the precision of the tables
    figures = page.split('<div class="figures">')[1].split('<p class="note">')[0]
    total = built.total
    for shown in (
        f"{total.kwh:,.2f}",
        f"{total.baseline_kwh:,.2f}",
        f"{total.saved_kwh:,.2f}",
        f"{total.saved_thb:,.2f}",
        f"{total.saved_kg_co2e:,.1f}",
        f"{total.burn_h:,.1f}",
        "Availability",
        "Faults",
    ):
        assert shown in figures
    # the tariff and CO2 notes once, not repeated at the end
    assert page.count("not billed for street lighting") == 1
    assert page.count("grid emission factor of") == 1
    # chart captions give the totals the tables give
    assert f"{total.kwh:,.2f} kWh used against a baseline of {total.baseline_kwh:,.2f}" in page
    thai = render(built, "html", "th")
    for words in ("ชั่วโมงส่องสว่าง", "ความพร้อมใช้งาน", "เหตุขัดข้อง", "ของพลังงานฐาน"):
        assert words in thai


def test_chart_legend_wraps_inside_the_chart_and_an_empty_chart_is_short() -> None:
    names = [f"Zone number {n} with a rather long name" for n in range(8)]
    series = [Series(name, [10.0, 50.0, None, 30.0], PALETTE[n]) for n, name in enumerate(names)]
    svg = lines("t", ["a", "b", "c", "d"], series, y_label="%", empty="none")
    xs = [float(x) for x in re.findall(r'<rect x="([0-9.]+)" y="[0-9.]+" width="12"', svg)]
    assert len(xs) == 8 and max(xs) < WIDTH - 100
    box = re.search(r'viewBox="0 0 [0-9]+ ([0-9.]+)"', svg)
    # taller by the extra legend rows, so the plot keeps its size
    assert box is not None and float(box.group(1)) > HEIGHT
    empty = lines("t", ["a"], [], y_label="%", empty="No data")
    assert f'viewBox="0 0 {WIDTH} {HEIGHT}"' not in empty and "No data" in empty


def test_json_in_thai_keeps_machine_keys_and_gives_thai_sentences(
    settings: Settings, ledger: Ledger
) -> None:
    data = json.loads(render(build_report(settings, ledger, FIRST, LAST), "json", "th"))
    assert data["period"]["from"] == "2026-11-21"
    assert data["period"]["text"] == "21 พฤศจิกายน 2569 ถึง 23 พฤศจิกายน 2569"
    assert data["faults"][0]["kind_text"] == "โคมไฟเสีย"
    assert "บาท" in data["tariff"]["note"]


def test_an_empty_period_is_a_report_of_zeros(settings: Settings, ledger: Ledger) -> None:
    built = build_report(settings, ledger, date(2027, 1, 1), date(2027, 1, 31))
    assert built.total.records == 0
    assert built.total.availability_pct is None
    page = render(built, "html", "en")
    assert "No energy records in this period." in page
    assert page.count("<svg") == 3
    assert len(_csv_rows(render(built, "csv", "en"))) == 31 * 3


def test_write_html_writes_the_file_and_returns_the_totals(
    settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    totals = write_html(settings, ledger, FIRST, LAST, path=path, lang="th")
    assert totals.kwh == _expected()["kwh"]
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "จัดทำเมื่อ" in page
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left
    csv_path = tmp_path / "r.csv"
    write_report(settings, ledger, FIRST, LAST, fmt="csv", lang="en", path=csv_path)
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")


# ---- words and dates ------------------------------------------------------------------------


def test_thai_dates_use_the_buddhist_era_and_thai_month_names() -> None:
    assert long_date("th", date(2026, 11, 21)) == "21 พฤศจิกายน 2569"
    assert long_date("th", date(2027, 1, 1)) == "1 มกราคม 2570"
    assert long_date("en", date(2026, 11, 21)) == "21 November 2026"
    moment = datetime(2026, 11, 21, 22, 5, tzinfo=TZ)
    assert date_time("th", moment) == "21 พฤศจิกายน 2569 22:05"


def test_every_text_exists_in_both_languages() -> None:
    for key in text_keys():
        english, thai = text("en", key), text("th", key)
        assert english and thai
        if key not in {"axis_kwh"}:
            assert english != thai, key
    assert LANGS == ("en", "th")
    assert kind_label("th", "day_burner") != kind_label("en", "day_burner")
    assert kind_label("en", "counter_reset") == "counter reset"


def test_chart_ticks_are_round_and_cover_the_values() -> None:
    ticks = nice_ticks(0.0, 7.3)
    assert ticks[0] == 0.0 and ticks[-1] >= 7.3
    assert nice_ticks(-2.0, 3.0)[0] <= -2.0


# ---- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    monkeypatch.setenv("STREETLIGHT_DATA_DIR", str(data_dir))
    return data_dir


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BASE = ["report", "--config", str(SIM), "--from", "2026-11-21", "--to", "2026-11-23"]


def test_cli_prints_json_to_stdout(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([*BASE, "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["totals"]["kwh"] == _expected()["kwh"]


def test_cli_takes_the_format_from_the_out_file_name(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "november.csv"
    code, out, err = _run([*BASE, "--out", str(target)], capsys)
    assert (code, out) == (0, ""), err
    assert len(_csv_rows(target.read_text(encoding="utf-8"))) == 12
    page = tmp_path / "november-th.html"
    code, _, err = _run([*BASE, "--lang", "th", "--out", str(page)], capsys)
    assert code == 0, err
    assert "2569" in page.read_text(encoding="utf-8")


def test_cli_default_is_html_on_stdout(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(BASE, capsys)
    assert code == 0
    assert out.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-11-23"], "is not a date: write YYYY-MM-DD"),
        (["--from", "2026-11-21", "--to", "21/11/2026"], "is not a date: write YYYY-MM-DD"),
        (["--from", "2026-11-23", "--to", "2026-11-21"], "swap them"),
        (["--to", "2026-11-21"], "--from is missing"),
        (["--from", "2026-11-21", "--to", "2026-11-23", "--alternative", "x"], "--forecast"),
        (["--from", "2026-11-21", "--to", "2026-11-23", "--format", "pdf"], "invalid choice"),
    ],
)
def test_cli_bad_arguments_exit_2_saying_what_to_fix(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    try:
        code = main(["report", "--config", str(SIM), *args])
    except SystemExit as stop:  # argparse's own checks
        code = int(stop.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_without_a_ledger_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREETLIGHT_DATA_DIR", str(tmp_path / "nothing"))
    code, out, err = _run(BASE, capsys)
    assert (code, out) == (2, "")
    assert "there is no energy ledger at" in err and "data_dir" in err


def test_cli_cannot_write_the_file(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run([*BASE, "--out", str(tmp_path / "missing" / "r.html")], capsys)
    assert code == 1
    assert "cannot write the report to" in err and "folder exists" in err


def test_cli_notes_an_empty_period_on_stderr(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--config", str(SIM), "--from", "2030-01-01", "--to", "2030-01-02"]
    code, out, err = _run([*argv, "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["totals"]["records"] == 0
    assert "no energy records" in err


def test_report_function_writes_to_the_given_stream(cli_env: Path) -> None:
    stream = io.StringIO()
    code = report(str(SIM), "2026-11-21", "2026-11-21", "json", "en", None, out=stream)
    assert code == 0
    assert json.loads(stream.getvalue())["period"]["days"] == 1


def test_choose_format_and_parse_period() -> None:
    assert choose_format(None, None) == "html"
    assert choose_format("", "x.JSON") == "json"
    assert choose_format("csv", "x.html") == "csv"
    assert choose_format(None, "report.txt") == "html"
    assert parse_period("2026-11-21", "2026-11-21") == (FIRST, FIRST)
    with pytest.raises(ValueError, match="swap"):
        parse_period("2026-11-22", "2026-11-21")


def test_forecast_is_handed_to_the_forecast_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []

    def forecast_command(config: str | None, **kwargs: Any) -> int:
        calls.append({"config": config, **kwargs})
        kwargs["out"].write("forecast\n")
        return 0

    fake = types.ModuleType("controller.commands.forecast")
    fake.forecast_command = forecast_command  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "controller.commands.forecast", fake)
    argv = ["report", "--config", "c.toml", "--forecast", "--alternative", "a", "--alternative"]
    code, out, _ = _run([*argv, "b", "--format", "json"], capsys)
    assert (code, out) == (0, "forecast\n")
    assert calls[0]["config"] == "c.toml"
    assert calls[0]["alternatives"] == ["a", "b"]
    assert calls[0]["start"] is None
    assert calls[0]["fmt"] == "json"
    code, _, _ = _run(["report", "--forecast", "--from", "2026-12-01"], capsys)
    assert code == 0
    assert calls[1]["start"] == date(2026, 12, 1)
    assert calls[1]["fmt"] == "text"
