"""Publishing without annotator names and notes, and publish failures as one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from data_cards.publish import PublishError, publish, stage
from tests.card_data import items, write

SUMMARY = {"items": 8, "annotators": 2, "resolved": 8, "unresolved": 0, "both_bad": 0}


@pytest.fixture
def annotated(tmp_path):
    rows = items(10)
    for n, row in enumerate(rows[:8]):
        row["label_source"] = "human"
        row["annotation"] = {
            "labels": ["chosen", "chosen"],
            "annotators": ["Eve Example", "Bob Sample"] if n % 2 else ["Bob Sample", "Eve Example"],
            "flags": [],
            "notes": [f"my phone is 555-01{n:02d}, call me"],
            "resolution": "kept",
        }
    return write(tmp_path / "store", rows, annotation=SUMMARY)


def annotations(tree: Path) -> list[dict]:
    return [
        a
        for rel in sorted((tree / "data").iterdir())
        for a in pq.read_table(rel, columns=["annotation"]).column("annotation").to_pylist()
        if a
    ]


def test_by_default_names_and_notes_travel_and_the_card_says_so(annotated, tmp_path):
    tree = tmp_path / "tree"
    stage(annotated, tree, repo_id="org/unit")
    assert {n for a in annotations(tree) for n in a["annotators"]} == {"Eve Example", "Bob Sample"}
    assert "`traitdose publish --drop-annotator-notes`" in (tree / "README.md").read_text()


def test_drop_annotator_notes_uploads_pseudonyms_and_no_notes(annotated, tmp_path):
    tree = tmp_path / "tree"
    stage(annotated, tree, repo_id="org/unit", drop_annotator_notes=True)
    notes = annotations(tree)
    assert len(notes) == 8
    assert {n for a in notes for n in a["annotators"]} == {"annotator-1", "annotator-2"}
    assert all(a["notes"] == [] and a["labels"] == ["chosen", "chosen"] for a in notes)
    blob = b"".join(p.read_bytes() for p in tree.rglob("*") if p.is_file())
    assert b"Eve Example" not in blob and b"555-01" not in blob
    manifest = json.loads((tree / "manifest.json").read_text())
    assert manifest["annotator_notes"] == "dropped"
    for rel in ("data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"):
        assert manifest["files"][rel]["sha256"] == hashlib.sha256((tree / rel).read_bytes()).hexdigest()
    assert "pseudonymous ids (annotator-1, …)" in (tree / "README.md").read_text()
    # the local version is untouched
    assert {n for a in annotations(annotated.path) for n in a["annotators"]} == {"Eve Example", "Bob Sample"}


class XetFailingHub:
    """An HfApi stand-in whose upload fails the way the Xet path does (not an HTTP error)."""

    endpoint = "https://user:secret@hub.example"

    def list_repo_refs(self, repo_id, repo_type):
        return SimpleNamespace(tags=[])

    def create_repo(self, *args, **kwargs):
        return None

    def list_repo_files(self, repo_id, repo_type):
        return []

    def create_commit(self, *args, **kwargs):
        raise RuntimeError(
            "Data processing error: CAS service error : Reqwest Error: HTTP status server error\nmore"
        )


def test_a_xet_upload_failure_is_one_line_naming_repo_step_and_cause(annotated, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    with pytest.raises(PublishError) as info:
        publish(annotated, "org/unit", api=XetFailingHub())  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "secret" not in message
    assert message == (
        "publishing unit@v1 to org/unit failed while uploading the commit (https://***@hub.example): "
        "RuntimeError: Data processing error: CAS service error : Reqwest Error: HTTP status server error"
    )
