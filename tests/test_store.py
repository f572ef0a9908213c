from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from core.diff import diff_versions
from core.schema import SchemaError, from_rows
from core.store import Store, StoreError
from tests.test_schema import item


def rows(*ids: str, answer: str = "No; colds are viral."):
    return from_rows(
        [
            item(
                id=i,
                prompt=[{"role": "user", "content": f"q {i}"}],
                chosen=[{"role": "assistant", "content": answer}],
            )
            for i in ids
        ]
    )


def test_versions_are_numbered_with_parent_checksums_and_counts(store_dir):
    store = Store(store_dir, card_renderer=lambda d: None)
    v1 = store.write_version("ds", {"train": rows("a", "b"), "test": rows("c")}, recipe_hash="h1")
    v2 = store.write_version("ds", {"train": rows("a")}, parent=v1.ref)
    assert [v.name for v in store.versions("ds")] == ["v1", "v2"]
    assert store.resolve("ds").name == "v2" and store.resolve("ds@v1").path == v1.path
    m = v1.manifest
    assert m["rows"] == {"train": 2, "test": 1} and m["recipe_hash"] == "h1" and m["version"] == "v1"
    assert set(m["files"]) == {"data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())
    assert v2.manifest["parent"] == "ds@v1"
    assert v1.frame()["id"].to_list() == ["a", "b", "c"]


def test_an_exception_mid_write_leaves_no_partial_version_and_latest_intact(store_dir, monkeypatch):
    store = Store(store_dir, card_renderer=lambda d: None)
    store.write_version("ds", {"train": rows("a")})
    calls = {"n": 0}
    real = pq.write_table

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="injected"):
        store.write_version("ds", {"train": rows("a", "b"), "test": rows("c")})
    assert [v.name for v in store.versions("ds")] == ["v1"]
    assert store.resolve("ds@latest").frame()["id"].to_list() == ["a"]
    assert [p.name for p in (store_dir / "ds").iterdir()] == ["v1"]  # no temp folder left behind


def test_a_failing_card_renderer_also_leaves_nothing(store_dir):
    def broken(folder):
        raise RuntimeError("card broke")

    with pytest.raises(RuntimeError):
        Store(store_dir, card_renderer=broken).write_version("ds", {"train": rows("a")})
    assert Store(store_dir).versions("ds") == []


def test_invalid_rows_are_refused_before_anything_is_written(store_dir):
    bad = from_rows([item(id="x", label_source="vibes")])
    with pytest.raises(SchemaError, match="split 'train'.*row 0.*label_source"):
        Store(store_dir).write_version("ds", {"train": bad})
    assert not (store_dir / "ds").exists() or not any((store_dir / "ds").iterdir())


def test_resolve_errors_name_what_exists(store_dir):
    store = Store(store_dir, card_renderer=lambda d: None)
    store.write_version("ds", {"train": rows("a")})
    with pytest.raises(StoreError, match="no version 'v9'.*versions: v1"):
        store.resolve("ds@v9")
    with pytest.raises(StoreError, match="no dataset 'nope'.*datasets: ds"):
        store.resolve("nope@v1")


def test_card_renderer_runs_inside_the_version_before_it_appears(store_dir):
    seen = []

    def renderer(folder):
        seen.append(json.loads((folder / "manifest.json").read_text())["version"])
        (folder / "README.md").write_text("card")

    version = Store(store_dir, card_renderer=renderer).write_version("ds", {"train": rows("a")})
    assert seen == ["v1"] and (version.path / "README.md").read_text() == "card"


def test_diff_reports_added_removed_and_changed(store_dir):
    store = Store(store_dir, card_renderer=lambda d: None)
    v1 = store.write_version("ds", {"train": rows("a", "b", "c")})
    changed = rows("b", answer="Different answer.")
    v2 = store.write_version("ds", {"train": rows("a", "d"), "test": changed})
    diff = diff_versions(v1, v2)
    assert diff.added == ["d"] and diff.removed == ["c"] and diff.changed == ["b"]
    assert diff.summary()["rows"] == {"ds@v1": 3, "ds@v2": 3}
    assert diff.samples["added"][0]["prompt_text"] == "q d"


def test_dataset_dict_loads_with_datasets(store_dir):
    version = Store(store_dir, card_renderer=lambda d: None).write_version(
        "ds", {"train": rows("a", "b"), "test": rows("c")}
    )
    dd = version.dataset_dict()
    assert dd["train"].num_rows == 2 and dd["train"].features == dd["test"].features
    assert dd["train"][0]["chosen"] == [{"role": "assistant", "content": "No; colds are viral."}]


def test_a_callable_meta_is_called_after_the_data_files_are_written(store_dir):
    seen = []

    def meta():
        staging = [p for p in (store_dir / "ds").iterdir() if p.name.startswith(".tmp-")]
        seen.append(sorted(p.name for p in (staging[0] / "data").iterdir()))
        return {"audit": {"accuracy": 0.5}}

    version = Store(store_dir, card_renderer=lambda d: None).write_version(
        "ds", {"train": rows("a")}, meta=meta
    )
    assert seen == [["train-00000-of-00001.parquet"]]
    assert version.manifest["audit"] == {"accuracy": 0.5}


def test_a_callable_meta_that_raises_leaves_nothing(store_dir):
    def meta():
        raise ValueError("audit broke")

    with pytest.raises(ValueError, match="audit broke"):
        Store(store_dir, card_renderer=lambda d: None).write_version("ds", {"train": rows("a")}, meta=meta)
    assert Store(store_dir).versions("ds") == [] and list((store_dir / "ds").iterdir()) == []
