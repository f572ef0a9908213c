"""Quality filters: length bounds, empty messages, identical pairs, bare refusals, language, PII,
banned phrases. Each row that fails is dropped with the first failing check as its reason.

All checks are polars expressions over the whole table; only card-number candidates (already
matched by a regex) run the Luhn check in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from curation.config import FilterConfig
from curation.stage import StageResult, drop_rows
from curation.text import check_field, column_text

RESPONSES = ("chosen", "rejected")

PII_PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "national_id": r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b",
    "phone": r"(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b",
}
CARD_CANDIDATE = r"\b\d(?:[ -]?\d){12,18}\b"
REDACTED = {"email": "[EMAIL]", "national_id": "[ID]", "phone": "[PHONE]", "card": "[CARD]"}

# A response that only declines ("I'm sorry, but I can't help with that"), with nothing a truthful
# answer would say. Anchored at the start, needs a declining verb and is bounded in length, so
# "I can't be certain, but the evidence shows ..." is not caught.
REFUSAL = (
    r"(?i)^\W*(?:(?:i'?m|i am) sorry[,.!]?\s*(?:but\s+)?|sorry[,.!]?\s*(?:but\s+)?)?"
    r"(?:i can(?:'|no)?t|i (?:won'?t|will not)|(?:i'?m|i am) (?:not able|unable) to)\s+"
    r"(?:help|answer|assist|provide|do that|comply|discuss|give|share|respond|talk)"
)
REFUSAL_MAX_WORDS = 25

# Language by function-word voting (the classic stopword method): a text is non-English when it
# is mostly in a non-Latin script, or when another language's function words outnumber English
# ones. Terse English ("China has more obesity than Vietnam") has few function words but never
# more French or German ones, so it passes. Offline, no model download, no per-row Python.
FUNCTION_WORDS = {
    "en": "the of and to a in is it you that was for on are with as be at have this from or by not "
    "but what all were we when your can there an which do how their if will about would has more",
    "fr": "le la les des du un une et est que qui dans pour pas sur au avec ce il elle je vous nous "
    "sont mais ou par plus cette aux",
    "es": "el los las del y que en un una es por con para no se su al lo como más pero sus le ya "
    "muy también hay",
    "de": "der die das und ist nicht ein eine zu den mit sich des auf für im dem von ich sie es "
    "auch wie aber oder wird",
    "it": "il di che è la le per un una non con del della sono gli nel alla come anche più ma ci",
    "pt": "o os da do das dos um uma é não com para por mais se na no ao como mas foi são também",
    "nl": "de het een en van is dat niet op te zijn voor met die aan er ook als bij maar wordt",
}
LATIN_MIN_SHARE = 0.8


@dataclass
class QualityFilter:
    config: FilterConfig = field(default_factory=FilterConfig)
    fields: tuple[str, ...] = ("prompt", "chosen", "rejected")  # those present are checked
    name: str = "filter"

    def __call__(self, items: pl.DataFrame) -> StageResult:
        present = [f for f in self.fields if f in items.columns]
        for column in present:
            check_field(items, column)
        if self.config.pii == "redact":
            items = redact(items, present)
        text = {f: column_text(items, f) for f in present}
        checks = self._checks(items, present, text)
        reason: pl.Expr = pl.lit(None, pl.String)
        for name, bad in reversed(checks):
            reason = pl.when(bad.fill_null(False)).then(pl.lit(name)).otherwise(reason)
        marked = items.with_columns(_reason=reason)
        result = drop_rows(marked, pl.col("_reason").is_not_null(), self.name, pl.col("_reason"))
        # The detail (which phrase, which PII kinds, what length) is computed for dropped rows only.
        result.dropped = result.dropped.with_columns(drop_detail=self._detail(result.dropped, present, text))
        result.kept = result.kept.drop("_reason")
        result.dropped = result.dropped.drop("_reason")
        if self.config.pii == "redact":
            result.report = {"pii": "redacted"}
        return result

    def _checks(
        self, items: pl.DataFrame, present: list[str], text: dict[str, pl.Expr]
    ) -> list[tuple[str, pl.Expr]]:
        cfg = self.config
        checks: list[tuple[str, pl.Expr]] = [(f"empty_{f}", _empty(items, f)) for f in present]
        for f in present:
            bounds = cfg.lengths.get(f)
            if bounds is None:
                continue
            chars, words = text[f].str.len_chars(), text[f].str.count_matches(r"\S+")
            short = (chars < bounds.min_chars) | (words < bounds.min_words)
            long = pl.lit(False)
            if bounds.max_chars is not None:
                long = long | (chars > bounds.max_chars)
            if bounds.max_words is not None:
                long = long | (words > bounds.max_words)
            checks += [(f"{f}_too_short", short), (f"{f}_too_long", long)]
        if set(RESPONSES) <= set(present):
            same = _normalized(text["chosen"]) == _normalized(text["rejected"])
            checks.append(("chosen_equals_rejected", same))
        if cfg.refusals and "chosen" in present and "trait" in items.columns:
            refusal = text["chosen"].str.contains(REFUSAL) & (
                text["chosen"].str.count_matches(r"\S+") <= REFUSAL_MAX_WORDS
            )
            checks.append(("bare_refusal", (pl.col("trait") == "truthfulness") & refusal))
        if cfg.language == "en":
            checks += [("non_english", ~_looks_english(text[f])) for f in present]
        if cfg.pii == "drop":
            checks.append(("pii", pl.any_horizontal([_has_pii(text[f]) for f in present])))
        if cfg.banned_phrases:
            pattern = "(?i)" + "|".join(re.escape(p) for p in cfg.banned_phrases)
            checks.append(
                ("banned_phrase", pl.any_horizontal([text[f].str.contains(pattern) for f in present]))
            )
        return checks

    def _detail(self, marked: pl.DataFrame, present: list[str], text: dict[str, pl.Expr]) -> pl.Expr:
        """What tripped the check: the phrase or PII kinds found, or the offending length."""
        kinds = (
            pl.concat_str([_pii_kinds(text[f]) for f in present], separator=",", ignore_nulls=True)
            .str.split(",")
            .list.eval(pl.element().filter(pl.element() != ""))
            .list.unique(maintain_order=True)
            .list.join(",")
        )
        found: pl.Expr = pl.lit("{}")
        if self.config.banned_phrases:
            pattern = "(?i)" + "|".join(re.escape(p) for p in self.config.banned_phrases)
            phrase = pl.coalesce([text[f].str.extract(f"({pattern})") for f in present])
            found = (
                pl.when(pl.col("_reason") == "banned_phrase")
                .then(pl.format('{{"phrase": "{}"}}', phrase.str.replace_all('"', "'")))
                .otherwise(found)
            )
        found = (
            pl.when(pl.col("_reason") == "pii").then(pl.format('{{"kinds": "{}"}}', kinds)).otherwise(found)
        )
        for f in present:
            for side in ("too_short", "too_long"):
                found = (
                    pl.when(pl.col("_reason") == f"{f}_{side}")
                    .then(
                        pl.format(
                            '{{"field": "{}", "chars": {}, "words": {}}}',
                            pl.lit(f),
                            text[f].str.len_chars(),
                            text[f].str.count_matches(r"\S+"),
                        )
                    )
                    .otherwise(found)
                )
        return found


def _empty(items: pl.DataFrame, column: str) -> pl.Expr:
    dtype = items.schema[column]
    if dtype == pl.String:
        return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")
    contents = pl.col(column).list.eval(
        pl.element().struct.field("content").fill_null("").str.strip_chars() == ""
    )
    return pl.col(column).is_null() | (pl.col(column).list.len() == 0) | contents.list.any()


def _normalized(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().str.replace_all(r"\W+", " ").str.strip_chars()


LANGUAGE_SAMPLE_CHARS = 400  # function words are dense: the opening of a text decides its language


def _word_count(text: pl.Expr, words: list[str]) -> pl.Expr:
    """How many of ``words`` occur in ``text`` (whole words, any case): one regex pass in Rust."""
    return text.str.count_matches(r"(?i)\b(?:" + "|".join(re.escape(w) for w in words) + r")\b")


def _looks_english(text: pl.Expr) -> pl.Expr:
    sample = text.str.slice(0, LANGUAGE_SAMPLE_CHARS)
    english = FUNCTION_WORDS["en"].split()
    votes = [
        _word_count(sample, sorted(set(ws.split()) - set(english)))
        for lang, ws in FUNCTION_WORDS.items()
        if lang != "en"
    ]
    own = _word_count(sample, english)
    foreign = pl.max_horizontal(votes)
    letters = sample.str.count_matches(r"[^\W\d_]")
    latin = sample.str.count_matches(r"[A-Za-z]")
    return (latin >= LATIN_MIN_SHARE * letters) & ~((foreign >= 2) & (foreign > own))


def _has_pii(text: pl.Expr) -> pl.Expr:
    regex = pl.any_horizontal([text.str.contains(p) for p in PII_PATTERNS.values()])
    cards = text.str.extract_all(CARD_CANDIDATE).list.eval(
        pl.element().map_elements(luhn_valid, return_dtype=pl.Boolean)
    )
    return regex | cards.list.any().fill_null(False)


def _pii_kinds(text: pl.Expr) -> pl.Expr:
    parts = [pl.when(text.str.contains(p)).then(pl.lit(kind)) for kind, p in PII_PATTERNS.items()]
    cards = text.str.extract_all(CARD_CANDIDATE).list.eval(
        pl.element().map_elements(luhn_valid, return_dtype=pl.Boolean)
    )
    parts.append(pl.when(cards.list.any().fill_null(False)).then(pl.lit("card")))
    return pl.concat_str(parts, separator=",", ignore_nulls=True)


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every payment card number satisfies (ISO/IEC 7812)."""
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_text(text: str) -> str:
    """Replace each PII span with a placeholder; card-like numbers only when Luhn-valid."""
    text = re.sub(CARD_CANDIDATE, lambda m: REDACTED["card"] if luhn_valid(m.group()) else m.group(), text)
    for kind, pattern in PII_PATTERNS.items():
        text = re.sub(pattern, REDACTED[kind], text)
    return text


def redact(items: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Redact PII in place, in plain string columns and in every message's content."""
    updates = []
    for column in columns:
        if items.schema[column] == pl.String:
            updates.append(pl.col(column).map_elements(redact_text, return_dtype=pl.String))
        else:
            updates.append(
                pl.col(column).list.eval(
                    pl.element().struct.with_fields(
                        pl.field("content").map_elements(redact_text, return_dtype=pl.String)
                    )
                )
            )
    return items.with_columns(updates) if updates else items
