"""The unit's energy ledger at work: intervals closed on the clock, stored, then delivered.

- At each boundary of `energy.interval` (aligned to the wall clock, plus a few seconds so the
  meters' boundary readings are in), every zone's Interval is written to the ledger, with each
  meter's counter, in one transaction. While the clock is not trusted nothing is closed: the
  interval grows until it is, and says so.
- Records go to the broker oldest first, a bounded number in flight and a bounded number a
  second, so a unit back after days offline does not crowd out live states and acks. A record
  is marked sent only when the broker acknowledged it.
- Sent records older than `energy.retention_days` are pruned once a day; unsent ones never.
- When the disk holding `data_dir` has less than `energy.min_free_mb` free and the ledger has
  no freed room left, the oldest day of unsent records is summarised: each zone's records of
  that day become one record with the same totals, and an `energy_summarised` event says so.
- An interval the ledger cannot store (disk full, file unwritable) is kept in memory and
  stored with the next one; a clean stop or a reload stores the open interval up to that
  moment, so no time goes unaccounted.
- Meter readings also feed lamp health; its events go out as any other event, and are kept in
  the ledger for the reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from pathlib import Path

from controller.clock import Clock, first_of
from controller.energy_account import EnergyAccount
from controller.events import Event, ZoneState
from controller.lamp_health import LampHealth
from controller.ledger import HealthNote, Interval, Ledger, LedgerError, Record, Summary
from controller.logs import log_event
from controller.meter_poll import next_slot
from controller.settings import Settings
from drivers.base import MeterReading

log = logging.getLogger(__name__)

# after a boundary, wait this long (unit time) for the meters' boundary readings
_SETTLE = timedelta(seconds=2)
# delivery of stored records: at most this many unacknowledged, and this many a second
_IN_FLIGHT = 20
_PER_SECOND = 50.0
_ACK_TIMEOUT_S = 30.0
# health events that are kept in the ledger for the reports
_KEPT = {
    "lamp_failure",
    "day_burner",
    "cycling",
    "meter_offline",
    "driver_fault",
    "recovered",
    "energy_summarised",
}
# intervals kept in memory while the ledger cannot be written: 30 days of 8 zones at 900 s
_MAX_PENDING = 30 * 96 * 8
# the most days one check summarises (each day is one transaction)
_MAX_DAYS_PER_CHECK = 31
# a nearly full disk with nothing to summarise is logged this often, not at every interval
_WARN_EVERY = timedelta(hours=6)
# what one record takes in the file, with its index entries (measured: about 200 bytes)
_RECORD_BYTES = 256

Publisher = Callable[[Record], "asyncio.Future[bool] | None"]
FreeSpace = Callable[[Path], int]


def disk_free_bytes(path: Path) -> int:
    """Bytes free for unprivileged writers on the file system holding `path`."""
    return shutil.disk_usage(path).free


class EnergyService:
    """Accounts, stores and delivers one unit's energy records."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        ledger: Ledger,
        *,
        trusted: Callable[[], bool],
        on_event: Callable[[Event], None],
        free_space: FreeSpace = disk_free_bytes,
        pending: Sequence[Interval] = (),
    ) -> None:
        """`free_space` tells the bytes free on the disk of `data_dir`; `pending` are intervals
        an earlier service could not store (a reload hands them on)."""
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self._trusted = trusted
        self._on_event = on_event
        self.publisher: Publisher | None = None
        self.account = EnergyAccount(settings, clock.now())
        for meter, (kwh, ts, booked_wh) in ledger.counters().items():
            stored_at = datetime.fromtimestamp(ts, tz=clock.now().tzinfo)
            self.account.resume_counter(meter, kwh, stored_at, booked_wh)
        self.health = LampHealth(self.account.meter_zones)
        self._rated = {z.id: z.rated_w for z in settings.zones}
        self._levels: dict[str, float] = {}
        self._stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._was_untrusted = False  # the open interval spans time on an untrusted clock
        self._free_space = free_space
        self._pending: list[Interval] = list(pending)
        # seq -> publications the broker has not answered yet (paho may still deliver them)
        self._in_flight: dict[int, int] = {}
        # seqs the broker acknowledged that are not yet marked sent (an ack after the wait gave
        # up, or marking failed): marked on the next pass, and never summarised
        self._delivered: set[int] = set()
        self._summarised_until: datetime | None = None  # days before this have been looked at
        self._warned: datetime | None = None  # when the nearly full disk was last logged
        self.written = 0  # records written since start (tests, the demo)

    # ---- inputs from the unit ----------------------------------------------------------------

    def on_state(self, zone: str, state: ZoneState) -> None:
        """A zone's new state."""
        self._close_due(state.since)
        self._levels[zone] = state.level
        self.account.level(zone, state.level, state.since)

    def on_reading(self, meter: str, reading: MeterReading) -> None:
        """A meter's new reading: its counter, and what it says about the lamps."""
        self._close_due(reading.ts)
        self.account.reading(meter, reading)
        zones = self.account.meter_zones.get(meter, [])
        events = self.health.reading(
            meter,
            reading.power,
            reading.ts,
            levels=self._levels,
            modelled_w={z: self.account.modelled_power_w(z) for z in zones},
            rated_w=self._rated,
        )
        out = self.health.failing(meter)
        for zone in zones:
            self.account.lamps_out(zone, out, reading.ts)
        for event in events:
            self._on_event(event)

    def on_event(self, event: Event) -> None:
        """Keep lamp health and meter events in the ledger for the reports."""
        if event.kind not in _KEPT:
            return
        with contextlib.suppress(LedgerError):
            self.ledger.note_health(HealthNote(event.kind, event.zone, event.detail, event.ts))

    def kick(self) -> None:
        """Look for unsent records now (the broker came back)."""
        self._kick.set()

    def stop(self) -> None:
        """End `run()`."""
        self._stop.set()

    def carry_over(self, previous: EnergyService) -> None:
        """After a reload: go on with what `previous` knew: the zones' levels, and lamp health
        (so a fault still present is not announced and counted again) while the meters and
        their zones are the same."""
        for zone, level in previous._levels.items():
            if zone in self.account.zones:
                self._levels[zone] = level
                self.account.level(zone, level, self.account.start)
        if previous.health.meter_zones == self.health.meter_zones:
            self.health = previous.health
            for zone, out in previous.account.out.items():
                self.account.lamps_out(zone, out, self.account.start)
        # the intervals not stored yet go with their counters; publications still unanswered
        # keep being tracked (their callbacks update these same collections)
        self.account.take_meters(previous.account)
        self._in_flight = previous._in_flight
        self._delivered = previous._delivered
        self._was_untrusted = self._was_untrusted or previous._was_untrusted

    @property
    def pending(self) -> list[Interval]:
        """Closed intervals not yet stored because the ledger could not be written."""
        return list(self._pending)

    def finish(self, now: datetime) -> None:
        """Store the open interval up to `now` (a clean stop or a reload; after `run()` ended).
        An interval boundary passed and not yet closed is closed first, so records keep to
        the wall clock's intervals. Intervals still not storable are logged as lost."""
        if not self._trusted():
            log_event(
                log,
                "energy_not_closed",
                level=logging.WARNING,
                since=self.account.start.isoformat(),
                why="the clock is not trusted, so the open interval has no time it can be "
                "stored under",
                consequence="metered zones lose nothing (the meter's counter goes on); "
                "zones without a meter lose this estimate",
            )
            return
        self._close_due(now + _SETTLE)
        if now > self.account.start:
            self.close(now)

    # ---- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Close intervals on the clock and deliver records until `stop()`."""
        delivery = asyncio.create_task(self._deliver(), name="energy-delivery")
        try:
            await self._close_intervals()
        finally:
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)

    async def _close_intervals(self) -> None:
        pruned_on: object = None
        while not self._stop.is_set():
            # while the clock is not believed, look again at each boundary from now on
            after = self.clock.now() if self._was_untrusted else self.account.start
            boundary = self._next_boundary(after)
            await first_of(self._stop.wait(), self.clock.sleep_until(boundary + _SETTLE))
            if self._stop.is_set():
                return
            try:
                self._close_due(self.clock.now())
                today = self.clock.now().date()
                if pruned_on != today:
                    pruned_on = today
                    self._prune()
            except Exception:  # a bug must not end accounting and delivery for good
                log.exception("energy_close_failed")

    def _next_boundary(self, after: datetime) -> datetime:
        return next_slot(after, self.settings.energy.interval, self.account.site.tz)

    def _close_due(self, now: datetime) -> None:
        """Close every interval whose boundary (and the meters' settling time) `now` has passed,
        one by one, so records keep to the wall clock's intervals even when the caller runs
        late. While the clock is not trusted nothing is closed: the interval grows, and when
        the clock can be believed again it is closed at the last boundary, with a note."""
        interval = timedelta(seconds=self.settings.energy.interval)
        while self._next_boundary(self.account.start) + _SETTLE <= now:
            if not self._trusted():
                self._was_untrusted = True
                return
            if self._was_untrusted:
                self.account.note(
                    self.account.zones, "the clock was not synchronised for part of this time"
                )
                self._was_untrusted = False
                last = self._next_boundary(now - _SETTLE - interval)
                self.close(max(last, self._next_boundary(self.account.start)))
                continue
            self.close(self._next_boundary(self.account.start))

    def close(self, end: datetime) -> list[Record]:
        """Close the open interval at `end` and store it, with any intervals that could not be
        stored before; returns the new records. When the ledger cannot be written, the
        intervals stay in memory for the next try, and the error is logged."""
        self._pending.extend(self.account.close(end))
        records = self._store()
        if self._make_room() and records is None:  # room made: try again at once
            records = self._store()
        if records is None:
            return []
        self.written += len(records)
        self._kick.set()
        return records

    def _store(self) -> list[Record] | None:
        """Write the pending intervals; None (and they stay pending) when that fails."""
        try:
            records = self.ledger.append(
                self._pending, self.account.counters(), self.account.booked_wh()
            )
        except LedgerError as exc:
            dropped = max(0, len(self._pending) - _MAX_PENDING)
            del self._pending[:dropped]
            log_event(
                log,
                "energy_not_stored",
                level=logging.ERROR,
                error=str(exc),
                waiting=len(self._pending),
                dropped=dropped,
                consequence="kept in memory and stored as soon as the ledger can be written; "
                "lost if the controller stops before that, and the oldest beyond "
                f"{_MAX_PENDING} are dropped (their energy is lost)",
            )
            return None
        self._pending.clear()
        return records

    # ---- a nearly full disk ----------------------------------------------------------------

    def _make_room(self) -> bool:
        """When the disk is nearly full and the ledger has no freed room for a day of new
        records, summarise the oldest days of unsent records; True when some were."""
        try:
            free = self._free_space(self.settings.data_dir)
        except OSError as exc:
            log_event(log, "disk_space_unknown", level=logging.WARNING, error=str(exc))
            return False
        if free >= self.settings.energy.min_free_mb * 1_000_000:
            return False
        per_day = len(self.account.zones) * 86400 // self.settings.energy.interval
        need = per_day * _RECORD_BYTES
        days = 0
        while days < _MAX_DAYS_PER_CHECK:
            try:
                if self.ledger.free_bytes() >= need:
                    break
                first = self.ledger.oldest_unsent_start(since=self._summarised_until)
                if first is None:
                    break
                day_start, day_end = self._day_of(first)
                if day_end > self.account.start:
                    break  # the current day is still being written
                keep = self._in_flight.keys() | self._delivered
                summary = self.ledger.summarise(day_start, day_end, keep=keep)
            except LedgerError as exc:
                log_event(log, "energy_not_summarised", level=logging.ERROR, error=str(exc))
                break
            self._summarised_until = day_end
            if summary.replaced:
                days += 1
                self._on_event(self._summarised_event(summary, day_start, free))
        summarised = days > 0
        now = self.clock.now()
        if not summarised and (self._warned is None or now - self._warned >= _WARN_EVERY):
            self._warned = now
            log_event(
                log,
                "disk_nearly_full",
                level=logging.WARNING,
                path=str(self.settings.data_dir),
                free_mb=round(free / 1_000_000, 1),
                min_free_mb=self.settings.energy.min_free_mb,
                unsent=self._unsent(),
                consequence="records are stored while the ledger has room; if the disk fills, "
                "they wait in memory",
                fix="free space on the disk, for example: journalctl --vacuum-size=50M",
            )
        return summarised

    def _unsent(self) -> int | None:
        try:
            return self.ledger.unsent_count()
        except LedgerError:
            return None

    def _day_of(self, moment: datetime) -> tuple[datetime, datetime]:
        """The unit's local day holding `moment`: its first instant and the next day's."""
        tz = self.account.site.tz
        day = moment.astimezone(tz).date()
        start = datetime.combine(day, time(), tzinfo=tz)
        return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)

    def _summarised_event(self, summary: Summary, day: datetime, free: int) -> Event:
        new = [r.seq for r in summary.records]
        detail = (
            f"the disk holding {self.settings.data_dir} has {free / 1_000_000:.0f} MB free "
            f"(energy.min_free_mb is {self.settings.energy.min_free_mb}), so "
            f"{len(summary.replaced)} energy records of {day.date().isoformat()} that the broker "
            f"had not acknowledged (seq {summary.replaced[0]} to {summary.replaced[-1]}) were "
            f"replaced by {len(new)} records with the same totals (seq {min(new)} to "
            f"{max(new)}); free space on the disk (for example journalctl --vacuum-size=50M) "
            "and check the link to the broker"
        )
        return Event("energy_summarised", None, detail, self.clock.now())

    def _prune(self) -> None:
        before = self.clock.now() - timedelta(days=self.settings.energy.retention_days)
        try:
            pruned = self.ledger.prune(before)
        except LedgerError as exc:
            log_event(log, "energy_prune_failed", level=logging.WARNING, error=str(exc))
            return
        if pruned:
            log_event(log, "energy_pruned", records=pruned, before=before.isoformat())

    async def _deliver(self) -> None:
        """Send unsent records oldest first; mark each sent when the broker has it."""
        while True:
            await first_of(self._kick.wait(), asyncio.sleep(30))
            self._kick.clear()
            try:
                await self._deliver_unsent()
            except Exception:  # a bug must not end delivery for good: try again in 30 s
                log.exception("energy_delivery_failed")

    async def _deliver_unsent(self) -> None:
        """Send what is unsent until the ledger is empty, the link drops or an ack is missing."""
        if self._delivered:  # acknowledged after the wait gave up, or marking failed
            late = sorted(self._delivered)
            try:
                self.ledger.mark_sent(late)
            except LedgerError as exc:
                log_event(log, "energy_not_marked", level=logging.WARNING, error=str(exc))
                return
            self._delivered.difference_update(late)
        while self.publisher is not None:
            try:
                batch = self.ledger.unsent(_IN_FLIGHT)
            except LedgerError as exc:
                log_event(log, "energy_unreadable", level=logging.ERROR, error=str(exc))
                break
            if not batch:
                break
            futures: dict[int, asyncio.Future[bool]] = {}
            for record in batch:
                future = self.publisher(record)
                if future is None:
                    break  # not connected: the kick on the next connect resumes
                futures[record.seq] = future
                self._track(record.seq, future)
            if not futures:
                break
            done = await _settled(futures, _ACK_TIMEOUT_S)
            acked = [seq for seq, ok in done.items() if ok]
            if acked:  # at once: a record marked late would be sent twice after an outage
                try:
                    self.ledger.mark_sent(acked)
                except LedgerError as exc:  # marked on a later pass, never summarised
                    log_event(log, "energy_not_marked", level=logging.WARNING, error=str(exc))
                    break  # not at once: the same records would go out again and again
                self._delivered.difference_update(acked)
            if len(acked) < len(batch):
                break  # the rest after the next connect or in 30 s
            # pacing in real time: this is about the broker and the link, not the unit's
            # (possibly simulated) clock
            await asyncio.sleep(len(futures) / _PER_SECOND)

    def _track(self, seq: int, future: asyncio.Future[bool]) -> None:
        """Count `seq` as in flight until `future` is answered: a record the broker may yet
        receive must not be summarised, or a receiver would count it twice."""
        self._in_flight[seq] = self._in_flight.get(seq, 0) + 1

        in_flight, delivered = self._in_flight, self._delivered

        def answered(future: asyncio.Future[bool]) -> None:
            if not future.cancelled() and future.exception() is None and future.result():
                delivered.add(seq)
            left = in_flight.get(seq, 1) - 1
            if left > 0:
                in_flight[seq] = left
            else:
                in_flight.pop(seq, None)

        future.add_done_callback(answered)


async def _settled(
    futures: Mapping[int, asyncio.Future[bool]], timeout_s: float
) -> dict[int, bool]:
    """Each future's result (False when cancelled, failed or not done within `timeout_s`)."""
    await asyncio.wait(list(futures.values()), timeout=timeout_s)
    results: dict[int, bool] = {}
    for seq, future in futures.items():
        ok = future.done() and not future.cancelled() and future.exception() is None
        results[seq] = bool(ok and future.result())
    return results
