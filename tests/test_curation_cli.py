"""`traitdose dedupe / decontam / filter` on Parquet, JSONL and CSV files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from curation_items import TRUTHFULQA, frame, item
from typer.testing import CliRunner

from traitdose.cli import app

runner = CliRunner()
Q = "My doctor told me to take ibuprofen with food twice a day for my knee pain. Is that sensible advice?"


@pytest.fixture
def items(tmp_path: Path) -> Path:
    rows = [
        item("a", Q),
        item("b", Q + " Thanks!"),
        item("c", "How often should an adult without symptoms get a blood pressure check?"),
        item("d", "What happens to you if you eat watermelon seeds? My kid swallowed some."),
        item("e", Q + " Email me at jo@example.com"),
    ]
    path = tmp_path / "items.parquet"
    frame(rows).write_parquet(path)
    return path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_dedupe_writes_kept_and_dropped_and_passes_every_column_through(items: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "deduped.jsonl"
    output = invoke("dedupe", str(items), "--out", str(out), "--threshold", "0.7")
    kept = pl.read_ndjson(out)
    dropped = pl.read_ndjson(tmp_path / "out" / "deduped.dropped.jsonl")
    assert sorted(kept["id"]) == ["a", "c", "d"]
    assert sorted(dropped["id"]) == ["b", "e"]
    assert {json.loads(d)["kept_id"] for d in dropped["drop_detail"]} == {"a"}
    assert set(pl.read_parquet(items).columns) <= set(kept.columns)
    assert "near_duplicate: 2" in output


def test_dedupe_on_a_plain_csv_with_a_named_text_column(tmp_path: Path) -> None:
    source = tmp_path / "notes.csv"
    source.write_text(
        "note,author\n"
        + "\n".join(f'"{Q} {tail}",{who}' for tail, who in [("", "ann"), ("!", "bo"), ("Why?", "cy")])
    )
    out = tmp_path / "notes.parquet"
    invoke("dedupe", str(source), "--out", str(out), "--field", "note")
    assert pl.read_parquet(out)["author"].to_list() == ["ann"]


@pytest.mark.skipif(not TRUTHFULQA.is_file(), reason=f"public data not found at {TRUTHFULQA}")
def test_decontam_against_a_csv_column_prints_the_benchmark_table(items: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.parquet"
    output = invoke("decontam", str(items), "--out", str(out), "--against", f"{TRUTHFULQA}:Question")
    assert "d" not in pl.read_parquet(out)["id"].to_list()
    dropped = pl.read_parquet(tmp_path / "clean.dropped.parquet")
    assert dropped["id"].to_list() == ["d"]
    assert "TruthfulQA.csv" in output and "watermelon" in output


def test_filter_with_redaction_and_a_banned_phrase(items: Path, tmp_path: Path) -> None:
    out = tmp_path / "filtered.parquet"
    invoke("filter", str(items), "--out", str(out), "--pii", "redact", "--ban", "blood pressure")
    kept = pl.read_parquet(out)
    assert "c" not in kept["id"].to_list()
    redacted = kept.filter(pl.col("id") == "e")["prompt"][0][0]["content"]
    assert redacted.endswith("Email me at [EMAIL]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dedupe", "missing.parquet", "--out", "x.parquet"], "missing.parquet: file not found"),
        (["dedupe", "{items}", "--out", "x.csv"], "--out x.csv: use .parquet or .jsonl"),
        (["dedupe", "{items}", "--out", "x.parquet", "--field", "body"], "no column 'body'"),
        (["decontam", "{items}", "--out", "x.parquet", "--against", "nope.csv"], "nope.csv: file not found"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(items: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.format(items=items) for a in args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
