"""The dataset card written into every version (its ``README.md``), from the data itself.

The caller that opens a store for writing passes :func:`write_card` as its card renderer,
so the store calls it on the version folder before the version becomes visible and the
card is part of the immutable version; ``traitdose card`` re-renders it. ``facts.gather``
reads what the card needs; :func:`render_card` turns those facts into the Hub's YAML
header (``huggingface_hub.DatasetCardData``) and prose.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCardData

from data_cards import prose
from data_cards.facts import CardFacts, domain_trait_counts, gather, item_scan, read_manifest
from data_cards.figure import FIGURE_NAME, render_figure
from data_cards.metadata import size_category
from data_cards.stats import surface_stats

# label_source → the Hub's annotations_creators vocabulary
_CREATORS = {
    "gold": "found",
    "contrastive": "machine-generated",
    "judge": "machine-generated",
    "human": "expert-generated",
}


def write_card(version_dir: Path) -> None:
    """The store's card hook: ``README.md`` and the figure, beside ``manifest.json``."""
    write_card_to(version_dir, version_dir / "README.md")


def write_card_to(
    version_dir: Path, out: Path, repo_id: str | None = None, overrides: dict[str, Any] | None = None
) -> Path:
    """Render ``version_dir``'s card to ``out``, with the figure beside it; ``overrides``
    replace manifest keys for this rendering (what an upload changed, e.g. dropped notes)."""
    manifest = read_manifest(version_dir, overrides)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The surface statistics (two long polars queries, which release the GIL) run in a thread
    # while this one draws the figure (matplotlib: Python, holding the GIL) and gathers the rest:
    # on two cores the card costs about the longer of the two.
    with ThreadPoolExecutor(1, thread_name_prefix="card-stats") as pool:
        stats = pool.submit(surface_stats, item_scan(version_dir, manifest))
        render_figure(
            manifest.funnel,
            domain_trait_counts(version_dir, manifest),
            out.parent / FIGURE_NAME,
            title=f"{manifest.dataset} {manifest.version}",
        )
        facts = gather(version_dir, repo_id=repo_id, overrides=overrides, stats=stats.result)
    out.write_text(render_card(facts))
    return out


# ---- metadata ---------------------------------------------------------------------------
# The header's key order, as the Hub's own cards write it (DatasetCardData sorts nothing).
_ORDER = [
    "pretty_name", "license", "license_name", "language", "multilinguality", "size_categories",
    "task_categories", "annotations_creators", "language_creators", "tags", "configs", "dataset_info",
]  # fmt: skip


def card_data(facts: CardFacts) -> DatasetCardData:
    """The YAML header: what the Hub indexes and ``load_dataset`` reads."""
    m = facts.manifest
    creators = sorted({_CREATORS.get(s, "other") for s in facts.label_sources}) or ["no-annotation"]
    synthetic = any(s in ("contrastive", "judge") for s in facts.label_sources) or any(
        src.get("kind") == "template" for src in m.sources
    )
    language_creators = ["expert-generated", "machine-generated"] if synthetic else ["found"]
    if m.llm:
        language_creators = sorted({*language_creators, "machine-generated"})
    tags = ["dpo", "preference", *facts.traits, *[d for d in facts.domains if d], "traitdose"]
    if synthetic:
        tags.append("synthetic")
    splits = m.non_empty_splits()
    return DatasetCardData(
        pretty_name=f"{facts.dataset} ({facts.version})" if facts.version else facts.dataset,
        **facts.license.metadata(),
        language=list(m.language or ["en"]),
        multilinguality=["monolingual"],
        size_categories=[size_category(facts.total)],
        task_categories=["text-generation"],
        annotations_creators=creators,
        language_creators=language_creators,
        tags=list(dict.fromkeys(tags)),
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
        dataset_info=facts.info,
    )


def card_metadata(facts: CardFacts) -> dict[str, Any]:
    """The header as a dict (what a reader of the card's YAML gets back)."""
    return card_data(facts).to_dict()


def render_card(facts: CardFacts) -> str:
    header = card_data(facts).to_yaml(original_order=_ORDER)
    return f"---\n{header}\n---\n\n{prose.render(facts)}"
