"""The report as one self-contained HTML file for funders: opens in any browser, prints to A4.

No external CSS, scripts, fonts or images: the style is inline, the charts are inline SVG drawn
by `controller.report.charts`, and text uses the reader's own fonts (Thai included).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from controller.report import charts
from controller.report.data import Report, Totals
from controller.report.labels import (
    Lang,
    date_time,
    kind_label,
    number,
    period_text,
    short_date,
    text,
)

_STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, "Noto Sans Thai", "Leelawadee UI", Tahoma, "Segoe UI", Arial,
  sans-serif; color: #1d2329; margin: 24px auto; max-width: 980px; padding: 0 16px;
  line-height: 1.45; font-size: 14px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; border-bottom: 1px solid #d5dae0;
  padding-bottom: 3px; }
.meta { color: #46505a; margin: 0; }
.figures { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 10px;
  margin: 16px 0 8px; }
.figure { border: 1px solid #d5dae0; border-radius: 6px; padding: 8px 12px; }
.figure.main { border-color: #1b7f3b; }
.figure .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.figure .unit { font-size: 14px; font-weight: 400; }
.figure .what { color: #46505a; font-size: 12px; }
.note { font-size: 12.5px; color: #333; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 6px; vertical-align: top; }
th { background: #f2f4f6; text-align: left; vertical-align: bottom; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n, td.when { white-space: nowrap; }
td.zone { min-width: 9em; }
tr.total td { font-weight: 600; border-top: 2px solid #8a939c; }
tr.event-other td { color: #66707a; }
svg.chart { width: 100%; height: auto; display: block; }
.chart-block { margin: 4px 0 10px; }
.caption { font-size: 12.5px; color: #333; }
footer { margin-top: 24px; font-size: 11.5px; color: #66707a; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@page { size: A4; margin: 14mm 12mm; }
@media screen and (max-width: 720px) {
  .figures { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .scroll { overflow-x: auto; }
}
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10pt; }
  table { font-size: 8.5pt; }
  th, td { padding: 2px 4px; }
  .figure { padding: 5px 8px; }
  .figure .value { font-size: 12.5pt; }
  .figure .unit { font-size: 8.5pt; }
  .figure .what, .note, .caption { font-size: 8.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .chart-block, .figures, tr, svg.chart { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def _source_text(lang: Lang, totals: Totals) -> str:
    if totals.source == "mixed":
        return text(lang, "src_mixed", share=number(totals.modelled_share_pct, 0))
    return text(lang, f"src_{totals.source}")


def _maybe(value: float | None, decimals: int) -> str:
    return "-" if value is None else number(value, decimals)


def _energy_cells(lang: Lang, totals: Totals) -> str:
    cells = [
        number(totals.kwh, 2),
        number(totals.baseline_kwh, 2),
        number(totals.saved_kwh, 2),
        _maybe(totals.saved_pct, 1),
        number(totals.saved_thb, 2),
        number(totals.saved_kg_co2e, 1),
    ]
    numeric = "".join(f'<td class="n">{c}</td>' for c in cells)
    return numeric + f"<td>{escape(_source_text(lang, totals))}</td>"


def _service_cells(totals: Totals) -> str:
    cells = [
        number(totals.burn_h, 1),
        _maybe(totals.availability_pct, 1),
        _maybe(totals.avg_level, 0),
        str(totals.faults),
    ]
    return "".join(f'<td class="n">{c}</td>' for c in cells)


def _zone_table(
    report: Report,
    lang: Lang,
    css: str,
    heads: tuple[str, ...],
    cells: Callable[[Totals], str],
) -> str:
    """One row per zone and a total row; `heads` are the text keys of the columns after the
    zone's name, numeric unless the key is 'source'."""
    header = f"<th>{escape(text(lang, 'zone'))}</th>" + "".join(
        f"<th>{escape(text(lang, h))}</th>"
        if h == "source"
        else f'<th class="n">{escape(text(lang, h))}</th>'
        for h in heads
    )
    body = [
        f'<tr><td class="zone">{escape(zone.label)}</td>{cells(report.zone_totals[zone.id])}</tr>'
        for zone in report.zones
    ]
    body.append(
        f'<tr class="total"><td class="zone">{escape(text(lang, "total"))}</td>'
        f"{cells(report.total)}</tr>"
    )
    return (
        f'<div class="scroll"><table class="{css}"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _summary_tables(report: Report, lang: Lang) -> str:
    # Two tables rather than one of twelve columns, which ran off the right of an A4 page.
    energy = _zone_table(
        report,
        lang,
        "summary energy",
        ("kwh", "baseline_kwh", "saved_kwh", "saved_pct", "saved_thb", "saved_kg", "source"),
        lambda totals: _energy_cells(lang, totals),
    )
    service = _zone_table(
        report,
        lang,
        "summary service",
        ("burn_h", "availability", "avg_level", "faults"),
        _service_cells,
    )
    return (
        f"<section><h2>{escape(text(lang, 'summary_energy'))}</h2>{energy}</section>"
        f"<section><h2>{escape(text(lang, 'summary_service'))}</h2>{service}"
        f'<p class="note">{escape(text(lang, "faults_note"))}</p></section>'
    )


def _events_table(report: Report, lang: Lang) -> str:
    if not report.events:
        return f"<p>{escape(text(lang, 'no_events'))}</p>"
    labels = {zone.id: zone.label for zone in report.zones}
    rows = []
    for event in report.events:
        zone = (
            text(lang, "whole_unit") if event.zone is None else labels.get(event.zone, event.zone)
        )
        css = "" if event.fault else ' class="event-other"'
        rows.append(
            f'<tr{css}><td class="when">{escape(date_time(lang, event.at))}</td>'
            f"<td>{escape(zone)}</td>"
            f"<td>{escape(kind_label(lang, event.kind))}</td><td>{escape(event.detail)}</td></tr>"
        )
    header = "".join(
        f"<th>{escape(text(lang, key))}</th>" for key in ("time", "zone", "kind", "detail")
    )
    return (
        f'<div class="scroll"><table class="events"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _key_figures(report: Report, lang: Lang) -> str:
    # The same precision as the tables, so a reader finds the same numbers in both.
    total = report.total
    saved_what = text(lang, "fig_saved")
    if total.saved_pct is not None:
        saved_what = text(lang, "fig_saved_pct", pct=number(total.saved_pct, 1))
    availability = _maybe(total.availability_pct, 1)
    items = (
        (number(total.kwh, 2), "kWh", text(lang, "fig_used"), False),
        (number(total.baseline_kwh, 2), "kWh", text(lang, "fig_baseline"), False),
        (number(total.saved_kwh, 2), "kWh", saved_what, True),
        (number(total.saved_thb, 2), _baht(lang), text(lang, "fig_cost"), True),
        (number(total.saved_kg_co2e, 1), "kg CO2e", text(lang, "fig_co2"), True),
        (number(total.burn_h, 1), text(lang, "hours"), text(lang, "fig_burn"), False),
        (availability, "" if availability == "-" else "%", text(lang, "fig_availability"), False),
        (str(total.faults), "", text(lang, "fig_faults"), False),
    )
    boxes = "".join(
        f'<div class="figure{" main" if main else ""}"><div class="value">{escape(value)}'
        + (f' <span class="unit">{escape(unit)}</span>' if unit else "")
        + f'</div><div class="what">{escape(what)}</div></div>'
        for value, unit, what, main in items
    )
    return f'<div class="figures">{boxes}</div>'


def _baht(lang: Lang) -> str:
    return "บาท" if lang == "th" else "THB"


def _charts(report: Report, lang: Lang) -> str:
    day_labels = [short_date(lang, day) for day, _ in report.day_totals]
    energy = charts.bars_against_baseline(
        text(lang, "chart_energy"),
        day_labels,
        [t.kwh for _, t in report.day_totals],
        [t.baseline_kwh for _, t in report.day_totals],
        used_name=text(lang, "legend_used"),
        baseline_name=text(lang, "legend_baseline"),
        y_label=text(lang, "axis_kwh"),
        empty=text(lang, "no_data"),
    )
    profile = report.profile
    series = [
        charts.Series(
            zone.label, profile.levels[zone.id], charts.PALETTE[index % len(charts.PALETTE)]
        )
        for index, zone in enumerate(report.zones)
        if any(v is not None for v in profile.levels.get(zone.id, []))
    ]
    night = charts.lines(
        text(lang, "chart_profile"),
        [f"{slot:%H:%M}" for slot in profile.slots],
        series,
        y_label=text(lang, "axis_level"),
        empty=text(lang, "no_data"),
        y_max=100.0,
        label_every=max(1, 7200 // profile.slot_s),
    )
    running = 0.0
    cumulative: list[float | None] = []
    for _, totals in report.day_totals:
        running += totals.saved_kwh
        cumulative.append(running)
    saved = charts.lines(
        text(lang, "chart_cumulative"),
        day_labels,
        [charts.Series(text(lang, "legend_saved"), cumulative, charts.PALETTE[0])]
        if report.total.records
        else [],
        y_label=text(lang, "axis_kwh"),
        empty=text(lang, "no_data"),
        area=True,
    )
    total = report.total
    energy_caption = text(
        lang,
        "caption_energy",
        used=number(total.kwh, 2),
        baseline=number(total.baseline_kwh, 2),
    )
    profile_caption = text(lang, "caption_profile", minutes=profile.slot_s // 60)
    saved_caption = (
        f"{text(lang, 'total')}: {number(total.saved_kwh, 2)} kWh · "
        f"{number(total.saved_thb, 2)} {_baht(lang)} · "
        f"{number(total.saved_kg_co2e, 1)} kg CO2e"
    )
    has_data = bool(total.records)
    blocks = (
        (text(lang, "chart_energy"), energy, energy_caption if has_data else ""),
        (text(lang, "chart_profile"), night, profile_caption if series else ""),
        (text(lang, "chart_cumulative"), saved, saved_caption if has_data else ""),
    )
    return "".join(
        f'<section class="chart-block"><h2>{escape(title)}</h2>{svg}'
        + (f'<p class="caption">{escape(cap)}</p>' if cap else "")
        + "</section>"
        for title, svg, cap in blocks
    )


def render_html(report: Report, lang: Lang, *, generated: datetime | None = None) -> str:
    """The whole report as one HTML document (a str); `generated`, when given, is printed as
    the time the report was made."""
    title = text(lang, "title")
    period = period_text(lang, report.first, report.last)
    meta = (
        f"{escape(text(lang, 'unit'))}: <strong>{escape(report.unit_id)}</strong> · "
        f"{escape(text(lang, 'site'))}: {escape(report.site)}<br>"
        f"{escape(text(lang, 'period'))}: <strong>{escape(period)}</strong> "
        f"({report.days} {escape(text(lang, 'days'))}, "
        f"{escape(text(lang, 'timezone'))} {escape(report.timezone)})"
    )
    notes = (
        f'<p class="note">{escape(text(lang, "tariff_note", tariff=report.tariff_thb_per_kwh))}'
        f'</p><p class="note">{escape(text(lang, "co2_note", co2=report.co2_kg_per_kwh))}</p>'
    )
    if not report.total.records:
        notes += f'<p class="note"><strong>{escape(text(lang, "no_data"))}</strong></p>'
    method = "".join(
        f"<p>{escape(text(lang, key))}</p>"
        for key in ("method_meter", "method_baseline", "method_hours")
    )
    footer = ""
    if generated is not None:
        footer = (
            f"<footer>{escape(text(lang, 'generated'))}: {escape(date_time(lang, generated))}"
            f" · streetlight · {escape(report.unit_id)}</footer>"
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}: {escape(report.unit_id)}, {escape(period)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">{meta}</p></header>'
        f"{_key_figures(report, lang)}{notes}"
        f"{_summary_tables(report, lang)}"
        f"{_charts(report, lang)}"
        f"<section><h2>{escape(text(lang, 'events'))}</h2>{_events_table(report, lang)}"
        "</section>"
        f"<section><h2>{escape(text(lang, 'method_title'))}</h2>{method}</section>"
        f"{footer}</body></html>\n"
    )
