"""DPO losses on summed log-probabilities of chosen and rejected responses.

All three take the policy's and the reference's log-probs of each response (one value
per pair) and return the per-pair loss plus the implicit rewards β·(log π − log π_ref).

- ``sigmoid``: DPO (Rafailov et al. 2023), −log σ(β·h), with optional label smoothing (cDPO);
- ``ipo``: IPO (Azar et al. 2023), (h − 1/(2β))², on summed log-probs;
- ``robust``: robust DPO (Chowdhury et al. 2024), an unbiased loss under label-flip rate ε.

where h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossOutput:
    loss: torch.Tensor  # per pair
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float,
    kind: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> LossOutput:
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    h = chosen_ratio - rejected_ratio
    eps = label_smoothing
    if kind == "sigmoid":
        loss = -F.logsigmoid(beta * h) * (1 - eps) - F.logsigmoid(-beta * h) * eps
    elif kind == "ipo":
        loss = (h - 1 / (2 * beta)) ** 2
    elif kind == "robust":
        loss = (-F.logsigmoid(beta * h) * (1 - eps) + F.logsigmoid(-beta * h) * eps) / (1 - 2 * eps)
    else:
        raise ValueError(f"unknown DPO loss {kind!r}: use sigmoid, ipo or robust")
    return LossOutput(loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token) over the positions whose label is not −100 (the response).

    ``logits[:, t]`` predicts ``labels[:, t + 1]``. Gathering the chosen token's logit and
    subtracting the log-sum-exp avoids materialising the full log-softmax over the vocabulary.
    """
    logits = logits[:, :-1]
    labels = labels[:, 1:]
    mask = labels != -100
    safe = labels.masked_fill(~mask, 0)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # log-sum-exp in half precision loses the margin DPO needs
    picked = torch.gather(logits, 2, safe.unsqueeze(-1)).squeeze(-1)
    logps = picked - torch.logsumexp(logits, dim=-1)
    return (logps * mask).sum(-1)


def pair_logps(model: torch.nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs of a :class:`~trainer.data.PairBatch`: (chosen, rejected)."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    logps = sequence_logps(logits, batch.labels)
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


@dataclass
class GRPOOutput:
    loss: torch.Tensor  # this micro-batch's share of the step's loss (divided by the step's tokens)
    kl: torch.Tensor  # per-token k3 KL to the reference, (N, T); zeros when β = 0
    clipped: torch.Tensor  # per token: did the clip bind, (N, T)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float,
    epsilon: float,
    n_tokens: int | float,
) -> GRPOOutput:
    """The clipped policy-gradient objective with a KL penalty, on per-token log-probs (N, T).

    ratio = π/π_old per token; loss = −min(ratio·A, clip(ratio, 1 ± ε)·A) + β·KL, with the
    k3 estimator KL = exp(ref − logπ) − (ref − logπ) − 1 (as TRL), summed over completion
    tokens and divided by ``n_tokens``, the tokens of the whole optimizer step (no length bias).
    """
    advantages = advantages.unsqueeze(1)
    ratio = torch.exp(logps - old_logps)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    per_token = -torch.min(ratio * advantages, clipped_ratio * advantages)
    kl = torch.zeros_like(logps)
    if beta and ref_logps is not None:
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
    loss = (per_token * mask).sum() / n_tokens
    # Tokens where the clip binds: the clipped term is the smaller one, so its gradient is zero.
    clipped = (clipped_ratio * advantages < ratio * advantages).detach()
    return GRPOOutput(loss, kl.detach(), clipped)
