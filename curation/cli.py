"""Commands for the versioned store (list, show, diff versions) and the standalone curation stages
(dedupe, decontam, filter)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from core.diff import diff_versions
from core.io import WRITABLE, read_table, sibling, write_table
from core.store import DEFAULT_STORE, Store
from curation.config import Benchmark, Bounds, DecontamConfig, DedupeConfig, FilterConfig
from curation.decontam import Decontaminate
from curation.near_dedupe import NearDedupe
from curation.quality import QualityFilter
from curation.stage import Funnel, Stage, StageResult
from curation.surface_audit import WARN_ABOVE, AuditReport
from curation.surface_audit import audit as surface_audit
from traitdose.console import StoreOpt, clean_errors, console, funnel_table, progress_bar

app = typer.Typer(no_args_is_help=True)
versions_app = typer.Typer(help="Inspect dataset versions in a store.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")


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
        cues.add_row(cue["feature"], f"{cue['weight']:+.2f}", cue["example"][:90])
    console.print(cues)
    sides = Table(title="per side")
    for column in ("", "chosen", "rejected"):
        sides.add_column(column)
    ln = report.length
    sides.add_row("mean words", str(ln["chosen_mean_words"]), str(ln["rejected_mean_words"]))
    sides.add_row("median length ratio", str(ln["median_ratio"]), "")
    for side in ("chosen", "rejected"):
        top = ", ".join(f"{w or '∅'} {n}" for w, n in report.openings[side].items())
        sides.add_row(
            f"openings ({side})", top if side == "chosen" else "", top if side == "rejected" else ""
        )
    console.print(sides)
    per = Table(title="accuracy per template / source")
    for column in ("template", "pairs", "accuracy"):
        per.add_column(column)
    for name, stats in sorted(report.by_template.items(), key=lambda kv: -float(kv[1]["accuracy"])):
        style = "red" if float(stats["accuracy"]) > WARN_ABOVE else None
        per.add_row(name, str(stats["pairs"]), f"{stats['accuracy']:.3f}", style=style)
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
) -> None:
    """Remove near-duplicates (MinHash LSH); each dropped row names its cluster, kept id and similarity."""
    config = DedupeConfig(
        field=field, threshold=threshold, ngram=ngram, num_perm=num_perm, shingle="char" if char else "word"
    )
    _run_stage(input, out, lambda tick: NearDedupe(config, progress=tick), "signing")


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
) -> None:
    """Remove rows that overlap evaluation benchmarks (long n-grams, shingle containment)."""
    benchmarks = [parse_benchmark(a) for a in against]
    config = DecontamConfig(benchmarks=benchmarks, field=field, ngram=ngram, containment=containment)
    result = _run_stage(input, out, lambda tick: Decontaminate(config, progress=tick), "checking")
    table = Table(title="benchmarks")
    for column in ("benchmark", "checked", "removed", "examples (id: span)"):
        table.add_column(column)
    for bench in result.report["benchmarks"]:
        shown = "\n".join(f"{e['id'][:12]}: {e['span'][:60]}" for e in bench["examples"])
        table.add_row(bench["name"], str(bench["checked"]), str(bench["removed"]), shown or "-")
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
    pii: Annotated[str, typer.Option(help="drop | redact | off")] = "drop",
    ban: Annotated[list[str] | None, typer.Option(help="Banned phrase (repeatable).")] = None,
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
        pii=pii,  # type: ignore[arg-type]
        banned_phrases=ban or [],
    )
    _run_stage(input, out, lambda tick: QualityFilter(config, fields=fields), "filtering")


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
            raise ValueError(f"--against {spec}: name the text columns of an hf: dataset (hf:NAME:COL,COL)")
        columns = [c for c, t in frame.schema.items() if t == pl.String]
        if not columns:
            raise ValueError(f"--against {spec}: no text columns; name them as FILE:COL,COL")
    return Benchmark(path=path, columns=columns)


def _run_stage(
    input: Path, out: Path, make: Callable[[Callable[[int], None]], Stage], what: str
) -> StageResult:
    items = read_table(input)
    if out.suffix.lower() not in WRITABLE:
        raise ValueError(f"--out {out}: use .parquet or .jsonl")
    with progress_bar() as bar:
        task = bar.add_task(f"{input.name}: {what}", total=items.height)
        stage = make(lambda n: bar.update(task, advance=n))
        result = stage(items)
        bar.update(task, completed=items.height)
    funnel = Funnel()
    funnel.record(stage.name, items.height, result)
    write_table(result.kept, out)
    dropped_path = sibling(out, "dropped")
    write_table(result.dropped, dropped_path)
    console.print(funnel_table(funnel.steps, title=f"{input.name} → {out.name}"))
    console.print(
        f"kept {result.kept.height} → {out}; dropped {result.dropped.height} → {dropped_path}",
        highlight=False,
    )
    return result
