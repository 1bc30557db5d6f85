"""One whole unit at run time: the control loop, its MQTT interface, overrides, meters, clock
trust and systemd, composed from the settings and a clock.

`Unit.run()` is what `streetlight run` runs. Nothing here is global, so tests run several
units in one process against one broker, on a clock they move by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from controller import __version__
from controller.assemble import initial_levels
from controller.clock import Clock
from controller.clock_trust import ClockTrust, FixedSync, KernelSync, LastKnownTime, SyncSource
from controller.command_parse import Command, CommandRefused
from controller.config_load import load_settings
from controller.daemon import Daemon
from controller.errors import ConfigError
from controller.events import Event, ZoneState
from controller.ha_discovery import BIRTH_TOPIC, discovery_messages, removal_messages
from controller.hardware import Hardware, HardwareError, build_hardware
from controller.logs import log_event
from controller.meter_poll import MeterPoller
from controller.mqtt_api import MqttInterface
from controller.mqtt_link import MqttConfigError, MqttLink, Publication
from controller.overrides import OverrideStore, OverrideStoreError
from controller.settings import Settings
from controller.systemd_notify import Notifier
from drivers.base import MeterReading
from schedules.decide import Override

log = logging.getLogger(__name__)

LAST_KNOWN_TIME_FILE = "last-known-time"
# While the clock is not trusted, how often to look at it again.
_CLOCK_CHECK = timedelta(seconds=10)
# Once it is, how often to note the time (ClockTrust writes the file at most hourly).
_CLOCK_NOTE = timedelta(minutes=10)


def sync_source_for(settings: Settings) -> SyncSource:
    """Where the unit learns whether its clock is synchronised: the kernel and timesyncd, or
    nowhere when the config says the clock needs no synchronisation (an RTC, a simulation)."""
    return KernelSync() if settings.clock.require_sync else FixedSync(True)


def _hardware_config(settings: Settings) -> object:
    """The part of the settings that decides which drivers exist; equal means reuse them."""
    zones = tuple((z.id, z.outputs, z.motion_inputs, z.light_input) for z in settings.zones)
    return (zones, settings.buses, settings.meters)


class Unit:
    """Runs one unit until `stop()`; `reload()` swaps in new settings without a restart."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        sync: SyncSource | None = None,
        notifier: Notifier | None = None,
        config_file: Path | None = None,
        profile_dirs: Sequence[Path] = (),
        pin_factory: object | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.notifier = notifier or Notifier(None)
        self.config_file = config_file
        self.profile_dirs = tuple(profile_dirs)
        self.pin_factory = pin_factory
        self._monotonic = monotonic
        self._sync = sync if sync is not None else sync_source_for(settings)
        self.started = clock.now()
        self.hardware: Hardware | None = None
        self.daemon: Daemon | None = None
        self.mqtt: MqttInterface | None = None
        self.link: MqttLink | None = None
        self.meters: MeterPoller | None = None
        self.store: OverrideStore | None = None
        self.trust: ClockTrust | None = None
        self.readings: dict[str, MeterReading] = {}
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._ready = asyncio.Event()
        self._listeners: list[Callable[[str, ZoneState], None]] = []
        self._event_listeners: list[Callable[[Event], None]] = []

    # ---- what the outside sees -------------------------------------------------------------

    def states(self) -> Mapping[str, ZoneState]:
        """Every zone's current state."""
        return dict(self.daemon.states) if self.daemon is not None else {}

    def add_state_listener(self, listener: Callable[[str, ZoneState], None]) -> None:
        """Call `listener(zone, state)` on every new zone state (the ledger, tests)."""
        self._listeners.append(listener)

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` on every event."""
        self._event_listeners.append(listener)

    async def wait_ready(self) -> None:
        """Return once every zone has its first state."""
        await self._ready.wait()

    def stop(self) -> None:
        """Ask the unit to stop cleanly; safe from a signal handler, and more than once."""
        self._stop.set()

    def request_reload(self) -> None:
        """Ask the unit to read its config file again (SIGHUP)."""
        self._reload.set()

    # ---- commands --------------------------------------------------------------------------

    def apply_command(self, command: Command, zones: Sequence[str]) -> None:
        """Start or end an override on `zones`, durably; raise `CommandRefused` and change
        nothing when it cannot be stored."""
        if self.daemon is None:
            raise CommandRefused("the unit is starting: send the command again in a moment")
        if self.store is None:
            raise CommandRefused(
                "this unit cannot store overrides (its data_dir is not writable): a technician "
                "must fix data_dir on the unit; see the unit's log"
            )
        try:
            if command.auto:
                self.store.clear(zones)
                self.daemon.override(zones, None, command.id)
                return
            now = self.clock.now()
            duration = command.duration_s or self.settings.overrides.default_duration
            until = now + timedelta(seconds=duration)
            overrides = {}
            for zone_id in zones:
                level = command.level_for(self.settings.zone(zone_id).on_level)
                assert level is not None  # only mode auto has no level
                overrides[zone_id] = Override(level, until, command.id)
            self.store.put(overrides)
        except OverrideStoreError as exc:
            log_event(log, "override_not_stored", level=logging.ERROR, error=str(exc))
            raise CommandRefused(f"the unit could not store the override: {exc}") from None
        for zone_id, override in overrides.items():
            self.daemon.override([zone_id], override, command.id)

    # ---- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until `stop()`: zones, MQTT, meters, clock checks, watchdog, reloads.

        Raises `HardwareError` (before anything is driven) when the config names hardware that
        cannot be set up on this machine.
        """
        self._open_store()
        self._start_mqtt()
        self.trust = ClockTrust(
            self._sync, LastKnownTime(self.settings.data_dir / LAST_KNOWN_TIME_FILE), self.clock
        )
        if not self.trust.check():
            self._emit(Event("clock_unsynced", None, self.trust.reason or "", self.clock.now()))
        try:
            self.hardware = self._build_hardware(self.settings)
        except BaseException:
            await self._close_services()
            raise
        helpers = [
            asyncio.create_task(self._watch_clock(), name="clock"),
            asyncio.create_task(self._watchdog(), name="watchdog"),
        ]
        control = self._start_control()
        try:
            while not self._stop.is_set():
                await _first_of(self._stop.wait(), self._reload.wait(), control)
                if self._stop.is_set():
                    break
                if control.done():  # a bug ended the control loop: log it, start it again
                    _log_crash(control)
                    await asyncio.sleep(1)
                    control = self._start_control()
                    continue
                self._reload.clear()
                self.notifier.reloading()
                new = await self._read_config()
                if new is not None:
                    await self._stop_control(control)
                    await self._apply(new)
                    control = self._start_control()
                self.notifier.ready()
        finally:
            self.notifier.stopping()
            log_event(log, "unit_stopping", unit=self.settings.unit.id)
            await self._stop_control(control)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._apply_stop_levels()
            await self._close_services()
            await self.hardware.close(keep_outputs=True)
            log_event(log, "unit_stopped", unit=self.settings.unit.id)

    def _build_hardware(self, settings: Settings) -> Hardware:
        return build_hardware(
            settings,
            self.clock,
            initial_levels=initial_levels(settings, self.clock),
            pin_factory=self.pin_factory,
            profile_dirs=self.profile_dirs,
        )

    def _open_store(self) -> None:
        try:
            self.store = OverrideStore(self.settings.data_dir)
        except OverrideStoreError as exc:
            self.store = None
            log_event(
                log,
                "overrides_unavailable",
                level=logging.ERROR,
                error=str(exc),
                consequence="override commands are refused until this is fixed",
            )

    def _start_mqtt(self) -> None:
        settings = self.settings
        if not settings.mqtt.enabled:
            log_event(log, "mqtt_disabled", fix="set mqtt.enabled = true to use a broker")
            return
        status = f"{settings.mqtt.topic_prefix}/{settings.unit.id}/status"
        will = Publication(status, "offline", qos=1, retain=True)
        try:
            self.link = MqttLink(
                settings.mqtt,
                client_id=settings.mqtt.client_id or f"streetlight-{settings.unit.id}",
                will=will,
            )
        except MqttConfigError as exc:
            log_event(
                log,
                "mqtt_unusable",
                level=logging.ERROR,
                error=str(exc),
                consequence="the lights run on their schedules, without the broker",
            )
            return
        self._attach_interface(settings)
        self.link.start()

    def _attach_interface(self, settings: Settings) -> None:
        assert self.link is not None
        ha = settings.mqtt.homeassistant_discovery
        self.mqtt = MqttInterface(
            settings,
            self.link,
            self,
            now=self.clock.now,
            started=self.started,
            monotonic=self._monotonic,
            discovery=(lambda: discovery_messages(settings, __version__)) if ha else None,
            discovery_birth_topic=BIRTH_TOPIC if ha else None,
        )

    def _start_control(self) -> asyncio.Task[None]:
        assert self.hardware is not None
        now = self.clock.now()
        self.daemon = Daemon(
            self.settings,
            self.clock,
            self.hardware,
            overrides=self.store.active(now) if self.store is not None else {},
            clock_trusted=self._clock_trusted,
            on_state=self._on_state,
            on_event=self._emit,
            owns_hardware=False,
        )
        intervals = {name: meter.interval_s for name, meter in self.settings.meters.items()}
        self.meters = MeterPoller(
            self.hardware.meters,
            intervals,
            self.clock,
            on_reading=self._on_reading,
            on_event=self._emit,
        )
        return asyncio.create_task(self._run_control(self.daemon, self.meters), name="control")

    @staticmethod
    async def _run_control(daemon: Daemon, meters: MeterPoller) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(daemon.run(), name="daemon")
            group.create_task(meters.run(), name="meters")

    async def _stop_control(self, control: asyncio.Task[None]) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        if self.meters is not None:
            self.meters.stop()
        with contextlib.suppress(Exception):
            await control
        if control.done() and not control.cancelled() and control.exception() is not None:
            _log_crash(control)

    def _clock_trusted(self) -> bool:
        return self.trust is not None and self.trust.trusted

    # ---- reload ----------------------------------------------------------------------------

    async def _read_config(self) -> Settings | None:
        """The config file read again, or None (logged) when it cannot be used."""
        log_event(log, "reload_requested", config=self.config_file)
        try:
            return await asyncio.to_thread(load_settings, self.config_file)
        except ConfigError as exc:
            log_event(
                log,
                "config_reload_refused",
                level=logging.ERROR,
                config=exc.config_file,
                problems=" | ".join(str(p) for p in exc.problems),
                consequence="the unit keeps running with the config it had",
            )
            return None

    async def _apply(self, new: Settings) -> None:
        """Switch to `new` settings: drivers are kept when their config did not change."""
        old = self.settings
        assert self.hardware is not None
        if _hardware_config(new) != _hardware_config(old):
            await self.hardware.close()
            try:
                self.hardware = self._build_hardware(new)
            except HardwareError as exc:
                log_event(
                    log,
                    "config_reload_refused",
                    level=logging.ERROR,
                    problems=str(exc),
                    consequence="the unit keeps running with the config it had",
                )
                self.hardware = self._build_hardware(old)
                return
        if new.data_dir != old.data_dir:
            if self.store is not None:
                self.store.close()
            self.settings = new
            self._open_store()
        self.settings = new
        logging.getLogger().setLevel(new.logging.level)
        if self.link is not None and (new.mqtt, new.unit.id) == (old.mqtt, old.unit.id):
            if old.mqtt.homeassistant_discovery:
                for topic, payload in removal_messages(old, new):
                    self.link.publish(topic, payload, qos=1, retain=True)
            self._attach_interface(new)
            if self.link.connected and self.mqtt is not None:
                self.mqtt.announce()
        else:
            if self.link is not None and self.mqtt is not None:
                await self.link.stop(self.mqtt.farewell())
            self.link, self.mqtt = None, None
            self._start_mqtt()
        log_event(log, "config_reloaded", config=self.config_file)
        self._emit(
            Event(
                "config_reloaded",
                None,
                f"configuration reloaded from {self.config_file}",
                self.clock.now(),
            )
        )

    # ---- the helpers' loops ----------------------------------------------------------------

    async def _watch_clock(self) -> None:
        assert self.trust is not None
        while True:
            now = self.clock.now()
            if not self.trust.trusted:
                if self.trust.check():
                    detail = "the clock is synchronised: zones follow their schedules again"
                    self._emit(Event("recovered", None, detail, now))
                    if self.daemon is not None:
                        self.daemon.wake_all()
                    continue
                await self.clock.sleep_until(now + _CLOCK_CHECK)
            else:
                self.trust.note_time()
                await self.clock.sleep_until(now + _CLOCK_NOTE)

    async def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if interval is None:
            return
        while True:
            # only a control loop that runs vouches for the unit: a stuck or dead one is
            # restarted by systemd
            if self.daemon is None or self.daemon.alive:
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    # ---- what the control loop reports -----------------------------------------------------

    def _on_state(self, zone_id: str, state: ZoneState) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_state(zone_id, state)
        for listener in self._listeners:
            listener(zone_id, state)
        daemon = self.daemon
        if not self._ready.is_set() and daemon and len(daemon.states) == len(daemon.plans):
            self._ready.set()
            self.notifier.ready()
            log_event(log, "unit_ready", unit=self.settings.unit.id, zones=len(daemon.plans))

    def _emit(self, event: Event) -> None:
        log_event(log, "event", kind=event.kind, zone=event.zone, detail=event.detail)
        if self.mqtt is not None:
            self.mqtt.publish_event(event)
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event_listener_failed")

    def _on_reading(self, meter: str, reading: MeterReading) -> None:
        self.readings[meter] = reading
        if self.mqtt is not None:
            self.mqtt.publish_meter(meter, reading)

    # ---- stopping --------------------------------------------------------------------------

    async def _apply_stop_levels(self) -> None:
        if self.hardware is None:
            return
        for zone in self.settings.zones:
            if zone.stop_level is not None and zone.id in self.hardware.outputs:
                await self.hardware.outputs[zone.id].set_level(zone.stop_level)
                log_event(log, "stop_level", zone=zone.id, percent=zone.stop_level)

    async def _close_services(self) -> None:
        if self.link is not None and self.mqtt is not None:
            await self.link.stop(self.mqtt.farewell())
        if self.trust is not None:
            self.trust.close()
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return f"Unit({self.settings.unit.id!r})"


async def _first_of(*waits: Awaitable[object]) -> None:
    """Wait until the first of `waits` is done; the others are cancelled (tasks are left)."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, wait in zip(futures, waits, strict=True):
            if future is not wait:
                future.cancel()


def _log_crash(task: asyncio.Task[None]) -> None:
    exc = task.exception() if task.done() and not task.cancelled() else None
    log_event(
        log,
        "control_loop_crashed",
        level=logging.CRITICAL,
        error=repr(exc),
        consequence="restarted; outputs keep their level meanwhile",
    )
