"""The synthesis filters on texts and vectors whose answers are known."""

import numpy as np
import pytest

from labelmill.strategies.synth.filters import (
    diverse_select, distinct_n, embedding_dedup, embedding_spread, minhash_dedup, minhash_signatures, rule_filter, shingles,
)

NEWS = [
    "The central bank raised interest rates by half a point on Tuesday, its third rise this year.",
    "The striker scored twice in the second half as the home side won the cup final.",
    "Researchers released an open-source compiler that halves the build time of large programs.",
]


def test_rule_filter_counts_what_it_removes():
    texts = ["ok", *NEWS, "As an AI language model, I cannot write that review.", "buy cheap pills now, really cheap pills"]
    kept = rule_filter(texts, banned=["pills"])
    assert kept.keep == [1, 2, 3] and kept.removed == {"too_short": 1, "refusal": 1, "banned": 1} and kept.removed_total == 3
    assert rule_filter(NEWS, max_words=15).removed == {"too_long": 2}


def test_minhash_estimates_jaccard_and_drops_near_duplicates_only():
    near = NEWS[0].replace("Tuesday", "Wednesday")
    a, b = shingles(NEWS[0]), shingles(near)
    jaccard = len(a & b) / len(a | b)
    sig = minhash_signatures([NEWS[0], near], num_perm=256)
    assert float((sig[0] == sig[1]).mean()) == pytest.approx(jaccard, abs=0.1)
    texts = [NEWS[0], NEWS[1], near, NEWS[2], NEWS[1]]
    kept = minhash_dedup(texts, threshold=0.5)  # one word changed in 17: Jaccard 0.67
    assert kept.keep == [0, 1, 3] and kept.removed == {"minhash_duplicate": 2}
    assert minhash_dedup(NEWS).keep == [0, 1, 2] and minhash_dedup([]).keep == []


def test_embedding_dedup_and_diverse_selection_under_a_budget():
    X = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7]])
    assert embedding_dedup(X, threshold=0.98).keep == [0, 2, 3]
    # best first: row 1 (score 0.9), row 0 is its near twin and is skipped, then 2, then the budget is spent
    picked = diverse_select(X, [0.5, 0.9, 0.8, 0.1], budget=2, threshold=0.95)
    assert picked.keep == [1, 2] and picked.removed == {"not_selected": 2}


def test_diversity_figures():
    assert distinct_n(["a b c", "a b c"], 2) == 0.5 and distinct_n(["a b c d"], 2) == 1.0 and distinct_n([], 2) == 0.0
    same = np.array([[1.0, 0.0], [2.0, 0.0]])
    assert embedding_spread(same) == pytest.approx(0.0) and embedding_spread(np.eye(3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2-D"):
        embedding_spread(np.ones(3))
