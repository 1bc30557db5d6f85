"""Checks that keep impossible meter values from reaching the energy ledger.

A meter on a street cabinet sees lightning, brown-outs, loose CT clamps, a PZEM counter reset
by a technician, a meter swapped for a new one. Values that cannot be true are flagged and not
passed on; a counter that restarts from a new base is passed on only once later readings
confirm it, marked with `counter_break` so nobody takes a difference across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from drivers.base import MeterReading
from drivers.errors import ImplausibleReading

# Below this much supply voltage the line is dead, so frequency and power factor mean nothing.
_DEAD_LINE_V = 50.0
# Counters count in steps (0.01 kWh on an Eastron, 1 Wh on a PZEM): tolerate a few of them.
_COUNTER_SLACK_KWH = 0.05


@dataclass(frozen=True, slots=True)
class _Base:
    energy_kwh: float
    at: datetime


class ReadingGuard:
    """Passes on plausible readings of one meter; raises `ImplausibleReading` for the rest.

    `max_power_w` is the most the circuits behind the meter can draw (the zones' rated power
    with a margin). A counter that goes back or leaps forward is held back until
    `confirm_reads` readings in a row agree with its new base, then passed on with
    `counter_break` set to "reset" or "jump".
    """

    def __init__(self, *, max_power_w: float, confirm_reads: int = 3) -> None:
        if max_power_w <= 0 or confirm_reads < 1:
            raise ValueError("max_power_w must be above 0 and confirm_reads at least 1")
        self.max_power_w = max_power_w
        self.confirm_reads = confirm_reads
        self._base: _Base | None = None
        self._candidate: list[MeterReading] = []
        self._candidate_kind: Literal["reset", "jump"] = "reset"

    def reset(self) -> None:
        """Forget the counter's history (the meter was replaced on purpose)."""
        self._base = None
        self._candidate = []

    def check(self, reading: MeterReading) -> MeterReading:
        """`reading` when it is plausible (perhaps marked with `counter_break`), else raise."""
        self._check_values(reading)
        base = self._base
        if base is None:
            self._base = _Base(reading.energy_kwh, reading.ts)
            return reading
        kind = self._counter_step(base.energy_kwh, base.at, reading)
        if kind is None:
            self._candidate = []
            self._base = _Base(reading.energy_kwh, reading.ts)
            return reading
        # the counter broke off from its base: believe it only when it keeps to the new one
        if self._candidate and (
            kind != self._candidate_kind
            or self._counter_step(self._candidate[-1].energy_kwh, self._candidate[-1].ts, reading)
            is not None
        ):
            self._candidate = []
        self._candidate_kind = kind
        self._candidate.append(reading)
        if len(self._candidate) >= self.confirm_reads:
            self._candidate = []
            self._base = _Base(reading.energy_kwh, reading.ts)
            return replace(reading, counter_break=kind)
        left = self.confirm_reads - len(self._candidate)
        what = "went back" if kind == "reset" else "leapt forward"
        raise ImplausibleReading(
            f"the meter's energy counter {what} from {base.energy_kwh:.3f} to "
            f"{reading.energy_kwh:.3f} kWh; the value is held back until {left} more reading(s) "
            "confirm a counter reset or a replaced meter"
        )

    def _counter_step(
        self, energy_kwh: float, at: datetime, reading: MeterReading
    ) -> Literal["reset", "jump"] | None:
        """None when the counter moved as the circuits could have made it move."""
        hours = max((reading.ts - at).total_seconds(), 0.0) / 3600
        step = reading.energy_kwh - energy_kwh
        if step < -_COUNTER_SLACK_KWH:
            return "reset"
        if step > self.max_power_w * hours / 1000 + _COUNTER_SLACK_KWH:
            return "jump"
        return None

    def _check_values(self, reading: MeterReading) -> None:
        values = {
            "voltage": reading.voltage,
            "current": reading.current,
            "power": reading.power,
            "power_factor": reading.power_factor,
            "frequency": reading.frequency,
            "energy_kwh": reading.energy_kwh,
        }
        for name, value in values.items():
            if not math.isfinite(value):
                raise ImplausibleReading(
                    f"the meter reported {name} = {value}: check the device profile's data "
                    "types and word order against the meter's datasheet"
                )
        problems = []
        if not 0 <= reading.voltage <= 500:
            problems.append(f"voltage {reading.voltage:g} V is outside 0-500 V")
        if reading.current < 0:
            problems.append(f"current {reading.current:g} A is negative")
        if reading.power < -max(1.0, 0.01 * self.max_power_w):
            problems.append(
                f"active power {reading.power:g} W is negative (a CT clamp or the meter's "
                "line and load terminals are reversed)"
            )
        if reading.power > 2 * self.max_power_w + 100:
            problems.append(
                f"active power {reading.power:g} W is far above the {self.max_power_w:g} W the "
                "zones on this meter can draw (check the meter's zones and the profile's scale)"
            )
        if reading.energy_kwh < 0:
            problems.append(f"energy counter {reading.energy_kwh:g} kWh is negative")
        if reading.voltage >= _DEAD_LINE_V:
            if not 0 <= abs(reading.power_factor) <= 1:
                problems.append(f"power factor {reading.power_factor:g} is outside -1 to 1")
            if not 40 <= reading.frequency <= 70:
                problems.append(f"frequency {reading.frequency:g} Hz is outside 40-70 Hz")
        if problems:
            raise ImplausibleReading("implausible meter reading: " + "; ".join(problems))
