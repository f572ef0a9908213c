"""Quality filters: length bounds, empty messages, identical pairs, bare refusals, language, PII,
banned phrases. Each row that fails is dropped with the first failing check as its reason.

The field texts are materialised once; every check is then a polars expression over those plain
string columns, evaluated side by side in one ``select`` (polars runs them on all cores). The costly
checks (language, PII, identical responses, word counts, refusals) first run a cheap pass over all
rows and look closer only at the rows it flags. Language is :func:`curation.language.is_english`
(a function-word pre-pass, then fastText's language ID for the unsure rest); card-number
candidates run the Luhn check in Python.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curation.config import FilterConfig
from curation.language import is_english
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
        # Each field's text once, as a plain column; the checks read these, not the message lists.
        plain = items.select(**{f"_text_{f}": column_text(items, f) for f in present})
        text = {f: pl.col(f"_text_{f}") for f in present}
        work = pl.concat([items, plain], how="horizontal")
        work = work.with_columns(self._row_checks(plain, present))
        checks = self._checks(items, present, text)
        # One column per check in one select: polars evaluates them side by side on all cores.
        flags = work.select(bad.fill_null(False).alias(f"_check{k}") for k, (_, bad) in enumerate(checks))
        reason = pl.coalesce(
            pl.when(pl.col(f"_check{k}")).then(pl.lit(name)) for k, (name, _) in enumerate(checks)
        )
        marked = items.with_columns(_reason=flags.select(reason.cast(pl.String).alias("_reason"))["_reason"])
        result = drop_rows(marked, pl.col("_reason").is_not_null(), self.name, pl.col("_reason"))
        # The detail (which phrase, which PII kinds, what length) is computed for dropped rows only.
        flagged = [c for c in work.columns if c.startswith("_non_english_")]
        dropped_text = work.select(*plain.columns, *flagged).filter(marked["_reason"].is_not_null())
        result.dropped = pl.concat([result.dropped, dropped_text], how="horizontal")
        result.dropped = result.dropped.with_columns(drop_detail=self._detail(result.dropped, present, text))
        result.kept = result.kept.drop("_reason")
        result.dropped = result.dropped.drop("_reason", *dropped_text.columns)
        if self.config.pii == "redact":
            result.report = {"pii": "redacted"}
        return result

    def _row_checks(self, plain: pl.DataFrame, present: list[str]) -> list[pl.Series]:
        """Checks that run a cheap pass over every row and look closer only at the rows it flags.

        They are independent, and polars releases the GIL, so two threads keep both cores busy.
        """
        cfg, jobs = self.config, []
        column = {f: plain[f"_text_{f}"] for f in present}
        if cfg.language == "en":
            jobs += [(f"_non_english_{f}", lambda t=column[f]: ~is_english(t)) for f in present]
        if set(RESPONSES) <= set(present):
            jobs.append(("_same_responses", lambda: same_text(column["chosen"], column["rejected"])))
        if cfg.pii == "drop":
            jobs += [(f"_pii_{f}", lambda t=column[f]: has_pii(t)) for f in present]
        for f in present:
            bounds = cfg.lengths.get(f)
            if bounds is not None and bounds.min_words:
                jobs.append((f"_few_words_{f}", lambda t=column[f], n=bounds.min_words: fewer_words(t, n)))
        if cfg.refusals and "chosen" in present:
            jobs.append(("_refusal", lambda: bare_refusal(column["chosen"])))
        with ThreadPoolExecutor(2) as pool:
            found = list(pool.map(lambda job: job[1](), jobs))
        return [series.alias(name) for (name, _), series in zip(jobs, found, strict=True)]

    def _checks(
        self, items: pl.DataFrame, present: list[str], text: dict[str, pl.Expr]
    ) -> list[tuple[str, pl.Expr]]:
        cfg = self.config
        checks: list[tuple[str, pl.Expr]] = [(f"empty_{f}", _empty(items, f)) for f in present]
        for f in present:
            bounds = cfg.lengths.get(f)
            if bounds is None:
                continue
            chars = text[f].str.len_chars()
            short = chars < bounds.min_chars
            if bounds.min_words:
                short = short | pl.col(f"_few_words_{f}")
            long = pl.lit(False)
            if bounds.max_chars is not None:
                long = long | (chars > bounds.max_chars)
            if bounds.max_words is not None:
                long = long | (text[f].str.count_matches(r"\S+") > bounds.max_words)
            checks += [(f"{f}_too_short", short), (f"{f}_too_long", long)]
        if set(RESPONSES) <= set(present):
            checks.append(("chosen_equals_rejected", pl.col("_same_responses")))
        if cfg.refusals and "chosen" in present and "trait" in items.columns:
            checks.append(("bare_refusal", (pl.col("trait") == "truthfulness") & pl.col("_refusal")))
        if cfg.language == "en":
            checks += [("non_english", pl.col(f"_non_english_{f}")) for f in present]
        if cfg.pii == "drop":
            checks.append(("pii", pl.any_horizontal([pl.col(f"_pii_{f}") for f in present])))
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
        if all(f"_non_english_{f}" in marked.columns for f in present):
            # Which fields read as foreign, so a wrongly dropped English reply can be found and reported.
            fields = pl.concat_str(
                [pl.when(pl.col(f"_non_english_{f}")).then(pl.lit(f'"{f}"')) for f in present],
                separator=", ",
                ignore_nulls=True,
            )
            found = (
                pl.when(pl.col("_reason") == "non_english")
                .then(pl.format('{{"fields": [{}]}}', fields))
                .otherwise(found)
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


WORDS_HEAD = 200  # characters: a text with enough words in its opening has enough words


def fewer_words(text: pl.Series, n: int) -> pl.Series:
    """Fewer than ``n`` whitespace-separated words; whole texts are counted only where the opening
    has fewer (each word of the opening is, whole or cut, a word of the text)."""
    few = (text.str.slice(0, WORDS_HEAD).str.count_matches(r"\S+") < n).to_numpy().copy()
    rows = np.flatnonzero(few)
    if len(rows):
        few[rows] = (text.gather(rows).str.count_matches(r"\S+") < n).to_numpy()
    return pl.Series(few)


def bare_refusal(text: pl.Series) -> pl.Series:
    """Opens with a refusal (an anchored regex: cheap) and is at most ``REFUSAL_MAX_WORDS`` words."""
    found = text.str.contains(REFUSAL).fill_null(False).to_numpy().copy()
    rows = np.flatnonzero(found)
    if len(rows):
        found[rows] = (text.gather(rows).str.count_matches(r"\S+") <= REFUSAL_MAX_WORDS).to_numpy()
    return pl.Series(found)


SAME_HEAD = 48  # characters whose normalized form decides most "chosen equals rejected" checks


def same_text(a: pl.Series, b: pl.Series) -> pl.Series:
    """``_normalized(a) == _normalized(b)`` per row, normalizing whole texts only where openings agree.

    The normalized opening minus its last character is a prefix of the normalized text (the cut
    can only shorten a trailing run or change the case context of the last letter), so rows whose
    openings differ within their common length cannot be equal.
    """
    heads = pl.DataFrame({"a": a, "b": b}).select(
        a=_normalized(pl.col("a").str.slice(0, SAME_HEAD)), b=_normalized(pl.col("b").str.slice(0, SAME_HEAD))
    )
    common = (pl.min_horizontal(pl.col("a").str.len_chars(), pl.col("b").str.len_chars()) - 1).clip(0)
    agree = heads.select(pl.col("a").str.slice(0, common) == pl.col("b").str.slice(0, common))
    rows = np.flatnonzero(agree.to_series().to_numpy())
    same = np.zeros(len(a), dtype=bool)
    if len(rows):
        full = pl.DataFrame({"a": a.gather(rows), "b": b.gather(rows)})
        same[rows] = full.select(_normalized(pl.col("a")) == _normalized(pl.col("b"))).to_series().to_numpy()
    return pl.Series(same)


ANY_PII = "|".join(f"(?:{p})" for p in PII_PATTERNS.values())


def has_pii(text: pl.Series) -> pl.Series:
    """Any PII pattern or card-like number (one regex pass); then, on the few rows that hold one,
    which it was, and the Luhn check for card-like numbers."""
    found = text.str.contains(f"{ANY_PII}|{CARD_CANDIDATE}").fill_null(False).to_numpy().copy()
    rows = np.flatnonzero(found)
    if len(rows):
        found[rows] = text.gather(rows).str.contains(ANY_PII).fill_null(False).to_numpy()
    rows = rows[~found[rows]]  # matched a card-like number only
    if len(rows):
        cards = text.gather(rows).str.extract_all(CARD_CANDIDATE).to_list()
        found[rows] = [any(luhn_valid(c) for c in numbers or []) for numbers in cards]
    return pl.Series(found)


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
