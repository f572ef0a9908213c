"""A recipe's validation error as one line: file, line, dotted field and a plain message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def first_error(exc: ValidationError, path: Path, root: yaml.Node | None) -> str:
    error = exc.errors()[0]
    # A union's tag follows its field ("generate", "llm", ...); a top-level "llm" is the llm block.
    loc = [p for i, p in enumerate(error["loc"]) if i == 0 or not _is_union_tag(p)]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "union_tag_invalid":
        message = (
            f"unknown kind {error['input'].get('kind')!r}; expected one of {error['ctx']['expected_tags']}"
        )
    elif error["type"] == "union_tag_not_found":
        message = f"missing 'kind'; expected one of {error['ctx']['expected_tags'] if 'ctx' in error else ''}"
    field = _dotted(loc) or "recipe"
    line = _line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    more = len(exc.errors()) - 1
    return f"{where}: {field}: {message}" + (f" (and {more} more error{'s' * (more > 1)})" if more else "")


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in ("answer_key", "ab_eval", "template", "llm")


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on ``loc`` that exists."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
