"""``answer_key``: a question with correct and incorrect answers → gold preference pairs.

Each question yields up to ``pairs_per_question`` (correct, incorrect) pairs, chosen by
seeded shuffle, never the same pair twice. All pairs of one question share a split group.
"""

from __future__ import annotations

import random

from recipes.sources.items import SourceOutput, make_item, prompt_messages
from recipes.sources.tables import apply_where, iter_records, read_source_table, require_columns, source_name
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
    frame = read_source_table(source.path, source.hf_split)
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
        question = (record.get(source.question) or "").strip()
        correct = _answers(record.get(source.correct), source.separator)
        if source.best and (best := (record.get(source.best) or "").strip()) and best not in correct:
            correct.insert(0, best)
        incorrect = _answers(record.get(source.incorrect), source.separator)
        if not question:
            out.reject(row, f"empty question (column {source.question!r})", record)
            continue
        if not correct or not incorrect:
            missing = source.correct if not correct else source.incorrect
            out.reject(row, f"no answers in column {missing!r}", record)
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


def _answers(cell: object, separator: str) -> list[str]:
    """Split an answers cell, dropping blanks and repeats but keeping order."""
    if cell is None:
        return []
    parts = cell if isinstance(cell, list) else str(cell).split(separator)
    seen: dict[str, str] = {}
    for part in parts:
        text = str(part).strip()
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())
