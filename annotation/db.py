"""The annotation queue's SQLite file: its schema and one connection per thread.

One SQLite file (WAL) per dataset, beside its versions. Tables: ``items`` (what needs
labels, with the item as JSON), ``annotators`` (token stored as a SHA-256 hash),
``assignments`` (who was shown what, in which A/B order), ``responses`` (one per item
and annotator, whatever UI it came from), ``sessions`` (web logins) and ``synced``
(versions whose routed items are queued). Every write runs in one ``BEGIN IMMEDIATE``
transaction, so 50 annotators asking for work at once never get the same slot twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,              -- insertion order: routed before audit, oldest first
    kind TEXT NOT NULL CHECK (kind IN ('routed', 'audit')),
    source TEXT NOT NULL,              -- DATASET@vN the item came from
    k INTEGER NOT NULL CHECK (k >= 1),
    filled INTEGER NOT NULL DEFAULT 0, -- responses so far (kept with each response insert)
    item TEXT NOT NULL,                -- the item row as JSON
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS annotators (
    name TEXT PRIMARY KEY,
    token_hash TEXT UNIQUE,            -- NULL for people who only label in Argilla
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    item_id TEXT NOT NULL REFERENCES items(id),
    annotator TEXT NOT NULL REFERENCES annotators(name),
    swapped INTEGER NOT NULL,          -- 1: screen A is the item's rejected response
    state TEXT NOT NULL CHECK (state IN ('open', 'done', 'skipped', 'released')),
    assigned REAL NOT NULL,
    PRIMARY KEY (item_id, annotator)
);
CREATE TABLE IF NOT EXISTS responses (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES items(id),
    annotator TEXT NOT NULL REFERENCES annotators(name),
    label TEXT NOT NULL CHECK (label IN ('chosen', 'rejected', 'tie', 'both_bad')),
    swapped INTEGER,                   -- the A/B order this person saw
    flags TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL DEFAULT 'web',
    created REAL NOT NULL,
    UNIQUE (item_id, annotator)
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    annotator TEXT NOT NULL REFERENCES annotators(name),
    csrf TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS synced (version TEXT PRIMARY KEY, items INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS responses_annotator ON responses(annotator);
-- the pool: items still short of labels, in queue order (small however many items fill up)
CREATE INDEX IF NOT EXISTS items_open ON items(seq) WHERE filled < k;
CREATE INDEX IF NOT EXISTS assignments_open ON assignments(item_id) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS assignments_stale ON assignments(assigned) WHERE state = 'open';
"""


class QueueDB:
    """The connection plumbing the queue, its annotators and its sync share. One object
    serves many threads: each thread keeps its own connection; every call is one transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()  # one connection per thread, reused across calls
        # Writers in this process queue on a lock: SQLite's own busy handler sleeps and polls
        # (up to 100 ms a try), which under 50 concurrent writers costs far more than waiting
        # in line. Other processes are still kept out by SQLite's lock and busy timeout.
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            # With WAL, NORMAL keeps the database consistent on a crash; only a power cut
            # can lose the last transactions, and it corrupts nothing.
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front so readers of the
        pool cannot race each other between their SELECT and their INSERT."""
        db = self._connect()
        with self._write_lock:
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across several SELECTs."""
        db = self._connect()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")
