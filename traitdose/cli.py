"""The ``traitdose`` command: mounts each package's own commands, holds no logic.

Each command's package is imported only when that command runs, so ``traitdose --help``
(and every command) pays only for what it uses. ``--help`` lists the commands from the
table below, grouped in panels, without importing any package.
"""

from __future__ import annotations

import importlib
import os
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from traitdose.console import DEBUG_ENV


class Lazy(NamedTuple):
    module: str  # the package's cli module, holding a Typer ``app``
    help: str  # the one line shown in ``traitdose --help``
    panel: str
    group: bool = False  # the whole ``app`` is the command (``annotate``), not one command in it


COMMANDS: dict[str, Lazy] = {
    "recipes": Lazy("recipes.cli", "List the built-in recipes.", "Build"),
    "recipe": Lazy("recipes.cli", "Show or validate one recipe.", "Build"),
    "run": Lazy("recipes.cli", "Run a recipe and write a new version of its dataset.", "Build"),
    "dedupe": Lazy("curation.cli", "Remove near-duplicates from any table (MinHash LSH).", "Curate"),
    "decontam": Lazy("curation.cli", "Remove rows that overlap evaluation benchmarks.", "Curate"),
    "filter": Lazy("curation.cli", "Quality filters: lengths, refusals, language, PII, phrases.", "Curate"),
    "versions": Lazy("curation.cli", "List, show, diff and check the versions of a dataset.", "Inspect"),
    "audit": Lazy("curation.cli", "Surface-cue audit: do shallow features give the label away?", "Inspect"),
    "card": Lazy("data_cards.cli", "Render a version's dataset card.", "Publish"),
    "publish": Lazy("data_cards.cli", "Upload a version to the Hugging Face Hub.", "Publish"),
    "annotate": Lazy(
        "annotation.cli", "Human annotation: queue, web UI, agreement, merge.", "Annotate", True
    ),
    "train": Lazy("trainer.cli", "Train a model on a dose: DPO on pairs, or GRPO with rewards.", "Train"),
    "eval": Lazy("trainer.cli", "Evaluate a model: pair accuracy (DPO) or graded answers (GRPO).", "Train"),
    "reward": Lazy("trainer.cli", "The trait reward model: train and evaluate.", "Train"),
}


def load_command(name: str) -> Any:
    """The real click command behind ``name`` (imports its package)."""
    entry = COMMANDS[name]
    group = typer.main.get_command(importlib.import_module(entry.module).app)
    if entry.group:
        group.name = name
        # Shell completion belongs to the top-level command only.
        group.params = [p for p in group.params if p.name not in ("install_completion", "show_completion")]
        return group
    return group.commands[name]  # type: ignore[attr-defined]


class LazyGroup(TyperGroup):
    """Lists commands from :data:`COMMANDS`; imports a command's package only to run it."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        # A stand-in carrying the help line and panel: listing needs nothing more.
        return TyperCommand(cmd_name, help=entry.help, short_help=entry.help, rich_help_panel=entry.panel)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, _, rest = super().resolve_command(ctx, args)
        return name, load_command(name) if name else None, rest


app = typer.Typer(
    cls=LazyGroup,
    help="Build small, clean, versioned preference datasets for beneficial traits, and apply them as a dose.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option("--debug", help=f"Show the traceback of every error (or set {DEBUG_ENV}=1)."),
    ] = False,
) -> None:
    """Build small, clean, versioned preference datasets for beneficial traits, and apply them as a dose."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


if __name__ == "__main__":
    app()
