"""Energy of a planned night: the exact integral of power over the plan's straight pieces.

The power model is passed in (watts as a function of level), so the same integration serves
a zone's modelled energy, its baseline and forecasts. Simpson's rule on each piece is exact
for any power model up to quadratic in the level, which covers every model used here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

Piece = tuple[datetime, datetime, float, float]


def energy_wh(pieces: Iterable[Piece], power_w: Callable[[float], float]) -> float:
    """Watt-hours drawn over `pieces` (start, end, level at start, level at end)."""
    total = 0.0
    for start, end, first, last in pieces:
        hours = (end - start).total_seconds() / 3600
        if first == last:
            total += power_w(first) * hours
        else:
            mid = power_w((first + last) / 2)
            total += (power_w(first) + 4 * mid + power_w(last)) * hours / 6
    return total


def lit_and_level_hours(pieces: Iterable[Piece]) -> tuple[float, float]:
    """`(lit_hours, level_hours)`: hours with a level above 0, and the integral of the level.

    With a power model that is affine while lit (fixed_w + per_level_w * level), energy is
    exactly fixed_w * lit_hours + per_level_w * level_hours: the fast path for long spans.
    """
    lit_h = level_h = 0.0
    for start, end, first, last in pieces:
        if first > 0 or last > 0:
            hours = (end - start).total_seconds() / 3600
            lit_h += hours
            level_h += (first + last) / 2 * hours
    return lit_h, level_h


def lit_seconds(pieces: Iterable[Piece]) -> float:
    """Seconds with a level above 0 (the burning time)."""
    return sum(
        (end - start).total_seconds() for start, end, first, last in pieces if first > 0 or last > 0
    )
