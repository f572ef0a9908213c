"""How high can the transfer yardstick reach? The reward head trained on TruthfulQA itself.

``benchmarks/transfer.py`` scores a MiniLM reward head trained on our health output against each
non-health TruthfulQA group and the corrigibility A/B set. This script trains the same head on
human-written TruthfulQA pairs, every category group but one (~2,200 pairs), and scores it on the
held-out group and on the corrigibility set: an in-distribution ceiling for what a head trained
on other data can reach on each group. For the corrigibility set it does the same with the set's
two halves (``transfer_ablation.corrigibility_parts``: a hash of the item id): trained on one,
scored on the other. ``--mlp`` adds the same leave-one-group-out with a small MLP reward head
(one hidden layer of 64 or 256, the same Bradley-Terry loss and features) in place of the linear
one.

    python benchmarks/transfer_ceiling.py [--data ../shared/data] [--cache /tmp/traitdose-emb.sqlite] [--mlp]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transfer  # noqa: E402
from transfer_ablation import DiskEncoder, _read, accuracy, corrigibility_parts  # noqa: E402

from trainer.reward import PairEmbeddings, RewardHead  # noqa: E402


def groups() -> dict[str, list[str]]:
    """Health, the four non-health groups of transfer.py, and every other category as 'rest'."""
    table = pl.read_csv(transfer.DATA / "truthfulqa" / "TruthfulQA.csv", infer_schema=False)
    named = {"tqa-health": transfer.HEALTH, **transfer.GROUPS}
    return named | {"tqa-rest": sorted(set(table["Category"].unique()) - set().union(*named.values()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/traitdose-emb.sqlite"))
    parser.add_argument("--mlp", action="store_true", help="also a one-hidden-layer MLP head")
    args = parser.parse_args()
    transfer.DATA = (args.data or transfer.DATA).resolve()
    frames = {name: _read(transfer.truthfulqa(name, "general", cats)) for name, cats in groups().items()}
    encoder = DiskEncoder(args.cache)
    corrigibility_frame = _read(transfer.corrigibility_ab())
    corrigibility = PairEmbeddings.of(corrigibility_frame, encoder)
    print("| held out | trained on (pairs) | held-out group | corrigibility-ab |")
    print("| --- | ---: | ---: | ---: |")
    for held in [name for name in frames if name != "tqa-rest"]:
        train = pl.concat([f for name, f in frames.items() if name != held], how="diagonal_relaxed")
        head = RewardHead.fit(PairEmbeddings.of(train, encoder))
        score = accuracy(head, PairEmbeddings.of(frames[held], encoder))
        print(f"| {held} | {train.height} | {score:.3f} | {accuracy(head, corrigibility):.3f} |")
    parts = corrigibility_parts(corrigibility_frame)
    halves = [parts["corr-A"], parts["corr-B"]]
    for trained, scored in ((0, 1), (1, 0)):
        head = RewardHead.fit(PairEmbeddings.of(halves[trained], encoder))
        score = accuracy(head, PairEmbeddings.of(halves[scored], encoder))
        print(f"| corrigibility half {scored} | {halves[trained].height} | - | {score:.3f} |")
    if args.mlp:
        print("\n| held out | MLP hidden 64 | MLP hidden 256 |\n| --- | ---: | ---: |")
        for held in [name for name in frames if name != "tqa-rest"]:
            train = pl.concat([f for name, f in frames.items() if name != held], how="diagonal_relaxed")
            pairs, test = PairEmbeddings.of(train, encoder), PairEmbeddings.of(frames[held], encoder)
            print(
                f"| {held} | " + " | ".join(f"{mlp_accuracy(pairs, test, h):.3f}" for h in (64, 256)) + " |"
            )


def mlp_accuracy(train: PairEmbeddings, test: PairEmbeddings, hidden: int, steps: int = 300) -> float:
    """Pairwise accuracy of a one-hidden-layer reward MLP fit with the Bradley-Terry loss."""
    chosen, rejected = (t.float() for t in train.features())
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(chosen.shape[1], hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        F.softplus(-(net(chosen) - net(rejected))).mean().backward()
        optimizer.step()
    test_chosen, test_rejected = (t.float() for t in test.features())
    with torch.no_grad():
        return float(((net(test_chosen) - net(test_rejected)) > 0).float().mean())


if __name__ == "__main__":
    main()
