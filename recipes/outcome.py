"""How a run ends when its source or curation leaves little or nothing.

- No surviving item (every row quarantined, every item filtered or deduplicated): the
  run raises :class:`NoItemsError` (one line: why, and where the quarantine log is
  kept) and writes no version, so ``latest`` is untouched.
- More than :data:`QUARANTINE_WARN` of the source rows quarantined: a warning with the
  commonest reasons, since a file written in an unexpected shape looks like this.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recipes.sources.items import SourceOutput
from recipes.spec import Recipe, RecipeError

QUARANTINE_WARN = 0.2


class NoItemsError(RecipeError):
    """A run that would write an empty version; nothing was written."""


def quarantine_lines(source: SourceOutput) -> str:
    return "".join(json.dumps(q, default=str) + "\n" for q in source.quarantine)


def keep_quarantine(store_root: Path, dataset: str, source: SourceOutput) -> Path | None:
    """Save a failed run's quarantine log under ``<store>/.quarantine/``; its path, or None."""
    if not source.quarantine:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = store_root / ".quarantine" / f"{dataset}-{stamp}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(quarantine_lines(source))
    return path


def check_source(recipe: Recipe, store_root: Path, source: SourceOutput) -> None:
    """Raise NoItemsError when the source gave no item at all."""
    if source.rows:
        return
    where = _source_label(recipe)
    if source.rows_read == 0:
        raise NoItemsError(f"{recipe.name}: {where} has no rows (after source.where); no version written")
    kept = keep_quarantine(store_root, recipe.dataset_name, source)
    reasons = source.top_reasons() or ", ".join(f"{k}: {v}" for k, v in source.dropped.items())
    raise NoItemsError(
        f"{recipe.name}: all {source.rows_read} rows of {where} were quarantined: {reasons}; "
        f"no version written" + (f"; quarantine kept at {kept}" if kept else "")
    )


def check_curated(
    recipe: Recipe, store_root: Path, source: SourceOutput, funnel: list[dict[str, Any]], survivors: int
) -> None:
    """Raise NoItemsError when curation dropped every item."""
    if survivors:
        return
    drops = [
        f"{step['stage']} ({', '.join(f'{k}: {v}' for k, v in step['dropped'].items())})"
        for step in funnel[1:]
        if step.get("dropped")
    ]
    kept = keep_quarantine(store_root, recipe.dataset_name, source)
    raise NoItemsError(
        f"{recipe.name}: no item survived curation: dropped by {'; '.join(drops) or 'nothing'}; "
        f"no version written" + (f"; quarantine kept at {kept}" if kept else "")
    )


def quarantine_warning(recipe: Recipe, source: SourceOutput) -> str | None:
    """A warning when more than 20% of the source rows were quarantined."""
    unparseable = sum(source.reason_counts().values())
    if not source.rows_read or unparseable <= QUARANTINE_WARN * source.rows_read:
        return None
    share = unparseable / source.rows_read
    return (
        f"{unparseable} of {source.rows_read} rows ({share:.0%}) of {_source_label(recipe)} "
        f"were quarantined; top reasons: {source.top_reasons()}"
    )


def _source_label(recipe: Recipe) -> str:
    return recipe.source.path if recipe.source is not None else "the generator"
