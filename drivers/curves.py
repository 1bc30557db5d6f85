"""Dimming curves: which PWM duty cycle gives a dimming level, before any inversion.

Pure arithmetic, no hardware: the GPIO dimmer applies the result (and inverts it for modules
that invert). Levels are integer percent 0-100; duties are fractions 0.0-1.0 of the PWM period,
which a PWM-to-analogue module turns into 0-10 V (duty 1.0 = 10 V).

The formulas, for a level L after the minimum-level floor (0 < L < min_level counts as
min_level; L = 0 is always duty 0.0, "off"):

- linear: x = L / 100.
- logarithmic: the DALI curve (IEC 62386-102: light = 10^((n - 1) / (253 / 3) - 1) % for arc
  power n = 1..254) stretched onto levels 1..100, i.e. x = 10^(3 (L - 1) / 99 - 3): level 1 gives
  x = 0.001 (0.1 % light), level 100 gives 1.0, and each 33 levels is a factor of 10.
- then the interface's voltage range: 0-10 V: duty = x; 1-10 V: duty = 0.1 + 0.9 x, because
  1 V is such a driver's minimum and anything below it looks the same.
- table: duty measured on site, piecewise linear between the points and clamped to the
  first/last point's duty outside them. The table's duties are used as they are (they already
  include whatever the interface needs), so `interface` does not change them.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from drivers.base import check_level

CurveKind = Literal["linear", "logarithmic", "table"]
Interface = Literal["0-10V", "1-10V"]

# 1-10 V interfaces: 1 V, a tenth of the range, is the driver's minimum light.
_ONE_VOLT = 0.1
# The DALI curve spans three decades: 0.1 % light at the lowest arc power, 100 % at the highest.
_DECADES = 3


@dataclass(frozen=True, slots=True)
class DimmingCurve:
    """Maps a level 0-100 to a PWM duty 0.0-1.0 (before inversion); see the module docstring.

    Raises ValueError at construction for settings that cannot work: an unknown kind or
    interface, a min_level outside 0-100, a table when kind is not "table", or a table that is
    missing, has fewer than two points, or does not go up (levels strictly increasing, duty
    never falling, levels 0-100, duties 0-1).
    """

    kind: CurveKind = "linear"
    table: tuple[tuple[int, float], ...] = ()
    interface: Interface = "0-10V"
    min_level: int = 10

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "logarithmic", "table"):
            raise ValueError(
                f"unknown dimming curve {self.kind!r}: use 'linear', 'logarithmic' or 'table'"
            )
        if self.interface not in ("0-10V", "1-10V"):
            raise ValueError(
                f"unknown dimming interface {self.interface!r}: use '0-10V' or '1-10V'"
            )
        if (
            isinstance(self.min_level, bool)
            or not isinstance(self.min_level, int)
            or not 0 <= self.min_level <= 100
        ):
            raise ValueError(
                f"min_level is an integer from 0 to 100, got {self.min_level!r}: "
                "the lowest level at which the luminaires still dim visibly, often 10-15"
            )
        # A frozen dataclass: the table from a config arrives as lists, stored as tuples so the
        # curve stays hashable and cannot change under the driver.
        table = tuple((level, float(duty)) for level, duty in self.table)
        object.__setattr__(self, "table", table)
        if self.kind != "table":
            if table:
                raise ValueError(
                    f"a curve table is given but the curve is {self.kind!r}: "
                    "set the curve to 'table' or remove the table"
                )
            return
        _check_table(table)

    def duty(self, level: int) -> float:
        """The PWM duty 0.0-1.0 for `level` (0-100), before inversion.

        0 gives 0.0; 0 < level < min_level gives the duty of min_level; the result never falls
        as the level rises. ValueError for a level that is not an integer 0-100.
        """
        check_level(level)
        if level == 0:
            return 0.0
        level = max(level, self.min_level)
        if self.kind == "table":
            return _interpolate(self.table, level)
        fraction = level / 100 if self.kind == "linear" else _dali_fraction(level)
        if self.interface == "1-10V":
            return _ONE_VOLT + (1 - _ONE_VOLT) * fraction
        return fraction

    def describe(self) -> str:
        """A short description for people, e.g. "logarithmic, 1-10V, min 10 %"."""
        kind = f"table of {len(self.table)} points" if self.kind == "table" else self.kind
        return f"{kind}, {self.interface}, min {self.min_level} %"


def _dali_fraction(level: int) -> float:
    """The DALI logarithmic curve on levels 1..100: 0.001 at 1, 1.0 at 100."""
    return float(10 ** (_DECADES * (level - 1) / 99 - _DECADES))


def _interpolate(table: tuple[tuple[int, float], ...], level: int) -> float:
    """Piecewise linear between the table's points, clamped to the end points' duties."""
    levels = [point_level for point_level, _ in table]
    if level <= levels[0]:
        return table[0][1]
    if level >= levels[-1]:
        return table[-1][1]
    i = bisect_right(levels, level)
    (l0, d0), (l1, d1) = table[i - 1], table[i]
    return d0 + (d1 - d0) * (level - l0) / (l1 - l0)


def _check_table(table: tuple[tuple[int, float], ...]) -> None:
    example = "e.g. [[10, 0.12], [50, 0.45], [100, 1.0]]"
    if len(table) < 2:
        raise ValueError(
            f"a curve table needs at least two [level, duty] points measured on site, {example}"
        )
    for level, duty in table:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
            raise ValueError(f"a curve table level is an integer 0-100, got {level!r}; {example}")
        if not (math.isfinite(duty) and 0.0 <= duty <= 1.0):
            raise ValueError(f"a curve table duty is a fraction 0-1, got {duty!r}; {example}")
    for (l0, d0), (l1, d1) in pairwise(table):
        if l1 <= l0 or d1 < d0:
            raise ValueError(
                "curve table points must go up: levels strictly increasing, duty never falling "
                f"(got [{l0}, {d0}] then [{l1}, {d1}])"
            )
