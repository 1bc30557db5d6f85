"""Inline SVG charts for the HTML report, drawn in Python (no library, no script, no fonts).

Each chart is a `<svg>` with a `viewBox` and no fixed size, so it scales to the page width on
screen and on A4 paper; text inherits the page's font, so Thai renders with the reader's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 270
LEFT = 60
RIGHT = 16
TOP = 34
BOTTOM = 30
LEGEND_ROW = 18
EMPTY_HEIGHT = 70

PALETTE = ("#1b7f3b", "#1f5fa8", "#c26a00", "#8a3ea8", "#b3261e", "#00838f", "#5d6b00", "#6d4c41")
BASELINE_COLOUR = "#b9c0c8"


@dataclass(frozen=True, slots=True)
class Series:
    """A named line of values; None leaves a gap."""

    name: str
    values: Sequence[float | None]
    colour: str


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (always including 0 when the range spans it)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class _Frame:
    """The plot area and its y scale."""

    def __init__(self, ticks: Sequence[float], count: int, extra_top: float = 0.0) -> None:
        self.low = ticks[0]
        self.high = ticks[-1]
        self.count = max(count, 1)
        self.x0 = LEFT
        self.x1 = WIDTH - RIGHT
        self.height = HEIGHT + extra_top
        self.y0 = self.height - BOTTOM
        self.y1 = TOP + extra_top
        self.ticks = ticks

    def y(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.y0 - (value - self.low) / span * (self.y0 - self.y1)

    def slot(self) -> float:
        return (self.x1 - self.x0) / self.count

    def x_centre(self, index: int) -> float:
        return self.x0 + (index + 0.5) * self.slot()

    def axes(self, y_label: str) -> list[str]:
        parts = []
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{self.x0}" y1="{y:.1f}" x2="{self.x1}" y2="{y:.1f}" '
                f'stroke="{"#555" if tick == 0 else "#e3e6ea"}" stroke-width="1"/>'
            )
            parts.append(
                f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" '
                f'font-size="11" fill="#333">{_tick_text(tick)}</text>'
            )
        parts.append(
            f'<text x="14" y="{(self.y0 + self.y1) / 2:.1f}" font-size="11" fill="#333" '
            f'text-anchor="middle" transform="rotate(-90 14 {(self.y0 + self.y1) / 2:.1f})">'
            f"{escape(y_label)}</text>"
        )
        return parts

    def x_labels(self, labels: Sequence[str], every: int) -> list[str]:
        parts = []
        for index, label in enumerate(labels):
            if index % every:
                continue
            x = self.x_centre(index)
            parts.append(
                f'<text x="{x:.1f}" y="{self.y0 + 16}" text-anchor="middle" font-size="11" '
                f'fill="#333">{escape(label)}</text>'
            )
        return parts


def _label_every(count: int, room: int = 12) -> int:
    return max(1, math.ceil(count / room))


_THAI_MARKS = frozenset(
    "\u0e31" + "".join(map(chr, range(0x0E34, 0x0E3B))) + "".join(map(chr, range(0x0E47, 0x0E4F)))
)


def _legend_width(name: str) -> float:
    # Thai vowel and tone marks above or below a consonant take no width of their own.
    marks = sum(1 for c in name if c in _THAI_MARKS)
    return 30 + 7.5 * (len(name) - marks)


def _legend(items: Sequence[tuple[str, str]]) -> tuple[list[str], float]:
    """The legend's SVG parts, in as many rows as it needs to stay inside the chart, and the
    height it takes beyond the first row."""
    parts = []
    x = float(LEFT)
    y = 10.0
    for name, colour in items:
        width = _legend_width(name)
        if x > LEFT and x + width - 12 > WIDTH - RIGHT:
            x = float(LEFT)
            y += LEGEND_ROW
        parts.append(f'<rect x="{x:.1f}" y="{y:.0f}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 17:.1f}" y="{y + 10:.0f}" font-size="12" fill="#222">'
            f"{escape(name)}</text>"
        )
        x += width
    return parts, y - 10.0


def _svg(title: str, parts: Sequence[str], height: float = HEIGHT) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height:g}" '
        f'role="img" aria-label="{escape(title)}" class="chart">'
        f"<title>{escape(title)}</title>" + "".join(parts) + "</svg>"
    )


def _empty(title: str, message: str) -> str:
    # A short box, not a blank full-size chart that wastes half a printed page.
    return _svg(
        title,
        [
            f'<rect x="{LEFT}" y="8" width="{WIDTH - LEFT - RIGHT}" height="{EMPTY_HEIGHT - 16}" '
            'fill="none" stroke="#d5dae0"/>',
            f'<text x="{WIDTH / 2}" y="{EMPTY_HEIGHT / 2 + 5}" text-anchor="middle" '
            f'font-size="14" fill="#666">{escape(message)}</text>',
        ],
        EMPTY_HEIGHT,
    )


def bars_against_baseline(
    title: str,
    labels: Sequence[str],
    used: Sequence[float],
    baseline: Sequence[float],
    *,
    used_name: str,
    baseline_name: str,
    y_label: str,
    empty: str,
) -> str:
    """Two bars per label: the baseline (grey) and what was used (green)."""
    if not labels or (not any(used) and not any(baseline)):
        return _empty(title, empty)
    legend, extra = _legend([(baseline_name, BASELINE_COLOUR), (used_name, PALETTE[0])])
    frame = _Frame(nice_ticks(min([0.0, *used]), max([*used, *baseline])), len(labels), extra)
    parts = frame.axes(y_label)
    slot = frame.slot()
    bar = max(slot * 0.38, 0.5)
    for index, (u, b) in enumerate(zip(used, baseline, strict=True)):
        left = frame.x0 + index * slot + slot * 0.1
        for offset, value, colour in ((0.0, b, BASELINE_COLOUR), (bar, u, PALETTE[0])):
            top = frame.y(max(value, 0.0))
            bottom = frame.y(min(value, 0.0))
            parts.append(
                f'<rect x="{left + offset:.2f}" y="{top:.2f}" width="{bar:.2f}" '
                f'height="{max(bottom - top, 0.0):.2f}" fill="{colour}"/>'
            )
    parts += frame.x_labels(labels, _label_every(len(labels)))
    return _svg(title, parts + legend, frame.height)


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    empty: str,
    y_max: float | None = None,
    label_every: int | None = None,
    area: bool = False,
) -> str:
    """One line per series over the labels; gaps where a value is None."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return _empty(title, empty)
    high = max(values) if y_max is None else y_max
    legend, extra = _legend([(s.name, s.colour) for s in series])
    frame = _Frame(nice_ticks(min(values), high), len(labels), extra)
    parts = frame.axes(y_label)
    for line in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for index, value in enumerate(line.values):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((frame.x_centre(index), frame.y(value)))
        for run in runs:
            if not run:
                continue
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            if area and len(run) > 1:
                zero = frame.y(0.0)
                parts.append(
                    f'<polygon points="{run[0][0]:.1f},{zero:.1f} {points} '
                    f'{run[-1][0]:.1f},{zero:.1f}" fill="{line.colour}" fill-opacity="0.15"/>'
                )
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{line.colour}"/>')
            else:
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{line.colour}" '
                    'stroke-width="2" stroke-linejoin="round"/>'
                )
    every = label_every if label_every is not None else _label_every(len(labels))
    parts += frame.x_labels(labels, every)
    return _svg(title, parts + legend, frame.height)
