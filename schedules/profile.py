"""Dimming profiles: the levels through a night, as change points, and the level at any moment.

A night's plan is a list of `Point`s: at `at` the level starts moving to `level`, reaching it
`fade_s` seconds later (at once when `fade_s` is 0). Between points the level holds.

How steps become points (the rule `streetlight check` warns about). Steps are a sequence:
list them in the order they happen in a night.

1. Each step's anchor is resolved to a time in that night (see `schedules.anchors`).
2. A step takes effect at its time, but never before the lamps go on (`on_at`) and never
   before the step listed above it. So on a short summer night a `22:00` step that falls
   before dusk applies from switch-on: the dimming time has already passed.
3. Of several steps taking effect at the same moment, the last one listed wins.
4. Steps taking effect at or after `off_at` are skipped that night; at `off_at` the lamps
   go off. Before the first step the lamps are at the zone's on level.

All arithmetic is on real elapsed time (UTC), so offsets and virtual midnight are right on
the nights daylight-saving time begins or ends.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from schedules.anchors import Anchor
from schedules.night import Night, NightRule
from schedules.solar import Site


@dataclass(frozen=True, slots=True)
class Step:
    """From its anchor on, the profile asks for `level`, reached over `fade_s` seconds."""

    anchor: Anchor
    level: int
    fade_s: int = 0


@dataclass(frozen=True, slots=True)
class Profile:
    """A named dimming profile: the night's edges and the steps through it."""

    name: str
    night: NightRule
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Point:
    """At `at` the level starts moving to `level`, reaching it `fade_s` seconds later."""

    at: datetime
    level: int
    fade_s: int = 0


@functools.lru_cache(maxsize=4096)
def local_time_on(site: Site, day: date, clock: time) -> datetime:
    """`clock` on `day` in the site's zone, as a real instant even across DST changes.

    A time skipped by a spring-forward change is moved forward by the gap (02:30 becomes
    03:30); a time that happens twice in autumn is its first occurrence.
    """
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=site.tz, fold=0)
    # Round-tripping through UTC shows whether the wall time exists that day.
    back = first.astimezone(UTC).astimezone(site.tz)
    if back.replace(tzinfo=None) != naive:
        return first.astimezone(UTC).astimezone(site.tz)
    return first


def resolve_anchor(site: Site, night: Night, anchor: Anchor) -> datetime | None:
    """The instant (in UTC) `anchor` stands for in `night`; None when the night has no window."""
    if night.on_at is None or night.off_at is None:
        return None
    return _resolve(site, night, anchor, night.on_at.astimezone(UTC), night.off_at.astimezone(UTC))


def _resolve(
    site: Site, night: Night, anchor: Anchor, on_at: datetime, off_at: datetime
) -> datetime:
    """`resolve_anchor` with the night's edges already in UTC (planning converts them once)."""
    if anchor.base == "on":
        at = on_at
    elif anchor.base == "off":
        at = off_at
    elif anchor.base == "virtual_midnight":
        at = on_at + (off_at - on_at) / 2
    elif anchor.base == "midnight":
        at = local_time_on(site, night.date + timedelta(days=1), time(0, 0)).astimezone(UTC)
    else:
        assert anchor.clock is not None
        evening = anchor.clock >= time(12, 0)
        day = night.date if evening else night.date + timedelta(days=1)
        at = local_time_on(site, day, anchor.clock).astimezone(UTC)
    return at + anchor.offset


@dataclass(frozen=True, slots=True)
class StepPlacement:
    """Where a step landed in one night: its time, and whether it was used."""

    index: int
    at: datetime
    used: bool
    why: str | None = None


def night_points(
    site: Site, night: Night, steps: tuple[Step, ...], on_level: int, *, explain: bool = False
) -> tuple[list[Point], list[StepPlacement]]:
    """The night's change points (by the rule in this module's docstring), and, with `explain`,
    each step's fate (for `check`; planning does not pay for it)."""
    if night.on_at is None or night.off_at is None:
        return [], []
    on_at, off_at = night.on_at.astimezone(UTC), night.off_at.astimezone(UTC)
    effective: list[tuple[datetime, int, Step]] = []
    placements: list[StepPlacement] = []
    floor = on_at
    for i, step in enumerate(steps):
        at = _resolve(site, night, step.anchor, on_at, off_at)
        start = max(at, floor)
        if start >= off_at:
            if explain:
                placements.append(StepPlacement(i, at, False, "at or after the lamps go off"))
            continue
        if explain:
            why = None
            if at < on_at:
                why = "before the lamps go on"
            elif at < start:
                why = "before the step listed above it"
            placements.append(StepPlacement(i, at, True, why))
        effective.append((start, i, step))
        floor = start
    points = [Point(on_at, on_level)]
    for start, _, step in effective:
        if points[-1].at == start:
            points[-1] = Point(start, step.level, step.fade_s)  # the later step wins
        else:
            points.append(Point(start, step.level, step.fade_s))
    points.append(Point(off_at, 0))
    return points, placements


def level_at(points: list[Point], when: datetime) -> float:
    """The level (0-100, fractional inside a fade) the points ask for at `when`."""
    if not points or when < points[0].at:
        return 0.0
    for start, end, first, last in segments(points):
        if start <= when < end:
            return (
                first
                + (last - first) * (when - start).total_seconds() / (end - start).total_seconds()
            )
    return float(points[-1].level)


def segments(points: list[Point]) -> list[tuple[datetime, datetime, float, float]]:
    """The plan as straight pieces `(start, end, level_at_start, level_at_end)`, in order.

    A fade is one sloped piece (cut short where the next point starts); holds are flat.
    The last piece ends at the last point, after which the level is that point's level.
    """
    pieces: list[tuple[datetime, datetime, float, float]] = []
    # a fade at switch-on rises from the lowest level, so the street is never shown at 0 %
    level = 1.0
    for i, point in enumerate(points):
        end = points[i + 1].at if i + 1 < len(points) else point.at
        start_level = level
        if point.fade_s:
            fade_end = point.at + timedelta(seconds=point.fade_s)
            if fade_end >= end:
                span = (end - point.at).total_seconds()
                reached = start_level + (point.level - start_level) * span / point.fade_s
                pieces.append((point.at, end, start_level, reached))
                level = reached
                continue
            pieces.append((point.at, fade_end, start_level, float(point.level)))
            pieces.append((fade_end, end, float(point.level), float(point.level)))
        else:
            pieces.append((point.at, end, float(point.level), float(point.level)))
        level = float(point.level)
    return [piece for piece in pieces if piece[1] > piece[0]]


def whole(level: float) -> int:
    """A level as the whole percent outputs get: halves round up, and it stays within 0-100."""
    return max(0, min(100, math.floor(level + 0.5)))


def next_whole_level_change(points: list[Point], when: datetime) -> datetime | None:
    """The first moment after `when` at which the whole-percent level differs from now's."""
    now_level = whole(level_at(points, when))
    for start, end, first, last in segments(points):
        if end <= when:
            continue
        if start > when and whole(first) != now_level:
            return start
        if first == last:
            continue
        # inside a fade: the next whole percent, in the direction of travel
        origin = max(start, when)
        rate = (last - first) / (end - start).total_seconds()  # level per second
        current = first + rate * (origin - start).total_seconds()
        crossing = origin + timedelta(seconds=seconds_to_next_whole(current, rate))
        if crossing < end:
            return crossing
        if whole(last) != now_level:
            return end
    final = points[-1] if points else None  # the switch-off, after the last piece
    if final is not None and final.at > when and whole(final.level) != now_level:
        return final.at
    return None


def seconds_to_next_whole(current: float, rate: float) -> float:
    """Seconds until a level at `current`, moving `rate` per second, shows another whole
    percent: a millisecond past the half-way point, so the level then is already the next."""
    shown = math.floor(current + 0.5)
    target = shown + 0.5 if rate > 0 else shown - 0.5
    return max((target - current) / rate, 0.0) + 0.001
