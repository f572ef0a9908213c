"""Commands for dataset cards and publishing: ``traitdose card`` and ``traitdose publish``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.errors import OptionError
from core.store import DEFAULT_STORE, Store
from data_cards.card import write_card_to
from traitdose.console import StoreOpt, clean_errors, console

app = typer.Typer(no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="DATASET@vN (or DATASET for the latest).")]


@app.command("card")
@clean_errors
def card(
    ref: RefArg,
    store: StoreOpt = DEFAULT_STORE,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the card here (figure beside it) instead of into the version."),
    ] = None,
) -> None:
    """Render a version's dataset card (re-render it in place when no --out is given)."""
    version = Store(store).resolve(ref)
    path = write_card_to(version.path, out or version.path / "README.md")
    console.print(f"wrote the card of [bold]{version.ref}[/] → {path}")


@app.command("publish")
@clean_errors
def publish(
    ref: RefArg,
    repo: Annotated[str, typer.Option("--repo", help="Hub dataset repo, ORG/NAME.")],
    store: StoreOpt = DEFAULT_STORE,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[
        Path | None,
        typer.Option("--dry-run", help="Write the exact upload tree into this folder; upload nothing."),
    ] = None,
    drop_annotator_notes: Annotated[
        bool,
        typer.Option(
            "--drop-annotator-notes",
            help="Upload pseudonymous annotator ids and no free-text notes (the local version is unchanged).",
        ),
    ] = False,
) -> None:
    """Upload a version to the Hugging Face Hub as one commit, tagged with the version name."""
    from data_cards.publish import publish as publish_version
    from data_cards.publish import stage

    if "/" not in repo.strip("/"):
        raise OptionError(f"--repo {repo!r}: expected ORG/NAME")
    version = Store(store).resolve(ref)
    if dry_run is not None:
        staged = stage(version, dry_run, repo_id=repo, drop_annotator_notes=drop_annotator_notes)
        table = Table(title=f"{version.ref} → {repo} (dry run: {dry_run})")
        table.add_column("file")
        table.add_column("bytes", justify="right")
        for f in staged:
            table.add_row(f.path, f"{f.bytes:,}")
        table.add_row("[bold]total", f"[bold]{sum(f.bytes for f in staged):,}")
        console.print(table)
        return
    console.print(f"publishing [bold]{version.ref}[/] to {repo} ...")
    result = publish_version(version, repo, private=private, drop_annotator_notes=drop_annotator_notes)
    if result.already:
        console.print(
            f"{version.ref} is already published as {repo}@{result.tag} "
            f"(commit {result.commit}); nothing to do"
        )
    else:
        console.print(
            f"published [bold]{version.ref}[/] → {result.url} (commit {result.commit}, tag {result.tag})"
        )
