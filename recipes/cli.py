"""Commands for recipes: list, show, validate, run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from core.store import DEFAULT_STORE, Store
from curation.engine import EngineSpec, choose_engine
from curation.surface_audit import WARN_ABOVE, AuditReport
from recipes.runner import run_recipe
from recipes.spec import builtin_recipes, find_recipe, load_recipe
from traitdose.console import (
    EngineOpt,
    PartitionsOpt,
    RayAddressOpt,
    StageBars,
    StoreOpt,
    clean_errors,
    console,
    err_console,
    funnel_table,
    open_store,
    progress_bar,
)

app = typer.Typer(no_args_is_help=True)
recipe_app = typer.Typer(help="Show or validate one recipe.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


@app.command("recipes")
@clean_errors
def list_recipes() -> None:
    """List the built-in recipes."""
    table = Table(title="built-in recipes")
    for column in ("name", "domain", "traits", "description"):
        table.add_column(column)
    for name, path in builtin_recipes().items():
        recipe = load_recipe(path)
        table.add_row(name, recipe.domain, ", ".join(recipe.trait_list), recipe.description)
    console.print(table)


@recipe_app.command("show")
@clean_errors
def show(name: Annotated[str, typer.Argument(help="Built-in recipe name or YAML file.")]) -> None:
    """Print a recipe with every default filled in."""
    recipe = load_recipe(name)
    console.print(Text(f"# {find_recipe(name)}  (hash {recipe.content_hash()})"))
    console.print(Text(recipe.to_yaml()), soft_wrap=True)


@recipe_app.command("validate")
@clean_errors
def validate(
    file: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    store: StoreOpt = DEFAULT_STORE,
    trait: Annotated[list[str] | None, typer.Option("--trait", help="Only these traits (as in run).")] = None,
) -> None:
    """Check a recipe the way `run` does before its first item; exit 1 naming file, line and field."""
    from recipes.preflight import preflight

    recipe = load_recipe(str(file))
    checked = preflight(recipe, Store(store), trait)
    console.print(
        Text(f"ok: {file} → dataset {recipe.dataset_name!r}, traits {', '.join(recipe.trait_list)}"),
        soft_wrap=True,
    )
    for line in checked:
        console.print(Text(f"  {line}"), soft_wrap=True)


@app.command("run")
@clean_errors
def run(
    name: Annotated[str, typer.Argument(help="Built-in recipe name (see `traitdose recipes`) or YAML file.")],
    store: StoreOpt = DEFAULT_STORE,
    trait: Annotated[
        list[str] | None, typer.Option("--trait", help="Only these traits (repeatable).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most N items: a trial run, marked as such.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the recipe's seed.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write a new version even when it is identical to the latest.")
    ] = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    partitions: PartitionsOpt = None,
    no_audit: Annotated[
        bool, typer.Option("--no-audit", help="Skip the surface-cue audit at the end of the run.")
    ] = False,
) -> None:
    """Run a recipe and write a new version of its dataset into the store."""
    recipe = load_recipe(name)
    spec = EngineSpec(choose_engine(engine, recipe.curation.engine), ray_address, partitions)
    with progress_bar() as bar:
        stages = StageBars(bar, recipe.name)
        result = run_recipe(
            recipe,
            open_store(store),
            seed=seed,
            traits=trait,
            limit=limit,
            progress=stages.tick,
            on_stage=stages.start,
            skip_identical=not force,
            engine=spec,
            audit=not no_audit,
        )
    version = result.version
    if version.reused:
        console.print(
            Text(f"identical to {version.ref}: nothing written (--force writes a new version anyway)"),
            soft_wrap=True,
        )
        return
    console.print(funnel_table(result.funnel, title=f"{version.ref} funnel"))
    m = version.manifest
    rows = ", ".join(f"{k}: {v}" for k, v in m.rows.items())
    trial = " [trial: a --limit sample, not the full dataset]" if m.trial else ""
    console.print(Text.assemble("wrote ", (version.ref, "bold"), f" → {version.path} ({rows}){trial}"))
    if m.llm:
        usage = m.llm["usage"]
        console.print(
            f"llm {m.llm['model']}: {usage['calls']} calls, {usage['cache_hits']} cache hits, "
            f"{usage['retries']} retries, {usage['prompt_tokens']}+{usage['completion_tokens']} tokens"
            + (f", ${usage['cost_usd']:.4f}" if "cost_usd" in usage else ""),
            highlight=False,
            markup=False,
        )
    audited = result.version.manifest.get("audit")
    if audited:
        print_audit_line(audited)
    if result.quarantined:
        console.print(
            Text(f"{result.quarantined} unparseable source rows → {version.path}/quarantine.jsonl", "yellow")
        )
    for warning in result.warnings:
        err_console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


def print_audit_line(audited: dict) -> None:
    """One line with the surface-cue accuracy; a warning naming the worst templates above 0.65."""
    report = AuditReport(**audited)
    line = f"surface-cue audit: {report.accuracy:.2f} ({report.method}, {report.pairs} pairs; 0.50 = no cue)"
    if not report.leaks:
        console.print(line, highlight=False)
        return
    worst = ", ".join(report.worst()) or "no single template"
    console.print(
        f"[yellow]warning: {line} is above {WARN_ABOVE}: shallow features give the label away; "
        f"worst templates: {worst} (details: traitdose audit DATASET@vN)[/]",
        highlight=False,
    )
