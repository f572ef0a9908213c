"""The card's YAML header, in the shape the Hub and ``huggingface_hub`` parse, and its
offline validation.

``DatasetCard.validate()`` posts the YAML to the Hub, so we check it here instead,
against the lists that ship inside ``datasets`` (size categories, languages, creators,
task ids) and a small license allow-list.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_cards.license import LICENSES

_SCALAR = {
    pa.string(): "string",
    pa.large_string(): "large_string",
    pa.bool_(): "bool",
    pa.int8(): "int8",
    pa.int16(): "int16",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.float32(): "float32",
    pa.float64(): "float64",
}


def features_yaml(schema: pa.Schema) -> list[dict[str, Any]]:
    """``dataset_info.features`` for an Arrow schema, as ``datasets`` writes it.

    Equal to ``datasets.Features.from_arrow_schema(schema)._to_yaml_list()`` (a test
    checks), without importing ``datasets`` (over a second) on every ``traitdose run``.
    """
    return [{"name": f.name, **_feature(f.type)} for f in schema]


def _feature(dtype: pa.DataType) -> dict[str, Any]:
    if pa.types.is_struct(dtype):
        return {"struct": [{"name": f.name, **_feature(f.type)} for f in dtype]}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = _feature(dtype.value_type)
        if "dtype" in inner:
            return {"list": inner["dtype"]}
        return {"list": inner.get("struct", inner)}
    if dtype in _SCALAR:
        return {"dtype": _SCALAR[dtype]}
    raise ValueError(f"no dataset feature for Arrow type {dtype}")


def dataset_info(version_dir: Path, rows: dict[str, int], split_files: dict[str, str]) -> dict[str, Any]:
    """Features and split sizes from the parquet files' own metadata (no data read)."""
    splits, download, schema = [], 0, None
    for split, rel in split_files.items():
        meta = pq.read_metadata(version_dir / rel)
        schema = schema or meta.schema.to_arrow_schema()
        num_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        splits.append({"name": split, "num_bytes": num_bytes, "num_examples": rows[split]})
        download += (version_dir / rel).stat().st_size
    info: dict[str, Any] = {}
    if schema is not None:
        info["features"] = features_yaml(schema.remove_metadata())
    info["splits"] = splits
    info["download_size"] = download
    info["dataset_size"] = sum(s["num_bytes"] for s in splits)
    return info


def size_category(n: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < bound:
            return label
    return "1M<n<10M" if n < 10_000_000 else "10M<n<100M"


@cache
def _resource(name: str) -> Any:
    return json.loads(files("datasets.utils.resources").joinpath(name).read_text())


@cache
def _task_ids() -> frozenset[str]:
    from datasets.utils.metadata import known_task_ids

    return frozenset(known_task_ids)


def validate_metadata(meta: dict[str, Any]) -> list[str]:
    """Problems the Hub's validator would report, found offline; empty when valid."""
    problems = []

    def check(field: str, allowed: Any, what: str) -> None:
        values = meta.get(field) or []
        for value in [values] if isinstance(values, str) else values:
            if value not in allowed:
                problems.append(f"{field}: {value!r} is not a known {what}")

    check("size_categories", _resource("size_categories.json"), "size category")
    check("language", _resource("languages.json"), "language code")
    check("annotations_creators", _resource("creators.json")["annotations"], "annotations creator")
    check("language_creators", _resource("creators.json")["language"], "language creator")
    check("task_categories", _task_ids(), "task category")
    license_id = meta.get("license")
    if license_id == "other":
        if not meta.get("license_name"):
            problems.append("license: 'other' needs a license_name")
    elif license_id not in LICENSES:
        problems.append(f"license: {license_id!r} is not in the allow-list ({', '.join(LICENSES)}, other)")
    for config in meta.get("configs") or []:
        for entry in config.get("data_files") or []:
            if not {"split", "path"} <= set(entry):
                problems.append(
                    f"configs[{config.get('config_name')}].data_files: entry needs split and path"
                )
    return problems
