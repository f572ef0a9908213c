"""File paths in a recipe: resolved against the recipe's folder when it is loaded, and
written back relative to it (or replaced by a content digest for the recipe hash)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationInfo


def resolve_path(value: str, info: ValidationInfo) -> str:
    """Resolve a source path against the recipe's folder; ``hf:`` names pass through."""
    if value.startswith("hf:"):
        return value
    base = Path((info.context or {}).get("base", "."))
    path = (base / value).resolve() if not Path(value).is_absolute() else Path(value)
    if not path.exists():
        raise ValueError(f"file not found: {value} (looked in {path})")
    if path.suffix.lower() not in (".csv", ".jsonl", ".json", ".parquet"):
        raise ValueError(f"unsupported file type {path.suffix!r}: use .csv, .jsonl, .parquet or hf:<name>")
    return str(path)


def path_fields(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(holder, key) of every file path in a dumped recipe: source, bank file, benchmarks."""
    if "path" in (data.get("source") or {}):
        yield data["source"], "path"
    if str((data.get("generate") or {}).get("bank") or "").endswith((".yaml", ".yml")):
        yield data["generate"], "bank"
    yield from ((b, "path") for b in data.get("curation", {}).get("decontam", {}).get("benchmarks", []))


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (remembered while the file is unchanged)."""
    stat = path.stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


def replace_paths(data: dict[str, Any], replace: Callable[[Path], str]) -> dict[str, Any]:
    """``data`` (a dumped recipe) with every absolute local file path put through ``replace``."""
    for holder, key in path_fields(data):
        value = holder[key]
        if not value.startswith("hf:") and Path(value).is_absolute():
            holder[key] = replace(Path(value))
    return data
