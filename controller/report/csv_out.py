"""The report as CSV for spreadsheets: one row per zone per local date.

Column names and coded values (`source`) are English machine names in every language, and
dates are ISO 8601 (Gregorian), so a spreadsheet or a script reads a Thai and an English
report the same way; zone names are as configured. Numbers are plain, with a dot decimal and
no thousands separator. A value that does not exist (availability when nothing was scheduled,
the level of lamps that never burnt) is an empty cell. The text starts with a UTF-8 byte order
mark so Excel shows Thai names correctly; lines end with CRLF (RFC 4180).
"""

from __future__ import annotations

import csv
import io

from controller.report.data import Report

BOM = "\ufeff"

COLUMNS = (
    "date",
    "zone",
    "zone_name",
    "kwh",
    "baseline_kwh",
    "saved_kwh",
    "saved_thb",
    "saved_kg_co2e",
    "burn_h",
    "scheduled_h",
    "availability_pct",
    "avg_level",
    "source",
    "modelled_kwh",
    "records",
    "faults",
)


def _fixed(value: float | None, decimals: int) -> str:
    if value is None:
        return ""
    shown = f"{value:.{decimals}f}"
    return shown[1:] if shown.startswith("-") and float(shown) == 0 else shown


def render_csv(report: Report, *, bom: bool = True) -> str:
    """The CSV text: a header row, then one row per zone per date of the period (zones without
    records that day have zeros and source 'none')."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in report.rows:
        t = row.totals
        writer.writerow(
            (
                row.day.isoformat(),
                row.zone.id,
                row.zone.label,
                _fixed(t.kwh, 6),
                _fixed(t.baseline_kwh, 6),
                _fixed(t.saved_kwh, 6),
                _fixed(t.saved_thb, 4),
                _fixed(t.saved_kg_co2e, 6),
                _fixed(t.burn_h, 4),
                _fixed(t.scheduled_s / 3600.0, 4),
                _fixed(t.availability_pct, 2),
                _fixed(t.avg_level, 2),
                t.source,
                _fixed(t.modelled_kwh, 6),
                t.records,
                t.faults,
            )
        )
    return (BOM if bom else "") + buffer.getvalue()
