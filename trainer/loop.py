"""What the DPO and GRPO trainers share: model setup, optimizer and schedule, checkpoints, log.

Checkpoints are atomic (temp folder, then rename) and hold the trainable weights, the
optimizer, the scheduler and the RNG state; the last two are kept. Resuming loads the
latest and refuses settings that would change which data each step sees.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.errors import OptionError
from trainer.config import TrainConfig
from trainer.data import ensure_chat_template
from trainer.models import pick_device

# (phase, done, total, metrics): e.g. "reference" (pairs scored) or "train" (optimizer steps).
OnProgress = Callable[[str, int, int, dict[str, float]], None]

CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"


@dataclass
class TrainResult:
    steps: int
    final: dict[str, float]
    held_out: dict[str, Any] | None
    out_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)


class TrainerBase:
    """Device, LoRA and checkpointing set-up, and the run's files under ``out_dir``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        on_progress: OnProgress | None = None,
    ):
        self.config = config
        self.tokenizer = tokenizer
        self.out_dir = Path(out_dir)
        self.device = pick_device(config.device)
        self.on_progress = on_progress or (lambda *args: None)
        ensure_chat_template(tokenizer)
        torch.manual_seed(config.seed)
        if config.gradient_checkpointing:
            _enable_checkpointing(model)
        self.model = self._with_lora(model) if config.lora_r else model
        self.model.to(self.device)

    def _optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear(total_steps, cfg.warmup_ratio))
        return optimizer, scheduler

    def _apply_gradients(self, optimizer, scheduler) -> None:
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    # ---- checkpoints ----------------------------------------------------------------------
    def _finish_step(
        self,
        history: list,
        metrics: dict,
        step: int,
        total: int,
        started: float,
        optimizer,
        scheduler,
        **extra,
    ) -> None:
        """Log one optimizer step, report it, and checkpoint it when ``save_every`` says so."""
        metrics.update(step=step, **extra, seconds=round(time.perf_counter() - started, 4))
        history.append(metrics)
        self._log(metrics)
        self.on_progress("train", step, total, metrics)
        if self.config.save_every and step % self.config.save_every == 0 and step < total:
            self.save_checkpoint(step, optimizer, scheduler)

    def save_checkpoint(self, step: int, optimizer, scheduler) -> Path:
        """Write ``checkpoints/step-N`` atomically (temp folder, then rename); keep the last two."""
        root = self.out_dir / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        trainable = {k: v.detach().cpu() for k, v in self.model.named_parameters() if v.requires_grad}
        torch.save(trainable, tmp / "trainable.pt")
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optim.pt"
        )
        torch.save(torch.get_rng_state(), tmp / "rng.pt")
        state = {"step": step, "config": self.config.model_dump(mode="json")}
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        final = root / f"step-{step}"
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        for old in _checkpoints(root)[:-2]:
            shutil.rmtree(old)
        return final

    def _resume(self, optimizer, scheduler) -> int:
        """Load the latest checkpoint; the step it was written at (0 when there is none)."""
        found = _checkpoints(self.out_dir / CHECKPOINTS)
        if not found:
            return 0
        latest = found[-1]
        state = json.loads((latest / "state.json").read_text())
        now = self.config.model_dump(mode="json")
        for key in self.config.resume_must_match:
            if state["config"].get(key) != now[key]:
                raise OptionError(
                    f"{latest}: cannot resume with --{key.replace('_', '-')} {now[key]} "
                    f"(the run used {state['config'].get(key)}): the data order would not line up"
                )
        trainable = torch.load(latest / "trainable.pt")
        missing = set(trainable) - {k for k, _ in self.model.named_parameters()}
        if missing:
            raise OptionError(f"{latest}: checkpoint does not match the model (e.g. {sorted(missing)[0]})")
        self.model.load_state_dict(trainable, strict=False)
        optim = torch.load(latest / "optim.pt")
        optimizer.load_state_dict(optim["optimizer"])
        scheduler.load_state_dict(optim["scheduler"])
        torch.set_rng_state(torch.load(latest / "rng.pt"))
        return state["step"]

    def _start_log(self, resume: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (self.out_dir / LOG).unlink(missing_ok=True)

    def _log(self, metrics: dict[str, float]) -> None:
        with (self.out_dir / LOG).open("a") as fh:
            fh.write(json.dumps(metrics) + "\n")

    def _save_final(self, **summary: Any) -> None:
        """The (merged) model, its tokenizer and ``training.json`` with the config and ``summary``."""
        model = self.model
        if self.config.lora_r:
            model.save_pretrained(self.out_dir / "adapter")
            model = model.merge_and_unload()
            self.model = model
        model.save_pretrained(self.out_dir)
        self.tokenizer.save_pretrained(self.out_dir)
        blob = {"config": self.config.model_dump(mode="json"), **summary}
        (self.out_dir / "training.json").write_text(json.dumps(blob, indent=2) + "\n")

    def _with_lora(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        r = self.config.lora_r
        assert r is not None
        lora = LoraConfig(
            r=r,
            lora_alpha=self.config.lora_alpha or 2 * r,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, lora)


def _enable_checkpointing(model: Any) -> None:
    """Activation checkpointing under its transformers 5 name, or the older one."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def warmup_linear(total: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = math.ceil(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))


def atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
