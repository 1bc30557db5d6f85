"""Energy reports for funders and city officers, from the unit's energy ledger.

`build_report` sums the ledger's records for a period of local dates; `render` turns the
result into CSV, HTML or JSON in English or Thai; `write_report` and `write_html` write a file
in one step (the demo calls `write_html` at the end of a simulated run).
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from controller.ledger import Ledger
from controller.report.csv_out import render_csv
from controller.report.data import Report, Totals, build_report
from controller.report.html_out import render_html
from controller.report.json_out import render_json
from controller.report.labels import LANGS, Lang
from controller.settings import Settings

Format = Literal["csv", "html", "json"]
FORMATS: tuple[Format, ...] = ("csv", "html", "json")

__all__ = [
    "FORMATS",
    "LANGS",
    "Format",
    "Lang",
    "Report",
    "Totals",
    "build_report",
    "render",
    "write_html",
    "write_report",
]


def render(report: Report, fmt: Format, lang: Lang, *, generated: datetime | None = None) -> str:
    """The report as text in `fmt` and `lang` (CSV starts with a UTF-8 byte order mark)."""
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report, lang)
    return render_html(report, lang, generated=generated)


def write_text(path: Path, content: str) -> None:
    """Write `content` as UTF-8 to `path` all at once: a temporary file in the same folder,
    then a rename, so a reader never sees half a report. Raises OSError."""
    folder = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(
    settings: Settings,
    ledger: Ledger,
    start_date: date,
    end_date: date,
    *,
    fmt: Format,
    lang: Lang,
    path: Path,
) -> Totals:
    """Write the report for local dates `start_date` to `end_date` (inclusive) to `path` in
    `fmt` and `lang`; return the period's overall totals. Raises LedgerError when the ledger
    cannot be read, ValueError when `start_date` is after `end_date`, OSError when the file
    cannot be written."""
    report = build_report(settings, ledger, start_date, end_date)
    generated = datetime.now(settings.unit.tz)
    write_text(path, render(report, fmt, lang, generated=generated))
    return report.total


def write_html(
    settings: Settings,
    ledger: Ledger,
    start_date: date,
    end_date: date,
    *,
    path: Path,
    lang: Lang = "en",
) -> Totals:
    """Write the HTML report for local dates `start_date` to `end_date` (inclusive) to `path`;
    return the period's overall totals (for a summary line). Raises as `write_report`."""
    return write_report(settings, ledger, start_date, end_date, fmt="html", lang=lang, path=path)
