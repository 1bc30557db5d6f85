"""Builds a unit's drivers from its settings: each zone's outputs and inputs, meters and buses.

The only place that knows which driver class a config `type` means (a plain mapping, no
plugin scanning). gpiozero and pymodbus are imported only when the config uses them, so a
simulated unit starts fast on any machine.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.clock import Clock, SystemClock
from controller.errors import StreetlightError
from controller.logs import log_event
from controller.plans import site_of
from controller.settings import (
    GpioPhotocellInput,
    GpioPirInput,
    GpioPwmOutput,
    GpioRelayOutput,
    ModbusDimmerOutput,
    ModbusMeter,
    ModbusRelayOutput,
    RtuBus,
    Settings,
    SimLightInput,
    SimMeter,
    SimMotionInput,
    ZoneSettings,
)
from controller.settings import SimOutput as SimOutputSettings
from drivers.base import LightInput, LightReading, Meter, MotionEvent, MotionInput, Output
from drivers.errors import DriverError
from drivers.group import OutputGroup
from drivers.sim import LuminaireModel, SimOutput
from schedules.solar import sun_elevation

if TYPE_CHECKING:
    from drivers.modbus.bus import ModbusBus

log = logging.getLogger(__name__)

# Meter readings above the zones' rated power by more than this share are not believed.
_METER_POWER_MARGIN = 1.25


_MODBUS_OUTPUTS = (ModbusRelayOutput, ModbusDimmerOutput)
_GPIO_SPECS = (GpioRelayOutput, GpioPwmOutput, GpioPirInput, GpioPhotocellInput)


class HardwareError(StreetlightError, ValueError):
    """The config names hardware that cannot be set up at all (not a fault that may pass)."""


@dataclass
class Hardware:
    """Every driver of one unit, by zone or by name; `close()` releases them all."""

    outputs: dict[str, OutputGroup]
    motion_inputs: dict[str, list[MotionInput]] = field(default_factory=dict)
    light_inputs: dict[str, LightInput] = field(default_factory=dict)
    meters: dict[str, Meter] = field(default_factory=dict)
    buses: dict[str, ModbusBus] = field(default_factory=dict)
    # gpiozero's factory when this unit made it: closed last (gpiozero's exit handler only
    # closes its global one), so every pin is released
    pin_factory: Any = None
    _closed: bool = False

    async def close(self, *, keep_outputs: bool = False) -> None:
        """Close every driver, each on its own, then the buses; safe to call more than once.

        With `keep_outputs`, output drivers (and gpiozero's pin factory) are left as they are,
        so GPIO pins keep driving the lamps at their level until the process ends, instead of
        turning into floating inputs.
        """
        if self._closed:
            return
        self._closed = True
        closers: list[Any] = [
            *([] if keep_outputs else self.outputs.values()),
            *(i for inputs in self.motion_inputs.values() for i in inputs),
            *dict.fromkeys(self.light_inputs.values()),  # a shared photocell once
            *self.meters.values(),
            *self.buses.values(),
        ]
        for driver in closers:
            try:
                await driver.close()
            except Exception as exc:  # one stuck driver must not keep the others open
                log_event(
                    log,
                    "driver_close_failed",
                    level=logging.WARNING,
                    driver=repr(driver),
                    error=str(exc),
                )
        if self.pin_factory is not None and not keep_outputs:
            try:
                self.pin_factory.close()
            except Exception as exc:  # the last step of a stop must not raise
                log_event(log, "pin_factory_close_failed", level=logging.WARNING, error=str(exc))

    def subscribe_inputs(
        self,
        on_motion: Callable[[str, MotionEvent], None],
        on_light: Callable[[str, LightReading], None],
    ) -> None:
        """Call `on_motion(zone, event)` for every motion sensor's event and `on_light(zone,
        reading)` for every photocell change, each with the zone the sensor belongs to."""
        for zone_id, sensors in self.motion_inputs.items():
            for sensor in sensors:
                sensor.subscribe(functools.partial(on_motion, zone_id))
        for zone_id, light in self.light_inputs.items():
            light.subscribe(functools.partial(on_light, zone_id))

    def sim_outputs(self, zone_id: str) -> list[SimOutput]:
        """The simulated luminaires of a zone (none on real hardware)."""
        return [o for o in self.outputs[zone_id].outputs if isinstance(o, SimOutput)]


class _Builder:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        initial_levels: Mapping[str, int],
        pin_factory: object | None,
        profile_dirs: Sequence[Path],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.initial_levels = initial_levels
        self._pin_factory = pin_factory
        self.profile_dirs = tuple(profile_dirs)
        self.buses: dict[str, ModbusBus] = {}
        self.profiles: dict[str, Any] = {}
        self.photocells: dict[int, LightInput] = {}
        self.own_pin_factory = False

    def monotonic(self) -> float:
        """Seconds for back-off: the system's monotonic clock, or the injected clock's time in
        simulated runs (so a silent device is retried on simulated, not real, seconds)."""
        if isinstance(self.clock, SystemClock):
            return time.monotonic()
        return self.clock.now().timestamp()

    def pin_factory(self) -> Any:
        if self._pin_factory is None:
            from drivers.gpio import pin_factory  # noqa: PLC0415 - only configs with GPIO

            self._pin_factory = pin_factory()
            self.own_pin_factory = True
        return self._pin_factory

    def bus(self, name: str) -> ModbusBus:
        if name not in self.buses:
            from drivers.modbus.bus import BusTiming, ModbusBus, RtuLink, TcpLink  # noqa: PLC0415

            spec = self.settings.buses[name]
            link: RtuLink | TcpLink = (
                RtuLink(
                    spec.port,
                    baudrate=spec.baudrate,
                    parity=spec.parity,
                    bytesize=spec.bytesize,
                    stopbits=spec.stopbits,
                )
                if isinstance(spec, RtuBus)
                else TcpLink(spec.host, spec.port)
            )
            timing = BusTiming(
                timeout_s=spec.timeout_s,
                retries=spec.retries,
                frame_gap_ms=spec.frame_gap_ms,
                backoff_max_s=spec.backoff_max_s,
            )
            self.buses[name] = ModbusBus(name, link, timing, monotonic=self.monotonic)
        return self.buses[name]

    def prepare(self) -> None:
        """Everything that can fail for good, done before any hardware is claimed."""
        devices = [m.device for m in self.settings.meters.values() if isinstance(m, ModbusMeter)]
        uses_gpio = False
        for zone in self.settings.zones:
            specs = [*zone.outputs, *zone.motion_inputs, zone.light_input]
            devices += [s.device for s in specs if isinstance(s, _MODBUS_OUTPUTS)]
            uses_gpio |= any(isinstance(s, _GPIO_SPECS) for s in specs)
        if devices:
            from drivers.modbus.profiles import load_profile  # noqa: PLC0415

            for device in devices:
                self.profiles[device] = load_profile(device, self.profile_dirs)
        if uses_gpio:
            self.pin_factory()

    def profile(self, name: str) -> Any:
        return self.profiles[name]

    def output(self, zone: ZoneSettings, spec: object, name: str) -> Output:
        initial = self.initial_levels.get(zone.id, zone.failsafe_level)
        if isinstance(spec, SimOutputSettings):
            model = LuminaireModel(rated_w=zone.rated_w, standby_w=spec.standby_w)
            return SimOutput(name, model, self.clock.now)
        if isinstance(spec, GpioRelayOutput):
            from drivers.gpio import GpioRelay  # noqa: PLC0415

            return GpioRelay(
                name,
                pin=spec.pin,
                active_high=spec.active_high,
                initial_level=initial,
                pin_factory=self.pin_factory(),
            )
        if isinstance(spec, GpioPwmOutput):
            from drivers.curves import DimmingCurve  # noqa: PLC0415
            from drivers.gpio import GpioPwmDimmer  # noqa: PLC0415

            curve = DimmingCurve(
                kind=spec.curve,
                table=tuple(spec.curve_table or ()),
                interface=spec.interface,
                min_level=spec.min_level,
            )
            return GpioPwmDimmer(
                name,
                pin=spec.pin,
                frequency_hz=spec.frequency_hz,
                curve=curve,
                invert=spec.invert,
                initial_level=initial,
                pin_factory=self.pin_factory(),
            )
        if isinstance(spec, ModbusRelayOutput):
            from drivers.modbus.devices import ModbusRelay  # noqa: PLC0415

            return ModbusRelay(
                name, self.bus(spec.bus), spec.device_id, spec.channel, self.profile(spec.device)
            )
        if isinstance(spec, ModbusDimmerOutput):
            from drivers.modbus.devices import ModbusDimmer  # noqa: PLC0415

            return ModbusDimmer(
                name,
                self.bus(spec.bus),
                spec.device_id,
                spec.channel,
                self.profile(spec.device),
                min_level=spec.min_level,
            )
        raise HardwareError(f"{name}: no driver for output {spec!r}")

    def motion_input(self, spec: object, name: str) -> MotionInput:
        if isinstance(spec, SimMotionInput):
            from drivers.sim import SimPassersBy  # noqa: PLC0415

            return SimPassersBy(
                name,
                self.clock,
                passers_per_hour=spec.passers_per_hour,
                seed=spec.seed,
                tz=self.settings.unit.tz,
            )
        if isinstance(spec, GpioPirInput):
            from drivers.gpio import GpioPir  # noqa: PLC0415

            return GpioPir(
                name,
                pin=spec.pin,
                active_high=spec.active_high,
                min_active_s=spec.min_active_s,
                now=self.clock.now,
                pin_factory=self.pin_factory(),
            )
        raise HardwareError(f"{name}: no driver for motion input {spec!r}")

    def light_input(self, spec: object, name: str) -> LightInput:
        if isinstance(spec, SimLightInput):
            from drivers.sim import SimPhotocell  # noqa: PLC0415

            site = site_of(self.settings)
            return SimPhotocell(name, self.clock, elevation=functools.partial(sun_elevation, site))
        if isinstance(spec, GpioPhotocellInput):
            from drivers.gpio import GpioPhotocell  # noqa: PLC0415

            # zones may share one photocell (the config allows identical ones): one driver
            # per pin, or the second claim of the pin would fail
            if spec.pin not in self.photocells:
                self.photocells[spec.pin] = GpioPhotocell(
                    f"photocell-gpio{spec.pin}",
                    pin=spec.pin,
                    dark_when=spec.dark_when,
                    now=self.clock.now,
                    pin_factory=self.pin_factory(),
                )
            return self.photocells[spec.pin]
        raise HardwareError(f"{name}: no driver for light input {spec!r}")

    def meter(self, name: str, spec: object, hardware: Hardware) -> Meter:
        zones = spec.zones if isinstance(spec, SimMeter | ModbusMeter) else []
        max_power_w = _METER_POWER_MARGIN * sum(self.settings.zone(z).rated_w for z in zones)
        if isinstance(spec, SimMeter):
            from drivers.sim import SimMeter as SimMeterDriver  # noqa: PLC0415

            outputs = [o for z in zones for o in hardware.sim_outputs(z)]
            return SimMeterDriver(name, outputs, self.clock.now, max_power_w=max_power_w)
        if isinstance(spec, ModbusMeter):
            from drivers.modbus.devices import ModbusMeter as ModbusMeterDriver  # noqa: PLC0415

            return ModbusMeterDriver(
                name,
                self.bus(spec.bus),
                spec.device_id,
                self.profile(spec.device),
                now=self.clock.now,
                max_power_w=max_power_w,
            )
        raise HardwareError(f"meters.{name}: no driver for {spec!r}")


def _names(zone_id: str, kinds: Sequence[str]) -> list[str]:
    """`zone/kind`, with `-2`, `-3` ... where a zone has several drivers of one kind."""
    names = []
    for i, kind in enumerate(kinds):
        repeats = kinds.count(kind) > 1
        names.append(f"{zone_id}/{kind}" + (f"-{kinds[: i + 1].count(kind)}" if repeats else ""))
    return names


def build_hardware(
    settings: Settings,
    clock: Clock,
    *,
    initial_levels: Mapping[str, int] | None = None,
    pin_factory: object | None = None,
    profile_dirs: Sequence[Path] = (),
) -> Hardware:
    """Every driver the config describes, ready to use.

    Outputs start at `initial_levels[zone]` where they can be given one (a GPIO pin must be
    set when claimed), else at the zone's fail-safe level. `pin_factory` is gpiozero's, chosen
    for this Pi when None. A hardware fault (a pin taken, a bus silent) is not an error here:
    the driver starts in its fault state. A config that names unusable hardware (an unknown
    Modbus device profile, no GPIO library on this machine) raises `HardwareError` with what to
    fix, before any pin or port is claimed.
    """
    builder = _Builder(settings, clock, initial_levels or {}, pin_factory, profile_dirs)
    try:
        builder.prepare()
    except DriverError as exc:
        raise HardwareError(str(exc)) from exc
    hardware = Hardware(outputs={}, buses=builder.buses)
    try:
        _build_drivers(settings, builder, hardware)
    except (DriverError, ValueError) as exc:
        # a driver refused its settings (normally `check` catches these first); the process
        # stops on this error, which releases whatever was already claimed
        raise HardwareError(str(exc)) from exc
    if builder.own_pin_factory:
        hardware.pin_factory = builder.pin_factory()
    return hardware


def _build_drivers(settings: Settings, builder: _Builder, hardware: Hardware) -> None:
    for zone in settings.zones:
        names = _names(zone.id, [o.type for o in zone.outputs])
        members = [builder.output(zone, s, n) for s, n in zip(zone.outputs, names, strict=True)]
        hardware.outputs[zone.id] = OutputGroup(zone.id, members)
        sensor_names = _names(zone.id, [f"motion-{m.type}" for m in zone.motion_inputs])
        hardware.motion_inputs[zone.id] = [
            builder.motion_input(s, n)
            for s, n in zip(zone.motion_inputs, sensor_names, strict=True)
        ]
        if zone.light_input is not None:
            light = zone.light_input
            hardware.light_inputs[zone.id] = builder.light_input(
                light, f"{zone.id}/light-{light.type}"
            )
    for name, spec in settings.meters.items():
        hardware.meters[name] = builder.meter(name, spec, hardware)
