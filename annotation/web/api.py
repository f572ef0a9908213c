"""The JSON API beside the pages: next item, submit, skip, status (and its OpenAPI document).

The models below document the API (OpenAPI); the hot routes build their answers from
values the queue already checked and return them as ``JSONResponse``, which FastAPI sends
as is instead of validating the dict against the model again on every call.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from annotation.web.deps import State, Who, check_csrf
from annotation.web.pages import view

router = APIRouter(prefix="/api", tags=["api"])


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


@router.get("/next", response_model=TaskOut)
async def api_next(state: State, who: Who) -> JSONResponse:
    """This annotator's current item (A/B in their own random order), or ``item_id: null``."""
    task = await state.next_task(who.name)
    progress = state.queue.progress(who.name)
    if task is None:
        return JSONResponse({"item_id": None, "progress": progress})
    shown = {k: v for k, v in view(task).items() if k != "choices"}
    return JSONResponse({**shown, "progress": progress})


@router.post("/submit", response_model=SubmitOut)
async def api_submit(request: Request, state: State, who: Who, body: SubmitIn) -> JSONResponse:
    """Answer an item you were given: A better, B better, tie or both bad."""
    check_csrf(who, request.headers.get("x-csrf-token"))
    recorded = await state.call(
        state.queue.submit, who.name, body.item_id, body.choice, flags=body.flags, note=body.note
    )
    return JSONResponse({"recorded": recorded, "progress": state.queue.progress(who.name)})


@router.post("/skip")
async def api_skip(request: Request, state: State, who: Who, body: SkipIn) -> dict[str, str]:
    """Give an item back; you will not be shown it again."""
    check_csrf(who, request.headers.get("x-csrf-token"))
    await state.call(state.queue.skip, who.name, body.item_id)
    return {"skipped": body.item_id}


@router.get("/status", response_model=Progress)
async def api_status(state: State, who: Who) -> dict[str, int]:
    """Queue-wide progress and your own."""
    return state.queue.progress(who.name)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, who: Who) -> dict[str, Any]:
    return request.app.openapi()
