"""Small, fully controlled preference items and versions for the card and publish tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from core.schema import from_rows, item_id, messages
from core.store import Store, Version
from data_cards.card import write_card


def item(
    n: int,
    *,
    domain: str = "health",
    trait: str = "truthfulness",
    chosen: str = "The evidence does not support that; here is what it does show.",
    rejected: str = "That claim is settled, so you can rely on it completely.",
    label_source: str = "contrastive",
    split: str = "train",
    generator: str = "tpl-1",
) -> dict[str, Any]:
    prompt = messages("user", f"Question {n} about {domain}: is the claim true?")
    return {
        "id": item_id(prompt, domain, trait),
        "domain": domain,
        "trait": trait,
        "prompt": prompt,
        "chosen": messages("assistant", chosen),
        "rejected": messages("assistant", rejected),
        "label_source": label_source,
        "provenance": {"source": "template:test", "generator": generator, "seed": 0},
        "split": split,
        "status": "accepted",
    }


def items(count: int, start: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    return [item(n, split="test" if n % 5 == 0 else "train", **kwargs) for n in range(start, start + count)]


def split_tables(rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    return {s: from_rows([r for r in rows if r["split"] == s]) for s in ("train", "test")}


def manifest_meta(**overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "recipe": "unit",
        "domain": "health",
        "traits": ["truthfulness"],
        "seed": 7,
        "sources": [{"kind": "template", "bank": "health"}],
        "license": None,
    }
    meta.update(overrides)
    return meta


def write(
    root: Path,
    rows: list[dict[str, Any]],
    dataset: str = "unit",
    *,
    parent: str | None = None,
    funnel: list[dict[str, Any]] | None = None,
    files: dict[str, str] | None = None,
    **meta: Any,
) -> Version:
    store = Store(root, card_renderer=write_card)
    return store.write_version(
        dataset,
        split_tables(rows),
        parent=parent,
        recipe_hash="abc123def4567890",
        funnel=funnel or [{"stage": "source", "in": len(rows), "out": len(rows), "dropped": {}}],
        files={"recipe.yaml": "name: unit\ndomain: health\ntrait: truthfulness\n", **(files or {})},
        meta=manifest_meta(**meta),
    )
