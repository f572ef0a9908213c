"""What a dataset card says, gathered once from a version folder.

:func:`gather` reads the manifest, a few parquet columns and the parent version (for the
diff) into :class:`CardFacts`, which also carries the trait definitions; ``card`` turns
the facts into Hub metadata, ``prose`` into text. Neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from core.manifest import Manifest
from core.store import Store, StoreError, Version, split_file
from core.traits import TRAITS
from data_cards.figure import FIGURE_NAME
from data_cards.license import DerivedLicense, derive_license
from data_cards.metadata import dataset_info
from data_cards.stats import SurfaceWarning, surface_stats, surface_warnings


@dataclass
class CardFacts:
    """Everything the card says, gathered once from the version folder."""

    manifest: Manifest
    counts: pl.DataFrame  # domain, trait, split, n
    label_sources: dict[str, int]
    generators: int  # distinct templates / models that wrote the pairs
    stats: pl.DataFrame
    warnings: list[SurfaceWarning]
    license: DerivedLicense
    info: dict[str, Any]
    lineage: dict[str, Any] | None = None  # versions diff summary against the parent
    lineage_note: str | None = None  # why there is no diff
    repo_id: str | None = None
    figure: str | None = FIGURE_NAME
    rubrics: pl.DataFrame | None = None  # trait, items, with_rubric, criteria (mean per rubric item)
    trait_definitions: dict[str, str] = field(default_factory=lambda: dict(TRAITS))

    @property
    def dataset(self) -> str:
        return self.manifest.dataset

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def total(self) -> int:
        return self.manifest.total_rows

    @property
    def traits(self) -> list[str]:
        return self.manifest.traits or sorted(set(self.counts["trait"].to_list()))

    @property
    def domains(self) -> list[str]:
        return sorted(set(self.counts["domain"].to_list())) or [self.manifest.domain or ""]


def gather(
    version_dir: Path,
    repo_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    stats: Callable[[], pl.DataFrame] | None = None,
) -> CardFacts:
    """The facts of the version in ``version_dir``; ``overrides`` replace manifest keys (what an
    upload changed). The splits the card (and the Hub) declare leave out empty ones:
    ``datasets`` cannot load a split from an empty parquet file. ``stats``: returns
    ``surface_stats(item_scan(...))`` computed elsewhere (a thread); called after the other facts."""
    manifest = read_manifest(version_dir, overrides)
    split_files = _split_files(manifest)
    items = _scan(version_dir, split_files)
    summary = items.select(
        pl.col("provenance").struct.field("generator").n_unique().alias("generators"),
    ).collect()
    counts = items.group_by("domain", "trait", "split").agg(n=pl.len()).sort("domain", "trait").collect()
    sources = items.group_by("label_source").agg(n=pl.len()).sort("label_source").collect()
    lineage, lineage_note = _lineage(version_dir, manifest)
    rubrics = rubric_coverage(items)
    surface = stats() if stats else surface_stats(items)  # last: a thread may still be computing it
    return CardFacts(
        manifest=manifest,
        counts=counts,
        label_sources=dict(sources.iter_rows()),
        generators=summary["generators"][0] if summary.height else 0,
        stats=surface,
        warnings=surface_warnings(surface),
        license=derive_license(manifest.sources, manifest.license, manifest.recipe),
        info=dataset_info(version_dir, manifest.rows, split_files),
        lineage=lineage,
        lineage_note=lineage_note,
        repo_id=repo_id,
        rubrics=rubrics,
    )


def read_manifest(version_dir: Path, overrides: dict[str, Any] | None = None) -> Manifest:
    """The version's manifest, with ``overrides`` replacing keys."""
    manifest = Manifest.read(version_dir)
    if overrides:
        manifest = Manifest.model_validate({**manifest.model_dump(mode="json"), **overrides})
    return manifest


def item_scan(version_dir: Path, manifest: Manifest) -> pl.LazyFrame:
    """The card's columns of every non-empty split, with a ``split`` column."""
    return _scan(version_dir, _split_files(manifest))


def domain_trait_counts(version_dir: Path, manifest: Manifest) -> dict[tuple[str, str], int]:
    """Accepted items per (domain, trait) over every split: the figure's grid, from two columns only
    (what ``by_domain_trait(gather(...).counts)`` says, without waiting for the rest of the facts)."""
    split_files = list(_split_files(manifest).values())
    if not split_files:
        return {}
    counts = (
        pl.concat([pl.scan_parquet(version_dir / rel).select("domain", "trait") for rel in split_files])
        .group_by("domain", "trait")
        .agg(n=pl.len())
        .collect()
    )
    return {(d, t): n for d, t, n in counts.iter_rows()}


def rubric_coverage(items: pl.LazyFrame) -> pl.DataFrame:
    """Per trait: items, items with a non-empty rubric, mean criteria per rubric (the GRPO grader's input)."""
    size = pl.col("rubric").list.len().fill_null(0)
    return (
        items.group_by("trait")
        .agg(
            items=pl.len(),
            with_rubric=(size > 0).sum(),
            criteria=pl.when(size > 0).then(size).mean(),
        )
        .sort("trait")
        .collect()
    )


def _split_files(manifest: Manifest) -> dict[str, str]:
    """Split name → its file, for the splits with rows (an empty parquet file cannot be loaded)."""
    return {s: split_file(s) for s in manifest.non_empty_splits()}


def _scan(version_dir: Path, split_files: dict[str, str]) -> pl.LazyFrame:
    columns = ["domain", "trait", "label_source", "chosen", "rejected", "provenance", "rubric"]
    frames = [
        pl.scan_parquet(version_dir / rel).select(columns).with_columns(split=pl.lit(split))
        for split, rel in split_files.items()
    ]
    if not frames:
        from core.schema import ITEM_SCHEMA

        empty = pl.from_arrow(ITEM_SCHEMA.empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty.lazy().select(columns).with_columns(split=pl.lit(None, pl.String))
    return pl.concat(frames)


def _lineage(version_dir: Path, manifest: Manifest) -> tuple[dict[str, Any] | None, str | None]:
    parent = manifest.parent
    if not parent:
        return None, "first version: no parent"
    from core.diff import diff_versions

    store = Store(version_dir.parent.parent)
    try:
        before = store.resolve(parent)
    except StoreError:
        return None, f"parent {parent} is not in this store, so no diff"
    this = Version(manifest.dataset, manifest.version or version_dir.name, version_dir)
    return diff_versions(before, this, samples=0).summary(), None


def by_domain_trait(counts: pl.DataFrame) -> pl.DataFrame:
    return counts.group_by("domain", "trait").agg(pl.col("n").sum()).sort("domain", "trait")
