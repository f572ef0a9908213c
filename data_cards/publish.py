"""Publish one version to the Hugging Face Hub as one commit, tagged ``vN``.

What is uploaded is exactly what :func:`stage` writes: the split parquet files under
``data/``, the card (``README.md``, re-rendered with the repo id so its loading example
is right) and its figure, the resolved ``recipe.yaml``, ``manifest.json`` (funnel, file
checksums, lineage) and the run's ``quarantine.jsonl`` when there is one, so a published
version can be rebuilt and audited. The side tables (``dropped``, ``routed``) stay
local: dropped rows include benchmark overlaps that decontamination removed.

The token is never read here: ``huggingface_hub`` finds it (``HF_TOKEN`` or its login)
and sends it in a header. ``HF_ENDPOINT`` is honoured by ``huggingface_hub`` itself.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import PublishError
from core.store import Version, split_file
from core.urls import redact_text, redact_url
from data_cards import privacy
from data_cards.card import write_card_to
from data_cards.figure import FIGURE_NAME
from data_cards.metadata import validate_metadata

if TYPE_CHECKING:
    from huggingface_hub import HfApi

AUDIT_FILES = ("recipe.yaml", "manifest.json", "quarantine.jsonl")
KEEP_REMOTE = {".gitattributes"}  # files the Hub creates that a version never replaces


@dataclass(frozen=True)
class StagedFile:
    path: str  # path in the repo
    bytes: int


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    tag: str
    commit: str | None
    url: str
    already: bool = False  # the tag existed with the same data: nothing was uploaded


def stage(
    version: Version, dest: Path, repo_id: str | None = None, *, drop_annotator_notes: bool = False
) -> list[StagedFile]:
    """Write the upload tree of ``version`` into ``dest`` (empty or absent).

    ``drop_annotator_notes``: the uploaded split files name annotators by pseudonymous ids
    and hold no free-text notes (see :mod:`data_cards.privacy`).
    """
    if dest.exists() and any(dest.iterdir()):
        raise PublishError(f"{dest} is not empty: give a new or empty folder for the upload tree")
    dest.mkdir(parents=True, exist_ok=True)
    data = [split_file(s) for s in version.manifest.non_empty_splits()]
    if not data:
        raise PublishError(f"{version.ref} has no rows: nothing to publish")
    sources = data + [name for name in AUDIT_FILES if (version.path / name).is_file()]
    for rel in sources:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(version.path / rel, dest / rel)
    overrides = {}
    if drop_annotator_notes:
        privacy.drop_annotator_notes(dest, data)
        overrides[privacy.MANIFEST_KEY] = "dropped"
    write_card_to(version.path, dest / "README.md", repo_id=repo_id, overrides=overrides)
    _check_card(dest / "README.md")
    staged = [*sources, "README.md", FIGURE_NAME]
    return [StagedFile(rel, (dest / rel).stat().st_size) for rel in sorted(staged)]


def _check_card(readme: Path) -> None:
    from huggingface_hub import DatasetCard

    problems = validate_metadata(DatasetCard.load(readme).data.to_dict())
    if problems:
        raise PublishError(f"{readme}: invalid card metadata: {'; '.join(problems)}")


def publish(
    version: Version,
    repo_id: str,
    *,
    private: bool = False,
    api: HfApi | None = None,
    drop_annotator_notes: bool = False,
) -> PublishResult:
    """Upload ``version`` to dataset repo ``repo_id`` and tag the commit ``version.name``.

    Re-publishing a version whose tag already holds the same data files is a no-op;
    a tag holding different data is an error (a published version never changes).
    """
    # The Hub client's own error types: HTTPError (re-exported by huggingface_hub.errors)
    # is the base of both HfHubHTTPError (a bad status) and transport failures, whatever
    # HTTP library the client uses underneath.
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = api or HfApi()
    tag = version.name
    with tempfile.TemporaryDirectory(prefix="traitdose-publish-") as tmp:
        tree = Path(tmp) / "tree"
        staged = stage(version, tree, repo_id=repo_id, drop_annotator_notes=drop_annotator_notes)
        data = json.loads((tree / "manifest.json").read_text())["files"]
        with _step(version, repo_id, api, "checking existing tags"):
            existing = _published(api, version, repo_id, data)
        if existing is not None:
            return existing
        with _step(version, repo_id, api, "creating the repo"):
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        with _step(version, repo_id, api, "uploading the commit"):
            commit = _commit(api, version, repo_id, tree, staged)
    with _step(version, repo_id, api, f"tagging {tag}"):
        api.create_tag(
            repo_id,
            tag=tag,
            revision=commit,
            repo_type="dataset",
            tag_message=_message(version),
            exist_ok=True,
        )
    url = f"{api.endpoint}/datasets/{repo_id}/tree/{tag}"
    return PublishResult(repo_id, tag, commit, url)


@contextmanager
def _step(version: Version, repo_id: str, api: HfApi, step: str) -> Iterator[None]:
    """Any failure of one network step → one line naming the repo, the step and the cause.

    Not only the HTTP client's own errors: the Xet upload path, the OS and the JSON
    decoder raise their own types, and a publish must never end in a traceback.
    """
    try:
        yield
    except PublishError:
        raise
    except Exception as exc:
        where = f"{repo_id} failed while {step} ({redact_url(api.endpoint)})"
        raise PublishError(f"publishing {version.ref} to {where}: {_reason(exc)}") from exc


def _published(api: HfApi, version: Version, repo_id: str, files: dict[str, dict]) -> PublishResult | None:
    """The existing release of ``version`` on the Hub, or None when it has none yet.

    ``files``: the upload tree's checksums, which the tagged data files must match.
    """
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
    except RepositoryNotFoundError:
        return None
    tagged = next((t for t in refs.tags if t.name == version.name), None)
    if tagged is None:
        return None
    data = [split_file(s) for s in version.manifest.non_empty_splits()]
    remote = {
        f.path: f for f in api.get_paths_info(repo_id, data, revision=version.name, repo_type="dataset")
    }
    for rel in data:
        sha = files.get(rel, {}).get("sha256")
        lfs = getattr(remote.get(rel), "lfs", None)
        if lfs is None or lfs.sha256 != sha:
            raise PublishError(
                f"{repo_id} already has tag {version.name} with different data ({rel} differs from "
                f"{version.ref}); a published version is never overwritten"
            )
    url = f"{api.endpoint}/datasets/{repo_id}/tree/{version.name}"
    return PublishResult(repo_id, version.name, tagged.target_commit, url, already=True)


def _commit(api: HfApi, version: Version, repo_id: str, tree: Path, staged: list[StagedFile]) -> str:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    uploading = {f.path for f in staged}
    # Files of an earlier version that this one lacks (a split, a quarantine log) would
    # otherwise linger in the tagged revision.
    stale = [p for p in api.list_repo_files(repo_id, repo_type="dataset") if p not in uploading | KEEP_REMOTE]
    operations = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(tree / f.path)) for f in staged]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    info = api.create_commit(
        repo_id,
        operations,
        commit_message=_message(version),
        commit_description=_description(version),
        repo_type="dataset",
    )
    return info.oid


def _message(version: Version) -> str:
    return f"{version.ref} (recipe {version.manifest.recipe_hash or 'none'})"


def _description(version: Version) -> str:
    m = version.manifest
    rows = ", ".join(f"{s}: {n}" for s, n in m.rows.items())
    return f"traitdose version {version.ref}, created {m.created}, parent {m.parent or '-'}; rows {rows}."


def _reason(exc: Exception) -> str:
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    line = redact_text(f"{type(exc).__name__}: {line}"[:300] if line else type(exc).__name__)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        line += " (check the token: HF_TOKEN or `hf auth login`, with write access to the repo)"
    return line
