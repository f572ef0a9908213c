"""Annotator names and free-text notes, which merged versions carry in their ``annotation`` column.

``annotation merge`` records, per item, who labelled it (``annotation.annotators``) and any
note they wrote (``annotation.notes``), so a version can be audited locally. Publishing
uploads the split files as they are, names and notes included, unless
``publish --drop-annotator-notes`` is given: then the uploaded copies name annotators by
pseudonymous ids (``annotator-1``, ``annotator-2``, … in order of first appearance) and hold
no notes, and the uploaded manifest and card say so. The local version is never changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_KEY = "annotator_notes"  # "dropped" in an uploaded manifest when the flag was given


def drop_annotator_notes(tree: Path, data_files: list[str]) -> None:
    """Rewrite ``data_files`` in the upload ``tree`` without names and notes; update its manifest."""
    names: dict[str, str] = {}
    manifest_path = tree / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for rel in data_files:
        path = tree / rel
        table = pq.read_table(path)
        if "annotation" not in table.column_names or table.column("annotation").null_count == table.num_rows:
            continue
        column = table.column("annotation")
        rows = [_anonymous(note, names) for note in column.to_pylist()]
        index = table.column_names.index("annotation")
        table = table.set_column(index, table.field(index), pa.array(rows, type=column.type))
        pq.write_table(table, path, compression="zstd")
        manifest["files"][rel] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    manifest[MANIFEST_KEY] = "dropped"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def _anonymous(note: dict[str, Any] | None, names: dict[str, str]) -> dict[str, Any] | None:
    if note is None:
        return None
    ids = [names.setdefault(name, f"annotator-{len(names) + 1}") for name in note.get("annotators") or []]
    return {**note, "annotators": ids, "notes": []}


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
