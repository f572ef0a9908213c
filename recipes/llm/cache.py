"""The LLM cache: one SQLite file (WAL), one row per completed call.

Keyed by a hash of the endpoint (normalised, without credentials: see
:func:`core.urls.endpoint_key`), the model, the messages and every sampling parameter (the
per-item seed included, so repeated samples of one prompt stay distinct): the same model
name on another server is another model. Results are buffered by :meth:`LLMCache.put` and
written by :meth:`LLMCache.flush` in one transaction; the client flushes once per event-loop
turn (every call that completed in that turn in one commit), so a run killed at any point
(SIGKILL included) loses at most the calls of the turn it died in, and the next run repeats
none of the others.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cache_key(model: str, messages: list[dict[str, str]], params: dict[str, Any], endpoint: str = "") -> str:
    blob = json.dumps(
        {"endpoint": endpoint, "model": model, "messages": messages, "params": params}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Cached:
    text: str
    prompt_tokens: int
    completion_tokens: int


class LLMCache:
    """Completed calls by key. Used from one thread (the event loop) per process;
    several processes may share the file (WAL, busy timeout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a killed process (only an OS crash can lose the tail).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, model TEXT, text TEXT NOT NULL,"
            " prompt_tokens INTEGER, completion_tokens INTEGER, created REAL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, value TEXT)")
        self._pending: dict[str, tuple[str, Cached]] = {}  # key → (model, result), not yet written

    def flag(self, name: str) -> str | None:
        """A remembered fact about an endpoint (e.g. that it has no ``response_format``)."""
        row = self._db.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_flag(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO flags (name, value) VALUES (?, ?)", (name, value))

    def get(self, key: str) -> Cached | None:
        if key in self._pending:
            return self._pending[key][1]
        row = self._db.execute(
            "SELECT text, prompt_tokens, completion_tokens FROM calls WHERE key = ?", (key,)
        ).fetchone()
        return Cached(*row) if row else None

    def put(self, key: str, model: str, result: Cached) -> None:
        """Buffer a result; :meth:`flush` writes it."""
        self._pending[key] = (model, result)

    def flush(self) -> None:
        """Write every buffered result in one transaction (one commit, not one per call)."""
        if not self._pending:
            return
        now = time.time()
        rows = [
            (key, model, r.text, r.prompt_tokens, r.completion_tokens, now)
            for key, (model, r) in self._pending.items()
        ]
        with self._db:  # BEGIN ... COMMIT
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO calls (key, model, text, prompt_tokens, completion_tokens, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT count(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self._db.close()
