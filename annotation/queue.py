"""The annotation queue: one SQLite file (WAL) per dataset, beside its versions.

Tables: ``items`` (what needs labels, with the item as JSON), ``annotators`` (token
stored as a SHA-256 hash), ``assignments`` (who was shown what, in which A/B order),
``responses`` (one per item and annotator, whatever UI it came from) and ``sessions``
(web logins). Every write runs in one ``BEGIN IMMEDIATE`` transaction, so 50 annotators
asking for work at once never get the same slot twice.

Labels are stored in item terms, not screen terms: ``chosen`` (the item's chosen
response is better), ``rejected``, ``tie`` or ``both_bad``; the A/B order each person
saw is stored with their response.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from core.errors import AuthError, QueueError
from core.store import Store, Version

LABELS = ("chosen", "rejected", "tie", "both_bad")
CHOICES = ("A", "B", "tie", "both_bad")  # what the screen offers, in key order 1-4
FLAGS = {
    "falsehood": "contains a falsehood",
    "sycophantic": "sycophantic",
    "resists_correction": "resists correction",
    "caves_to_wrong_correction": "caves to a wrong correction",
}
DEFAULT_K = 2
STALE_AFTER_S = 30 * 60  # an assignment nobody answered for this long goes back to the pool
SESSION_TTL_S = 12 * 3600  # a web login lasts a working day
QUEUE_FILE = "annotation.sqlite"

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


@dataclass(frozen=True)
class Task:
    """One item shown to one annotator, in that annotator's A/B order."""

    item_id: str
    swapped: bool
    item: dict[str, Any]

    @property
    def response_a(self) -> list[dict[str, str]]:
        return self.item["rejected"] if self.swapped else self.item["chosen"]

    @property
    def response_b(self) -> list[dict[str, str]]:
        return self.item["chosen"] if self.swapped else self.item["rejected"]


@dataclass(frozen=True)
class Response:
    item_id: str
    annotator: str
    label: str
    swapped: bool | None
    flags: list[str]
    note: str
    origin: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def choice_to_label(choice: str, swapped: bool) -> str:
    """Screen answer (A/B/tie/both_bad) → item label (chosen/rejected/tie/both_bad)."""
    if choice not in CHOICES:
        raise QueueError(f"choice must be one of {list(CHOICES)}, got {choice!r}")
    if choice in ("tie", "both_bad"):
        return choice
    a_is_chosen = not swapped
    return "chosen" if (choice == "A") == a_is_chosen else "rejected"


def queue_path(store: Store, dataset: str) -> Path:
    return store.root / dataset / QUEUE_FILE


class Queue:
    """The queue of one dataset. One ``Queue`` serves many threads: each thread keeps its
    own SQLite connection, and every public call is one transaction."""

    def __init__(self, path: str | Path, *, stale_after_s: float = STALE_AFTER_S, seed: int | None = None):
        self.path = Path(path)
        self.stale_after_s = stale_after_s
        self._rng = random.Random(seed)
        self._local = threading.local()  # one connection per thread, reused across calls
        # Writers in this process queue on a lock: SQLite's own busy handler sleeps and polls
        # (up to 100 ms a try), which under 50 concurrent writers costs far more than waiting
        # in line. Other processes are still kept out by SQLite's lock and busy timeout.
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)

    @classmethod
    def for_dataset(cls, store: Store, dataset: str, **kwargs: Any) -> Queue:
        return cls(queue_path(store, dataset), **kwargs)

    # ---- plumbing ----------------------------------------------------------------------
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

    # ---- items -------------------------------------------------------------------------
    def add_items(self, table: pa.Table, *, kind: str, source: str, k: int = DEFAULT_K) -> int:
        """Queue items (an item-schema table); ids already queued are left as they are."""
        if k < 1:
            raise QueueError(f"k must be at least 1, got {k}")
        now = time.time()
        rows = table.to_pylist()
        with self._write() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO items (id, seq, kind, source, k, item, added) VALUES (?,?,?,?,?,?,?)",
                [
                    (row["id"], seq + i + 1, kind, source, k, json.dumps(row, default=str), now)
                    for i, row in enumerate(rows)
                ],
            )
            return db.total_changes - before

    def sync_routed(self, store: Store, dataset: str, *, k: int | None = None) -> int:
        """Queue the routed items of every version not yet synced; returns items added.

        This is how routed items enter the queue automatically: every annotate command
        syncs first, so a ``traitdose run`` that routes items needs no extra step. ``k``
        defaults to the recipe's ``annotation.k`` recorded in the manifest, else 2.
        """
        with self._read() as db:
            done = {r[0] for r in db.execute("SELECT version FROM synced")}
        added = 0
        for version in store.versions(dataset):
            if version.ref in done:
                continue
            routed = version.side("routed")
            item_k = k or _manifest_k(version)
            n = self.add_items(routed, kind="routed", source=version.ref, k=item_k) if routed.num_rows else 0
            with self._write() as db:
                db.execute(
                    "INSERT OR IGNORE INTO synced (version, items, at) VALUES (?,?,?)",
                    (version.ref, n, time.time()),
                )
            added += n
        return added

    def items(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT id, kind, source, k, item FROM items ORDER BY seq").fetchall()
        return [{**dict(r), "item": json.loads(r["item"])} for r in rows]

    # ---- annotators and sessions ---------------------------------------------------------
    def add_annotator(self, name: str) -> str:
        """Register ``name`` and return a fresh login token (only its hash is kept).
        Registering an existing name issues a new token and revokes the old one."""
        name = name.strip()
        if not name or len(name) > 64:
            raise QueueError("annotator name must be 1-64 characters")
        token = secrets.token_urlsafe(24)
        with self._write() as db:
            db.execute(
                "INSERT INTO annotators (name, token_hash, created) VALUES (?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET token_hash = excluded.token_hash",
                (name, hash_token(token), time.time()),
            )
            db.execute("DELETE FROM sessions WHERE annotator = ?", (name,))
        return token

    def ensure_annotator(self, db: sqlite3.Connection, name: str) -> None:
        """An annotator known only from another UI (Argilla): no token, cannot log in here."""
        db.execute(
            "INSERT OR IGNORE INTO annotators (name, token_hash, created) VALUES (?, NULL, ?)",
            (name, time.time()),
        )

    def annotator_for_token(self, token: str) -> str:
        with self._read() as db:
            row = db.execute(
                "SELECT name FROM annotators WHERE token_hash = ?", (hash_token(token),)
            ).fetchone()
        if row is None:
            raise AuthError("unknown token")
        return row["name"]

    def open_session(self, token: str) -> tuple[str, str, str]:
        """Log in with a token; returns (annotator, session id, CSRF token)."""
        annotator = self.annotator_for_token(token)
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._write() as db:
            db.execute(
                "INSERT INTO sessions (id_hash, annotator, csrf, created) VALUES (?,?,?,?)",
                (hash_token(session), annotator, csrf, time.time()),
            )
        return annotator, session, csrf

    def session(self, session: str) -> tuple[str, str]:
        """(annotator, CSRF token) of a live session (sessions last ``SESSION_TTL_S``)."""
        with self._read() as db:
            row = db.execute(
                "SELECT annotator, csrf FROM sessions WHERE id_hash = ? AND created > ?",
                (hash_token(session), time.time() - SESSION_TTL_S),
            ).fetchone()
        if row is None:
            raise AuthError("no such session")
        return row["annotator"], row["csrf"]

    def close_session(self, session: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (hash_token(session),))

    # ---- the work ------------------------------------------------------------------------
    def next_task(self, annotator: str) -> Task | None:
        """The annotator's open task, or a new one: an item that still needs labels, that
        they have never been shown, and whose open slots are not all handed out."""
        now = time.time()
        with self._write() as db:
            self._require_annotator(db, annotator)
            db.execute(
                "UPDATE assignments SET state = 'released' WHERE state = 'open' AND assigned < ?",
                (now - self.stale_after_s,),
            )
            row = db.execute(
                "SELECT a.item_id, a.swapped, i.item FROM assignments a JOIN items i ON i.id = a.item_id "
                "WHERE a.annotator = ? AND a.state = 'open' ORDER BY a.assigned LIMIT 1",
                (annotator,),
            ).fetchone()
            if row is not None:
                return Task(row["item_id"], bool(row["swapped"]), json.loads(row["item"]))
            row = db.execute(
                """
                SELECT i.id, i.item FROM items i INDEXED BY items_open
                WHERE i.filled < i.k
                  AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator = :who
                                  AND a.state != 'released')
                  AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.item_id = i.id AND r.annotator = :who)
                  AND i.filled + (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id
                                  AND a.state = 'open') < i.k
                ORDER BY i.seq LIMIT 1
                """,
                {"who": annotator},
            ).fetchone()
            if row is None:
                return None
            swapped = self._rng.random() < 0.5
            db.execute(
                "INSERT OR REPLACE INTO assignments (item_id, annotator, swapped, state, assigned) "
                "VALUES (?,?,?,'open',?)",
                (row["id"], annotator, int(swapped), now),
            )
            return Task(row["id"], swapped, json.loads(row["item"]))

    def submit(
        self,
        annotator: str,
        item_id: str,
        choice: str,
        *,
        flags: Sequence[str] = (),
        note: str = "",
    ) -> bool:
        """Record the annotator's answer to an item they were shown. Returns False when
        they had already answered it (a resubmit changes nothing)."""
        unknown = [f for f in flags if f not in FLAGS]
        if unknown:
            raise QueueError(f"unknown flag {unknown[0]!r}; known: {', '.join(FLAGS)}")
        with self._write() as db:
            self._require_annotator(db, annotator)
            row = db.execute(
                "SELECT swapped, state FROM assignments WHERE item_id = ? AND annotator = ?",
                (item_id, annotator),
            ).fetchone()
            if row is None or row["state"] == "skipped":
                raise QueueError(f"item {item_id!r} was not assigned to {annotator!r}")
            label = choice_to_label(choice, bool(row["swapped"]))
            cur = db.execute(
                "INSERT OR IGNORE INTO responses (item_id, annotator, label, swapped, flags, note, origin, "
                "created) VALUES (?,?,?,?,?,?,'web',?)",
                (
                    item_id,
                    annotator,
                    label,
                    row["swapped"],
                    json.dumps(sorted(set(flags))),
                    note.strip(),
                    time.time(),
                ),
            )
            db.execute(
                "UPDATE assignments SET state = 'done' WHERE item_id = ? AND annotator = ?",
                (item_id, annotator),
            )
            if cur.rowcount == 1:
                db.execute("UPDATE items SET filled = filled + 1 WHERE id = ?", (item_id,))
            return cur.rowcount == 1

    def skip(self, annotator: str, item_id: str) -> None:
        """Hand the item back to the pool; this annotator will not be shown it again."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE assignments SET state = 'skipped' "
                "WHERE item_id = ? AND annotator = ? AND state = 'open'",
                (item_id, annotator),
            )
            if cur.rowcount != 1:
                raise QueueError(f"item {item_id!r} is not an open task of {annotator!r}")

    def record_external(self, responses: Sequence[Response]) -> int:
        """Store responses collected elsewhere (Argilla); returns how many were new."""
        with self._write() as db:
            known = {r[0] for r in db.execute("SELECT id FROM items")}
            added = 0
            for r in responses:
                if r.item_id not in known:
                    raise QueueError(f"response for item {r.item_id!r}, which is not in this queue")
                if r.label not in LABELS:
                    raise QueueError(
                        f"item {r.item_id!r}: label must be one of {list(LABELS)}, got {r.label!r}"
                    )
                self.ensure_annotator(db, r.annotator)
                cur = db.execute(
                    "INSERT OR IGNORE INTO responses (item_id, annotator, label, swapped, flags, note, "
                    "origin, created) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        r.item_id,
                        r.annotator,
                        r.label,
                        None if r.swapped is None else int(r.swapped),
                        json.dumps(sorted(set(r.flags))),
                        r.note,
                        r.origin,
                        time.time(),
                    ),
                )
                if cur.rowcount == 1:
                    db.execute("UPDATE items SET filled = filled + 1 WHERE id = ?", (r.item_id,))
                added += cur.rowcount
            return added

    # ---- reading results -----------------------------------------------------------------
    def responses(self) -> list[Response]:
        with self._read() as db:
            rows = db.execute(
                "SELECT r.* FROM responses r JOIN items i ON i.id = r.item_id ORDER BY i.seq, r.id"
            ).fetchall()
        return [
            Response(
                r["item_id"],
                r["annotator"],
                r["label"],
                None if r["swapped"] is None else bool(r["swapped"]),
                json.loads(r["flags"]),
                r["note"],
                r["origin"],
            )
            for r in rows
        ]

    def progress(self, annotator: str | None = None) -> dict[str, int]:
        """Queue-wide slots filled, and (given an annotator) their own count and what is
        left for them."""
        with self._read() as db:
            items, complete, slots, filled = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(filled >= k), 0), COALESCE(SUM(k), 0), "
                "COALESCE(SUM(MIN(filled, k)), 0) FROM items"
            ).fetchone()
            out = {"items": items, "complete": complete, "slots": slots, "filled": filled}
            if annotator is not None:
                mine = db.execute(
                    "SELECT COUNT(*) FROM responses WHERE annotator = ?", (annotator,)
                ).fetchone()[0]
                left = db.execute(
                    """SELECT COUNT(*) FROM items i INDEXED BY items_open
                    WHERE i.filled < i.k
                      AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.item_id = i.id AND r.annotator = :who)
                      AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id
                                      AND a.annotator = :who AND a.state = 'skipped')""",
                    {"who": annotator},
                ).fetchone()[0]
                out |= {"mine": mine, "left_for_me": left}
            return out

    def annotator_counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute(
                "SELECT a.name, COUNT(r.id) FROM annotators a LEFT JOIN responses r ON r.annotator = a.name "
                "GROUP BY a.name ORDER BY a.name"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    @staticmethod
    def _require_annotator(db: sqlite3.Connection, annotator: str) -> None:
        if db.execute("SELECT 1 FROM annotators WHERE name = ?", (annotator,)).fetchone() is None:
            raise QueueError(
                f"unknown annotator {annotator!r}; add one with `traitdose annotate add-annotator`"
            )


def _manifest_k(version: Version) -> int:
    return version.manifest.annotation_k or DEFAULT_K
