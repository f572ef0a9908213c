"""Shared helpers for the annotation tests: stores with routed items, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from annotation.queue import Queue
from annotation.web.server import background_server
from core.schema import from_rows, item_id, messages
from core.store import Store

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def make_item(n: int, *, status: str = "accepted", split: str = "train", trait: str = "truthfulness") -> dict:
    prompt = messages("user", f"Question {n}: does vitamin C cure the common cold?")
    return {
        "id": item_id(prompt, "health", trait),
        "domain": "health",
        "trait": trait,
        "prompt": prompt,
        "chosen": messages("assistant", f"Good answer {n}: the evidence shows it does not cure colds."),
        "rejected": messages("assistant", f"Bad answer {n}: yes, it cures colds in a day."),
        "label_source": "judge",
        "ambiguity": 0.6 if status == "routed" else 0.1,
        "split": split,
        "status": status,
    }


def make_store(root: Path, *, routed: int = 4, accepted: int = 6, dataset: str = "demo", meta=None) -> Store:
    """A store whose v1 holds ``accepted`` train items and ``routed`` routed ones."""
    store = Store(root, card_renderer=lambda path: None)
    acc = [make_item(n) for n in range(accepted)]
    rou = [make_item(1000 + n, status="routed") for n in range(routed)]
    store.write_version(
        dataset,
        {"train": from_rows(acc), "test": from_rows([])},
        side={"routed": from_rows(rou)} if rou else None,
        meta=meta,
    )
    return store


@contextmanager
def live_server(queue: Queue, dataset: str = "demo", **app_options) -> Iterator[str]:
    with background_server(queue, dataset, **app_options) as url:
        yield url


def label_all(queue: Queue, annotators: dict[str, list[str]]) -> None:
    """Each annotator answers their next tasks with the given item labels, in order
    (labels in item terms, translated to the A/B the annotator was shown)."""
    for name, labels in annotators.items():
        for label in labels:
            task = queue.next_task(name)
            assert task is not None, f"{name} ran out of work"
            queue.submit(name, task.item_id, screen_choice(label, task.swapped))


def screen_choice(label: str, swapped: bool) -> str:
    if label in ("tie", "both_bad"):
        return label
    return "A" if (label == "chosen") != swapped else "B"


def rows(db_path: Path, sql: str) -> list[Any]:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()
