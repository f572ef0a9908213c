"""Annotators, their login tokens and their web sessions.

A token is shown once, when the annotator is added; only its SHA-256 hash is stored, and
re-adding a name issues a new token and ends that annotator's sessions. People who label
only in Argilla are annotators without a token: they cannot log in here.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time

from annotation.db import QueueDB
from core.errors import AuthError, QueueError

SESSION_TTL_S = 12 * 3600  # a web login lasts a working day
MAX_NAME = 64


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Annotators(QueueDB):
    """Who may label, and how they prove it."""

    def add_annotator(self, name: str) -> str:
        """Register ``name`` and return a fresh login token (only its hash is kept).
        Registering an existing name issues a new token and revokes the old one."""
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise QueueError(f"annotator name must be 1-{MAX_NAME} characters")
        token = secrets.token_urlsafe(24)
        with self._write() as db:
            db.execute(
                "INSERT INTO annotators (name, token_hash, created) VALUES (?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET token_hash = excluded.token_hash",
                (name, hash_token(token), time.time()),
            )
            db.execute("DELETE FROM sessions WHERE annotator = ?", (name,))
        return token

    @staticmethod
    def ensure_annotator(db: sqlite3.Connection, name: str) -> None:
        """An annotator known only from another UI (Argilla): no token, cannot log in here."""
        db.execute(
            "INSERT OR IGNORE INTO annotators (name, token_hash, created) VALUES (?, NULL, ?)",
            (name, time.time()),
        )

    def annotator_for_token(self, token: str) -> str:
        row = self._one("SELECT name FROM annotators WHERE token_hash = ?", (hash_token(token),))
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
        row = self._one(
            "SELECT annotator, csrf FROM sessions WHERE id_hash = ? AND created > ?",
            (hash_token(session), time.time() - SESSION_TTL_S),
        )
        if row is None:
            raise AuthError("no such session")
        return row["annotator"], row["csrf"]

    def close_session(self, session: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (hash_token(session),))

    def annotator_counts(self) -> dict[str, int]:
        """Labels given by every annotator (zero for those who have not started)."""
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
