"""The control loop: every zone follows its decision and sleeps until it changes or an input speaks.

Each zone runs in its own task, so a slow output in one zone never delays another zone's
switching. Motion sensors and photocells wake the zones that answer them. Nothing here reads
the wall clock: time comes from the injected `Clock`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from controller.clock import Clock, first_of
from controller.events import Event, EventKind, ZoneState
from controller.hardware import Hardware
from controller.logs import log_event
from controller.plans import neighbours_of, plans_of, site_of
from controller.settings import Settings
from drivers.base import LightReading, MotionEvent
from schedules.decide import Decision, Override, ZoneInputs, decide
from schedules.motion import events_for_zone

log = logging.getLogger(__name__)

# How often a zone held by its inputs (fail-safe) looks at them again.
_RECHECK = timedelta(seconds=60)
# How often a faulty output is driven again, so it recovers soon after its hardware returns.
_FAULT_RETRY = timedelta(seconds=10)
# Motion events older than this no longer matter to any zone (longest rise + hold + fade).
_MOTION_MEMORY = timedelta(hours=2)
# The longest a write to an output may take (a Modbus bus with retries takes seconds).
_WRITE_TIMEOUT_S = 60.0
# commands a zone may owe a confirming State; beyond, the oldest are only acked (their State
# would say nothing the newest does not)
_MAX_OWED = 1000

__all__ = ["Daemon", "ZoneState"]


class Daemon:
    """Runs every zone of one unit until `stop()`; several can live in one process.

    `overrides` are the remote overrides in force at start (from the override store);
    `clock_trusted` says whether the clock may be believed (until it does, zones hold their
    fail-safe level); `on_state` hears every new zone state and `on_event` every event. With
    `owns_hardware`, `run()` releases the hardware when it ends.
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        hardware: Hardware,
        *,
        overrides: Mapping[str, Override] | None = None,
        clock_trusted: Callable[[], bool] = lambda: True,
        on_state: Callable[[str, ZoneState], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        owns_hardware: bool = True,
        faults: Mapping[str, str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.site = site_of(settings)
        self.hardware = hardware
        self.outputs = hardware.outputs
        self.plans = plans_of(settings)
        self.neighbours = neighbours_of(settings)
        self.states: dict[str, ZoneState] = {}
        # carried over from the daemon this one replaces, so a fault that lasts through a
        # reload is announced once and its recovery is still announced
        self._faults: dict[str, str | None] = dict(faults or {})
        self._written: dict[str, datetime] = {}
        self._motion: dict[str, deque[datetime]] = {zone: deque() for zone in self.plans}
        self._wake = {zone: asyncio.Event() for zone in self.plans}
        self._stop = asyncio.Event()
        self._overrides = {z: o for z, o in (overrides or {}).items() if z in self.plans}
        # the commands each zone owes a confirming state, oldest first
        self._confirm: dict[str, list[str | None]] = {}
        self._clock_trusted = clock_trusted
        self._on_state = on_state
        self._on_event = on_event
        self._owns_hardware = owns_hardware
        self._tasks: list[asyncio.Task[None]] = []

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
            if self._owns_hardware:  # else the owner subscribes once and forwards
                self.hardware.subscribe_inputs(self._on_motion, self._on_light)
            async with asyncio.TaskGroup() as group:
                self._tasks = [
                    group.create_task(self._zone_loop(zone_id), name=f"zone-{zone_id}")
                    for zone_id in self.plans
                ]
        finally:
            if self._owns_hardware:
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

    @property
    def alive(self) -> bool:
        """True while every zone loop runs (what the systemd watchdog vouches for)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def override(
        self, zones: Iterable[str], override: Override | None, command_id: str | None
    ) -> None:
        """Start `override` on `zones` (None ends theirs); each zone then confirms it with a
        state carrying `command_id`, even when its level does not change."""
        for zone_id in zones:
            if override is None:
                self._overrides.pop(zone_id, None)
            else:
                self._overrides[zone_id] = override
            owed = self._confirm.setdefault(zone_id, [])
            owed.append(command_id)
            if len(owed) > _MAX_OWED:  # a zone that cannot be driven for a long time
                del owed[: len(owed) - _MAX_OWED]
                log_event(log, "confirmations_dropped", level=logging.WARNING, zone=zone_id)
            self._wake[zone_id].set()

    def overrides(self) -> dict[str, Override]:
        """The overrides in force, by zone."""
        return dict(self._overrides)

    def wake_all(self) -> None:
        """Make every zone decide again now (the clock became trusted, a setting changed)."""
        for wake in self._wake.values():
            wake.set()

    def faults(self) -> dict[str, str | None]:
        """Each zone's output fault as last announced (None: working)."""
        return dict(self._faults)

    def on_motion(self, zone_id: str, event: MotionEvent) -> None:
        """A motion sensor of `zone_id` saw someone (for an owner that forwards its inputs)."""
        self._on_motion(zone_id, event)

    def on_light(self, zone_id: str, reading: LightReading) -> None:
        """The photocell of `zone_id` changed its mind (for an owner that forwards)."""
        self._on_light(zone_id, reading)

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

    def _inputs(self, zone_id: str, now: datetime) -> ZoneInputs:
        light = self.hardware.light_inputs.get(zone_id)
        reading = light.read() if light is not None else None
        override = self._overrides.get(zone_id)
        if override is not None and now >= override.until:
            del self._overrides[zone_id]  # ended: the store forgets it when next read
            override = None
        return ZoneInputs(
            clock_trusted=self._clock_trusted(),
            output_fault=self.outputs[zone_id].fault,
            dark=reading.dark if reading is not None else None,
            motion_events=events_for_zone(zone_id, self._motion, self.neighbours),
            override=override,
        )

    async def _zone_loop(self, zone_id: str) -> None:
        plan = self.plans[zone_id]
        group = self.outputs[zone_id]
        again = False
        while not self._stop.is_set():
            self._wake[zone_id].clear()
            now = self.clock.now()
            try:
                inputs = self._inputs(zone_id, now)
                decision = decide(self.site, plan, now, inputs)
            except Exception:
                # a bug must cost this zone its schedule, not every zone its loop
                log.exception("zone_error zone=%s: holding the fail-safe level", zone_id)
                inputs = ZoneInputs(output_fault="zone error")
                decision = Decision(plan.failsafe_level, "failsafe", None)
            await self._apply(zone_id, decision, now, inputs.override)
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

    async def _apply(
        self, zone_id: str, decision: Decision, now: datetime, override: Override | None
    ) -> None:
        group = self.outputs[zone_id]
        previous = self.states.get(zone_id)
        # taken now, not after the write: a command arriving during a slow write leaves its
        # own token for the next pass instead of having it thrown away
        owed = self._confirm.pop(zone_id, [])
        confirming = bool(owed)
        command_id = owed[-1] if owed else None
        if not confirming and decision.source == "override" and override is not None:
            command_id = override.command_id
        same_light = previous is not None and (previous.level, previous.source) == (
            decision.level,
            decision.source,
        )
        unchanged = (
            same_light
            and not confirming
            and previous is not None
            and (previous.command_id == command_id)
        )
        # a faulty output is driven again even at the same level: that is how it recovers;
        # and hardware that can forget its level is told it again now and then
        written = self._written.get(zone_id)
        reassert = group.reassert_s is not None and (
            written is None or (now - written).total_seconds() >= group.reassert_s
        )
        if not same_light or group.fault is not None or reassert:
            self._written[zone_id] = now
            try:
                # a driver promises to return; one that hangs must not hang the zone (and
                # the systemd watchdog would not see it: the loop itself still turns)
                async with asyncio.timeout(_WRITE_TIMEOUT_S):
                    await group.set_level(decision.level)
            except Exception as exc:  # a driver broke its promise not to raise: keep going
                log_event(log, "driver_error", level=logging.ERROR, zone=zone_id, error=repr(exc))
                self._written.pop(zone_id, None)
                self.states.pop(zone_id, None)  # not applied: the next pass writes again
                # still owed, ahead of any command that arrived during the write
                self._confirm[zone_id] = owed + self._confirm.get(zone_id, [])
                return
        self._note_fault(zone_id, group.fault, now)
        if unchanged:
            return
        until = override.until if override is not None else None
        # commands that came in a burst were all applied by this one write: each gets its own
        # state (the zone as it now is, with that command's id), the newest last, so the
        # retained state carries the command in force
        for earlier in owed[:-1]:
            self._publish(zone_id, ZoneState(decision.level, decision.source, now, earlier, until))
        state = ZoneState(decision.level, decision.source, now, command_id, until)
        self.states[zone_id] = state
        self._publish(zone_id, state)
        log_event(
            log,
            "zone_level",
            zone=zone_id,
            percent=decision.level,
            source=decision.source,
            at=now.astimezone(self.site.tz),
            until=decision.next_change.astimezone(self.site.tz) if decision.next_change else None,
        )

    def _publish(self, zone_id: str, state: ZoneState) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(zone_id, state)
        except Exception:  # a publishing bug must not stop the lamps
            log.exception("state_listener_failed zone=%s", zone_id)

    def _note_fault(self, zone_id: str, fault: str | None, now: datetime) -> None:
        """Log and announce a zone's output fault once when it appears, once when it clears."""
        before = self._faults.get(zone_id)
        if before == fault:
            return
        self._faults[zone_id] = fault
        if fault is not None:
            log_event(log, "driver_fault", level=logging.ERROR, zone=zone_id, detail=fault)
            if before is None:
                self._event("driver_fault", zone_id, fault, now)
        elif before is not None:
            log_event(log, "driver_recovered", zone=zone_id)
            self._event("recovered", zone_id, f"the output works again (was: {before})", now)

    def _event(self, kind: EventKind, zone_id: str | None, detail: str, now: datetime) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(Event(kind, zone_id, detail, now))
        except Exception:
            log.exception("event_listener_failed kind=%s", kind)

    async def _sleep_until(self, zone_id: str, when: datetime) -> None:
        await first_of(self._stop.wait(), self._wake[zone_id].wait(), self.clock.sleep_until(when))

    def __repr__(self) -> str:
        return f"Daemon(unit={self.settings.unit.id!r}, zones={list(self.plans)})"
