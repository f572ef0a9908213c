"""What a training run leaves for later commands: ``training.json`` in the output folder.

``train`` writes the DPO config (and, here, the dataset, base model and reference), so
``eval`` on that folder scores with the same length budget, beta and reference as the
run's own held-out report, unless told otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.config import DPOConfig

RUN_FILE = "training.json"


def record_run(out: Path, **facts: str) -> None:
    """Add what the trainer does not know (dataset, base model, reference) to ``training.json``."""
    path = out / RUN_FILE
    summary = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**summary, **facts}, indent=2) + "\n")


def read_run(model: str) -> dict[str, Any]:
    """The ``training.json`` of a model folder; empty for a Hub name or a folder without one."""
    path = Path(model) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def eval_settings(model: str, **given: Any) -> dict[str, Any]:
    """Scoring settings: what was given, else the run's, else DPOConfig's defaults."""
    run = read_run(model)
    config = DPOConfig(**{k: v for k, v in (run.get("config") or {}).items() if k in DPOConfig.model_fields})
    settings = {
        "beta": config.beta,
        "max_length": config.max_length,
        "batch_size": config.batch_size,
        "reference": run.get("reference"),
    }
    settings |= {k: v for k, v in given.items() if v is not None}
    settings["prompt_budget"] = (
        config.prompt_budget if settings["max_length"] == config.max_length else settings["max_length"] // 2
    )
    settings["from"] = str(Path(model) / RUN_FILE) if run else "defaults (no training.json)"
    return settings


def describe_settings(settings: dict[str, Any]) -> str:
    return (
        f"scoring with beta {settings['beta']}, max length {settings['max_length']} "
        f"(prompt {settings['prompt_budget']}), batch {settings['batch_size']}, "
        f"reference {settings['reference'] or 'none (policy log-probs alone)'}; from {settings['from']}"
    )
