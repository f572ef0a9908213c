"""Commands for recipes: list, show, validate, run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.store import DEFAULT_STORE, Store
from curation.surface_audit import WARN_ABOVE, AuditReport
from recipes.runner import run_recipe
from recipes.spec import builtin_recipes, find_recipe, load_recipe
from traitdose.console import StoreOpt, clean_errors, console, funnel_table, progress_bar

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
    console.print(f"# {find_recipe(name)}  (hash {recipe.content_hash()})", highlight=False)
    console.print(recipe.to_yaml(), highlight=False, markup=False)


@recipe_app.command("validate")
@clean_errors
def validate(file: Annotated[Path, typer.Argument(help="Recipe YAML file.")]) -> None:
    """Check a recipe file; exit 1 with the file, line and field of the first error."""
    recipe = load_recipe(str(file))
    console.print(f"ok: {file} → dataset {recipe.dataset_name!r}, traits {', '.join(recipe.trait_list)}")


@app.command("run")
@clean_errors
def run(
    name: Annotated[str, typer.Argument(help="Built-in recipe name (see `traitdose recipes`) or YAML file.")],
    store: StoreOpt = DEFAULT_STORE,
    trait: Annotated[
        list[str] | None, typer.Option("--trait", help="Only these traits (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N items.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the recipe's seed.")] = None,
    no_audit: Annotated[
        bool, typer.Option("--no-audit", help="Skip the surface-cue audit at the end of the run.")
    ] = False,
) -> None:
    """Run a recipe and write a new version of its dataset into the store."""
    recipe = load_recipe(name)
    with progress_bar() as bar:
        task = bar.add_task(f"{recipe.name}: generating", total=None)

        def tick(stage: str, n: int) -> None:
            bar.update(task, description=f"{recipe.name}: {stage}", advance=n)

        result = run_recipe(
            recipe, Store(store), seed=seed, traits=trait, limit=limit, progress=tick, audit=not no_audit
        )
    console.print(funnel_table(result.funnel, title=f"{result.version.ref} funnel"))
    rows = result.version.manifest["rows"]
    console.print(
        f"wrote [bold]{result.version.ref}[/] → {result.version.path} "
        f"({', '.join(f'{k}: {v}' for k, v in rows.items())})"
    )
    llm = result.version.manifest.get("llm")
    if llm:
        usage = llm["usage"]
        console.print(
            f"llm {llm['model']}: {usage['calls']} calls, {usage['cache_hits']} cache hits, "
            f"{usage['retries']} retries, {usage['prompt_tokens']}+{usage['completion_tokens']} tokens"
            + (f", ${usage['cost_usd']:.4f}" if "cost_usd" in usage else ""),
            highlight=False,
        )
    audited = result.version.manifest.get("audit")
    if audited:
        print_audit_line(audited)
    if result.quarantined:
        console.print(
            f"[yellow]{result.quarantined} unparseable source rows → {result.version.path}/quarantine.jsonl"
        )


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
