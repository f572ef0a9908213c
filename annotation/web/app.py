"""The labeling web app for one dataset's queue: pages (``pages``) and a JSON API (``api``),
routers whose dependencies read ``request.app.state`` (``deps``), behind security headers
and a body-size guard (``security``). Every route except the login page needs a session
cookie or a bearer token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from annotation.db import Busy
from annotation.queue import Queue
from annotation.web import api, pages
from annotation.web.deps import CSRFError, LoginRequired, ServerState
from annotation.web.limits import DEFAULT_MAX_BODY
from annotation.web.security import BodyLimit, SecurityHeaders
from core.errors import QueueError

HERE = Path(__file__).parent


def create_app(
    queue: Queue,
    *,
    dataset: str,
    secure_cookies: bool = False,
    sync: Callable[[], object] | None = None,
    sync_every_s: float = 30.0,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The app for one dataset's queue. ``sync`` (queue the routed items of new versions)
    runs at most every ``sync_every_s`` seconds; request bodies over ``max_body`` bytes are
    refused unread; ``secure_cookies`` sends cookies over HTTPS only."""
    app = FastAPI(
        title=f"traitdose annotation: {dataset}",
        description="Label routed preference pairs. Authenticate with a session cookie or a bearer token.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by the API router, behind auth
    )
    app.state.server = ServerState(
        queue=queue,
        dataset=dataset,
        templates=_templates(),
        secure_cookies=secure_cookies,
        sync=sync,
        sync_every_s=sync_every_s,
    )
    # Routes are matched in order: the calls made on every label first, the static files
    # (fetched once, then cached by the browser) last.
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BodyLimit, max_body=max_body)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the guard's answers get the headers too
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(CSRFError, _csrf)
    app.add_exception_handler(QueueError, _bad_input)
    app.add_exception_handler(Busy, _busy)
    return app


def _templates() -> Jinja2Templates:
    """Templates compiled once: no file checks per render (they change only with the code).
    Static assets are linked with a hash of their content, so browsers may cache them
    (``security.STATIC_CACHE``) and still fetch a changed file at once."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    templates.env.globals["static_version"] = digest.hexdigest()[:12]
    return templates


async def _login_required(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "login required"}, status_code=401)
    return RedirectResponse("/login", status_code=303)


async def _csrf(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "missing or bad CSRF token"}, status_code=403)


async def _bad_input(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def _busy(request: Request, exc: Exception) -> Response:
    # Another process held the queue's write lock past SQLite's timeout: nothing was written.
    return JSONResponse({"detail": "the queue is busy; try again"}, status_code=503)
