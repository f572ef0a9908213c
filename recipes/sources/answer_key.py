"""``answer_key``: a question with correct and incorrect answers → gold preference pairs.

Each question yields up to ``pairs_per_question`` (correct, incorrect) pairs, chosen by
seeded shuffle, never the same pair twice. All pairs of one question share a split group.
"""

from __future__ import annotations

import random

from core.answers import AnswerError
from recipes.sources.items import SourceOutput, make_item, prompt_messages
from recipes.sources.tables import (
    apply_where,
    cell_text,
    cell_texts,
    iter_records,
    read_source_table,
    require_columns,
    source_name,
)
from recipes.spec import AnswerKeySource


def read_answer_key(
    source: AnswerKeySource,
    *,
    domain: str,
    trait: str,
    seed: int,
    recipe_hash: str,
    limit: int | None = None,
) -> SourceOutput:
    frame = read_source_table(source.path, source.hf_split, source.encoding)
    columns = {
        "question": source.question,
        "correct": source.correct,
        "incorrect": source.incorrect,
        "best": source.best,
    }
    require_columns(frame, source.path, columns)
    frame = apply_where(frame, source.where, source.path)
    out = SourceOutput(rows_read=frame.height)
    name = source_name(source.path)
    for row, record in iter_records(frame, out, limit):
        try:
            question, correct, incorrect = _row(record, source)
        except AnswerError as exc:
            out.reject(row, str(exc), record)
            continue
        pairs = [(c, i) for c in correct for i in incorrect if c.casefold() != i.casefold()]
        random.Random(f"{seed}:{name}:{row}").shuffle(pairs)
        prompt = prompt_messages(question, source.system)
        for chosen, rejected in pairs[: source.pairs_per_question]:
            out.rows.append(
                make_item(
                    prompt=prompt,
                    chosen=chosen,
                    rejected=rejected,
                    domain=domain,
                    trait=trait,
                    label_source="gold",
                    pair=(chosen, rejected),
                    provenance={
                        "source": f"answer_key:{name}",
                        "source_row": row,
                        "generator": "answer_key",
                        "violation": "confident_falsehood" if trait == "truthfulness" else None,
                        "group": f"{name}:{row}",
                        "seed": seed,
                        "recipe_hash": recipe_hash,
                    },
                )
            )
    return out


def _row(record: dict, source: AnswerKeySource) -> tuple[str, list[str], list[str]]:
    """The question, correct and incorrect answers of one record; AnswerError if unusable."""
    question = cell_text(record, source.question)
    correct = _answers(record, source.correct, source.separator)
    if source.best and record.get(source.best):
        best = cell_text(record, source.best)
        if best not in correct:
            correct.insert(0, best)
    incorrect = _answers(record, source.incorrect, source.separator)
    if not correct or not incorrect:
        missing = source.correct if not correct else source.incorrect
        raise AnswerError(f"expected answers in column {missing!r}, found none")
    return question, correct, incorrect


def _answers(record: dict, column: str, separator: str) -> list[str]:
    """Split an answers cell (text or a list of texts), dropping blanks and repeats but keeping order."""
    cell = record.get(column)
    parts = (
        cell_texts(record, column)
        if isinstance(cell, list)
        else _split(cell_texts(record, column), separator)
    )
    seen: dict[str, str] = {}
    for part in parts:
        text = part.strip()
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())


def _split(texts: list[str], separator: str) -> list[str]:
    return [part for text in texts for part in text.split(separator)]
