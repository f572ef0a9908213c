"""The labeling web app: server-rendered pages (Jinja2, autoescaped) and a small JSON API.

Auth: an annotator logs in with the token ``traitdose annotate add-annotator`` printed;
the session lives in an HttpOnly, SameSite=Strict cookie and in the queue's SQLite
file (hashed). Cookie-authenticated POSTs must carry the session's CSRF token (form
field ``csrf`` or header ``X-CSRF-Token``). API clients may instead send
``Authorization: Bearer <token>``, which a browser never sends on its own, so those
calls need no CSRF token. Every route except the login page needs one or the other.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime,
# and `Who` below is local to create_app.

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders

from annotation.queue import CHOICES, FLAGS, AuthError, Queue, QueueError, Task
from core.traits import TRAITS

HERE = Path(__file__).parent
SESSION_COOKIE = "td_session"
LOGIN_COOKIE = "td_login"  # login-form CSRF (double submit): the form is a POST too
SECURITY_HEADERS = {
    # No inline script or style at all: even markup that slipped through escaping could not run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class LoginRequired(Exception):
    """No valid session or token."""


class CSRFError(Exception):
    """A cookie-authenticated POST without the session's CSRF token."""


@dataclass(frozen=True)
class User:
    name: str
    csrf: str | None  # None for bearer-token clients


# ---- API models (these make the OpenAPI document) --------------------------------------
class Message(BaseModel):
    role: str
    content: str


class Progress(BaseModel):
    items: int
    complete: int
    slots: int
    filled: int
    mine: int
    left_for_me: int


class TaskOut(BaseModel):
    item_id: str | None = Field(description="null when nothing is left for this annotator")
    domain: str | None = None
    trait: str | None = None
    trait_definition: str | None = None
    prompt: list[Message] = []
    response_a: list[Message] = []
    response_b: list[Message] = []
    progress: Progress


class SubmitIn(BaseModel):
    item_id: str
    choice: Literal["A", "B", "tie", "both_bad"]
    flags: list[str] = []
    note: str = Field("", max_length=4000)


class SkipIn(BaseModel):
    item_id: str


class SubmitOut(BaseModel):
    recorded: bool = Field(description="false when this annotator had already answered the item")
    progress: Progress


def create_app(
    queue: Queue,
    *,
    dataset: str,
    secure_cookies: bool = False,
    sync: Callable[[], object] | None = None,
    sync_every_s: float = 30.0,
) -> FastAPI:
    """The app for one dataset's queue. ``sync`` (queue the routed items of new versions)
    runs at most every ``sync_every_s`` seconds, so a run that routes items while the
    server is up reaches annotators without a restart."""
    last_sync = [time.monotonic()]

    def next_task(annotator: str) -> Task | None:
        if sync is not None and time.monotonic() - last_sync[0] >= sync_every_s:
            last_sync[0] = time.monotonic()
            sync()
        return queue.next_task(annotator)

    app = FastAPI(
        title=f"traitdose annotation: {dataset}",
        description="Label routed preference pairs. Authenticate with a session cookie or a bearer token.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind auth
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "login required"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CSRFError)
    async def _csrf(request: Request, exc: CSRFError) -> Response:
        return JSONResponse({"detail": "missing or bad CSRF token"}, status_code=403)

    @app.exception_handler(QueueError)
    async def _bad(request: Request, exc: QueueError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def user(request: Request) -> User:
        # async on purpose: a sub-millisecond indexed lookup, not worth a thread hop per request
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            try:
                return User(queue.annotator_for_token(auth[7:].strip()), None)
            except AuthError as exc:
                raise LoginRequired from exc
        session = request.cookies.get(SESSION_COOKIE)
        if not session:
            raise LoginRequired
        try:
            name, csrf = queue.session(session)
        except AuthError as exc:
            raise LoginRequired from exc
        return User(name, csrf)

    def check_csrf(who: User, sent: str | None) -> None:
        if who.csrf is not None and not (sent and secrets.compare_digest(sent, who.csrf)):
            raise CSRFError

    Who = Annotated[User, Depends(user)]

    # ---- pages -------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, error: str = "") -> Response:
        nonce = secrets.token_urlsafe(16)
        page = templates.TemplateResponse(
            request, "login.html", {"dataset": dataset, "nonce": nonce, "error": error}
        )
        page.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=secure_cookies)
        return page

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()], nonce: Annotated[str, Form()]) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not (expected and secrets.compare_digest(expected, nonce)):
            raise CSRFError
        try:
            _, session, _ = queue.open_session(token.strip())
        except AuthError:
            return RedirectResponse("/login?error=unknown+token", status_code=303)
        page = RedirectResponse("/", status_code=303)
        page.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", secure=secure_cookies)
        page.delete_cookie(LOGIN_COOKIE)
        return page

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, who: Who, csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(who, csrf)
        queue.close_session(request.cookies.get(SESSION_COOKIE, ""))
        page = RedirectResponse("/login", status_code=303)
        page.delete_cookie(SESSION_COOKIE)
        return page

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def label_page(request: Request, who: Who) -> Response:
        task = next_task(who.name)
        context = {
            "dataset": dataset,
            "annotator": who.name,
            "csrf": who.csrf,
            "progress": queue.progress(who.name),
            "flags": FLAGS,
        }
        if task is None:
            return templates.TemplateResponse(request, "done.html", context)
        return templates.TemplateResponse(request, "label.html", {**context, **_view(task)})

    @app.post("/submit", include_in_schema=False)
    def submit_form(
        who: Who,
        item_id: Annotated[str, Form()],
        choice: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",
        flags: Annotated[list[str] | None, Form()] = None,
        note: Annotated[str, Form(max_length=4000)] = "",
    ) -> Response:
        check_csrf(who, csrf)
        queue.submit(who.name, item_id, choice, flags=flags or [], note=note)
        return RedirectResponse("/", status_code=303)

    @app.post("/skip", include_in_schema=False)
    def skip_form(who: Who, item_id: Annotated[str, Form()], csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(who, csrf)
        queue.skip(who.name, item_id)
        return RedirectResponse("/", status_code=303)

    # ---- JSON API ----------------------------------------------------------------------
    def header_csrf(request: Request) -> str | None:
        return request.headers.get("x-csrf-token")

    @app.get("/api/next", response_model=TaskOut, tags=["api"])
    def api_next(who: Who) -> dict[str, Any]:
        """This annotator's current item (A/B in their own random order), or ``item_id: null``."""
        task = next_task(who.name)
        progress = queue.progress(who.name)
        if task is None:
            return {"item_id": None, "progress": progress}
        view = _view(task)
        return {
            "item_id": task.item_id,
            "domain": view["domain"],
            "trait": view["trait"],
            "trait_definition": view["trait_definition"],
            "prompt": view["prompt"],
            "response_a": task.response_a,
            "response_b": task.response_b,
            "progress": progress,
        }

    @app.post("/api/submit", response_model=SubmitOut, tags=["api"])
    def api_submit(request: Request, who: Who, body: SubmitIn) -> dict[str, Any]:
        """Answer an item you were given: A better, B better, tie or both bad."""
        check_csrf(who, header_csrf(request))
        recorded = queue.submit(who.name, body.item_id, body.choice, flags=body.flags, note=body.note)
        return {"recorded": recorded, "progress": queue.progress(who.name)}

    @app.post("/api/skip", tags=["api"])
    def api_skip(request: Request, who: Who, body: SkipIn) -> dict[str, str]:
        """Give an item back; you will not be shown it again."""
        check_csrf(who, header_csrf(request))
        queue.skip(who.name, body.item_id)
        return {"skipped": body.item_id}

    @app.get("/api/status", response_model=Progress, tags=["api"])
    def api_status(who: Who) -> dict[str, int]:
        """Queue-wide progress and your own."""
        return queue.progress(who.name)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(who: Who) -> dict[str, Any]:
        return app.openapi()

    return app


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than ``@app.middleware``): adds the headers above."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


def _view(task: Task) -> dict[str, Any]:
    item = task.item
    return {
        "item_id": task.item_id,
        "domain": item["domain"],
        "trait": item["trait"],
        "trait_definition": TRAITS.get(item["trait"], ""),
        "prompt": item["prompt"],
        "response_a": task.response_a,
        "response_b": task.response_b,
        "choices": CHOICES,
        "rubric": item.get("rubric") or [],  # what a good response must (not) do, when the item has one
    }
