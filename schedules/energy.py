"""Energy of a planned night, from the geometry of the plan's straight pieces.

A luminaire's power while lit is affine in its level (fixed_w + per_level_w * level; see
`drivers.sim.LuminaireModel.affine_w`), so a span's energy is exactly
fixed_w * lit_hours + per_level_w * level_hours, whatever the fades in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from schedules.decide import ZonePlan, plan_night
from schedules.profile import segments
from schedules.solar import Site

Piece = tuple[datetime, datetime, float, float]


def lit_and_level_hours(pieces: Iterable[Piece]) -> tuple[float, float]:
    """`(lit_hours, level_hours)`: hours with a level above 0, and the integral of the level.

    With a power model that is affine while lit (fixed_w + per_level_w * level), energy is
    exactly fixed_w * lit_hours + per_level_w * level_hours.
    """
    lit_h = level_h = 0.0
    for start, end, first, last in pieces:
        if first > 0 or last > 0:
            hours = (end - start).total_seconds() / 3600
            lit_h += hours
            level_h += (first + last) / 2 * hours
    return lit_h, level_h


@dataclass(frozen=True, slots=True)
class NightsHours:
    """A zone's planned nights added up: lit hours, level hours, and change points planned."""

    lit_h: float
    level_h: float
    points: int


def nights_hours(site: Site, plan: ZonePlan, days: Iterable[date]) -> NightsHours:
    """The hours `plan` lights its zone, and the integral of its level, over the nights that
    start on `days` (energy is then fixed_w * lit_h + per_level_w * level_h)."""
    lit_total = level_total = 0.0
    points_total = 0
    for day in days:
        points = list(plan_night(site, plan, day).points)
        lit_h, level_h = lit_and_level_hours(segments(points))
        lit_total += lit_h
        level_total += level_h
        points_total += len(points)
    return NightsHours(lit_total, level_total, points_total)
