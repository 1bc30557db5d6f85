"""The electrical model of LED luminaires: input power and power factor against dimming level.

Shared by the simulated luminaires (what they draw) and the controller (what a zone without a
meter is modelled to draw), so both agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LuminaireModel:
    """Input power and power factor of LED luminaires as a function of dimming level.

    LED drivers are less efficient when dimmed, so power does not fall to zero with light:
    `overhead` is the share of rated power drawn at the lowest light level. With the relay
    off (level 0) nothing is drawn; `standby_w` is drawn whenever the luminaires are on.
    The power factor is `pf_full` at full load and falls towards `pf_idle` as the load falls
    (with the defaults about 0.96 at 100 %, 0.91 at 50 %, 0.68 at 10 %), as LED drivers' do.
    """

    rated_w: float
    standby_w: float = 0.5
    overhead: float = 0.05
    pf_full: float = 0.96
    pf_idle: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.pf_idle <= self.pf_full <= 1:
            raise ValueError(
                f"power factors must satisfy 0 < pf_idle <= pf_full <= 1, got "
                f"pf_idle={self.pf_idle}, pf_full={self.pf_full}"
            )

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

    def power_factor(self, level: float) -> float:
        """Power factor at `level` percent: `pf_full` at rated load, `pf_idle` at no load."""
        if self.rated_w <= 0:
            return self.pf_full
        load = min(max(self.power_w(level) / self.rated_w, 0.0), 1.0)
        return self.pf_full - (self.pf_full - self.pf_idle) * (1 - load) ** 3
