"""A zone's level at a moment, its source, and when that decision next changes.

The daemon sleeps until `next_change` (or an event), so a decision must always say when it
stops being true. Issue-by-issue this grows profiles, calendar, motion, overrides and
fail-safe; the signature stays: plain data and `now` in, a `Decision` out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schedules.night import NightRule, night_date_at, night_of
from schedules.solar import Site

Source = Literal["schedule", "calendar", "motion", "override", "failsafe"]


@dataclass(frozen=True, slots=True)
class ZonePlan:
    """What the schedule core needs to know of one zone."""

    zone_id: str
    night: NightRule
    on_level: int = 100
    failsafe_level: int = 100


@dataclass(frozen=True, slots=True)
class Decision:
    """The level a zone should have now, why, and the time this stops being true."""

    level: int
    source: Source
    next_change: datetime | None


def decide(site: Site, plan: ZonePlan, now: datetime) -> Decision:
    """The zone's scheduled level at `now`: its on level between on_at and off_at, else 0."""
    day = night_date_at(site, now)
    for night_day in (day, day + timedelta(days=1)):
        night = night_of(site, night_day, plan.night)
        if night.on_at is None or night.off_at is None:
            continue
        if now < night.on_at:
            return Decision(0, "schedule", night.on_at)
        if now < night.off_at:
            return Decision(plan.on_level, "schedule", night.off_at)
    # No window tonight or tomorrow (polar day): look again at tomorrow's local noon.
    local_noon = now.astimezone(site.tz).replace(hour=12, minute=0, second=0, microsecond=0)
    wake = local_noon if local_noon > now else local_noon + timedelta(days=1)
    return Decision(0, "schedule", wake)
