"""Text out of item columns: a column is a plain string or a list of chat messages.

Every text stage (dedupe, decontamination, filters) names its input the same way: a
column, or several joined with ``+`` (``prompt+chosen+rejected``). Message lists become
their contents joined by newlines, so roles never count as words.
"""

from __future__ import annotations

import polars as pl

from core.errors import OptionError

DEFAULT_FIELD = "prompt"


def field_columns(field: str) -> list[str]:
    """``"prompt+chosen"`` → ``["prompt", "chosen"]``."""
    columns = [c.strip() for c in field.split("+") if c.strip()]
    if not columns:
        raise OptionError(f"empty text field {field!r}: name a column, or several joined by '+'")
    return columns


def check_field(frame: pl.DataFrame, field: str) -> list[str]:
    columns = field_columns(field)
    for column in columns:
        if column not in frame.columns:
            raise OptionError(f"--field {field!r}: no column {column!r}; columns: {', '.join(frame.columns)}")
        dtype = frame.schema[column]
        if not (dtype == pl.String or _is_messages(dtype)):
            raise OptionError(
                f"column {column!r} is {dtype}; a text field is a string "
                "or a list of {role, content} messages"
            )
    return columns


def text_expr(frame: pl.DataFrame, field: str) -> pl.Expr:
    """One string per row: the field's columns joined by newlines (nulls become empty)."""
    parts = [column_text(frame, column) for column in check_field(frame, field)]
    return pl.concat_str(parts, separator="\n") if len(parts) > 1 else parts[0]


def column_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    if _is_messages(frame.schema[column]):
        contents = pl.col(column).list.eval(pl.element().struct.field("content").fill_null(""))
        return contents.list.join("\n").fill_null("")
    return pl.col(column).fill_null("")


def texts(frame: pl.DataFrame, field: str) -> pl.Series:
    columns = check_field(frame, field)
    if len(columns) == 1 and frame.schema[columns[0]] == pl.String and not frame[columns[0]].null_count():
        return frame[columns[0]]  # already plain text: no copy
    return frame.select(text_expr(frame, field).alias("text"))["text"]


def _is_messages(dtype: pl.DataType) -> bool:
    return (
        isinstance(dtype, pl.List)
        and isinstance(dtype.inner, pl.Struct)
        and "content" in [f.name for f in dtype.inner.fields]
    )
