"""Signatures are datasketch's, computed in bulk; the LSH index finds verified pairs."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from datasketch import MinHash

from curation.minhash import EMPTY, LSHIndex, MinHashScheme, clusters, jaccard_estimate, optimal_param

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank",
    "a b",
    "",
    None,
    "x",
    "The quick brown fox jumped over the lazy dog near the river bank!",
    "héllo wörld, ünïcode text with accents",
]


@pytest.mark.parametrize(("shingle", "n"), [("word", 3), ("word", 1), ("word", 5), ("char", 5)])
def test_signatures_equal_datasketch_minhash_fed_the_same_shingle_hashes(shingle: str, n: int) -> None:
    scheme = MinHashScheme(shingle=shingle, ngram=n)  # type: ignore[arg-type]
    series = pl.Series(TEXTS, dtype=pl.String)
    sigs = scheme.signatures(series, batch=3)  # batches smaller than the input
    hashes, offsets = scheme.shingles(series)
    for i in range(len(TEXTS)):
        reference = MinHash(num_perm=128, seed=1, hashfunc=lambda x: x)
        values = hashes[offsets[i] : offsets[i + 1]]
        if len(values):
            reference.update_batch([int(v) for v in values])
        assert reference.scheme == "affine32"
        np.testing.assert_array_equal(reference.hashvalues, sigs[i])


@pytest.mark.parametrize(("shingle", "n"), [("word", 3), ("char", 5)])
def test_shingles_are_the_distinct_n_grams_of_each_text(shingle: str, n: int) -> None:
    scheme = MinHashScheme(shingle=shingle, ngram=n)  # type: ignore[arg-type]
    hashes, offsets = scheme.shingles(pl.Series(TEXTS, dtype=pl.String))
    for i, text in enumerate(TEXTS):
        norm = (text or "").lower()
        tokens = re.findall(r"\w+", norm) if shingle == "word" else list(" ".join(norm.split()).encode())
        grams = {tuple(tokens[k : k + n]) for k in range(max(len(tokens) - n + 1, 1))} if tokens else set()
        assert len(set(hashes[offsets[i] : offsets[i + 1]].tolist())) == len(grams)


def test_empty_text_has_the_empty_signature_and_matches_nothing() -> None:
    sigs = MinHashScheme().signatures(pl.Series(["", "", "some words here to hash"]))
    assert (sigs[0] == EMPTY).all()
    assert jaccard_estimate(sigs[:1], sigs[1:2])[0] == 0.0
    index = LSHIndex(MinHashScheme(), 0.8)
    index.add(sigs)
    pairs, _ = index.pairs()
    assert len(pairs) == 0


def test_pairs_are_verified_and_clusters_do_not_depend_on_row_order() -> None:
    base = "patients with mild asthma should keep a reliever inhaler with them at all times and see a nurse"
    texts = [
        base,
        base + " please",
        "completely unrelated words about tax forms and filing deadlines in spring",
        base,
    ]
    scheme = MinHashScheme()
    index = LSHIndex(scheme, 0.8)
    index.add(scheme.signatures(pl.Series(texts)))
    pairs, sims = index.pairs()
    # Rows 0 and 3 are identical, so every bucket holding 1 or 3 also holds 0, the leader.
    assert {tuple(p) for p in pairs.tolist()} == {(0, 1), (0, 3)}
    assert (sims >= 0.8).all()
    labels = clusters(4, pairs)
    assert labels[0] == labels[1] == labels[3] != labels[2]


def test_saved_index_keeps_its_scheme_and_refuses_another(tmp_path) -> None:
    scheme = MinHashScheme()
    index = LSHIndex(scheme, 0.8)
    index.add(scheme.signatures(pl.Series(["one two three four", "five six seven eight"])))
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = LSHIndex.load(path, scheme)
    np.testing.assert_array_equal(loaded.signatures, index.signatures)
    with pytest.raises(ValueError, match="ngram=3.*this run uses 5"):
        LSHIndex.load(path, MinHashScheme(ngram=5))


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.65, 0.8, 0.9, 0.95, 1.0])
@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.05, 0.95)])
def test_band_parameters_are_the_ones_datasketch_chooses(
    threshold: float, num_perm: int, weights: tuple[float, float]
) -> None:
    from datasketch.lsh import _optimal_param

    assert optimal_param(threshold, num_perm, *weights) == _optimal_param(threshold, num_perm, *weights)


def test_clusters_join_chains_and_leave_singletons_alone() -> None:
    pairs = np.array([[5, 4], [4, 3], [0, 1], [7, 5]])
    labels = clusters(9, pairs)
    assert len({labels[i] for i in (3, 4, 5, 7)}) == 1
    assert labels[0] == labels[1]
    assert len(set(labels.tolist())) == 5  # {3,4,5,7}, {0,1}, {2}, {6}, {8}
