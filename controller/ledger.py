"""The energy ledger: every zone's energy per interval, in SQLite, delivered exactly once.

One file, `<data_dir>/energy.sqlite3`, in WAL mode with `synchronous=FULL`, so a record that
was written survives kill -9 and a power cut. Each record gets its `seq` in the transaction
that writes it (an AUTOINCREMENT key: strictly increasing, never reused, even after old rows
are pruned). A new file's first `seq` is the first record's end in Unix milliseconds, so a
re-flashed SD card or a new `data_dir` does not reuse the seqs receivers already hold. A record
is marked sent only when the broker has acknowledged it.

Tables:
- `energy`: the contract's Energy records, plus what reports need and MQTT does not carry
  (`scheduled_s`, `available_s`, `note`, `start_ts`, `sent`).
- `meter_counter`: each meter's own cumulative counter at its last reading before the last
  interval boundary, so energy is a difference of the meter's counter, across restarts too;
  and the modelled energy of intervals since that reading (the meter gave none), which the
  counter's next step covers.
- `health`: lamp health and meter events (the contract's Event kinds), for reports.

Times are stored twice: as the contract's ISO 8601 text with the unit's offset (`start`,
`end`, what MQTT carries) and as POSIX seconds (`start_ts`, `end_ts`) for queries.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from controller.errors import StreetlightError
from controller.logs import log_event
from controller.sqlite_durable import open_durable, transaction

log = logging.getLogger(__name__)

FILE_NAME = "energy.sqlite3"

Source = Literal["meter", "model"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS energy (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    zone         TEXT NOT NULL,
    start        TEXT NOT NULL,
    end          TEXT NOT NULL,
    start_ts     REAL NOT NULL,
    end_ts       REAL NOT NULL,
    kwh          REAL NOT NULL CHECK (kwh >= 0),
    baseline_kwh REAL NOT NULL CHECK (baseline_kwh >= 0),
    source       TEXT NOT NULL CHECK (source IN ('meter', 'model')),
    burn_s       INTEGER NOT NULL CHECK (burn_s >= 0),
    avg_level    REAL NOT NULL CHECK (avg_level BETWEEN 0 AND 100),
    scheduled_s  INTEGER NOT NULL CHECK (scheduled_s >= 0),
    available_s  INTEGER NOT NULL CHECK (available_s >= 0),
    note         TEXT,
    sent         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (start_ts, zone)
);
CREATE INDEX IF NOT EXISTS energy_unsent ON energy (seq) WHERE sent = 0;
CREATE TABLE IF NOT EXISTS meter_counter (
    meter     TEXT PRIMARY KEY,
    kwh       REAL NOT NULL,
    ts        REAL NOT NULL,
    booked_wh REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS health (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind   TEXT NOT NULL,
    zone   TEXT,
    detail TEXT NOT NULL,
    at     TEXT NOT NULL,
    at_ts  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS health_at ON health (at_ts);
"""


class LedgerError(StreetlightError):
    """The ledger file cannot be read or written; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Interval:
    """One zone's energy over one interval, before it has a `seq`."""

    zone: str
    start: datetime
    end: datetime
    kwh: float
    baseline_kwh: float
    source: Source
    burn_s: int
    avg_level: float
    scheduled_s: int
    available_s: int
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """An Interval as stored: with its `seq` and whether the broker has it."""

    seq: int
    interval: Interval
    sent: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """What `Ledger.summarise` did: the unsent records it replaced and the records that
    replaced them (each with the same totals as the run of records it stands for)."""

    replaced: tuple[int, ...]
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class HealthNote:
    """A lamp health or meter event as the report lists it."""

    kind: str
    zone: str | None
    detail: str
    at: datetime


class Ledger:
    """The energy ledger of one unit, in `<data_dir>/energy.sqlite3`.

    `readonly` opens an existing file for reports, without creating or changing anything.
    """

    def __init__(self, data_dir: Path, *, readonly: bool = False) -> None:
        self.path = data_dir / FILE_NAME
        try:
            if readonly:
                if not self.path.is_file():
                    raise LedgerError(
                        f"there is no energy ledger at {self.path}: check data_dir in the "
                        "config (the unit writes it there once it has run an interval)"
                    )
                # a reader who may not write the folder cannot make SQLite's shared-memory
                # file: with no write-ahead log to read, the file is read as it is
                wal = self.path.with_name(self.path.name + "-wal")
                frozen = not os.access(self.path.parent, os.W_OK) and not wal.exists()
                uri = f"{self.path.resolve().as_uri()}?mode=ro{'&immutable=1' if frozen else ''}"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
                self._db.execute("SELECT 1 FROM energy LIMIT 1").fetchall()
            else:
                data_dir.mkdir(parents=True, exist_ok=True)
                # small pages: each commit writes whole pages to the WAL, and a record is
                # ~150 bytes (bench/ledger_writes: 6.1 MB a day at 4096, 2.1 at 1024)
                self._db = open_durable(self.path, page_size=1024)
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(meter_counter)")}
                if "booked_wh" not in columns:  # a ledger written before this column
                    self._db.execute(
                        "ALTER TABLE meter_counter ADD COLUMN booked_wh REAL NOT NULL DEFAULT 0"
                    )
        except (sqlite3.Error, OSError) as exc:
            if readonly:
                raise LedgerError(
                    f"cannot read the energy ledger {self.path}: {exc}; run the command as the "
                    "user the unit runs as (sudo -u streetlight streetlight report ...) or as root"
                ) from exc
            raise LedgerError(_explain(self.path, exc)) from exc

    # ---- writing ---------------------------------------------------------------------------

    def append(
        self,
        intervals: Sequence[Interval],
        counters: Mapping[str, tuple[float, datetime]],
        booked_wh: Mapping[str, float] | None = None,
    ) -> list[Record]:
        """Store `intervals`, the meters' `counters` and their `booked_wh` (modelled energy
        since that reading) in one transaction; returns the records with their new `seq`s.
        Raises LedgerError and stores nothing on failure.

        An interval already stored for the same zone and start is left as it was (a restart
        that closes the same interval twice must not count it twice), and not returned.
        """
        records: list[Record] = []
        try:
            with transaction(self._db):
                if intervals:
                    self._seed(intervals[0].end)
                for item in intervals:
                    record = self._insert(item)
                    if record is not None:
                        records.append(record)
                booked = booked_wh or {}
                self._db.executemany(
                    "INSERT OR REPLACE INTO meter_counter (meter, kwh, ts, booked_wh)"
                    " VALUES (?, ?, ?, ?)",
                    [
                        (m, kwh, at.timestamp(), booked.get(m, 0.0))
                        for m, (kwh, at) in counters.items()
                    ],
                )
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc
        return records

    def _seed(self, first_end: datetime) -> None:
        """Start a new file's seqs at `first_end` in Unix milliseconds (inside a transaction)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'energy'").fetchone()
        if row is None:
            start = max(int(first_end.timestamp()) * 1000, 0)
            self._db.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('energy', ?)", (start,)
            )

    def _insert(self, item: Interval) -> Record | None:
        """Insert `item` (inside a transaction); None when its zone and start are stored."""
        item = _sane(item)
        # not INSERT OR IGNORE / ON CONFLICT: those use up a seq even when nothing is stored
        cursor = self._db.execute(
            "INSERT INTO energy (zone, start, end, start_ts, end_ts, kwh, baseline_kwh,"
            " source, burn_s, avg_level, scheduled_s, available_s, note)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM energy WHERE zone = ? AND start_ts = ?)",
            (
                item.zone,
                item.start.isoformat(),
                item.end.isoformat(),
                item.start.timestamp(),
                item.end.timestamp(),
                item.kwh,
                item.baseline_kwh,
                item.source,
                item.burn_s,
                item.avg_level,
                item.scheduled_s,
                item.available_s,
                item.note,
                item.zone,
                item.start.timestamp(),
            ),
        )
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            return Record(cursor.lastrowid, item, sent=False)
        if item.kwh > 0:  # the clock went back onto stored intervals
            log_event(
                log,
                "energy_interval_twice",
                level=logging.WARNING,
                zone=item.zone,
                start=item.start.isoformat(),
                kwh=round(item.kwh, 6),
                consequence="kept as first stored; this energy is not counted twice",
            )
        return None

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record that the broker acknowledged these records."""
        self._write("UPDATE energy SET sent = 1 WHERE seq = ?", [(s,) for s in seqs])

    def note_health(self, note: HealthNote) -> None:
        """Keep a health event for the reports."""
        self._write(
            "INSERT INTO health (kind, zone, detail, at, at_ts) VALUES (?, ?, ?, ?, ?)",
            [(note.kind, note.zone, note.detail, note.at.isoformat(), note.at.timestamp())],
        )

    def prune(self, before: datetime) -> int:
        """Delete sent records that ended before `before`; unsent ones are never deleted here.
        Returns how many were deleted."""
        try:
            with transaction(self._db):
                cursor = self._db.execute(
                    "DELETE FROM energy WHERE start_ts < ? AND end_ts < ? AND sent = 1",
                    (before.timestamp(), before.timestamp()),
                )
                self._db.execute("DELETE FROM health WHERE at_ts < ?", (before.timestamp(),))
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc
        return cursor.rowcount

    def summarise(self, start: datetime, end: datetime, *, keep: Collection[int] = ()) -> Summary:
        """Replace each zone's unsent records that start in [start, end) by one record per run
        of back-to-back records of the same source, in one transaction.

        A summary has the run's first start and last end; `kwh`, `baseline_kwh`, `burn_s`,
        `scheduled_s` and `available_s` are the run's sums, `avg_level` its time-weighted mean,
        and a new `seq`. Sent records, the records in `keep` (in flight to the broker) and runs
        of one record are left as they are. Raises LedgerError and changes nothing on failure.
        """
        kept = set(keep)
        try:
            with transaction(self._db):
                rows = self._db.execute(
                    f"{_SELECT} WHERE start_ts >= ? AND start_ts < ? ORDER BY zone, start_ts",
                    (start.timestamp(), end.timestamp()),
                ).fetchall()
                replaced: list[int] = []
                made: list[Record] = []
                for run in _runs([_record(row) for row in rows], kept):
                    seqs = [r.seq for r in run]
                    self._db.executemany("DELETE FROM energy WHERE seq = ?", [(q,) for q in seqs])
                    record = self._insert(_summary_of(run))
                    if record is None:  # cannot happen: its zone and start were just deleted
                        raise sqlite3.IntegrityError(f"summary of seq {seqs} was not stored")
                    made.append(record)
                    replaced.extend(seqs)
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc
        return Summary(tuple(sorted(replaced)), tuple(made))

    def free_bytes(self) -> int:
        """Bytes inside the file that were freed (by pruning or summarising) and will be
        reused for new records before the file grows."""
        pages = self._read("PRAGMA freelist_count", ())[0][0]
        size = self._read("PRAGMA page_size", ())[0][0]
        return int(pages) * int(size)

    # ---- reading ---------------------------------------------------------------------------

    def oldest_unsent_start(self, *, since: datetime | None = None) -> datetime | None:
        """The start of the oldest unsent record starting at or after `since` (any when None)."""
        floor = float("-inf") if since is None else since.timestamp()
        rows = self._read(
            "SELECT start FROM energy WHERE sent = 0 AND start_ts >= ? ORDER BY start_ts LIMIT 1",
            (floor,),
        )
        return datetime.fromisoformat(str(rows[0][0])) if rows else None

    def counters(self) -> dict[str, tuple[float, float, float]]:
        """Each meter's counter (kWh), its POSIX time, and the modelled Wh booked since, as
        stored at the last boundary."""
        rows = self._read("SELECT meter, kwh, ts, booked_wh FROM meter_counter", ())
        return {m: (float(kwh), float(ts), float(wh)) for m, kwh, ts, wh in rows}

    def unsent(self, limit: int) -> list[Record]:
        """Up to `limit` records the broker has not acknowledged, oldest first."""
        rows = self._read(f"{_SELECT} WHERE sent = 0 ORDER BY seq LIMIT ?", (limit,))
        return [_record(row) for row in rows]

    def unsent_count(self) -> int:
        """How many records wait for the broker."""
        return int(self._read("SELECT COUNT(*) FROM energy WHERE sent = 0", ())[0][0])

    def records(self, start: datetime, end: datetime) -> list[Record]:
        """Every record whose interval starts in [start, end), in time order, then by zone."""
        rows = self._read(
            f"{_SELECT} WHERE start_ts >= ? AND start_ts < ? ORDER BY start_ts, zone, seq",
            (start.timestamp(), end.timestamp()),
        )
        return [_record(row) for row in rows]

    def health(self, start: datetime, end: datetime) -> list[HealthNote]:
        """Every health event in [start, end), oldest first."""
        rows = self._read(
            "SELECT kind, zone, detail, at FROM health WHERE at_ts >= ? AND at_ts < ? "
            "ORDER BY at_ts, id",
            (start.timestamp(), end.timestamp()),
        )
        return [HealthNote(k, z, d, datetime.fromisoformat(a)) for k, z, d, a in rows]

    def iter_all(self) -> Iterator[Record]:
        """Every record, by seq (for checks and tests)."""
        for row in self._read(f"{_SELECT} ORDER BY seq", ()):
            yield _record(row)

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._db.close()

    def _read(self, statement: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(statement, args).fetchall())
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc

    def _write(self, statement: str, rows: Sequence[tuple[object, ...]]) -> None:
        try:
            with transaction(self._db):
                self._db.executemany(statement, rows)
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"


_SELECT = (
    "SELECT seq, zone, start, end, kwh, baseline_kwh, source, burn_s, avg_level, scheduled_s,"
    " available_s, note, sent FROM energy"
)


def _record(row: tuple[Any, ...]) -> Record:
    seq, zone, start, end, kwh, baseline, source, burn, avg, sched, avail, note, sent = row
    interval = Interval(
        zone=str(zone),
        start=datetime.fromisoformat(str(start)),
        end=datetime.fromisoformat(str(end)),
        kwh=float(kwh),
        baseline_kwh=float(baseline),
        source="meter" if source == "meter" else "model",
        burn_s=int(burn),
        avg_level=float(avg),
        scheduled_s=int(sched),
        available_s=int(avail),
        note=None if note is None else str(note),
    )
    return Record(int(seq), interval, bool(sent))


def _sane(item: Interval) -> Interval:
    """`item` with any number that is not finite or negative stored as 0, and said so in its
    note, so one bad value cannot block every later record."""

    def ok(value: float) -> bool:
        return math.isfinite(value) and value >= 0

    bad = [
        name
        for name in ("kwh", "baseline_kwh", "avg_level", "burn_s", "scheduled_s", "available_s")
        if not ok(getattr(item, name))
    ]
    level = item.avg_level if ok(item.avg_level) else 0.0
    if not bad and level <= 100:
        return item
    return Interval(
        zone=item.zone,
        start=item.start,
        end=item.end,
        kwh=item.kwh if ok(item.kwh) else 0.0,
        baseline_kwh=item.baseline_kwh if ok(item.baseline_kwh) else 0.0,
        source=item.source,
        burn_s=item.burn_s if ok(item.burn_s) else 0,
        avg_level=min(level, 100.0),
        scheduled_s=item.scheduled_s if ok(item.scheduled_s) else 0,
        available_s=item.available_s if ok(item.available_s) else 0,
        note="; ".join(
            filter(None, [item.note, f"{', '.join(bad)} not a number: stored as 0" if bad else ""])
        ),
    )


def _runs(records: Sequence[Record], keep: Collection[int]) -> Iterator[list[Record]]:
    """Runs of two or more unsent records, not in `keep`, of one zone and source, each starting
    where the one before ended. `records` are in (zone, start) order."""
    run: list[Record] = []
    for record in records:
        usable = not record.sent and record.seq not in keep
        if usable and run and _follows(run[-1].interval, record.interval):
            run.append(record)
            continue
        if len(run) > 1:
            yield run
        run = [record] if usable else []
    if len(run) > 1:
        yield run


def _follows(before: Interval, after: Interval) -> bool:
    return after.zone == before.zone and after.source == before.source and after.start == before.end


def _summary_of(run: Sequence[Record]) -> Interval:
    """One Interval with the totals of `run` (back-to-back records of one zone and source)."""
    items = [r.interval for r in run]
    seqs = [r.seq for r in run]
    seconds = [(i.end - i.start).total_seconds() for i in items]
    span = sum(seconds)
    level = sum(i.avg_level * s for i, s in zip(items, seconds, strict=True)) / span if span else 0
    notes = sorted({i.note for i in items if i.note})
    note = (
        f"summary of {len(run)} records (seq {min(seqs)} to {max(seqs)}), made because the "
        "disk was nearly full and the broker had not acknowledged them"
    )
    return Interval(
        zone=items[0].zone,
        start=items[0].start,
        end=items[-1].end,
        kwh=sum(i.kwh for i in items),
        baseline_kwh=sum(i.baseline_kwh for i in items),
        source=items[0].source,
        burn_s=sum(i.burn_s for i in items),
        avg_level=min(100.0, max(0.0, level)),
        scheduled_s=sum(i.scheduled_s for i in items),
        available_s=sum(i.available_s for i in items),
        note="; ".join([note, *notes]),
    )


def _explain(path: Path, exc: BaseException) -> str:
    return (
        f"cannot use the energy ledger {path}: {exc}; check that data_dir exists, is writable "
        "by the streetlight user, and that the disk is not full"
    )
