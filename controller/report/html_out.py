"""The report as one self-contained HTML file for funders: opens in any browser, prints to A4.

No external CSS, scripts, fonts or images: the style is inline, the charts are inline SVG drawn
by `controller.report.charts`, and text uses the reader's own fonts (Thai included).
"""

from __future__ import annotations

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
.figures { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 8px; }
.figure { flex: 1 1 190px; border: 1px solid #d5dae0; border-radius: 6px; padding: 8px 12px; }
.figure .value { font-size: 22px; font-weight: 600; }
.figure .what { color: #46505a; font-size: 12px; }
.note { font-size: 12.5px; color: #333; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 6px; vertical-align: top; }
th { background: #f2f4f6; text-align: left; }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #8a939c; }
tr.event-other td { color: #66707a; }
svg.chart { width: 100%; height: auto; display: block; }
.chart-block { margin: 4px 0 10px; }
.caption { font-size: 12.5px; color: #333; }
footer { margin-top: 24px; font-size: 11.5px; color: #66707a; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10pt; }
  table { font-size: 8.5pt; }
  th, td { padding: 2px 4px; }
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


def _summary_cells(lang: Lang, totals: Totals) -> str:
    cells = [
        number(totals.kwh, 2),
        number(totals.baseline_kwh, 2),
        number(totals.saved_kwh, 2),
        _maybe(totals.saved_pct, 1),
        number(totals.saved_thb, 2),
        number(totals.saved_kg_co2e, 1),
        number(totals.burn_h, 1),
        _maybe(totals.availability_pct, 1),
        _maybe(totals.avg_level, 0),
    ]
    numeric = "".join(f'<td class="n">{c}</td>' for c in cells)
    return (
        numeric + f'<td>{escape(_source_text(lang, totals))}</td><td class="n">{totals.faults}</td>'
    )


def _summary_table(report: Report, lang: Lang) -> str:
    heads = (
        "kwh",
        "baseline_kwh",
        "saved_kwh",
        "saved_pct",
        "saved_thb",
        "saved_kg",
        "burn_h",
        "availability",
        "avg_level",
    )
    header = (
        f"<th>{escape(text(lang, 'zone'))}</th>"
        + "".join(f'<th class="n">{escape(text(lang, h))}</th>' for h in heads)
        + f"<th>{escape(text(lang, 'source'))}</th>"
        + f'<th class="n">{escape(text(lang, "faults"))}</th>'
    )
    body = []
    for zone in report.zones:
        body.append(
            f"<tr><td>{escape(zone.label)}</td>"
            f"{_summary_cells(lang, report.zone_totals[zone.id])}</tr>"
        )
    body.append(
        f'<tr class="total"><td>{escape(text(lang, "total"))}</td>'
        f"{_summary_cells(lang, report.total)}</tr>"
    )
    return (
        f'<table class="summary"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
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
            f"<tr{css}><td>{escape(date_time(lang, event.at))}</td><td>{escape(zone)}</td>"
            f"<td>{escape(kind_label(lang, event.kind))}</td><td>{escape(event.detail)}</td></tr>"
        )
    header = "".join(
        f"<th>{escape(text(lang, key))}</th>" for key in ("time", "zone", "kind", "detail")
    )
    return (
        f'<table class="events"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p class="note">{escape(text(lang, "faults_note"))}</p>'
    )


def _key_figures(report: Report, lang: Lang) -> str:
    total = report.total
    saved = number(total.saved_kwh, 1) + " kWh"
    if total.saved_pct is not None:
        saved += f" ({number(total.saved_pct, 0)} %)"
    baht = " บาท" if lang == "th" else " THB"
    items = (
        (number(total.kwh, 1) + " kWh", text(lang, "kwh")),
        (saved, text(lang, "saved_kwh")),
        (number(total.saved_thb, 0) + baht, text(lang, "saved_thb")),
        (number(total.saved_kg_co2e, 0) + " kg CO2e", text(lang, "saved_kg")),
    )
    boxes = "".join(
        f'<div class="figure"><div class="value">{escape(value)}</div>'
        f'<div class="what">{escape(what)}</div></div>'
        for value, what in items
    )
    return f'<div class="figures">{boxes}</div>'


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
    caption = (
        f"{text(lang, 'total')}: {number(total.saved_kwh, 1)} kWh · "
        f"{number(total.saved_thb, 2)} {'บาท' if lang == 'th' else 'THB'} · "
        f"{number(total.saved_kg_co2e, 1)} kg CO2e"
    )
    blocks = (
        (text(lang, "chart_energy"), energy, ""),
        (text(lang, "chart_profile"), night, ""),
        (text(lang, "chart_cumulative"), saved, caption),
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
        f"<section><h2>{escape(text(lang, 'summary'))}</h2>{_summary_table(report, lang)}"
        "</section>"
        f"{_charts(report, lang)}"
        f"<section><h2>{escape(text(lang, 'events'))}</h2>{_events_table(report, lang)}"
        "</section>"
        f"<section><h2>{escape(text(lang, 'method_title'))}</h2>{method}{notes}</section>"
        f"{footer}</body></html>\n"
    )
