"""``ab_eval``: a question with lettered options, or a Yes/No statement, and the preferred answer.

Accepted shapes (see :mod:`core.answers` and the README's recipe section):

- options headed ``Choices:``/``Answers:``/``Options:``/``Answer choices:`` in any case, or
  no header; on their own lines or inline; two or more. The letters become full-text
  responses: the preferred option is ``chosen``; each other option (or each answer in the
  ``rejected`` column, a string or a list) is ``rejected`` in its own pair, up to
  ``pairs_per_question``. The options block is stripped from the prompt unless
  ``keep_choices`` is set;
- answers as ``(A)``, `` (A)``, ``A``, ``A)``, ``A.`` or the option's text;
- no options at all: the prompt is the question as written and the two answer texts are
  the responses (``Yes``/``No``: the other is the opposite when no ``rejected`` column).

A row in no accepted shape is quarantined with a reason saying what was expected and
what was found.
"""

from __future__ import annotations

import random

from core.answers import AnswerError, answer_letter, parse_answer, preview, resolve_answer, split_options
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
from recipes.spec import ABEvalSource

_OPPOSITE = {"yes": "No", "no": "Yes"}


def read_ab_eval(
    source: ABEvalSource,
    *,
    domain: str,
    trait: str,
    seed: int,
    recipe_hash: str,
    limit: int | None = None,
) -> SourceOutput:
    frame = read_source_table(source.path, source.hf_split, source.encoding)
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
            prompt_text, pairs = question_pairs(record, source)
        except AnswerError as exc:
            out.reject(row, str(exc), record)
            continue
        random.Random(f"{seed}:{name}:{row}").shuffle(pairs)
        pairs = pairs[: source.pairs_per_question]
        for chosen, rejected in pairs:
            out.rows.append(
                make_item(
                    prompt=prompt_messages(prompt_text, source.system),
                    chosen=chosen,
                    rejected=rejected,
                    domain=domain,
                    trait=trait,
                    label_source="gold",
                    pair=(chosen, rejected) if len(pairs) > 1 else (),
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


def question_pairs(record: dict, source: ABEvalSource) -> tuple[str, list[tuple[str, str]]]:
    """One record → the prompt text and its (chosen, rejected) pairs; AnswerError if malformed."""
    question = cell_text(record, source.question)
    answer = cell_text(record, source.chosen)
    others = cell_texts(record, source.rejected) if source.rejected else []
    stem, options = split_options(question)
    if options:
        chosen = resolve_answer(answer, options)
        rejected = [resolve_answer(o, options) for o in others] or list(options.values())
        if not stem and not source.keep_choices:
            raise AnswerError(
                f"expected a question before the options, found only options {preview(question)}"
            )
        prompt = question.strip() if source.keep_choices else stem
    else:
        if answer_letter(answer):
            raise AnswerError(
                f"expected options '(A) …' '(B) …' in the question since the answer is a letter, "
                f"found {preview(question)} (answer {preview(answer)})"
            )
        chosen, rejected, prompt = answer, others or _opposite(answer, source), question.strip()
    unique = {r.casefold(): r for r in rejected if r.casefold() != chosen.casefold()}
    if not unique:
        raise AnswerError(
            f"expected a rejected answer other than the chosen one, found none (chosen {preview(chosen)})"
        )
    return prompt, [(chosen, r) for r in unique.values()]


def _opposite(answer: str, source: ABEvalSource) -> list[str]:
    """The other answer of a Yes/No statement when the file gives only the preferred one."""
    opposite = _OPPOSITE.get(str(parse_answer(answer)))
    if opposite is None or len(answer.split()) > 2:
        column = f"column {source.rejected!r}" if source.rejected else "a rejected: column"
        raise AnswerError(
            f"expected the other answer in {column} (only Yes/No imply it), found {preview(answer)}"
        )
    return [opposite]
