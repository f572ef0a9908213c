"""Commands for the versioned store (list, show, diff versions) and the standalone curation stages
(dedupe, decontam, filter)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import typer
from rich.table import Table
from rich.text import Text

from core.check import check_store
from core.diff import diff_versions
from core.errors import OptionError, StoreError
from core.io import WRITABLE, read_table, sibling, write_table
from core.manifest import Manifest
from core.store import DEFAULT_STORE, Store
from curation.config import Benchmark, Bounds, DecontamConfig, DedupeConfig, FilterConfig
from curation.decontam import Decontaminate
from curation.engine import EngineSpec, choose_engine, open_engine
from curation.near_dedupe import NearDedupe
from curation.quality import QualityFilter
from curation.stage import Funnel, Stage, no_drops
from curation.surface_audit import WARN_ABOVE, AuditReport
from curation.surface_audit import audit as surface_audit
from traitdose.console import (
    EngineOpt,
    PartitionsOpt,
    RayAddressOpt,
    StoreOpt,
    clean_errors,
    console,
    err_console,
    funnel_table,
    progress_bar,
)

app = typer.Typer(no_args_is_help=True)
versions_app = typer.Typer(help="Inspect dataset versions in a store.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")


@versions_app.command("list")
@clean_errors
def list_versions(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOpt = DEFAULT_STORE
) -> None:
    """List a dataset's versions, oldest first."""
    s = Store(store)
    versions = s.versions(dataset)
    for path, why in s.problems(dataset):
        err_console.print(Text(f"skipped {path.name}: {why}", style="yellow"), soft_wrap=True)
    if not versions:
        raise StoreError(f"no dataset {dataset!r} in store {store}")
    table = Table(title=f"{dataset} in {store}")
    for column in ("version", "created", "parent", "rows", "recipe hash"):
        table.add_column(column)
    for v in versions:
        m = v.manifest
        rows = ", ".join(f"{k}: {n}" for k, n in m.rows.items()) + (" (trial)" if m.trial else "")
        table.add_row(v.name, m.created, m.parent or "-", rows, m.recipe_hash or "-")
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
        console.print_json(m.to_json())
        return
    console.print(Text.assemble((version.ref, "bold"), f"  {version.path}"))
    for key, value in describe(m):
        console.print(Text(f"  {key}: {value}"))
    console.print(funnel_table(m.funnel, title="funnel"))


def describe(m: Manifest) -> list[tuple[str, str]]:
    """A manifest's header lines as readable text (no Python reprs)."""

    def counts(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {n:,}" for k, n in d.items()) or "none"

    lines = [("created", m.created), ("parent", m.parent or "none (first version)")]
    if m.recipe:
        lines.append(("recipe", f"{m.recipe} (hash {m.recipe_hash or '-'}, seed {m.seed})"))
    if m.traits:
        lines.append(("traits", ", ".join(m.traits)))
    if m.sources:
        lines.append(("sources", "; ".join(_source(s) for s in m.sources)))
    lines += [("rows", counts(m.rows)), ("side tables", counts(m.side_rows))]
    if m.trial:
        lines.append(("trial", "yes: a --limit run, a sample of the recipe rather than the dataset"))
    if m.llm:
        usage = m.llm.get("usage") or {}
        lines.append(
            (
                "llm",
                f"{m.llm.get('model')}: {usage.get('calls', 0)} calls, {usage.get('cache_hits', 0)} cached",
            )
        )
    if m.annotation:
        a = m.annotation
        lines.append(("annotation", f"{a.get('resolved', 0)} resolved, {a.get('unresolved', 0)} unresolved"))
    return lines


def _source(source: dict[str, object]) -> str:
    detail = source.get("path") or source.get("bank") or source.get("model") or ""
    return " ".join(str(x) for x in (source.get("kind"), detail, source.get("license") or "") if x)


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
        table.add_row(kind, str(len(getattr(result, kind))), Text(shown or "-"))  # item text, not markup
    console.print(table)
    console.print(f"rows: {result.rows}", highlight=False)


@versions_app.command("check")
@clean_errors
def check(
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset (default: all).")] = None,
    store: StoreOpt = DEFAULT_STORE,
    load: Annotated[bool, typer.Option(help="Also load each version with `datasets`.")] = True,
) -> None:
    """Verify every version: file checksums, row counts against the manifest, and that it loads."""
    checks = check_store(Store(store), dataset, load=load)
    if not checks:
        raise LookupError(f"no versions{f' of {dataset!r}' if dataset else ''} in store {store}")
    for result in checks:
        console.print(f"{'ok' if result.ok else 'FAIL'}  {result.ref}", highlight=False, markup=False)
        for problem in result.problems:
            console.print(f"    {result.path}: {problem}", highlight=False, markup=False)
    bad = sum(not c.ok for c in checks)
    console.print(f"{len(checks)} versions checked, {bad} with problems", highlight=False)
    if bad:
        raise typer.Exit(1)


@app.command("audit")
@clean_errors
def audit(
    ref: Annotated[str, typer.Argument(help="DATASET@vN (or DATASET for the latest).")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Surface-cue audit: can shallow features of a response alone tell chosen from rejected?"""
    version = Store(store).resolve(ref)
    report = surface_audit(version.frame())
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    print_report(report, version.ref)


def print_report(report: AuditReport, title: str) -> None:
    """Accuracy, strongest cues, length and opening tables, and accuracy per template."""
    verdict = "[red]leaks[/]" if report.leaks else "[green]ok[/]"
    console.print(
        f"[bold]{title}[/]: surface-cue accuracy {report.accuracy:.3f} "
        f"({report.method}, {report.pairs} pairs; "
        f"0.50 = only the trait is left to learn, warning above {WARN_ABOVE}) {verdict}"
    )
    cues = Table(title="strongest cues (weight > 0 favours chosen)")
    for column in ("feature", "weight", "example"):
        cues.add_column(column)
    for cue in report.cues:
        cues.add_row(Text(cue["feature"]), f"{cue['weight']:+.2f}", Text(cue["example"][:90]))
    console.print(cues)
    sides = Table(title="per side")
    for column in ("", "chosen", "rejected"):
        sides.add_column(column)
    ln = report.length
    sides.add_row("mean words", str(ln["chosen_mean_words"]), str(ln["rejected_mean_words"]))
    sides.add_row("median length ratio", str(ln["median_ratio"]), "")
    for side in ("chosen", "rejected"):
        top = ", ".join(f"{w or '∅'} {n}" for w, n in report.openings[side].items())
        cells = [Text(top if side == shown else "") for shown in ("chosen", "rejected")]
        sides.add_row(f"openings ({side})", *cells)
    console.print(sides)
    per = Table(title="accuracy per template / source")
    for column in ("template", "pairs", "accuracy"):
        per.add_column(column)
    for name, stats in sorted(report.by_template.items(), key=lambda kv: -float(kv[1]["accuracy"])):
        style = "red" if float(stats["accuracy"]) > WARN_ABOVE else None
        per.add_row(Text(name), str(stats["pairs"]), f"{stats['accuracy']:.3f}", style=style)
    console.print(per)


# ---- standalone curation commands: any Parquet/JSONL/CSV in, Parquet/JSONL out -----------
InputArg = Annotated[Path, typer.Argument(help="Items or any table: .parquet, .jsonl or .csv.")]
OutOpt = Annotated[
    Path, typer.Option("--out", help="Kept rows (.parquet or .jsonl); dropped rows go beside it.")
]


@app.command("dedupe")
@clean_errors
def dedupe(
    input: InputArg,
    out: OutOpt,
    field: Annotated[
        str, typer.Option(help="Text column(s), joined by '+'; strings or chat messages.")
    ] = "prompt",
    threshold: Annotated[float, typer.Option(min=0.01, max=1.0, help="Jaccard threshold.")] = 0.8,
    ngram: Annotated[int, typer.Option(min=1, help="Shingle size (words, or characters with --char).")] = 3,
    num_perm: Annotated[int, typer.Option("--num-perm", min=16, help="MinHash permutations.")] = 128,
    char: Annotated[bool, typer.Option("--char", help="Character n-grams instead of word n-grams.")] = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Remove near-duplicates (MinHash LSH); each dropped row names its cluster, kept id and similarity."""
    config = DedupeConfig(
        field=field, threshold=threshold, ngram=ngram, num_perm=num_perm, shingle="char" if char else "word"
    )
    spec = _engine(engine, ray_address, partitions)
    make = lambda tick: NearDedupe(config, progress=tick)  # noqa: E731
    _run_stage(input, out, make, "signing", spec, field.split("+"))


@app.command("decontam")
@clean_errors
def decontam(
    input: InputArg,
    out: OutOpt,
    against: Annotated[
        list[str],
        typer.Option(
            help="Benchmark FILE or hf:NAME, optionally :COL,COL (default: its string columns). Repeatable."
        ),
    ],
    field: Annotated[str, typer.Option(help="Text column(s) to check, joined by '+'.")] = "prompt",
    ngram: Annotated[int, typer.Option(min=4, help="Long n-gram size (words).")] = 13,
    containment: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Char 5-gram containment bound.")
    ] = 0.7,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Remove rows that overlap evaluation benchmarks (long n-grams, shingle containment)."""
    benchmarks = [parse_benchmark(a) for a in against]
    config = DecontamConfig(benchmarks=benchmarks, field=field, ngram=ngram, containment=containment)
    spec = _engine(engine, ray_address, partitions)
    make = lambda tick: Decontaminate(config, progress=tick)  # noqa: E731
    step = _run_stage(input, out, make, "checking", spec, field.split("+"))
    table = Table(title="benchmarks")
    for column in ("benchmark", "checked", "removed", "examples (id: span)"):
        table.add_column(column)
    for bench in step["report"]["benchmarks"]:
        shown = "\n".join(f"{e['id'][:12]}: {e['span'][:60]}" for e in bench["examples"])
        table.add_row(Text(bench["name"]), str(bench["checked"]), str(bench["removed"]), Text(shown or "-"))
    console.print(table)


@app.command("filter")
@clean_errors
def filter_(
    input: InputArg,
    out: OutOpt,
    field: Annotated[
        str | None, typer.Option(help="Only this text column (default: prompt, chosen and rejected).")
    ] = None,
    min_chars: Annotated[int | None, typer.Option(min=0)] = None,
    max_chars: Annotated[int | None, typer.Option(min=1)] = None,
    min_words: Annotated[int | None, typer.Option(min=0)] = None,
    max_words: Annotated[int | None, typer.Option(min=1)] = None,
    language: Annotated[bool, typer.Option(help="Drop non-English text.")] = True,
    pii: Annotated[Literal["drop", "redact", "off"], typer.Option(help="drop | redact | off")] = "drop",
    ban: Annotated[list[str] | None, typer.Option(help="Banned phrase (repeatable).")] = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    partitions: PartitionsOpt = None,
) -> None:
    """Quality filters: lengths, empty/identical responses, bare refusals, language, PII, banned phrases."""
    fields = (field,) if field else ("prompt", "chosen", "rejected")
    lengths = FilterConfig().lengths
    given = {"min_chars": min_chars, "max_chars": max_chars, "min_words": min_words, "max_words": max_words}
    if any(v is not None for v in given.values()):
        bounds = Bounds(**{k: v for k, v in given.items() if v is not None})
        lengths = {f: bounds for f in fields}
    config = FilterConfig(
        lengths=lengths,
        language="en" if language else None,
        pii=pii,
        banned_phrases=ban or [],
    )
    spec = _engine(engine, ray_address, partitions)
    given = (field,) if field else ()
    _run_stage(input, out, lambda tick: QualityFilter(config, fields=fields), "filtering", spec, given)


def parse_benchmark(spec: str) -> Benchmark:
    """``FILE``, ``FILE:COL,COL``, ``hf:NAME`` or ``hf:NAME:COL,COL``."""
    body = spec[3:] if spec.startswith("hf:") else spec
    columns: list[str] = []
    if ":" in body and not (not spec.startswith("hf:") and Path(spec).exists()):
        body, _, cols = body.rpartition(":")
        columns = [c.strip() for c in cols.split(",") if c.strip()]
    path = f"hf:{body}" if spec.startswith("hf:") else body
    if not columns:
        frame = read_table(path) if not path.startswith("hf:") else None
        if frame is None:
            raise OptionError(f"--against {spec}: name the text columns of an hf: dataset (hf:NAME:COL,COL)")
        columns = [c for c, t in frame.schema.items() if t == pl.String]
        if not columns:
            raise OptionError(f"--against {spec}: no text columns; name them as FILE:COL,COL")
    return Benchmark(path=path, columns=columns)


def _engine(engine: str | None, address: str | None, partitions: int | None) -> EngineSpec:
    return EngineSpec(choose_engine(engine), address, partitions)


def _run_stage(
    input: Path,
    out: Path,
    make: Callable[[Callable[[int], None]], Stage],
    what: str,
    spec: EngineSpec,
    fields: Sequence[str] = (),
) -> dict[str, Any]:
    """Run one stage on ``input`` with the chosen engine; write kept and dropped rows; its funnel step."""
    items = read_table(input)
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise OptionError(
            f"--field {missing[0]}: {input} has no column {missing[0]!r}; columns: {', '.join(items.columns)}"
        )
    if out.suffix.lower() not in WRITABLE:
        raise OptionError(f"--out {out}: use .parquet or .jsonl")
    funnel = Funnel()
    with progress_bar() as bar:
        task = bar.add_task(f"{input.name}: {what} ({spec.name})", total=items.height)
        stage = make(lambda n: bar.update(task, advance=n))
        with open_engine(spec, lambda _, n: bar.update(task, advance=n)) as engine:
            kept, dropped = engine.run(items, [stage], funnel)
        bar.update(task, completed=items.height)
    rows = dropped[0] if dropped else no_drops(items)
    write_table(kept, out)
    dropped_path = sibling(out, "dropped")
    write_table(rows, dropped_path)
    console.print(funnel_table(funnel.steps, title=f"{input.name} → {out.name}"))
    console.print(f"kept {kept.height} → {out}; dropped {rows.height} → {dropped_path}", highlight=False)
    return funnel.steps[-1]
