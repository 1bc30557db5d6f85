"""The control loop: every zone follows its schedule decision and sleeps until it changes.

Each zone runs in its own task, so a slow output in one zone never delays another zone's
switching. Nothing here reads the wall clock: time comes from the injected `Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.clock import Clock
from controller.logs import log_event
from controller.plans import plans_of, site_of
from controller.settings import Settings
from drivers.base import Output
from schedules.decide import Decision, Source, ZoneInputs, decide

log = logging.getLogger(__name__)

# How often a zone held by its inputs (fail-safe) looks at them again.
_RECHECK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ZoneState:
    """What a zone is doing now, and since when."""

    level: int
    source: Source
    since: datetime


class Daemon:
    """Runs every zone of one unit until `stop()`; several can live in one process."""

    def __init__(
        self, settings: Settings, clock: Clock, outputs: Mapping[str, Sequence[Output]]
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.site = site_of(settings)
        self.outputs = {zone.id: list(outputs.get(zone.id, ())) for zone in settings.zones}
        self.plans = plans_of(settings)
        self.states: dict[str, ZoneState] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Drive every zone until `stop()` is called; outputs keep their last level."""
        log_event(
            log,
            "daemon_started",
            unit=self.settings.unit.id,
            zones=len(self.plans),
            at=self.clock.now().astimezone(self.site.tz),
        )
        try:
            async with asyncio.TaskGroup() as group:
                for zone_id in self.plans:
                    group.create_task(self._zone_loop(zone_id), name=f"zone-{zone_id}")
        finally:
            for zone_outputs in self.outputs.values():
                for output in zone_outputs:
                    with contextlib.suppress(Exception):
                        await output.close()
            log_event(
                log,
                "daemon_stopped",
                unit=self.settings.unit.id,
                at=self.clock.now().astimezone(self.site.tz),
            )

    def stop(self) -> None:
        """Ask every zone loop to end; safe to call more than once, from a signal handler."""
        self._stop.set()

    async def _zone_loop(self, zone_id: str) -> None:
        plan = self.plans[zone_id]
        while not self._stop.is_set():
            now = self.clock.now()
            inputs = ZoneInputs(output_fault=self._fault(zone_id))
            try:
                decision = decide(self.site, plan, now, inputs)
            except Exception:
                log.exception("schedule_error zone=%s: holding the fail-safe level", zone_id)
                decision = Decision(plan.failsafe_level, "failsafe", None)
            await self._apply(zone_id, decision, now)
            # A decision that waits on inputs (a fault, the clock) is re-made now and then, so
            # a recovered output or a synchronised clock is noticed.
            await self._sleep_until(decision.next_change or now + _RECHECK)

    def _fault(self, zone_id: str) -> str | None:
        faults = [f"{o.name}: {o.fault}" for o in self.outputs[zone_id] if o.fault is not None]
        return "; ".join(faults) or None

    async def _apply(self, zone_id: str, decision: Decision, now: datetime) -> None:
        previous = self.states.get(zone_id)
        if previous is not None and (previous.level, previous.source) == (
            decision.level,
            decision.source,
        ):
            return
        for output in self.outputs[zone_id]:
            try:
                await output.set_level(decision.level)
            except Exception as exc:
                log_event(
                    log,
                    "driver_fault",
                    level=logging.ERROR,
                    zone=zone_id,
                    output=output.name,
                    error=str(exc),
                )
        self.states[zone_id] = ZoneState(decision.level, decision.source, now)
        log_event(
            log,
            "zone_level",
            zone=zone_id,
            percent=decision.level,
            source=decision.source,
            at=now.astimezone(self.site.tz),
            until=decision.next_change.astimezone(self.site.tz) if decision.next_change else None,
        )

    async def _sleep_until(self, when: datetime | None) -> None:
        waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._stop.wait())}
        if when is not None:
            waits.add(asyncio.ensure_future(self.clock.sleep_until(when)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def __repr__(self) -> str:
        return f"Daemon(unit={self.settings.unit.id!r}, zones={list(self.plans)})"
