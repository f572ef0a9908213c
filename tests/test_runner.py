from __future__ import annotations

import hashlib
import re

import polars as pl
import pytest
from typer.testing import CliRunner

from core.store import Store
from curation.splits import assign_splits
from recipes.runner import run_recipe
from recipes.spec import load_recipe
from tests.conftest import FIXTURES, write_recipe
from traitdose.cli import app

MINI = f"""name: mini
domain: testing
traits: [truthfulness, corrigibility]
generate:
  kind: template
  bank: {FIXTURES / "mini_bank.yaml"}
  per_trait: 40
"""


def file_digests(version) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((version.path / "data").iterdir())
    }


def test_same_seed_same_ids_and_bytes_other_seed_differs(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, MINI))
    a = run_recipe(recipe, Store(tmp_path / "a"), seed=7).version
    b = run_recipe(recipe, Store(tmp_path / "b"), seed=7).version
    c = run_recipe(recipe, Store(tmp_path / "c"), seed=8).version
    assert a.frame()["id"].to_list() == b.frame()["id"].to_list()
    assert file_digests(a) == file_digests(b)
    assert file_digests(a) != file_digests(c)


def test_run_covers_both_traits_and_violation_kinds_with_contrastive_labels(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, MINI))
    result = run_recipe(recipe, Store(tmp_path / "s"))
    frame = result.version.frame()
    assert set(frame["trait"]) == {"truthfulness", "corrigibility"}
    assert set(frame["label_source"]) == {"contrastive"}
    assert frame["id"].n_unique() == frame.height
    violations = set(frame["provenance"].struct.field("violation"))
    assert {
        "sycophantic_agreement",
        "fabricated_source",
        "resisting_oversight",
        "resisting_correction",
    } <= violations
    stages = [s["stage"] for s in result.funnel]
    assert stages[0] == "source" and "exact_dedupe" in stages
    assert result.funnel[0]["out"] == result.funnel[1]["in"]
    assert sum(result.version.manifest["rows"].values()) == result.funnel[-1]["out"]


def test_trait_and_limit_narrow_the_run(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, MINI))
    frame = run_recipe(recipe, Store(tmp_path / "s"), traits=["corrigibility"], limit=10).version.frame()
    assert frame.height == 10 and set(frame["trait"]) == {"corrigibility"}
    with pytest.raises(ValueError, match="no trait 'fairness'"):
        run_recipe(recipe, Store(tmp_path / "s"), traits=["fairness"])


def test_splits_are_grouped_and_near_the_fraction():
    groups = [f"g{i % 50}" for i in range(1000)]
    frame = pl.DataFrame({"id": [str(i) for i in range(1000)], "group": groups})
    split = assign_splits(frame, 0.2, seed=1, group=pl.col("group"))
    per_group = split.group_by("group").agg(pl.col("split").n_unique())
    assert per_group["split"].max() == 1  # no group straddles train and test
    share = (split["split"] == "test").mean()
    assert 0.18 <= share <= 0.22
    again = assign_splits(frame, 0.2, seed=1, group=pl.col("group"))
    assert split["split"].to_list() == again["split"].to_list()
    assert set(
        assign_splits(frame.head(5).with_columns(group=pl.lit("one")), 0.5, 1, pl.col("group"))["split"]
    ) == {"train"}


def test_template_splits_keep_each_fact_in_one_split(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, MINI.replace("per_trait: 40", "per_trait: 200")))
    frame = run_recipe(recipe, Store(tmp_path / "s")).version.frame()
    groups = frame.group_by(pl.col("provenance").struct.field("group")).agg(pl.col("split").n_unique())
    assert groups["split"].max() == 1
    assert set(frame["split"]) == {"train", "test"}


def test_cli_run_list_show_diff(tmp_path):
    runner = CliRunner()
    recipe = write_recipe(tmp_path, MINI)
    store = str(tmp_path / "store")
    first = runner.invoke(app, ["run", str(recipe), "--store", store, "--seed", "1"])
    assert first.exit_code == 0, first.output
    assert "wrote mini@v1" in first.output and "exact_dedupe" in first.output
    second = runner.invoke(app, ["run", str(recipe), "--store", store, "--seed", "2", "--limit", "30"])
    assert second.exit_code == 0, second.output
    listed = runner.invoke(app, ["versions", "list", "mini", "--store", store])
    assert listed.exit_code == 0 and "v1" in listed.output and "mini@v1" in listed.output
    shown = runner.invoke(app, ["versions", "show", "mini@v2", "--store", store])
    assert shown.exit_code == 0 and "parent: mini@v1" in shown.output
    diff = runner.invoke(app, ["versions", "diff", "mini@v1", "mini@v2", "--store", store])
    assert diff.exit_code == 0 and "removed" in diff.output
    v1, v2 = Store(store).resolve("mini@v1").frame(), Store(store).resolve("mini@v2").frame()
    removed = len(set(v1["id"]) - set(v2["id"]))
    assert re.search(rf"removed\s*│\s*{removed}\s*│", diff.output), diff.output


def test_cli_errors_are_one_line_with_exit_code_1(tmp_path):
    runner = CliRunner()
    bad = write_recipe(tmp_path, "name: r\ndomain: health\ntrait: truthfulness\ncolour: red\n")
    result = runner.invoke(app, ["recipe", "validate", str(bad)])
    assert result.exit_code == 1
    assert "colour: unknown key 'colour'" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["versions", "show", "nope@v1", "--store", str(tmp_path)])
    assert missing.exit_code == 1 and "no dataset 'nope'" in missing.output
    unknown = runner.invoke(app, ["run", "astrology"])
    assert unknown.exit_code == 1 and "unknown recipe 'astrology'" in unknown.output


def test_every_command_has_help():
    runner = CliRunner()
    for args in (
        [],
        ["run"],
        ["recipes"],
        ["recipe", "show"],
        ["recipe", "validate"],
        ["versions", "list"],
        ["versions", "show"],
        ["versions", "diff"],
    ):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, args


@pytest.mark.parametrize("domain", ["health", "science", "education", "law", "engineering", "finance"])
def test_each_builtin_domain_yields_2000_distinct_balanced_items(domain, tmp_path):
    result = run_recipe(load_recipe(domain), Store(tmp_path / "s"), seed=0)
    frame = result.version.frame()
    assert frame.height >= 2000 and frame["id"].n_unique() == frame.height
    counts = frame.group_by("trait").len()
    assert set(counts["trait"]) == {"truthfulness", "corrigibility"} and counts["len"].min() >= 1000
    kinds = set(frame["provenance"].struct.field("violation"))
    assert kinds == {
        "confident_falsehood",
        "sycophantic_agreement",
        "fabricated_source",
        "overclaiming_certainty",
        "resisting_correction",
        "resisting_oversight",
        "caving_to_wrong_correction",
    }
    chosen = frame["chosen"].list.first().struct.field("content")
    rejected = frame["rejected"].list.first().struct.field("content")
    assert (chosen != rejected).all()
    # no unfilled slot survives into the text
    assert not frame["prompt"].list.last().struct.field("content").str.contains(r"\{[A-Za-z_]+\}").any()
    assert frame["rubric"].list.len().min() >= 2
    forms = set(frame["provenance"].struct.field("generator").str.split("/").list.first())
    assert forms == {"advisory", "short", "endorse", "ab"}
    # minimal pairs: shallow features stay far from the 0.9-1.0 of two-voice templates (the goal,
    # <= 0.60, is measured by benchmarks/transfer.py; small banks' test splits are noisy)
    assert result.version.manifest["audit"]["accuracy"] <= 0.7


def test_an_optional_benchmark_that_is_absent_is_skipped_with_a_note(tmp_path):
    text = MINI + (
        "curation:\n  decontam:\n    benchmarks:\n"
        "      - {path: nowhere/TruthfulQA.csv, columns: [Question], name: truthfulqa, optional: true}\n"
    )
    result = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s"), limit=20)
    step = next(s for s in result.funnel if s["stage"] == "decontam")
    assert step["in"] == step["out"]
    (note,) = step["report"]["benchmarks"]
    assert note["name"].startswith("truthfulqa (skipped:") and "not found" in note["name"]
    required = MINI + "curation:\n  decontam:\n    benchmarks:\n      - {path: nowhere/x.csv, columns: [q]}\n"
    with pytest.raises(ValueError, match="file not found: nowhere/x.csv"):
        load_recipe(write_recipe(tmp_path, required, "required.yaml"))


def test_builtin_recipes_name_the_shared_benchmarks_as_optional():
    for name in ("health", "law"):
        benchmarks = load_recipe(name).curation.decontam.benchmarks
        assert {b.name for b in benchmarks} == {"truthfulqa", "corrigible-neutral-HHH"}
        assert all(b.optional and "/shared/data/" in b.path for b in benchmarks)


def test_the_audit_runs_beside_the_writes_and_a_failing_one_leaves_no_version(tmp_path, monkeypatch):
    import recipes.runner as runner
    from curation.surface_audit import audit

    store = Store(tmp_path / "store", card_renderer=lambda d: None)
    recipe = load_recipe(write_recipe(tmp_path, MINI))
    audited = []
    monkeypatch.setattr(runner, "surface_audit", lambda frame: audited.append(frame) or audit(frame))
    version = run_recipe(recipe, store).version
    assert version.manifest["audit"] == audit(audited[0]).to_dict()
    assert audited[0].height == version.manifest.total_rows

    def broken(frame):
        raise RuntimeError("audit broke")

    monkeypatch.setattr(runner, "surface_audit", broken)
    with pytest.raises(RuntimeError, match="audit broke"):
        run_recipe(recipe, store, seed=1)
    assert [v.name for v in store.versions(recipe.dataset_name)] == ["v1"]
    assert [p.name for p in (store.root / recipe.dataset_name).iterdir()] == ["v1"]
