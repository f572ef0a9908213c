"""Bad input to the standalone curation commands ends in one line naming the field or dataset."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from traitdose.cli import app


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "items.parquet"
    pl.DataFrame(
        {"text": ["The kettle boils at one hundred degrees at sea level.", "Salt dissolves in water."]}
    ).write_parquet(path)
    return path


def one_line(result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["filter", "--field", "nope"],
        ["dedupe", "--field", "text+nope"],
        ["decontam", "--field", "nope", "--against", "{table}"],
    ],
)
def test_a_field_the_table_lacks(tmp_path, table, command):
    args = [a.format(table=table) for a in command]
    result = CliRunner().invoke(app, [args[0], str(table), "--out", str(tmp_path / "out.parquet"), *args[1:]])
    assert one_line(result) == f"error: --field nope: {table} has no column 'nope'; columns: text"
    assert not (tmp_path / "out.parquet").exists()


def test_an_unreachable_hf_benchmark(tmp_path, table, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    out = tmp_path / "out.parquet"
    args = [
        "decontam",
        str(table),
        "--out",
        str(out),
        "--field",
        "text",
        "--against",
        "hf:someone/absent:text",
    ]
    line = one_line(CliRunner().invoke(app, args))
    assert line.startswith("error: hf:someone/absent: cannot load split 'validation' (")
    assert "hf download someone/absent --repo-type dataset" in line
