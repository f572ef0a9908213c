"""The recipe: a YAML file, validated into pydantic models.

Unknown keys are errors, and every error names the file, the line where the YAML
has one, and the field path, e.g. ``health.yaml:7: source.path: file not found``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.errors import RecipeError
from core.traits import TRAITS, VIOLATIONS, known_traits
from core.urls import redact_url
from curation.config import Benchmark, CurationConfig
from recipes.paths import file_digest, replace_paths, resolve_path
from recipes.spec_errors import first_error

BUILTIN_DIR = Path(__file__).parent / "builtin"
BANKS_DIR = Path(__file__).parent / "banks"


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _benchmark_path(benchmark: Benchmark, info: ValidationInfo) -> str:
    """A benchmark's resolved path; an optional one that is absent resolves without failing."""
    try:
        return resolve_path(benchmark.path, info)
    except ValueError:
        known_type = Path(benchmark.path).suffix.lower() in (".csv", ".jsonl", ".parquet")
        if not (benchmark.optional and known_type):
            raise
        return str((Path((info.context or {}).get("base", ".")) / benchmark.path).resolve())


class FileSource(Spec):
    path: str
    where: dict[str, list[str] | str] = Field(default_factory=dict)
    license: str | None = None  # SPDX id of the source's license, reported on the card
    system: str | None = None  # optional system message prepended to every prompt
    hf_split: str = "train"  # for hf:<name> paths
    encoding: str = "utf-8"  # of a CSV or JSONL file; rows that do not decode are quarantined

    _check_path = field_validator("path")(resolve_path)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None


class AnswerKeySource(FileSource):
    """Question + correct answers + incorrect answers → gold preference pairs."""

    kind: Literal["answer_key"]
    question: str
    correct: str
    incorrect: str
    best: str | None = None  # optional column with one best correct answer
    separator: str = "; "
    pairs_per_question: int = Field(3, ge=1)


class ABEvalSource(FileSource):
    """A question with lettered options (or a Yes/No statement) and the preferred answer in a column.

    ``chosen`` names the column holding the preferred answer: for a set whose
    ``answer_matching_behavior`` is the undesirable one, say
    ``chosen: answer_not_matching_behavior`` and ``rejected: answer_matching_behavior``.
    """

    kind: Literal["ab_eval"]
    question: str
    chosen: str  # column whose letter (or text) is the preferred answer
    rejected: str | None = (
        None  # column with the other answer(s), a string or a list; default: the other options
    )
    keep_choices: bool = False  # keep the options block in the prompt
    pairs_per_question: int = Field(3, ge=1)  # when several rejected answers are given


Source = Annotated[AnswerKeySource | ABEvalSource, Field(discriminator="kind")]


class TemplateGenerate(Spec):
    """Offline generation from the template banks (the default)."""

    kind: Literal["template"] = "template"
    bank: str | None = None  # a built-in bank name or a bank .yaml file; default: the recipe's domain
    per_trait: int = Field(1200, ge=1)  # items generated per trait before dedupe

    @field_validator("bank")
    @classmethod
    def _bank_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if value.endswith((".yaml", ".yml")):
            path = Path((info.context or {}).get("base", ".")) / value
            if not path.is_file():
                raise ValueError(f"file not found: {value} (looked in {path.resolve()})")
            return str(path.resolve())
        if not (BANKS_DIR / f"{value}.yaml").exists():
            raise ValueError(f"unknown template bank {value!r}; known: {', '.join(available_banks())}")
        return value

    def bank_path(self, domain: str) -> Path:
        name = self.bank or domain
        return Path(name) if name.endswith((".yaml", ".yml")) else BANKS_DIR / f"{name}.yaml"


class CostTable(Spec):
    """Prices in USD per million tokens, for the usage figure in the manifest."""

    prompt_per_million: float = Field(ge=0)
    completion_per_million: float = Field(ge=0)


class LLMConfig(Spec):
    """Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...)."""

    base_url: str | None = None  # default: OpenAI's
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"  # the key is read from this variable; null: no key
    max_concurrency: int = Field(16, ge=1, le=1024)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(1024, ge=16)
    timeout: float = Field(60, gt=0)  # seconds per request
    max_retries: int = Field(6, ge=0)  # per call, on 429, 5xx, timeouts and connection errors
    backoff: float = Field(0.5, ge=0)  # first retry delay in seconds; doubles, with jitter
    max_backoff: float = Field(30, gt=0)
    parse_retries: int = Field(2, ge=0)  # re-asks when the output is not valid JSON for the schema
    structured_output: Literal["auto", "json_schema", "prompt"] = "auto"
    cache: str | None = None  # SQLite file; default: <store>/.cache/llm.sqlite
    cost: CostTable | None = None


class LLMGenerate(Spec):
    """Scenario generation per domain x trait from seed topics, with an LLM."""

    kind: Literal["llm"]
    topics: list[str] = Field(min_length=1)
    scenarios_per_topic: int = Field(20, ge=1)
    per_call: int = Field(10, ge=1, le=50)  # scenarios asked for in one call
    violations: list[str] = Field(default_factory=list)  # default: every violation kind of the trait
    temperature: float | None = Field(None, ge=0, le=2)

    @field_validator("violations")
    @classmethod
    def _known_violations(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in VIOLATIONS]
        if unknown:
            raise ValueError(f"unknown violation kind {unknown[0]!r}; known: {', '.join(VIOLATIONS)}")
        return value


class RespondSpec(Spec):
    """Contrastive responses: chosen from a trait-exhibiting, rejected from a trait-violating prompt."""

    kind: Literal["llm"] = "llm"
    words: int = Field(120, ge=10, le=2000)  # target length of both responses
    max_tokens: int = Field(400, ge=16)
    temperature: float | None = Field(None, ge=0, le=2)


class JudgeSpec(Spec):
    """Pairwise judge: ``votes`` calls with the A/B order alternated."""

    kind: Literal["llm", "none"] = "llm"
    votes: int = Field(3, ge=1, le=15)
    model: str | None = None  # default: llm.model
    temperature: float | None = Field(None, ge=0, le=2)


class RubricSpec(Spec):
    """Per-scenario gradable criteria (positive and negative), for RL with graders."""

    kind: Literal["llm", "none"] = "llm"
    criteria: int = Field(6, ge=2, le=15)


Generate = Annotated[TemplateGenerate | LLMGenerate, Field(discriminator="kind")]


def _check_trait(value: str) -> str:
    if value not in TRAITS:
        raise ValueError(f"unknown trait {value!r}; known: {', '.join(known_traits())}")
    return value


TraitName = Annotated[str, AfterValidator(_check_trait)]


class AnnotationSpec(Spec):
    """Human annotation of the items the pipeline routes."""

    k: int = Field(2, ge=1)  # submitted labels, from distinct annotators, each routed item needs


class Recipe(Spec):
    name: str
    description: str = ""
    dataset: str | None = None  # store folder; default: name
    domain: str
    trait: TraitName | None = None
    traits: list[TraitName] = Field(default_factory=list)
    source: Source | None = None
    generate: Generate | None = None
    llm: LLMConfig | None = None
    respond: RespondSpec | None = None
    judge: JudgeSpec | None = None
    rubric: RubricSpec | None = None
    test_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    license: str | None = None  # license of the recipe's own text, when not the template banks'
    annotation: AnnotationSpec | None = None
    curation: CurationConfig = CurationConfig()  # filters, dedupe, decontamination, routing
    _base: Path | None = PrivateAttr(None)  # the recipe file's folder, that relative paths start from

    @field_validator("curation")
    @classmethod
    def _benchmark_paths(cls, value: CurationConfig, info: ValidationInfo) -> CurationConfig:
        """Benchmark files resolve against the recipe's folder, like source paths."""
        decontam = value.decontam
        benchmarks = [b.model_copy(update={"path": _benchmark_path(b, info)}) for b in decontam.benchmarks]
        return value.model_copy(update={"decontam": decontam.model_copy(update={"benchmarks": benchmarks})})

    @model_validator(mode="after")
    def _one_way_in(self) -> Recipe:
        if self.trait and self.traits:
            raise ValueError("give either 'trait' or 'traits', not both")
        if not (self.trait or self.traits):
            raise ValueError("missing 'trait' (or 'traits'): which trait does this recipe teach?")
        if self.source and self.generate:
            raise ValueError("give either 'source' (read pairs from a file) or 'generate', not both")
        self._check_llm_steps()
        generator = self.generator
        if isinstance(generator, TemplateGenerate) and not generator.bank_path(self.domain).exists():
            raise ValueError(
                f"domain {self.domain!r} has no built-in template bank ({', '.join(available_banks())}): "
                "give generate.bank (a bank name or .yaml file) or a source"
            )
        return self

    def _check_llm_steps(self) -> None:
        uses_llm = [name for name in ("generate", "respond", "judge", "rubric") if self._llm_kind(name)]
        if uses_llm and self.llm is None:
            raise ValueError(
                f"{uses_llm[0]} uses kind: llm, so the recipe needs an 'llm:' block (model, base_url)"
            )
        if isinstance(self.generate, LLMGenerate):
            kinds = self.generate.violations or list(VIOLATIONS)
            for trait in self.trait_list:
                if not any(VIOLATIONS[k] == trait for k in kinds):
                    raise ValueError(
                        f"generate.violations: no violation kind for trait {trait!r} "
                        f"(kinds: {', '.join(f'{k} ({t})' for k, t in VIOLATIONS.items())})"
                    )
        if self.respond is not None and not isinstance(self.generate, LLMGenerate):
            raise ValueError(
                "respond: only applies to generate: {kind: llm} (other sources bring their own pairs)"
            )

    def _llm_kind(self, step: str) -> bool:
        return getattr(getattr(self, step), "kind", None) == "llm"

    @property
    def respond_step(self) -> RespondSpec | None:
        """Contrastive responses: always for LLM-generated scenarios, never otherwise."""
        return (self.respond or RespondSpec()) if isinstance(self.generate, LLMGenerate) else None

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.name

    @property
    def trait_list(self) -> list[str]:
        return [self.trait] if self.trait else list(self.traits)

    @property
    def generator(self) -> TemplateGenerate | LLMGenerate | None:
        """The generation step; the template bank of the domain when nothing else is given."""
        if self.source is not None:
            return None
        return self.generate or TemplateGenerate()

    def content_hash(self) -> str:
        """Hash of the resolved recipe by content: a file counts by its bytes, not by where it
        lies, so the same recipe and data hash the same on every machine. Where curation runs
        changes no output (``curation.engine``), so it does not change the hash."""
        # An optional benchmark that is absent (no ../shared beside the clone) hashes by its name.
        data = self._with_paths(
            lambda path: f"sha256:{file_digest(path)}" if path.exists() else f"absent:{path.name}"
        )
        data.get("curation", {}).pop("engine", None)
        blob = json.dumps(data, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        """The resolved recipe, file paths relative to the recipe's folder (no local absolute path)."""
        data = self._with_paths(self.relative_path)
        if data.get("llm", {}).get("base_url"):
            data["llm"]["base_url"] = redact_url(data["llm"]["base_url"])
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)

    def relative_path(self, path: str | Path) -> str:
        """``path`` relative to the recipe's folder (``hf:`` names and relative paths unchanged)."""
        if str(path).startswith("hf:") or not Path(path).is_absolute():
            return str(path)
        return os.path.relpath(path, self._base or Path.cwd())

    def _with_paths(self, replace: Callable[[Path], str]) -> dict[str, Any]:
        return replace_paths(self.model_dump(mode="json", exclude_none=True), replace)


# ---- loading ---------------------------------------------------------------------------
def available_banks() -> list[str]:
    return sorted(p.stem for p in BANKS_DIR.glob("*.yaml") if p.stem != "scenarios")


def builtin_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def find_recipe(name_or_file: str) -> Path:
    """A built-in recipe name or a path to a YAML file."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"{name_or_file}: file not found")
        return path
    builtins = builtin_recipes()
    if name_or_file in builtins:
        return builtins[name_or_file]
    raise RecipeError(
        f"unknown recipe {name_or_file!r}; built-ins: {', '.join(builtins)} (or give a .yaml file)"
    )


def load_recipe(name_or_file: str | Path) -> Recipe:
    path = find_recipe(str(name_or_file))
    text = path.read_text()
    return parse_recipe(text, path)


def parse_recipe(text: str, path: Path) -> Recipe:
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping (name:, domain:, trait:, ...)")
    try:
        recipe = Recipe.model_validate(data, context={"base": path.parent})
    except ValidationError as exc:
        raise RecipeError(first_error(exc, path, root)) from exc
    recipe._base = path.parent.resolve()
    return recipe
