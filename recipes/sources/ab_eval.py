"""``ab_eval``: "question ... Choices: (A) ... (B) ..." with the preferred letter in a column.

The letters become full-text responses: the preferred choice is ``chosen``, the other
``rejected``. An answer given as text (`` Yes``) rather than a letter is the response
itself. The choice block is stripped from the prompt unless ``keep_choices`` is set.
"""

from __future__ import annotations

import re

from recipes.sources.items import SourceOutput, make_item, prompt_messages
from recipes.sources.tables import apply_where, iter_records, read_source_table, require_columns, source_name
from recipes.spec import ABEvalSource

_CHOICES = re.compile(r"\n\s*Choices:\s*\n", re.IGNORECASE)
_OPTION = re.compile(r"^\s*\(([A-Z])\)\s*(.+?)\s*$")
_LETTER = re.compile(r"^\s*\(?([A-Z])\)?\s*$")


class ParseError(ValueError):
    pass


def parse_choices(question: str) -> tuple[str, dict[str, str]]:
    """Split a question into its stem and ``{letter: text}``; raise ParseError if malformed."""
    parts = _CHOICES.split(question, maxsplit=1)
    if len(parts) != 2:
        raise ParseError("no 'Choices:' block")
    stem, block = parts[0].strip(), parts[1]
    options: dict[str, str] = {}
    for line in block.splitlines():
        if not line.strip():
            continue
        match = _OPTION.match(line)
        if not match:
            raise ParseError(f"cannot parse choice line {line.strip()!r}")
        options[match.group(1)] = match.group(2)
    if len(options) < 2:
        raise ParseError(f"expected at least two choices, found {len(options)}")
    return stem, options


def _response(answer: str, options: dict[str, str]) -> str:
    letter = _LETTER.match(answer)
    if letter:
        if letter.group(1) not in options:
            raise ParseError(f"answer {answer.strip()!r} names no choice (choices: {', '.join(options)})")
        return options[letter.group(1)]
    return answer.strip()


def read_ab_eval(
    source: ABEvalSource,
    *,
    domain: str,
    trait: str,
    seed: int,
    recipe_hash: str,
    limit: int | None = None,
) -> SourceOutput:
    frame = read_source_table(source.path, source.hf_split)
    require_columns(
        frame,
        source.path,
        {"question": source.question, "chosen": source.chosen, "rejected": source.rejected},
    )
    frame = apply_where(frame, source.where, source.path)
    out = SourceOutput(rows_read=frame.height)
    name = source_name(source.path)
    for row, record in iter_records(frame, out, limit):
        try:
            prompt_text, chosen, rejected = _pair(record, source)
        except ParseError as exc:
            out.reject(row, str(exc), record)
            continue
        out.rows.append(
            make_item(
                prompt=prompt_messages(prompt_text, source.system),
                chosen=chosen,
                rejected=rejected,
                domain=domain,
                trait=trait,
                label_source="gold",
                provenance={
                    "source": f"ab_eval:{name}",
                    "source_row": row,
                    "generator": "ab_eval",
                    "violation": None,
                    "group": f"{name}:{row}",
                    "seed": seed,
                    "recipe_hash": recipe_hash,
                },
            )
        )
    return out


def _pair(record: dict, source: ABEvalSource) -> tuple[str, str, str]:
    question = record.get(source.question)
    answer = record.get(source.chosen)
    if not isinstance(question, str) or not question.strip():
        raise ParseError(f"empty question (column {source.question!r})")
    if not isinstance(answer, str) or not answer.strip():
        raise ParseError(f"empty answer (column {source.chosen!r})")
    stem, options = parse_choices(question)
    chosen = _response(answer, options)
    other = record.get(source.rejected) if source.rejected else None
    if isinstance(other, str) and other.strip():
        rejected = _response(other, options)
    else:
        rest = [text for text in options.values() if text != chosen]
        if len(rest) != 1:
            raise ParseError("more than two choices: name the rejected answer's column in source.rejected")
        rejected = rest[0]
    if chosen.casefold() == rejected.casefold():
        raise ParseError("chosen and rejected answers are the same")
    return (question.strip() if source.keep_choices else stem), chosen, rejected
