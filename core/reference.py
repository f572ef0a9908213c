"""Items of earlier versions that a new version must not near-duplicate (``curation.dedupe.against``).

Store-side: it reads versions; the near-dedupe stage only receives the table.
"""

from __future__ import annotations

import polars as pl

from core.store import Store


def reference_items(store: Store, dataset: str, against: list[str]) -> pl.DataFrame | None:
    """Accepted and routed items of the versions ``against`` names ("previous", "ds", "ds@v2")."""
    frames: list[pl.DataFrame] = []
    for ref in against:
        versions = store.versions(dataset) if ref == "previous" else [store.resolve(ref)]
        for version in versions:
            frames.append(version.frame())
            routed = pl.from_arrow(version.side("routed"))
            assert isinstance(routed, pl.DataFrame)
            if routed.height:
                frames.append(routed)
    if not frames:
        return None
    return pl.concat(frames, how="vertical_relaxed").unique("id", keep="first", maintain_order=True)
