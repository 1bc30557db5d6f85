"""Energy ledger writes: bytes, commits and file size a day, for SD card wear.

A unit's SD card wears with what is written to it, and the ledger (`controller.ledger`,
SQLite in WAL mode with `synchronous=FULL`) is what writes on every interval, day and night.
Budget: under 5 MB a day for the ledger, and under 50 MB of files after the default 400 days
of retention.

The fixture is a unit with 4 zones on 1 meter at the default 900 s interval: 96 closes a day,
each one `Ledger.append` of 4 Intervals and the meter's counter (one transaction), followed by
one `Ledger.mark_sent` of those 4 records (one transaction), as the delivery does after the
broker's PUBACKs, and one `Ledger.prune` a day after the first close of the day, as
`EnergyService` does. The Intervals are built directly (`controller.ledger.Interval`), not by
`EnergyAccount`: lamps on from 18:00 to 06:15 at profile levels, metered energy a few percent
off the rated power times level, so the rows hold the same kinds of values a unit stores. The
real `Ledger` writes a real file in a temporary directory on this machine's disk (ext4).

Two days are measured:
- a new ledger's first day, for information: its tree is small and the WAL has not yet
  reached its first checkpoint, so it writes less than any later day;
- a day on a ledger already holding the 400 days of retention plus one (sent records, filled
  quickly, a day per transaction, then closed and reopened), whose prune deletes the oldest
  day: the steady state, which every day of a unit's life after its first year looks like.
  The budgets apply to this day.

For each: bytes handed to the kernel (`wchar` of /proc/self/io, every write and pwrite,
whatever the page cache does with them), bytes the kernel accounted to the disk
(`write_bytes`, page granular), the transactions committed (COMMIT statements seen by the
connection's trace callback: each one fsyncs the WAL; checkpoints sync more), the files' size
afterwards, and each `append`'s latency (`time.perf_counter`, p50 and p99 of 96).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import Result
from controller.ledger import FILE_NAME, Interval, Ledger
from controller.settings import EnergySettings

TZ = ZoneInfo("Asia/Bangkok")
INTERVAL_S = 900
CLOSES = 24 * 3600 // INTERVAL_S
RETENTION_DAYS: int = EnergySettings.model_fields["retention_days"].default
DAY = date(2026, 11, 21)  # the measured day; the 400 kept days end the day before
SETTLE_S = 2  # EnergyService closes this long after the boundary
METER = "cabinet"
TARGET_BYTES_PER_DAY = 5e6
TARGET_FILES_BYTES = 50e6

# (zone, rated W, baseline W, steps as (minute of the local day the step starts, level));
# the lamps are on from 18:00 to 06:15
ZONES: tuple[tuple[str, float, float, tuple[tuple[int, int], ...]], ...] = (
    ("soi-3", 440, 1000, ((18 * 60, 100), (22 * 60, 60), (0, 40), (5 * 60, 80))),
    ("market", 660, 1500, ((18 * 60, 100), (23 * 60 + 30, 50), (0, 50))),
    ("school-path", 189, 300, ((18 * 60, 20), (0, 20))),
    ("soi-5", 504, 800, ((18 * 60, 100), (21 * 60, 50), (0, 30), (5 * 60, 70))),
)
ON_MIN, OFF_MIN = 18 * 60, 6 * 60 + 15


def _level(steps: tuple[tuple[int, int], ...], minute: int) -> int:
    """The level at `minute` of the local day: 0 by day, else the last step begun."""
    if OFF_MIN <= minute < ON_MIN:
        return 0
    evening = [(m, lvl) for m, lvl in steps if m >= ON_MIN]
    morning = [(m, lvl) for m, lvl in steps if m < ON_MIN]
    if minute >= ON_MIN:
        return max((s for s in evening if s[0] <= minute), default=evening[0])[1]
    return max((s for s in morning if s[0] <= minute), default=evening[-1])[1]


class Unit:
    """The intervals a 4-zone, 1-meter unit closes, one boundary after another."""

    def __init__(self) -> None:
        self.rng = random.Random(4)
        self.counter_kwh = 12_345.678  # the meter's own cumulative counter

    def close(self, start: datetime) -> tuple[list[Interval], dict[str, tuple[float, datetime]]]:
        """The intervals that start at `start`, and the meter's counter at their end."""
        end = start + timedelta(seconds=INTERVAL_S)
        minute = start.hour * 60 + start.minute
        intervals = []
        for zone, rated_w, baseline_w, steps in ZONES:
            level = _level(steps, minute)
            lit_s = INTERVAL_S if level else 0
            modelled_kwh = rated_w * level / 100 * lit_s / 3600 / 1000
            kwh = modelled_kwh * self.rng.uniform(0.96, 1.04) + 0.5 * INTERVAL_S / 3.6e6
            self.counter_kwh += kwh
            intervals.append(
                Interval(
                    zone=zone,
                    start=start,
                    end=end,
                    kwh=kwh,
                    baseline_kwh=baseline_w * lit_s / 3600 / 1000,
                    source="meter",
                    burn_s=lit_s,
                    avg_level=float(level),
                    scheduled_s=lit_s,
                    available_s=lit_s,
                )
            )
        return intervals, {METER: (round(self.counter_kwh, 3), end)}


def _boundaries(day: date) -> list[datetime]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=TZ)
    return [midnight + timedelta(seconds=INTERVAL_S * n) for n in range(CLOSES)]


def _io() -> dict[str, int]:
    """This process's I/O counters."""
    text = Path("/proc/self/io").read_text()
    return {key: int(value) for key, value in (line.split(": ") for line in text.splitlines())}


def _files_bytes(data_dir: Path) -> dict[str, int]:
    """The ledger's files by suffix ('' for the database, '-wal', '-shm'), in bytes."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = data_dir / f"{FILE_NAME}{suffix}"
        sizes[suffix] = path.stat().st_size if path.exists() else 0
    return sizes


def _commit_counter(ledger: Ledger) -> Callable[[], int]:
    """Count the COMMITs the ledger's connection runs from now on; returns the reader."""
    count = 0

    def trace(statement: str) -> None:
        nonlocal count
        if statement.strip().upper() == "COMMIT":
            count += 1

    ledger._db.set_trace_callback(trace)
    return lambda: count


@dataclass(frozen=True, slots=True)
class Day:
    """What one simulated day cost the ledger."""

    wchar: int
    write_bytes: int
    commits: int
    records: int
    pruned: int
    append_s: list[float]
    files: dict[str, int]


def simulate_day(ledger: Ledger, data_dir: Path, unit: Unit, day: date) -> Day:
    """96 closes, each stored and then marked sent; the day's prune after the first close."""
    commits = _commit_counter(ledger)
    append_s: list[float] = []
    records = pruned = 0
    before = _io()
    for n, start in enumerate(_boundaries(day)):
        intervals, counters = unit.close(start)
        t0 = time.perf_counter()
        stored = ledger.append(intervals, counters)
        append_s.append(time.perf_counter() - t0)
        records += len(stored)
        ledger.mark_sent([record.seq for record in stored])
        if n == 0:  # as EnergyService: the clock's now, just after the boundary
            now = start + timedelta(seconds=INTERVAL_S + SETTLE_S)
            pruned = ledger.prune(now - timedelta(days=RETENTION_DAYS))
    after = _io()
    ledger._db.set_trace_callback(None)
    return Day(
        after["wchar"] - before["wchar"],
        after["write_bytes"] - before["write_bytes"],
        commits(),
        records,
        pruned,
        append_s,
        _files_bytes(data_dir),
    )


def fill(ledger: Ledger, unit: Unit, first: date, days: int) -> None:
    """`days` days of sent records from `first`, quickly: one append and one mark a day."""
    for offset in range(days):
        intervals: list[Interval] = []
        counters: dict[str, tuple[float, datetime]] = {}
        for start in _boundaries(first + timedelta(days=offset)):
            more, counters = unit.close(start)
            intervals += more
        ledger.append(intervals, counters)
    ledger.mark_sent([record.seq for record in ledger.unsent(CLOSES * len(ZONES) * days)])


def _ms(seconds: float) -> float:
    return seconds * 1000


def _pct(samples: list[float], pct: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def _day_results(label: str, day: Day, high: float | None) -> list[Result]:
    return [
        Result(f"{label}: bytes written (wchar)", day.wchar / 1e6, "MB", high=high),
        Result(f"{label}: write_bytes (dirtied pages)", day.write_bytes / 1e6, "MB"),
        Result(f"{label}: transactions (each fsyncs)", day.commits, "", fmt=",.0f"),
        Result(f"{label}: bytes written per record", day.wchar / day.records, "B", fmt=",.0f"),
        Result(f"{label}: append p50", _ms(_pct(day.append_s, 50)), "ms"),
        Result(f"{label}: append p99", _ms(_pct(day.append_s, 99)), "ms"),
    ]


def run() -> list[Result]:
    """A new ledger's first day, and a day on a ledger with 400 days of records."""
    per_day = CLOSES * len(ZONES)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        fresh_dir, full_dir = Path(tmp, "fresh"), Path(tmp, "full")
        ledger = Ledger(fresh_dir)
        try:
            first = simulate_day(ledger, fresh_dir, Unit(), DAY)
        finally:
            ledger.close()

        # one day more than is kept, so the measured day's prune has a day to delete
        unit = Unit()
        ledger = Ledger(full_dir)
        try:
            fill(ledger, unit, DAY - timedelta(days=RETENTION_DAYS + 1), RETENTION_DAYS + 1)
        finally:
            ledger.close()  # the last connection checkpoints the WAL and removes it
        filled = _files_bytes(full_dir)
        ledger = Ledger(full_dir)
        try:
            steady = simulate_day(ledger, full_dir, unit, DAY)
            kept = sum(1 for _ in ledger.iter_all())
        finally:
            ledger.close()
    assert first.records == per_day == steady.records, (first.records, steady.records)
    assert first.pruned == 0 and steady.pruned >= per_day, steady.pruned
    kept_days = f"{RETENTION_DAYS} days kept"

    def mb(sizes: dict[str, int]) -> float:
        return sum(sizes.values()) / 1e6

    return [
        # for information: the first day has the smallest tree and ends before the WAL's
        # first checkpoint (at 1,000 pages), so it writes less than any later day
        *_day_results("new ledger, first day", first, None),
        Result("new ledger after a day: db + WAL + shm", mb(first.files), "MB"),
        Result("new ledger after a day: of which WAL", first.files["-wal"] / 1e6, "MB"),
        *_day_results(f"{kept_days}, a day", steady, TARGET_BYTES_PER_DAY / 1e6),
        Result(f"{kept_days}: records deleted by the day's prune", steady.pruned, "", fmt=",.0f"),
        Result(f"{kept_days}: records after the day", kept, "", fmt=",.0f"),
        Result(f"{RETENTION_DAYS + 1} days filled, closed: db", mb(filled), "MB"),
        Result(
            f"{kept_days}, after the day: db + WAL + shm",
            mb(steady.files),
            "MB",
            high=TARGET_FILES_BYTES / 1e6,
        ),
        Result(f"{kept_days}, after the day: of which WAL", steady.files["-wal"] / 1e6, "MB"),
    ]
