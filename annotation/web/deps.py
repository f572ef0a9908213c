"""What every route depends on, read from ``request.app.state``: the queue, the dataset,
the templates, and who is asking.

Auth: an annotator logs in with the token ``traitdose annotate add-annotator`` printed;
the session lives in an HttpOnly, SameSite=Strict cookie and in the queue's SQLite file
(hashed). Cookie-authenticated POSTs must carry the session's CSRF token (form field
``csrf`` or header ``X-CSRF-Token``). API clients may instead send ``Authorization:
Bearer <token>``, which a browser never sends on its own, so those calls need no CSRF token.

Speed: every route and dependency is ``async def`` and calls the queue on the event loop.
Its statements are indexed and take well under a millisecond (WAL), far less than handing
each request to a worker thread and back. The one wait that could stall the loop, another
writer holding the lock, is bounded: past ``LOOP_PATIENCE_S`` the call moves to a worker
thread, which waits as long as SQLite's own timeout.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency annotations at runtime.

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from annotation.db import Busy
from annotation.queue import Queue, Task
from core.errors import AuthError

T = TypeVar("T")
LOOP_PATIENCE_S = 0.01  # the event loop waits this long for the write lock, then hands off
USER_KEY = "traitdose_user"  # the body-size guard leaves who it identified here (scope state)

SESSION_COOKIE = "td_session"
LOGIN_COOKIE = "td_login"  # login-form CSRF (double submit): the form is a POST too


class LoginRequired(Exception):
    """No valid session or token."""


class CSRFError(Exception):
    """A cookie-authenticated POST without the session's CSRF token."""


@dataclass(frozen=True)
class User:
    name: str
    csrf: str | None  # None for bearer-token clients


@dataclass
class ServerState:
    """Everything the routes share; ``create_app`` puts it on ``app.state.server``."""

    queue: Queue
    dataset: str
    templates: Jinja2Templates
    secure_cookies: bool = False
    sync: Callable[[], object] | None = None
    sync_every_s: float = 30.0
    last_sync: float = 0.0

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` (a queue method) on the event loop; if another writer
        holds the lock past ``LOOP_PATIENCE_S``, again in a worker thread that waits longer."""
        self.queue.set_patience(LOOP_PATIENCE_S)  # this (the loop's) thread only
        try:
            return fn(*args, **kwargs)
        except Busy:
            return await run_in_threadpool(fn, *args, **kwargs)

    async def next_task(self, annotator: str) -> Task | None:
        """The annotator's next item; now and then queue newly routed items first, so a run
        that routes items while the server is up reaches annotators without a restart."""
        if self.sync is not None and time.monotonic() - self.last_sync >= self.sync_every_s:
            self.last_sync = time.monotonic()
            await run_in_threadpool(self.sync)  # reads the store: off the loop
        return await self.call(self.queue.next_task, annotator)


async def server(request: Request) -> ServerState:
    return request.app.state.server


def identify(queue: Queue, headers: Headers) -> User | None:
    """Who sent these headers (bearer token or session cookie), or None. Also used by the
    body-size guard, which must know before it reads a body."""
    auth = headers.get("authorization", "")
    try:
        if auth.lower().startswith("bearer "):
            return User(queue.annotator_for_token(auth[7:].strip()), None)
        session = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if not session:
            return None
        name, csrf = queue.session(session)
        return User(name, csrf)
    except AuthError:
        return None


async def current_user(request: Request) -> User:
    # async on purpose: a sub-millisecond indexed lookup, not worth a thread hop per request
    who = request.scope.get("state", {}).get(USER_KEY) or identify(
        request.app.state.server.queue, request.headers
    )
    if who is None:
        raise LoginRequired
    return who


def check_csrf(who: User, sent: str | None) -> None:
    if who.csrf is not None and not (sent and secrets.compare_digest(sent, who.csrf)):
        raise CSRFError


State = Annotated[ServerState, Depends(server)]
Who = Annotated[User, Depends(current_user)]
