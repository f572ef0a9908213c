"""What every package's ``cli.py`` shares: one console, one-line errors, funnel tables."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

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

# Errors that mean "bad input": shown as one line, exit code 1, no traceback.
# Optional dependencies and the extra that installs each, for a helpful message when one is missing.
OPTIONAL_EXTRAS = {
    "fastapi": "web",
    "uvicorn": "web",
    "jinja2": "web",
    "krippendorff": "web",
    "sklearn": "web",
    "scipy": "web",
    "argilla": "argilla",
    "torch": "train",
    "ray": "ray",
    "transformers": "train",
    "peft": "train",
}

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, LookupError, FileNotFoundError, PermissionError)


def clean_errors(func: F) -> F:
    """Turn bad-input exceptions into ``error: <message>`` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModuleNotFoundError as exc:
            extra = OPTIONAL_EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            err_console.print(
                f"[bold red]error:[/] this command needs {exc.name!r}: pip install 'traitdose[{extra}]'",
                highlight=False,
            )
            raise typer.Exit(1) from exc
        except USER_ERRORS as exc:
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


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
        table.add_row(step["stage"], str(step["in"]), str(step["out"]), reasons or "-")
    return table
