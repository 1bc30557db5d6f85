"""Energy accounting for one unit: levels and meter counters in, one Interval per zone out.

Pure bookkeeping, no I/O and no clock reads: the caller hands in zone levels as they change,
meter readings as they arrive, and asks for the intervals at each boundary. So the whole of it
can be tested against a simulated meter over many simulated nights.

- **Levels** are integrated exactly: burning seconds, the time-weighted mean level, and the
  modelled energy (`energy_model.zone_power`).
- **Scheduled time** (what the baseline and availability count) comes from the schedule core:
  the seconds the zone's profile or calendar wanted the lamps on, and of those the seconds the
  zone was actually lit.
- **Meters**: energy is the difference of the meter's own cumulative counter, reading by
  reading. A step across a counter break (the driver says reset or jump), a counter that goes
  back, or a step larger than the zone's power could draw, is not taken: that step's energy is
  the modelled energy instead, and the interval carries a note. The meter's energy is split
  among its zones in proportion to their modelled energy (by rated power when all were off).
  An interval in which a meter gave no reading (offline, or polled less often) is modelled
  and says so; when readings return, the modelled energy is taken off the counter's step so
  nothing is counted twice. A counter break after the controller was stopped is modelled only
  from the controller's start: what the lamps used while it was stopped is not known.
- **Lamps out** (lamp health's `lamp_failure` until `recovered`) do not count as available.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from controller.energy_model import ZonePower, zone_power
from controller.ledger import Interval, Source
from controller.plans import plans_of, site_of
from controller.settings import Settings
from drivers.base import MeterReading
from schedules.decide import ZonePlan, scheduled
from schedules.solar import Site

# A step of the counter above what the meter's zones could draw at full power, times this,
# is not believed (a misread, a wrapped counter, another load wired in).
_JUMP_FACTOR = 1.5
_JUMP_ALLOWANCE_W = 50.0


@dataclass
class _ZoneRun:
    """One zone's running totals in the open interval."""

    level: float = 0.0
    since: datetime | None = None
    burn_s: float = 0.0
    level_s: float = 0.0
    model_wh: float = 0.0
    changes: list[tuple[datetime, float]] = field(default_factory=list)
    # lamp failure spans in the interval: (time, lamps out from then on)
    outs: list[tuple[datetime, bool]] = field(default_factory=list)


@dataclass
class _MeterRun:
    """One meter's counter bookkeeping in the open interval."""

    counter_kwh: float | None = None  # the last counter value taken
    counter_at: datetime | None = None
    measured_kwh: float = 0.0  # counter differences believed in this interval
    # steps not believed: their span, for which the zones' modelled energy stands in (worked
    # out at the close, when the levels over the span are known)
    substituted: list[tuple[datetime, datetime]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # modelled energy booked for earlier intervals without a reading; the next believed
    # step of the counter covers it, so it is taken off that step
    booked_wh: float = 0.0


class EnergyAccount:
    """The open interval of every zone and meter of one unit."""

    def __init__(self, settings: Settings, start: datetime) -> None:
        self.settings = settings
        self.site: Site = site_of(settings)
        self.plans: dict[str, ZonePlan] = plans_of(settings)
        self.power: dict[str, ZonePower] = {z.id: zone_power(z) for z in settings.zones}
        self.baseline_w = {z.id: z.baseline_power_w for z in settings.zones}
        self.meter_zones = {name: list(m.zones) for name, m in settings.meters.items()}
        self.start = start
        self.opened = start  # the controller's start: nothing is known before it
        self.zones = {z.id: _ZoneRun(since=start) for z in settings.zones}
        self.out: dict[str, bool] = {z.id: False for z in settings.zones}
        self.meters = {name: _MeterRun() for name in settings.meters}
        self.notes: dict[str, list[str]] = {z.id: [] for z in settings.zones}

    # ---- inputs ----------------------------------------------------------------------------

    def level(self, zone: str, level: float, at: datetime) -> None:
        """Zone `zone` is at `level` from `at` on (a new state)."""
        run = self.zones.get(zone)
        if run is None:
            return
        self._advance(zone, run, max(at, self.start))
        run.level = level
        run.changes.append((max(at, self.start), level))

    def lamps_out(self, zone: str, out: bool, at: datetime) -> None:
        """Zone `zone`'s lamps are out (a confirmed lamp failure) or lit again from `at`."""
        run = self.zones.get(zone)
        if run is None or self.out.get(zone) == out:
            return
        self.out[zone] = out
        run.outs.append((max(at, self.start), out))

    def resume_counter(self, meter: str, kwh: float, at: datetime, booked_wh: float = 0) -> None:
        """The meter's counter as last stored (a restart), and the modelled Wh booked since:
        the next reading continues from them."""
        run = self.meters.get(meter)
        if run is not None and run.counter_kwh is None:
            run.counter_kwh, run.counter_at, run.booked_wh = kwh, at, booked_wh

    def counters(self) -> dict[str, tuple[float, datetime]]:
        """Each meter's counter (kWh) at its last reading, and that reading's time."""
        return {
            name: (run.counter_kwh, run.counter_at)
            for name, run in self.meters.items()
            if run.counter_kwh is not None and run.counter_at is not None
        }

    def booked_wh(self) -> dict[str, float]:
        """Each meter's modelled Wh booked for intervals since its last reading."""
        return {name: run.booked_wh for name, run in self.meters.items()}

    def take_meters(self, previous: EnergyAccount) -> None:
        """Go on from `previous`'s meter counters (a reload): same meters, same bookkeeping."""
        for name, run in previous.meters.items():
            mine = self.meters.get(name)
            if mine is not None and run.counter_kwh is not None:
                mine.counter_kwh, mine.counter_at = run.counter_kwh, run.counter_at
                mine.booked_wh = run.booked_wh

    def reading(self, meter: str, reading: MeterReading) -> None:
        """A new reading of `meter`: take its counter difference if it can be believed."""
        run = self.meters.get(meter)
        if run is None:
            return
        before, before_at = run.counter_kwh, run.counter_at
        run.counter_kwh, run.counter_at = reading.energy_kwh, reading.ts
        if before is None or before_at is None:
            return
        step = reading.energy_kwh - before
        # a clock stepped back gives no span to judge the step by: judge it over a minute
        hours = max((reading.ts - before_at).total_seconds(), 60.0) / 3600
        zones = self.meter_zones[meter]
        ceiling_kwh = (
            (sum(self.power[z].watts(100) for z in zones) * _JUMP_FACTOR + _JUMP_ALLOWANCE_W)
            * hours
            / 1000
        )
        why = None
        if reading.counter_break is not None:
            why = f"meter {meter}: the counter restarted ({reading.counter_break})"
        elif step < 0:
            now_kwh = reading.energy_kwh
            why = f"meter {meter}: the counter went back from {before:.3f} to {now_kwh:.3f} kWh"
        elif step > ceiling_kwh + run.booked_wh / 1000:
            why = f"meter {meter}: the counter jumped {step:.3f} kWh in {hours * 60:.0f} min"
        if why is None:
            # earlier intervals without a reading were modelled: the step covers them too
            run.measured_kwh += max(step - run.booked_wh / 1000, 0.0)
            run.booked_wh = 0.0
            return
        # the step is not believed: the zones' modelled energy over it stands in, from the
        # controller's start (before it nothing is known) and after what is already booked
        floor = max(self.opened, self.start) if run.booked_wh else self.opened
        if before_at < self.opened:
            why += "; what the lamps used while the controller was stopped is not known"
        run.booked_wh = 0.0
        run.substituted.append((max(before_at, floor), reading.ts))
        run.notes.append(f"{why}; modelled energy used for that step")

    # ---- closing an interval ---------------------------------------------------------------

    def close(self, end: datetime) -> list[Interval]:
        """Every zone's Interval from the open interval's start to `end`; then a new interval
        starts at `end`. What to store with them is `counters()` and `booked_wh()`."""
        start = self.start
        for zone, run in self.zones.items():
            self._advance(zone, run, end)
        by_meter = {z: name for name, zones in self.meter_zones.items() for z in zones}
        meter_kwh: dict[str, float] = {}
        for name, counter in self.meters.items():
            if counter.counter_kwh is None:
                continue  # no reading yet: its zones are modelled this time
            silent = counter.counter_at is None or counter.counter_at <= start
            if silent and not counter.substituted:  # no reading in this interval: modelled
                counter.booked_wh += sum(
                    self.zones[z].model_wh for z in self.meter_zones[name] if z in self.zones
                )
                counter.notes.append(f"meter {name} gave no reading: modelled energy")
                continue
            zones = self.meter_zones[name]
            substituted_wh = sum(
                self._model_wh_between(z, start_at, end_at)
                for start_at, end_at in counter.substituted
                for z in zones
                if z in self.zones
            )
            meter_kwh[name] = counter.measured_kwh + substituted_wh / 1000
        intervals = []
        for zone, run in self.zones.items():
            seconds = (end - start).total_seconds()
            meter = by_meter.get(zone)
            notes = list(self.notes[zone])
            try:
                scheduled_s, available_s = self._scheduled_and_available(zone, run, start, end)
            except (ValueError, ArithmeticError) as exc:  # as decide() guards the lights
                scheduled_s = available_s = 0.0
                notes.append(f"the schedule could not be worked out ({exc}): no baseline")
            source: Source
            if meter is not None and meter in meter_kwh:
                kwh = meter_kwh[meter] * self._share(meter, zone)
                source = "meter"
                notes += self.meters[meter].notes
            else:
                if meter is not None:
                    notes += self.meters[meter].notes
                kwh = run.model_wh / 1000
                source = "model"
            intervals.append(
                Interval(
                    zone=zone,
                    start=start.astimezone(self.site.tz),
                    end=end.astimezone(self.site.tz),
                    kwh=max(kwh, 0.0),
                    baseline_kwh=self.baseline_w[zone] * scheduled_s / 3600 / 1000,
                    source=source,
                    burn_s=round(min(run.burn_s, seconds)),
                    avg_level=min(max(run.level_s / seconds, 0.0), 100.0) if seconds else 0.0,
                    scheduled_s=round(scheduled_s),
                    available_s=round(available_s),
                    note="; ".join(notes) or None,
                )
            )
        self._restart(end)
        return intervals

    def note(self, zones: Iterable[str], text: str) -> None:
        """Add `text` to the open interval's note of `zones`."""
        for zone in zones:
            if zone in self.notes:
                self.notes[zone].append(text)

    def modelled_power_w(self, zone: str) -> float:
        """What `zone` is modelled to draw now, at its current level."""
        run = self.zones.get(zone)
        return self.power[zone].watts(run.level) if run is not None else 0.0

    # ---- helpers ---------------------------------------------------------------------------

    def _restart(self, at: datetime) -> None:
        self.start = at
        for zone, run in self.zones.items():
            # a level change just after `at` (read before the close) was counted up to its
            # time in the interval just closed: the new one counts from there
            since = max(at, run.since or at)
            self.zones[zone] = _ZoneRun(
                level=run.level,
                since=since,
                changes=[(at, run.level)],
                outs=[(at, self.out[zone])],
            )
            self.notes[zone] = []
        for counter in self.meters.values():
            counter.measured_kwh = 0.0
            counter.substituted = []
            counter.notes = []

    def _advance(self, zone: str, run: _ZoneRun, to: datetime) -> None:
        since = run.since or to
        seconds = (to - since).total_seconds()
        if seconds <= 0:
            return
        if run.level > 0:
            run.burn_s += seconds
            run.level_s += run.level * seconds
        run.model_wh += self.power[zone].watts(run.level) * seconds / 3600
        run.since = to

    def _model_wh_between(self, zone: str, start: datetime, end: datetime) -> float:
        """The zone's modelled energy from `start` to `end`, from its level changes so far."""
        run = self.zones[zone]
        power = self.power[zone]
        return _integrate(run.changes, run.level, start, end, power.watts) / 3600

    def _share(self, meter: str, zone: str) -> float:
        zones = self.meter_zones[meter]
        modelled = {z: self.zones[z].model_wh for z in zones if z in self.zones}
        total = sum(modelled.values())
        if total > 0:
            return modelled.get(zone, 0.0) / total
        rated = {z: self.power[z].watts(100) for z in zones if z in self.power}
        return rated.get(zone, 0.0) / (sum(rated.values()) or 1.0)

    def _scheduled_and_available(
        self, zone: str, run: _ZoneRun, start: datetime, end: datetime
    ) -> tuple[float, float]:
        """Seconds the schedule wanted the zone lit, and of those the seconds it was lit."""
        plan = self.plans.get(zone)
        if plan is None:
            return 0.0, 0.0
        actual = _lit_unless_out(sorted(run.changes) or [(start, run.level)], run.outs)
        scheduled_s = available_s = 0.0
        t = start
        while t < end:
            level, _, change = scheduled(self.site, plan, t)
            stop = min(max(change, t), end)
            if stop <= t:
                stop = end
            if level > 0:
                scheduled_s += (stop - t).total_seconds()
                available_s += _lit_seconds(actual, t, stop)
            t = stop
        return scheduled_s, available_s


def _integrate(
    changes: list[tuple[datetime, float]],
    last_level: float,
    start: datetime,
    end: datetime,
    value: Callable[[float], float],
) -> float:
    """The integral over [start, end) of `value(level)` dt (in seconds), the level being a step
    function given by (time, level) changes in time order; before the first change the first
    change's level holds, after the last `last_level`."""
    if end <= start:
        return 0.0
    steps = sorted(changes)
    level = steps[0][1] if steps else last_level
    total = 0.0
    previous = start
    for at, new_level in steps:
        if at <= start:
            level = new_level
            continue
        if at >= end:
            break
        total += value(level) * (at - previous).total_seconds()
        previous, level = at, new_level
    return total + value(level) * (end - previous).total_seconds()


def _lit_unless_out(
    changes: list[tuple[datetime, float]], outs: list[tuple[datetime, bool]]
) -> list[tuple[datetime, float]]:
    """The level changes with the level taken as 0 while the lamps are out."""
    if not any(out for _, out in outs):
        return changes
    times = sorted({t for t, _ in changes} | {t for t, _ in outs})
    merged: list[tuple[datetime, float]] = []
    level = changes[0][1] if changes else 0.0
    out = False
    levels, flags = iter(changes), iter(sorted(outs))
    pending_level, pending_out = next(levels, None), next(flags, None)
    for t in times:
        while pending_level is not None and pending_level[0] <= t:
            level = pending_level[1]
            pending_level = next(levels, None)
        while pending_out is not None and pending_out[0] <= t:
            out = pending_out[1]
            pending_out = next(flags, None)
        merged.append((t, 0.0 if out else level))
    return merged


def _lit_seconds(changes: list[tuple[datetime, float]], start: datetime, end: datetime) -> float:
    """Seconds in [start, end) with a level above 0, from (time, level) changes."""
    last = changes[-1][1] if changes else 0.0
    return _integrate(changes, last, start, end, lambda level: 1.0 if level > 0 else 0.0)
