"""The server-rendered pages (Jinja2, autoescaped): login, the labeling page, its forms.

Routes are ``async def`` and call the queue on the event loop (see ``deps``)."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from annotation.queue import CHOICES, FLAGS, Task
from annotation.web.deps import LOGIN_COOKIE, SESSION_COOKIE, CSRFError, State, Who, check_csrf
from core.errors import AuthError

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, state: State, error: str = "") -> Response:
    nonce = secrets.token_urlsafe(16)
    page = state.templates.TemplateResponse(
        request, "login.html", {"dataset": state.dataset, "nonce": nonce, "error": error}
    )
    page.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=state.secure_cookies)
    return page


@router.post("/login")
async def login(
    request: Request, state: State, token: Annotated[str, Form()], nonce: Annotated[str, Form()]
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not (expected and secrets.compare_digest(expected, nonce)):
        raise CSRFError
    try:
        _, session, _ = await state.call(state.queue.open_session, token.strip())
    except AuthError:
        return RedirectResponse("/login?error=unknown+token", status_code=303)
    page = RedirectResponse("/", status_code=303)
    page.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", secure=state.secure_cookies)
    page.delete_cookie(LOGIN_COOKIE)
    return page


@router.post("/logout")
async def logout(request: Request, state: State, who: Who, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(who, csrf)
    await state.call(state.queue.close_session, request.cookies.get(SESSION_COOKIE, ""))
    page = RedirectResponse("/login", status_code=303)
    page.delete_cookie(SESSION_COOKIE)
    return page


@router.get("/", response_class=HTMLResponse)
async def label_page(request: Request, state: State, who: Who) -> Response:
    task = await state.next_task(who.name)
    context = {
        "dataset": state.dataset,
        "annotator": who.name,
        "csrf": who.csrf,
        "progress": state.queue.progress(who.name),
        "flags": FLAGS,
    }
    if task is None:
        return state.templates.TemplateResponse(request, "done.html", context)
    return state.templates.TemplateResponse(request, "label.html", {**context, **view(task)})


@router.post("/submit")
async def submit_form(
    state: State,
    who: Who,
    item_id: Annotated[str, Form()],
    choice: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    flags: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    check_csrf(who, csrf)
    await state.call(state.queue.submit, who.name, item_id, choice, flags=flags or [], note=note)
    return RedirectResponse("/", status_code=303)


@router.post("/skip")
async def skip_form(
    state: State, who: Who, item_id: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(who, csrf)
    await state.call(state.queue.skip, who.name, item_id)
    return RedirectResponse("/", status_code=303)


def view(task: Task) -> dict[str, Any]:
    """What the labeling page (and the API's next item) shows of a task."""
    from core.traits import TRAITS

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
