"""The report's figures: the ledger's records for a period, summed per zone, per day and in total.

Every figure is summed from the raw records (`math.fsum`), never from rounded or partial sums,
so a total equals the ledger's own sum for the period. A record belongs to the local date (in
the unit's time zone) on which its interval starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from controller.ledger import HealthNote, Ledger, Record
from controller.report.labels import is_fault
from controller.settings import Settings

# The typical night's profile runs from 16:00 to 09:00 local time.
NIGHT_START = time(16, 0)
NIGHT_HOURS = 17


@dataclass(frozen=True, slots=True)
class Totals:
    """The figures of a set of records, at full precision.

    `availability_pct` is None when nothing was scheduled; `avg_level` (the mean level while
    lit) is None when the lamps never burnt; `source` is 'meter', 'model', 'mixed' or 'none'.
    """

    records: int
    kwh: float
    baseline_kwh: float
    modelled_kwh: float
    burn_s: int
    scheduled_s: int
    available_s: int
    level_s: float  # the integral of the level over time, percent-seconds
    source: str
    faults: int
    tariff_thb_per_kwh: float
    co2_kg_per_kwh: float

    @property
    def saved_kwh(self) -> float:
        """Baseline minus energy used (negative when the zone used more than its baseline)."""
        return self.baseline_kwh - self.kwh

    @property
    def saved_pct(self) -> float | None:
        """Savings as a share of the baseline, percent; None without a baseline."""
        return 100.0 * self.saved_kwh / self.baseline_kwh if self.baseline_kwh > 0 else None

    @property
    def saved_thb(self) -> float:
        """Avoided cost at the reference tariff, baht."""
        return self.saved_kwh * self.tariff_thb_per_kwh

    @property
    def saved_kg_co2e(self) -> float:
        """Avoided emissions at the grid emission factor, kg CO2e."""
        return self.saved_kwh * self.co2_kg_per_kwh

    @property
    def burn_h(self) -> float:
        """Hours with the lamps on at any level."""
        return self.burn_s / 3600.0

    @property
    def availability_pct(self) -> float | None:
        """Seconds lit as scheduled over seconds scheduled, percent; None if none scheduled."""
        if self.scheduled_s <= 0:
            return None
        return 100.0 * self.available_s / self.scheduled_s

    @property
    def avg_level(self) -> float | None:
        """The time-weighted mean level while the lamps were on, percent; None if never on."""
        if self.burn_s <= 0:
            return None
        return min(100.0, self.level_s / self.burn_s)

    @property
    def modelled_share_pct(self) -> float:
        """The share of the energy that is modelled rather than metered, percent."""
        if self.kwh > 0:
            return 100.0 * self.modelled_kwh / self.kwh
        return 100.0 if self.source == "model" else 0.0


def totals_of(
    records: Sequence[Record], faults: int, tariff_thb_per_kwh: float, co2_kg_per_kwh: float
) -> Totals:
    """The figures of `records` (summed from the raw values) with `faults` fault events."""
    items = [r.interval for r in records]
    sources = {i.source for i in items}
    source = "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"
    return Totals(
        records=len(items),
        kwh=math.fsum(i.kwh for i in items),
        baseline_kwh=math.fsum(i.baseline_kwh for i in items),
        modelled_kwh=math.fsum(i.kwh for i in items if i.source == "model"),
        burn_s=sum(i.burn_s for i in items),
        scheduled_s=sum(i.scheduled_s for i in items),
        available_s=sum(i.available_s for i in items),
        level_s=math.fsum(i.avg_level * (i.end - i.start).total_seconds() for i in items),
        source=source,
        faults=faults,
        tariff_thb_per_kwh=tariff_thb_per_kwh,
        co2_kg_per_kwh=co2_kg_per_kwh,
    )


@dataclass(frozen=True, slots=True)
class ZoneRef:
    """A zone as the report names it."""

    id: str
    label: str
    rated_w: float | None
    baseline_w: float | None
    configured: bool


@dataclass(frozen=True, slots=True)
class DayRow:
    """One zone's figures on one local date."""

    day: date
    zone: ZoneRef
    totals: Totals


@dataclass(frozen=True, slots=True)
class Event:
    """A health note in the unit's local time; `fault` is False for recoveries and reloads."""

    at: datetime
    zone: str | None
    kind: str
    detail: str
    fault: bool


@dataclass(frozen=True, slots=True)
class NightProfile:
    """The average level per time slot of the night (16:00 to 09:00 local), per zone.

    `levels[zone][i]` is the duration-weighted mean of `avg_level` over the records starting in
    slot i on any night of the period, or None when no record started in it.
    """

    slot_s: int
    slots: tuple[time, ...]
    levels: dict[str, list[float | None]]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows, in any format and language."""

    unit_id: str
    site: str
    timezone: str
    first: date
    last: date
    tariff_thb_per_kwh: float
    co2_kg_per_kwh: float
    zones: tuple[ZoneRef, ...]
    zone_totals: dict[str, Totals]
    rows: tuple[DayRow, ...]  # one per zone per date, dates in order, zones in config order
    day_totals: tuple[tuple[date, Totals], ...]
    total: Totals
    events: tuple[Event, ...]
    profile: NightProfile

    @property
    def days(self) -> int:
        """How many dates the period has."""
        return (self.last - self.first).days + 1


def period_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants a period of local dates covers: from midnight starting `first` to midnight
    ending `last` (inclusive dates), in the time zone `tz`."""
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def build_report(settings: Settings, ledger: Ledger, first: date, last: date) -> Report:
    """The report for local dates `first` to `last` inclusive, from `ledger`.

    Zones come in config order; zones found in the ledger but no longer configured follow,
    named by their id. Raises LedgerError when the ledger cannot be read; ValueError when
    `first` is after `last`.
    """
    if first > last:
        raise ValueError(f"the period starts ({first}) after it ends ({last})")
    tz = settings.unit.tz
    start, end = period_bounds(first, last, tz)
    records = ledger.records(start, end)
    notes = ledger.health(start, end)
    return report_from(settings, records, notes, first, last)


def report_from(
    settings: Settings,
    records: Sequence[Record],
    notes: Iterable[HealthNote],
    first: date,
    last: date,
) -> Report:
    """The report for `first` to `last` from records and health notes already read."""
    tz = settings.unit.tz
    tariff = settings.energy.tariff_thb_per_kwh
    co2 = settings.energy.co2_kg_per_kwh
    start, end = period_bounds(first, last, tz)
    records = [r for r in records if start <= r.interval.start < end]

    zones = [
        ZoneRef(z.id, z.label, z.rated_w, z.baseline_power_w, configured=True)
        for z in settings.zones
    ]
    known = {z.id for z in zones}
    extra = sorted({r.interval.zone for r in records} - known)
    zones += [ZoneRef(z, z, None, None, configured=False) for z in extra]

    events = tuple(
        Event(n.at.astimezone(tz), n.zone, n.kind, n.detail, is_fault(n.kind))
        for n in sorted(notes, key=lambda n: n.at)
        if start <= n.at < end
    )

    def day_of(moment: datetime) -> date:
        return moment.astimezone(tz).date()

    by_zone_day: dict[tuple[str, date], list[Record]] = {}
    by_day: dict[date, list[Record]] = {}
    by_zone: dict[str, list[Record]] = {}
    for record in records:
        day = day_of(record.interval.start)
        by_zone_day.setdefault((record.interval.zone, day), []).append(record)
        by_day.setdefault(day, []).append(record)
        by_zone.setdefault(record.interval.zone, []).append(record)

    faults_zone_day: dict[tuple[str | None, date], int] = {}
    for event in events:
        if event.fault:
            key = (event.zone, event.at.date())
            faults_zone_day[key] = faults_zone_day.get(key, 0) + 1

    dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    rows = tuple(
        DayRow(
            day,
            zone,
            totals_of(
                by_zone_day.get((zone.id, day), []),
                faults_zone_day.get((zone.id, day), 0),
                tariff,
                co2,
            ),
        )
        for day in dates
        for zone in zones
    )
    day_totals = tuple(
        (
            day,
            totals_of(
                by_day.get(day, []),
                sum(n for (_, d), n in faults_zone_day.items() if d == day),
                tariff,
                co2,
            ),
        )
        for day in dates
    )
    zone_totals = {
        zone.id: totals_of(
            by_zone.get(zone.id, []),
            sum(1 for e in events if e.fault and e.zone == zone.id),
            tariff,
            co2,
        )
        for zone in zones
    }
    total = totals_of(records, sum(1 for e in events if e.fault), tariff, co2)
    return Report(
        unit_id=settings.unit.id,
        site=settings.unit.site,
        timezone=settings.unit.timezone,
        first=first,
        last=last,
        tariff_thb_per_kwh=tariff,
        co2_kg_per_kwh=co2,
        zones=tuple(zones),
        zone_totals=zone_totals,
        rows=rows,
        day_totals=day_totals,
        total=total,
        events=events,
        profile=night_profile(records, [z.id for z in zones], tz, settings.energy.interval),
    )


def night_profile(
    records: Sequence[Record], zone_ids: Sequence[str], tz: ZoneInfo, slot_s: int
) -> NightProfile:
    """The typical night: each zone's mean level per `slot_s` slot from 16:00 to 09:00 local,
    over every night of the records; each record counts in the slot its interval starts in."""
    count = NIGHT_HOURS * 3600 // slot_s
    origin = NIGHT_START.hour * 3600 + NIGHT_START.minute * 60
    slots = tuple(
        time(((origin + i * slot_s) // 3600) % 24, (origin + i * slot_s) % 3600 // 60)
        for i in range(count)
    )
    weighted: dict[str, list[float]] = {z: [0.0] * count for z in zone_ids}
    seconds: dict[str, list[float]] = {z: [0.0] * count for z in zone_ids}
    for record in records:
        item = record.interval
        local = item.start.astimezone(tz)
        since = (local.hour * 3600 + local.minute * 60 + local.second - origin) % 86400
        index = since // slot_s
        if index >= count or item.zone not in weighted:
            continue
        duration = max((item.end - item.start).total_seconds(), 1.0)
        if duration > slot_s:  # a daily summary (disk nearly full) has no shape to show
            continue
        weighted[item.zone][index] += item.avg_level * duration
        seconds[item.zone][index] += duration
    levels: dict[str, list[float | None]] = {
        z: [w / s if s > 0 else None for w, s in zip(weighted[z], seconds[z], strict=True)]
        for z in zone_ids
    }
    return NightProfile(slot_s, slots, levels)
