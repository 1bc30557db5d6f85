"""`streetlight schedule`: the plan for N nights, as a table for people or JSON for programs.

Shows the profile and calendar plan only: motion and remote overrides happen live.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta
from typing import Any, TextIO

from controller.cli import EXIT_CONFIG, EXIT_OK
from controller.clock import SystemClock, local_iso
from controller.commands import settings_for
from controller.plans import plans_of, site_of
from controller.settings import Settings
from schedules.decide import NightPlan, plan_night


def _iso(moment: datetime | None, settings: Settings) -> str | None:
    return None if moment is None else local_iso(moment, settings.unit.tz)


def night_plans(
    settings: Settings, first: date, days: int
) -> list[tuple[date, dict[str, NightPlan]]]:
    """Every zone's plan for `days` nights from the evening of `first`."""
    site = site_of(settings)
    plans = plans_of(settings)
    nights = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        nights.append(
            (day, {zone_id: plan_night(site, plan, day) for zone_id, plan in plans.items()})
        )
    return nights


def schedule_json(settings: Settings, first: date, days: int) -> dict[str, Any]:
    """The plan as the contract's JSON object: sun events, switching window, each zone's changes."""
    nights_out = []
    for day, zones in night_plans(settings, first, days):
        any_plan = next(iter(zones.values()))
        ons = [p.night.on_at for p in zones.values() if p.night.on_at is not None]
        offs = [p.night.off_at for p in zones.values() if p.night.off_at is not None]
        notes = sorted({p.night.note for p in zones.values() if p.night.note})
        night: dict[str, Any] = {
            "date": day.isoformat(),
            "sunset": _iso(any_plan.night.sunset, settings),
            "sunrise": _iso(any_plan.night.sunrise, settings),
            "on_at": _iso(min(ons), settings) if ons else None,
            "off_at": _iso(max(offs), settings) if offs else None,
            "zones": {
                zone_id: [
                    {"at": _iso(point.at, settings), "level": point.level, "source": plan.source}
                    | ({"fade_s": point.fade_s} if point.fade_s else {})
                    | ({"calendar": plan.entry} if plan.entry else {})
                    for point in plan.points
                ]
                for zone_id, plan in zones.items()
            },
        }
        if notes:
            night["note"] = "; ".join(notes)
        nights_out.append(night)
    return {"unit": settings.unit.id, "nights": nights_out}


def _hm(moment: datetime | None, settings: Settings) -> str:
    return "--:--" if moment is None else f"{moment.astimezone(settings.unit.tz):%H:%M}"


def schedule_table(settings: Settings, first: date, days: int, out: TextIO) -> None:
    """The plan as lines people read: one block per night, one line per zone."""
    tz = settings.unit.tz
    for day, zones in night_plans(settings, first, days):
        sample = next(iter(zones.values())).night
        print(
            f"Night of {day:%a %Y-%m-%d}: sunset {_hm(sample.sunset, settings)}, "
            f"sunrise {_hm(sample.sunrise, settings)} ({tz})",
            file=out,
        )
        width = max(len(zone_id) for zone_id in zones)
        for zone_id, plan in zones.items():
            changes = []
            for point in plan.points:
                text = f"{_hm(point.at, settings)} " + (
                    "off" if point.level == 0 else f"{point.level}%"
                )
                if point.fade_s:
                    text += (
                        f" (fade {point.fade_s // 60} min)"
                        if point.fade_s >= 60
                        else f" (fade {point.fade_s} s)"
                    )
                changes.append(text)
            label = f"[calendar: {plan.entry}] " if plan.entry else ""
            lit = any(point.level for point in plan.points)
            line = ", ".join(changes) if lit else "off all night"
            print(f"  {zone_id:<{width}}  {label}{line}", file=out)
        for note in sorted({p.night.note for p in zones.values() if p.night.note}):
            print(f"  note: {note}", file=out)


def schedule(
    config: str | None, on: str | None, days: int, as_json: bool, out: TextIO | None = None
) -> int:
    """Print the plan for `days` nights from the evening of `on` (default today)."""
    out = out or sys.stdout
    settings = settings_for(config, "no plan until the config is fixed (see streetlight check)")
    if settings is None:
        return EXIT_CONFIG
    first = (
        date.fromisoformat(on) if on else SystemClock().now().astimezone(settings.unit.tz).date()
    )
    if as_json:
        json.dump(schedule_json(settings, first, days), out, ensure_ascii=False, indent=2)
        print(file=out)
    else:
        schedule_table(settings, first, days, out)
    return EXIT_OK
