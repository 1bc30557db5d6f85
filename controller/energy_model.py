"""The power a zone is modelled to draw at a level, where no meter measures it.

The same model is used for modelled energy records, for the meter split between zones, for
lamp health (what a meter should see) and for forecasts: LED luminaires whose driver draws a
fixed share of rated power at the lowest level plus a part proportional to the level
(`drivers.sim.LuminaireModel`, the model the simulated luminaires obey). A zone with
simulated outputs uses their configured standby power; other zones the model's default.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.settings import SimOutput, ZoneSettings
from drivers.luminaire import LuminaireModel


@dataclass(frozen=True, slots=True)
class ZonePower:
    """A zone's modelled input power: `fixed_w + per_level_w * level` while lit, 0 when off."""

    fixed_w: float
    per_level_w: float

    def watts(self, level: float) -> float:
        """Modelled input power at `level` percent (0 when off)."""
        return self.fixed_w + self.per_level_w * level if level > 0 else 0.0


def zone_power(zone: ZoneSettings) -> ZonePower:
    """The modelled power of `zone`'s luminaires, from its rated power."""
    standby = sum(o.standby_w for o in zone.outputs if isinstance(o, SimOutput))
    model = LuminaireModel(rated_w=zone.rated_w, standby_w=standby) if standby else None
    fixed_w, per_level_w = (model or LuminaireModel(rated_w=zone.rated_w)).affine_w()
    return ZonePower(fixed_w, per_level_w)
