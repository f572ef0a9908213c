"""Publishing: the dry-run tree, and the real ``huggingface_hub`` client against a local Hub.

``huggingface_hub`` reads ``HF_ENDPOINT`` when it is imported, so every publish runs the
real CLI in a subprocess whose environment points it at the fake Hub on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.card_data import items, write
from tests.fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_testTOKENdoNotLeak0123456789abcdef"


def traitdose(
    *args: str, hub: FakeHub | None = None, token: str | None = TOKEN, home: Path
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(
        HF_HOME=str(home),  # no cached login from the machine
        HF_HUB_DISABLE_XET="1",  # the fake Hub speaks LFS, not the Xet CAS protocol
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_ENDPOINT=hub.url if hub else "http://127.0.0.1:9",  # port 9: nothing listens
        COLUMNS="200",
    )
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "traitdose", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def assert_token_nowhere(*folders: Path, texts: tuple[str, ...] = ()) -> None:
    for folder in folders:
        for rel, data in tree_bytes(folder).items():
            assert TOKEN.encode() not in data, f"token written to {folder / rel}"
    for text in texts:
        assert TOKEN not in text


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    write(root, items(40), files={"quarantine.jsonl": '{"row": 3, "error": "no answer"}\n'})
    write(root, items(35, start=5), parent="unit@v1")
    return root


def test_dry_run_tree_loads_as_the_version(tmp_path: Path, store: Path) -> None:
    from datasets import load_dataset

    from core.store import Store

    out = tmp_path / "upload"
    result = traitdose(
        "publish",
        "unit@v1",
        "--repo",
        "org/unit",
        "--store",
        str(store),
        "--dry-run",
        str(out),
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    files = sorted(tree_bytes(out))
    assert files == [
        "README.md",
        "card.png",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "manifest.json",
        "quarantine.jsonl",
        "recipe.yaml",
    ]
    for name in files:
        assert name in result.stdout
    assert f"{(out / 'card.png').stat().st_size:,}" in result.stdout
    assert 'load_dataset("org/unit", revision="v1")' in (out / "README.md").read_text()

    version = Store(store).resolve("unit@v1")
    expected = version.dataset_dict()
    loaded = load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == set(expected) == {"train", "test"}
    for split in expected:
        assert loaded[split].num_rows == expected[split].num_rows == version.manifest["rows"][split]
        assert loaded[split].features == expected[split].features
        assert loaded[split]["id"] == expected[split]["id"]
    assert_token_nowhere(tmp_path, texts=(result.stdout, result.stderr))  # tree, store, HF_HOME, cache


def test_dry_run_refuses_a_folder_with_files(tmp_path: Path, store: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = traitdose(
        "publish",
        "unit@v1",
        "--repo",
        "org/unit",
        "--store",
        str(store),
        "--dry-run",
        str(out),
        home=tmp_path,
    )
    assert result.returncode == 1
    assert f"{out} is not empty" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_publish_commits_once_and_tags_the_version(tmp_path: Path, store: Path) -> None:
    dry = tmp_path / "dry"
    assert (
        traitdose(
            "publish",
            "unit@v1",
            "--repo",
            "org/unit",
            "--store",
            str(store),
            "--dry-run",
            str(dry),
            home=tmp_path,
        ).returncode
        == 0
    )
    with FakeHub(TOKEN) as hub:
        result = traitdose(
            "publish",
            "unit@v1",
            "--repo",
            "org/unit",
            "--store",
            str(store),
            "--private",
            hub=hub,
            home=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        repo = hub.repos["org/unit"]
        assert repo.private
        # The initial commit the Hub makes on creation, then exactly one commit for the version.
        assert len(repo.commits) == 2
        tagged = repo.commits[repo.tags["v1"]]
        assert tagged.oid == repo.branches["main"]
        assert tagged.message == "unit@v1 (recipe abc123def4567890)"
        assert "tag v1" in result.stdout and tagged.oid in result.stdout
        uploaded = {path: blob.data for path, blob in tagged.files.items() if path != ".gitattributes"}
        assert uploaded == tree_bytes(dry)  # the dry run is exactly what was uploaded
        assert {p for p, b in tagged.files.items() if b.lfs} == {
            "card.png",
            "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00001.parquet",
        }
        assert any(r.path.endswith(".git/info/lfs/objects/batch") for r in hub.requests)
        assert any(r.method == "PUT" and r.path.startswith("/_lfs/") for r in hub.requests)
        # The token travelled only in the Authorization header of API calls.
        api_calls = [r for r in hub.requests if r.path.startswith("/api/")]
        assert api_calls and all(r.authorization == f"Bearer {TOKEN}" for r in api_calls)
        for commit in repo.commits.values():
            assert TOKEN not in commit.message + commit.description
            assert all(TOKEN.encode() not in blob.data for blob in commit.files.values())

        again = traitdose(
            "publish", "unit@v1", "--repo", "org/unit", "--store", str(store), hub=hub, home=tmp_path
        )
        assert again.returncode == 0, again.stderr
        assert "already published" in again.stdout and "nothing to do" in again.stdout
        assert len(repo.commits) == 2

        second = traitdose(
            "publish", "unit@v2", "--repo", "org/unit", "--store", str(store), hub=hub, home=tmp_path
        )
        assert second.returncode == 0, second.stderr
        v2 = repo.commits[repo.tags["v2"]]
        assert v2.message == "unit@v2 (recipe abc123def4567890)"
        assert "quarantine.jsonl" not in v2.files  # v1's log does not linger in v2's revision
        assert "quarantine.jsonl" in repo.commits[repo.tags["v1"]].files
        assert repo.tags["v1"] == tagged.oid

        # tmp_path holds the store, the dry-run tree and HF_HOME.
        assert_token_nowhere(
            tmp_path,
            texts=(result.stdout, result.stderr, again.stdout, again.stderr, second.stdout, second.stderr),
        )


def test_a_tag_holding_other_data_is_never_overwritten(tmp_path: Path, store: Path) -> None:
    other = tmp_path / "other-store"
    write(other, items(12, start=500))
    with FakeHub(TOKEN) as hub:
        first = traitdose(
            "publish", "unit@v1", "--repo", "org/unit", "--store", str(store), hub=hub, home=tmp_path
        )
        assert first.returncode == 0, first.stderr
        clash = traitdose(
            "publish", "unit@v1", "--repo", "org/unit", "--store", str(other), hub=hub, home=tmp_path
        )
        assert clash.returncode == 1
        assert "org/unit already has tag v1 with different data" in clash.stderr
        assert len(hub.repos["org/unit"].commits) == 2


def test_an_interrupted_publish_resumes_without_a_second_commit(tmp_path: Path, store: Path) -> None:
    with FakeHub(TOKEN) as hub:
        first = traitdose(
            "publish", "unit@v1", "--repo", "org/unit", "--store", str(store), hub=hub, home=tmp_path
        )
        assert first.returncode == 0, first.stderr
        repo = hub.repos["org/unit"]
        commit = repo.tags.pop("v1")  # as if the process died between the commit and the tag
        uploads = sum(r.method == "PUT" for r in hub.requests)

        resumed = traitdose(
            "publish", "unit@v1", "--repo", "org/unit", "--store", str(store), hub=hub, home=tmp_path
        )
        assert resumed.returncode == 0, resumed.stderr
        assert repo.tags["v1"] == commit
        assert len(repo.commits) == 2
        assert sum(r.method == "PUT" for r in hub.requests) == uploads  # nothing uploaded twice


def test_missing_or_rejected_token_is_a_clear_error(tmp_path: Path, store: Path) -> None:
    with FakeHub(TOKEN) as hub:
        missing = traitdose(
            "publish",
            "unit@v1",
            "--repo",
            "org/unit",
            "--store",
            str(store),
            hub=hub,
            token=None,
            home=tmp_path,
        )
        assert missing.returncode == 1
        assert "no Hugging Face token" in missing.stderr
        assert hub.requests == []

        wrong = "hf_wrongTOKEN000000000000000000000000"
        rejected = traitdose(
            "publish",
            "unit@v1",
            "--repo",
            "org/unit",
            "--store",
            str(store),
            hub=hub,
            token=wrong,
            home=tmp_path,
        )
        assert rejected.returncode == 1
        assert "publishing unit@v1 to org/unit failed" in rejected.stderr
        assert wrong not in rejected.stdout + rejected.stderr
        assert "Traceback" not in rejected.stderr
        assert hub.repos == {}


def test_unreachable_endpoint_fails_cleanly(tmp_path: Path, store: Path) -> None:
    result = traitdose("publish", "unit@v1", "--repo", "org/unit", "--store", str(store), home=tmp_path)
    assert result.returncode == 1
    assert "publishing unit@v1 to org/unit failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_card_file_checksums_in_manifest_match_what_is_staged(tmp_path: Path, store: Path) -> None:
    from core.store import Store
    from data_cards.publish import stage

    version = Store(store).resolve("unit@v2")
    staged = stage(version, tmp_path / "tree", repo_id="org/unit")
    for entry in staged:
        if entry.path.startswith("data/"):
            digest = hashlib.sha256((tmp_path / "tree" / entry.path).read_bytes()).hexdigest()
            assert digest == version.manifest["files"][entry.path]["sha256"]
    assert "quarantine.jsonl" not in {e.path for e in staged}


def test_empty_splits_are_left_out_so_the_tree_still_loads(tmp_path: Path) -> None:
    from datasets import load_dataset

    from data_cards.publish import PublishError, stage

    version = write(tmp_path / "store", [dict(r, split="train") for r in items(10)])
    assert version.manifest["rows"] == {"train": 10, "test": 0}
    staged = {f.path for f in stage(version, tmp_path / "tree", repo_id="org/unit")}
    assert "data/test-00000-of-00001.parquet" not in staged
    loaded = load_dataset(str(tmp_path / "tree"), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train"} and loaded["train"].num_rows == 10

    empty = write(tmp_path / "store", [], dataset="empty")
    with pytest.raises(PublishError, match="empty@v1 has no rows: nothing to publish"):
        stage(empty, tmp_path / "tree-empty")
