"""Simulated sensors on an injected clock: passers-by for motion sensors, a photocell on the sun.

Both only read their `TimeSource`; they never look at the wall clock, so they run as fast as
the clock they are given. Import them from `drivers.sim`.

Passers-by (`SimPassersBy`) are a non-homogeneous Poisson process. Its rate is
`passers_per_hour * DAILY_SHAPE[local hour]`; `DAILY_SHAPE` averages 1 over a day, so a day
sees `24 * passers_per_hour` passers on average, few at 01-05 and most at 17-22. It is drawn
hour by hour (UTC hours since 1970), each hour from its own generator seeded with
`(seed, hour)`, by thinning: candidates at the day's peak rate, each kept with probability
rate(t) / peak. So whether an instant is an arrival depends on the seed only, never on which
windows anyone asked for. Each passer holds the sensor's output for 2-8 s; optional false
triggers (insects, gusts of warm air) hold it 0.05-0.5 s. A pulse counts once it has lasted
`min_active_s`: the event is at its start plus `min_active_s`, and a shorter pulse is none.

The photocell (`SimPhotocell`) is dark once the sun's elevation falls below `dark_below_deg`
and light again once it rises above `dark_below_deg + hysteresis_deg`. Its light level is
`clear_sky_lux(elevation)`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Generic, TypeVar

from drivers.base import (
    Identity,
    LightCallback,
    LightReading,
    MotionCallback,
    MotionEvent,
    SelfTestResult,
    TimeSource,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
# a few days of hours: enough for a sensor that is asked about the near past and future
_CACHED_HOURS = 128

# Relative traffic in each local hour 0-23: quiet from 01 to 05, busiest from 17 to 22.
_SHAPE: tuple[float, ...] = (0.5, 0.25, 0.15, 0.1, 0.1, 0.3, 0.8, 1.2, 1.0, 0.8, 0.8, 0.9)
_SHAPE += (1.0, 0.9, 0.8, 0.9, 1.1, 1.6, 2.0, 2.2, 2.1, 1.8, 1.3, 0.8)
DAILY_SHAPE: tuple[float, ...] = tuple(x * 24 / sum(_SHAPE) for x in _SHAPE)
"""Passers in each local hour 0-23 relative to the daily mean (averages exactly 1)."""

_PASSER_PULSE_S = (2.0, 8.0)
_FALSE_PULSE_S = (0.05, 0.5)

T = TypeVar("T")


def clear_sky_lux(elevation_deg: float) -> float:
    """Outdoor illuminance in lux under a clear sky with the sun at `elevation_deg`.

    A smooth, increasing approximation, good to a factor of about two (the shape matters for
    a photocell, not the exact values): 400 + 1e5 * sin(elevation) ** 1.2 above the horizon
    (about 100 000 lx with the sun overhead); from 400 lx at 0 deg falling log-linearly to
    3 lx at -6 deg (civil twilight); then a tenfold drop every 2 deg, so practically 0.
    """
    if elevation_deg >= 0:
        return 400.0 + 1.0e5 * math.pow(math.sin(math.radians(min(elevation_deg, 90.0))), 1.2)
    if elevation_deg >= -6:
        return 400.0 * math.pow(3.0 / 400.0, -elevation_deg / 6)
    return 3.0 * math.pow(10.0, (elevation_deg + 6) / 2)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"simulated sensors need timezone-aware times, got {when!r}")
    return when


class _Feed(Generic[T]):
    """The subscribers of one simulated sensor and the one task that feeds them."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.callbacks: list[Callable[[T], None]] = []
        self.task: asyncio.Task[None] | None = None

    def add(
        self, callback: Callable[[T], None], run: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Add `callback`; start `run()` on the running loop for the first one."""
        loop = asyncio.get_running_loop()  # RuntimeError outside a loop, as promised
        self.callbacks.append(callback)
        if self.task is None:
            self.task = loop.create_task(run(), name=f"sim sensor {self.owner}")

    def send(self, item: T) -> None:
        """Give `item` to every subscriber; one that raises does not keep it from the others."""
        for callback in list(self.callbacks):
            try:
                callback(item)
            except Exception:
                log.exception("a subscriber of %s failed on %r", self.owner, item)

    async def close(self) -> None:
        """Cancel the task and forget the subscribers; safe to call more than once."""
        task, self.task = self.task, None
        self.callbacks.clear()
        if task is not None and not task.done():
            task.cancel()
            # wait, not await: a CancelledError from the task must not look like our own
            await asyncio.wait([task])


class SimPassersBy:
    """Simulated people walking past a motion sensor: a seeded, daily-shaped Poisson process.

    See the module's docstring for the model. `arrivals(start, end)` gives the events without
    waiting; `subscribe` delivers them on the clock as they happen.
    """

    def __init__(
        self,
        name: str,
        clock: TimeSource,
        *,
        passers_per_hour: float,
        seed: int | None,
        tz: tzinfo,
        min_active_s: float = 0.0,
        false_triggers_per_hour: float = 0.0,
    ) -> None:
        if passers_per_hour < 0 or false_triggers_per_hour < 0 or min_active_s < 0:
            raise ValueError(
                "passers_per_hour, false_triggers_per_hour and min_active_s must not be negative"
            )
        self.name = name
        self.passers_per_hour = passers_per_hour
        self.false_triggers_per_hour = false_triggers_per_hour
        self.min_active_s = min_active_s
        self.tz = tz
        self._clock = clock
        # without a seed, one is drawn now: the instance is still consistent with itself
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self._peak_per_hour = passers_per_hour * max(DAILY_SHAPE)
        self._hours: dict[int, tuple[datetime, ...]] = {}
        self._fault: str | None = None
        self._feed: _Feed[MotionEvent] = _Feed(name)
        self._closed = False

    def rate_per_hour(self, at: datetime) -> float:
        """Expected passers per hour at `at` (false triggers not included)."""
        return self.passers_per_hour * DAILY_SHAPE[_aware(at).astimezone(self.tz).hour]

    def arrivals(self, start: datetime, end: datetime) -> list[datetime]:
        """The accepted motion events at or after `start` and before `end`, in time order (UTC).

        Pure: the same for the same seed whatever else was asked, so arrivals over [a, c) are
        arrivals over [a, b) followed by those over [b, c). Ignores faults.
        """
        if _aware(end) <= _aware(start):
            return []
        delay = timedelta(seconds=self.min_active_s)
        # an hour's events lie within [hour start + delay, hour end + delay] (µs rounding aside)
        first = (start - delay - _EPOCH) // _HOUR - 1
        last = (end - delay - _EPOCH) // _HOUR + 1
        return sorted(
            at for hour in range(first, last + 1) for at in self._hour(hour) if start <= at < end
        )

    def _hour(self, hour: int) -> tuple[datetime, ...]:
        """The accepted events of the pulses that start in UTC hour `hour` since 1970."""
        cached = self._hours.get(hour)
        if cached is not None:
            return cached
        start = _EPOCH + hour * _HOUR
        pulses: list[tuple[datetime, float]] = []
        if self._peak_per_hour > 0:
            rng = random.Random(f"{self.seed}:{hour}")  # noqa: S311 - a simulation
            t = rng.expovariate(self._peak_per_hour / 3600)
            while t < 3600:
                at = start + timedelta(seconds=t)
                # every candidate draws both numbers, so the stream never depends on the rate
                keep = rng.random() * self._peak_per_hour < self.rate_per_hour(at)
                length = rng.uniform(*_PASSER_PULSE_S)
                if keep:
                    pulses.append((at, length))
                t += rng.expovariate(self._peak_per_hour / 3600)
        if self.false_triggers_per_hour > 0:
            # a stream of its own, so adding false triggers leaves the passers where they were
            rng = random.Random(f"{self.seed}:{hour}:false")  # noqa: S311 - a simulation
            t = rng.expovariate(self.false_triggers_per_hour / 3600)
            while t < 3600:
                pulses.append((start + timedelta(seconds=t), rng.uniform(*_FALSE_PULSE_S)))
                t += rng.expovariate(self.false_triggers_per_hour / 3600)
        delay = timedelta(seconds=self.min_active_s)
        events = tuple(sorted(at + delay for at, length in pulses if length >= self.min_active_s))
        if len(self._hours) >= _CACHED_HOURS:
            del self._hours[next(iter(self._hours))]
        self._hours[hour] = events
        return events

    def subscribe(self, callback: MotionCallback) -> None:
        """Call `callback` on the current event loop for every motion event from now on.

        The first subscription starts a task that sleeps on the clock to each event. While the
        sensor is broken (`break_sensor`) events are lost, as with a dead PIR.
        """
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        start = self._clock.now()
        self._feed.add(callback, lambda: self._run(start))

    async def _run(self, cursor: datetime) -> None:
        while True:
            end = cursor + _HOUR
            batch = self.arrivals(cursor, end)
            for at in batch:
                await self._clock.sleep_until(at)
                if self._fault is None:
                    self._feed.send(MotionEvent(sensor=self.name, at=at))
            if not batch:
                # an empty hour must still yield to the loop, even with no passers at all
                await self._clock.sleep_until(end)
            cursor = end

    @property
    def fault(self) -> str | None:
        """None unless a fault was injected with `break_sensor`."""
        return self._fault

    def break_sensor(self, message: str) -> None:
        """The sensor reports `message` in `fault` and delivers no events until `repair()`."""
        if not message:
            raise ValueError("a sensor fault needs a message for people")
        self._fault = message

    def repair(self) -> None:
        """Clear the injected fault."""
        self._fault = None

    def identify(self) -> Identity:
        """Simulated passers-by at their mean rate."""
        return Identity(
            kind="sim",
            model=f"simulated passers-by, {self.passers_per_hour:g} an hour on average",
            where="simulation",
        )

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Wait up to `timeout_s` seconds of clock time for a motion event; never raises."""
        if (problem := self._fault) is not None:
            return SelfTestResult(self.name, False, (), problem)
        now = self._clock.now()
        deadline = now + timedelta(seconds=max(timeout_s, 0.0))
        upcoming = self.arrivals(now, deadline)
        waited = f"waited up to {timeout_s:g} s for motion"
        if not upcoming:
            await self._clock.sleep_until(deadline)
            problem = (
                f"no motion within {timeout_s:g} s: walk past the sensor, or check its wiring "
                "and that nothing covers its lens"
            )
            return SelfTestResult(self.name, False, (waited,), problem)
        at = upcoming[0]
        await self._clock.sleep_until(at)
        if self._fault is not None:
            return SelfTestResult(self.name, False, (waited,), self._fault)
        seen = f"motion at {at:%H:%M:%S} UTC, after {(at - now).total_seconds():.1f} s"
        return SelfTestResult(self.name, True, (waited, seen))

    async def close(self) -> None:
        """Stop delivering events; safe to call more than once."""
        self._closed = True
        await self._feed.close()

    def __repr__(self) -> str:
        return (
            f"SimPassersBy({self.name!r}, passers_per_hour={self.passers_per_hour:g}, "
            f"seed={self.seed}, fault={self._fault!r})"
        )


class SimPhotocell:
    """A simulated photocell that follows the sun, with hysteresis, and can be covered or broken.

    `elevation(at)` gives the sun's elevation in degrees at the site (the controller passes
    `schedules.solar.sun_elevation` bound to it). Dark below `dark_below_deg`, light again
    above `dark_below_deg + hysteresis_deg`; `subscribe` checks every `check_every_s` seconds
    of clock time.
    """

    def __init__(
        self,
        name: str,
        clock: TimeSource,
        *,
        elevation: Callable[[datetime], float],
        dark_below_deg: float = -2.0,
        hysteresis_deg: float = 1.0,
        check_every_s: float = 60.0,
    ) -> None:
        if hysteresis_deg < 0 or check_every_s <= 0:
            raise ValueError("hysteresis_deg must not be negative and check_every_s must be > 0")
        self.name = name
        self.dark_below_deg = dark_below_deg
        self.hysteresis_deg = hysteresis_deg
        self.check_every_s = check_every_s
        self._clock = clock
        self._elevation = elevation
        self._sun_dark = elevation(clock.now()) < dark_below_deg
        self._covered = False
        self._fault: str | None = None
        self._told_dark: bool | None = None
        self._feed: _Feed[LightReading] = _Feed(name)
        self._closed = False

    def read(self) -> LightReading | None:
        """The reading now (UTC), or None while broken; a covered cell reads dark at 0 lx."""
        if self._fault is not None:
            return None
        now = self._clock.now()
        elevation = self._elevation(now)
        if self._sun_dark and elevation > self.dark_below_deg + self.hysteresis_deg:
            self._sun_dark = False
        elif not self._sun_dark and elevation < self.dark_below_deg:
            self._sun_dark = True
        if self._covered:
            return LightReading(sensor=self.name, dark=True, lux=0.0, at=now)
        return LightReading(
            sensor=self.name, dark=self._sun_dark, lux=clear_sky_lux(elevation), at=now
        )

    def subscribe(self, callback: LightCallback) -> None:
        """Call `callback` on the current event loop with the reading whenever `dark` changes.

        The first subscription starts a task that reads the cell every `check_every_s`.
        """
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        if self._feed.task is None:
            reading = self.read()
            self._told_dark = None if reading is None else reading.dark
        start = self._clock.now()
        self._feed.add(callback, lambda: self._run(start))

    async def _run(self, start: datetime) -> None:
        step = timedelta(seconds=self.check_every_s)
        at = start + step
        while True:
            await self._clock.sleep_until(at)
            reading = self.read()
            if reading is not None and reading.dark != self._told_dark:
                self._told_dark = reading.dark
                self._feed.send(reading)
            at += step

    @property
    def fault(self) -> str | None:
        """None unless a fault was injected with `break_sensor`."""
        return self._fault

    def cover_cell(self) -> None:
        """Something covers the cell (a bird's nest, dirt): it reads dark, day and night."""
        self._covered = True

    def break_sensor(self, message: str) -> None:
        """`read()` returns None and `fault` says `message` until `repair()`."""
        if not message:
            raise ValueError("a sensor fault needs a message for people")
        self._fault = message

    def repair(self) -> None:
        """Uncover the cell and clear the injected fault."""
        self._covered = False
        self._fault = None

    def identify(self) -> Identity:
        """A simulated photocell and its threshold."""
        return Identity(
            kind="sim",
            model=(
                f"simulated photocell following the sun (dark below {self.dark_below_deg:g} deg, "
                f"light above {self.dark_below_deg + self.hysteresis_deg:g} deg)"
            ),
            where="simulation",
        )

    async def self_test(self, timeout_s: float = 60.0) -> SelfTestResult:
        """Report the reading, then wait up to `timeout_s` of clock time for dark to change.

        Never raises. Ok when the cell can be read; whether it changed is a step, since at
        most times of day it should not.
        """
        first = self.read()
        if first is None:
            return SelfTestResult(self.name, False, (), self._fault)
        steps = [f"reads {_describe(first)}"]
        deadline = first.at + timedelta(seconds=max(timeout_s, 0.0))
        step = timedelta(seconds=self.check_every_s)
        at = first.at
        while at < deadline:
            at = min(at + step, deadline)
            await self._clock.sleep_until(at)
            reading = self.read()
            if reading is None:
                return SelfTestResult(self.name, False, tuple(steps), self._fault)
            if reading.dark != first.dark:
                steps.append(f"changed at {reading.at:%H:%M:%S} UTC: {_describe(reading)}")
                break
        else:
            if timeout_s > 0:
                steps.append(f"no change within {timeout_s:g} s")
        return SelfTestResult(self.name, True, tuple(steps))

    async def close(self) -> None:
        """Stop checking the cell; safe to call more than once."""
        self._closed = True
        await self._feed.close()

    def __repr__(self) -> str:
        state = " covered" if self._covered else ""
        return (
            f"SimPhotocell({self.name!r}, dark_below_deg={self.dark_below_deg:g},{state} "
            f"fault={self._fault!r})"
        )


def _describe(reading: LightReading) -> str:
    lux = "" if reading.lux is None else f", {reading.lux:.0f} lx"
    return ("dark" if reading.dark else "light") + lux
