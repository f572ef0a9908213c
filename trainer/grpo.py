"""The compact GRPO trainer: the policy answers each prompt G times and is graded.

Per step: sample G completions per prompt with ``generate`` (KV cache), score them with
the weighted rewards (batched), normalise advantages within each prompt's group, then
minimise the clipped policy-gradient objective plus β·KL to the reference (k3), with
log-probs recomputed in one batched forward per micro-batch. With β = 0 no reference is
kept; with LoRA the reference is the base with adapters disabled. Checkpoints, resume
and the JSON-lines log are the DPO trainer's (trainer.loop); the prompts of step s are a
function of (seed, s), so a resumed run continues the same sequence.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch

from core.errors import OptionError
from trainer.data import epoch_order
from trainer.grpo_config import GRPOConfig
from trainer.grpo_eval import rollout_report
from trainer.loop import OnProgress, TrainerBase, TrainResult
from trainer.losses import grpo_loss
from trainer.rewards import Rewards
from trainer.rollout import Completions, PromptItem, encode_prompts, sample, token_logps


@dataclass
class Rollout:
    batch: Completions
    advantages: torch.Tensor  # (N,)
    ref_logps: torch.Tensor | None  # (N, T)
    old_logps: torch.Tensor | None  # (N, T); None when μ = 1 (π_old is π, detached)
    rewards: torch.Tensor  # (N,) weighted total
    kinds: dict[str, torch.Tensor]  # (N,) per reward
    group_std: torch.Tensor  # (B,)


class GRPOTrainer(TrainerBase):
    config: GRPOConfig

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: GRPOConfig,
        out_dir: str | Path,
        rewards: Rewards,
        *,
        reference: Any | None = None,
        on_progress: OnProgress | None = None,
    ):
        if config.beta and reference is None and not config.lora_r:
            reference = copy.deepcopy(model)  # the policy before any update
        super().__init__(model, tokenizer, config, out_dir, on_progress=on_progress)
        self.rewards = rewards
        self.reference = reference if config.beta else None
        if self.reference is not None:
            self.reference.to(self.device).eval().requires_grad_(False)
        self._orders: dict[int, list[int]] = {}

    # ---- public ----------------------------------------------------------------------
    def train(
        self, frame: pl.DataFrame, *, held_out: pl.DataFrame | None = None, resume: bool = False
    ) -> TrainResult:
        cfg = self.config
        self._start_log(resume)
        prompts = encode_prompts(frame, self.tokenizer, cfg.max_prompt_length)
        if not prompts:
            raise OptionError("no prompts to train on")
        total = cfg.steps or math.ceil(len(prompts) / (cfg.batch_size * cfg.grad_accum))
        optimizer, scheduler = self._optimizer(total * cfg.num_iterations)
        done = self._resume(optimizer, scheduler) if resume else 0
        before = self._report(held_out) if held_out is not None and held_out.height and not done else None
        history: list[dict[str, float]] = []
        self.model.train()
        for step in range(done + 1, total + 1):
            started = time.perf_counter()
            metrics = self._step(self._prompts_for(step, prompts), optimizer, scheduler)
            self._finish_step(history, metrics, step, total, started, optimizer, scheduler)
        self.save_checkpoint(total, optimizer, scheduler)
        after = self._report(held_out) if held_out is not None and held_out.height else None
        report = {"before": before, "after": after} if after else None
        self._save_final(held_out=report)
        return TrainResult(total, history[-1] if history else {}, report, self.out_dir, history)

    # ---- one step ----------------------------------------------------------------------
    def _prompts_for(self, step: int, prompts: list[PromptItem]) -> list[PromptItem]:
        """The prompts of ``step``: consecutive slices of shuffled epochs, a function of (seed, step)."""
        n, per_step = len(prompts), self.config.batch_size * self.config.grad_accum
        chosen = []
        for k in range((step - 1) * per_step, step * per_step):
            epoch = k // n
            if epoch not in self._orders:
                self._orders = {epoch: epoch_order(n, self.config.seed, epoch)}
            chosen.append(prompts[self._orders[epoch][k % n]])
        return chosen

    def _step(self, prompts: list[PromptItem], optimizer, scheduler) -> dict[str, float]:
        cfg = self.config
        size = cfg.batch_size
        rollouts = [self._rollout(prompts[i : i + size]) for i in range(0, len(prompts), size)]
        n_tokens = max(1.0, float(sum(r.batch.completion_mask.sum() for r in rollouts)))
        loss_sum = kl_sum = clipped = 0.0
        for _ in range(cfg.num_iterations):
            loss_sum = kl_sum = clipped = 0.0
            for r in rollouts:
                logps = token_logps(self.model, r.batch, cfg.temperature, self.device)
                mask = r.batch.completion_mask.to(self.device)
                out = grpo_loss(
                    logps,
                    logps.detach() if r.old_logps is None else r.old_logps,
                    r.ref_logps,
                    r.advantages.to(self.device),
                    mask,
                    beta=cfg.beta,
                    epsilon=cfg.epsilon,
                    n_tokens=n_tokens,
                )
                out.loss.backward()
                loss_sum += float(out.loss.detach())
                kl_sum += float((out.kl * mask).sum())
                clipped += float((out.clipped * mask).sum())
            self._apply_gradients(optimizer, scheduler)
        return self._metrics(rollouts, loss_sum, kl_sum / n_tokens, clipped / n_tokens, scheduler)

    def _rollout(self, prompts: list[PromptItem]) -> Rollout:
        cfg, g = self.config, self.config.num_generations
        batch = sample(
            self.model,
            self.tokenizer,
            [p.ids for p in prompts],
            num=g,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            device=self.device,
        )
        items = [p.item for p in prompts for _ in range(g)]
        rewards, kinds = self.rewards(items, batch.texts)
        groups = rewards.view(-1, g)
        std = groups.std(1)
        advantages = ((groups - groups.mean(1, keepdim=True)) / (std[:, None] + 1e-4)).flatten()
        with torch.no_grad():
            ref = self._reference_logps(batch) if cfg.beta else None
            old = (
                token_logps(self.model, batch, cfg.temperature, self.device)
                if cfg.num_iterations > 1
                else None
            )
        return Rollout(batch, advantages, ref, old, rewards, kinds, std)

    def _reference_logps(self, batch: Completions) -> torch.Tensor:
        if self.reference is not None:
            return token_logps(self.reference, batch, self.config.temperature, self.device)
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return token_logps(self.model, batch, self.config.temperature, self.device)

    def _metrics(self, rollouts: list[Rollout], loss: float, kl: float, clip: float, scheduler) -> dict:
        rewards = torch.cat([r.rewards for r in rollouts])
        lengths = torch.cat([r.batch.completion_mask.sum(1) for r in rollouts]).float()
        metrics = {
            "loss": loss,
            "reward": float(rewards.mean()),
            "reward_std": float(torch.cat([r.group_std for r in rollouts]).mean()),
            "completion_length": float(lengths.mean()),
            "clip_ratio": clip,
            "lr": scheduler.get_last_lr()[0],
        }
        if self.config.beta:
            metrics["kl"] = kl
        for name in rollouts[0].kinds:
            values = torch.cat([r.kinds[name] for r in rollouts])
            if not values.isnan().all():
                metrics[f"reward_{name}"] = float(values.nanmean())
        return metrics

    def _report(self, frame: pl.DataFrame) -> dict[str, Any]:
        cfg = self.config
        return rollout_report(
            self.model,
            self.tokenizer,
            frame,
            self.rewards,
            max_new_tokens=cfg.max_new_tokens,
            max_prompt_length=cfg.max_prompt_length,
            batch_size=cfg.batch_size * cfg.num_generations,
            device=self.device,
        )
