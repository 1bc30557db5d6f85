"""The one source of time for the daemon, injected so the same code runs in real or simulated time.

Logic never reads the wall clock itself: it asks a `Clock`. Three clocks exist:

- `SystemClock`: the real wall clock, for `streetlight run` on a unit.
- `ScaledClock`: simulated time running `speed` times faster than real time, for the demo.
- `ManualClock`: time that moves only when a test says so, for tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

# A sleeping SystemClock wakes at least this often to notice the wall clock being stepped
# (NTP sync after boot on a Pi without RTC can move it by months).
_MAX_REAL_SLEEP_S = 30.0


class Clock(Protocol):
    """What the daemon needs of time.

    Must: `now()` returns a timezone-aware datetime; `sleep_until()` returns no earlier than
    `when` by this clock's own `now()`, and returns at once when `when` is already past.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until `now() >= when`."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The system's current time in UTC."""
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until the wall clock reaches `when`, in short steps so clock steps are noticed."""
        # a loop, not one sleep: the wall clock can be stepped while we sleep
        while (remaining := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, _MAX_REAL_SLEEP_S))

    def __repr__(self) -> str:
        return "SystemClock()"


class ScaledClock:
    """Simulated time that starts at `start` and runs `speed` times faster than real time."""

    def __init__(self, start: datetime, *, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs a timezone-aware start time")
        if speed <= 0:
            raise ValueError(f"speed must be above 0, got {speed}")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> datetime:
        """The simulated time: start plus the real time elapsed, times the speed."""
        elapsed = (time.monotonic() - self._t0) * self._speed
        return self._start + timedelta(seconds=elapsed)

    async def sleep_until(self, when: datetime) -> None:
        """Sleep for the real time it takes the simulated clock to reach `when`."""
        # a loop: asyncio may wake a little early by the monotonic clock
        while (remaining := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(remaining / self._speed)

    def __repr__(self) -> str:
        return f"ScaledClock(now={self.now().isoformat()}, speed={self._speed})"


class ManualClock:
    """Time that moves only when `advance()` or `advance_to()` is awaited; for tests.

    Sleepers wake in deadline order, each seeing `now()` equal to its own deadline, so code
    that sleeps until the next change sees exactly the times it asked for.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        """The time the test last moved the clock to."""
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        """Wait until a test advances the clock to `when` or beyond."""
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when.astimezone(UTC), next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking every sleeper whose time has come, in order."""
        await self.advance_to(self._now + timedelta(seconds=seconds))

    async def advance_to(self, target: datetime) -> None:
        """Move time forward to `target`, waking sleepers in deadline order on the way."""
        if target < self._now:
            raise ValueError(f"ManualClock cannot go back from {self._now} to {target}")
        await settle()  # tasks started just before must get to register their sleep first
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not future.done():
                future.set_result(None)
            await settle()
        self._now = target
        await settle()

    @property
    def next_wakeup(self) -> datetime | None:
        """The earliest time a sleeper waits for, or None when nobody sleeps."""
        pending = [when for when, _, future in self._sleepers if not future.done()]
        return min(pending) if pending else None

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now.isoformat()}, sleepers={len(self._sleepers)})"


def local_iso(when: datetime, tz: tzinfo) -> str:
    """A time as the contract writes it: ISO 8601, to the second, with the unit's UTC offset."""
    return when.astimezone(tz).isoformat(timespec="seconds")


async def first_of(*waits: Awaitable[object]) -> None:
    """Wait until the first of `waits` is done, then cancel the ones this call wrapped.

    Tasks and futures passed in are left running (the caller owns them); coroutines are
    wrapped here and cancelled, so no wait outlives the call.
    """
    futures = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future, wait in zip(futures, waits, strict=True):
            if future is not wait:
                future.cancel()


async def settle(turns: int = 20) -> None:
    """Let every task that is ready run until it blocks again (a few turns of the event loop)."""
    for _ in range(turns):
        await asyncio.sleep(0)
