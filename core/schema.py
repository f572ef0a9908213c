"""The item: one preference pair, as one Arrow schema (see DESIGN.md, "The item").

Every stage takes and returns tables of this schema. Polars produces ``large_string``
and ``large_list``; :func:`conform` casts back so every version and split carries
identical features.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
import xxhash

from core.errors import SchemaError

LABEL_SOURCES = ("gold", "contrastive", "judge", "human")
SPLITS = ("train", "test")
STATUSES = ("accepted", "routed")

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
# A rubric criterion: what a good response must do (or must not do), and its weight in the grade.
RUBRIC = pa.list_(pa.struct([("criterion", pa.string()), ("kind", pa.string()), ("weight", pa.float64())]))
JUDGE = pa.struct(
    [
        ("votes", pa.list_(pa.string())),  # "chosen" | "rejected" | "tie", one per vote
        ("scores", pa.list_(pa.float64())),  # judge's score margin per vote, chosen minus rejected
        ("confidence", pa.float64()),
        ("model", pa.string()),
    ]
)
PROVENANCE = pa.struct(
    [
        ("source", pa.string()),  # "template:<bank>" | "answer_key:<file>" | "llm:<model>" ...
        ("source_row", pa.int64()),  # row number in the source file, when there is one
        ("generator", pa.string()),  # template id or model name
        ("violation", pa.string()),  # the violation kind the rejected response exhibits
        ("group", pa.string()),  # split group: items of one group never straddle splits
        ("seed", pa.int64()),
        ("recipe_hash", pa.string()),
    ]
)
ANNOTATION = pa.struct(
    [
        (
            "labels",
            pa.list_(pa.string()),
        ),  # per annotator: "chosen" | "rejected" | "tie" | "both_bad"
        ("annotators", pa.list_(pa.string())),
        ("flags", pa.list_(pa.string())),
        ("notes", pa.list_(pa.string())),
        ("resolution", pa.string()),
    ]
)

ITEM_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("trait", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", MESSAGES, nullable=False),
        pa.field("rejected", MESSAGES, nullable=False),
        pa.field("rubric", RUBRIC),
        pa.field("label_source", pa.string(), nullable=False),
        pa.field("judge", JUDGE),
        pa.field("ambiguity", pa.float64()),
        pa.field("ambiguity_reasons", pa.list_(pa.string())),
        pa.field("provenance", PROVENANCE),
        pa.field("split", pa.string()),
        pa.field("status", pa.string()),
        pa.field("annotation", ANNOTATION),
    ]
)
COLUMNS = tuple(ITEM_SCHEMA.names)
REQUIRED = tuple(f.name for f in ITEM_SCHEMA if not f.nullable)

# Side tables (dropped rows) carry the item columns plus why they left.
DROP_COLUMNS = pa.schema(
    [
        pa.field("drop_stage", pa.string()),
        pa.field("drop_reason", pa.string()),
        pa.field("drop_detail", pa.string()),  # JSON: cluster id, kept id, similarity, span ...
    ]
)
DROPPED_SCHEMA = pa.schema(list(ITEM_SCHEMA) + list(DROP_COLUMNS))


def normalize_text(text: str) -> str:
    """Case-, space- and Unicode-insensitive form used for ids and exact dedupe."""
    if text.isascii():  # NFKC leaves ASCII alone and casefold() is lower() there: skip both
        return " ".join(text.lower().split())
    # str.split() collapses every Unicode whitespace run; it is ~10x faster than a regex here.
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def item_id(prompt: Iterable[Mapping[str, str]], domain: str, trait: str, pair: Sequence[str] = ()) -> str:
    """Stable id: same normalized prompt + domain + trait, same id, in every run and version.

    ``pair`` disambiguates sources that pair one prompt with several answer pairs (an
    answer key): pass the two answer texts. They are sorted, so swapping chosen and
    rejected (a human relabel) keeps the id.
    """
    # One hash over the joined text: the same digest as feeding the pieces one by one.
    parts = [f"{text}\x1c" for text in sorted(normalize_text(t) for t in pair)] if pair else []
    parts += [f"{msg['role']}\x1f{normalize_text(msg['content'])}\x1e" for msg in prompt]
    parts.append(f"{domain}\x1d{trait}")
    return _digest("".join(parts))


def user_item_id(text: str, domain: str, trait: str) -> str:
    """:func:`item_id` of a prompt that is one user message, without building the message.

    The template generator ids ~100k such prompts a run; the message list and the joins
    :func:`item_id` goes through cost as much as the hash."""
    return _digest(f"user\x1f{normalize_text(text)}\x1e{domain}\x1d{trait}")


def _digest(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode())[:24]


def messages(role: str, content: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content}]


def empty_table(schema: pa.Schema = ITEM_SCHEMA) -> pa.Table:
    return schema.empty_table()


def conform(data: pa.Table | pl.DataFrame, schema: pa.Schema = ITEM_SCHEMA) -> pa.Table:
    """Return ``data`` with exactly ``schema``'s columns, order and types.

    Missing nullable columns are filled with nulls; extra columns are an error so a
    typo in a stage cannot silently vanish.
    """
    table = data.to_arrow() if isinstance(data, pl.DataFrame) else data
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise SchemaError(f"unexpected column(s) {extra}; the item schema has {list(schema.names)}")
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(_cast(table.column(field.name), field))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise SchemaError(f"missing required column '{field.name}'")
    return pa.Table.from_arrays(columns, schema=schema)


def _cast(column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    if column.type.equals(field.type):
        return column
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), field.type)
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"column '{field.name}': cannot cast {column.type} to {field.type}: {exc}") from exc


def validate(table: pa.Table) -> None:
    """Check values the types cannot: non-empty required fields, known enums, message shape.

    Raises :class:`SchemaError` naming the first bad row (0-based) and field.
    """
    table = conform(table)
    rows = pl.from_arrow(table)
    assert isinstance(rows, pl.DataFrame)
    checks: list[tuple[str, pl.Expr, str]] = [
        ("id", pl.col("id").is_null() | (pl.col("id").str.len_chars() == 0), "empty id"),
        ("domain", pl.col("domain").is_null() | (pl.col("domain") == ""), "empty domain"),
        ("trait", pl.col("trait").is_null() | (pl.col("trait") == ""), "empty trait"),
        (
            "label_source",
            ~pl.col("label_source").is_in(LABEL_SOURCES),
            f"must be one of {list(LABEL_SOURCES)}",
        ),
        (
            "split",
            pl.col("split").is_not_null() & ~pl.col("split").is_in(SPLITS),
            f"must be one of {list(SPLITS)}",
        ),
        (
            "status",
            pl.col("status").is_not_null() & ~pl.col("status").is_in(STATUSES),
            f"must be one of {list(STATUSES)}",
        ),
        (
            "ambiguity",
            pl.col("ambiguity").is_not_null() & ((pl.col("ambiguity") < 0) | (pl.col("ambiguity") > 1)),
            "must be in [0, 1]",
        ),
    ]
    for column in ("prompt", "chosen", "rejected"):
        checks.append((column, pl.col(column).is_null() | (pl.col(column).list.len() == 0), "no messages"))
        contents = pl.col(column).list.eval(pl.element().struct.field("content").fill_null(""))
        checks.append(
            (
                column,
                contents.list.eval(pl.element().str.strip_chars() == "").list.any(),
                "empty message content",
            )
        )
    checks.append(
        (
            "chosen",
            pl.col("chosen").list.eval(pl.element().struct.field("role") != "assistant").list.any(),
            "responses must be assistant messages",
        )
    )
    checks.append(
        (
            "rejected",
            pl.col("rejected").list.eval(pl.element().struct.field("role") != "assistant").list.any(),
            "responses must be assistant messages",
        )
    )
    for field, bad, why in checks:
        hits = rows.with_row_index("_row").filter(bad.fill_null(False))
        if hits.height:
            row = hits["_row"][0]
            raise SchemaError(f"row {row} ({rows['id'][row]!r}), field '{field}': {why}")
    duplicated = rows.filter(pl.col("id").is_duplicated())
    if duplicated.height:
        raise SchemaError(f"field 'id': duplicate id {duplicated['id'][0]!r}")


def from_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """Build a conformed table from Python dicts (missing nullable fields become null)."""
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
