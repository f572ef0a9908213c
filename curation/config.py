"""Settings of the curation stages: pydantic models a recipe's ``curation:`` block fills.

Curation does not know recipe YAML; the recipe spec embeds :class:`CurationConfig` and the
runner builds the stages from it (``curation.pipeline.build_curation``). Every field has a
default, so an empty ``curation:`` block (or none) runs filters, dedupe and routing as below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DedupeConfig(Config):
    """MinHash near-duplicate removal.

    The default text is prompt + chosen + rejected: answer-key sources pair one question with
    several answer pairs (same prompt, different answers), which are distinct items, while two
    templated items that differ only in a swapped name or number are near-identical in all three.
    """

    enabled: bool = True
    field: str = "prompt+chosen+rejected"
    threshold: float = Field(0.8, gt=0, le=1)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, le=32)
    num_perm: int = Field(128, ge=16, le=1024)
    seed: int = 1
    # Earlier versions or other datasets ("ds", "ds@v2") an item must not near-duplicate;
    # "previous" means every earlier version of the recipe's own dataset.
    against: list[str] = Field(default_factory=list)


class Benchmark(Config):
    """A benchmark to keep out of the data: a file (.csv/.jsonl/.parquet) or ``hf:<name>``."""

    path: str
    columns: list[str] = Field(min_length=1)
    name: str | None = None
    split: str = "validation"  # for hf: datasets
    # A missing file is skipped with a note in the stage report instead of failing the recipe
    # (built-in recipes name ../shared/data, which a fresh clone may not have beside it).
    optional: bool = False

    @property
    def label(self) -> str:
        return self.name or self.path.rsplit("/", 1)[-1]


class DecontamConfig(Config):
    """Long n-gram overlap plus shingle containment against evaluation benchmarks."""

    benchmarks: list[Benchmark] = Field(default_factory=list)
    field: str = "prompt"  # "prompt+chosen+rejected" also checks the responses
    ngram: int = Field(13, ge=4)
    short_ngram: int = Field(8, ge=3)  # for benchmark texts shorter than `short_below` words
    short_below: int = Field(20, ge=1)
    min_words: int = Field(3, ge=1)  # benchmark texts shorter than this are not checked
    # share of a benchmark text's informative char 5-grams found in one stretch of the item
    containment: float = Field(0.7, gt=0, le=1)
    examples: int = Field(3, ge=0)


class Bounds(Config):
    min_chars: int = 0
    max_chars: int | None = None
    min_words: int = 0
    max_words: int | None = None


def _default_lengths() -> dict[str, Bounds]:
    return {
        "prompt": Bounds(min_chars=10, max_chars=8000, min_words=3),
        "chosen": Bounds(min_chars=2, max_chars=8000, min_words=1),
        "rejected": Bounds(min_chars=2, max_chars=8000, min_words=1),
    }


class FilterConfig(Config):
    enabled: bool = True
    lengths: dict[str, Bounds] = Field(default_factory=_default_lengths)
    language: str | None = "en"  # None: no language check
    pii: Literal["drop", "redact", "off"] = "drop"
    banned_phrases: list[str] = Field(default_factory=list)
    refusals: bool = True  # drop a truthfulness item whose chosen response is a bare refusal

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value not in (None, "en"):
            raise ValueError(f"language {value!r}: only 'en' (or null to skip the check) is supported")
        return value


class RouteConfig(Config):
    """Ambiguity scoring; items at or above ``route_threshold`` go to human annotation."""

    enabled: bool = True
    route_threshold: float = Field(0.5, ge=0, le=1)
    low_confidence: float = Field(0.6, ge=0, le=1)  # judge confidence below this is a reason
    similar_responses: float = Field(0.8, gt=0, le=1)  # chosen/rejected word-3-gram Jaccard bound


class CurationConfig(Config):
    # Where the stages run (curation.engine); not part of the recipe's hash: it changes no output.
    engine: Literal["local", "ray"] | None = None
    filter: FilterConfig = FilterConfig()
    dedupe: DedupeConfig = DedupeConfig()
    decontam: DecontamConfig = DecontamConfig()
    route: RouteConfig = RouteConfig()
