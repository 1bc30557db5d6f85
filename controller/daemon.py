"""The control loop: every zone follows its decision and sleeps until it changes or an input speaks.

Each zone runs in its own task, so a slow output in one zone never delays another zone's
switching. Motion sensors and photocells wake the zones that answer them. Nothing here reads
the wall clock: time comes from the injected `Clock`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.clock import Clock
from controller.hardware import Hardware
from controller.logs import log_event
from controller.plans import neighbours_of, plans_of, site_of
from controller.settings import Settings
from drivers.base import LightReading, MotionEvent
from schedules.decide import Decision, Source, ZoneInputs, decide
from schedules.motion import events_for_zone

log = logging.getLogger(__name__)

# How often a zone held by its inputs (fail-safe) looks at them again.
_RECHECK = timedelta(seconds=60)
# How often a faulty output is driven again, so it recovers soon after its hardware returns.
_FAULT_RETRY = timedelta(seconds=10)
# Motion events older than this no longer matter to any zone (longest rise + hold + fade).
_MOTION_MEMORY = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class ZoneState:
    """What a zone is doing now, and since when."""

    level: int
    source: Source
    since: datetime


class Daemon:
    """Runs every zone of one unit until `stop()`; several can live in one process."""

    def __init__(self, settings: Settings, clock: Clock, hardware: Hardware) -> None:
        self.settings = settings
        self.clock = clock
        self.site = site_of(settings)
        self.hardware = hardware
        self.outputs = hardware.outputs
        self.plans = plans_of(settings)
        self.neighbours = neighbours_of(settings)
        self.states: dict[str, ZoneState] = {}
        self._faults: dict[str, str | None] = {}
        self._written: dict[str, datetime] = {}
        self._motion: dict[str, deque[datetime]] = {zone: deque() for zone in self.plans}
        self._wake = {zone: asyncio.Event() for zone in self.plans}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Drive every zone until `stop()` is called; outputs keep their last level.

        On the way out, inputs, meters and buses are released but output pins are not: a
        released GPIO pin floats, and on many relay boards that switches the lamps off.
        """
        log_event(
            log,
            "daemon_started",
            unit=self.settings.unit.id,
            zones=len(self.plans),
            at=self.clock.now().astimezone(self.site.tz),
        )
        try:
            self._subscribe_inputs()
            async with asyncio.TaskGroup() as group:
                for zone_id in self.plans:
                    group.create_task(self._zone_loop(zone_id), name=f"zone-{zone_id}")
        finally:
            await self.hardware.close(keep_outputs=True)
            log_event(
                log,
                "daemon_stopped",
                unit=self.settings.unit.id,
                at=self.clock.now().astimezone(self.site.tz),
            )

    def stop(self) -> None:
        """Ask every zone loop to end; safe to call more than once, from a signal handler."""
        self._stop.set()

    def _subscribe_inputs(self) -> None:
        for zone_id, sensors in self.hardware.motion_inputs.items():
            for sensor in sensors:
                sensor.subscribe(functools.partial(self._on_motion, zone_id))
        for zone_id, light in self.hardware.light_inputs.items():
            light.subscribe(functools.partial(self._on_light, zone_id))

    def _on_motion(self, zone_id: str, event: MotionEvent) -> None:
        events = self._motion[zone_id]
        events.append(event.at)
        while events and events[0] < event.at - _MOTION_MEMORY:
            events.popleft()
        log_event(log, "motion", level=logging.DEBUG, zone=zone_id, sensor=event.sensor)
        for answering in (zone_id, *self.neighbours.get(zone_id, ())):
            self._wake[answering].set()

    def _on_light(self, zone_id: str, reading: LightReading) -> None:
        log_event(log, "light", zone=zone_id, sensor=reading.sensor, dark=reading.dark)
        self._wake[zone_id].set()

    def _inputs(self, zone_id: str) -> ZoneInputs:
        light = self.hardware.light_inputs.get(zone_id)
        reading = light.read() if light is not None else None
        return ZoneInputs(
            output_fault=self.outputs[zone_id].fault,
            dark=reading.dark if reading is not None else None,
            motion_events=events_for_zone(zone_id, self._motion, self.neighbours),
        )

    async def _zone_loop(self, zone_id: str) -> None:
        plan = self.plans[zone_id]
        group = self.outputs[zone_id]
        again = False
        while not self._stop.is_set():
            self._wake[zone_id].clear()
            now = self.clock.now()
            try:
                inputs = self._inputs(zone_id)
                decision = decide(self.site, plan, now, inputs)
            except Exception:
                # a bug must cost this zone its schedule, not every zone its loop
                log.exception("zone_error zone=%s: holding the fail-safe level", zone_id)
                inputs = ZoneInputs(output_fault="zone error")
                decision = Decision(plan.failsafe_level, "failsafe", None)
            await self._apply(zone_id, decision, now)
            # the write itself found the output broken or mended: decide again at once (go
            # fail-safe now, or back to the schedule now), but only once, so an output that
            # takes one level and refuses the other cannot keep the loop spinning
            if not again and (group.fault is None) != (inputs.output_fault is None):
                again = True
                continue
            again = False
            # A decision that waits on inputs (a fault, the clock) is re-made now and then, so
            # a recovered output or a synchronised clock is noticed; a faulty output sooner.
            wake = decision.next_change or now + _RECHECK
            if group.fault is not None:
                wake = min(wake, now + _FAULT_RETRY)
            if group.reassert_s is not None:
                wake = min(wake, now + timedelta(seconds=group.reassert_s))
            await self._sleep_until(zone_id, wake)

    async def _apply(self, zone_id: str, decision: Decision, now: datetime) -> None:
        group = self.outputs[zone_id]
        previous = self.states.get(zone_id)
        unchanged = previous is not None and (previous.level, previous.source) == (
            decision.level,
            decision.source,
        )
        # a faulty output is driven again even at the same level: that is how it recovers;
        # and hardware that can forget its level is told it again now and then
        written = self._written.get(zone_id)
        reassert = group.reassert_s is not None and (
            written is None or (now - written).total_seconds() >= group.reassert_s
        )
        if not unchanged or group.fault is not None or reassert:
            self._written[zone_id] = now
            try:
                await group.set_level(decision.level)
            except Exception as exc:  # a driver broke its promise not to raise: keep going
                log_event(log, "driver_error", level=logging.ERROR, zone=zone_id, error=repr(exc))
                self._written.pop(zone_id, None)
                self.states.pop(zone_id, None)  # not applied: the next pass writes again
                return
        self._note_fault(zone_id, group.fault)
        if unchanged:
            return
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

    def _note_fault(self, zone_id: str, fault: str | None) -> None:
        """Log a zone's output fault once when it appears, and once when it clears."""
        if self._faults.get(zone_id) == fault:
            return
        self._faults[zone_id] = fault
        if fault is not None:
            log_event(log, "driver_fault", level=logging.ERROR, zone=zone_id, detail=fault)
        else:
            log_event(log, "driver_recovered", zone=zone_id)

    async def _sleep_until(self, zone_id: str, when: datetime) -> None:
        waits: set[asyncio.Future[object]] = {
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._wake[zone_id].wait()),
            asyncio.ensure_future(self.clock.sleep_until(when)),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def __repr__(self) -> str:
        return f"Daemon(unit={self.settings.unit.id!r}, zones={list(self.plans)})"
