"""Training settings: one pydantic model the CLI, the trainer and checkpoints share."""

from __future__ import annotations

import re
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import OptionError

Loss = Literal["sigmoid", "ipo", "robust"]
C = TypeVar("C", bound="TrainConfig")
_MIX = re.compile(r"^(?P<ref>[^:]+):(?P<share>[0-9]*\.?[0-9]+)$")


class MixSpec(BaseModel):
    """``OTHER@vM:SHARE``: trait pairs make up SHARE of a blend with another preference set."""

    model_config = ConfigDict(frozen=True)

    ref: str
    share: float = Field(gt=0, lt=1)

    @classmethod
    def parse(cls, text: str) -> MixSpec:
        match = _MIX.match(text.strip())
        if not match:
            raise OptionError(f"--mix {text!r}: expected DATASET@vN:SHARE, e.g. chat@v3:0.05")
        share = float(match["share"])
        if not 0 < share < 1:
            raise OptionError(f"--mix {text!r}: SHARE must be between 0 and 1 (exclusive), got {share}")
        return cls(ref=match["ref"], share=share)


class TrainConfig(BaseModel):
    """What every trainer shares: dose, mixing, optimizer, adapters, checkpoints, device."""

    model_config = ConfigDict(extra="forbid")

    lora_r: int | None = Field(None, ge=1, description="LoRA rank; full fine-tune when absent.")
    lora_alpha: int | None = None  # default: 2 × r
    lr: float = Field(5e-6, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    batch_size: int = Field(8, ge=1, description="Pairs (DPO) or prompts (GRPO) per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Batches per optimizer step.")
    dose: int | None = Field(None, ge=1, description="N pairs, stratified by domain × trait.")
    dose_fraction: float | None = Field(None, gt=0, le=1, description="Share of the pairs.")
    mix: MixSpec | None = Field(None, description="OTHER@vM:SHARE — blend the dose into another set.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    seed: int = Field(0, description="Seed for sampling the dose and the data order.")
    save_every: int | None = Field(None, ge=1, description="Checkpoint every N optimizer steps.")
    device: str | None = Field(None, description="cpu, cuda, cuda:1 (default: cuda when present).")

    # Settings that decide which data each step sees: a resumed run must keep them.
    resume_must_match: ClassVar[tuple[str, ...]] = (
        "batch_size", "grad_accum", "seed", "dose", "dose_fraction", "mix",
    )  # fmt: skip

    @field_validator("mix", mode="before")
    @classmethod
    def _parse_mix(cls, value: object) -> object:
        return MixSpec.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_dose(self) -> TrainConfig:
        if self.dose is not None and self.dose_fraction is not None:
            raise ValueError("give either --dose N or --dose-fraction F, not both")
        return self


class DPOConfig(TrainConfig):
    """Everything that decides a DPO run; saved beside every checkpoint."""

    loss: Loss = Field("sigmoid", description="sigmoid (DPO) | ipo | robust")
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Robust/cDPO noise rate.")
    epochs: int = Field(1, ge=1, description="Passes over the dose.")
    max_length: int = Field(512, ge=8, description="Tokens per prompt + response.")
    max_prompt_length: int | None = Field(None, ge=1)  # default: half of max_length

    resume_must_match: ClassVar[tuple[str, ...]] = (*TrainConfig.resume_must_match, "epochs")

    @model_validator(mode="after")
    def _robust_default(self) -> DPOConfig:
        if self.loss == "robust" and self.label_smoothing == 0:
            # The robust loss with no assumed noise is plain DPO; default to a small, common rate.
            self.label_smoothing = 0.1
        return self

    @property
    def prompt_budget(self) -> int:
        return self.max_prompt_length or self.max_length // 2


def config_from_options(kind: type[C] | None = None, **options: object) -> C:
    """A config (DPO unless ``kind`` says) from command-line options; a bad value becomes one line."""
    from pydantic import ValidationError

    try:
        return (kind or DPOConfig)(**options)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = {"lora_r": "lora"}.get(str(first["loc"][0]), str(first["loc"][0])) if first["loc"] else ""
        option = f"--{where.replace('_', '-')}: " if where else ""
        raise OptionError(f"{option}{first['msg']}") from None
