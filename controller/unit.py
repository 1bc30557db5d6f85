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
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from controller import __version__
from controller.assemble import initial_levels
from controller.clock import Clock, first_of
from controller.clock_trust import ClockTrust, FixedSync, KernelSync, LastKnownTime, SyncSource
from controller.command_parse import Command, CommandRefused
from controller.config_load import load_settings
from controller.daemon import Daemon
from controller.energy_service import EnergyService, FreeSpace, disk_free_bytes
from controller.errors import ConfigError
from controller.events import Event, ZoneState
from controller.ha_discovery import BIRTH_TOPIC, discovery_messages, removal_messages
from controller.hardware import Hardware, HardwareError, build_hardware
from controller.ledger import Interval, Ledger, LedgerError, Record
from controller.logs import log_event
from controller.meter_poll import MeterPoller
from controller.mqtt_api import MqttInterface, Topics
from controller.mqtt_link import MqttConfigError, MqttLink, Publication
from controller.overrides import OverrideStore, OverrideStoreError
from controller.settings import Settings
from controller.systemd_notify import Notifier
from drivers.base import LightReading, MeterReading, MotionEvent
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


def _link_identity(settings: Settings) -> object:
    """What makes a broker connection: its settings, and the password and certificate files as
    they are now, so a reload after replacing one of them connects again."""
    mqtt = settings.mqtt
    files = (mqtt.password_file, mqtt.tls_ca_file, mqtt.tls_cert_file, mqtt.tls_key_file)
    stamps = []
    for path in files:
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            stat = None
        stamps.append((stat.st_mtime_ns, stat.st_size) if stat is not None else None)
    return (mqtt, settings.unit.id, tuple(stamps))


def _gone(old: Settings, new: Settings) -> list[tuple[str, str]]:
    """Empty retained messages for what `old` published and `new` will not."""
    messages = removal_messages(old, new) if old.mqtt.homeassistant_discovery else []
    old_base = f"{old.mqtt.topic_prefix}/{old.unit.id}"
    if old_base == f"{new.mqtt.topic_prefix}/{new.unit.id}":
        kept = {zone.id for zone in new.zones}
        messages += [(f"{old_base}/zone/{z.id}/state", "") for z in old.zones if z.id not in kept]
    return messages


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
        free_space: FreeSpace = disk_free_bytes,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.notifier = notifier or Notifier(None)
        self.config_file = config_file
        self.profile_dirs = tuple(profile_dirs)
        self.pin_factory = pin_factory
        self._monotonic = monotonic
        self._free_space = free_space
        self._sync = sync if sync is not None else sync_source_for(settings)
        self.started = clock.now()
        self.hardware: Hardware | None = None
        self.daemon: Daemon | None = None
        self.mqtt: MqttInterface | None = None
        self.link: MqttLink | None = None
        self.meters: MeterPoller | None = None
        self.store: OverrideStore | None = None
        self.ledger: Ledger | None = None
        self.energy: EnergyService | None = None
        self._energy_task: asyncio.Task[None] | None = None
        self.trust: ClockTrust | None = None
        self.readings: dict[str, MeterReading] = {}
        self._link_identity: object = None
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
            if not self._clock_trusted():
                raise CommandRefused(
                    "this unit's clock is not synchronised yet, so it cannot time an override; "
                    "its zones hold their fail-safe level until NTP sets the clock (check the "
                    "unit's network): send the command again then"
                )
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
        self._start_energy()
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
        self._energy_task = self._run_energy()
        control = self._start_control()
        try:
            while not self._stop.is_set():
                await first_of(self._stop.wait(), self._reload.wait(), control)
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
            lost = await self._stop_energy()
            if lost:
                log_event(
                    log,
                    "energy_lost",
                    level=logging.ERROR,
                    intervals=len(lost),
                    why="the ledger could not be written before the stop",
                )
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            try:
                await self._apply_stop_levels()
            finally:
                await self._close_services()
                await self.hardware.close(keep_outputs=True)
                log_event(log, "unit_stopped", unit=self.settings.unit.id)

    def _build_hardware(
        self, settings: Settings, current: Mapping[str, int] | None = None
    ) -> Hardware:
        """Drivers for `settings`, their outputs claimed at the level the zones have (`current`)
        or will have; inputs forwarded to whichever daemon runs."""
        overrides = self.store.active(self.clock.now()) if self.store is not None else {}
        hardware = build_hardware(
            settings,
            self.clock,
            initial_levels=initial_levels(
                settings,
                self.clock,
                overrides=overrides,
                clock_trusted=self._clock_trusted(),
                current=current,
            ),
            pin_factory=self.pin_factory,
            profile_dirs=self.profile_dirs,
        )
        # subscribed once per driver: daemons come and go with reloads, drivers cannot forget
        # a subscriber
        hardware.subscribe_inputs(self._forward_motion, self._forward_light)
        return hardware

    def _forward_motion(self, zone_id: str, event: MotionEvent) -> None:
        if self.daemon is not None and zone_id in self.daemon.plans:
            self.daemon.on_motion(zone_id, event)

    def _forward_light(self, zone_id: str, reading: LightReading) -> None:
        if self.daemon is not None and zone_id in self.daemon.plans:
            self.daemon.on_light(zone_id, reading)

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
        try:
            self.link = self._make_link(settings)
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

    def _make_link(self, settings: Settings) -> MqttLink:
        """A new, not yet started link; `MqttConfigError` when its files cannot be used."""
        will = Publication(Topics(settings).status, "offline", qos=1, retain=True)
        link = MqttLink(
            settings.mqtt,
            client_id=settings.mqtt.client_id or f"streetlight-{settings.unit.id}",
            will=will,
        )
        self._link_identity = _link_identity(settings)
        return link

    def _start_energy(self, previous: EnergyService | None = None) -> None:
        pending = previous.pending if previous is not None else []
        try:
            self.ledger = Ledger(self.settings.data_dir)
        except LedgerError as exc:
            self.ledger = None
            log_event(
                log,
                "energy_ledger_unavailable",
                level=logging.ERROR,
                error=str(exc),
                lost_intervals=len(pending),
                consequence="no energy records until this is fixed; the meters' counters keep "
                "the energy meanwhile",
            )
            return
        self.energy = EnergyService(
            self.settings,
            self.clock,
            self.ledger,
            trusted=self._clock_trusted,
            on_event=self._emit,
            free_space=self._free_space,
            pending=pending,
        )
        self.energy.publisher = self._publish_energy
        if previous is not None:
            self.energy.carry_over(previous)

    def _run_energy(self) -> asyncio.Task[None] | None:
        if self.energy is None:
            return None
        return asyncio.create_task(self.energy.run(), name="energy")

    async def _stop_energy(self) -> list[Interval]:
        """End the energy service, storing the open interval up to now; returns the intervals
        it could not store."""
        if self.energy is not None:
            self.energy.stop()
        if self._energy_task is not None:
            try:
                await self._energy_task
            except Exception:  # its loops catch their errors: this is a bug, and is logged
                log.exception("energy_task_failed")
            self._energy_task = None
        if self.energy is None:
            return []
        try:
            self.energy.finish(self.clock.now())
        except Exception:  # a bug here must not keep the unit from stopping or reloading
            log.exception("energy_finish_failed")
        return self.energy.pending

    async def _restart_energy(self) -> None:
        """After a reload: the open interval is stored now (a shorter record, with its real
        start and end), and accounting goes on with the new settings."""
        await self._stop_energy()
        previous = self.energy
        if self.ledger is not None:
            self.ledger.close()
        self.ledger, self.energy = None, None
        self._start_energy(previous)
        self._energy_task = self._run_energy()

    def _publish_energy(self, record: Record) -> asyncio.Future[bool] | None:
        return self.mqtt.publish_energy(record) if self.mqtt is not None else None

    def _mqtt_connected(self) -> None:
        if self.energy is not None:
            self.energy.kick()

    def _attach_interface(self, settings: Settings, backlog: Sequence[Event] = ()) -> None:
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
            backlog=backlog,
        )
        self.mqtt.connect_listeners.append(self._mqtt_connected)

    def _start_control(self) -> asyncio.Task[None]:
        assert self.hardware is not None
        now = self.clock.now()
        if self.store is None:  # data_dir may have been fixed meanwhile
            self._open_store()
        self.daemon = Daemon(
            self.settings,
            self.clock,
            self.hardware,
            overrides=self.store.active(now) if self.store is not None else {},
            clock_trusted=self._clock_trusted,
            on_state=self._on_state,
            on_event=self._emit,
            owns_hardware=False,
            faults=self.daemon.faults() if self.daemon is not None else None,
        )
        intervals = {name: meter.interval_s for name, meter in self.settings.meters.items()}
        self.meters = MeterPoller(
            self.hardware.meters,
            intervals,
            self.clock,
            on_reading=self._on_reading,
            on_event=self._emit,
            failures=self.meters.failures if self.meters is not None else None,
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
        """Switch to `new` settings, or refuse them (logged) and keep the old ones.

        Whatever can fail is prepared first (the new MQTT link, the new drivers), so a refusal
        leaves the unit as it was. Drivers are kept when their config did not change; else
        outputs are claimed again at the level they have, so the lamps do not blink.
        """
        old = self.settings
        assert self.hardware is not None
        keep_link = self.link is not None and _link_identity(new) == self._link_identity
        new_link: MqttLink | None = None
        if new.mqtt.enabled and not keep_link:
            try:
                new_link = self._make_link(new)
            except MqttConfigError as exc:
                self._refuse_reload(str(exc))
                return
        if _hardware_config(new) != _hardware_config(old):
            levels = {zone_id: state.level for zone_id, state in self.states().items()}
            await self.hardware.close()
            try:
                self.hardware = self._build_hardware(new, levels)
            except HardwareError as exc:
                self._refuse_reload(str(exc))
                self.hardware = self._build_hardware(old, levels)
                return
        self.settings = new
        if new.data_dir != old.data_dir and self.store is not None:
            self.store.close()
            self.store = None  # _start_control opens the store of the new data_dir
        logging.getLogger().setLevel(new.logging.level)
        backlog = self.mqtt.backlog() if self.mqtt is not None else []
        if self.link is not None and self.link.connected:
            # what the old config published and the new one does not: Home Assistant entities
            # and zone states that would otherwise stay on the broker for ever
            for topic, payload in _gone(old, new):
                self.link.publish(topic, payload, qos=1, retain=True)
        if keep_link:
            self._attach_interface(new, backlog)
            if self.link is not None and self.link.connected and self.mqtt is not None:
                self.mqtt.announce()
        else:
            if self.link is not None and self.mqtt is not None:
                await self.link.stop(self.mqtt.farewell())
            self.link, self.mqtt = new_link, None
            if new_link is not None:
                self._attach_interface(new, backlog)
                new_link.start()
        await self._restart_energy()
        log_event(log, "config_reloaded", config=self.config_file)
        detail = f"configuration reloaded from {self.config_file}"
        self._emit(Event("config_reloaded", None, detail, self.clock.now()))

    def _refuse_reload(self, problem: str) -> None:
        log_event(
            log,
            "config_reload_refused",
            level=logging.ERROR,
            config=self.config_file,
            problems=problem,
            consequence="the unit keeps running with the config it had",
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
        if self.mqtt is not None:  # first: the operator waits for this State
            self.mqtt.publish_state(zone_id, state)
        if self.energy is not None:
            try:
                self.energy.on_state(zone_id, state)
            except Exception:  # accounting must never get in the way of the lights
                log.exception("energy_input_failed")
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
        if self.energy is not None:
            try:
                self.energy.on_event(event)
            except Exception:  # accounting must never get in the way of the lights
                log.exception("energy_input_failed")
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event_listener_failed")

    def _on_reading(self, meter: str, reading: MeterReading) -> None:
        self.readings[meter] = reading
        if self.energy is not None:
            try:
                self.energy.on_reading(meter, reading)
            except Exception:  # accounting must never get in the way of the lights
                log.exception("energy_input_failed")
        if self.mqtt is not None:
            self.mqtt.publish_meter(meter, reading)

    # ---- stopping --------------------------------------------------------------------------

    async def _apply_stop_levels(self) -> None:
        if self.hardware is None:
            return
        for zone in self.settings.zones:
            if zone.stop_level is not None and zone.id in self.hardware.outputs:
                try:
                    await self.hardware.outputs[zone.id].set_level(zone.stop_level)
                except Exception as exc:  # the others still get theirs
                    log_event(
                        log, "stop_level_failed", level=logging.ERROR, zone=zone.id, error=repr(exc)
                    )
                    continue
                log_event(log, "stop_level", zone=zone.id, percent=zone.stop_level)

    async def _close_services(self) -> None:
        if self.link is not None and self.mqtt is not None:
            await self.link.stop(self.mqtt.farewell())
        if self.trust is not None:
            self.trust.close()
        if self.store is not None:
            self.store.close()
        if self.ledger is not None:
            self.ledger.close()

    def __repr__(self) -> str:
        return f"Unit({self.settings.unit.id!r})"


def _log_crash(task: asyncio.Task[None]) -> None:
    exc = task.exception() if task.done() and not task.cancelled() else None
    log_event(
        log,
        "control_loop_crashed",
        level=logging.CRITICAL,
        error=repr(exc),
        consequence="restarted; outputs keep their level meanwhile",
    )
