"""Reading a short answer out of a completion: an option letter, Yes/No, or option text.

``parse_answer`` accepts "(A)", "A", "A)", "A." and "The answer is (A)" for letters,
"Yes"/"No" (any case, trailing punctuation) for endorsements, and, when the prompt's
options are given, a completion that names exactly one option's text. Anything else is
``None``: no answer can be read. ``options_of`` reads "(A) … (B) …" options off a prompt.
"""

from __future__ import annotations

import re

_LETTER = re.compile(r"^\s*\(?([A-H])\)?(?=$|[\s.,:;)!])")
_STATED = re.compile(r"\banswer\s*(?:is|:)\s*\(?([A-H])\)?(?=$|[\s.,:;)!])", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(yes|no)\b", re.IGNORECASE)
_OPTION = re.compile(r"\(([A-H])\)\s*(.+?)(?=\s*\([A-H]\)|\n|$)")


def options_of(prompt: str) -> dict[str, str]:
    """``{"A": text, "B": text, …}`` from "(A) text (B) text" in a prompt (empty when none)."""
    return {letter: text.strip() for letter, text in _OPTION.findall(prompt)}


def parse_answer(text: str, options: dict[str, str] | None = None) -> str | None:
    """The answer in ``text``: a capital letter, "Yes", "No", or None when none can be read."""
    if match := _LETTER.match(text) or _STATED.search(text):
        letter = match.group(1)
        return letter if not options or letter in options else None
    if match := _YES_NO.match(text):
        return match.group(1).capitalize()
    if options:
        low = text.lower()
        named = [letter for letter, option in options.items() if option and option.lower() in low]
        if len(named) == 1:
            return named[0]
    return None
