"""The annotation queue's SQLite file: its schema and one connection per thread.

One SQLite file (WAL) per dataset, beside its versions. Tables: ``items`` (what needs
labels, with the item as JSON), ``annotators`` (token stored as a SHA-256 hash),
``assignments`` (who was shown what, in which A/B order), ``responses`` (one per item
and annotator, whatever UI it came from), ``sessions`` (web logins), ``synced``
(versions whose routed items are queued), ``totals`` (queue-wide progress, one row kept
by triggers) and ``standing`` (each annotator's progress and place in the pool, one row
each, kept by triggers). Every write runs in one ``BEGIN IMMEDIATE`` transaction, so 50 annotators
asking for work at once never get the same slot twice. Every query a web request makes
is answered from an index (no scan of the queue), which keeps a call well under a
millisecond of SQLite time however many items are queued.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# One row per annotator, kept by triggers like ``totals``: their progress is one row read, and
# "what next?" starts its walk of the pool at their cursor instead of the queue's first item.
# An item leaves someone's pool for good once they answer or skip it (neither is ever undone;
# items only fill up), so ``closed_to_me`` moves only when they do that to an open item or
# one of those items fills up; and every open item before ``cursor`` stays out of their pool.
_STANDING = """
CREATE TABLE IF NOT EXISTS standing (
    annotator TEXT PRIMARY KEY REFERENCES annotators(name),
    labels INTEGER NOT NULL DEFAULT 0,       -- responses by this annotator
    closed_to_me INTEGER NOT NULL DEFAULT 0, -- open items they answered or skipped
    cursor INTEGER NOT NULL DEFAULT 0        -- every open item with seq < cursor is one of those
);
INSERT INTO standing (annotator, labels, closed_to_me)  -- annotators from files made before it
    SELECT a.name,
        (SELECT COUNT(*) FROM responses r WHERE r.annotator = a.name),
        (SELECT COUNT(*) FROM items i WHERE i.filled < i.k AND i.id IN (
            SELECT item_id FROM responses WHERE annotator = a.name UNION
            SELECT item_id FROM assignments WHERE annotator = a.name AND state = 'skipped'))
    FROM annotators a WHERE a.name NOT IN (SELECT annotator FROM standing);
CREATE TRIGGER IF NOT EXISTS standing_annotator_added AFTER INSERT ON annotators BEGIN
    INSERT OR IGNORE INTO standing (annotator) VALUES (new.name);
END;
-- A response is inserted before its item's ``filled`` moves: an open item joins the set here,
-- and leaves it (for everyone who closed it) below if this response filled it.
CREATE TRIGGER IF NOT EXISTS standing_response AFTER INSERT ON responses BEGIN
    UPDATE standing SET labels = labels + 1, closed_to_me = closed_to_me + (
        (SELECT filled < k FROM items WHERE id = new.item_id) AND NOT EXISTS (
            SELECT 1 FROM assignments WHERE item_id = new.item_id AND annotator = new.annotator
            AND state = 'skipped'))
    WHERE annotator = new.annotator;
END;
CREATE TRIGGER IF NOT EXISTS standing_skip AFTER UPDATE OF state ON assignments
WHEN (old.state = 'skipped') != (new.state = 'skipped') BEGIN
    UPDATE standing SET closed_to_me = closed_to_me
        + (CASE WHEN new.state = 'skipped' THEN 1 ELSE -1 END) * (
            (SELECT filled < k FROM items WHERE id = new.item_id) AND NOT EXISTS (
                SELECT 1 FROM responses WHERE item_id = new.item_id AND annotator = new.annotator))
    WHERE annotator = new.annotator;
END;
CREATE TRIGGER IF NOT EXISTS standing_item_filled AFTER UPDATE OF filled, k ON items
WHEN (old.filled < old.k) != (new.filled < new.k) BEGIN
    UPDATE standing SET closed_to_me = closed_to_me + (CASE WHEN new.filled < new.k THEN 1 ELSE -1 END)
    WHERE annotator IN (SELECT annotator FROM responses WHERE item_id = new.id UNION
                        SELECT annotator FROM assignments WHERE item_id = new.id AND state = 'skipped');
END;
"""

_SCHEMA = (
    """
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
-- one annotator's answers (covering: "how many left for me" reads no table rows)
DROP INDEX IF EXISTS responses_annotator;
CREATE INDEX IF NOT EXISTS responses_mine ON responses(annotator, item_id);
-- the pool: items still short of labels, in queue order (small however many items fill up)
CREATE INDEX IF NOT EXISTS items_open ON items(seq) WHERE filled < k;
CREATE INDEX IF NOT EXISTS items_open_ids ON items(id) WHERE filled < k;  -- "is it open?" from the index
CREATE INDEX IF NOT EXISTS assignments_open ON assignments(item_id) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS assignments_stale ON assignments(assigned) WHERE state = 'open';
-- one annotator's open task and skips, without a scan of everyone's assignments
CREATE INDEX IF NOT EXISTS assignments_mine ON assignments(annotator, state, assigned, item_id);
-- Queue-wide progress, kept by triggers in the same transaction as every change to items, so
-- showing it costs one row read instead of a scan of the whole queue on every page and call.
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    items INTEGER NOT NULL,
    complete INTEGER NOT NULL,         -- items with filled >= k
    slots INTEGER NOT NULL,            -- SUM(k)
    filled INTEGER NOT NULL            -- SUM(MIN(filled, k))
);
INSERT OR IGNORE INTO totals (id, items, complete, slots, filled)  -- once, for files made before it
    SELECT 1, COUNT(*), COALESCE(SUM(filled >= k), 0), COALESCE(SUM(k), 0),
           COALESCE(SUM(MIN(filled, k)), 0) FROM items;
CREATE TRIGGER IF NOT EXISTS totals_item_added AFTER INSERT ON items BEGIN
    UPDATE totals SET items = items + 1, complete = complete + (new.filled >= new.k),
        slots = slots + new.k, filled = filled + MIN(new.filled, new.k) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_item_filled AFTER UPDATE OF filled, k ON items BEGIN
    UPDATE totals SET complete = complete + (new.filled >= new.k) - (old.filled >= old.k),
        slots = slots + new.k - old.k,
        filled = filled + MIN(new.filled, new.k) - MIN(old.filled, old.k) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_item_removed AFTER DELETE ON items BEGIN
    UPDATE totals SET items = items - 1, complete = complete - (old.filled >= old.k),
        slots = slots - old.k, filled = filled - MIN(old.filled, old.k) WHERE id = 1;
END;
"""
    + _STANDING
)
PATIENCE_S = 30.0  # how long a write waits for the write lock, unless its thread says otherwise


class Busy(Exception):
    """The write lock was not free within this thread's patience; nothing was written."""


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
        # One transaction: the totals table, its first count and its triggers appear together.
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # Statements are compiled once per connection and reused (the module's statement
            # cache), so the connection is kept for the thread's life.
            db = sqlite3.connect(self.path, timeout=PATIENCE_S, isolation_level=None, cached_statements=256)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            # With WAL, NORMAL keeps the database consistent on a crash; only a power cut
            # can lose the last transactions, and it corrupts nothing.
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            self._local.patience = PATIENCE_S
        return db

    def set_patience(self, seconds: float) -> None:
        """How long this thread's writes wait for the write lock (this process's and
        SQLite's) before raising :class:`Busy`. The web server's event loop waits briefly
        and hands a blocked write to a worker thread, which waits the full ``PATIENCE_S``."""
        db = self._connect()
        if self._local.patience != seconds:  # asked on every call from the loop: cheap when set
            db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            self._local.patience = seconds

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front so readers of the
        pool cannot race each other between their SELECT and their INSERT."""
        db = self._connect()
        if not self._write_lock.acquire(timeout=self._local.patience):
            raise Busy(f"{self.path}: another writer in this process held the lock")
        try:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise Busy(f"{self.path}: {exc}") from exc  # locked past the busy timeout
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            self._write_lock.release()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across several SELECTs."""
        db = self._connect()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        """One row of one SELECT: a single statement is its own snapshot, so no BEGIN/COMMIT."""
        return self._connect().execute(sql, params).fetchone()
