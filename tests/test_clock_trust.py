"""Clock trust: NTP state from the kernel or timesyncd, the last known time on disk, latching."""

from __future__ import annotations

import ctypes
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controller import clock_trust
from controller.clock import ManualClock
from controller.clock_trust import ClockTrust, FixedSync, KernelSync, LastKnownTime

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        getattr(record, "streetlight_fields", {})
        for record in caplog.records
        if record.getMessage() == event
    ]


class SteppedClock:
    """A clock a test can set anywhere, backwards too (as NTP or a person can)."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    async def sleep_until(self, when: datetime) -> None:
        raise AssertionError("not used")


def _trust(tmp_path: Path, clock: ManualClock | SteppedClock, synced: bool = True) -> ClockTrust:
    return ClockTrust(FixedSync(synced), LastKnownTime(tmp_path / "last-time"), clock)


# --------------------------------------------------------------------------------------------
# KernelSync


def test_kernel_sync_answers_on_this_machine(tmp_path: Path) -> None:
    sync = KernelSync(flag_file=tmp_path / "synchronized")
    assert sync.kernel_available  # these tests run on Linux
    assert isinstance(sync.synchronised(), bool)


def test_the_timesyncd_flag_file_means_synchronised(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    assert KernelSync(flag_file=flag).synchronised() is True


def test_a_missing_libc_falls_back_to_the_flag_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    flag = tmp_path / "synchronized"
    sync = KernelSync(flag_file=flag, libc=str(tmp_path / "no-such-libc.so.6"))
    assert not sync.kernel_available
    assert _events(caplog, "kernel_clock_state_unavailable")
    assert sync.synchronised() is False
    flag.touch()
    assert sync.synchronised() is True


def test_a_libc_without_adjtimex_falls_back_to_the_flag_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoAdjtimex:
        def __init__(self, name: str | None, use_errno: bool = False) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoAdjtimex)
    flag = tmp_path / "synchronized"
    sync = KernelSync(flag_file=flag)
    assert not sync.kernel_available
    assert sync.synchronised() is False
    flag.touch()
    assert sync.synchronised() is True


def _fake_adjtimex(state: int, status: int) -> Any:
    """An adjtimex that fills in `status` the way the kernel does and returns `state`."""
    offset = clock_trust._TimexHead.status.offset

    def adjtimex(address: int) -> int:
        ctypes.c_int.from_address(address + offset).value = status
        return state

    return adjtimex


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        (0, 0x0001, True),  # TIME_OK, STA_PLL: timesyncd has set the clock
        (1, 0x0011, True),  # TIME_INS: a leap second ahead, still synchronised
        (5, 0x0001, False),  # TIME_ERROR
        (0, 0x0041, False),  # STA_UNSYNC
        (-1, 0, False),  # the call failed
    ],
)
def test_kernel_state_decides_without_the_flag_file(
    tmp_path: Path, state: int, status: int, expected: bool
) -> None:
    sync = KernelSync(flag_file=tmp_path / "synchronized")
    sync._adjtimex = _fake_adjtimex(state, status)
    assert sync.synchronised() is expected


def test_the_flag_file_wins_over_an_unsynchronised_kernel(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    sync = KernelSync(flag_file=flag)
    sync._adjtimex = _fake_adjtimex(5, 0x40)
    assert sync.synchronised() is True


def test_an_unreadable_flag_folder_counts_as_not_synchronised(tmp_path: Path) -> None:
    # a path through a regular file: stat() fails with ENOTDIR, never raised
    (tmp_path / "file").touch()
    sync = KernelSync(flag_file=tmp_path / "file" / "synchronized", libc="/nonexistent/libc")
    assert sync.synchronised() is False


# --------------------------------------------------------------------------------------------
# LastKnownTime


def test_last_known_time_round_trips_as_one_utc_line(tmp_path: Path) -> None:
    stored = LastKnownTime(tmp_path / "last-time")
    assert stored.load() is None
    bangkok = datetime(2026, 11, 21, 10, 0, 5, 999, tzinfo=ZoneInfo("Asia/Bangkok"))
    stored.save(bangkok)
    assert (tmp_path / "last-time").read_text() == "2026-11-21T03:00:05+00:00\n"
    loaded = stored.load()
    assert loaded == datetime(2026, 11, 21, 3, 0, 5, tzinfo=UTC)
    assert loaded is not None and loaded.tzinfo == UTC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-time"]  # no temp file left


@pytest.mark.parametrize("content", ["", "yesterday\n", "2026-11-21T03:00:00\n", "\xff\xfe"])
def test_a_corrupt_file_loads_as_none_with_a_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / "last-time"
    path.write_text(content, encoding="latin-1")
    assert LastKnownTime(path).load() is None
    logged = _events(caplog, "last_known_time_corrupt") + _events(
        caplog, "last_known_time_unreadable"
    )
    assert len(logged) == 1
    assert logged[0]["path"] == str(path)
    assert "delete the file" in logged[0]["fix"]


def test_an_unreadable_file_loads_as_none_with_a_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "last-time"
    path.mkdir()  # reading a folder fails like a file the service user may not read
    assert LastKnownTime(path).load() is None
    [logged] = _events(caplog, "last_known_time_unreadable")
    assert "delete it" in logged["fix"]


def test_an_unwritable_file_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "missing-folder" / "last-time"
    LastKnownTime(path).save(T0)
    [logged] = _events(caplog, "last_known_time_unwritable")
    assert logged["path"] == str(path)
    assert "folder exists" in logged["fix"]
    assert not path.parent.exists()


def test_saving_replaces_the_old_time(tmp_path: Path) -> None:
    stored = LastKnownTime(tmp_path / "last-time")
    stored.save(T0)
    stored.save(T0 + timedelta(days=3))
    assert stored.load() == T0 + timedelta(days=3)


def test_a_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LastKnownTime(tmp_path / "last-time").save(datetime(2026, 11, 21, 3, 0))


# --------------------------------------------------------------------------------------------
# ClockTrust


def test_an_unsynchronised_clock_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trust = _trust(tmp_path, ManualClock(T0), synced=False)
    assert trust.floor is None
    assert trust.check() is False
    assert not trust.trusted
    assert trust.reason is not None
    assert "not synchronised" in trust.reason
    assert "systemd-timesyncd" in trust.reason
    [logged] = _events(caplog, "clock_untrusted")
    assert logged["reason"] == trust.reason


def test_a_synchronised_clock_with_no_history_is_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    trust = _trust(tmp_path, ManualClock(T0))
    assert trust.check() is True
    assert trust.trusted
    assert trust.reason is None
    assert _events(caplog, "clock_trusted") == [{"now": T0, "floor": None}]


def test_a_clock_behind_the_last_known_time_was_reset(tmp_path: Path) -> None:
    LastKnownTime(tmp_path / "last-time").save(T0)
    clock = ManualClock(datetime(1970, 1, 1, tzinfo=UTC))
    trust = _trust(tmp_path, clock, synced=False)
    assert trust.floor == T0
    assert trust.check() is False
    assert trust.reason == (
        "the clock reads 1970-01-01T00:00:00+00:00, before the last time this unit saw "
        "(2026-11-21T03:00:00+00:00): it was reset; waiting for NTP"
    )


async def test_a_synchronised_clock_behind_the_file_waits_until_it_passes_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "last-time"
    LastKnownTime(path).save(T0 + timedelta(minutes=5))
    clock = ManualClock(T0)
    trust = _trust(tmp_path, clock)
    assert trust.check() is False
    assert trust.reason is not None
    assert "synchronised but reads" in trust.reason
    assert str(path) in trust.reason  # the fix names the file to delete
    await clock.advance(5 * 60)
    assert trust.check() is True  # equal to the floor is not behind it


async def test_trust_latches_when_ntp_goes_away(tmp_path: Path) -> None:
    source = FixedSync(True)
    clock = ManualClock(T0)
    trust = ClockTrust(source, LastKnownTime(tmp_path / "last-time"), clock)
    assert trust.check() is True
    source.value = False
    await clock.advance(24 * 3600)
    assert trust.check() is True
    assert trust.reason is None


async def test_trust_waits_for_the_source_and_logs_each_reason_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = FixedSync(False)
    clock = ManualClock(T0)
    trust = ClockTrust(source, LastKnownTime(tmp_path / "last-time"), clock)
    for _ in range(5):
        assert trust.check() is False
        await clock.advance(10)
    assert len(_events(caplog, "clock_untrusted")) == 1
    source.value = True
    assert trust.check() is True


async def test_the_time_is_saved_once_trusted_and_at_most_hourly(tmp_path: Path) -> None:
    path = tmp_path / "last-time"
    source = FixedSync(False)
    clock = ManualClock(T0)
    trust = ClockTrust(source, LastKnownTime(path), clock)
    trust.check()
    trust.note_time()
    assert not path.exists()  # an untrusted time is never written

    source.value = True
    assert trust.check()
    trust.note_time()
    assert LastKnownTime(path).load() == T0
    await clock.advance(59 * 60)
    trust.note_time()
    assert LastKnownTime(path).load() == T0  # spare the SD card
    await clock.advance(60)
    trust.note_time()
    assert LastKnownTime(path).load() == T0 + timedelta(hours=1)
    await clock.advance(10)
    trust.close()  # always on close
    assert LastKnownTime(path).load() == T0 + timedelta(hours=1, seconds=10)


def test_save_every_can_be_shorter(tmp_path: Path) -> None:
    clock = SteppedClock(T0)
    path = tmp_path / "last-time"
    trust = ClockTrust(FixedSync(True), LastKnownTime(path), clock, timedelta(minutes=1))
    assert trust.check()
    trust.note_time()
    clock.at = T0 + timedelta(minutes=1)
    trust.note_time()
    assert LastKnownTime(path).load() == T0 + timedelta(minutes=1)


def test_an_untrusted_close_writes_nothing(tmp_path: Path) -> None:
    trust = _trust(tmp_path, ManualClock(T0), synced=False)
    trust.check()
    trust.close()
    assert not (tmp_path / "last-time").exists()


def test_an_earlier_time_never_overwrites_a_later_one(tmp_path: Path) -> None:
    path = tmp_path / "last-time"
    clock = SteppedClock(T0)
    trust = _trust(tmp_path, clock)
    assert trust.check()
    trust.close()
    clock.at = T0 - timedelta(days=1)  # stepped back after trust (a person, a bad server)
    assert trust.check() is True  # latched
    trust.close()
    trust.note_time()
    assert LastKnownTime(path).load() == T0


def test_the_floor_survives_a_restart(tmp_path: Path) -> None:
    first = _trust(tmp_path, SteppedClock(T0))
    assert first.check()
    first.close()
    # the next boot: the Pi comes up with its clock at 1970 and no NTP yet
    second = _trust(tmp_path, SteppedClock(datetime(1970, 1, 1, tzinfo=UTC)), synced=False)
    assert second.floor == T0
    assert second.check() is False
    assert second.reason is not None and "it was reset" in second.reason


def test_a_corrupt_file_does_not_block_trust(tmp_path: Path) -> None:
    (tmp_path / "last-time").write_text("garbage\n")
    trust = _trust(tmp_path, ManualClock(T0))
    assert trust.floor is None
    assert trust.check() is True
    trust.close()
    assert LastKnownTime(tmp_path / "last-time").load() == T0


def test_a_failing_write_is_retried_hourly_not_every_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SteppedClock(T0)
    trust = ClockTrust(FixedSync(True), LastKnownTime(tmp_path / "gone" / "last-time"), clock)
    assert trust.check()
    for minute in range(0, 61, 10):
        clock.at = T0 + timedelta(minutes=minute)
        trust.note_time()
    assert len(_events(caplog, "last_known_time_unwritable")) == 2  # at 0 and at 60 minutes


def test_save_every_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="save_every"):
        ClockTrust(FixedSync(True), LastKnownTime(tmp_path / "t"), ManualClock(T0), timedelta(0))
