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
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from core.errors import OptionError
from trainer.config import DPOConfig
from trainer.data import EncodedPair, batches, encode_pairs, epoch_order
from trainer.evaluate import score_pairs, summarize
from trainer.loop import LOG, OnProgress, TrainerBase, TrainResult, atomic_save
from trainer.losses import dpo_loss, pair_logps
from trainer.models import autocast

__all__ = ["LOG", "DPOTrainer", "TrainResult"]

REFERENCE = "reference_logps.pt"


class DPOTrainer(TrainerBase):
    config: DPOConfig

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
        super().__init__(model, tokenizer, config, out_dir, on_progress=on_progress)
        self.reference = reference

    # ---- public ----------------------------------------------------------------------
    def train(
        self, frame: pl.DataFrame, *, held_out: pl.DataFrame | None = None, resume: bool = False
    ) -> TrainResult:
        cfg = self.config
        self._start_log(resume)
        pairs = self._encode(frame)
        if not pairs:
            raise OptionError("no preference pairs to train on")
        held = self._encode(held_out) if held_out is not None and held_out.height else []
        ref_c, ref_r = self._reference_logps(pairs + held, resume)
        held_ref = (ref_c[len(pairs) :], ref_r[len(pairs) :])
        ref_c, ref_r = ref_c[: len(pairs)], ref_r[: len(pairs)]

        micro_per_epoch = math.ceil(len(pairs) / cfg.batch_size)
        steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
        total = steps_per_epoch * cfg.epochs
        optimizer, scheduler = self._optimizer(total)
        done = self._resume(optimizer, scheduler) if resume else 0

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
                self._finish_step(history, metrics, step, total, started, optimizer, scheduler, epoch=epoch)
        self.save_checkpoint(total, optimizer, scheduler)
        report = self._held_out_report(held, *held_ref) if held else None
        self._save_final(held_out=report)
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
        self._apply_gradients(optimizer, scheduler)
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
        atomic_save({"key": key, "chosen": chosen, "rejected": rejected}, path)
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

    # ---- helpers --------------------------------------------------------------------------
    def _encode(self, frame: pl.DataFrame) -> list[EncodedPair]:
        cfg = self.config
        return encode_pairs(frame, self.tokenizer, max_length=cfg.max_length, prompt_budget=cfg.prompt_budget)


def _fingerprint(pairs: list[EncodedPair]) -> str:
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(json.dumps([p.prompt_ids, p.chosen_ids, p.rejected_ids]).encode())
    return digest.hexdigest()
