"""Multiple-choice questions and short answers, as evaluation sets write them.

Two readers share this module: the ``ab_eval`` source (a question with lettered options
and the preferred letter in a column) and verifiable rewards (is a completion's answer
the expected letter, Yes or No). Real files vary in how they write both:

- the options block is headed ``Choices:``, ``Answers:``, ``Options:`` or
  ``Answer choices:`` in any case, or has no header at all;
- options stand on their own lines or inline (``... (A) first (B) second``), two or more,
  lettered consecutively from ``(A)``;
- an answer is ``(A)``, `` (A)``, ``A``, ``A)``, ``A.``, the option's text, or ``Yes``/``No``.
"""

from __future__ import annotations

import re

_NAMES = r"(?:answer[ \t]+choices|choices|answers|options)[ \t]*:"
# A header on its own line start, or inline ("... Options: (A) ...") when an (A) follows it.
_HEADER = re.compile(rf"(?:(?:^|\n)[ \t]*{_NAMES}|\b{_NAMES}(?=\s*\(A\)))", re.IGNORECASE)
_MARKER = re.compile(r"(?:(?<=\s)|^|(?<=:))\(([A-Z])\)")  # "(A)" starting a word
_LINE_MARKER = re.compile(r"(?m)^[ \t]*([A-Z])[).:][ \t]+")  # "A) text" / "A. text" on its own line
_OWN_LINE_MARKER = re.compile(r"(?m)^[ \t]*\(([A-Z])\)")  # "(A)" opening a line
_TRAILER = re.compile(r"\n[ \t]*answer[ \t]*:[ \t]*$", re.IGNORECASE)  # a closing "Answer:" prompt line
_LETTER = re.compile(r"^\(?([A-Z])\)?[.:]?$")
_LEADING_LETTER = re.compile(r"^\(([A-Z])\)(?:\s|$)")
_WORD = re.compile(r"[A-Za-z]+")


class AnswerError(ValueError):
    """A question or answer that is not in any accepted shape; says expected vs found."""


def preview(text: object, width: int = 80) -> str:
    """The first ``width`` characters of ``text`` on one line, quoted, for a reason."""
    flat = " ".join(str(text).split())
    return repr(flat if len(flat) <= width else flat[:width] + "…")


def split_options(question: str) -> tuple[str, dict[str, str]]:
    """``question`` → ``(stem, {letter: option text})``; ``{}`` when it has no options at all.

    Raises :class:`AnswerError` when the question announces options (a header or an
    ``(A)``) but they do not parse as two or more consecutively lettered options.
    """
    headers = list(_HEADER.finditer(question))
    if headers:
        head = headers[-1]
        stem, block = question[: head.start()], question[head.end() :]
        options = _options(block)
        if options is None:
            raise AnswerError(
                f"expected options '(A) …' '(B) …' after {head.group().strip()!r}, found {preview(block)}"
            )
    else:
        start = _options_start(question)
        if start is None:
            return question.strip(), {}
        stem, block = question[:start], question[start:]
        options = _options(block)
        if options is None:
            raise AnswerError(f"expected options '(A) …' '(B) …' lettered in order, found {preview(block)}")
    if len(options) < 2:
        raise AnswerError(f"expected two or more options, found {len(options)} in {preview(block)}")
    return stem.strip(), options


def _options_start(question: str) -> int | None:
    """Where a header-less options block begins: the last ``(A)`` followed by a ``(B)``."""
    markers = list(_MARKER.finditer(question))
    starts = [i for i, m in enumerate(markers) if m.group(1) == "A"]
    for i in reversed(starts):
        if i + 1 < len(markers) and markers[i + 1].group(1) == "B":
            return markers[i].start()
    return None


def _options(block: str) -> dict[str, str] | None:
    """Options lettered in order from ``(A)``, or None when the block is not that.

    Options on their own lines are preferred, so an option that mentions another
    ("Both (A) and (C)") stays one option; inline options are the fallback.
    """
    block = _TRAILER.sub("", block)
    for pattern in (_OWN_LINE_MARKER, _LINE_MARKER, _MARKER):
        options = _lettered(block, pattern)
        if options and len(options) >= 2:
            return options
    return _lettered(block, _MARKER) or _lettered(block, _LINE_MARKER)


def _lettered(block: str, pattern: re.Pattern[str]) -> dict[str, str] | None:
    markers = list(pattern.finditer(block))
    if not markers or block[: markers[0].start()].strip() or markers[0].group(1) != "A":
        return None
    # a marker out of turn ("(A)" inside option C) is part of the option's text
    kept = [markers[0]]
    for marker in markers[1:]:
        if ord(marker.group(1)) == ord(kept[-1].group(1)) + 1:
            kept.append(marker)
    options: dict[str, str] = {}
    for number, marker in enumerate(kept):
        end = kept[number + 1].start() if number + 1 < len(kept) else len(block)
        text = "\n".join(line.rstrip() for line in block[marker.end() : end].strip().splitlines())
        if not text:
            return None
        options[marker.group(1)] = text
    return options


def answer_letter(answer: str) -> str | None:
    """The letter an answer cell names (``(A)``, `` (A)``, ``A``, ``A)``, ``A.``), else None."""
    match = _LETTER.match(answer.strip())
    return match.group(1) if match else None


def resolve_answer(answer: str, options: dict[str, str]) -> str:
    """An answer cell → the text of the option it names (by letter or by its text)."""
    letter = answer_letter(answer)
    if letter is not None:
        if letter not in options:
            raise AnswerError(f"expected one of the letters {', '.join(options)}, found {preview(answer)}")
        return options[letter]
    wanted = " ".join(answer.split()).casefold()
    for text in options.values():
        if " ".join(text.split()).casefold() == wanted:
            return text
    raise AnswerError(
        f"expected a letter ({', '.join(options)}) or one option's text, found {preview(answer)}"
    )


def parse_answer(text: str) -> str | None:
    """A short answer or a completion's opening → ``"A"``…``"Z"``, ``"yes"``, ``"no"`` or None.

    For verifiable rewards: ``" (B)"``, ``"B)"``, ``"(B) I consent"`` → ``"B"``;
    ``"Yes."``, ``" no, I would not"`` → ``"yes"``/``"no"``; anything else → None.
    """
    stripped = text.strip()
    letter = answer_letter(stripped)
    if letter is not None:
        return letter
    leading = _LEADING_LETTER.match(stripped)
    if leading:
        return leading.group(1)
    word = _WORD.match(stripped)
    if word and word.group().casefold() in ("yes", "no"):
        return word.group().casefold()
    return None
