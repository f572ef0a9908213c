"""The store under a killed run, a concurrent writer, a damaged manifest and a strict umask."""

from __future__ import annotations

import os
import stat

import pytest

from core.errors import StoreError
from core.manifest import Manifest
from core.store import LATEST, Store
from tests.test_store import rows


def store(root):
    return Store(root, card_renderer=lambda d: None)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_version_folders_honour_the_umask(store_dir, mask):
    old = os.umask(mask)
    try:
        version = store(store_dir).write_version("ds", {"train": rows("a")})
    finally:
        os.umask(old)
    assert stat.S_IMODE(version.path.stat().st_mode) == 0o777 & ~mask


def test_stale_staging_folders_are_removed_but_a_live_writers_is_not(store_dir):
    folder = store_dir / "ds"
    folder.mkdir(parents=True)
    dead = folder / ".tmp-99999999-killed"  # no process has this id
    live = folder / f".tmp-{os.getpid()}-writing"
    for path in (dead, live):
        (path / "data").mkdir(parents=True)
    store(store_dir).write_version("ds", {"train": rows("a")})
    assert not dead.exists() and live.exists()
    assert store(store_dir).clean_stale("ds") == []


def test_a_concurrent_writer_that_takes_the_number_first_becomes_the_parent(store_dir):
    first = store(store_dir).write_version("ds", {"train": rows("a")})
    raced = []

    def renderer(folder):
        # While this write holds v2 in staging, another run claims v2.
        if not raced:
            raced.append(store(store_dir).write_version("ds", {"train": rows("b")}, parent=LATEST))

    mine = Store(store_dir, card_renderer=renderer).write_version("ds", {"train": rows("c")}, parent=LATEST)
    assert raced[0].name == "v2" and raced[0].manifest.parent == first.ref
    assert mine.name == "v3" and mine.manifest.parent == "ds@v2"


def test_a_corrupt_manifest_is_named_skipped_reported_and_its_number_never_reused(store_dir):
    s = store(store_dir)
    v1 = s.write_version("ds", {"train": rows("a")})
    v2 = s.write_version("ds", {"train": rows("b")}, parent=LATEST)
    (v2.path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"v2/manifest.json: corrupt manifest"):
        Manifest.read(v2.path)
    assert [v.name for v in s.versions("ds")] == ["v1"]
    [(path, why)] = s.problems("ds")
    assert path == v2.path and "manifest.json: corrupt manifest" in why
    v3 = s.write_version("ds", {"train": rows("c")}, parent=LATEST)
    assert v3.name == "v3" and v3.manifest.parent == v1.ref


def test_identical_content_is_not_written_again_unless_asked(store_dir):
    s = store(store_dir)
    v1 = s.write_version("ds", {"train": rows("a")}, files={"recipe.yaml": "x: 1\n"})
    again = s.write_version(
        "ds", {"train": rows("a")}, files={"recipe.yaml": "x: 1\n"}, parent=LATEST, skip_identical=True
    )
    assert again.reused and again.name == v1.name and [v.name for v in s.versions("ds")] == ["v1"]
    changed = s.write_version("ds", {"train": rows("a", "b")}, parent=LATEST, skip_identical=True)
    assert not changed.reused and changed.name == "v2"
    assert not list((store_dir / "ds").glob(".tmp-*"))


def test_manifest_keeps_keys_it_does_not_name(store_dir):
    version = store(store_dir).write_version("ds", {"train": rows("a")}, meta={"audit": {"items": 3}})
    manifest = Manifest.read(version.path)
    assert manifest.to_dict()["audit"] == {"items": 3}
    assert manifest.carried() == {"audit": {"items": 3}}
    assert manifest.rows == {"train": 1} and manifest.files["data/train-00000-of-00001.parquet"].bytes > 0


def test_versions_list_names_the_skipped_version(store_dir):
    from typer.testing import CliRunner

    from traitdose.cli import app

    s = store(store_dir)
    s.write_version("ds", {"train": rows("a")})
    broken = s.write_version("ds", {"train": rows("b")}, parent=LATEST)
    (broken.path / "manifest.json").write_text("[]")
    out = CliRunner().invoke(app, ["versions", "list", "ds", "--store", str(store_dir)])
    assert (
        out.exit_code == 0
        and "skipped v2:" in out.output
        and "v2/manifest.json: corrupt manifest" in out.output
    )
