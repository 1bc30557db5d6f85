"""SQLite files that must survive kill -9 and a power cut (overrides, the energy ledger).

WAL with `synchronous=FULL`: a transaction that returned is on the disk. Connections are in
autocommit mode, so every multi-statement write goes through `transaction()`, which takes the
write lock at once and either commits everything or nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_durable(path: Path, *, page_size: int | None = None) -> sqlite3.Connection:
    """A connection to `path` in WAL mode with full syncs, usable from any thread.
    `page_size` applies to a file created now (it cannot change once the file is in WAL mode).

    Raises sqlite3.Error or OSError; the caller says what it means for the unit."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if page_size is not None:
        db.execute(f"PRAGMA page_size={int(page_size)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
