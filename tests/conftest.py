from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the repo; TRAITDOSE_SHARED_DATA points elsewhere (e.g. from a git worktree)
SHARED_DATA = Path(os.environ.get("TRAITDOSE_SHARED_DATA") or ROOT.parent / "shared" / "data")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "truthfulqa" / "TruthfulQA.csv").exists():
        pytest.skip(f"public datasets not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def write_recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_debug_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI tests expect one-line errors, whatever TRAITDOSE_DEBUG the shell (or a --debug test) set."""
    monkeypatch.setenv("TRAITDOSE_DEBUG", "0")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local 2-CPU Ray for every Ray test (starting one costs seconds); workers import this checkout."""
    ray = pytest.importorskip(
        "ray", reason="the Ray engine needs the ray extra: pip install 'traitdose[ray]'"
    )
    import logging
    import os

    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}},
    )
    yield ray
    ray.shutdown()
