"""The energy ledger: every zone's energy per interval, in SQLite, delivered exactly once.

One file, `<data_dir>/energy.sqlite3`, in WAL mode with `synchronous=FULL`, so a record that
was written survives kill -9 and a power cut. Each record gets its `seq` in the transaction
that writes it (an AUTOINCREMENT key: strictly increasing, never reused, even after old rows
are pruned). A record is marked sent only when the broker has acknowledged it.

Tables:
- `energy`: the contract's Energy records, plus what reports need and MQTT does not carry
  (`scheduled_s`, `available_s`, `note`, `start_ts`, `sent`).
- `meter_counter`: each meter's own cumulative counter at the last interval boundary, so
  energy is a difference of the meter's counter, across restarts too.
- `health`: lamp health and meter events (the contract's Event kinds), for reports.

Times are stored twice: as the contract's ISO 8601 text with the unit's offset (`start`,
`end`, what MQTT carries) and as POSIX seconds (`start_ts`, `end_ts`) for queries.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from controller.errors import StreetlightError
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
    UNIQUE (zone, start_ts)
);
CREATE INDEX IF NOT EXISTS energy_unsent ON energy (sent, seq);
CREATE INDEX IF NOT EXISTS energy_start ON energy (start_ts);
CREATE TABLE IF NOT EXISTS meter_counter (
    meter TEXT PRIMARY KEY,
    kwh   REAL NOT NULL,
    ts    REAL NOT NULL
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
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                data_dir.mkdir(parents=True, exist_ok=True)
                self._db = open_durable(self.path)
                self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(_explain(self.path, exc)) from exc

    # ---- writing ---------------------------------------------------------------------------

    def append(
        self, intervals: Sequence[Interval], counters: dict[str, tuple[float, datetime]]
    ) -> list[Record]:
        """Store `intervals` and the meters' boundary `counters` in one transaction; returns
        the records with their new `seq`s. Raises LedgerError and stores nothing on failure.

        An interval already stored for the same zone and start is left as it was (a restart
        that closes the same interval twice must not count it twice), and not returned.
        """
        records: list[Record] = []
        try:
            with transaction(self._db):
                for item in intervals:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO energy (zone, start, end, start_ts, end_ts, kwh,"
                        " baseline_kwh, source, burn_s, avg_level, scheduled_s, available_s,"
                        " note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        ),
                    )
                    if cursor.rowcount == 1 and cursor.lastrowid is not None:
                        records.append(Record(cursor.lastrowid, item, sent=False))
                self._db.executemany(
                    "INSERT OR REPLACE INTO meter_counter VALUES (?, ?, ?)",
                    [(m, kwh, at.timestamp()) for m, (kwh, at) in counters.items()],
                )
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc
        return records

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
                    "DELETE FROM energy WHERE sent = 1 AND end_ts < ?", (before.timestamp(),)
                )
                self._db.execute("DELETE FROM health WHERE at_ts < ?", (before.timestamp(),))
        except sqlite3.Error as exc:
            raise LedgerError(_explain(self.path, exc)) from exc
        return cursor.rowcount

    # ---- reading ---------------------------------------------------------------------------

    def counters(self) -> dict[str, tuple[float, float]]:
        """Each meter's counter (kWh) and its POSIX time at the last stored boundary."""
        rows = self._read("SELECT meter, kwh, ts FROM meter_counter", ())
        return {meter: (float(kwh), float(ts)) for meter, kwh, ts in rows}

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


def _explain(path: Path, exc: BaseException) -> str:
    return (
        f"cannot use the energy ledger {path}: {exc}; check that data_dir exists, is writable "
        "by the streetlight user, and that the disk is not full"
    )
