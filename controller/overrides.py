"""Remote overrides in SQLite: they survive kill -9, a reboot and a power cut until they end.

One row per zone: the level a command asked for, when it ends, and the command's id. The file
lives in `data_dir` and uses WAL with `synchronous=FULL`: a command is acknowledged only once
its override is on the SD card. Expired rows are removed as they are met; no override is ever
kept past its end.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from controller.errors import StreetlightError
from controller.logs import log_event
from controller.sqlite_durable import open_durable, transaction
from schedules.decide import Override

log = logging.getLogger(__name__)

FILE_NAME = "overrides.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS overrides (
    zone       TEXT PRIMARY KEY,
    level      INTEGER NOT NULL CHECK (level BETWEEN 0 AND 100),
    until_utc  TEXT NOT NULL,
    command_id TEXT
)
"""


class OverrideStoreError(StreetlightError):
    """The override file cannot be read or written; the message says why and what to do."""


class OverrideStore:
    """The overrides of one unit, in `<data_dir>/overrides.sqlite3`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = open_durable(self.path)
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise OverrideStoreError(_explain(self.path, exc)) from exc
        except OSError as exc:
            raise OverrideStoreError(_explain(self.path, exc)) from exc

    def active(self, now: datetime) -> dict[str, Override]:
        """Every override that has not ended at `now`, by zone; ended ones are deleted."""
        try:
            with self._db:
                self._db.execute("DELETE FROM overrides WHERE until_utc <= ?", (_utc(now),))
                rows = self._db.execute(
                    "SELECT zone, level, until_utc, command_id FROM overrides"
                ).fetchall()
        except sqlite3.Error as exc:
            error = _explain(self.path, exc)
            log_event(log, "overrides_unreadable", level=logging.ERROR, error=error)
            return {}
        return {
            zone: Override(int(level), datetime.fromisoformat(until), command_id)
            for zone, level, until, command_id in rows
        }

    def put(self, overrides: Mapping[str, Override]) -> None:
        """Store each zone's override, all in one transaction, durably.

        Raises `OverrideStoreError` when they cannot be stored; then none was stored.
        """
        rows = [(z, o.level, _utc(o.until), o.command_id) for z, o in overrides.items()]
        self._write("INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?)", rows)

    def clear(self, zones: Iterable[str]) -> None:
        """End the overrides of `zones` (no error when a zone has none); durably."""
        self._write("DELETE FROM overrides WHERE zone = ?", [(zone,) for zone in zones])

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._db.close()

    def _write(self, statement: str, rows: Sequence[tuple[object, ...]]) -> None:
        try:
            with transaction(self._db):
                self._db.executemany(statement, rows)
        except sqlite3.Error as exc:
            raise OverrideStoreError(_explain(self.path, exc)) from exc

    def __repr__(self) -> str:
        return f"OverrideStore({str(self.path)!r})"


def _utc(when: datetime) -> str:
    # one fixed format in UTC, so text comparison in SQL orders like time
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _explain(path: Path, exc: BaseException) -> str:
    return (
        f"cannot use the override file {path}: {exc}; check that data_dir exists, is writable "
        "by the streetlight user, and that the disk is not full"
    )
