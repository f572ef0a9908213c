"""The recipe: a YAML file, validated into pydantic models.

Unknown keys are errors, and every error names the file, the line where the YAML
has one, and the field path, e.g. ``health.yaml:7: source.path: file not found``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.traits import TRAITS, VIOLATIONS, known_traits
from curation.config import Benchmark, CurationConfig

BUILTIN_DIR = Path(__file__).parent / "builtin"
BANKS_DIR = Path(__file__).parent / "banks"


class RecipeError(ValueError):
    """A recipe that cannot be loaded; ``str()`` is one line naming file, line and field."""


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _benchmark_path(benchmark: Benchmark, info: ValidationInfo) -> str:
    """A benchmark's resolved path; an optional one that is absent resolves without failing."""
    try:
        return _resolve_path(benchmark.path, info)
    except ValueError:
        known_type = Path(benchmark.path).suffix.lower() in (".csv", ".jsonl", ".parquet")
        if not (benchmark.optional and known_type):
            raise
        return str((Path((info.context or {}).get("base", ".")) / benchmark.path).resolve())


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """Resolve a source path against the recipe's folder; ``hf:`` names pass through."""
    if value.startswith("hf:"):
        return value
    base = Path((info.context or {}).get("base", "."))
    path = (base / value).resolve() if not Path(value).is_absolute() else Path(value)
    if not path.exists():
        raise ValueError(f"file not found: {value} (looked in {path})")
    if path.suffix.lower() not in (".csv", ".jsonl", ".json", ".parquet"):
        raise ValueError(f"unsupported file type {path.suffix!r}: use .csv, .jsonl, .parquet or hf:<name>")
    return str(path)


class FileSource(Spec):
    path: str
    where: dict[str, list[str] | str] = Field(default_factory=dict)
    license: str | None = None  # SPDX id of the source's license, reported on the card
    system: str | None = None  # optional system message prepended to every prompt
    hf_split: str = "train"  # for hf:<name> paths

    _check_path = field_validator("path")(_resolve_path)


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
    """ "question ... Choices: (A) ... (B) ..." with the preferred letter in a column."""

    kind: Literal["ab_eval"]
    question: str
    chosen: str  # column whose letter (or text) is the preferred answer
    rejected: str | None = None  # column with the other answer; default: the other choice
    keep_choices: bool = False  # keep the "Choices:" block in the prompt


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
        """Hash of the resolved recipe: same recipe, same hash (paths included)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)


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
        return Recipe.model_validate(data, context={"base": path.parent})
    except ValidationError as exc:
        raise RecipeError(_first_error(exc, path, root)) from exc


def _first_error(exc: ValidationError, path: Path, root: yaml.Node | None) -> str:
    error = exc.errors()[0]
    # A union's tag follows its field ("generate", "llm", ...); a top-level "llm" is the llm block.
    loc = [p for i, p in enumerate(error["loc"]) if i == 0 or not _is_union_tag(p)]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "union_tag_invalid":
        message = (
            f"unknown kind {error['input'].get('kind')!r}; expected one of {error['ctx']['expected_tags']}"
        )
    elif error["type"] == "union_tag_not_found":
        message = f"missing 'kind'; expected one of {error['ctx']['expected_tags'] if 'ctx' in error else ''}"
    field = _dotted(loc) or "recipe"
    line = _line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    more = len(exc.errors()) - 1
    return f"{where}: {field}: {message}" + (f" (and {more} more error{'s' * (more > 1)})" if more else "")


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in ("answer_key", "ab_eval", "template", "llm")


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the deepest YAML node on ``loc`` that exists."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
