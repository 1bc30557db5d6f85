"""Benchmarks of streetlight: each module here measures one requirement on this machine.

A benchmark is a module `bench/<name>.py` with a function `run() -> list[Result]`; its
docstring's first line is its title. `python -m bench` runs them all, `python -m bench NAME`
runs one (see `bench/__main__.py`), and `bench/RESULTS.md` records what they measured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    """One measured figure and, when it is a requirement, the range it must fall in.

    `low` and `high` are exclusive bounds (`value < high`, `value > low`); with neither the
    figure is for information only.
    """

    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    fmt: str = ",.3f"

    @property
    def target(self) -> str:
        """The bounds as people read them: `< 1 s`, `> 0 %`, `10 - 13.5 h`, or `-`."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{self.low:g} - {self.high:g}{unit}"
        if self.high is not None:
            return f"< {self.high:g}{unit}"
        if self.low is not None:
            return f"> {self.low:g}{unit}"
        return "-"

    @property
    def met(self) -> bool | None:
        """Whether the figure is within its bounds; None when it has none."""
        if self.low is None and self.high is None:
            return None
        above = self.low is None or self.value > self.low
        below = self.high is None or self.value < self.high
        return above and below

    @property
    def figure(self) -> str:
        """The value formatted for the table."""
        return format(self.value, self.fmt)
