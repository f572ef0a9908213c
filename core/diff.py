"""What changed between two versions: added, removed and changed ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from core.store import Version

# Columns whose change makes an item "changed" (ids are content hashes of the prompt,
# so a changed item has the same prompt but a different label or response).
COMPARED = ("chosen", "rejected", "label_source", "split", "status", "rubric")


@dataclass
class VersionDiff:
    a: str
    b: str
    added: list[str]
    removed: list[str]
    changed: list[str]
    rows: dict[str, int]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "from": self.a,
            "to": self.b,
            "rows": self.rows,
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
        }


def _fingerprints(version: Version) -> pl.DataFrame:
    return version.frame(columns=["id", "prompt", *COMPARED]).select(
        "id",
        pl.struct(COMPARED).hash(seed=0).alias("_fp"),
        pl.col("prompt").list.last().struct.field("content").alias("prompt_text"),
    )


def diff_versions(a: Version, b: Version, samples: int = 3) -> VersionDiff:
    fa, fb = _fingerprints(a), _fingerprints(b)
    added = fb.join(fa, on="id", how="anti")
    removed = fa.join(fb, on="id", how="anti")
    both = fa.join(fb, on="id", suffix="_b")
    changed = both.filter(pl.col("_fp") != pl.col("_fp_b"))

    def sample(frame: pl.DataFrame) -> list[dict[str, Any]]:
        return frame.sort("id").head(samples).select("id", "prompt_text").to_dicts()

    return VersionDiff(
        a=a.ref,
        b=b.ref,
        added=sorted(added["id"].to_list()),
        removed=sorted(removed["id"].to_list()),
        changed=sorted(changed["id"].to_list()),
        rows={a.ref: fa.height, b.ref: fb.height},
        samples={"added": sample(added), "removed": sample(removed), "changed": sample(changed)},
    )
