"""Commands for the versioned store: list, show and diff versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curation.console import clean_errors, console, funnel_table
from curation.diff import diff_versions
from curation.store import DEFAULT_STORE, Store

app = typer.Typer(no_args_is_help=True)
versions_app = typer.Typer(help="Inspect dataset versions in a store.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")

StoreOpt = Annotated[Path, typer.Option("--store", help="Dataset store folder.", envvar="TRAITDOSE_STORE")]


@versions_app.command("list")
@clean_errors
def list_versions(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOpt = DEFAULT_STORE
) -> None:
    """List a dataset's versions, oldest first."""
    versions = Store(store).versions(dataset)
    if not versions:
        raise LookupError(f"no dataset {dataset!r} in store {store}")
    table = Table(title=f"{dataset} in {store}")
    for column in ("version", "created", "parent", "rows", "recipe hash"):
        table.add_column(column)
    for v in versions:
        m = v.manifest
        rows = ", ".join(f"{k}: {n}" for k, n in m["rows"].items())
        table.add_row(v.name, m["created"], m.get("parent") or "-", rows, m.get("recipe_hash") or "-")
    console.print(table)


@versions_app.command("show")
@clean_errors
def show(
    ref: Annotated[str, typer.Argument(help="DATASET@vN (or DATASET for the latest).")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Show one version: manifest, row counts and funnel."""
    version = Store(store).resolve(ref)
    m = version.manifest
    if as_json:
        console.print_json(json.dumps(m))
        return
    console.print(f"[bold]{version.ref}[/]  {version.path}")
    for key in ("created", "parent", "recipe", "recipe_hash", "seed", "traits"):
        if key in m:
            console.print(f"  {key}: {m[key]}", highlight=False)
    console.print(f"  rows: {m['rows']}  side tables: {m.get('side_rows', {})}", highlight=False)
    console.print(funnel_table(m.get("funnel", []), title="funnel"))


@versions_app.command("diff")
@clean_errors
def diff(
    a: Annotated[str, typer.Argument(help="DATASET@vA")],
    b: Annotated[str, typer.Argument(help="DATASET@vB")],
    store: StoreOpt = DEFAULT_STORE,
    samples: Annotated[int, typer.Option(help="Sample items shown per kind of change.")] = 3,
) -> None:
    """Added, removed and changed item ids between two versions."""
    s = Store(store)
    result = diff_versions(s.resolve(a), s.resolve(b), samples=samples)
    table = Table(title=f"{result.a} → {result.b}")
    for column in ("change", "items", "samples"):
        table.add_column(column)
    for kind in ("added", "removed", "changed"):
        shown = "\n".join(f"{x['id'][:10]}… {x['prompt_text'][:70]}" for x in result.samples[kind])
        table.add_row(kind, str(len(getattr(result, kind))), shown or "-")
    console.print(table)
    console.print(f"rows: {result.rows}", highlight=False)
