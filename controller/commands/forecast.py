"""`streetlight report --forecast`: a year's scheduled energy, cost and CO2, now and with
other dimming profiles, so a city sees what a profile change would save before making it.

The numbers come from `controller.forecast`; this module reads the config and any profile
files named by `--alternative FILE.toml:NAME`, picks the first night and prints.
"""

from __future__ import annotations

import json
import sys
import textwrap
import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import ValidationError

from controller.cli import EXIT_CONFIG, EXIT_OK
from controller.clock import SystemClock
from controller.commands import settings_for
from controller.config_load import explain
from controller.forecast import (
    AlternativeSpec,
    ForecastError,
    forecast,
    forecast_json,
    parse_spec,
    resolve_alternative,
)
from controller.settings import DimmingProfile

_WHO = "streetlight report --forecast"


def _problem(message: str, fix: str | None = None) -> int:
    """Say what is wrong and how to fix it on stderr; the command exits with code 2."""
    print(f"{_WHO}: {message}", file=sys.stderr)
    if fix:
        print(f"  fix: {fix}", file=sys.stderr)
    return EXIT_CONFIG


def _read_profiles(
    specs: Sequence[AlternativeSpec],
) -> dict[tuple[str, str], DimmingProfile] | int:
    """The profiles the specs take from files, by (file, name); or EXIT_CONFIG after saying
    what is wrong. A file holds `[profiles.NAME]` tables written as in a config (a whole
    config file will do); relative paths start from the current directory."""
    found: dict[tuple[str, str], DimmingProfile] = {}
    tables: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if spec.file is None or (spec.file, spec.profile) in found:
            continue
        if spec.file not in tables:
            try:
                raw = tomllib.loads(Path(spec.file).read_bytes().decode("utf-8"))
            except FileNotFoundError:
                return _problem(
                    f"--alternative {spec.text!r}: the file {spec.file} does not exist",
                    "give the path of a TOML file with [profiles.NAME] tables, "
                    "from the current directory",
                )
            except (OSError, UnicodeDecodeError) as exc:
                return _problem(
                    f"--alternative {spec.text!r}: {spec.file} cannot be read: {exc}",
                    "give a readable UTF-8 TOML file",
                )
            except tomllib.TOMLDecodeError as exc:
                return _problem(
                    f"--alternative {spec.text!r}: TOML syntax error in {spec.file}: {exc}",
                    "correct the line it names",
                )
            profiles = raw.get("profiles")
            tables[spec.file] = profiles if isinstance(profiles, dict) else {}
        table = tables[spec.file].get(spec.profile)
        if not isinstance(table, dict):
            known = ", ".join(sorted(tables[spec.file])) or "none"
            return _problem(
                f"--alternative {spec.text!r}: {spec.file} has no [profiles.{spec.profile}] "
                f"table (profiles there: {known})",
                f"add a [profiles.{spec.profile}] table to {spec.file}, written as in a config",
            )
        try:
            found[spec.file, spec.profile] = DimmingProfile.model_validate(table)
        except ValidationError as exc:
            raw_profiles = {"profiles": {spec.profile: table}}
            errors = [
                dict(error) | {"loc": ("profiles", spec.profile, *error["loc"])}
                for error in exc.errors()
            ]
            problems = explain(errors, raw_profiles)
            print(
                f"{_WHO}: --alternative {spec.text!r}: {spec.file} has {len(problems)} problem(s):",
                file=sys.stderr,
            )
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return EXIT_CONFIG
    return found


def forecast_command(
    config: str | None,
    *,
    alternatives: Sequence[str],
    start: date | None,
    fmt: Literal["text", "json"],
    out: TextIO,
) -> int:
    """Print the forecast for 365 nights from the evening of `start` (default: today)."""
    settings = settings_for(config, "no forecast until the config is fixed (see streetlight check)")
    if settings is None:
        return EXIT_CONFIG
    try:
        specs = [parse_spec(text) for text in alternatives]
    except ForecastError as exc:
        return _problem(exc.message, exc.fix)
    file_profiles = _read_profiles(specs)
    if isinstance(file_profiles, int):
        return file_profiles
    try:
        chosen = resolve_alternative(settings, specs, file_profiles) if specs else None
    except ForecastError as exc:
        return _problem(exc.message, exc.fix)
    first = start or SystemClock().now().astimezone(settings.unit.tz).date()
    result = forecast_json(
        forecast(settings, first, alternative=chosen, alternatives=list(alternatives))
    )
    if fmt == "json":
        json.dump(result, out, ensure_ascii=False, indent=2)
        print(file=out)
    else:
        forecast_table(result, out)
    return EXIT_OK


# the table's columns: heading, key in the figures, digits shown
_COLUMNS = (
    ("burning h", "burn_h", 1),
    ("kWh", "kwh", 1),
    ("baseline kWh", "baseline_kwh", 1),
    ("THB", "thb", 0),
    ("kg CO2e", "kg_co2e", 1),
)


def _number(value: float, digits: int, *, signed: bool = False) -> str:
    text = f"{value:{'+' if signed else ''},.{digits}f}"
    return "0" if signed and float(value) == 0 else text


def _saved(figures: dict[str, Any]) -> str:
    pct = figures.get("saved_vs_baseline_pct")
    return "-" if pct is None else f"{pct:.1f} %"


def _table(
    rows: list[tuple[str, str, dict[str, Any]]], out: TextIO, *, difference: bool = False
) -> None:
    """Rows of (zone, profile, figures) under one heading line, numbers right-aligned."""
    headings = ["zone", "" if difference else "profile"]
    headings += [heading for heading, _, _ in _COLUMNS]
    if not difference:
        headings.append("saved vs baseline")
    cells = [
        [zone, profile]
        + [_number(figures[key], digits, signed=difference) for _, key, digits in _COLUMNS]
        + ([] if difference else [_saved(figures)])
        for zone, profile, figures in rows
    ]
    widths = [max(len(row[i]) for row in [headings, *cells]) for i in range(len(headings))]
    for row in [headings, *cells]:
        text = "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        print(f"  {text.rstrip()}", file=out)


def forecast_table(result: dict[str, Any], out: TextIO) -> None:
    """The forecast (as `forecast_json` gives it) as tables a city officer reads."""
    first, last = date.fromisoformat(result["from"]), date.fromisoformat(result["to"])
    print(f"Energy forecast for unit {result['unit']}, {result['site']}", file=out)
    print(
        f"{result['nights']} nights: from the night of {first:%a %Y-%m-%d} to the night of "
        f"{last:%a %Y-%m-%d} ({result['timezone']})",
        file=out,
    )
    zones: dict[str, Any] = result["zones"]
    total = result["total"]
    print(file=out)
    print("With the current profiles", file=out)
    rows = [(zid, z["current"]["profile"], z["current"]) for zid, z in zones.items()]
    _table([*rows, ("total", "", total["current"])], out)
    if total["alternative"] is not None:
        print(file=out)
        print(f"With the alternative ({', '.join(result['alternatives'])})", file=out)
        rows = [(zid, z["alternative"]["profile"], z["alternative"]) for zid, z in zones.items()]
        _table([*rows, ("total", "", total["alternative"])], out)
        print(file=out)
        print("Difference: alternative minus current (negative: the change saves)", file=out)
        rows = [(zid, "", z["difference"]) for zid, z in zones.items()]
        _table([*rows, ("total", "", total["difference"])], out, difference=True)
        print(file=out)
        print(_verdict(total), file=out)
    print(file=out)
    print("How to read this:", file=out)
    for note in _notes(result):
        print(textwrap.fill(note, 96, initial_indent="  - ", subsequent_indent="    "), file=out)


def _verdict(total: dict[str, Any]) -> str:
    """One sentence: what the change would save or cost over the period."""
    diff, current = total["difference"], total["current"]
    kwh = diff["kwh"]
    share = f" ({abs(kwh) / current['kwh'] * 100:.1f} %)" if current["kwh"] > 0 else ""
    amounts = (
        f"{abs(kwh):,.1f} kWh{share}, {abs(diff['thb']):,.0f} THB and "
        f"{abs(diff['kg_co2e']):,.1f} kg CO2e"
    )
    if kwh < 0:
        return f"The change would save {amounts} in these nights."
    if kwh > 0:
        return f"The change would use {amounts} more in these nights."
    return "The change would use the same energy in these nights."


def _notes(result: dict[str, Any]) -> list[str]:
    moving = [zone_id for zone_id, zone in result["zones"].items() if zone["motion"]]
    motion = (
        f"Motion boosts are not included: {', '.join(moving)} "
        f"{'is' if len(moving) == 1 else 'are'} raised by passers-by and will use more."
        if moving
        else "Motion boosts are not included (no zone here reacts to motion)."
    )
    return [
        "Scheduled energy: each zone's profile and the calendar (festival nights, nights off), "
        "with sunset and sunrise at the unit's place, and the luminaires' modelled power "
        "(rated_w, dimming level).",
        motion,
        "Also not included: remote overrides, fail-safe periods (output faults, an "
        "unsynchronised clock), lamp failures and outages.",
        "baseline kWh: each zone's baseline_w (the lamps the donation replaced), undimmed, for "
        "the hours the schedule lights the lamps.",
        f"THB: avoided cost at a reference tariff of {result['tariff_thb_per_kwh']} THB/kWh "
        "(energy.tariff_thb_per_kwh). Local bodies are often not billed for street lighting "
        "(the state or the PEA bears it), so this is a cost avoided, not a saving on the "
        "city's bill.",
        f"kg CO2e: {result['co2_kg_per_kwh']} kg CO2e per kWh (energy.co2_kg_per_kwh; the "
        "default is the TGO grid emission factor from 2026).",
    ]
