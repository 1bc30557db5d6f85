"""Relays, PWM dimmers, PIR motion sensors and photocells on a Raspberry Pi's GPIO header.

Built on gpiozero, always with a pin factory passed explicitly (`pin_factory()` chooses one for
this board); the global `Device.pin_factory` is never read or set. gpiozero is imported only
here, and only when a driver or factory is made, so importing this module is cheap.

Every hardware trouble is a fault state, never an exception: a pin that cannot be claimed (in
use by another program or another output, no such pin, no permission) sets `fault` to a
sentence saying what to do, and the driver claims it again later by itself: an output on its
next `set_level`, an input on a timer of its event loop (every `retry_s`, once it has been
subscribed to or self-tested) and on `read()`.

gpiozero runs input callbacks on its own thread (lgpio's callback thread on a Pi); they are
handed to the event loop with `call_soon_threadsafe`, and all timing (the PIR's minimum active
time, the photocell's debounce) is done on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from drivers.base import (
    Identity,
    LightCallback,
    LightReading,
    MotionCallback,
    MotionEvent,
    Now,
    SelfTestResult,
    check_level,
)
from drivers.curves import DimmingCurve
from drivers.errors import HardwareConfigError

if TYPE_CHECKING:
    from gpiozero import Factory

log = logging.getLogger(__name__)

MODEL_PATH = "/proc/device-tree/model"
# How often an input whose pin could not be claimed tries again.
DEFAULT_RETRY_S = 30.0
# A photocell contact chatters at dusk: its new state must hold this long to count.
DEFAULT_DEBOUNCE_S = 2.0

FACTORY_NAMES = ("lgpio", "rpigpio", "mock")
INSTALL_LGPIO = (
    "install python3-lgpio and make the venv with --system-site-packages, "
    "or pip install 'lgpio>=0.2.2'"
)
# Raspberry Pi 5 family (BCM2712 with the RP1 I/O chip): RPi.GPIO cannot drive it.
_PI5 = re.compile(r"Raspberry Pi (?:5|500|Compute Module 5)\b")


# --------------------------------------------------------------------------------------------
# pin factory


def pin_factory(name: str | None = None, *, model_path: str | Path = MODEL_PATH) -> Factory:
    """A gpiozero pin factory to pass as `pin_factory=` to every GPIO driver.

    `name` None chooses by the board named in `model_path` (/proc/device-tree/model): lgpio on
    every Raspberry Pi (the only one that works on a Pi 5), falling back to RPi.GPIO on older
    Pis when lgpio is missing. "lgpio", "rpigpio" and "mock" (gpiozero's MockFactory with
    PWM-capable pins, for tests and benches) choose explicitly. Raises HardwareConfigError,
    with the fix, for an unknown name, a machine that is not a Raspberry Pi, or a library that
    is missing or cannot open the GPIO chip.
    """
    if name is None:
        return _auto_factory(Path(model_path))
    key = name.strip().lower()
    if key == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin  # noqa: PLC0415

        return MockFactory(pin_class=MockPWMPin)
    if key == "lgpio":
        return _lgpio_factory()
    if key == "rpigpio":
        return _rpigpio_factory()
    raise HardwareConfigError(
        f"unknown GPIO pin factory {name!r}: use 'lgpio' (every Raspberry Pi; the only one that "
        "works on a Pi 5), 'rpigpio' (Pi 1-4 with RPi.GPIO) or 'mock' (tests), or leave it "
        "unset to choose by the board"
    )


def board_model(model_path: str | Path = MODEL_PATH) -> str | None:
    """The board's model string from the device tree, or None where there is none."""
    try:
        raw = Path(model_path).read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0\n").decode(errors="replace") or None


def _auto_factory(model_path: Path) -> Factory:
    model = board_model(model_path)
    if model is None or "Raspberry Pi" not in model:
        seen = f"{model_path} says {model!r}" if model else f"there is no {model_path}"
        raise HardwareConfigError(
            f"this machine is not a Raspberry Pi ({seen}), so GPIO outputs and inputs cannot "
            "work here: use the 'sim' drivers in the config, or the 'mock' pin factory for tests"
        )
    if _PI5.search(model):
        return _lgpio_factory()
    try:
        return _lgpio_factory()
    except HardwareConfigError as lgpio_error:
        try:
            factory = _rpigpio_factory()
        except HardwareConfigError as rpigpio_error:
            raise HardwareConfigError(
                f"no GPIO library works on this {model}: {lgpio_error}; and {rpigpio_error}"
            ) from lgpio_error
        log.warning("%s: using RPi.GPIO because lgpio failed: %s", model, lgpio_error)
        return factory


def _lgpio_factory() -> Factory:
    _writable_lgpio_dir()
    try:
        from gpiozero.pins.lgpio import LGPIOFactory  # noqa: PLC0415
    except Exception as exc:  # ImportError, or the old lgpio 0.0.0.2 stub's AttributeError
        raise HardwareConfigError(
            f"the lgpio GPIO library cannot be loaded ({type(exc).__name__}: {exc}): "
            f"{INSTALL_LGPIO}"
        ) from exc
    try:
        return LGPIOFactory()
    except Exception as exc:
        raise HardwareConfigError(
            f"lgpio cannot open the GPIO chip ({type(exc).__name__}: {exc}): check that "
            "/dev/gpiochip0 exists and that the daemon's user may read and write it "
            "(sudo usermod -aG gpio <user>, then log in again or restart the service)"
        ) from exc


def _writable_lgpio_dir() -> None:
    # lgpio makes its notification FIFO (.lgd-nfy*) in $LG_WD, else in the current directory,
    # and chdir()s the whole process there. Under systemd the cwd is often "/" or read-only,
    # where that fails; a private directory also keeps two processes' FIFOs apart.
    if "LG_WD" in os.environ:
        return
    try:
        writable = os.access(os.getcwd(), os.W_OK)
    except OSError:
        writable = False
    if writable:
        return
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]  # systemd's RuntimeDirectory=
    os.environ["LG_WD"] = runtime or tempfile.mkdtemp(prefix="streetlight-lgpio-")
    log.info(
        "LG_WD is not set and the current directory is read-only: lgpio works in %s",
        os.environ["LG_WD"],
    )


def _rpigpio_factory() -> Factory:
    try:
        from gpiozero.pins.rpigpio import RPiGPIOFactory  # noqa: PLC0415

        return RPiGPIOFactory()
    except Exception as exc:
        raise HardwareConfigError(
            f"the RPi.GPIO library cannot be used ({type(exc).__name__}: {exc}): it does not "
            f"work on a Pi 5 at all; prefer lgpio: {INSTALL_LGPIO}"
        ) from exc


# --------------------------------------------------------------------------------------------
# shared machinery


def claim_failure(pin: int, exc: BaseException) -> str:
    """What a failed pin claim means for people, and what to do about it."""
    kind = type(exc).__name__
    text = f"{kind}: {exc}"
    lowered = str(exc).lower()
    if kind == "GPIOPinInUse" or "busy" in lowered or "in use" in lowered:
        return (
            f"GPIO{pin} cannot be claimed: it is used by another program or another output "
            f"of this config ({text}); free it or pick another pin"
        )
    if kind == "PinInvalidPin":
        return (
            f"GPIO{pin} cannot be claimed: this board has no GPIO{pin} ({text}); use a BCM "
            "number from 2 to 27 (the GPIOxx names, not header pin positions)"
        )
    if "frequency" in lowered:
        return (
            f"GPIO{pin} cannot run PWM at this frequency ({text}); lgpio does 0.1 Hz to "
            "10 kHz, and most PWM-to-0-10 V modules want 1000-3000 Hz: change frequency_hz"
        )
    if kind == "PinPWMUnsupported":
        return f"GPIO{pin} cannot do PWM with this pin factory ({text}); use the lgpio pin factory"
    if isinstance(exc, PermissionError) or "permission" in lowered:
        return (
            f"GPIO{pin} cannot be claimed: no permission to use the GPIO chip ({text}); add "
            "the daemon's user to the gpio group (sudo usermod -aG gpio <user>) and restart it"
        )
    return (
        f"GPIO{pin} cannot be claimed ({text}); check that lgpio is installed and works, "
        "and that no other program uses the pin"
    )


def _check_pin(pin: int) -> int:
    if isinstance(pin, bool) or not isinstance(pin, int):
        raise ValueError(f"a GPIO pin is a BCM number (an integer, e.g. 17), got {pin!r}")
    return pin


class _GpioDriver:
    """One gpiozero device on one pin, claimed lazily, with the fault it is in."""

    kind: ClassVar[str]
    model: ClassVar[str]

    def __init__(self, name: str, pin: int, factory: Factory) -> None:
        self.name = name
        self.pin = _check_pin(pin)
        self._factory = factory
        self._device: Any = None
        self._fault: str | None = None
        self._closed = False

    @property
    def fault(self) -> str | None:
        """None while the pin works, else what is wrong and how to fix it."""
        return self._fault

    @property
    def claimed(self) -> bool:
        """True while this driver holds its pin."""
        return self._device is not None

    def _where(self) -> str:
        raise NotImplementedError

    def identify(self) -> Identity:
        """What and where this driver is; does not touch the pin."""
        return Identity(kind=self.kind, model=self._model(), where=self._where())

    def _model(self) -> str:
        return self.model

    def _state(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        elif self._fault is not None:
            state = f"{self._state()}, fault: {self._fault}"
        else:
            state = self._state()
        return f"<{type(self).__name__} {self.name!r} {self._where()}: {state}>"

    def _set_fault(self, message: str) -> None:
        if message != self._fault:
            log.warning("%s: %s", self.name, message)
        self._fault = message

    def _clear_fault(self) -> None:
        if self._fault is not None:
            log.info("%s: GPIO%d works again (the fault was: %s)", self.name, self.pin, self._fault)
        self._fault = None

    def _closed_fault(self) -> str:
        return (
            f"{self.name} on GPIO{self.pin} is closed (the daemon is stopping or reloading its "
            "config); it no longer drives or reads the pin"
        )

    def _claim(self, open_device: Callable[[], Any]) -> bool:
        """Claim the pin with `open_device()`; True on success, else the fault is set."""
        if self._closed:
            self._set_fault(self._closed_fault())
            return False
        if self._device is not None:
            return True
        try:
            self._device = open_device()
        except Exception as exc:  # any claim trouble is a fault state, whatever raised it
            self._set_fault(claim_failure(self.pin, exc))
            return False
        self._clear_fault()
        return True

    def _lost(self, exc: Exception, doing: str) -> None:
        """The pin failed while in use: record it and let go, so that it is claimed afresh."""
        self._set_fault(
            f"GPIO{self.pin} failed while {doing} ({type(exc).__name__}: {exc}); the driver "
            "claims the pin again by itself; if this repeats, check the GPIO library and "
            "that no other program uses the pin"
        )
        self._release()

    def _release(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except Exception as exc:  # releasing must not fail the caller
                log.debug("%s: closing GPIO%d failed: %s", self.name, self.pin, exc)

    async def close(self) -> None:
        """Release the pin (gpiozero turns it back into an input); safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop()
        self._release()

    def _stop(self) -> None:
        """Cancel timers and waiters; subclasses extend it."""


# --------------------------------------------------------------------------------------------
# outputs


class _GpioOutput(_GpioDriver):
    switched: bool

    def __init__(self, name: str, pin: int, factory: Factory, initial_level: int) -> None:
        super().__init__(name, pin, factory)
        self._level = check_level(initial_level)

    @property
    def level(self) -> int:
        """The level last asked for (even when a fault kept it from the pin)."""
        return self._level

    async def set_level(self, level: int) -> None:
        """Drive the pin for `level` (0-100); a hardware trouble becomes `fault`, never raises.

        ValueError, changing nothing, for a level that is not an integer 0-100. When the pin
        is not claimed (a fault), this claims it again first.
        """
        check_level(level)
        self._level = level
        if self._closed:
            self._set_fault(self._closed_fault())
            return
        self._drive(level)

    def _drive(self, level: int) -> bool:
        """Put `level` on the pin, claiming it first if needed; True when it worked."""
        raise NotImplementedError

    def _put(self, value: float, doing: str) -> bool:
        """Set the device's value (claiming the pin with it as initial value if needed)."""
        if self._device is None:
            return self._claim(lambda: self._open(value))
        try:
            self._device.value = value
        except Exception as exc:
            self._lost(exc, doing)
            return False
        self._clear_fault()
        return True

    def _open(self, value: float) -> Any:
        """The gpiozero device on the pin, starting at `value`."""
        raise NotImplementedError

    async def _hold(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class GpioRelay(_GpioOutput):
    """A relay on a GPIO pin: on for any level above 0, off at 0 (the `Output` protocol).

    `active_high` False is for the many relay boards that switch on when the pin is LOW.
    The pin is claimed already at the state for `initial_level`, so the relay does not
    switch while the daemon starts.
    """

    kind = "gpio_relay"
    model = "relay on a GPIO pin"
    switched = True

    def __init__(
        self,
        name: str,
        *,
        pin: int,
        active_high: bool,
        initial_level: int,
        pin_factory: Factory,
    ) -> None:
        super().__init__(name, pin, pin_factory, initial_level)
        self.active_high = bool(active_high)
        self._drive(self._level)

    def _where(self) -> str:
        return f"GPIO{self.pin}, {'active-high' if self.active_high else 'active-low'}"

    def _state(self) -> str:
        return f"level {self._level}, {'on' if self._level > 0 else 'off'}"

    def pin_level(self, on: bool) -> str:
        """The pin level, "HIGH" or "LOW", that switches the relay `on` or off."""
        return "HIGH" if on == self.active_high else "LOW"

    def _drive(self, level: int) -> bool:
        return self._put(level > 0, "switching the relay")

    def _open(self, value: float) -> Any:
        from gpiozero import OutputDevice  # noqa: PLC0415

        return OutputDevice(
            self.pin,
            active_high=self.active_high,
            initial_value=bool(value),
            pin_factory=self._factory,
        )

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Switch the relay on, hold, off, hold, then back to the level it had; never raises."""
        if self._closed:
            return SelfTestResult(self.name, False, (), self._closed_fault())
        steps: list[str] = []
        try:
            for on in (True, False):
                if not self._drive(100 if on else 0):
                    break
                steps.append(
                    f"switched {'on' if on else 'off'} (GPIO{self.pin} {self.pin_level(on)}), "
                    f"held {hold_s:g} s"
                )
                await self._hold(hold_s)
        finally:
            failed = self._fault
            restored = self._drive(self._level)
        if restored:
            steps.append(f"put back {'on' if self._level > 0 else 'off'} (level {self._level})")
        problem = failed or self._fault
        return SelfTestResult(self.name, problem is None, tuple(steps), problem)


class GpioPwmDimmer(_GpioOutput):
    """PWM on a GPIO pin into a 0-10 V or 1-10 V dimming module (the `Output` protocol).

    The duty for a level is `curve.duty(level)`, or 1 minus that when `invert` is set (for
    modules whose output falls as the duty rises). Level 0 gives the curve's off duty (0.0,
    or 1.0 inverted); switching the luminaires off for good is the relay's job.
    """

    kind = "gpio_pwm"
    model = "PWM into a dimming module"
    switched = False

    def __init__(
        self,
        name: str,
        *,
        pin: int,
        frequency_hz: int,
        curve: DimmingCurve,
        invert: bool,
        initial_level: int,
        pin_factory: Factory,
    ) -> None:
        super().__init__(name, pin, pin_factory, initial_level)
        if not (math.isfinite(frequency_hz) and frequency_hz > 0):
            raise ValueError(
                f"a PWM frequency is a positive number of Hz, got {frequency_hz!r}; most "
                "PWM-to-0-10 V modules want 1000-3000 Hz (see their data sheet)"
            )
        self.frequency_hz = frequency_hz
        self.curve = curve
        self.invert = bool(invert)
        self._drive(self._level)

    def _model(self) -> str:
        return f"PWM into a {self.curve.interface} dimming module, {self.curve.kind} curve"

    def _where(self) -> str:
        inverted = ", inverted" if self.invert else ""
        return (
            f"GPIO{self.pin}, PWM {self.frequency_hz:g} Hz{inverted}, {self.curve.interface}, "
            f"min {self.curve.min_level} %"
        )

    def _state(self) -> str:
        return f"level {self._level}, pin duty {self.pin_duty(self._level):.3f}"

    def pin_duty(self, level: int) -> float:
        """The duty 0.0-1.0 put on the pin for `level`: through the curve, then inverted."""
        duty = self.curve.duty(level)
        return round(1.0 - duty if self.invert else duty, 6)

    def _drive(self, level: int) -> bool:
        duty = self.pin_duty(level)
        if 0.0 < duty < 1.0:
            # gpiozero's lgpio pin truncates duty * 100 to a whole percent, so float error
            # (0.29 * 100 = 28.999...) would lose a percent; a nudge far below 1 % prevents it.
            duty += 1e-9
        return self._put(duty, "setting the PWM duty")

    def _open(self, value: float) -> Any:
        from gpiozero import PWMOutputDevice  # noqa: PLC0415

        return PWMOutputDevice(
            self.pin,
            active_high=True,
            initial_value=value,
            frequency=self.frequency_hz,
            pin_factory=self._factory,
        )

    async def self_test(self, *, hold_s: float = 3.0) -> SelfTestResult:
        """Ramp through the minimum level, 50 % and 100 %, then back; never raises."""
        if self._closed:
            return SelfTestResult(self.name, False, (), self._closed_fault())
        steps: list[str] = []
        levels = sorted({max(self.curve.min_level, 1), 50, 100})
        try:
            for level in levels:
                if not self._drive(level):
                    break
                steps.append(f"level {level} %: {self._duty_words(level)}, held {hold_s:g} s")
                await self._hold(hold_s)
        finally:
            failed = self._fault
            restored = self._drive(self._level)
        if restored:
            steps.append(f"put back to level {self._level} %: {self._duty_words(self._level)}")
        problem = failed or self._fault
        return SelfTestResult(self.name, problem is None, tuple(steps), problem)

    def _duty_words(self, level: int) -> str:
        duty = self.curve.duty(level)
        words = f"duty {duty:.1%}"
        if self.invert:
            words += f" (pin {self.pin_duty(level):.1%}, inverted)"
        return words


# --------------------------------------------------------------------------------------------
# inputs


class _GpioInput(_GpioDriver):
    """A digital input whose edges reach the event loop bound at subscribe() or self_test()."""

    def __init__(self, name: str, pin: int, factory: Factory, now: Now, retry_s: float) -> None:
        super().__init__(name, pin, factory)
        self._now = now
        self.retry_s = retry_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._last_attempt = -math.inf
        # Called on self._loop; a subscriber belongs to the loop it subscribed from.
        self._subscribers: list[Callable[[Any], None]] = []
        self._waiters: list[asyncio.Future[Any]] = []  # self-tests waiting for the next report

    # what subclasses define
    def _pull_up(self) -> bool | None:
        raise NotImplementedError

    def _on_edge(self, active: bool) -> None:
        """An edge, on the loop: `active` is gpiozero's is_active after it."""
        raise NotImplementedError

    def _on_claimed(self) -> None:
        """Called after every successful claim."""

    # claiming
    def _open(self) -> Any:
        from gpiozero import DigitalInputDevice  # noqa: PLC0415

        pull_up = self._pull_up()
        device = DigitalInputDevice(
            self.pin,
            pull_up=pull_up,
            active_state=True if pull_up is None else None,
            pin_factory=self._factory,
        )
        device.when_activated = self._rose_on_thread
        device.when_deactivated = self._fell_on_thread
        return device

    def _try_claim(self) -> bool:
        self._last_attempt = time.monotonic()
        if self._device is not None:
            return True
        if not self._claim(self._open):
            return False
        self._on_claimed()
        if self._loop is not None:
            self._post(self._edge_on_loop, self._is_active())
        return True

    def _claim_if_due(self) -> bool:
        """Claim again, at most once per `retry_s`, for callers that poll (read, self_test)."""
        if self._device is not None:
            return True
        if time.monotonic() - self._last_attempt < self.retry_s:
            return False
        return self._try_claim()

    def _is_active(self) -> bool:
        try:
            return bool(self._device.is_active)
        except Exception as exc:
            self._lost(exc, "reading the input")
            return False

    def _lost(self, exc: Exception, doing: str) -> None:
        super()._lost(exc, doing)
        if self._loop is not None:
            self._post(self._schedule_retry)

    def _schedule_retry(self) -> None:
        if (
            self._loop is None
            or self._closed
            or self._device is not None
            or self._retry_handle is not None
        ):
            return
        self._retry_handle = self._loop.call_later(self.retry_s, self._retry)

    def _retry(self) -> None:
        self._retry_handle = None
        if not self._try_claim():
            self._schedule_retry()

    # the event loop
    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, bound on first use; later edges are handed to it.

        A bound loop that has closed is replaced, and its subscribers are dropped: they can no
        longer be called on their own loop. RuntimeError while another loop still runs.
        """
        running = asyncio.get_running_loop()
        if self._loop is running:
            return running
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError(
                f"{self.name} is already used from another event loop; "
                "subscribe to a GPIO input from one loop only"
            )
        if self._loop is not None:  # its loop has closed (a command that ran before this one)
            self._stop()
            self._subscribers.clear()
        self._loop = running
        if self._device is None:
            self._schedule_retry()
        else:
            self._on_bind()
        return running

    def _on_bind(self) -> None:
        """Catch up with the pin when the loop is bound: edges before had nowhere to go."""
        assert self._loop is not None
        self._loop.call_soon(self._edge_on_loop, self._is_active())

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the bound loop, from any thread; dropped when none."""
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop was closed: nobody listens any more
            loop.call_soon_threadsafe(callback, *args)

    def _rose_on_thread(self) -> None:
        self._post(self._edge_on_loop, True)

    def _fell_on_thread(self) -> None:
        self._post(self._edge_on_loop, False)

    def _edge_on_loop(self, active: bool) -> None:
        if not self._closed:
            self._on_edge(active)

    def _stop(self) -> None:
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        waiters, self._waiters = self._waiters, []
        _resolve(waiters, None)

    def _deliver(self, report: Any) -> None:
        """Hand an event or a change to every subscriber and every waiting self-test."""
        _call_each(self.name, self._subscribers, report)
        waiters, self._waiters = self._waiters, []
        _resolve(waiters, report)

    def _test_refused(self) -> SelfTestResult | None:
        """Why a self-test cannot start (closed, another loop, pin not claimed), else None."""
        if self._closed:
            return SelfTestResult(self.name, False, (), self._closed_fault())
        try:
            self._bind_loop()
        except RuntimeError as exc:
            return SelfTestResult(self.name, False, (), str(exc))
        if not self._try_claim():
            return self._not_claimed_result([])
        return None

    async def _next_report(self, timeout_s: float) -> Any:
        """The next event or change delivered within `timeout_s`, else None."""
        assert self._loop is not None  # bound by _test_refused
        waiter: asyncio.Future[Any] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _no_report_problem(self, default: str) -> str:
        """Why a self-test saw nothing: the driver's own fault when it has one."""
        return (self._closed_fault() if self._closed else self._fault) or default

    def _not_claimed_result(self, steps: list[str]) -> SelfTestResult:
        steps.append(f"could not claim GPIO{self.pin}")
        return SelfTestResult(self.name, False, tuple(steps), self._fault)


def _resolve(waiters: list[asyncio.Future[Any]], value: Any) -> None:
    """Give each self-test still waiting its answer."""
    for waiter in waiters:
        if not waiter.done():
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits now
                waiter.set_result(value)


def _call_each(name: str, callbacks: list[Callable[[Any], None]], value: Any) -> None:
    for callback in list(callbacks):
        try:
            callback(value)
        except Exception:  # one subscriber's bug must not keep the others from hearing
            log.exception("%s: a subscriber's callback failed", name)


class GpioPir(_GpioInput):
    """A PIR motion sensor on a GPIO pin (the `MotionInput` protocol).

    A pulse is a motion event only once it has stayed active `min_active_s` (timed on the
    event loop; the falling edge cancels it); the event's `at` is `now()` at that moment. The
    next event needs the sensor to go inactive first. The internal pull resistor holds an
    unconnected input inactive: pull-down when `active_high`, pull-up otherwise.
    """

    kind = "gpio_pir"
    model = "PIR motion sensor on a GPIO pin"

    def __init__(
        self,
        name: str,
        *,
        pin: int,
        active_high: bool,
        min_active_s: float,
        now: Now,
        pin_factory: Factory,
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        super().__init__(name, pin, pin_factory, now, retry_s)
        if not (math.isfinite(min_active_s) and min_active_s >= 0):
            raise ValueError(f"min_active_s is 0 or more seconds, got {min_active_s!r}")
        self.active_high = bool(active_high)
        self.min_active_s = float(min_active_s)
        self._high = False
        self._pending: asyncio.TimerHandle | None = None
        self.last_event: MotionEvent | None = None
        self._try_claim()

    def _where(self) -> str:
        polarity = "active-high" if self.active_high else "active-low"
        return f"GPIO{self.pin}, {polarity}, min {self.min_active_s:g} s"

    def _state(self) -> str:
        if self.last_event is None:
            return "no motion seen yet"
        return f"last motion at {self.last_event.at.isoformat(timespec='seconds')}"

    def _pull_up(self) -> bool | None:
        return not self.active_high

    def subscribe(self, callback: MotionCallback) -> None:
        """Call `callback(MotionEvent)` on the current event loop for every accepted pulse."""
        self._bind_loop()
        self._subscribers.append(callback)

    def _on_edge(self, active: bool) -> None:
        if not active:
            self._high = False
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            return
        if self._high:
            return
        self._high = True
        if self.min_active_s <= 0:
            self._accept()
        else:
            assert self._loop is not None  # edges reach this method only through the loop
            self._pending = self._loop.call_later(self.min_active_s, self._accept)

    def _accept(self) -> None:
        self._pending = None
        event = MotionEvent(sensor=self.name, at=self._now())
        self.last_event = event
        self._deliver(event)

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Wait up to `timeout_s` for one motion event and report it; never raises."""
        if (refused := self._test_refused()) is not None:
            return refused
        steps = [f"waiting up to {timeout_s:g} s for motion on GPIO{self.pin}"]
        event: MotionEvent | None = await self._next_report(timeout_s)
        if event is None:
            problem = self._no_report_problem(
                f"no motion seen in {timeout_s:g} s: walk in front of the sensor; check its 5 V "
                f"supply and that its output is on GPIO{self.pin}"
            )
            return SelfTestResult(self.name, False, tuple(steps), problem)
        steps.append(f"motion seen at {event.at.isoformat(timespec='seconds')}")
        return SelfTestResult(self.name, True, tuple(steps))

    def _stop(self) -> None:
        super()._stop()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._high = False


class GpioPhotocell(_GpioInput):
    """A photocell's contact on a GPIO pin: dark or not (the `LightInput` protocol; lux=None).

    `dark_when` is the pin level that means dark. A change counts once the new state has held
    `debounce_s` seconds on the event loop (a contact chatters at dusk); subscribers hear of
    each counted change.

    `pull` is the internal resistor. "up" (the default) suits a contact switching to GND and
    an open-collector or push-pull output alike, and keeps 3.3 V off the field wiring. With
    `dark_when = "high"` and a contact that is closed by day and opens at dark, a broken wire
    then reads dark, so the lamps fail on, not off. "down" is for a contact switching 3.3 V,
    "none" for an external resistor.
    """

    kind = "gpio_photocell"
    model = "photocell contact on a GPIO pin"

    def __init__(
        self,
        name: str,
        *,
        pin: int,
        dark_when: Literal["high", "low"],
        now: Now,
        pin_factory: Factory,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        pull: Literal["up", "down", "none"] = "up",
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        super().__init__(name, pin, pin_factory, now, retry_s)
        if dark_when not in ("high", "low"):
            raise ValueError(f"dark_when is 'high' or 'low', got {dark_when!r}")
        if pull not in ("up", "down", "none"):
            raise ValueError(f"pull is 'up', 'down' or 'none', got {pull!r}")
        if not (math.isfinite(debounce_s) and debounce_s >= 0):
            raise ValueError(f"debounce_s is 0 or more seconds, got {debounce_s!r}")
        self.dark_when = dark_when
        self.pull = pull
        self.debounce_s = float(debounce_s)
        # gpiozero's is_active: HIGH unless pulled up (pull "none" is set up active-high).
        self._dark_is_active = (dark_when == "high") == (self.pull != "up")
        self._dark: bool | None = None
        self._settle_handle: asyncio.TimerHandle | None = None
        self._try_claim()

    def _where(self) -> str:
        return f"GPIO{self.pin}, dark when {self.dark_when.upper()}, pull {self.pull}"

    def _state(self) -> str:
        return {None: "unknown", True: "dark", False: "light"}[self._dark]

    def _pull_up(self) -> bool | None:
        return {"up": True, "down": False}.get(self.pull)

    def _read_dark(self) -> bool | None:
        if self._device is None:
            return None
        active = self._is_active()
        return None if self._device is None else active == self._dark_is_active

    def _on_claimed(self) -> None:
        dark = self._read_dark()
        if dark is not None:
            self._settled(dark)

    def _on_bind(self) -> None:
        # Taken as it is, without debouncing: until now read() read the pin directly.
        dark = self._read_dark()
        if dark is not None:
            self._dark = dark

    def read(self) -> LightReading | None:
        """The current reading without blocking, or None while the pin cannot be read.

        Once subscribed, this is the debounced state the subscribers were told; before, the
        pin as it is now.
        """
        if self._closed:
            self._set_fault(self._closed_fault())
            return None
        if not self._claim_if_due():
            return None
        if self._loop is None:
            dark = self._read_dark()
            if dark is None:
                return None
            self._dark = dark
        if self._dark is None:
            return None
        return LightReading(sensor=self.name, dark=self._dark, lux=None, at=self._now())

    def subscribe(self, callback: LightCallback) -> None:
        """Call `callback(LightReading)` on the current event loop whenever `dark` changes."""
        self._bind_loop()
        self._subscribers.append(callback)

    def _on_edge(self, active: bool) -> None:
        # Each edge starts the wait again: only a state that held debounce_s counts.
        if self._settle_handle is not None:
            self._settle_handle.cancel()
        assert self._loop is not None  # edges reach this method only through the loop
        self._settle_handle = self._loop.call_later(self.debounce_s, self._settle)

    def _settle(self) -> None:
        self._settle_handle = None
        dark = self._read_dark()
        if dark is not None:
            self._settled(dark)

    def _settled(self, dark: bool) -> None:
        if dark == self._dark:
            return
        self._dark = dark
        if self._loop is not None:
            reading = LightReading(sensor=self.name, dark=dark, lux=None, at=self._now())
            self._post(self._notify, reading)

    def _notify(self, reading: LightReading) -> None:
        self._deliver(reading)

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Report the current reading, then wait up to `timeout_s` for a change; never raises."""
        if (refused := self._test_refused()) is not None:
            return refused
        steps: list[str] = []
        before = self.read()
        if before is None:
            return self._not_claimed_result(steps)
        steps.append(f"GPIO{self.pin} says {'dark' if before.dark else 'light'}")
        steps.append(f"waiting up to {timeout_s:g} s for it to change")
        change: LightReading | None = await self._next_report(timeout_s)
        if change is None:
            to_do = "shine a torch on it" if before.dark else "cover it"
            wiring = {
                "up": f"between GPIO{self.pin} and GND",
                "down": f"between GPIO{self.pin} and 3.3 V",
                "none": f"to GPIO{self.pin} with its external pull resistor",
            }[self.pull]
            problem = self._no_report_problem(
                f"no change seen in {timeout_s:g} s: {to_do} for more than {self.debounce_s:g} s; "
                f"check the photocell's supply and that its contact is wired {wiring}"
            )
            return SelfTestResult(self.name, False, tuple(steps), problem)
        steps.append(f"changed to {'dark' if change.dark else 'light'}")
        return SelfTestResult(self.name, True, tuple(steps))

    def _stop(self) -> None:
        super()._stop()
        if self._settle_handle is not None:
            self._settle_handle.cancel()
            self._settle_handle = None
