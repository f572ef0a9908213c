"""The checks a run makes before its first item, runnable on their own (``recipe validate``).

A recipe that passes here fails in ``run`` only for reasons that need the run itself (an
endpoint that goes down, a row that cannot be parsed). Each check calls the same code
the run calls, on a sample of one item, so the two cannot drift apart.
"""

from __future__ import annotations

from core.errors import SourceError
from core.store import Store
from recipes.runner import build_stages, read_source, select_traits
from recipes.sources.templates import BankError
from recipes.spec import LLMGenerate, Recipe


def preflight(recipe: Recipe, store: Store | None = None, traits: list[str] | None = None) -> list[str]:
    """Raise the error ``run`` would raise before its first item; return what was checked."""
    checked = []
    chosen = select_traits(recipe, traits)
    if recipe.llm is not None:
        from recipes.llm.client import api_key

        api_key(recipe.llm)
        checked.append(f"llm: {recipe.llm.model} (key: {recipe.llm.api_key_env or 'none needed'})")
    if not isinstance(recipe.generate, LLMGenerate):
        try:
            out = read_source(
                recipe,
                traits=chosen,
                seed=recipe.seed,
                recipe_hash="preflight",
                limit=len(chosen),  # one item per trait: every trait must have templates
                tick=lambda stage, n: None,
            )
        except BankError as exc:
            raise SourceError(str(exc)) from exc
        checked.append(f"source: {out.rows_read} row(s) read as a sample")
    stages = build_stages(recipe, store)
    checked.append(f"curation: {', '.join(stage.name for stage in stages)}")
    for benchmark in recipe.curation.decontam.benchmarks:
        if not benchmark.path.startswith("hf:"):  # hf: benchmarks are fetched by the run itself
            from curation.decontam import load_benchmark

            checked.append(f"benchmark {benchmark.label}: {len(load_benchmark(benchmark))} text(s)")
    return checked
