"""``traitdose annotate ...``: the queue, the web UI, agreement, merge and the Argilla bridge.

Every command first syncs the routed items of the dataset's versions into its queue,
so items a run routes reach annotators with no extra step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from annotation.queue import DEFAULT_K, Queue
from annotation.sync import sync_routed
from core.errors import OptionError
from core.store import DEFAULT_STORE, Store
from traitdose.console import StoreOpt, clean_errors, console, err_console, open_store, progress_bar

app = typer.Typer(
    name="annotate", help="Human annotation: queue, web UI, agreement, merge, Argilla.", no_args_is_help=True
)

DatasetOpt = Annotated[str, typer.Option("--dataset", help="Dataset name in the store.")]
KOpt = Annotated[
    int | None,
    typer.Option(
        "--k", min=1, help=f"Labels needed per item (default: the recipe's annotation.k, else {DEFAULT_K})."
    ),
]
ArgillaUrl = Annotated[
    str, typer.Option("--argilla-url", help="Argilla server URL.", envvar="ARGILLA_API_URL")
]
Workspace = Annotated[str, typer.Option("--workspace", help="Argilla workspace.")]
ArgillaName = Annotated[
    str | None, typer.Option("--name", help="Argilla dataset name (default: the dataset's).")
]


def open_queue(store: Path, dataset: str, k: int | None = None) -> tuple[Store, Queue]:
    s = open_store(store)  # a merge writes a version, with its card
    if not s.versions(dataset):
        s.resolve(dataset)  # raises the store's "no dataset ... (datasets: ...)" error
    queue = Queue.for_dataset(s, dataset)
    added = sync_routed(queue, s, dataset, k=k)
    if added:
        err_console.print(f"queued {added} routed item(s) from {dataset}")
    return s, queue


@app.command("add-annotator")
@clean_errors
def add_annotator(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    dataset: DatasetOpt,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Register an annotator and print their login token (shown once; only a hash is kept)."""
    _, queue = open_queue(store, dataset)
    token = queue.add_annotator(name)
    console.print(
        f"annotator [bold]{name}[/] on {dataset}; login token (keep it secret):",
        highlight=False,
        soft_wrap=True,
    )
    print(token)


@app.command("add")
@clean_errors
def add(
    ref: Annotated[str, typer.Argument(help="DATASET@vN whose accepted items to audit.")],
    sample: Annotated[
        int | None, typer.Option("--sample", help="A random sample of N accepted items.")
    ] = None,
    where: Annotated[
        str | None, typer.Option("--where", help="SQL filter on item columns, e.g. \"domain = 'health'\".")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    k: KOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Queue accepted items of a version for a human audit."""
    from annotation.audit import select_for_audit

    s = Store(store)
    version = s.resolve(ref)
    _, queue = open_queue(store, version.dataset, k)
    picked = select_for_audit(version, sample=sample, where=where, seed=seed)
    added = queue.add_items(picked, kind="audit", source=version.ref, k=k or DEFAULT_K)
    console.print(
        f"queued {added} of {picked.num_rows} selected accepted item(s) of {version.ref} for audit",
        soft_wrap=True,
    )


@app.command("serve")
@clean_errors
def serve(
    dataset: DatasetOpt,
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    k: KOpt = None,
) -> None:
    """Serve the labeling web UI (and its JSON API) for one dataset."""
    import uvicorn

    from annotation.web.app import create_app

    s, queue = open_queue(store, dataset, k)
    progress = queue.progress()
    console.print(
        f"{dataset}: {progress['items']} item(s) queued; open http://{host}:{port}/",
        highlight=False,
        soft_wrap=True,
    )
    web = create_app(queue, dataset=dataset, sync=lambda: sync_routed(queue, s, dataset, k=k))
    uvicorn.run(web, host=host, port=port, log_level="warning")


@app.command("status")
@clean_errors
def status(dataset: DatasetOpt, store: StoreOpt = DEFAULT_STORE) -> None:
    """Items done and pending, labels per annotator, agreement and audit accuracy."""
    from annotation.agreement import TIE_RULE
    from annotation.status import report

    _, queue = open_queue(store, dataset)
    r = report(queue)
    console.print(
        f"[bold]{dataset}[/]: {r.items} item(s): {r.done} done ({r.resolved} with a majority), "
        f"{r.pending} pending",
        highlight=False,
        soft_wrap=True,
    )
    people = Table(title="labels per annotator")
    people.add_column("annotator")
    people.add_column("labels", justify="right")
    for name, n in r.per_annotator.items():
        people.add_row(name, str(n))
    console.print(people)
    a = r.agreement
    console.print(
        f"Krippendorff's alpha (nominal, {a.items} items with 2+ labels, {a.annotators} annotators): "
        f"{_num(a.krippendorff_alpha)}",
        highlight=False,
        soft_wrap=True,
    )
    for pair, kappa in a.cohen_kappa.items():
        console.print(
            f"Cohen's kappa {pair.replace('|', ' vs ')}: {_num(kappa)}", highlight=False, soft_wrap=True
        )
    if r.audit is not None:
        au = r.audit
        shown = "n/a" if au.accuracy is None else f"{au.accuracy:.1%} (95% CI {au.low:.1%}–{au.high:.1%})"
        console.print(
            f"audit: {au.agreed}/{au.resolved} resolved audit items agree with the stored label: {shown}",
            soft_wrap=True,
        )
    console.print(f"[dim]tie rule: {TIE_RULE}[/]")


@app.command("merge")
@clean_errors
def merge(
    dataset: DatasetOpt,
    store: StoreOpt = DEFAULT_STORE,
    base: Annotated[
        str | None, typer.Option("--from", help="DATASET@vN holding the routed items (default: latest).")
    ] = None,
) -> None:
    """Resolve labelled items by majority and write a new version (parent: the routed one)."""
    from annotation.merge import merge as merge_labels

    s, queue = open_queue(store, dataset)
    version = s.resolve(base or dataset)
    if version.dataset != dataset:
        raise OptionError(f"--from {base!r} is not a version of {dataset!r}")
    with progress_bar() as bar:
        bar.add_task(f"merging labels into {version.ref}", total=None)
        result = merge_labels(s, queue, version)
    m = result.summary
    console.print(
        f"wrote [bold]{result.version.ref}[/] (parent {version.ref}): {m['resolved']} resolved, "
        f"{m['both_bad']} both bad, {m['ties']} ties dropped, {m['unresolved']} still routed; "
        f"alpha {_num(m['krippendorff_alpha'])}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("push")
@clean_errors
def push(
    dataset: DatasetOpt,
    argilla_url: ArgillaUrl,
    workspace: Workspace,
    name: ArgillaName = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Submitted responses needed per record.")] = DEFAULT_K,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Create an Argilla dataset from the queue (API key from ARGILLA_API_KEY)."""
    from annotation import argilla_bridge

    _, queue = open_queue(store, dataset)
    client = argilla_bridge.connect(argilla_url)
    n = argilla_bridge.push(queue, client, name=name or dataset, workspace=workspace, k=k)
    console.print(
        f"pushed {n} record(s) to {argilla_url} {workspace}/{name or dataset}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("pull")
@clean_errors
def pull(
    dataset: DatasetOpt,
    argilla_url: ArgillaUrl,
    workspace: Workspace,
    name: ArgillaName = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Read submitted Argilla responses back into the queue."""
    from annotation import argilla_bridge

    _, queue = open_queue(store, dataset)
    client = argilla_bridge.connect(argilla_url)
    n = argilla_bridge.pull(queue, client, name=name or dataset, workspace=workspace)
    console.print(
        f"pulled {n} new response(s) from {workspace}/{name or dataset}", highlight=False, soft_wrap=True
    )


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
