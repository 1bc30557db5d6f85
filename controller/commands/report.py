"""`streetlight report`: the energy report funders read, from the unit's energy ledger.

The period is a range of local dates, both included, in the unit's time zone. The format is
`--format`, else the one `--out`'s file name ends with (.csv, .json, .html or .htm), else HTML:
the document a funder opens and prints. Without `--out` the report goes to stdout.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal, Protocol, TextIO, cast

from controller.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from controller.commands import settings_for
from controller.ledger import Ledger, LedgerError
from controller.report import FORMATS, LANGS, Format, build_report, render, write_text
from controller.report.data import period_bounds

FORECAST_MODULE = "controller.commands.forecast"


class ForecastCommand(Protocol):
    """`controller.commands.forecast.forecast_command`, as `report --forecast` calls it."""

    def __call__(
        self,
        config: str | None,
        *,
        alternatives: Sequence[str],
        start: date | None,
        fmt: Literal["text", "json"],
        out: TextIO,
    ) -> int: ...


_SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
}


def choose_format(fmt: str | None, out_path: str | None) -> Format:
    """`fmt` when given; else the format `out_path`'s suffix names; else HTML."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"--format {fmt!r} is not a report format: use csv, html or json")
        return fmt
    if out_path:
        return _SUFFIX_FORMATS.get(Path(out_path).suffix.lower(), "html")
    return "html"


def _parse_day(option: str, value: str | None) -> date:
    if not value:
        raise ValueError(
            f"{option} is missing: give the first and last day of the report, "
            "e.g. --from 2026-11-01 --to 2026-11-30 (both days are included)"
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{option} {value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-21"
        ) from None


def parse_period(start: str | None, end: str | None) -> tuple[date, date]:
    """The report's first and last local dates from `--from` and `--to`; raises ValueError
    with a sentence that says what is wrong and how to fix it."""
    first = _parse_day("--from", start)
    last = _parse_day("--to", end)
    if first > last:
        raise ValueError(
            f"--from {first} is after --to {last}: the report runs from --from to --to, both "
            f"included, so swap them (--from {last} --to {first})"
        )
    return first, last


def report(  # noqa: PLR0917 (the interface the CLI and the demo were promised)
    config: str | None,
    start: str | None,
    end: str | None,
    fmt: str | None,
    lang: str,
    out_path: str | None,
    *,
    forecast: bool = False,
    alternatives: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    """Write the energy report for local dates `start` to `end` (YYYY-MM-DD, inclusive) in
    `fmt` (csv, html or json; empty or None: from `out_path`'s suffix, else html) and `lang`
    (en or th) to `out_path`, or to `out` (default stdout) when `out_path` is None.

    With `forecast`, hands over to `streetlight report --forecast` (the savings forecast for
    the configured and `alternatives` profiles); `start` is then optional.

    Returns 0 on success; 2 for bad arguments, a config that does not load or a ledger that
    cannot be read (each explained on stderr with its fix); 1 when the file cannot be written.
    """
    stream = out or sys.stdout
    if alternatives and not forecast:
        return _usage("--alternative only works with --forecast: add --forecast, or drop it")
    try:
        chosen = choose_format(fmt, out_path)
    except ValueError as exc:
        return _usage(str(exc))
    if lang not in LANGS:
        return _usage(f"--lang {lang!r} is not a report language: use en or th")
    if forecast:
        return _forecast(
            config, start, fmt=chosen, alternatives=alternatives, out_path=out_path, stream=stream
        )
    try:
        first, last = parse_period(start, end)
    except ValueError as exc:
        return _usage(str(exc))

    settings = settings_for(config, "no report until the config is fixed (see streetlight check)")
    if settings is None:
        return EXIT_CONFIG
    try:
        ledger = Ledger(settings.data_dir, readonly=True)
    except LedgerError as exc:
        return _usage(f"no report: {exc}")
    try:
        built = build_report(settings, ledger, first, last)
    except LedgerError as exc:
        return _usage(f"no report: {exc}")
    finally:
        ledger.close()
    if not built.total.records:
        start_at, end_at = period_bounds(first, last, settings.unit.tz)
        print(
            f"note: the ledger has no energy records from {start_at.isoformat()} to "
            f"{end_at.isoformat()}; the report shows zeros (check the dates, and that the "
            "unit was running then)",
            file=sys.stderr,
        )
    text = render(built, chosen, lang, generated=datetime.now(settings.unit.tz))
    if out_path is None:
        stream.write(text)
        stream.flush()
        return EXIT_OK
    try:
        write_text(Path(out_path), text)
    except OSError as exc:
        print(
            f"cannot write the report to {out_path}: {exc.strerror or exc}; check that the "
            "folder exists and that you may write there",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"streetlight report: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _forecast(
    config: str | None,
    start: str | None,
    *,
    fmt: Format,
    alternatives: Sequence[str],
    out_path: str | None,
    stream: TextIO,
) -> int:
    """`report --forecast`: delegated to `controller.commands.forecast.forecast_command`."""
    try:
        first = _parse_day("--from", start) if start else None
    except ValueError as exc:
        return _usage(str(exc))
    try:
        module = importlib.import_module(FORECAST_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != FORECAST_MODULE:
            raise
        return _usage("--forecast is not available in this version of streetlight")
    forecast_command = cast(ForecastCommand, module.forecast_command)
    as_text: Literal["text", "json"] = "json" if fmt == "json" else "text"
    if out_path is None:
        return forecast_command(
            config, alternatives=list(alternatives), start=first, fmt=as_text, out=stream
        )
    try:
        with open(out_path, "w", encoding="utf-8") as target:
            return forecast_command(
                config, alternatives=list(alternatives), start=first, fmt=as_text, out=target
            )
    except OSError as exc:
        print(
            f"cannot write the forecast to {out_path}: {exc.strerror or exc}; check that the "
            "folder exists and that you may write there",
            file=sys.stderr,
        )
        return EXIT_FAILED
