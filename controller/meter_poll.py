"""Reading each energy meter on its own interval, and saying when one stops answering.

Each meter has its own task, so a meter that times out on a slow bus never delays another
meter's reading (or any zone's switching). Readings are taken at whole multiples of the meter's
interval on the injected clock, so records line up across units.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from controller.clock import Clock, first_of
from controller.events import Event
from controller.logs import log_event
from drivers.base import Meter, MeterReading
from drivers.errors import DriverError

log = logging.getLogger(__name__)

# A meter is announced offline after this many failed readings in a row: one lost answer on a
# noisy RS-485 line is not worth a maintenance ticket.
OFFLINE_AFTER = 2

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def next_slot(now: datetime, interval_s: int, tz: tzinfo | None = None) -> datetime:
    """The first whole multiple of `interval_s` seconds after `now`, counted on the wall clock
    of `tz` (UTC when None): with 3600 s in Asia/Kolkata, 19:00 local, not 18:30."""
    offset = now.astimezone(tz).utcoffset() if tz is not None else None
    shift = offset.total_seconds() if offset is not None else 0.0
    elapsed = (now - _EPOCH).total_seconds() + shift
    return _EPOCH + timedelta(seconds=(elapsed // interval_s + 1) * interval_s - shift)


class MeterPoller:
    """Reads every meter on its interval until `stop()`; hands readings and events on."""

    def __init__(
        self,
        meters: Mapping[str, Meter],
        intervals: Mapping[str, int],
        clock: Clock,
        *,
        on_reading: Callable[[str, MeterReading], None],
        on_event: Callable[[Event], None],
        failures: Mapping[str, int] | None = None,
    ) -> None:
        self.meters = meters
        self.intervals = intervals
        self.clock = clock
        self._on_reading = on_reading
        self._on_event = on_event
        self._stop = asyncio.Event()
        self.latest: dict[str, MeterReading] = {}
        # carried over from the poller this one replaces (a reload), so a meter announced
        # offline before is still announced when it recovers
        self._failures: dict[str, int] = {m: (failures or {}).get(m, 0) for m in meters}

    @property
    def failures(self) -> dict[str, int]:
        """Failed readings in a row, by meter."""
        return dict(self._failures)

    async def run(self) -> None:
        """Poll every meter until `stop()`; returns at once when there are none."""
        async with asyncio.TaskGroup() as group:
            for name in self.meters:
                group.create_task(self._poll(name), name=f"meter-{name}")

    def stop(self) -> None:
        """Ask every polling task to end."""
        self._stop.set()

    async def _poll(self, name: str) -> None:
        meter, interval = self.meters[name], self.intervals[name]
        while not self._stop.is_set():
            await self.read_once(name, meter)
            await self._sleep_until(next_slot(self.clock.now(), interval))

    async def read_once(self, name: str, meter: Meter) -> MeterReading | None:
        """Read `name` once: hand the reading on, or count the failure (and announce the
        meter offline, or back, when that changes)."""
        try:
            reading = await meter.read()
        except DriverError as exc:
            self._failures[name] += 1
            if self._failures[name] == OFFLINE_AFTER:
                log_event(log, "meter_offline", level=logging.WARNING, meter=name, detail=str(exc))
                detail = f"meter {name} does not answer: {exc}"
                self._on_event(Event("meter_offline", None, detail, self.clock.now()))
            return None
        except Exception:  # a driver bug: keep polling the others, and this one later
            log.exception("meter_read_failed meter=%s", name)
            return None
        if self._failures[name] >= OFFLINE_AFTER:
            log_event(log, "meter_recovered", meter=name)
            detail = f"meter {name} answers again"
            self._on_event(Event("recovered", None, detail, self.clock.now()))
        self._failures[name] = 0
        self.latest[name] = reading
        try:
            self._on_reading(name, reading)
        except Exception:
            log.exception("meter_listener_failed meter=%s", name)
        return reading

    async def _sleep_until(self, when: datetime) -> None:
        await first_of(self._stop.wait(), self.clock.sleep_until(when))
