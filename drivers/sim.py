"""Simulated hardware with a physical power model, running on an injected clock.

Use it anywhere there is no hardware: the demo, tests of the controller, a technician's laptop.
It records every level it is given, with the time, and integrates its electrical power into
energy exactly (levels are piecewise constant, so the integral is a sum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from drivers.base import check_level

Now = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class LuminaireModel:
    """Input power of LED luminaires as a function of dimming level.

    LED drivers are less efficient when dimmed, so power does not fall to zero with light:
    `overhead` is the share of rated power drawn at the lowest light level. With the relay
    off (level 0) nothing is drawn; `standby_w` is drawn whenever the luminaires are on.
    """

    rated_w: float
    standby_w: float = 0.5
    overhead: float = 0.05

    def affine_w(self) -> tuple[float, float]:
        """`(fixed_w, per_level_w)`: while lit, power is fixed_w + per_level_w * level."""
        dimmable_w = max(self.rated_w - self.standby_w, 0.0)
        return self.standby_w + dimmable_w * self.overhead, dimmable_w * (1 - self.overhead) / 100

    def power_w(self, level: float) -> float:
        """Input power in watts at `level` percent of full light (0 when off)."""
        if level <= 0:
            return 0.0
        fixed_w, per_level_w = self.affine_w()
        return fixed_w + per_level_w * level


class SimOutput:
    """Simulated luminaires of one zone: remembers its levels and integrates its energy."""

    def __init__(self, name: str, model: LuminaireModel, now: Now) -> None:
        self.name = name
        self.model = model
        self._now = now
        self._level = 0
        self._since = now()
        self._energy_wh = 0.0
        self.history: list[tuple[datetime, int]] = [(self._since, 0)]
        self._closed = False

    async def set_level(self, level: int) -> None:
        """Switch or dim the simulated luminaires; the change takes effect at once."""
        check_level(level)
        self._accumulate()
        if level != self._level:
            self._level = level
            self.history.append((self._since, level))

    def _accumulate(self) -> None:
        now = self._now()
        seconds = max((now - self._since).total_seconds(), 0.0)
        self._energy_wh += self.model.power_w(self._level) * seconds / 3600
        self._since = now

    @property
    def level(self) -> int:
        """The level last applied."""
        return self._level

    @property
    def fault(self) -> str | None:
        """Simulated luminaires do not fail unless a fault is injected (see issue 4)."""
        return None

    @property
    def power_w(self) -> float:
        """The input power drawn now."""
        return self.model.power_w(self._level)

    def energy_kwh(self) -> float:
        """Energy drawn since the simulation started, up to now."""
        self._accumulate()
        return self._energy_wh / 1000

    async def close(self) -> None:
        """Stop accounting; the simulated lamps keep their level, like real ones would."""
        if not self._closed:
            self._accumulate()
            self._closed = True

    def __repr__(self) -> str:
        return f"SimOutput({self.name!r}, level={self._level}, power_w={self.power_w:.1f})"
