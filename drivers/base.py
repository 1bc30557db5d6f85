"""The small interfaces every hardware backend implements, and the plain data they exchange.

The controller sees only these, never whether a zone is a relay on a GPIO pin, a dimmer module
on an RS-485 bus or a simulation. Each interface lists what a backend must and may do, the way
gpiozero's `Factory` and `Pin` do.

Common rules for every driver:
- Faults are states, not crashes: a driver that loses its hardware sets `fault` to a sentence
  for people (what is wrong, how to fix it) and keeps working; it clears `fault` by itself when
  the hardware answers again.
- `close()` releases the hardware and is idempotent.
- Hardware libraries (gpiozero, pymodbus) are imported only inside their driver modules.
- Callbacks a driver is given run on the asyncio event loop that was running when the callback
  was registered, never on a library's own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

Now = Callable[[], datetime]


class TimeSource(Protocol):
    """The time a simulated driver runs on: the controller's injected clock fits this.

    Must: `now()` is timezone-aware; `sleep_until(when)` returns once `now() >= when`.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until `now() >= when`."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """What a driver is and where it is, for a technician's commissioning sheet."""

    kind: str  # the config's type, e.g. "gpio_relay", "modbus_meter", "sim"
    model: str  # e.g. "Eastron SDM120", "relay on a GPIO pin", "simulated luminaires"
    where: str  # e.g. "GPIO17, active-low", "bus rs485 (/dev/ttyUSB0), device 10"


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    """The outcome of a driver's self-test: what it did and saw, and what is wrong if anything."""

    name: str
    ok: bool
    steps: tuple[str, ...] = ()  # what was done and seen, in order, in words
    problem: str | None = None  # when not ok: what is wrong and how to fix it


@runtime_checkable
class Output(Protocol):
    """Something that lights a zone: a dimmable or a switched output.

    Must:
    - `set_level(level)` takes an integer 0-100 (a switched output treats any level above 0
      as on) and raises `ValueError` for anything else, changing nothing;
    - never raise for a hardware failure in `set_level`: record it in `fault` and apply the
      level again on the next call, so the caller only has to call again to recover;
    - `level` is the level last asked for (even when a fault kept it from the hardware);
    - `switched` is True for an output that only switches (a relay), False for a dimmer;
    - `identify()` answers without touching the hardware;
    - `self_test()` switches or ramps the output so a technician can see it, then puts back
      the level it had, and reports what it did.
    May: take time in `set_level` (a bus round trip); run a fade of its own; have a
    `reassert_s` attribute (seconds) when its hardware can forget a level, so the caller
    writes the level again at least that often (a Modbus module that lost power comes back
    with every relay off).
    """

    name: str
    switched: bool

    async def set_level(self, level: int) -> None:
        """Drive the luminaires to `level` percent."""
        ...

    @property
    def level(self) -> int:
        """The level last asked for."""
        ...

    @property
    def fault(self) -> str | None:
        """None while the output works, else what is wrong and how to fix it."""
        ...

    def identify(self) -> Identity:
        """What and where this output is."""
        ...

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Switch or ramp the output where a technician can see it, then restore its level.

        Each visible state is held `hold_s` seconds of real time (0 in tests).
        """
        ...

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        ...


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One reading of an energy meter, in the units of the contract's meter payload.

    `energy_kwh` is the meter's own cumulative counter. `counter_break` is None normally; it is
    "reset" or "jump" on the first reading after the counter restarted from a new base (a
    reset command, a replaced meter, a leap confirmed by later readings), so whoever takes
    differences must not take one across it.
    """

    voltage: float  # V
    current: float  # A
    power: float  # W, active
    power_factor: float  # -1 to 1: some meters (Eastron) sign it, negative when capacitive
    frequency: float  # Hz
    energy_kwh: float  # kWh, the meter's own total
    ts: datetime
    counter_break: Literal["reset", "jump"] | None = None


@runtime_checkable
class Meter(Protocol):
    """An energy meter.

    Must:
    - `read()` returns a fresh `MeterReading`, or raises `DeviceFault` (no answer, a bad
      answer) or `ImplausibleReading` (values that cannot be true), and sets `fault` to say so;
      a later successful read clears `fault`;
    - `identify()` answers without touching the hardware;
    - `self_test()` reads the meter once and reports the values or the problem.
    May: take time in `read()` (a bus round trip).
    """

    name: str

    async def read(self) -> MeterReading:
        """A fresh reading."""
        ...

    @property
    def fault(self) -> str | None:
        """None while the meter answers sensibly, else what is wrong and how to fix it."""
        ...

    def identify(self) -> Identity:
        """What and where this meter is."""
        ...

    async def self_test(self) -> SelfTestResult:
        """Read the meter once and report what it says."""
        ...

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        ...


@dataclass(frozen=True, slots=True)
class MotionEvent:
    """A motion sensor saw someone: accepted (a pulse long enough to be real) at `at`."""

    sensor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LightReading:
    """What a light input says: dark or not, and the light level where it can measure one."""

    sensor: str
    dark: bool
    lux: float | None
    at: datetime


MotionCallback = Callable[[MotionEvent], None]
LightCallback = Callable[[LightReading], None]


@runtime_checkable
class MotionInput(Protocol):
    """A motion sensor (a PIR on a GPIO pin, simulated passers-by).

    Must:
    - `subscribe(callback)` is called from a running event loop; `callback` is then called on
      that loop (never on a library thread) once per accepted motion event, in time order;
    - filter false triggers: a pulse shorter than the sensor's minimum active time is no event;
    - `self_test(timeout_s)` waits for one event (a technician walks past) and reports it, or
      reports that none came.
    """

    name: str

    def subscribe(self, callback: MotionCallback) -> None:
        """Call `callback` on the current event loop for every motion event from now on."""
        ...

    @property
    def fault(self) -> str | None:
        """None while the sensor works, else what is wrong and how to fix it."""
        ...

    def identify(self) -> Identity:
        """What and where this sensor is."""
        ...

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Wait up to `timeout_s` for a motion event."""
        ...

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        ...


@runtime_checkable
class LightInput(Protocol):
    """A light sensor: a photocell contact (dark or not) or a sensor with a light level.

    Must:
    - `read()` returns the current `LightReading` without blocking, or None while the sensor
      cannot be read (then `fault` says why);
    - `subscribe(callback)` is called from a running event loop; `callback` is then called on
      that loop whenever `dark` changes;
    - `self_test(timeout_s)` reports the current reading, and waits up to `timeout_s` for a
      change (a technician covers the cell) when it can.
    """

    name: str

    def read(self) -> LightReading | None:
        """The current reading, or None when the sensor cannot be read."""
        ...

    def subscribe(self, callback: LightCallback) -> None:
        """Call `callback` on the current event loop whenever `dark` changes."""
        ...

    @property
    def fault(self) -> str | None:
        """None while the sensor works, else what is wrong and how to fix it."""
        ...

    def identify(self) -> Identity:
        """What and where this sensor is."""
        ...

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Report the current reading and wait up to `timeout_s` for a change."""
        ...

    async def close(self) -> None:
        """Release the hardware; safe to call more than once."""
        ...


def check_level(level: int) -> int:
    """`level` when it is an integer 0-100; ValueError saying so otherwise."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise ValueError(f"a level is an integer from 0 to 100, got {level!r}")
    return level
