"""The dataset card written into every version (its ``README.md``), from the data itself.

The store calls :func:`write_card` on the version folder before the version becomes
visible, so the card is part of the immutable version; ``traitdose card`` re-renders it.
:func:`gather` reads what the card needs (manifest, a few parquet columns, the parent
version); :func:`render_card` turns those facts into Hub YAML metadata and prose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from core.store import Store, StoreError, Version, split_file
from core.traits import TRAITS
from data_cards import prose
from data_cards.figure import FIGURE_NAME, render_figure
from data_cards.license import DerivedLicense, derive_license
from data_cards.metadata import dataset_info, size_category
from data_cards.stats import SurfaceWarning, surface_stats, surface_warnings

# label_source → the Hub's annotations_creators vocabulary
_CREATORS = {
    "gold": "found",
    "contrastive": "machine-generated",
    "judge": "machine-generated",
    "human": "expert-generated",
}


@dataclass
class CardFacts:
    """Everything the card says, gathered once from the version folder."""

    manifest: dict[str, Any]
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

    @property
    def dataset(self) -> str:
        return self.manifest["dataset"]

    @property
    def version(self) -> str:
        return self.manifest.get("version", "")

    @property
    def total(self) -> int:
        return sum(self.manifest.get("rows", {}).values())

    @property
    def traits(self) -> list[str]:
        return self.manifest.get("traits") or sorted(set(self.counts["trait"].to_list()))

    @property
    def domains(self) -> list[str]:
        return sorted(set(self.counts["domain"].to_list())) or [self.manifest.get("domain", "")]


def write_card(version_dir: Path) -> None:
    """The store's card hook: ``README.md`` and the figure, beside ``manifest.json``."""
    write_card_to(version_dir, version_dir / "README.md")


def write_card_to(
    version_dir: Path, out: Path, repo_id: str | None = None, overrides: dict[str, Any] | None = None
) -> Path:
    """Render ``version_dir``'s card to ``out``, with the figure beside it; ``overrides``
    replace manifest keys for this rendering (what an upload changed, e.g. dropped notes)."""
    facts = gather(version_dir, repo_id=repo_id, overrides=overrides)
    out.parent.mkdir(parents=True, exist_ok=True)
    render_figure(
        facts.manifest.get("funnel") or [],
        {(r["domain"], r["trait"]): r["n"] for r in _by_domain_trait(facts.counts).iter_rows(named=True)},
        out.parent / FIGURE_NAME,
        title=f"{facts.dataset} {facts.version}",
    )
    out.write_text(render_card(facts))
    return out


def gather(
    version_dir: Path, repo_id: str | None = None, overrides: dict[str, Any] | None = None
) -> CardFacts:
    manifest = json.loads((version_dir / "manifest.json").read_text()) | (overrides or {})
    rows: dict[str, int] = manifest.get("rows", {})
    split_files = {s: split_file(s) for s in card_splits(manifest)}
    items = _scan(version_dir, split_files)
    stats = surface_stats(items)
    summary = items.select(
        pl.col("provenance").struct.field("generator").n_unique().alias("generators"),
    ).collect()
    facts = CardFacts(
        manifest=manifest,
        counts=items.group_by("domain", "trait", "split").agg(n=pl.len()).sort("domain", "trait").collect(),
        label_sources=dict(
            items.group_by("label_source").agg(n=pl.len()).sort("label_source").collect().iter_rows()
        ),
        generators=summary["generators"][0] if summary.height else 0,
        stats=stats,
        warnings=surface_warnings(stats),
        license=derive_license(manifest),
        info=dataset_info(version_dir, rows, split_files),
        repo_id=repo_id,
    )
    facts.lineage, facts.lineage_note = _lineage(version_dir, manifest)
    facts.rubrics = rubric_coverage(items)
    return facts


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


def card_splits(manifest: dict[str, Any]) -> list[str]:
    """The splits the card (and the Hub) declare: empty ones are left out, because
    ``datasets`` cannot load a split from an empty parquet file."""
    return [split for split, n in manifest.get("rows", {}).items() if n > 0]


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


def _lineage(version_dir: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    parent = manifest.get("parent")
    if not parent:
        return None, "first version: no parent"
    from core.diff import diff_versions

    store = Store(version_dir.parent.parent)
    try:
        before = store.resolve(parent)
    except StoreError:
        return None, f"parent {parent} is not in this store, so no diff"
    this = Version(manifest["dataset"], manifest.get("version", version_dir.name), version_dir)
    return diff_versions(before, this, samples=0).summary(), None


def _by_domain_trait(counts: pl.DataFrame) -> pl.DataFrame:
    return counts.group_by("domain", "trait").agg(pl.col("n").sum()).sort("domain", "trait")


# ---- metadata ---------------------------------------------------------------------------
def card_metadata(facts: CardFacts) -> dict[str, Any]:
    """The YAML header: what the Hub indexes and ``load_dataset`` reads."""
    m = facts.manifest
    creators = sorted({_CREATORS.get(s, "other") for s in facts.label_sources}) or ["no-annotation"]
    synthetic = any(s in ("contrastive", "judge") for s in facts.label_sources) or any(
        src.get("kind") == "template" for src in m.get("sources") or []
    )
    language_creators = ["expert-generated", "machine-generated"] if synthetic else ["found"]
    if m.get("llm"):
        language_creators = sorted({*language_creators, "machine-generated"})
    tags = ["dpo", "preference", *facts.traits, *[d for d in facts.domains if d], "traitdose"]
    if synthetic:
        tags.append("synthetic")
    return {
        "pretty_name": f"{facts.dataset} ({facts.version})" if facts.version else facts.dataset,
        **facts.license.metadata(),
        "language": list(m.get("language") or ["en"]),
        "multilinguality": ["monolingual"],
        "size_categories": [size_category(facts.total)],
        "task_categories": ["text-generation"],
        "annotations_creators": creators,
        "language_creators": language_creators,
        "tags": list(dict.fromkeys(tags)),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in card_splits(m)],
            }
        ],
        "dataset_info": facts.info,
    }


def render_card(facts: CardFacts) -> str:
    header = yaml.safe_dump(card_metadata(facts), sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{prose.render(facts, TRAITS)}"
