"""Energy of a planned night, from the geometry of the plan's straight pieces.

A luminaire's power while lit is affine in its level (fixed_w + per_level_w * level; see
`drivers.sim.LuminaireModel.affine_w`), so a span's energy is exactly
fixed_w * lit_hours + per_level_w * level_hours, whatever the fades in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

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
