"""Dimming curves: level to PWM duty for linear, logarithmic (DALI) and measured tables."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.curves import CurveKind, DimmingCurve, Interface

FAST = settings(max_examples=200, deadline=None)
TABLE = ((10, 0.2), (50, 0.4), (100, 0.9))


@pytest.mark.parametrize(
    ("curve", "level", "duty"),
    [
        (DimmingCurve(), 0, 0.0),
        (DimmingCurve(), 100, 1.0),
        (DimmingCurve(), 50, 0.5),
        (DimmingCurve(), 10, 0.1),
        (DimmingCurve(), 5, 0.1),  # below the minimum level: as the minimum
        (DimmingCurve(), 1, 0.1),
        (DimmingCurve(min_level=0), 1, 0.01),
        (DimmingCurve(min_level=15), 12, 0.15),
        (DimmingCurve(interface="1-10V"), 0, 0.0),
        (DimmingCurve(interface="1-10V"), 100, 1.0),
        (DimmingCurve(interface="1-10V"), 50, 0.55),
        (DimmingCurve(interface="1-10V"), 3, 0.19),  # 0.1 + 0.9 * 0.10
        (DimmingCurve(interface="1-10V", min_level=1), 1, 0.109),
    ],
)
def test_linear(curve: DimmingCurve, level: int, duty: float) -> None:
    assert curve.duty(level) == pytest.approx(duty)


@pytest.mark.parametrize(
    ("level", "duty"),
    [(0, 0.0), (1, 0.001), (34, 0.01), (67, 0.1), (100, 1.0)],
)
def test_logarithmic_is_the_dali_curve_over_three_decades(level: int, duty: float) -> None:
    curve = DimmingCurve(kind="logarithmic", min_level=1)
    assert curve.duty(level) == pytest.approx(duty, rel=1e-9)


def test_logarithmic_matches_dali_arc_power_at_the_ends_and_middle() -> None:
    # IEC 62386-102: X(n) = 10^((n - 1) / (253 / 3) - 1) percent, n = 1..254.
    def dali_percent(n: float) -> float:
        return float(10 ** ((n - 1) / (253 / 3) - 1))

    curve = DimmingCurve(kind="logarithmic", min_level=1)
    for level in (1, 2, 25, 50, 99, 100):
        arc = 1 + (level - 1) * 253 / 99
        assert curve.duty(level) == pytest.approx(dali_percent(arc) / 100, rel=1e-9)


def test_logarithmic_on_1_10v_starts_at_one_volt() -> None:
    curve = DimmingCurve(kind="logarithmic", interface="1-10V", min_level=1)
    assert curve.duty(1) == pytest.approx(0.1 + 0.9 * 0.001)
    assert curve.duty(100) == pytest.approx(1.0)
    assert curve.duty(0) == 0.0


def test_logarithmic_rises_strictly_above_the_minimum() -> None:
    curve = DimmingCurve(kind="logarithmic", min_level=1)
    duties = [curve.duty(level) for level in range(1, 101)]
    assert all(a < b for a, b in pairwise(duties))


@pytest.mark.parametrize(
    ("level", "duty"),
    [
        (0, 0.0),
        (10, 0.2),  # the points themselves
        (50, 0.4),
        (100, 0.9),
        (30, 0.3),  # halfway between (10, 0.2) and (50, 0.4)
        (75, 0.65),  # halfway between (50, 0.4) and (100, 0.9)
        (60, 0.5),
    ],
)
def test_table_interpolates_between_points(level: int, duty: float) -> None:
    assert DimmingCurve(kind="table", table=TABLE).duty(level) == pytest.approx(duty)


def test_table_clamps_outside_its_points() -> None:
    curve = DimmingCurve(kind="table", table=((20, 0.3), (80, 0.7)), min_level=1)
    assert curve.duty(1) == pytest.approx(0.3)
    assert curve.duty(19) == pytest.approx(0.3)
    assert curve.duty(81) == pytest.approx(0.7)
    assert curve.duty(100) == pytest.approx(0.7)


def test_table_keeps_the_minimum_level_floor() -> None:
    curve = DimmingCurve(kind="table", table=((0, 0.0), (100, 1.0)), min_level=20)
    assert curve.duty(5) == pytest.approx(0.2)
    assert curve.duty(0) == 0.0


def test_table_duties_are_not_moved_by_the_interface() -> None:
    a = DimmingCurve(kind="table", table=TABLE, interface="0-10V")
    b = DimmingCurve(kind="table", table=TABLE, interface="1-10V")
    assert [a.duty(level) for level in range(101)] == [b.duty(level) for level in range(101)]


def test_table_from_a_config_is_stored_as_tuples() -> None:
    rows: Any = [[10, 0.2], [100, 1]]
    curve = DimmingCurve(kind="table", table=rows)
    assert curve.table == ((10, 0.2), (100, 1.0))
    assert hash(curve) == hash(DimmingCurve(kind="table", table=((10, 0.2), (100, 1.0))))


def test_describe() -> None:
    assert DimmingCurve(kind="logarithmic", interface="1-10V").describe() == (
        "logarithmic, 1-10V, min 10 %"
    )
    assert DimmingCurve(kind="table", table=TABLE, min_level=5).describe() == (
        "table of 3 points, 0-10V, min 5 %"
    )


@pytest.mark.parametrize("level", [-1, 101, 1.5, True, "50", None])
def test_a_level_outside_0_100_is_refused(level: Any) -> None:
    with pytest.raises(ValueError, match="integer from 0 to 100"):
        DimmingCurve().duty(level)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "cubic"}, "unknown dimming curve"),
        ({"interface": "DALI"}, "unknown dimming interface"),
        ({"min_level": 101}, "min_level is an integer from 0 to 100"),
        ({"min_level": -1}, "min_level"),
        ({"kind": "linear", "table": TABLE}, "set the curve to 'table'"),
        ({"kind": "table"}, "at least two"),
        ({"kind": "table", "table": ((10, 0.2),)}, "at least two"),
        ({"kind": "table", "table": ((50, 0.2), (10, 0.4))}, "must go up"),
        ({"kind": "table", "table": ((10, 0.2), (10, 0.4))}, "must go up"),
        ({"kind": "table", "table": ((10, 0.5), (50, 0.4))}, "must go up"),
        ({"kind": "table", "table": ((10, 0.2), (50, 1.5))}, "fraction 0-1"),
        ({"kind": "table", "table": ((10, 0.2), (50, math.nan))}, "fraction 0-1"),
        ({"kind": "table", "table": ((10, 0.2), (150, 0.4))}, "integer 0-100"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DimmingCurve(**kwargs)


# --------------------------------------------------------------------------------------------
# properties of every curve


@st.composite
def tables(draw: st.DrawFn) -> tuple[tuple[int, float], ...]:
    levels = draw(st.lists(st.integers(0, 100), min_size=2, max_size=6, unique=True))
    duties = draw(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=len(levels), max_size=len(levels))
    )
    return tuple(zip(sorted(levels), sorted(duties), strict=True))


@st.composite
def curves(draw: st.DrawFn) -> DimmingCurve:
    kind: CurveKind = draw(st.sampled_from(["linear", "logarithmic", "table"]))
    interface: Interface = draw(st.sampled_from(["0-10V", "1-10V"]))
    table = draw(tables()) if kind == "table" else ()
    return DimmingCurve(kind, table, interface, draw(st.integers(0, 100)))


@FAST
@given(curves())
def test_every_curve_is_monotonic_within_0_1_and_off_at_0(curve: DimmingCurve) -> None:
    duties = [curve.duty(level) for level in range(101)]
    assert duties[0] == 0.0
    assert all(0.0 <= d <= 1.0 for d in duties)
    assert all(a <= b for a, b in pairwise(duties))


@FAST
@given(curves(), st.integers(1, 100))
def test_below_the_minimum_level_is_as_the_minimum(curve: DimmingCurve, level: int) -> None:
    floor = curve.duty(max(curve.min_level, 1))
    if level < curve.min_level:
        assert curve.duty(level) == floor
    else:
        assert curve.duty(level) >= floor


@FAST
@given(st.sampled_from(["linear", "logarithmic"]), st.integers(0, 100))
def test_full_level_is_full_duty_and_1_10v_never_below_one_volt(
    kind: CurveKind, min_level: int
) -> None:
    interfaces: tuple[Interface, ...] = ("0-10V", "1-10V")
    for interface in interfaces:
        curve = DimmingCurve(kind, (), interface, min_level)
        assert curve.duty(100) == pytest.approx(1.0)
    one_to_ten = DimmingCurve(kind, (), "1-10V", min_level)
    assert all(one_to_ten.duty(level) >= 0.1 for level in range(1, 101))
