"""A version's manifest: the one definition of ``manifest.json``.

The store writes it; cards, merge, the trainer and the CLI read it through
:class:`Manifest`'s attributes. Extra keys are kept as they are (a step may add its
own block, e.g. ``audit``), so a manifest written by a newer traitdose still loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import StoreError

MANIFEST_FILE = "manifest.json"
# Keys the store writes for every version (the rest describe where the data came from).
_WRITTEN_BY_STORE = {
    "dataset",
    "version",
    "parent",
    "recipe_hash",
    "created",
    "rows",
    "side_rows",
    "files",
    "funnel",
}


class FileEntry(BaseModel):
    """One file of a version, as written."""

    model_config = ConfigDict(extra="allow")

    sha256: str
    bytes: int


class Manifest(BaseModel):
    """What one version holds and where it came from.

    ``rows`` counts the accepted items per split, ``side_rows`` the rows of each side
    table (``dropped``, ``routed``); ``files`` maps every file (path in the version
    folder) to its sha256 and size; ``funnel`` lists the stages with rows in and out.
    """

    model_config = ConfigDict(extra="allow")

    dataset: str
    version: str = ""  # vN, set when the version number is claimed
    parent: str | None = None  # DATASET@vN this version was built after
    recipe_hash: str | None = None
    created: str = ""
    rows: dict[str, int]
    side_rows: dict[str, int] = {}
    files: dict[str, FileEntry] = {}
    funnel: list[dict[str, Any]] = []
    # What the recipe said (absent for versions not built from a recipe).
    recipe: str | None = None
    domain: str | None = None
    traits: list[str] = []
    seed: int | None = None
    sources: list[dict[str, Any]] = []
    license: str | None = None
    language: list[str] | None = None  # the card's language codes (default: en)
    annotation_k: int | None = None
    trial: bool = False  # a ``--limit`` run: a sample of the recipe, not the dataset
    llm: dict[str, Any] | None = None  # model, usage and cost of the LLM steps
    annotation: dict[str, Any] | None = None  # the human-annotation block a merge adds

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def non_empty_splits(self) -> list[str]:
        """Splits with at least one row: the ones a card or an upload lists."""
        return [split for split, n in self.rows.items() if n > 0]

    def carried(self) -> dict[str, Any]:
        """What a version derived from this one keeps: what the recipe said and other steps'
        blocks, without what the store writes afresh (rows, files, funnel, lineage) or the
        annotation block a merge replaces."""
        return {k: v for k, v in self.to_dict().items() if k not in _WRITTEN_BY_STORE | {"annotation"}}

    # Code written against the dict this model replaces (``manifest["rows"]``,
    # ``manifest.get("llm")``) keeps working; new code uses the attributes.
    def __getitem__(self, key: str) -> Any:
        data = self.to_dict()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; keys never set stay out, as in manifests written before this model."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_FILE).write_text(self.to_json())

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest in ``folder``; a missing or corrupt one is a :class:`StoreError` naming the file."""
        path = folder / MANIFEST_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise StoreError(
                f"{path}: corrupt manifest: {where + ': ' if where else ''}{first['msg']}"
            ) from exc
