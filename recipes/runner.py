"""The runner: recipe → source → curation stages → splits → a new version in the store.

Stages never talk to each other; the runner composes them and records the funnel
(rows in and out of every stage, with drop reasons), checking row accounting as it goes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from core.errors import SourceError
from core.reference import reference_items
from core.schema import DROPPED_SCHEMA, ITEM_SCHEMA, conform
from core.store import LATEST, Store, Version
from curation.engine import EngineSpec, choose_engine, open_engine
from curation.pipeline import curation_stages
from curation.splits import assign_splits
from curation.stage import Funnel, Stage, StageStart, run_stages
from curation.surface_audit import audit as surface_audit
from recipes.llm.generate import generate_with_llm
from recipes.llm.stages import client_for, llm_manifest, llm_stages
from recipes.outcome import check_curated, check_source, quarantine_lines, quarantine_warning
from recipes.sources.ab_eval import read_ab_eval
from recipes.sources.answer_key import read_answer_key
from recipes.sources.items import SourceOutput
from recipes.sources.templates import BankError, generate_from_bank
from recipes.spec import ABEvalSource, AnswerKeySource, LLMGenerate, Recipe, RecipeError, TemplateGenerate

if TYPE_CHECKING:
    from recipes.llm.client import LLMClient

Progress = Callable[[str, int], None]  # (stage description, items just processed)


@dataclass
class RunResult:
    version: Version
    funnel: list[dict[str, Any]]
    quarantined: int
    warnings: list[str] = field(default_factory=list)


def run_recipe(
    recipe: Recipe,
    store: Store,
    *,
    seed: int | None = None,
    traits: list[str] | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    on_stage: StageStart | None = None,
    skip_identical: bool = False,
    engine: EngineSpec | None = None,
    audit: bool = True,
) -> RunResult:
    """Run ``recipe`` into a new version of its dataset. With ``skip_identical``, a result
    identical to the latest version writes nothing and returns that version (``reused``).
    A ``limit`` run is marked ``trial`` in its manifest: a sample, not the dataset.
    ``engine``: where curation runs; default: ``TRAITDOSE_ENGINE``, else the recipe's, else local.
    ``audit`` adds the surface-cue audit to the manifest."""
    seed = recipe.seed if seed is None else seed
    engine = engine or EngineSpec(choose_engine(None, recipe.curation.engine))
    chosen_traits = select_traits(recipe, traits)
    recipe_hash = recipe.content_hash()
    tick = progress or (lambda stage, n: None)
    start = on_stage or (lambda stage, total: None)
    start("generating" if recipe.generator else "reading", _expected_items(recipe, chosen_traits, limit))
    llm = client_for(recipe, store.root)  # None unless a step uses an LLM; its cache commits per call
    source = read_source(
        recipe, traits=chosen_traits, seed=seed, recipe_hash=recipe_hash, limit=limit, tick=tick, llm=llm
    )
    check_source(recipe, store.root, source)
    funnel = Funnel()
    funnel.add("source", source.rows_read, len(source.rows), source.funnel_drops())
    items = _frame(source.table())
    source.release()
    if limit is not None and items.height > limit:
        funnel.add(
            "limit",
            source.rows_read - len(source.quarantine),
            limit,
            {"over_limit": items.height - limit},
        )
        items = items.head(limit)

    items, dropped = run_stages(items, llm_stages(recipe, llm, tick), funnel, start)
    with open_engine(engine, tick) as curation:
        items, curated = curation.run(items, build_stages(recipe, store, tick), funnel, start)
        partitions = curation.partitions
    dropped += curated
    check_curated(recipe, store.root, source, funnel.steps, items.height)
    items = assign_splits(items, recipe.test_fraction, seed)
    accepted = items.filter(pl.col("status") != "routed")
    routed = items.filter(pl.col("status") == "routed")
    funnel.add("accept", items.height, accepted.height, {"routed": routed.height} if routed.height else {})

    start("writing the version and its card", None)
    version = write_accepted(
        store,
        recipe.dataset_name,
        accepted,
        audit=audit,
        parent=LATEST,  # read when the version number is taken: right under concurrent runs
        recipe_hash=recipe_hash,
        funnel=funnel.steps,
        side=_side_tables(dropped, routed),
        files=_side_files(recipe, source),
        meta=_meta(recipe, seed, chosen_traits, trial=limit is not None)
        | {"engine": engine.meta(partitions)}
        | ({"llm": llm_manifest(recipe, llm)} if llm else {}),
        skip_identical=skip_identical,
    )
    warning = quarantine_warning(recipe, source)
    return RunResult(version, funnel.steps, len(source.quarantine), [warning] if warning else [])


def write_accepted(
    store: Store, dataset: str, accepted: pl.DataFrame, *, audit: bool, meta: dict[str, Any], **write: Any
) -> Version:
    """Write ``accepted`` (with its ``split`` column) as a version; with ``audit``, the surface-cue
    audit joins ``meta``. The audit runs in a thread while the store writes the parquet files
    (pyarrow and polars release the GIL, so the two share both cores); the store asks for the
    meta only after, and an audit that fails leaves no version. ``write``: ``write_version``'s
    other keywords."""
    splits = {split: accepted.filter(pl.col("split") == split) for split in ("train", "test")}
    if not audit:
        return store.write_version(dataset, splits, meta=meta, **write)
    with ThreadPoolExecutor(1, thread_name_prefix="surface-audit") as pool:
        audited = pool.submit(_audit, accepted)
        return store.write_version(dataset, splits, meta=lambda: meta | audited.result(), **write)


def _audit(accepted: pl.DataFrame) -> dict[str, Any]:
    """``{"audit": report}`` for the manifest; empty when there are too few pairs to audit."""
    if accepted.height < 20:
        return {}
    return {"audit": surface_audit(accepted).to_dict()}


def _expected_items(recipe: Recipe, traits: list[str], limit: int | None) -> int | None:
    """How many items the source step will make, when that is known up front."""
    generator = recipe.generator
    if generator is None or isinstance(generator, LLMGenerate):
        return limit
    return _per_trait(generator, traits, limit) * len(traits)


def _per_trait(generator: TemplateGenerate, traits: list[str], limit: int | None) -> int:
    """Items to generate per trait: the recipe's count, or an even share of ``limit``."""
    return generator.per_trait if limit is None else min(generator.per_trait, math.ceil(limit / len(traits)))


def select_traits(recipe: Recipe, traits: list[str] | None) -> list[str]:
    available = recipe.trait_list
    if not traits:
        return available
    unknown = [t for t in traits if t not in available]
    if unknown:
        raise RecipeError(
            f"recipe {recipe.name!r} has no trait {unknown[0]!r}; its traits: {', '.join(available)}"
        )
    return traits


def read_source(
    recipe: Recipe,
    *,
    traits: list[str],
    seed: int,
    recipe_hash: str,
    limit: int | None,
    tick: Progress,
    llm: LLMClient | None = None,
) -> SourceOutput:
    common = {"domain": recipe.domain, "seed": seed, "recipe_hash": recipe_hash}
    if isinstance(recipe.generate, LLMGenerate):
        assert llm is not None, "a recipe with generate: {kind: llm} has an llm: block"
        return generate_with_llm(
            recipe.generate,
            llm,
            traits=traits,
            limit=limit,
            on_item=lambda n: tick("generating scenarios", n),
            **common,
        )
    if isinstance(recipe.source, AnswerKeySource):
        out = read_answer_key(recipe.source, trait=traits[0], limit=limit, **common)
    elif isinstance(recipe.source, ABEvalSource):
        out = read_ab_eval(recipe.source, trait=traits[0], limit=limit, **common)
    else:
        generator = recipe.generator
        assert isinstance(generator, TemplateGenerate)
        per_trait = _per_trait(generator, traits, limit)
        try:
            return generate_from_bank(
                generator.bank_path(recipe.domain),
                traits=traits,
                per_trait=per_trait,
                on_item=lambda n: tick("generating", n),
                **common,
            )
        except BankError as exc:
            raise SourceError(str(exc)) from exc
    tick("reading", len(out.rows))
    return out


def build_stages(recipe: Recipe, store: Store | None = None, tick: Progress | None = None) -> list[Stage]:
    """The curation stages a recipe asks for, in order (its ``curation:`` block)."""
    against = recipe.curation.dedupe.against
    reference = None
    if against:
        if store is None:
            raise RecipeError(f"recipe {recipe.name!r}: curation.dedupe.against needs a store")
        reference = reference_items(store, recipe.dataset_name, against)
    return curation_stages(recipe.curation, reference=reference, reference_name=", ".join(against), tick=tick)


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _side_tables(dropped: list[pl.DataFrame], routed: pl.DataFrame) -> dict[str, pa.Table]:
    side: dict[str, pa.Table] = {}
    if dropped:
        side["dropped"] = pa.concat_tables([conform(d, DROPPED_SCHEMA) for d in dropped])
    if routed.height:
        side["routed"] = conform(routed, ITEM_SCHEMA)
    return side


def _side_files(recipe: Recipe, source: SourceOutput) -> dict[str, str]:
    files = {"recipe.yaml": recipe.to_yaml()}
    if source.quarantine:
        files["quarantine.jsonl"] = quarantine_lines(source)
    return files


def _meta(recipe: Recipe, seed: int, traits: list[str], *, trial: bool = False) -> dict[str, Any]:
    src = recipe.source
    sources = (
        [{"kind": src.kind, "path": recipe.relative_path(src.path), "license": src.license}]
        if src
        else [_llm_source(recipe)]
        if isinstance(recipe.generate, LLMGenerate)
        else [
            {
                "kind": "template",
                "bank": (recipe.generator.bank if recipe.generator else None) or recipe.domain,
            }
        ]
    )
    annotation = {"annotation_k": recipe.annotation.k} if recipe.annotation else {}
    return {
        **annotation,
        "recipe": recipe.name,
        "domain": recipe.domain,
        "traits": traits,
        "seed": seed,
        "sources": sources,
        "license": recipe.license,
        **({"trial": True} if trial else {}),
    }


def _llm_source(recipe: Recipe) -> dict[str, Any]:
    assert isinstance(recipe.generate, LLMGenerate) and recipe.llm is not None
    return {"kind": "llm", "model": recipe.llm.model, "topics": recipe.generate.topics}
