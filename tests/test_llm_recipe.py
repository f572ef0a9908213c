"""LLM recipes end to end: generate → respond → rubric → judge → version, over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import polars as pl
import pytest
from typer.testing import CliRunner

from core.store import Store
from core.traits import VIOLATIONS
from data_cards.card import write_card
from recipes.runner import run_recipe
from recipes.spec import RecipeError, load_recipe
from tests.conftest import FIXTURES, ROOT, write_recipe
from tests.fake_openai import HONEST, FakeOpenAI
from traitdose.cli import app


def llm_recipe(url: str, *, extra: str = "", topics: int = 2, per_topic: int = 4, **llm: object) -> str:
    settings = {"max_concurrency": 8, "backoff": 0.01, "max_backoff": 0.05, "api_key_env": "null", **llm}
    block = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    names = ", ".join(f"topic{i}" for i in range(topics))
    return (
        f"name: llm-mini\ndomain: health\ntraits: [truthfulness, corrigibility]\n"
        f"llm:\n  base_url: {url}\n  model: fake-model\n{block}"
        f"generate: {{kind: llm, topics: [{names}], scenarios_per_topic: {per_topic}, per_call: 2}}\n{extra}"
    )


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def judge_requests(fake: FakeOpenAI) -> list[dict]:
    return [
        r
        for r in fake.requests
        if r.get("response_format", {}).get("json_schema", {}).get("name") == "Verdict"
    ]


def test_llm_recipe_builds_contrastive_items_with_rubrics_judgements_and_usage(fake, tmp_path):
    extra = "rubric: {kind: llm, criteria: 4}\njudge: {kind: llm, votes: 3}\n"
    recipe = load_recipe(write_recipe(tmp_path, llm_recipe(fake.url, extra=extra)))
    result = run_recipe(recipe, Store(tmp_path / "store", card_renderer=write_card))
    frame = result.version.frame()
    assert frame.height == 16 and set(frame["trait"]) == {"truthfulness", "corrigibility"}
    assert [s["stage"] for s in result.funnel][:4] == ["source", "llm_respond", "llm_rubric", "llm_judge"]
    for row in frame.iter_rows(named=True):
        prov = row["provenance"]
        assert VIOLATIONS[prov["violation"]] == row["trait"]
        assert prov["generator"].startswith("llm:fake-model ")
        assert f"chosen=exhibit/{row['trait']}@v1" in prov["generator"]
        assert f"rejected=violate/{prov['violation']}@v2" in prov["generator"]
        assert row["chosen"][0]["content"].startswith(HONEST) and row["label_source"] == "contrastive"
        kinds = {c["kind"] for c in row["rubric"]}
        assert kinds == {"must", "must_not"}  # positive and negative criteria
        assert all(0 < c["weight"] <= 10 for c in row["rubric"])
        assert row["judge"] == {
            "votes": ["chosen"] * 3,
            "scores": [5.0] * 3,
            "confidence": 1.0,
            "model": "fake-model",
        }
        assert row["ambiguity"] == 0.0 and row["ambiguity_reasons"] == []
    # Violation kinds rotate, so each trait spans more than one kind.
    kinds = frame.group_by("trait").agg(pl.col("provenance").struct.field("violation").n_unique())
    assert kinds["violation"].min() >= 2
    llm = result.version.manifest["llm"]
    assert llm["model"] == llm["judge_model"] == "fake-model"
    assert llm["usage"]["calls"] == fake.stats()["calls"]
    card = (result.version.path / "README.md").read_text()
    assert "fake-model" in card  # the card reads manifest["llm"]
    assert llm["usage"]["prompt_tokens"] > 0 and llm["usage"]["completion_tokens"] > 0


def test_second_run_makes_zero_calls_and_writes_the_same_items(fake, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, llm_recipe(fake.url, extra="judge: {kind: llm}\n")))
    first = run_recipe(recipe, Store(tmp_path / "store")).version
    calls = fake.stats()["calls"]
    second = run_recipe(recipe, Store(tmp_path / "store")).version
    assert fake.stats()["calls"] == calls
    assert second.manifest["llm"]["usage"]["calls"] == 0
    assert second.manifest["llm"]["usage"]["cache_hits"] == first.manifest["llm"]["usage"]["calls"]
    assert first.frame().drop("split").equals(second.frame().drop("split"))


def test_judge_alternates_the_order_and_a_position_biased_judge_shows_as_low_confidence(tmp_path):
    with FakeOpenAI(judge="A") as fake:
        text = llm_recipe(fake.url, topics=1, per_topic=2, extra="judge: {kind: llm, votes: 3}\n")
        version = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s")).version
        requests = judge_requests(fake)
    # A 2-to-1 split vote is ambiguous: routing sends every item to people, none is accepted.
    frame = pl.from_arrow(version.side("routed"))
    assert version.frame().height == 0 and frame.height > 0
    assert len(requests) == 3 * frame.height
    by_item: dict[str, list[bool]] = {}
    for r in sorted(requests, key=lambda r: r["seed"]):
        conversation, _, replies = r["messages"][-1]["content"].partition("\n\nReply A:\n")
        by_item.setdefault(conversation, []).append(replies.startswith(HONEST))
    assert len(by_item) == frame.height
    for order in by_item.values():
        assert sorted(order) == [False, True, True]  # chosen shown first in two votes of three
    for row in frame.iter_rows(named=True):
        assert row["judge"]["votes"] == ["chosen", "rejected", "chosen"]  # vote 1 had the order swapped
        assert row["judge"]["confidence"] == pytest.approx(2 / 3)
        assert row["status"] == "routed" and "judge_votes_split" in row["ambiguity_reasons"]
        assert "judge_disagrees_with_label" not in row["ambiguity_reasons"]  # the majority agrees


def test_a_judge_that_disagrees_marks_the_item_ambiguous_and_never_flips_the_label(tmp_path):
    with FakeOpenAI(judge="contrarian") as fake:
        text = llm_recipe(fake.url, topics=1, per_topic=2, extra="judge: {kind: llm, votes: 2}\n")
        frame = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s")).version.frame()
    for row in frame.iter_rows(named=True):
        assert row["judge"]["votes"] == ["rejected", "rejected"]
        assert row["ambiguity"] == 1.0 and row["ambiguity_reasons"] == ["judge_disagrees_with_label"]
        assert row["chosen"][0]["content"].startswith(HONEST) and row["label_source"] == "contrastive"


def test_judge_runs_on_template_items_too(fake, tmp_path):
    text = (
        f"name: mini\ndomain: testing\ntrait: truthfulness\n"
        f"generate: {{kind: template, bank: {FIXTURES / 'mini_bank.yaml'}, per_trait: 6}}\n"
        f"llm: {{base_url: {fake.url}, model: fake-model, api_key_env: null}}\n"
        "judge: {kind: llm, votes: 1}\n"
    )
    version = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s")).version
    # accepted and routed together: whether the fake judge agrees decides routing, not judging
    frame = pl.concat([version.frame(), pl.from_arrow(version.side("routed"))])
    assert frame.height == 6 and all(len(j["votes"]) == 1 for j in frame["judge"])
    assert len(judge_requests(fake)) == 6


def test_failed_calls_drop_items_with_error_reasons_and_rows_stay_accounted(tmp_path):
    with FakeOpenAI(rate_500=0.25, seed=3) as fake:
        text = llm_recipe(
            fake.url, topics=4, per_topic=4, max_retries=0, extra="judge: {kind: llm, votes: 1}\n"
        )
        result = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s"))
    version, funnel = result.version, result.funnel
    source = funnel[0]
    assert source["in"] == 32 and source["in"] == source["out"] + sum(source["dropped"].values())
    assert source["dropped"].get("error:server", 0) > 0  # lost generation calls are counted ...
    quarantine = [json.loads(x) for x in (version.path / "quarantine.jsonl").read_text().splitlines()]
    assert {q["reason"] for q in quarantine} == {"error:server"}  # ... and logged
    for step in funnel:
        assert step["in"] == step["out"] + sum(step["dropped"].values())
    dropped = pl.from_arrow(version.side("dropped"))
    llm_drops = dropped.filter(pl.col("drop_stage").str.starts_with("llm_"))
    assert llm_drops.height > 0 and set(llm_drops["drop_reason"]) == {"error:server"}
    kept = set(version.frame()["id"])
    assert kept.isdisjoint(llm_drops["id"]) and len(kept) + llm_drops.height == source["out"]
    assert version.manifest["llm"]["usage"]["errors"]["server"] == len(quarantine) + llm_drops.height


def test_recipe_errors_name_the_field(tmp_path):
    no_llm = "name: x\ndomain: health\ntrait: truthfulness\njudge: {kind: llm}\n"
    with pytest.raises(
        RecipeError, match=r"recipe.yaml: recipe: judge uses kind: llm, so the recipe needs an 'llm:'"
    ):
        load_recipe(write_recipe(tmp_path, no_llm))
    bad_kind = "name: x\ndomain: health\ntrait: truthfulness\ngenerate: {kind: gpt}\n"
    with pytest.raises(RecipeError, match=r"recipe.yaml:4: generate: unknown kind 'gpt'.*'llm'"):
        load_recipe(write_recipe(tmp_path, bad_kind))
    respond_alone = "name: x\ndomain: health\ntrait: truthfulness\nllm: {model: m}\nrespond: {kind: llm}\n"
    with pytest.raises(RecipeError, match="respond: only applies to generate: {kind: llm}"):
        load_recipe(write_recipe(tmp_path, respond_alone))
    wrong_kind = llm_recipe("http://x/v1", extra="").replace(
        "per_call: 2", "per_call: 2, violations: [resisting_oversight]"
    )
    with pytest.raises(RecipeError, match="no violation kind for trait 'truthfulness'"):
        load_recipe(write_recipe(tmp_path, wrong_kind))


def test_cli_missing_api_key_is_one_clear_line(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("TD_TEST_KEY", raising=False)
    path = write_recipe(tmp_path, llm_recipe(fake.url, api_key_env="TD_TEST_KEY"))
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "environment variable TD_TEST_KEY is not set" in result.output
    assert "Traceback" not in result.output and fake.stats()["calls"] == 0


def test_run_killed_mid_way_resumes_without_repeating_completed_calls(tmp_path):
    concurrency = 4
    with FakeOpenAI(latency=0.05) as fake:
        text = llm_recipe(fake.url, topics=4, per_topic=4, max_concurrency=concurrency)
        path = write_recipe(tmp_path, text)
        store = tmp_path / "store"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "traitdose", "run", str(path), "--store", str(store)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while fake.stats()["ok"] < 40 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert proc.poll() is None, "the run finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert Store(store).latest("llm-mini") is None  # no half-written version
        answered_before_kill = fake.stats()["ok"]
        resumed = run_recipe(load_recipe(path), Store(store)).version
        usage = resumed.manifest["llm"]["usage"]
        # Everything answered and cached before the kill is reused; only calls in flight repeat.
        assert usage["cache_hits"] >= answered_before_kill - concurrency
        # No failures are injected, so every request was answered: a repeat is a call done twice.
        answers = Counter(json.dumps(r, sort_keys=True) for r in fake.requests)
        assert sum(n - 1 for n in answers.values()) <= concurrency
        expected_calls = 8 * 2 + 32 * 2  # generation (per_call 2) + chosen/rejected per item
        assert len(answers) == expected_calls and resumed.frame().height == 32
    with FakeOpenAI() as clean_server:
        clean = run_recipe(
            load_recipe(
                write_recipe(tmp_path, llm_recipe(clean_server.url, topics=4, per_topic=4), "clean.yaml")
            ),
            Store(tmp_path / "clean"),
        ).version
    assert resumed.frame()["id"].sort().to_list() == clean.frame()["id"].sort().to_list()


def test_the_worked_example_runs_against_an_openai_compatible_server(fake, tmp_path):
    recipe = load_recipe(ROOT / "examples" / "llm-health.yaml")
    assert recipe.llm is not None
    local = recipe.llm.model_copy(
        update={
            "base_url": fake.url,
            "cache": str(tmp_path / "cache.sqlite"),
            "requests_per_minute": None,  # the example's limits pace a real server; not needed here
            "tokens_per_minute": None,
        }
    )
    result = run_recipe(recipe.model_copy(update={"llm": local}), Store(tmp_path / "s"), limit=6)
    frame = result.version.frame()
    assert frame.height + result.version.side("routed").num_rows == 6
    assert all(row["rubric"] and len(row["judge"]["votes"]) == 3 for row in frame.iter_rows(named=True))
    assert (tmp_path / "cache.sqlite").exists() and result.version.manifest["llm"]["usage"]["cost_usd"] == 0


def test_cli_run_prints_the_funnel_and_llm_usage(fake, tmp_path):
    path = write_recipe(tmp_path, llm_recipe(fake.url, topics=1, per_topic=2))
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    calls = fake.stats()["calls"]
    assert "llm_respond" in result.output
    assert f"llm fake-model: {calls} calls, 0 cache hits" in " ".join(result.output.split())


def test_limit_plans_exactly_that_many_scenarios_across_traits(fake, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, llm_recipe(fake.url, topics=3, per_topic=4)))
    result = run_recipe(recipe, Store(tmp_path / "s"), limit=5)
    assert result.funnel[0]["in"] == result.funnel[0]["out"] == 5
    assert Counter(result.version.frame()["trait"]) == {"truthfulness": 3, "corrigibility": 2}


def test_errors_inside_the_llm_block_name_its_line_and_field(tmp_path):
    text = "name: x\ndomain: health\ntrait: truthfulness\nllm:\n  model: m\n  max_concurrency: 0\n"
    text += "judge: {kind: llm}\n"
    with pytest.raises(
        RecipeError, match=r"recipe.yaml:6: llm.max_concurrency: .*greater than or equal to 1"
    ):
        load_recipe(write_recipe(tmp_path, text))
    typo = text.replace("max_concurrency: 0", "temprature: 0.5")
    with pytest.raises(RecipeError, match=r"recipe.yaml:6: llm.temprature: unknown key 'temprature'"):
        load_recipe(write_recipe(tmp_path, typo))


def test_a_pair_in_two_voices_is_routed_and_the_audit_reads_llm_versions(tmp_path):
    with FakeOpenAI(matched=False) as fake:
        text = llm_recipe(fake.url, topics=2, per_topic=4, extra="judge: {kind: llm, votes: 1}\n")
        version = run_recipe(load_recipe(write_recipe(tmp_path, text)), Store(tmp_path / "s")).version
        system = judge_requests(fake)[0]["messages"][0]["content"]
    assert "matched pair" in system  # the judge is asked whether the sides share one skeleton
    routed = pl.from_arrow(version.side("routed"))
    assert version.frame().height == 0 and routed.height == 16
    assert all("sides_in_two_voices" in r for r in routed["ambiguity_reasons"].to_list())
    # the fake writes its two sides in two voices (HONEST ... / FLAWED ...): the audit sees it
    runner = CliRunner()
    with FakeOpenAI() as fake:
        text = llm_recipe(fake.url, topics=2, per_topic=4)
        store = str(tmp_path / "audit")
        assert (
            runner.invoke(
                app, ["run", str(write_recipe(tmp_path, text, "a.yaml")), "--store", store]
            ).exit_code
            == 0
        )
    audited = runner.invoke(app, ["audit", "llm-mini@v1", "--store", store, "--json"])
    assert audited.exit_code == 0, audited.output
    report = json.loads(audited.output)
    assert report["accuracy"] > 0.9 and "honest" in json.dumps(report["cues"]).lower()
