"""Meter, relay and dimmer drivers for Modbus devices: each is one device (or channel) on a bus.

The drivers know nothing of a model but its profile: the meter reads the profile's registers in
as few requests as the profile allows and decodes them with the profile's types and scales;
the outputs write the profile's coil or register for their channel. The bus is shared and is
closed by whoever made it, not by the drivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Literal, cast

from drivers.base import (
    Identity,
    MeterReading,
    Now,
    SelfTestResult,
    check_level,
)
from drivers.errors import DeviceFault, HardwareConfigError, ImplausibleReading
from drivers.modbus.bus import ModbusBus
from drivers.modbus.profiles import METER_QUANTITIES, DeviceProfile, Function, Kind, Register
from drivers.plausibility import ReadingGuard

_Words = Mapping[tuple[Function, int], int]


def _check_kind(what: str, name: str, profile: DeviceProfile, kind: Kind) -> None:
    if profile.kind != kind:
        raise HardwareConfigError(
            f"{what} {name}: the device profile {profile.name} ({profile.model}) describes a "
            f"{profile.kind}, not a {kind}: check the `device` named in the config"
        )


class ModbusMeter:
    """An energy meter on a Modbus bus, read through its profile; implausible values are held back.

    `max_power_w` is the most the zones behind the meter can draw (see `ReadingGuard`).
    """

    def __init__(
        self,
        name: str,
        bus: ModbusBus,
        device_id: int,
        profile: DeviceProfile,
        *,
        now: Now,
        max_power_w: float,
        confirm_reads: int = 3,
    ) -> None:
        _check_kind("meter", name, profile, "meter")
        self.name = name
        self.bus = bus
        self.device_id = device_id
        self.profile = profile
        self._now = now
        self._guard = ReadingGuard(max_power_w=max_power_w, confirm_reads=confirm_reads)
        self._plan = profile.read_plan()
        self._fault: str | None = None
        self._closed = False

    @property
    def fault(self) -> str | None:
        """None while the meter answers sensibly, else what is wrong and how to fix it."""
        return self._fault

    def identify(self) -> Identity:
        """Model and place of the meter, from the config alone."""
        return Identity("modbus_meter", self.profile.model, self._where())

    async def read(self) -> MeterReading:
        """A fresh reading, or DeviceFault / ImplausibleReading with `fault` set to say why."""
        if self._closed:
            raise DeviceFault(f"meter {self.name} is closed")
        try:
            words = await self._read_words()
        except DeviceFault as exc:
            self._fault = str(exc)
            raise
        values = {q: self._value(self.profile.registers[q], words) for q in METER_QUANTITIES}
        reading = MeterReading(
            voltage=values["voltage"],
            current=values["current"],
            power=values["power"],
            power_factor=values["power_factor"],
            frequency=values["frequency"],
            energy_kwh=values["energy_kwh"],
            ts=self._now(),
        )
        try:
            checked = self._guard.check(reading)
        except ImplausibleReading as exc:
            self._fault = f"{exc} ({self.profile.model}, {self._where()})"
            raise ImplausibleReading(self._fault) from exc
        self._fault = None
        return checked

    async def self_test(self) -> SelfTestResult:
        """Read the meter once and list its values, or say what is wrong; never raises."""
        step = f"read the {self.profile.model} at {self._where()}"
        try:
            reading = await self.read()
        except (DeviceFault, ImplausibleReading) as exc:
            return SelfTestResult(self.name, ok=False, steps=(step,), problem=str(exc))
        seen = (
            f"voltage {reading.voltage:.1f} V",
            f"current {reading.current:.3f} A",
            f"power {reading.power:.1f} W",
            f"power factor {reading.power_factor:.2f}",
            f"frequency {reading.frequency:.2f} Hz",
            f"energy counter {reading.energy_kwh:.3f} kWh",
        )
        return SelfTestResult(self.name, ok=True, steps=(step, *seen))

    async def close(self) -> None:
        """Stop using the meter (the bus stays open for its other devices); idempotent."""
        self._closed = True

    def _where(self) -> str:
        return f"{self.bus.describe()}, device {self.device_id}"

    async def _read_words(self) -> dict[tuple[Function, int], int]:
        words: dict[tuple[Function, int], int] = {}
        for block in self._plan:
            function = cast(Literal["holding", "input"], block.function)
            registers = await self.bus.read_registers(
                self.device_id, function, block.address, block.count
            )
            for offset, word in enumerate(registers):
                words[(block.function, block.address + offset)] = word
        return words

    @staticmethod
    def _value(register: Register, words: _Words) -> float:
        parts = [
            register.decode(
                [words[(register.function, address + i)] for i in range(register.width)]
            )
            for address in register.addresses
        ]
        total = sum(parts)
        return total / len(parts) if register.combine == "mean" else total


class _ChannelOutput:
    """What relay and dimmer channels share: a level, a fault, one write at a time."""

    kind: str
    switched: bool
    # a module that lost power comes back with its outputs off: write the level again this often
    reassert_s = 60.0

    def __init__(
        self, name: str, bus: ModbusBus, device_id: int, channel: int, profile: DeviceProfile
    ) -> None:
        self.name = name
        self.bus = bus
        self.device_id = device_id
        self.channel = channel
        self.profile = profile
        self.address = profile.channel_address(channel)
        self._level = 0
        self._fault: str | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def level(self) -> int:
        """The level last asked for, even when a fault kept it from the module."""
        return self._level

    @property
    def fault(self) -> str | None:
        """None while the module takes the writes, else what is wrong and how to fix it."""
        return self._fault

    def identify(self) -> Identity:
        """Model and place of the output, from the config alone."""
        return Identity(self.kind, self.profile.model, self._where())

    async def set_level(self, level: int) -> None:
        """Write `level` to the module; a hardware failure is recorded in `fault`, not raised.

        Every call writes, even with the level already asked for, so calling again after a
        fault is how the caller recovers. ValueError for a level outside 0-100.
        """
        check_level(level)
        self._level = level
        if self._closed:
            self._fault = f"output {self.name} is closed"
            return
        async with self._lock:
            try:
                await self._write(level)
            except DeviceFault as exc:
                self._fault = str(exc)
                return
            self._fault = None

    async def close(self) -> None:
        """Stop using the output (the bus stays open for its other devices); idempotent."""
        self._closed = True

    def _where(self) -> str:
        return f"{self.bus.describe()}, device {self.device_id}, channel {self.channel}"

    async def _write(self, level: int) -> None:
        raise NotImplementedError

    async def _restore(self, steps: list[str]) -> str | None:
        """Put back the level last asked for; the problem if that failed."""
        await self.set_level(self._level)
        steps.append(f"put back level {self._level}")
        return self._fault


class ModbusRelay(_ChannelOutput):
    """One relay (coil) of a Modbus relay module: any level above 0 switches it on."""

    kind = "modbus_relay"
    switched = True

    def __init__(
        self, name: str, bus: ModbusBus, device_id: int, channel: int, profile: DeviceProfile
    ) -> None:
        _check_kind("output", name, profile, "relay")
        super().__init__(name, bus, device_id, channel, profile)

    async def _write(self, level: int) -> None:
        await self.bus.write_coil(self.device_id, self.address, level > 0)

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Switch the relay on, then off (each held `hold_s`), read each back, then restore."""
        steps: list[str] = []
        problem: str | None = None
        try:
            for on in (True, False):
                word = "on" if on else "off"
                await self.bus.write_coil(self.device_id, self.address, on)
                seen = (await self.bus.read_bits(self.device_id, "coil", self.address, 1))[0]
                steps.append(
                    f"switched coil {self.address} {word}; it reads back {'on' if seen else 'off'}"
                )
                if seen != on:
                    problem = (
                        f"coil {self.address} reads back {'on' if seen else 'off'} after being "
                        f"switched {word}: check that the profile {self.profile.name} fits the "
                        "module"
                    )
                    break
                await asyncio.sleep(hold_s)
        except DeviceFault as exc:
            problem = str(exc)
        restore_problem = await self._restore(steps)
        problem = problem or restore_problem
        return SelfTestResult(self.name, ok=problem is None, steps=tuple(steps), problem=problem)


class ModbusDimmer(_ChannelOutput):
    """One channel of a 0-10 V module: 0 writes 0; levels 1 to `min_level` write `min_level`.

    The raw value is round(level / 100 * full_scale), full_scale from the profile.
    """

    kind = "modbus_dimmer"
    switched = False

    def __init__(
        self,
        name: str,
        bus: ModbusBus,
        device_id: int,
        channel: int,
        profile: DeviceProfile,
        *,
        min_level: int = 10,
    ) -> None:
        _check_kind("output", name, profile, "dimmer")
        if (
            isinstance(min_level, bool)
            or not isinstance(min_level, int)
            or not (0 <= min_level <= 100)
        ):
            raise HardwareConfigError(
                f"output {name}: min_level is a whole percent from 0 to 100, got {min_level!r}"
            )
        super().__init__(name, bus, device_id, channel, profile)
        self.min_level = min_level
        channels = profile.channels
        if channels is None or channels.full_scale is None:  # parse_profile never makes one
            raise HardwareConfigError(f"the device profile {profile.name} has no full_scale")
        self.full_scale = channels.full_scale

    def raw_value(self, level: int) -> int:
        """The register value for `level`: 0 for 0, else at least `min_level` of full scale."""
        check_level(level)
        if level == 0:
            return 0
        return round(max(level, self.min_level) / 100 * self.full_scale)

    async def _write(self, level: int) -> None:
        await self.bus.write_register(self.device_id, self.address, self.raw_value(level))

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Ramp the channel up a few levels (each held `hold_s`), read each back, then restore."""
        steps: list[str] = []
        problem: str | None = None
        try:
            for level in sorted({max(self.min_level, 1), 50, 100}):
                raw = self.raw_value(level)
                await self.bus.write_register(self.device_id, self.address, raw)
                seen = (await self.bus.read_registers(self.device_id, "holding", self.address, 1))[
                    0
                ]
                volts = raw / self.full_scale * 10
                steps.append(
                    f"level {level} %: wrote {raw} ({volts:.2f} V) to register {self.address}; "
                    f"it reads back {seen}"
                )
                if seen != raw:
                    problem = (
                        f"register {self.address} reads back {seen} after {raw} was written: "
                        f"check that the profile {self.profile.name} fits the module"
                    )
                    break
                await asyncio.sleep(hold_s)
        except DeviceFault as exc:
            problem = str(exc)
        restore_problem = await self._restore(steps)
        problem = problem or restore_problem
        return SelfTestResult(self.name, ok=problem is None, steps=tuple(steps), problem=problem)
