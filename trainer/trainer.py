"""The compact DPO trainer.

Reference log-probs are computed once, in a pass before training, and kept as two
vectors; only the policy is in memory while training. With LoRA the reference pass
runs the base with adapters disabled. Gradient accumulation, bf16 autocast on CUDA,
atomic checkpoints (trainable weights, optimizer, scheduler, RNG) every ``save_every``
optimizer steps, resume from the latest one, and a JSON-lines log.
"""

from __future__ import annotations

import contextlib
import hashlib
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

import polars as pl
import torch

from core.errors import OptionError
from trainer.config import DPOConfig
from trainer.data import EncodedPair, batches, encode_pairs, ensure_chat_template, epoch_order
from trainer.evaluate import score_pairs, summarize
from trainer.losses import dpo_loss, pair_logps
from trainer.models import autocast, pick_device

# (phase, done, total, metrics): phase is "reference" (pairs scored) or "train" (optimizer steps).
OnProgress = Callable[[str, int, int, dict[str, float]], None]

CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"
REFERENCE = "reference_logps.pt"
# Settings that decide which pairs each step sees: a resumed run must keep them.
_RESUME_MUST_MATCH = ("batch_size", "grad_accum", "epochs", "seed", "dose", "dose_fraction", "mix")


@dataclass
class TrainResult:
    steps: int
    final: dict[str, float]
    held_out: dict[str, Any] | None
    out_dir: Path
    history: list[dict[str, float]] = field(default_factory=list)


class DPOTrainer:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: DPOConfig,
        out_dir: str | Path,
        *,
        reference: Any | None = None,
        on_progress: OnProgress | None = None,
    ):
        self.config = config
        self.tokenizer = tokenizer
        self.out_dir = Path(out_dir)
        self.device = pick_device(config.device)
        self.reference = reference
        self.on_progress = on_progress or (lambda *args: None)
        ensure_chat_template(tokenizer)
        torch.manual_seed(config.seed)
        if config.gradient_checkpointing:
            _enable_checkpointing(model)
        self.model = self._with_lora(model) if config.lora_r else model
        self.model.to(self.device)

    # ---- public ----------------------------------------------------------------------
    def train(
        self, frame: pl.DataFrame, *, held_out: pl.DataFrame | None = None, resume: bool = False
    ) -> TrainResult:
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pairs = self._encode(frame)
        if not pairs:
            raise OptionError("no preference pairs to train on")
        held = self._encode(held_out) if held_out is not None and held_out.height else []
        ref_c, ref_r = self._reference_logps(pairs + held, resume)
        held_ref = (ref_c[len(pairs) :], ref_r[len(pairs) :])
        ref_c, ref_r = ref_c[: len(pairs)], ref_r[: len(pairs)]

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        micro_per_epoch = math.ceil(len(pairs) / cfg.batch_size)
        steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
        total = steps_per_epoch * cfg.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear(total, cfg.warmup_ratio))
        done = self._resume(optimizer, scheduler) if resume else 0
        if not resume:
            (self.out_dir / LOG).unlink(missing_ok=True)

        history: list[dict[str, float]] = []
        self.model.train()
        for epoch in range(cfg.epochs):
            order = epoch_order(len(pairs), cfg.seed, epoch)
            micro = batches(pairs, cfg.batch_size, self.tokenizer.pad_token_id, order)
            for local in range(steps_per_epoch):
                group = [b for _, b in zip(range(cfg.grad_accum), micro, strict=False)]
                step = epoch * steps_per_epoch + local + 1
                if step <= done:
                    continue  # replayed by resume: the order is a function of (seed, epoch)
                started = time.perf_counter()
                metrics = self._step(group, ref_c, ref_r, optimizer, scheduler)
                metrics.update(step=step, epoch=epoch, seconds=round(time.perf_counter() - started, 4))
                history.append(metrics)
                self._log(metrics)
                self.on_progress("train", step, total, metrics)
                if cfg.save_every and step % cfg.save_every == 0 and step < total:
                    self.save_checkpoint(step, optimizer, scheduler)
        self.save_checkpoint(total, optimizer, scheduler)
        report = self._held_out_report(held, *held_ref) if held else None
        self._save_final(report)
        final = history[-1] if history else {}
        return TrainResult(total, final, report, self.out_dir, history)

    # ---- one optimizer step -------------------------------------------------------------
    def _step(self, group, ref_c, ref_r, optimizer, scheduler) -> dict[str, float]:
        cfg = self.config
        n = sum(len(b.index) for b in group)
        loss_sum = margin_sum = correct = 0.0
        for batch in group:
            batch = batch.to(self.device)
            with autocast(self.device):
                pol_c, pol_r = pair_logps(self.model, batch)
            out = dpo_loss(
                pol_c.float(),
                pol_r.float(),
                ref_c[batch.index].to(self.device),
                ref_r[batch.index].to(self.device),
                beta=cfg.beta,
                kind=cfg.loss,
                label_smoothing=cfg.label_smoothing,
            )
            # Sum then divide by the step's pair count, so uneven last micro-batches weigh right.
            (out.loss.sum() / n).backward()
            loss_sum += float(out.loss.detach().sum())
            margin_sum += float(out.margins.sum())
            correct += float((out.margins > 0).sum())
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return {
            "loss": loss_sum / n,
            "margin": margin_sum / n,
            "accuracy": correct / n,
            "lr": scheduler.get_last_lr()[0],
        }

    # ---- reference pass -----------------------------------------------------------------
    def _reference_logps(self, pairs: list[EncodedPair], resume: bool) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.out_dir / REFERENCE
        key = _fingerprint(pairs)
        if resume and path.exists():
            saved = torch.load(path)
            if saved["key"] == key:
                return saved["chosen"], saved["rejected"]
        model = self.reference if self.reference is not None else self.model
        model.to(self.device)
        disabled = (
            model.disable_adapter()
            if self.reference is None and hasattr(model, "disable_adapter")
            else contextlib.nullcontext()
        )
        total = len(pairs)
        with disabled:
            chosen, rejected = score_pairs(
                model,
                pairs,
                batch_size=self.config.batch_size,
                pad_id=self.tokenizer.pad_token_id,
                device=self.device,
                tick=lambda k: self.on_progress("reference", k, total, {}),
            )
        if self.reference is not None:
            # The reference has done its work: free it so only the policy stays in memory.
            self.reference = None
            model.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        _atomic_save({"key": key, "chosen": chosen, "rejected": rejected}, path)
        return chosen, rejected

    def _held_out_report(self, pairs, ref_c, ref_r) -> dict[str, Any]:
        c, r = score_pairs(
            self.model,
            pairs,
            batch_size=self.config.batch_size,
            pad_id=self.tokenizer.pad_token_id,
            device=self.device,
        )
        beta = self.config.beta
        return summarize(pairs, beta * (c - ref_c), beta * (r - ref_r))

    # ---- checkpoints ----------------------------------------------------------------------
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
        found = _checkpoints(self.out_dir / CHECKPOINTS)
        if not found:
            return 0
        latest = found[-1]
        state = json.loads((latest / "state.json").read_text())
        now = self.config.model_dump(mode="json")
        for key in _RESUME_MUST_MATCH:
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

    def _save_final(self, held_out: dict[str, Any] | None) -> None:
        model = self.model
        if self.config.lora_r:
            model.save_pretrained(self.out_dir / "adapter")
            model = model.merge_and_unload()
            self.model = model
        model.save_pretrained(self.out_dir)
        self.tokenizer.save_pretrained(self.out_dir)
        summary = {"config": self.config.model_dump(mode="json"), "held_out": held_out}
        (self.out_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n")

    # ---- helpers --------------------------------------------------------------------------
    def _encode(self, frame: pl.DataFrame) -> list[EncodedPair]:
        cfg = self.config
        return encode_pairs(frame, self.tokenizer, max_length=cfg.max_length, prompt_budget=cfg.prompt_budget)

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

    def _log(self, metrics: dict[str, float]) -> None:
        with (self.out_dir / LOG).open("a") as fh:
            fh.write(json.dumps(metrics) + "\n")


def _enable_checkpointing(model: Any) -> None:
    """Activation checkpointing under its transformers 5 name, or the older one."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _warmup_linear(total: int, warmup_ratio: float) -> Callable[[int], float]:
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


def _fingerprint(pairs: list[EncodedPair]) -> str:
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(json.dumps([p.prompt_ids, p.chosen_ids, p.rejected_ids]).encode())
    return digest.hexdigest()


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
