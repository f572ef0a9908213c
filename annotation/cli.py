"""``traitdose annotate ...``: the queue, the web UI, agreement, merge and the Argilla bridge.

Every command first syncs the routed items of the dataset's versions into its queue,
so items a run routes reach annotators with no extra step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from annotation.queue import DEFAULT_K, Queue
from annotation.sync import sync_routed
from annotation.web.limits import DEFAULT_MAX_BODY, KEEP_ALIVE_S
from core.errors import OptionError
from core.store import DEFAULT_STORE, Store
from traitdose.console import StoreOpt, clean_errors, console, err_console, open_store, progress_bar, say

app = typer.Typer(
    name="annotate", help="Human annotation: queue, web UI, agreement, merge, Argilla.", no_args_is_help=True
)

DatasetArg = Annotated[str | None, typer.Argument(help="Dataset name in the store.", show_default=False)]
# The older spelling, kept as an alias: `annotate status --dataset health` = `annotate status health`.
DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Same as DATASET.", show_default=False)]
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


def dataset_name(arg: str | None, option: str | None) -> str:
    """DATASET given as the argument or as --dataset (not both, unless they agree)."""
    if arg and option and arg != option:
        raise OptionError(f"two datasets given: {arg!r} and --dataset {option!r}")
    name = arg or option
    if not name:
        raise OptionError("name the dataset: traitdose annotate COMMAND DATASET")
    return name


def open_queue(store: Path, dataset: str, k: int | None = None) -> tuple[Store, Queue]:
    s = open_store(store)  # a merge writes a version, with its card
    if not s.versions(dataset):
        s.resolve(dataset)  # raises the store's "no dataset ... (datasets: ...)" error
    queue = Queue.for_dataset(s, dataset)
    added = sync_routed(queue, s, dataset, k=k)
    if added:
        err_console.print(Text(f"queued {added} routed item(s) from {dataset}"))
    return s, queue


@app.command("add-annotator")
@clean_errors
def add_annotator(
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    dataset_arg: DatasetArg = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Register an annotator and print their login token (shown once; only a hash is kept)."""
    dataset = dataset_name(dataset_arg, dataset)
    _, queue = open_queue(store, dataset)
    token = queue.add_annotator(name)
    # Names are the user's text: printed as text, never read as rich markup.
    say(f"annotator {name.strip()} on {dataset}; login token (keep it secret):")
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
    say(f"queued {added} of {picked.num_rows} selected accepted item(s) of {version.ref} for audit")


@app.command("serve")
@clean_errors
def serve(
    dataset_arg: DatasetArg = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    k: KOpt = None,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Send login cookies over HTTPS only (default: on unless --host is loopback).",
            show_default=False,
        ),
    ] = None,
    max_body: Annotated[
        int, typer.Option("--max-body", min=1024, help="Largest request body accepted, in bytes.")
    ] = DEFAULT_MAX_BODY,
) -> None:
    """Serve the labeling web UI (and its JSON API) for one dataset."""
    import uvicorn

    from annotation.web.app import create_app

    dataset = dataset_name(dataset_arg, dataset)
    secure = not is_loopback(host) if secure_cookies is None else secure_cookies
    s, queue = open_queue(store, dataset, k)
    progress = queue.progress()
    say(f"{dataset}: {progress['items']} item(s) queued; open http://{host}:{port}/")
    if secure and is_loopback(host):
        err_console.print(
            Text("secure cookies on loopback: log in through an HTTPS proxy, or use --no-secure-cookies")
        )
    web = create_app(
        queue,
        dataset=dataset,
        secure_cookies=secure,
        max_body=max_body,
        sync=lambda: sync_routed(queue, s, dataset, k=k),
    )
    # People read an item for seconds to minutes between calls: a keep-alive past that (uvicorn's
    # default is 5 s) spares a new connection (and, behind a proxy, a TLS handshake) per label.
    uvicorn.run(web, host=host, port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)


@app.command("status")
@clean_errors
def status(
    dataset_arg: DatasetArg = None, dataset: DatasetOpt = None, store: StoreOpt = DEFAULT_STORE
) -> None:
    """Items done and pending, labels per annotator, agreement and audit accuracy."""
    from annotation.agreement import TIE_RULE
    from annotation.status import report

    dataset = dataset_name(dataset_arg, dataset)
    _, queue = open_queue(store, dataset)
    r = report(queue)
    say(f"{dataset}: {r.items} item(s): {r.done} done ({r.resolved} with a majority), {r.pending} pending")
    people = Table(title="labels per annotator")
    people.add_column("annotator")
    people.add_column("labels", justify="right")
    for name, n in r.per_annotator.items():
        people.add_row(Text(name), str(n))
    console.print(people)
    a = r.agreement
    say(
        f"Krippendorff's alpha (nominal, {a.items} items with 2+ labels, {a.annotators} annotators): "
        f"{_num(a.krippendorff_alpha)}"
    )
    for pair, kappa in a.cohen_kappa.items():
        say(f"Cohen's kappa {pair.replace('|', ' vs ')}: {_num(kappa)}")
    if r.audit is not None:
        au = r.audit
        shown = "n/a" if au.accuracy is None else f"{au.accuracy:.1%} (95% CI {au.low:.1%}–{au.high:.1%})"
        say(f"audit: {au.agreed}/{au.resolved} resolved audit items agree with the stored label: {shown}")
    say(f"tie rule: {TIE_RULE}", "dim")


@app.command("merge")
@clean_errors
def merge(
    ref: Annotated[
        str | None,
        typer.Argument(help="DATASET or DATASET@vN holding the routed items (default: the latest)."),
    ] = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    base: Annotated[
        str | None, typer.Option("--from", help="Same as DATASET@vN (the older spelling).")
    ] = None,
) -> None:
    """Resolve labelled items by majority and write a new version (parent: the routed one)."""
    from annotation.merge import merge as merge_labels

    if ref and "@" in ref:
        base = base or ref
    dataset = dataset_name(ref.partition("@")[0] if ref else None, dataset)
    s, queue = open_queue(store, dataset)
    version = s.resolve(base or dataset)
    if version.dataset != dataset:
        raise OptionError(f"--from {base!r} is not a version of {dataset!r}")
    with progress_bar() as bar:
        bar.add_task(f"merging labels into {version.ref}", total=None)
        result = merge_labels(s, queue, version)
    m = result.summary
    say(
        f"wrote {result.version.ref} (parent {version.ref}): {m['resolved']} resolved, "
        f"{m['both_bad']} both bad, {m['ties']} ties dropped, {m['unresolved']} still routed; "
        f"alpha {_num(m['krippendorff_alpha'])}"
    )


@app.command("push")
@clean_errors
def push(
    argilla_url: ArgillaUrl,
    workspace: Workspace,
    name: ArgillaName = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Submitted responses needed per record.")] = DEFAULT_K,
    dataset_arg: DatasetArg = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Create an Argilla dataset from the queue (API key from ARGILLA_API_KEY)."""
    queue, client, bridge, target = _argilla(store, dataset_arg, dataset, argilla_url, name)
    n = bridge.push(queue, client, name=target, workspace=workspace, k=k)
    say(f"pushed {n} record(s) to {argilla_url} {workspace}/{target}")


@app.command("pull")
@clean_errors
def pull(
    argilla_url: ArgillaUrl,
    workspace: Workspace,
    name: ArgillaName = None,
    dataset_arg: DatasetArg = None,
    dataset: DatasetOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Read submitted Argilla responses back into the queue."""
    queue, client, bridge, target = _argilla(store, dataset_arg, dataset, argilla_url, name)
    n = bridge.pull(queue, client, name=target, workspace=workspace)
    say(f"pulled {n} new response(s) from {workspace}/{target}")


def _argilla(
    store: Path, dataset_arg: str | None, dataset: str | None, url: str, name: str | None
) -> tuple[Queue, Any, Any, str]:
    """The queue, an Argilla client, the bridge module and the Argilla dataset name."""
    from annotation import argilla_bridge

    chosen = dataset_name(dataset_arg, dataset)
    _, queue = open_queue(store, chosen)
    return queue, argilla_bridge.connect(url), argilla_bridge, name or chosen


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (cookies need no HTTPS there)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
