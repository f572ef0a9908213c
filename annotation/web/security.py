"""Two pure ASGI middlewares (cheaper than ``@app.middleware``): security headers on every
response (pages and API answers are never cached; static assets, linked by a hash of their
content, are), and a body-size guard that answers before a request body is read.

The guard checks authentication first (an anonymous POST gets 401 whatever its size, and
its body is never read), then the declared ``Content-Length``, then counts the bytes of a
body sent without one, stopping at the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers, MutableHeaders

from annotation.web.deps import USER_KEY, identify
from annotation.web.limits import DEFAULT_MAX_BODY

SECURITY_HEADERS = {
    # No inline script or style at all: even markup that slipped through escaping could not run.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ANONYMOUS_POSTS = {"/login"}  # the only POST that comes before a session
# Static files are linked as /static/NAME?v=<content hash>: a day in the cache is safe, and
# StaticFiles still answers a revalidation with 304 (ETag, Last-Modified).
STATIC_CACHE = "public, max-age=86400"


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = STATIC_CACHE if scope["path"].startswith("/static/") else "no-store"

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers.setdefault("Cache-Control", cache)
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuse request bodies over ``max_body`` bytes, and bodies from nobody, unread."""

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] not in ANONYMOUS_POSTS and not self._known(scope, headers):
            if scope["path"].startswith("/api/"):
                await _reply(send, 401, "login required")
            else:  # a page form: back to the login page, as the routes themselves would
                await _reply(send, 303, "login required", [(b"location", b"/login")])
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _reply(send, 413, f"request body over {self.max_body} bytes")
            return
        seen = 0
        replied = False  # the guard answered: the app's own answer is dropped

        async def counted() -> dict[str, Any]:
            nonlocal seen, replied
            if replied:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                # Answer now and tell the app the client left: it stops reading.
                replied = True
                await _reply(send, 413, f"request body over {self.max_body} bytes")
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: dict[str, Any]) -> None:
            if not replied:
                await send(message)

        await self.app(scope, counted, guarded)

    @staticmethod
    def _known(scope: dict[str, Any], headers: Headers) -> bool:
        state = getattr(scope["app"].state, "server", None)
        who = identify(state.queue, headers) if state is not None else None
        if who is not None:  # the route's own dependency reads it instead of looking it up again
            scope.setdefault("state", {})[USER_KEY] = who
        return who is not None


async def _reply(send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
