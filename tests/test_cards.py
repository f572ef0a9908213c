"""Dataset cards: Hub metadata, prose from the manifest and data, surface statistics,
the figure, license derivation, and the ``card`` command."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from typer.testing import CliRunner

from core.schema import ITEM_SCHEMA, from_rows
from core.store import Store
from data_cards.card import card_metadata, gather, render_card, write_card
from data_cards.license import LicenseError, SourceLicense, combine, derive_license
from data_cards.metadata import features_yaml, validate_metadata
from data_cards.stats import surface_stats, surface_warnings
from tests.card_data import item, items, write
from traitdose.cli import app

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def front_matter(text: str) -> dict:
    _, header, _ = text.split("---\n", 2)
    return yaml.safe_load(header)


# ---- metadata ---------------------------------------------------------------------------
def test_card_round_trips_through_huggingface_hub(tmp_path: Path) -> None:
    rows = items(40) + items(30, start=100, domain="science", trait="corrigibility")
    version = write(tmp_path, rows, traits=["truthfulness", "corrigibility"], domain="health")
    text = (version.path / "README.md").read_text()
    expected = card_metadata(gather(version.path))

    card = DatasetCard(text)
    assert card.data.to_dict() == expected
    assert DatasetCardData(**expected).to_dict() == expected
    assert DatasetCard(str(card)).data.to_dict() == expected
    assert front_matter(text) == expected

    meta = card.data.to_dict()
    assert meta["license"] == "apache-2.0"  # template banks are the project's own work
    assert meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert {"dpo", "preference", "truthfulness", "corrigibility", "synthetic"} <= set(meta["tags"])
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "test", "path": "data/test-*.parquet"},
            ],
        }
    ]
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == version.manifest["rows"] == {"train": 56, "test": 14}
    assert [f["name"] for f in meta["dataset_info"]["features"]] == ITEM_SCHEMA.names
    assert validate_metadata(meta) == []


def test_features_yaml_is_what_datasets_writes() -> None:
    from datasets import Features

    assert features_yaml(ITEM_SCHEMA) == Features.from_arrow_schema(ITEM_SCHEMA)._to_yaml_list()


def test_offline_validation_names_each_bad_field() -> None:
    problems = validate_metadata(
        {
            "license": "wtfpl",
            "language": ["en", "klingon"],
            "size_categories": ["lots"],
            "task_categories": ["chatting"],
            "annotations_creators": ["machine-generated"],
        }
    )
    assert problems == [
        "size_categories: 'lots' is not a known size category",
        "language: 'klingon' is not a known language code",
        "task_categories: 'chatting' is not a known task category",
        "license: 'wtfpl' is not in the allow-list (" + problems[-1].split("(", 1)[1],
    ]
    assert validate_metadata({"license": "other"}) == ["license: 'other' needs a license_name"]
    assert validate_metadata({"license": "other", "license_name": "custom"}) == []


# ---- prose ------------------------------------------------------------------------------
def test_card_reports_funnel_labels_annotation_decontamination_models_and_lineage(tmp_path: Path) -> None:
    v1 = write(tmp_path, items(30))
    rows = items(25, start=5) + [item(200, label_source="human"), item(201, label_source="judge")]
    funnel = [
        {"stage": "source", "in": 40, "out": 36, "dropped": {"unparseable": 4}},
        {"stage": "exact_dedupe", "in": 36, "out": 30, "dropped": {"duplicate": 6}},
        {
            "stage": "decontaminate",
            "in": 30,
            "out": 27,
            "dropped": {"benchmark_overlap": 3},
            "report": {
                "benchmarks": [
                    {
                        "name": "truthful_qa",
                        "checked": 30,
                        "removed": 3,
                        "examples": [{"id": "abc", "span": "what happens if you swallow gum"}],
                    }
                ]
            },
        },
    ]
    v2 = write(
        tmp_path,
        rows,
        parent=v1.ref,
        funnel=funnel,
        llm={
            "model": "qwen2.5-7b-instruct",
            "judge_model": "llama-3.1-8b",
            "usage": {"prompt_tokens": 12345},
        },
        annotation={
            "items": 40,
            "annotators": 2,
            "krippendorff_alpha": 0.71,
            "cohen_kappa": {"ann1|ann2": 0.68, "ann1|ann3": None},
            "resolved": 35,
            "unresolved": 3,
            "both_bad": 2,
            "ties": 1,
            "audit": {"items": 20, "resolved": 20, "agreed": 19, "accuracy": 0.95, "ci95": [0.76, 0.99]},
        },
    )
    text = (v2.path / "README.md").read_text()

    assert "| exact_dedupe | 36 | 30 | duplicate: 6 |" in text
    assert "| source | 40 | 36 | unparseable: 4 |" in text
    assert (
        "| contrastive | built from a trait-exhibiting vs a trait-violating generation | 25 | 93% |" in text
    )
    assert "| human | labelled by human annotators | 1 | 4% |" in text
    assert "Krippendorff's alpha 0.71" in text and "ann1|ann2: 0.68; ann1|ann3: -" in text
    assert "both responses bad: 2, ties: 1" in text
    assert "An audit of 20 resolved items agreed with 19: accuracy 0.95 (95% CI 0.76–0.99)" in text
    assert "| truthful_qa | 30 | 3 |" in text and "what happens if you swallow gum" in text
    assert "generator: `qwen2.5-7b-instruct`" in text and "judge: `llama-3.1-8b`" in text
    # v1 held items 0..29; v2 holds 5..29 plus two new ones.
    assert "Parent: `unit@v1`" in text and "2 added, 5 removed, 0 changed items" in text
    assert "The response asserts only what the evidence supports" in text  # trait definition
    assert 'load_dataset("ORG/unit", revision="v2")' in text and "DPOTrainer" in text
    assert "![curation funnel and domain x trait counts](card.png)" in text
    assert (v2.path / "card.png").read_bytes().startswith(PNG_MAGIC)

    first = (v1.path / "README.md").read_text()
    assert "first version: no parent" in first
    assert "not checked against evaluation benchmarks" in first
    assert "No language model wrote or judged these items" in first


def test_domain_by_trait_table_counts_accepted_items(tmp_path: Path) -> None:
    rows = items(12) + items(7, start=50, trait="corrigibility") + items(4, start=80, domain="law")
    version = write(tmp_path, rows)
    text = (version.path / "README.md").read_text()
    assert "| domain | corrigibility | truthfulness | total |" in text
    assert "| health | 7 | 12 | 19 |" in text
    assert "| law | 0 | 4 | 4 |" in text


# ---- surface statistics -----------------------------------------------------------------
def test_polarity_artifact_is_measured_and_warned(tmp_path: Path) -> None:
    biased = items(30, chosen="No, that is a myth.", rejected="Yes, that is right.")
    balanced = items(
        30,
        start=100,
        domain="law",
        chosen="No. The statute may apply here.",
        rejected="No. The statute applies here.",
    )
    stats = surface_stats(pl.from_arrow(from_rows(biased + balanced)))
    by_domain = {r["domain"]: r for r in stats.iter_rows(named=True)}
    assert by_domain["health"]["chosen_negation"] == 1.0
    assert by_domain["health"]["rejected_negation"] == 0.0
    assert by_domain["health"]["rejected_affirmation"] == 1.0
    assert by_domain["law"]["chosen_negation"] == by_domain["law"]["rejected_negation"] == 1.0
    assert by_domain["law"]["length_ratio"] == pytest.approx(len(balanced[0]["chosen"][0]["content"]) / 29)
    assert by_domain["law"]["chosen_hedges"] == pytest.approx(100 / 6)  # "may": 1 hedge in 6 words
    assert by_domain["all"]["pairs"] == 60

    warned = {(w.domain, w.feature) for w in surface_warnings(stats)}
    assert ("health", "negation") in warned and ("health", "affirmation") in warned
    assert ("law", "hedging") in warned
    assert not any(d == "law" and f in ("negation", "affirmation", "length") for d, f in warned)

    text = (write(tmp_path, biased).path / "README.md").read_text()
    assert "> [!WARNING]" in text
    assert "100% of chosen vs 0% of rejected responses open with a negation" in text


def test_multi_message_responses_are_measured_whole() -> None:
    rows = items(3, chosen="No. It may help.", rejected="Yes.")
    for row in rows:
        row["chosen"] = row["chosen"] + [{"role": "assistant", "content": "Ask a pharmacist."}]
    stats = surface_stats(pl.from_arrow(from_rows(rows)))
    (row,) = stats.iter_rows(named=True)
    assert row["chosen_negation"] == 1.0 and row["rejected_affirmation"] == 1.0
    assert row["length_ratio"] == pytest.approx(len("No. It may help.\nAsk a pharmacist.") / len("Yes."))
    assert row["chosen_hedges"] == pytest.approx(100 / 7)  # "may" in 7 words


def test_balanced_pairs_raise_no_warning(tmp_path: Path) -> None:
    rows = items(15, chosen="No, the evidence is weak.", rejected="Yes, the evidence is strong.")
    rows += items(15, start=15, chosen="Yes, the evidence is strong.", rejected="No, the evidence is weak.")
    text = (write(tmp_path, rows).path / "README.md").read_text()
    assert "No systematic surface difference found" in text


def test_truthfulqa_health_shows_the_design_polarity_pitfall(tmp_path: Path) -> None:
    if not (SHARED / "truthfulqa" / "TruthfulQA.csv").exists():
        pytest.skip(f"shared TruthfulQA data not found at {SHARED}")
    from recipes.runner import run_recipe
    from recipes.spec import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "examples" / "truthfulqa-health.yaml")
    result = run_recipe(recipe, Store(tmp_path, card_renderer=write_card))
    facts = gather(result.version.path)
    warned = {(w.domain, w.feature) for w in facts.warnings}
    assert ("health", "negation") in warned  # debunking answers open with "No" far more often
    text = render_card(facts)
    assert "TruthfulQA (Lin, Hilton and Evans, 2021)" in text and "@inproceedings{lin2022truthfulqa" in text
    assert front_matter(text)["license"] == "apache-2.0"
    assert front_matter(text)["annotations_creators"] == ["found"]


# ---- licenses ---------------------------------------------------------------------------
def test_license_is_the_strictest_compatible_one() -> None:
    assert derive_license([{"kind": "template", "bank": "health"}]).license == "apache-2.0"
    mixed = [
        {"kind": "template", "bank": "law"},
        {"kind": "ab_eval", "path": "/d/a.jsonl", "license": "cc-by-4.0"},
    ]
    assert derive_license(mixed).license == "cc-by-4.0"
    sa = combine([SourceLicense("a.csv", "mit"), SourceLicense("b.csv", "cc-by-sa-4.0")])
    assert sa.license == "cc-by-sa-4.0"
    nc = combine([SourceLicense("a.csv", "cc-by-nc-4.0"), SourceLicense("b.csv", "cc-by-nc-sa-4.0")])
    assert nc.license == "cc-by-nc-sa-4.0"
    with_recipe = derive_license([{"kind": "template"}], license="cc-by-4.0", recipe="r")
    assert with_recipe.license == "cc-by-4.0"
    assert [s.name for s in with_recipe.sources] == ["template bank ?", "recipe r"]
    undeclared = derive_license([{"kind": "answer_key", "path": "/x/qa.csv"}])
    assert undeclared.metadata() == {
        "license": "other",
        "license_name": "unknown (a source declares no license)",
    }
    assert undeclared.undeclared == ["qa.csv"]


@pytest.mark.parametrize(
    ("licenses", "named"),
    [
        (("cc-by-sa-4.0", "cc-by-nc-4.0"), "commercial"),
        (("cc-by-sa-4.0", "cc-by-nc-sa-4.0"), "their own license"),
        (("apache-2.0", "cc-by-nd-4.0"), "forbid derivatives"),
    ],
)
def test_incompatible_licenses_name_the_sources(licenses: tuple[str, str], named: str) -> None:
    sources = [SourceLicense(f"source{i}.csv", lic) for i, lic in enumerate(licenses)]
    with pytest.raises(LicenseError, match=named) as err:
        combine(sources)
    for s in sources:
        if s.license != "apache-2.0":
            assert f"{s.name} ({s.license})" in str(err.value)


def test_unknown_license_id_is_an_error() -> None:
    with pytest.raises(LicenseError, match="source 'a.csv': unknown license 'wtfpl'"):
        combine([SourceLicense("a.csv", "wtfpl")])


def test_incompatible_sources_fail_the_version_and_write_nothing(tmp_path: Path) -> None:
    sources = [
        {"kind": "answer_key", "path": "/data/qa.csv", "license": "cc-by-sa-4.0"},
        {"kind": "ab_eval", "path": "/data/ab.jsonl", "license": "cc-by-nc-4.0"},
    ]
    with pytest.raises(LicenseError, match=r"qa\.csv \(cc-by-sa-4\.0\).*ab\.jsonl \(cc-by-nc-4\.0\)"):
        write(tmp_path, items(5), sources=sources)
    assert Store(tmp_path).versions("unit") == []
    assert list((tmp_path / "unit").iterdir()) == []  # the temp folder is gone too


# ---- command ----------------------------------------------------------------------------
def test_card_command_renders_to_out_and_in_place(tmp_path: Path) -> None:
    version = write(tmp_path / "store", items(10))
    (version.path / "README.md").write_text("stale\n")
    runner = CliRunner()
    out = tmp_path / "cards" / "unit.md"
    result = runner.invoke(app, ["card", "unit@v1", "--store", str(tmp_path / "store"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert front_matter(out.read_text())["pretty_name"] == "unit (v1)"
    assert (out.parent / "card.png").read_bytes().startswith(PNG_MAGIC)

    result = runner.invoke(app, ["card", "unit", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert (version.path / "README.md").read_text() == out.read_text()

    result = runner.invoke(app, ["card", "unit@v9", "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert "has no version 'v9'" in result.output


def test_card_shows_the_surface_cue_audit_from_the_manifest(tmp_path: Path) -> None:
    report = {
        "accuracy": 0.91,
        "method": "train/test",
        "pairs": 40,
        "cues": [
            {"feature": "first word = 'frankly'", "weight": -2.5, "favours": "rejected", "example": "x"}
        ],
        "by_template": {
            "tpl-leaky": {"pairs": 20, "accuracy": 1.0},
            "tpl-clean": {"pairs": 20, "accuracy": 0.5},
        },
        "length": {},
        "openings": {},
    }
    text = (write(tmp_path, items(20), audit=report).path / "README.md").read_text()
    section = text.split("## Surface-cue audit", 1)[1].split("\n## ", 1)[0]
    assert "**91%**" in section and "[!WARNING]" in section
    assert "`first word = 'frankly'` (-2.50)" in section and section.index("tpl-leaky") < section.index(
        "tpl-clean"
    )
    plain = (write(tmp_path / "b", items(20)).path / "README.md").read_text()
    assert "## Surface-cue audit" not in plain


def test_the_figure_is_the_one_drawn_from_gathered_counts(tmp_path: Path) -> None:
    """The figure, drawn from two columns beside the threaded stats, equals one from ``gather``'s counts."""
    from data_cards.facts import by_domain_trait, domain_trait_counts
    from data_cards.figure import render_figure

    rows = items(40) + items(30, start=100, domain="science", trait="corrigibility")
    version = write(tmp_path, rows, traits=["truthfulness", "corrigibility"], domain="health")
    facts = gather(version.path)
    counts = {(r["domain"], r["trait"]): r["n"] for r in by_domain_trait(facts.counts).iter_rows(named=True)}
    assert domain_trait_counts(version.path, facts.manifest) == counts
    assert counts == {("health", "truthfulness"): 40, ("science", "corrigibility"): 30}
    again = render_figure(facts.manifest.funnel, counts, tmp_path / "again.png", title=f"{facts.dataset} v1")
    assert again.read_bytes() == (version.path / "card.png").read_bytes()
