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
