"""The trainer's DPO losses equal the formulas computed independently, on a fixed batch."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the trainer needs the `train` extra (torch)")

from tests.tiny_lm import make_pairs, tiny_model, tiny_tokenizer  # noqa: E402
from trainer.data import collate, encode_pairs  # noqa: E402
from trainer.losses import dpo_loss, pair_logps  # noqa: E402


def _logp_by_hand(model, prompt_ids: list[int], response_ids: list[int]) -> float:
    """log π(response | prompt), one sequence at a time, token by token, no padding."""
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    total = 0.0
    for k, token in enumerate(response_ids):
        position = len(prompt_ids) + k - 1  # the logits that predict this token
        total += float(torch.log_softmax(logits[position], dim=-1)[token])
    return total


@pytest.fixture(scope="module")
def fixed_batch():
    tokenizer = tiny_tokenizer()
    pairs = encode_pairs(make_pairs(6, seed=3), tokenizer, max_length=64, prompt_budget=32)
    # float64, so the comparison at 1e-5 tests the formulas, not float32 rounding.
    policy = tiny_model(len(tokenizer), seed=1).double()
    reference = tiny_model(len(tokenizer), seed=2).double()
    batch = collate(pairs, range(len(pairs)), tokenizer.pad_token_id)
    return pairs, policy, reference, batch


_cache: dict[int, list[float]] = {}


def _by_hand(pairs, policy, reference):
    """h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)) per pair, computed by hand once."""
    if id(pairs) in _cache:
        return _cache[id(pairs)]
    h = _cache.setdefault(id(pairs), [])
    for p in pairs:
        pc, pr = (
            _logp_by_hand(policy, p.prompt_ids, p.chosen_ids),
            _logp_by_hand(policy, p.prompt_ids, p.rejected_ids),
        )
        rc = _logp_by_hand(reference, p.prompt_ids, p.chosen_ids)
        rr = _logp_by_hand(reference, p.prompt_ids, p.rejected_ids)
        h.append((pc - rc) - (pr - rr))
    return h


def _trainer_loss(policy, reference, batch, **kwargs):
    with torch.no_grad():
        pc, pr = pair_logps(policy, batch)
        rc, rr = pair_logps(reference, batch)
    return dpo_loss(pc, pr, rc, rr, **kwargs)


def test_padded_batch_logps_match_per_sequence_logps(fixed_batch):
    pairs, policy, _, batch = fixed_batch
    with torch.no_grad():
        chosen, rejected = pair_logps(policy, batch)
    for i, p in enumerate(pairs):
        assert chosen[i].item() == pytest.approx(_logp_by_hand(policy, p.prompt_ids, p.chosen_ids), abs=1e-5)
        assert rejected[i].item() == pytest.approx(
            _logp_by_hand(policy, p.prompt_ids, p.rejected_ids), abs=1e-5
        )


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_sigmoid_loss_is_negative_log_sigmoid_of_beta_h(fixed_batch, beta):
    pairs, policy, reference, batch = fixed_batch
    out = _trainer_loss(policy, reference, batch, beta=beta, kind="sigmoid")
    expected = [-math.log(1 / (1 + math.exp(-beta * h))) for h in _by_hand(pairs, policy, reference)]
    assert out.loss.tolist() == pytest.approx(expected, abs=1e-5)
    assert out.loss.mean().item() == pytest.approx(sum(expected) / len(expected), abs=1e-5)


def test_ipo_loss_is_squared_distance_to_one_over_two_beta(fixed_batch):
    pairs, policy, reference, batch = fixed_batch
    beta = 0.1
    out = _trainer_loss(policy, reference, batch, beta=beta, kind="ipo")
    expected = [(h - 1 / (2 * beta)) ** 2 for h in _by_hand(pairs, policy, reference)]
    assert out.loss.tolist() == pytest.approx(expected, abs=1e-5, rel=1e-6)


def test_robust_loss_corrects_for_label_noise(fixed_batch):
    pairs, policy, reference, batch = fixed_batch
    beta, eps = 0.1, 0.2
    out = _trainer_loss(policy, reference, batch, beta=beta, kind="robust", label_smoothing=eps)

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    expected = [
        ((1 - eps) * -log_sigmoid(beta * h) + eps * log_sigmoid(-beta * h)) / (1 - 2 * eps)
        for h in _by_hand(pairs, policy, reference)
    ]
    assert out.loss.tolist() == pytest.approx(expected, abs=1e-5)


def test_rewards_are_beta_times_log_ratios(fixed_batch):
    pairs, policy, reference, batch = fixed_batch
    out = _trainer_loss(policy, reference, batch, beta=0.3, kind="sigmoid")
    assert out.margins.tolist() == pytest.approx(
        [0.3 * h for h in _by_hand(pairs, policy, reference)], abs=1e-5
    )


def test_unknown_loss_is_named():
    zero = torch.zeros(1)
    with pytest.raises(ValueError, match="unknown DPO loss 'hinge'"):
        dpo_loss(zero, zero, zero, zero, beta=0.1, kind="hinge")
