"""What a new user meets in their first hour with the CLI (issue 17), each as a test."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from rich.progress import Progress
from typer.testing import CliRunner

from core.store import Store
from recipes.spec import load_recipe
from tests.conftest import FIXTURES, ROOT, write_recipe
from tests.test_runner import MINI as RUNNER_MINI
from traitdose.cli import app
from traitdose.console import StageBars

runner = CliRunner()

MINI = RUNNER_MINI.replace("per_trait: 40", "per_trait: 20")


def invoke(*args: str):
    return runner.invoke(app, [*args])


def test_an_identical_rerun_writes_nothing_unless_forced(tmp_path):
    recipe, store = write_recipe(tmp_path, MINI), str(tmp_path / "store")
    assert invoke("run", str(recipe), "--store", store).exit_code == 0
    again = invoke("run", str(recipe), "--store", store)
    assert again.exit_code == 0 and "identical to mini@v1: nothing written" in again.output
    assert [v.name for v in Store(store).versions("mini")] == ["v1"]
    forced = invoke("run", str(recipe), "--store", store, "--force")
    assert "wrote mini@v2" in forced.output


def test_limit_runs_are_marked_as_trials(tmp_path):
    recipe, store = write_recipe(tmp_path, MINI), str(tmp_path / "store")
    out = invoke("run", str(recipe), "--store", store, "--limit", "10")
    assert "trial" in out.output
    version = Store(store).resolve("mini")
    assert version.manifest.trial
    full = invoke("run", str(recipe), "--store", store)  # not identical: the full run is no trial
    assert "wrote mini@v2" in full.output and not Store(store).resolve("mini@v2").manifest.trial
    shown = invoke("versions", "show", "mini@v1", "--store", store)
    assert "trial: yes" in shown.output


def test_versions_show_prints_text_not_python_reprs(tmp_path):
    recipe, store = write_recipe(tmp_path, MINI), str(tmp_path / "store")
    invoke("run", str(recipe), "--store", store)
    out = invoke("versions", "show", "mini@v1", "--store", store).output
    assert "traits: truthfulness, corrigibility" in out and "rows: train " in out
    assert not re.search(r"[\[{]'", out)  # no ['..'] or {'..'}
    assert "parent: none (first version)" in out


def test_recipe_validate_runs_the_checks_run_makes_before_its_first_item(tmp_path):
    bank = yaml.safe_load((FIXTURES / "mini_bank.yaml").read_text())
    bank.update(facts=[], oversight=[])  # no skeleton can be filled
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(bank))
    recipe = write_recipe(tmp_path, MINI.replace(str(FIXTURES / "mini_bank.yaml"), "bank.yaml"))
    validated = invoke("recipe", "validate", str(recipe), "--store", str(tmp_path / "s"))
    ran = invoke("run", str(recipe), "--store", str(tmp_path / "s"))
    assert validated.exit_code == ran.exit_code == 1
    assert "no skeleton for trait 'truthfulness' that bank" in validated.output
    assert validated.output.strip().splitlines()[-1] == ran.output.strip().splitlines()[-1]
    good = invoke("recipe", "validate", str(write_recipe(tmp_path, MINI, "good.yaml")))
    assert good.exit_code == 0 and "ok:" in good.output and "source: 2 row(s)" in good.output


def test_recipe_show_keeps_non_ascii():
    out = invoke("recipe", "show", "health").output
    assert "—" in out and "\\u2014" not in out and "\\xE2" not in out


def test_recipe_hash_and_stored_recipe_do_not_depend_on_where_the_files_are(tmp_path):
    hashes = []
    for place in ("home/ada/work", "srv/build"):
        folder = tmp_path / place
        folder.mkdir(parents=True)
        shutil.copy(FIXTURES / "mini_bank.yaml", folder / "bank.yaml")
        recipe = load_recipe(
            write_recipe(folder, MINI.replace(str(FIXTURES / "mini_bank.yaml"), "bank.yaml"))
        )
        hashes.append(recipe.content_hash())
        assert "bank: bank.yaml" in recipe.to_yaml() and str(tmp_path) not in recipe.to_yaml()
    assert hashes[0] == hashes[1]
    (tmp_path / "srv/build/bank.yaml").write_text((FIXTURES / "mini_bank.yaml").read_text() + "\n# edited\n")
    moved = load_recipe(tmp_path / "srv/build/recipe.yaml")
    assert moved.content_hash() != hashes[0]  # content, not location, decides


def test_stored_recipe_and_manifest_hold_no_absolute_source_path(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "qa.csv").write_text(
        "Question,Correct Answers,Incorrect Answers\n"
        "Do antibiotics cure colds?,No they do not; Colds are viral,Yes they do\n"
    )
    recipe = write_recipe(
        tmp_path,
        "name: qa\ndomain: health\ntrait: truthfulness\nsource:\n  kind: answer_key\n  path: data/qa.csv\n"
        "  question: Question\n  correct: Correct Answers\n  incorrect: Incorrect Answers\n"
        "curation: {filter: {lengths: {prompt: {min_words: 1}, chosen: {min_words: 1}}}}\n",
    )
    assert invoke("run", str(recipe), "--store", str(tmp_path / "store")).exit_code == 0
    version = Store(tmp_path / "store").resolve("qa")
    assert str(tmp_path) not in (version.path / "recipe.yaml").read_text()
    assert version.manifest.sources[0]["path"] == "data/qa.csv"


def test_one_progress_bar_per_stage_each_completed_to_its_total():
    bar = Progress()
    bars = StageBars(bar, "mini")
    bars.start("generating", 40)
    bars.tick("generating", 40)
    bars.start("filter", 40)  # a stage that never ticks still ends full
    bars.start("near_dedupe", 38)
    bars.tick("near-dedupe", 10)
    bars.start("writing the version and its card", None)
    tasks = {t.description: t for t in bar.tasks}
    assert list(tasks) == [
        "mini: generating",
        "mini: filter",
        "mini: near_dedupe",
        "mini: writing the version and its card",
    ]
    assert tasks["mini: filter"].completed == 40 and tasks["mini: near_dedupe"].completed == 38
    assert tasks["mini: writing the version and its card"].total is None  # a spinner


def test_readme_code_fences_are_closed():
    """Every block opens with a language and closes bare, so no block swallows a heading."""
    fences = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0
    assert all(len(opening) > 3 for opening in fences[::2]) and all(c == "```" for c in fences[1::2])
    opened = fences[::2]
    assert all(f != "```" or True for f in opened)


def test_examples_load_from_a_clone_with_shared_beside_it(tmp_path):
    clone = tmp_path / "traitdose"
    shutil.copytree(ROOT / "examples", clone / "examples")
    for example in sorted((clone / "examples").glob("*.yaml")):
        data = yaml.safe_load(example.read_text())
        for path in _paths(data):
            target = (example.parent / path).resolve()
            assert target.is_relative_to(tmp_path / "shared"), (
                f"{example.name}: {path} is not under ../shared"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(_sample_for(target), target)
        load_recipe(example)  # resolves every path


def _paths(data: dict) -> list[str]:
    found = [data["source"]["path"]] if "source" in data else []
    found += [b["path"] for b in data.get("curation", {}).get("decontam", {}).get("benchmarks", [])]
    return [p for p in found if not p.startswith("hf:")]


def _sample_for(target: Path) -> Path:
    real = ROOT.parent / "shared" / target.relative_to(target.parents[len(target.parents) - 1])
    return FIXTURES / "mini_bank.yaml" if not real.exists() else real


def test_the_offline_default_runs_with_the_core_dependencies_alone(tmp_path):
    """Template recipes need no extra; an llm: recipe names the extra to install."""
    import subprocess
    import sys

    llm_recipe = write_recipe(
        tmp_path,
        MINI.replace(
            "generate:\n  kind: template", "llm: {model: m, api_key_env: null}\ngenerate:\n  kind: template"
        ),
        "llm.yaml",
    )
    code = f"""
import sys
for name in ("openai", "tenacity", "aiolimiter", "krippendorff", "sklearn"):
    sys.modules[name] = None  # as if the extras were not installed
from typer.testing import CliRunner
from traitdose.cli import app
for recipe in ({str(write_recipe(tmp_path, MINI))!r}, {str(llm_recipe)!r}):
    out = CliRunner().invoke(app, ["run", recipe, "--store", {str(tmp_path / "store")!r}])
    print(out.exit_code, " ".join(out.output.split()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    template_run, llm_run = done.stdout.strip().splitlines()
    assert template_run.startswith("0 ") and "wrote mini@v1" in template_run
    assert llm_run.startswith("1 error:") and "pip install 'traitdose[llm]'" in llm_run


def test_item_text_in_a_diff_is_printed_as_text(tmp_path):
    from core.schema import from_rows
    from tests.test_schema import item

    store = Store(tmp_path, card_renderer=lambda d: None)
    store.write_version("ds", {"train": from_rows([item(id="a")])})
    odd = item(id="b", prompt=[{"role": "user", "content": "what does [/] or [bold]x mean?"}])
    store.write_version("ds", {"train": from_rows([item(id="a"), odd])})
    out = invoke("versions", "diff", "ds@v1", "ds@v2", "--store", str(tmp_path))
    assert out.exit_code == 0, out.output
    assert "[/] or [bold]x" in out.output
