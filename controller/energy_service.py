"""The unit's energy ledger at work: intervals closed on the clock, stored, then delivered.

- At each boundary of `energy.interval` (aligned to the wall clock, plus a few seconds so the
  meters' boundary readings are in), every zone's Interval is written to the ledger, with each
  meter's counter, in one transaction. While the clock is not trusted nothing is closed: the
  interval grows until it is, and says so.
- Records go to the broker oldest first, a bounded number in flight and a bounded number a
  second, so a unit back after days offline does not crowd out live states and acks. A record
  is marked sent only when the broker acknowledged it.
- Sent records older than `energy.retention_days` are pruned once a day; unsent ones never.
- Meter readings also feed lamp health; its events go out as any other event, and are kept in
  the ledger for the reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from controller.clock import Clock, first_of
from controller.energy_account import EnergyAccount
from controller.events import Event, ZoneState
from controller.lamp_health import LampHealth
from controller.ledger import HealthNote, Ledger, LedgerError, Record
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
_KEPT = {"lamp_failure", "day_burner", "cycling", "meter_offline", "driver_fault", "recovered"}

Publisher = Callable[[Record], "asyncio.Future[bool] | None"]


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
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self._trusted = trusted
        self._on_event = on_event
        self.publisher: Publisher | None = None
        self.account = EnergyAccount(settings, clock.now())
        for meter, (kwh, ts) in ledger.counters().items():
            stored_at = datetime.fromtimestamp(ts, tz=clock.now().tzinfo)
            self.account.resume_counter(meter, kwh, stored_at)
        self.health = LampHealth(self.account.meter_zones)
        self._rated = {z.id: z.rated_w for z in settings.zones}
        self._levels: dict[str, float] = {}
        self._stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._was_untrusted = False  # the open interval spans time on an untrusted clock
        self.written = 0  # records written since start (tests, the demo)

    # ---- inputs from the unit ----------------------------------------------------------------

    def on_state(self, zone: str, state: ZoneState) -> None:
        """A zone's new state."""
        self._levels[zone] = state.level
        self.account.level(zone, state.level, state.since)

    def on_reading(self, meter: str, reading: MeterReading) -> None:
        """A meter's new reading: its counter, and what it says about the lamps."""
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
        interval = self.settings.energy.interval
        pruned_on: object = None
        while not self._stop.is_set():
            boundary = next_slot(self.account.start, interval)
            await first_of(self._stop.wait(), self.clock.sleep_until(boundary + _SETTLE))
            if self._stop.is_set():
                return
            if not self._trusted():
                self._was_untrusted = True
                continue  # the open interval grows until the clock can be believed
            if self._was_untrusted:
                self.account.note(
                    self.account.zones,
                    "the clock was not synchronised for part of this time",
                )
                self._was_untrusted = False
            self.close(max(boundary, self.account.start))
            today = self.clock.now().date()
            if pruned_on != today:
                pruned_on = today
                self._prune()

    def close(self, end: datetime) -> list[Record]:
        """Close the open interval at `end` and store it; returns the new records."""
        intervals, counters = self.account.close(end)
        try:
            records = self.ledger.append(intervals, counters)
        except LedgerError as exc:
            log_event(
                log,
                "energy_not_stored",
                level=logging.ERROR,
                error=str(exc),
                consequence="this interval's energy is lost; the meters' counters still hold it",
            )
            return []
        self.written += len(records)
        self._kick.set()
        return records

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
                if not futures:
                    break
                # pacing in real time: this is about the broker and the link, not the unit's
                # (possibly simulated) clock
                pace = asyncio.sleep(len(futures) / _PER_SECOND)
                done = await _settled(futures, _ACK_TIMEOUT_S)
                acked = [seq for seq, ok in done.items() if ok]
                if acked:  # at once: a record marked late would be sent twice after an outage
                    try:
                        self.ledger.mark_sent(acked)
                    except LedgerError as exc:  # sent again later: receivers dedupe on seq
                        log_event(log, "energy_not_marked", level=logging.WARNING, error=str(exc))
                if len(acked) < len(batch):
                    pace.close()
                    break  # the rest after the next connect or in 30 s
                await pace


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
