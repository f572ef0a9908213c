"""Rewards for GRPO: verifiable answers, the trait reward model, an LLM judge, or your own.

Every reward is one batched call with the signature of :data:`RewardFn`::

    def my_reward(items: list[dict], completions: list[str]) -> list[float]: ...

``items[i]`` is the item row the i-th completion answers (keys ``id``, ``domain``,
``trait``, ``prompt``, ``chosen``, ``rejected`` — messages as ``[{"role", "content"}]`` —
and ``rubric``, a list of ``{criterion, kind, weight}`` or None); ``completions[i]`` is
the policy's text. Return one float per completion; NaN (or None) means "does not apply
to this item" and counts as 0 in the weighted total. Pass it as ``--reward mymodule:fn``
(``--reward mymodule:fn:0.5`` to weight it).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from core.errors import OptionError
from core.schema import normalize_text
from trainer.answers import options_of, parse_answer

RewardFn = Callable[[Sequence[dict[str, Any]], Sequence[str]], Sequence[float | None]]
BUILTIN = ("verifiable", "model", "rubric")
UNREADABLE = -0.5  # a verifiable item whose answer cannot be read off the completion
SHORT_WORDS = 5  # a chosen response this short is a short exact answer


def text_of(messages: Sequence[dict[str, str]] | None) -> str:
    return "\n".join(m["content"] for m in messages or [])


def prompt_text(item: dict[str, Any]) -> str:
    """The last user turn: where the question (and any options) sit."""
    users = [m["content"] for m in item["prompt"] if m["role"] == "user"]
    return users[-1] if users else text_of(item["prompt"])


# ---- verifiable -------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    form: str  # "ab" | "yes_no" | "short"
    answer: str  # the letter, "Yes"/"No", or the normalized short answer
    options: dict[str, str]


def target_of(item: dict[str, Any]) -> Target | None:
    """The item's verifiable answer, read off its chosen response; None for open-ended items."""
    chosen = text_of(item["chosen"]).strip()
    if not chosen or len(chosen.split()) > SHORT_WORDS:
        return None
    options = options_of(prompt_text(item))
    answer = parse_answer(chosen, options or None)
    if answer in ("Yes", "No"):
        return Target("yes_no", answer, {})
    if answer is not None and (options or len(chosen.split()) == 1):
        return Target("ab", answer, options)
    return Target("short", _short(chosen), {})


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^\s*(the\s+)?answer\s*(is|:)\s*", "", line, flags=re.IGNORECASE)
    return normalize_text(line.strip(" .!\"'"))


def verifiable(items: Sequence[dict[str, Any]], completions: Sequence[str]) -> list[float]:
    """1 when the completion's answer matches the chosen one, 0 when not, −0.5 when unreadable;
    NaN for items without a verifiable answer."""
    return [_grade(target_of(item), text) for item, text in zip(items, completions, strict=True)]


def _grade(target: Target | None, completion: str) -> float:
    if target is None:
        return math.nan
    if target.form == "short":
        got = _short(completion)
        return UNREADABLE if not got else float(got == target.answer)
    got = parse_answer(completion, target.options or None)
    if target.form == "yes_no" and got not in ("Yes", "No"):
        got = None
    return UNREADABLE if got is None else float(got == target.answer)


# ---- the trait reward model --------------------------------------------------------------
class ModelReward:
    """σ(r(x, completion) − r(x, rejected)) with the Bradley–Terry head: 0.5 = as good as rejected."""

    def __init__(self, head: str, encoder: Any | None = None):
        from trainer.reward import RewardHead

        self.head = RewardHead.load(head)
        self._encoder = encoder

    def __call__(self, items: Sequence[dict[str, Any]], completions: Sequence[str]) -> list[float]:
        from trainer.reward import Encoder

        if self._encoder is None:
            self._encoder = Encoder()
        embed = self._encoder.embed
        prompts = embed([text_of(i["prompt"]) for i in items])
        mine = self.head.rewards(prompts, embed(list(completions)))
        theirs = self.head.rewards(prompts, embed([text_of(i["rejected"]) for i in items]))
        return torch.sigmoid(mine - theirs).tolist()


# ---- wiring ----------------------------------------------------------------------------
class RewardSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # verifiable | model | rubric | module:function
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> RewardSpec:
        head, sep, tail = text.strip().rpartition(":")
        try:
            weight = float(tail) if sep else None
        except ValueError:
            weight = None
        name = head if weight is not None else text.strip()
        if name not in BUILTIN and ":" not in name:
            raise OptionError(
                f"--reward {text!r}: expected verifiable, model, rubric or module:function, "
                "optionally followed by :WEIGHT"
            )
        return cls(name=name, weight=1.0 if weight is None else weight)


def load_function(spec: str) -> RewardFn:
    """``module:function`` → the function; a bad name is one line naming it."""
    module, _, name = spec.rpartition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise OptionError(f"--reward {spec}: cannot load {name!r} from module {module!r}: {exc}") from None
    if not callable(fn):
        raise OptionError(f"--reward {spec}: {module}.{name} is not callable")
    return fn


class Rewards:
    """Several weighted rewards: per-kind scores and their weighted total, NaN counting as 0."""

    def __init__(self, parts: Sequence[tuple[str, float, RewardFn]]):
        if not parts:
            raise OptionError("give at least one --reward (verifiable, model, rubric or module:function)")
        self.parts = list(parts)

    def __call__(
        self, items: Sequence[dict[str, Any]], completions: Sequence[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = torch.zeros(len(completions))
        kinds: dict[str, torch.Tensor] = {}
        for name, weight, fn in self.parts:
            scores = list(fn(items, completions))
            if len(scores) != len(completions):
                raise OptionError(
                    f"reward {name} returned {len(scores)} scores for {len(completions)} completions"
                )
            values = torch.tensor([math.nan if s is None else float(s) for s in scores])
            kinds[name] = values
            total += weight * torch.nan_to_num(values, nan=0.0)
        return total, kinds


def build_rewards(config: Any) -> Rewards:
    """The weighted rewards a :class:`~trainer.grpo_config.GRPOConfig` names."""
    parts: list[tuple[str, float, RewardFn]] = []
    for spec in config.rewards:
        if spec.name == "verifiable":
            fn: RewardFn = verifiable
        elif spec.name == "model":
            if not config.reward_head:
                raise OptionError("--reward model needs --reward-head DIR (from `traitdose reward train`)")
            fn = ModelReward(config.reward_head)
        elif spec.name == "rubric":
            from trainer.judge import RubricJudge

            if not config.judge_model:
                raise OptionError(
                    "--reward rubric needs --judge-model (and --judge-base-url for local servers)"
                )
            fn = RubricJudge(
                config.judge_model,
                base_url=config.judge_base_url,
                api_key_env=config.judge_api_key_env,
                cache=config.judge_cache,
                concurrency=config.judge_concurrency,
            )
        else:
            fn = load_function(spec.name)
        parts.append((spec.name, spec.weight, fn))
    return Rewards(parts)
