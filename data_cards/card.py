"""The dataset card written into every version (its ``README.md``).

The store calls :func:`write_card` on the version folder before the version becomes
visible, so the card is part of the immutable version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def write_card(version_dir: Path) -> None:
    manifest = json.loads((version_dir / "manifest.json").read_text())
    (version_dir / "README.md").write_text(render_card(manifest))


def render_card(manifest: dict[str, Any]) -> str:
    rows = manifest["rows"]
    meta = {
        "pretty_name": manifest["dataset"],
        "task_categories": ["text-generation"],
        "tags": ["dpo", "preference", *manifest.get("traits", [])],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in rows],
            }
        ],
    }
    header = yaml.safe_dump(meta, sort_keys=False)
    funnel = "\n".join(
        f"| {s['stage']} | {s['in']} | {s['out']} | "
        f"{', '.join(f'{k}: {v}' for k, v in s.get('dropped', {}).items()) or '-'} |"
        for s in manifest.get("funnel", [])
    )
    return (
        f"---\n{header}---\n\n# {manifest['dataset']} {manifest.get('version', '')}\n\n"
        f"Preference pairs (prompt, chosen, rejected) teaching {', '.join(manifest.get('traits', []))} "
        f"in {manifest.get('domain', 'its domain')}, built by traitdose.\n\n"
        f"Rows: {', '.join(f'{k}: {v}' for k, v in rows.items())}.\n\n"
        f"## Curation funnel\n\n| stage | in | out | dropped |\n| --- | --- | --- | --- |\n{funnel}\n"
    )
