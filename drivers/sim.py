"""Simulated hardware with a physical model, running on an injected clock.

Use it anywhere there is no hardware: the demo, tests of the controller, a technician's laptop.
Time comes from the controller's clock (`now` or a `TimeSource`), so a simulation runs as fast
as that clock does. Faults can be injected to see what the controller makes of them.

The models, in short:

- Luminaires (`LuminaireModel`): off, nothing is drawn; lit at `level` percent, input power is
  `standby_w + (rated_w - standby_w) * (overhead + (1 - overhead) * level / 100)`, affine in
  the level (an LED driver's losses do not dim with the light). The power factor falls at light
  load: `pf_full - (pf_full - pf_idle) * (1 - load) ** 3`, `load` = power / rated power.
- Outputs (`SimOutput`): levels are piecewise constant in time, so energy is an exact sum of
  power times duration over every change of level or fault.
- Meters (`SimMeter`): power is the sum of the outputs' power; the counter is the exact integral
  of it, shown in whole watt-hours like a PZEM-004T.
- Passers-by and photocells: see `drivers.sim_sensors`.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any, Literal

from drivers.base import Identity, MeterReading, Now, SelfTestResult, check_level
from drivers.errors import DeviceFault, DriverError, ImplausibleReading
from drivers.luminaire import LuminaireModel
from drivers.plausibility import ReadingGuard
from drivers.sim_sensors import DAILY_SHAPE, SimPassersBy, SimPhotocell, clear_sky_lux

__all__ = [
    "DAILY_SHAPE",
    "LuminaireModel",
    "Now",
    "SimMeter",
    "SimOutput",
    "SimPassersBy",
    "SimPhotocell",
    "clear_sky_lux",
]


class SimOutput:
    """Simulated luminaires of one zone, with injectable faults; integrates its energy exactly.

    `level` and `history` are what was asked. `physical_level`, `power_w` and `energy_kwh()`
    are what the lamps really do, faults included; only a meter sees the difference, as in
    the street. Faults: `fail_lamps`, `stick_relay` (both invisible to the output itself),
    `break_driver` (the output reports it in `fault`); `repair()` clears them all.
    """

    def __init__(
        self, name: str, model: LuminaireModel, now: Now, *, switched: bool = False
    ) -> None:
        self.name = name
        self.model = model
        self.switched = switched
        self._now = now
        self._level = 0
        self._applied = 0  # what the driver electronics hold: the asked level unless broken
        self._last_lit: int | None = None
        self._dead_share = 0.0
        self._relay: Literal["stuck on", "stuck off"] | None = None
        self._driver_fault: str | None = None
        self._since = now()
        self._energy_wh = 0.0
        self.history: list[tuple[datetime, int]] = [(self._since, 0)]
        self._closed = False

    async def set_level(self, level: int) -> None:
        """Switch or dim the simulated luminaires; the change takes effect at once.

        A switched output lights fully at any level above 0. With a broken driver the level is
        recorded (in `level` and `history`) but the lamps stay as they were until `repair()`.
        """
        check_level(level)
        self._accumulate()
        if level != self._level:
            self._level = level
            self.history.append((self._since, level))
        if self._driver_fault is None:
            self._apply(level)

    def _apply(self, level: int) -> None:
        self._applied = 100 if self.switched and level > 0 else level
        if self._applied > 0:
            self._last_lit = self._applied

    def _accumulate(self) -> None:
        """Add the energy drawn since the last change; call before anything changes power."""
        now = self._now()
        seconds = max((now - self._since).total_seconds(), 0.0)
        self._energy_wh += self.power_w * seconds / 3600
        self._since = now

    @property
    def level(self) -> int:
        """The level last asked for (faults do not change it)."""
        return self._level

    @property
    def physical_level(self) -> int:
        """The level the lamps that still work really burn at, faults included."""
        if self._relay == "stuck off":
            return 0
        if self._relay == "stuck on" and self._applied == 0:
            return self._last_lit or 100
        return self._applied

    @property
    def fault(self) -> str | None:
        """What `break_driver` injected, else None: lamp and relay faults are not seen here."""
        return self._driver_fault

    @property
    def power_w(self) -> float:
        """The input power drawn now, faults included."""
        return (1 - self._dead_share) * self.model.power_w(self.physical_level)

    @property
    def power_factor(self) -> float:
        """The power factor of the lamps that burn now (of the model at `physical_level`)."""
        return self.model.power_factor(self.physical_level)

    def energy_kwh(self) -> float:
        """Energy drawn since the simulation started, up to now, faults included."""
        self._accumulate()
        return self._energy_wh / 1000

    def fail_lamps(self, fraction: float = 1.0) -> None:
        """From now on `fraction` (0-1) of the luminaires are dead and draw nothing.

        Dead LED luminaires are mostly dead drivers, which draw no power. The output does not
        notice: `fault` stays None.
        """
        if not 0 <= fraction <= 1:
            raise ValueError(f"the share of failed lamps is 0-1, got {fraction!r}")
        self._accumulate()
        self._dead_share = fraction

    def stick_relay(self, on: bool = True) -> None:
        """Weld the relay: on, the lamps stay lit at the last lit level (full if never lit) when
        set to 0; off, they stay dark whatever is asked. `fault` stays None."""
        self._accumulate()
        self._relay = "stuck on" if on else "stuck off"

    def break_driver(self, message: str) -> None:
        """The output reports `message` in `fault` and the lamps stop following new levels."""
        if not message:
            raise ValueError("a driver fault needs a message for people")
        self._accumulate()
        self._driver_fault = message

    def repair(self) -> None:
        """Clear every fault; the lamps go to the level last asked for at once."""
        self._accumulate()
        self._dead_share = 0.0
        self._relay = None
        self._driver_fault = None
        self._apply(self._level)

    def identify(self) -> Identity:
        """Simulated luminaires of the model's rated power."""
        kind = "switched" if self.switched else "dimmable"
        return Identity(
            kind="sim",
            model=f"simulated {kind} LED luminaires, {self.model.rated_w:g} W rated",
            where="simulation",
        )

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Switch off, then on at 100 %, each for `hold_s` seconds of real time, then restore.

        Never raises; not ok when the output reports a fault (lamp and relay faults are
        invisible to an output, as they are to real ones).
        """
        restore = self._level
        hold = max(hold_s, 0.0)
        steps: list[str] = []
        try:
            await self.set_level(0)
            steps.append("switched off (0 %)")
            await asyncio.sleep(hold)
            await self.set_level(100)
            steps.append("switched on (100 %)")
            await asyncio.sleep(hold)
        finally:
            await self.set_level(restore)
            steps.append(f"put back to {restore} %")
        problem = self.fault
        return SelfTestResult(self.name, problem is None, tuple(steps), problem)

    async def close(self) -> None:
        """Release the simulated driver; the lamps keep their level and draw, like real ones."""
        if not self._closed:
            self._accumulate()
            self._closed = True

    def __repr__(self) -> str:
        faults = [
            what
            for what in (
                f"{self._dead_share:.0%} lamps dead" if self._dead_share else None,
                f"relay {self._relay}" if self._relay else None,
                f"fault={self._driver_fault!r}" if self._driver_fault else None,
            )
            if what
        ]
        extra = "".join(f", {what}" for what in faults)
        return f"SimOutput({self.name!r}, level={self._level}, power_w={self.power_w:.1f}{extra})"


_MEASURED = frozenset(f.name for f in fields(MeterReading))


class SimMeter:
    """A simulated energy meter measuring the physical power of some `SimOutput`s.

    Its counter starts at `counter_kwh` and integrates the outputs' power exactly; `read()`
    shows it rounded down to `resolution_wh` (1 Wh, like a PZEM-004T), and power, current,
    power factor and frequency rounded to a PZEM's resolution (0.1 W, 0.001 A, 0.01, 0.1 Hz).
    The voltage carries seeded noise (`voltage_noise_v`, standard deviation); current is
    apparent power / voltage, with apparent powers adding up (the outputs' currents taken in
    phase). Every reading passes a `ReadingGuard(max_power_w=...)`, like a real meter's.
    Faults: `go_silent`, `reset_counter`, `set_counter`, `inject_reading`.
    """

    def __init__(
        self,
        name: str,
        outputs: Sequence[SimOutput],
        now: Now,
        *,
        max_power_w: float,
        voltage_v: float = 230.0,
        frequency_hz: float = 50.0,
        seed: int | None = None,
        counter_kwh: float = 0.0,
        resolution_wh: float = 1.0,
        voltage_noise_v: float = 1.0,
        confirm_reads: int = 3,
    ) -> None:
        if counter_kwh < 0 or resolution_wh <= 0 or voltage_noise_v < 0 or voltage_v <= 0:
            raise ValueError(
                "a simulated meter needs counter_kwh >= 0, resolution_wh > 0, "
                "voltage_noise_v >= 0 and voltage_v > 0"
            )
        self.name = name
        self.outputs = tuple(outputs)
        self._now = now
        self._guard = ReadingGuard(max_power_w=max_power_w, confirm_reads=confirm_reads)
        self._voltage_v = voltage_v
        self._frequency_hz = frequency_hz
        self._noise_v = voltage_noise_v
        self._resolution_wh = resolution_wh
        self._rng = random.Random(seed)  # noqa: S311 - measurement noise, not cryptography
        self._counter_wh = 0.0
        self._outputs_wh = 0.0
        self.set_counter(counter_kwh)
        self._silent = False
        self._fault: str | None = None
        self._fault_is_silence = False
        self._injected: dict[str, Any] = {}
        self._closed = False

    def _outputs_energy_wh(self) -> float:
        return sum(o.energy_kwh() for o in self.outputs) * 1000

    def counter_wh(self) -> float:
        """The counter now, unrounded: what `read()` shows before quantisation."""
        return self._counter_wh + self._outputs_energy_wh() - self._outputs_wh

    async def read(self) -> MeterReading:
        """A fresh reading; raises `DeviceFault` while silent, `ImplausibleReading` when the guard
        holds values back. Either sets `fault`; a reading that passes clears it."""
        if self._closed:
            raise DeviceFault(f"meter {self.name} is closed")
        if self._silent:
            self._fault = (
                f"meter {self.name} does not answer (simulated): check its supply, its bus "
                "wiring and its device address"
            )
            self._fault_is_silence = True
            raise DeviceFault(self._fault)
        reading = self._measure()
        if self._injected:
            reading = replace(reading, **self._injected)
            self._injected = {}
        self._fault_is_silence = False
        try:
            checked = self._guard.check(reading)
        except ImplausibleReading as exc:
            self._fault = f"meter {self.name}: {exc}"
            raise
        self._fault = None
        return checked

    def _measure(self) -> MeterReading:
        power = sum(o.power_w for o in self.outputs)
        apparent = sum(o.power_w / o.power_factor for o in self.outputs if o.power_w > 0)
        voltage = self._voltage_v + (self._rng.gauss(0.0, self._noise_v) if self._noise_v else 0.0)
        steps = math.floor(self.counter_wh() / self._resolution_wh + 1e-9)
        return MeterReading(
            voltage=round(voltage, 1),
            current=round(apparent / voltage, 3),
            power=round(power, 1),
            power_factor=round(power / apparent, 2) if apparent > 0 else 0.0,
            frequency=round(self._frequency_hz, 1),
            energy_kwh=steps * self._resolution_wh / 1000,
            ts=self._now(),
        )

    @property
    def fault(self) -> str | None:
        """None while the meter answers sensibly, else why the last read failed."""
        return self._fault

    def go_silent(self) -> None:
        """The meter stops answering: every `read()` raises `DeviceFault` until `answer_again`."""
        self._silent = True

    def answer_again(self) -> None:
        """The meter answers again; a fault from its silence is cleared at once."""
        self._silent = False
        if self._fault_is_silence:
            self._fault = None
            self._fault_is_silence = False

    def reset_counter(self) -> None:
        """Set the counter back to 0, like a PZEM's reset command; it counts on from there."""
        self.set_counter(0.0)

    def set_counter(self, kwh: float) -> None:
        """The counter shows `kwh` from now on and counts on from there (a replaced meter)."""
        if kwh < 0:
            raise ValueError(f"a meter's counter cannot be negative, got {kwh!r}")
        self._counter_wh = kwh * 1000
        self._outputs_wh = self._outputs_energy_wh()

    def inject_reading(self, **values: Any) -> None:
        """The next answered `read()` reports these `MeterReading` fields instead (power=-50)."""
        unknown = set(values) - _MEASURED
        if unknown:
            raise TypeError(f"MeterReading has no field(s) {sorted(unknown)}")
        self._injected = dict(values)

    def identify(self) -> Identity:
        """A simulated meter and the outputs it measures."""
        return Identity(
            kind="sim",
            model=f"simulated energy meter ({self._resolution_wh:g} Wh counter, like a PZEM-004T)",
            where="simulation",
        )

    async def self_test(self) -> SelfTestResult:
        """Read the meter once and report the values or the problem; never raises."""
        try:
            r = await self.read()
        except DriverError as exc:
            return SelfTestResult(self.name, False, ("read the meter: no valid reading",), str(exc))
        seen = (
            f"read {r.voltage:.1f} V, {r.current:.3f} A, {r.power:.1f} W, pf {r.power_factor:.2f}, "
            f"{r.frequency:.1f} Hz, counter {r.energy_kwh:.3f} kWh"
        )
        return SelfTestResult(self.name, True, (seen,))

    async def close(self) -> None:
        """Stop answering reads; safe to call more than once."""
        self._closed = True

    def __repr__(self) -> str:
        names = ", ".join(o.name for o in self.outputs)
        state = " silent" if self._silent else ""
        return (
            f"SimMeter({self.name!r}, outputs=[{names}],{state} counter_wh={self.counter_wh():.1f})"
        )
