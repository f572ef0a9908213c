"""`--engine ray` gives what `--engine local` gives: same ids kept, same drops and details, same bytes.

Every test shares one local 2-CPU Ray (the ``ray_cluster`` fixture); corpora are small.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from ray_stages import KillsItsWorkerOnce
from test_curation_golden import corpus
from typer.testing import CliRunner

from core.store import Store, split_file
from curation.config import Benchmark, CurationConfig, DecontamConfig, DedupeConfig, FilterConfig
from curation.decontam import Decontaminate
from curation.engine import EngineSpec, open_engine
from curation.exact import ExactDedupe
from curation.minhash import MinHashScheme, jaccard_estimate
from curation.near_dedupe import NearDedupe
from curation.pipeline import curation_stages
from curation.quality import QualityFilter
from curation.stage import Funnel, Stage, run_stages
from recipes.runner import run_recipe
from recipes.spec import load_recipe
from traitdose.cli import app

pytestmark = pytest.mark.usefixtures("ray_cluster")


def outcome(kept: pl.DataFrame, dropped: list[pl.DataFrame], funnel: Funnel) -> dict[str, Any]:
    steps = [{k: v for k, v in step.items() if k != "engine"} for step in funnel.steps]
    return {"kept": kept, "dropped": dropped, "funnel": steps}


def assert_same(local: dict[str, Any], ray: dict[str, Any]) -> None:
    assert ray["kept"].equals(local["kept"])
    assert len(ray["dropped"]) == len(local["dropped"])
    for got, want in zip(ray["dropped"], local["dropped"], strict=True):
        assert got.equals(want)
    assert ray["funnel"] == local["funnel"]


def run_both(items: pl.DataFrame, make: Any, **spec: Any) -> tuple[dict[str, Any], dict[str, Any], Funnel]:
    local_funnel, ray_funnel = Funnel(), Funnel()
    local = outcome(*run_stages(items, make(), local_funnel), local_funnel)
    with open_engine(EngineSpec("ray", **spec)) as engine:
        ray = outcome(*engine.run(items, make(), ray_funnel), ray_funnel)
    return local, ray, ray_funnel


def golden_stages(bench: list[str]) -> list[Stage]:
    config = CurationConfig(
        filter=FilterConfig(language=None),
        decontam=DecontamConfig(benchmarks=[Benchmark(path="bench.csv", columns=["text"], name="bench")]),
    )
    return [
        Decontaminate(config.decontam, benchmarks={"bench": bench}) if s.name == "decontam" else s
        for s in curation_stages(config)
    ]


@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_every_stage_gives_the_local_output_whatever_the_partitions(partitions: int) -> None:
    """The golden corpus (near-duplicates, conflicts, PII, benchmark copies) through every stage."""
    items, bench = corpus(n=700)
    local, ray, funnel = run_both(items, lambda: golden_stages(bench), partitions=partitions)
    assert_same(local, ray)
    reasons = {r for d in ray["dropped"] for r in d["drop_reason"]}
    assert {"near_duplicate", "contaminated", "pii", "bare_refusal"} <= reasons
    assert ray["kept"]["status"].value_counts().height == 2  # some items routed, some accepted
    assert all(s["engine"] == {"name": "ray", "partitions": partitions} for s in funnel.steps)


def test_no_rows_give_the_local_funnel() -> None:
    items, bench = corpus(n=20)
    local, ray, _ = run_both(items.clear(), lambda: golden_stages(bench), partitions=2)
    assert_same(local, ray)
    assert [s["report"]["routed"] for s in ray["funnel"] if s["stage"] == "route"] == [0]


def chain_corpus(links: int = 6, chains: int = 4, filler: int = 40) -> pl.DataFrame:
    """Chains of near-duplicates: each link changes one word of the one before, so the two ends
    of a chain are far apart and only the chain joins them; links are spread over the corpus."""
    rnd = random.Random(3)
    vocabulary = [f"w{i}" for i in range(500)]
    rows: list[tuple[str, str]] = []
    for c in range(chains):
        words = [rnd.choice(vocabulary) for _ in range(60)]
        for link in range(links):
            rows.append((f"chain{c}-{link}", " ".join(words)))
            words = list(words)
            for _ in range(2):
                words[rnd.randrange(len(words))] = rnd.choice(vocabulary)
    rows += [(f"other{i}", " ".join(rnd.choice(vocabulary) for _ in range(60))) for i in range(filler)]
    rnd.shuffle(rows)  # links of one chain land in different blocks
    return pl.DataFrame({"id": [r[0] for r in rows], "prompt": [r[1] for r in rows]})


@pytest.mark.parametrize(("partitions", "edge_bound"), [(1, 10**6), (2, 10**6), (4, 0), (3, 35)])
def test_chains_spread_over_blocks_are_one_cluster_as_locally(partitions: int, edge_bound: int) -> None:
    """``edge_bound=0``: clusters by min-label propagation and resolved on the workers, not the driver.
    ``35``: between the corpus's 31 verified pairs and its 41 candidates, so the pairs are verified
    by the shuffles on the cluster and the clusters resolved on the driver."""
    items = chain_corpus()
    config = DedupeConfig(field="prompt", threshold=0.7)
    stages = lambda: [NearDedupe(config)]  # noqa: E731
    local, ray, _ = run_both(items, stages, partitions=partitions, edge_bound=edge_bound)
    assert_same(local, ray)
    (dropped,) = ray["dropped"]
    clusters = dropped["drop_detail"].map_elements(lambda d: json.loads(d)["cluster"], pl.String)
    assert clusters.value_counts()["count"].max() >= 3  # chains, not pairs
    scheme = MinHashScheme()
    ends = scheme.signatures(items.filter(pl.col("id").is_in(["chain0-0", "chain0-5"]))["prompt"])
    assert jaccard_estimate(ends[:1], ends[1:])[0] < config.threshold  # joined by the chain only


@pytest.mark.parametrize("edge_bound", [10**6, 0])
def test_items_near_an_earlier_version_are_dropped_as_locally(edge_bound: int) -> None:
    """``dedupe.against``: reference rows are signed and bucketed with the items, never dropped."""
    corpus = chain_corpus()
    reference, items = corpus.head(32), corpus.slice(32)
    config = DedupeConfig(field="prompt", threshold=0.7)
    stages = lambda: [NearDedupe(config, reference=reference, reference_name="v1")]  # noqa: E731
    local, ray, _ = run_both(items, stages, partitions=3, edge_bound=edge_bound)
    assert_same(local, ray)
    assert "near_duplicate_of_reference" in set(ray["dropped"][0]["drop_reason"])


def test_the_built_in_health_recipe_writes_byte_identical_versions(tmp_path: Path) -> None:
    recipe = load_recipe("health")
    local = run_recipe(recipe, Store(tmp_path / "local"), limit=300, engine=EngineSpec("local"))
    ray = run_recipe(recipe, Store(tmp_path / "ray"), limit=300, engine=EngineSpec("ray", partitions=3))
    for name in ("train", "test"):
        ours, theirs = ray.version.path / split_file(name), local.version.path / split_file(name)
        assert ours.read_bytes() == theirs.read_bytes()
    for side in ("dropped", "routed"):
        assert ray.version.side(side).equals(local.version.side(side)), side
    assert [s["stage"] for s in ray.funnel] == [s["stage"] for s in local.funnel]
    assert local.version.manifest["engine"] == {"name": "local"}
    assert ray.version.manifest["engine"] == {"name": "ray", "partitions": 3}
    assert ray.version.manifest["recipe_hash"] == local.version.manifest["recipe_hash"]


def test_a_worker_killed_mid_stage_is_retried_and_the_output_is_unchanged(tmp_path: Path) -> None:
    items, _ = corpus(n=300)
    config = FilterConfig(language=None)
    marker = tmp_path / "killed"
    killer = KillsItsWorkerOnce(config, marker=str(marker), driver_pid=os.getpid())
    local_funnel, ray_funnel = Funnel(), Funnel()
    local = outcome(*run_stages(items, [QualityFilter(config)], local_funnel), local_funnel)
    with open_engine(EngineSpec("ray", partitions=2)) as engine:
        ray = outcome(*engine.run(items, [killer], ray_funnel), ray_funnel)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker did die
    assert_same(local, ray)


def test_dedupe_command_with_engine_ray_writes_the_local_files(tmp_path: Path) -> None:
    items = chain_corpus(links=3, chains=2, filler=10)
    source = tmp_path / "items.parquet"
    items.write_parquet(source)
    runner = CliRunner()
    for engine in ("local", "ray"):
        result = runner.invoke(
            app, ["dedupe", str(source), "--out", str(tmp_path / engine / "kept.parquet"), "--engine", engine]
        )
        assert result.exit_code == 0, result.output
    for name in ("kept.parquet", "kept.dropped.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_a_parquet_input_is_read_on_the_workers_and_only_the_asked_columns_come_back(tmp_path: Path) -> None:
    """Neither the input table nor the kept rows' other columns reach the driver; the answer is local's."""
    items = chain_corpus()
    source = tmp_path / "items.parquet"
    items.write_parquet(source, row_group_size=16)  # more row groups than blocks, and fewer
    stages = lambda: [NearDedupe(DedupeConfig(field="prompt", threshold=0.7))]  # noqa: E731
    local_funnel = Funnel()
    local = outcome(*run_stages(items, stages(), local_funnel), local_funnel)
    for partitions in (1, 3):
        ray_funnel = Funnel()
        with open_engine(EngineSpec("ray", partitions=partitions)) as engine:
            kept, dropped = engine.run(source, stages(), ray_funnel, columns=["id"])
        ray = outcome(kept, dropped, ray_funnel)
        assert kept.columns == ["id"]
        assert_same(local | {"kept": local["kept"].select("id")}, ray)


def test_reference_rows_are_numbered_past_every_row_when_earlier_stages_dropped_some() -> None:
    """Filter and exact dedupe drop rows first; the reference rows must not take the numbers of the rest."""
    items, bench = corpus(n=400)
    reference, rest = items.head(80), items.slice(80)
    config = CurationConfig(filter=FilterConfig(language=None))

    def stages() -> list[Stage]:
        return curation_stages(config, reference=reference, reference_name="v1")

    local, ray, _ = run_both(rest, stages, partitions=2)
    assert_same(local, ray)
    reasons = {r for d in ray["dropped"] for r in d["drop_reason"]}
    assert "near_duplicate_of_reference" in reasons and len(ray["dropped"]) >= 2


@pytest.mark.parametrize("edge_bound", [10**6, 0])
def test_repeated_ids_in_different_blocks_keep_their_first_row_as_locally(edge_bound: int) -> None:
    """``edge_bound=0``: the ids are shuffled on the cluster instead of gathered on the driver."""
    items = chain_corpus()
    repeats = items.sample(12, seed=5).with_columns(pl.col("prompt") + " again")
    items = pl.concat([repeats.head(6), items, repeats.tail(6)])  # first copies in the first block
    stages = lambda: [ExactDedupe(), NearDedupe(DedupeConfig(field="prompt", threshold=0.7))]  # noqa: E731
    local, ray, _ = run_both(items, stages, partitions=3, edge_bound=edge_bound)
    assert_same(local, ray)
    assert ray["dropped"][0]["drop_reason"].to_list() == ["exact_duplicate"] * 12
