"""GRPO settings: one pydantic model the CLI, the GRPO trainer and its checkpoints share."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from trainer.config import TrainConfig
from trainer.rewards import RewardSpec


class GRPOConfig(TrainConfig):
    """Everything that decides a GRPO run; saved beside every checkpoint.

    ``batch_size`` counts prompts per micro-batch; each is answered ``num_generations``
    times, so a step generates batch_size × grad_accum × num_generations completions.
    """

    lr: float = Field(1e-6, gt=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    batch_size: int = Field(4, ge=1)
    num_generations: int = Field(8, ge=2)
    max_new_tokens: int = Field(128, ge=1)
    max_prompt_length: int = Field(512, ge=8)
    temperature: float = Field(1.0, gt=0)
    beta: float = Field(0.04, ge=0)  # KL penalty to the reference; 0: no reference is kept
    epsilon: float = Field(0.2, gt=0, lt=1)
    num_iterations: int = Field(1, ge=1)  # optimizer steps per generated batch (μ)
    steps: int | None = Field(None, ge=1)  # generation rounds; default: one pass over the prompts
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="verifiable")])
    reward_head: str | None = None  # folder of the trait reward head, for the `model` reward
    judge_model: str | None = None  # the `rubric` reward's LLM
    judge_base_url: str | None = None
    judge_api_key_env: str | None = None
    judge_concurrency: int = Field(8, ge=1)
    judge_cache: str | None = None  # SQLite file; the CLI uses the store's LLM cache

    resume_must_match: ClassVar[tuple[str, ...]] = (
        *TrainConfig.resume_must_match, "num_generations", "steps", "num_iterations",
    )  # fmt: skip

    @field_validator("rewards", mode="before")
    @classmethod
    def _parse_rewards(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [RewardSpec.parse(v) if isinstance(v, str) else v for v in value]
        return value
