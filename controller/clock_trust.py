"""Whether the wall clock can be believed yet.

A Raspberry Pi has no real-time clock: it boots with whatever time it last wrote to the SD
card (or 1970), and only NTP makes it right. Schedules on a wrong clock light streets at noon
and darken them at midnight, so the daemon asks `ClockTrust.check()` before it acts on time,
and stays in its fail-safe until the answer is yes.

- `KernelSync`: the kernel's (and systemd-timesyncd's) word that NTP has set the clock.
- `FixedSync`: a fixed answer, for simulated clocks and units with a real-time clock.
- `LastKnownTime`: the latest trusted time, kept in a file so time never appears to run
  backwards across reboots.
- `ClockTrust`: puts the two together, and latches once the clock is trusted.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from controller.clock import Clock
from controller.logs import log_event

log = logging.getLogger(__name__)

TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")

# adjtimex(2): the clock state TIME_ERROR, and the status bit meaning "not synchronised".
_TIME_ERROR = 5
_STA_UNSYNC = 0x40
# struct timex is 208 bytes on 64-bit Linux and smaller on 32-bit; the spare room covers any
# layout, so the kernel never writes past the buffer.
_TIMEX_BUFFER_BYTES = 512


class _TimexHead(ctypes.Structure):
    """The first fields of struct timex, up to `status`; ctypes gives each ABI its alignment."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
    )


class SyncSource(Protocol):
    """Something that knows whether the system clock has been set from a trusted source."""

    def synchronised(self) -> bool:
        """True when the clock has been set from a time server (or needs no setting)."""
        ...


class KernelSync:
    """The kernel's NTP state, or systemd-timesyncd's flag file, says the clock is synchronised.

    `libc` names the C library to load (None: the one this process already uses); on a system
    without `adjtimex` (not Linux) only the flag file counts.
    """

    def __init__(self, flag_file: Path = TIMESYNCD_FLAG, libc: str | None = None) -> None:
        self._flag_file = flag_file
        self._adjtimex = _load_adjtimex(libc)

    @property
    def kernel_available(self) -> bool:
        """True when the kernel's own NTP state can be read (adjtimex was found)."""
        return self._adjtimex is not None

    def synchronised(self) -> bool:
        """True when the kernel reports a synchronised clock or the timesyncd flag file exists.

        Never raises: anything that cannot be read counts as "not synchronised".
        """
        return self._kernel_synchronised() or self._flag_present()

    def _kernel_synchronised(self) -> bool:
        if self._adjtimex is None:
            return False
        buffer = ctypes.create_string_buffer(_TIMEX_BUFFER_BYTES)  # zeroed: modes=0 only reads
        try:
            state = self._adjtimex(ctypes.addressof(buffer))
        except (ctypes.ArgumentError, OSError):
            return False
        if state < 0 or state == _TIME_ERROR:
            return False
        return not _TimexHead.from_buffer(buffer).status & _STA_UNSYNC

    def _flag_present(self) -> bool:
        try:
            return self._flag_file.exists()
        except OSError:  # e.g. no permission on /run/systemd/timesync
            return False

    def __repr__(self) -> str:
        return f"KernelSync(flag_file={str(self._flag_file)!r}, kernel={self.kernel_available})"


def _load_adjtimex(libc: str | None) -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(libc, use_errno=True).adjtimex
    except (OSError, AttributeError) as exc:
        log_event(
            log,
            "kernel_clock_state_unavailable",
            libc=libc or "(this process's)",
            error=str(exc),
            fix="expected off Linux, where only systemd-timesyncd's flag file counts; on a "
            "unit, pass no libc (the system's own) so the kernel's NTP state is read",
        )
        return None
    function.argtypes = (ctypes.c_void_p,)
    function.restype = ctypes.c_int
    return function


class FixedSync:
    """A fixed answer: for simulated clocks, tests, and units with a battery-backed clock."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def synchronised(self) -> bool:
        """The value given (tests may change `value` at any time)."""
        return self.value

    def __repr__(self) -> str:
        return f"FixedSync({self.value})"


class LastKnownTime:
    """The latest time this unit trusted, in a one-line file (ISO 8601, UTC)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> datetime | None:
        """The time in the file, in UTC; None when the file is missing or unreadable.

        A corrupt or unreadable file is logged with the fix, never raised.
        """
        try:
            # undecodable bytes are corruption, reported below with the rest
            text = self.path.read_bytes().decode("utf-8", errors="replace").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log_event(
                log,
                "last_known_time_unreadable",
                level=logging.WARNING,
                path=str(self.path),
                error=str(exc),
                fix="let the service user read the file, or delete it; it is rewritten once "
                "the clock is synchronised",
            )
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            log_event(
                log,
                "last_known_time_corrupt",
                level=logging.WARNING,
                path=str(self.path),
                content=text[:64],
                fix="delete the file; it is rewritten once the clock is synchronised",
            )
            return None
        return when.astimezone(UTC)

    def save(self, when: datetime) -> None:
        """Replace the file's time with `when`, atomically: after a power cut the file holds
        either the old time or the new one, never half of either.

        A write error is logged with the fix, never raised. A naive `when` is a ValueError.
        """
        if when.tzinfo is None:
            raise ValueError("LastKnownTime.save needs a timezone-aware time")
        line = when.astimezone(UTC).isoformat(timespec="seconds") + "\n"
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, line.encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            # the rename itself is only durable once the directory is on disk
            _fsync_dir(self.path.parent)
        except OSError as exc:
            log_event(
                log,
                "last_known_time_unwritable",
                level=logging.WARNING,
                path=str(self.path),
                error=str(exc),
                fix="make sure the folder exists and the service user may write to it "
                "(data_dir, /var/lib/streetlight on a unit)",
            )
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"LastKnownTime({str(self.path)!r})"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ClockTrust:
    """Decides whether `clock` can be believed, and keeps the last known time on disk.

    The clock is trusted once `source` says it is synchronised and it does not read earlier
    than the last known time. Trust latches: the kernel clock keeps good time without NTP for
    days, so a unit that loses its network stays out of fail-safe.
    """

    def __init__(
        self,
        source: SyncSource,
        last_known: LastKnownTime,
        clock: Clock,
        save_every: timedelta = timedelta(hours=1),
    ) -> None:
        if save_every <= timedelta(0):
            raise ValueError(f"save_every must be above zero, got {save_every}")
        self._source = source
        self._last_known = last_known
        self._clock = clock
        self._save_every = save_every
        self._floor = last_known.load()
        # the latest time in the file: never overwritten by an earlier one
        self._stored = self._floor
        self._last_save: datetime | None = None
        self._trusted = False
        self._reason: str | None = "the clock has not been checked yet"

    @property
    def floor(self) -> datetime | None:
        """The last known time loaded at start (UTC), or None when there was none."""
        return self._floor

    @property
    def trusted(self) -> bool:
        """True once `check()` has returned True; does not look at the clock again."""
        return self._trusted

    @property
    def reason(self) -> str | None:
        """Why the clock is not trusted, as a sentence with the fix; None once it is trusted."""
        return None if self._trusted else self._reason

    def check(self) -> bool:
        """Whether the clock is trusted now; once True, True for the rest of this process."""
        if self._trusted:
            return True
        now = self._clock.now()
        synchronised = self._source.synchronised()
        behind = self._floor is not None and now < self._floor
        if synchronised and not behind:
            self._trusted = True
            log_event(log, "clock_trusted", now=now, floor=self._floor)
            return True
        if behind and not synchronised:
            reason = (
                f"the clock reads {_show(now)}, before the last time this unit saw "
                f"({_show(self._floor)}): it was reset; waiting for NTP"
            )
        elif behind:
            reason = (
                f"the clock is synchronised but reads {_show(now)}, before the last time this "
                f"unit saw ({_show(self._floor)}): either the time server is wrong (check the "
                f"unit's NTP settings) or {self._last_known.path} holds a wrong time (delete "
                "it if the clock is right)"
            )
        else:
            reason = (
                "the system clock is not synchronised (no NTP yet: check the unit's network "
                "and that systemd-timesyncd runs)"
            )
        if reason != self._reason:
            log_event(log, "clock_untrusted", level=logging.WARNING, now=now, reason=reason)
        self._reason = reason
        return False

    def note_time(self) -> None:
        """Save the current time as the last known time: only once the clock is trusted, at
        most once per `save_every` (the SD card wears with every write), never earlier than
        the file already holds."""
        if not self._trusted:
            return
        now = self._clock.now()
        if self._last_save is not None and now - self._last_save < self._save_every:
            return
        self._save(now)

    def close(self) -> None:
        """Save the current time now if the clock is trusted, so the next boot starts from it."""
        if self._trusted:
            self._save(self._clock.now())

    def _save(self, now: datetime) -> None:
        # counted even if the write fails: a broken SD card is retried hourly, not every tick
        self._last_save = now
        if self._stored is not None and now <= self._stored:
            return
        self._last_known.save(now)
        self._stored = now

    def __repr__(self) -> str:
        return (
            f"ClockTrust(trusted={self._trusted}, floor={_show(self._floor)}, "
            f"source={self._source!r})"
        )


def _show(when: datetime | None) -> str:
    return "none" if when is None else when.astimezone(UTC).isoformat(timespec="seconds")
