"""The label pool of one dataset: items that need labels, who was shown what, their answers.

Each item needs ``k`` labels from distinct annotators; nobody sees an item twice; an
assignment unanswered for ``STALE_AFTER_S`` goes back to the pool. Labels are stored in
item terms, not screen terms: ``chosen`` (the item's chosen response is better),
``rejected``, ``tie`` or ``both_bad``; the A/B order each person saw is stored with their
response. The file and its schema: ``annotation.db``; annotators and logins:
``annotation.auth``; routed items entering the pool: ``annotation.sync``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from annotation.auth import Annotators
from core.errors import AuthError, QueueError  # noqa: F401  (AuthError: importable beside QueueError)
from core.store import Store

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
QUEUE_FILE = "annotation.sqlite"

# The open pool for annotator :who — items still short of labels that :who has neither
# answered nor skipped. "What next?" walks it in queue order; "how many are left for me?"
# counts it as its complement (open items less the ones :who answered or skipped).
OPEN_POOL = """
    i.filled < i.k
    AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.item_id = i.id AND r.annotator = :who)
    AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator = :who
                    AND a.state = 'skipped')
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


class Queue(Annotators):
    """The queue of one dataset (its annotators and logins come with it: ``Annotators``)."""

    def __init__(self, path: str | Path, *, stale_after_s: float = STALE_AFTER_S, seed: int | None = None):
        super().__init__(path)
        self.stale_after_s = stale_after_s
        self._rng = random.Random(seed)

    @classmethod
    def for_dataset(cls, store: Store, dataset: str, **kwargs: Any) -> Queue:
        return cls(queue_path(store, dataset), **kwargs)

    # ---- items -------------------------------------------------------------------------
    def add_items(self, table: pa.Table, *, kind: str, source: str, k: int = DEFAULT_K) -> int:
        """Queue items (an item-schema table); ids already queued are left as they are."""
        if k < 1:
            raise QueueError(f"k must be at least 1, got {k}")
        now = time.time()
        rows = table.to_pylist()
        with self._write() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
            cur = db.executemany(
                "INSERT OR IGNORE INTO items (id, seq, kind, source, k, item, added) VALUES (?,?,?,?,?,?,?)",
                [
                    (row["id"], seq + i + 1, kind, source, k, json.dumps(row, default=str), now)
                    for i, row in enumerate(rows)
                ],
            )
            return cur.rowcount  # rows inserted (total_changes would count the totals trigger too)

    def items(self) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT id, kind, source, k, item FROM items ORDER BY seq").fetchall()
        return [{**dict(r), "item": json.loads(r["item"])} for r in rows]

    def synced_versions(self) -> set[str]:
        """Versions (DATASET@vN) whose routed items are already queued."""
        with self._read() as db:
            return {r[0] for r in db.execute("SELECT version FROM synced")}

    def mark_synced(self, ref: str, items: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO synced (version, items, at) VALUES (?,?,?)", (ref, items, time.time())
            )

    # ---- the work ------------------------------------------------------------------------
    def next_task(self, annotator: str) -> Task | None:
        """The annotator's open task, or a new one: an item in their open pool whose open
        slots are not all handed out."""
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
            cursor = self._advance_cursor(db, annotator)
            row = db.execute(
                f"""SELECT i.id, i.item FROM items i INDEXED BY items_open
                WHERE i.seq >= :cursor AND {OPEN_POOL}
                  AND i.filled + (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id
                                  AND a.state = 'open') < i.k
                ORDER BY i.seq LIMIT 1""",
                {"who": annotator, "cursor": cursor},
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

    @staticmethod
    def _advance_cursor(db: sqlite3.Connection, annotator: str) -> int:
        """Move the annotator's cursor to their first open pool item (or past the last item)
        and return it: the walk for their next item starts there, not at the queue's head,
        so it does not grow with the items they already answered."""
        cursor = db.execute("SELECT cursor FROM standing WHERE annotator = ?", (annotator,)).fetchone()[0]
        first = db.execute(
            f"""SELECT i.seq FROM items i INDEXED BY items_open WHERE i.seq >= :cursor AND {OPEN_POOL}
            ORDER BY i.seq LIMIT 1""",
            {"who": annotator, "cursor": cursor},
        ).fetchone()
        moved = first[0] if first else db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM items").fetchone()[0]
        if moved != cursor:
            db.execute("UPDATE standing SET cursor = ? WHERE annotator = ?", (moved, annotator))
        return moved

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
            swapped = bool(row["swapped"])
            added = _insert_response(
                db, Response(item_id, annotator, label, swapped, list(flags), note.strip(), "web")
            )
            db.execute(
                "UPDATE assignments SET state = 'done' WHERE item_id = ? AND annotator = ?",
                (item_id, annotator),
            )
            return added

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
                added += _insert_response(db, r)
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
        left for them: the open items less those they answered or skipped. One row of each of
        two tables kept by triggers (``totals``, ``standing``): no scan of the queue or of
        their answers."""
        if annotator is None:
            t = self._one("SELECT items, complete, slots, filled FROM totals")
            return {"items": t[0], "complete": t[1], "slots": t[2], "filled": t[3]}
        t = self._one(
            "SELECT t.items, t.complete, t.slots, t.filled, COALESCE(s.labels, 0), "
            "COALESCE(s.closed_to_me, 0) FROM totals t LEFT JOIN standing s ON s.annotator = ?",
            (annotator,),
        )
        out = {"items": t[0], "complete": t[1], "slots": t[2], "filled": t[3]}
        return out | {"mine": t[4], "left_for_me": t[0] - t[1] - t[5]}


def _insert_response(db: sqlite3.Connection, r: Response) -> bool:
    """The one way a response enters the queue (web or Argilla): at most one per item and
    annotator, and the item's ``filled`` count moves with it. True when it was new."""
    cur = db.execute(
        "INSERT OR IGNORE INTO responses (item_id, annotator, label, swapped, flags, note, origin, created) "
        "VALUES (?,?,?,?,?,?,?,?)",
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
    return cur.rowcount == 1
