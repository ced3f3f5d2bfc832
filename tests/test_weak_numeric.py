"""The weak-supervision kernels on label matrices whose right answers are known."""

import numpy as np
import pytest

from labelmill.numeric.weak import check_label_matrix, dawid_skene, lf_summary, majority_vote


def simulate(n: int, accuracies: list[float], coverage: float, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-labelers that vote on `coverage` of the rows, right with their accuracy, else a random wrong label."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    L = np.full((n, len(accuracies)), -1)
    for j, acc in enumerate(accuracies):
        votes = rng.random(n) < coverage
        right = rng.random(n) < acc
        wrong = (y + rng.integers(1, k, n)) % k
        L[votes, j] = np.where(right, y, wrong)[votes]
    return L, y


def test_summary_figures_on_a_hand_matrix():
    L = np.array([[0, 0, -1], [1, 0, -1], [-1, -1, 1], [0, -1, -1]])
    gold = np.array([0, 1, 1, -1])
    a, b, c = lf_summary(L, 2, gold)
    assert a == {"polarity": [0, 1], "coverage": 0.75, "overlaps": 0.5, "conflicts": 0.25, "gold_rows": 2, "empirical_accuracy": 1.0}
    assert b == {"polarity": [0], "coverage": 0.5, "overlaps": 0.5, "conflicts": 0.25, "gold_rows": 2, "empirical_accuracy": 0.5}
    assert c == {"polarity": [1], "coverage": 0.25, "overlaps": 0.0, "conflicts": 0.0, "gold_rows": 1, "empirical_accuracy": 1.0}


def test_majority_vote_shares_and_uncovered_rows():
    probs = majority_vote(np.array([[0, 0, 1], [-1, -1, -1], [2, -1, 2]]), 3)
    assert probs[0] == pytest.approx([2 / 3, 1 / 3, 0]) and probs[1] == pytest.approx([1 / 3] * 3) and probs[2] == pytest.approx([0, 0, 1])


def test_dawid_skene_learns_which_sub_labelers_to_trust():
    """Two good sub-labelers and three that are barely better than chance: the vote follows the noisy
    majority, Dawid-Skene recovers the good ones' accuracies and beats it."""
    accuracies = [0.9, 0.85, 0.4, 0.4, 0.4]
    L, y = simulate(3000, accuracies, coverage=0.9, k=3, seed=1)
    mv = majority_vote(L, 3).argmax(axis=1)
    probs, confusions, prior = dawid_skene(L, 3)
    ds = probs.argmax(axis=1)
    assert (ds == y).mean() > (mv == y).mean() + 0.05
    learned = [float(np.trace(c) / 3) for c in confusions]
    assert learned == pytest.approx(accuracies, abs=0.04)
    assert prior == pytest.approx([1 / 3] * 3, abs=0.04)
    # its probabilities are close to calibrated: among rows it gives 0.9 or more, about that share is right
    sure = probs.max(axis=1) >= 0.9
    assert (ds[sure] == y[sure]).mean() == pytest.approx(probs.max(axis=1)[sure].mean(), abs=0.03)


def test_a_bad_matrix_says_what_is_wrong():
    with pytest.raises(ValueError, match="2-D"):
        check_label_matrix([0, 1], 2)
    with pytest.raises(ValueError, match="-1 .abstain. or 0..1"):
        check_label_matrix([[0, 2]], 2)
    with pytest.raises(ValueError, match="int"):
        check_label_matrix([[0.5, 1.0]], 2)


def test_dawid_skene_reads_unipolar_sub_labelers_through_when_they_fire():
    """Keyword rules vote one label only. Modelling abstain as an answer makes them informative: each row
    one rule fires on gets a confident label (plain Dawid-Skene leaves such rows at 1/2)."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 2000)
    L = np.full((2000, 3), -1)
    L[(y == 0) & (rng.random(2000) < 0.6), 0] = 0  # fires on 60% of class 0
    L[(y == 1) & (rng.random(2000) < 0.6), 1] = 1  # fires on 60% of class 1
    noisy = rng.random(2000) < 0.5
    L[noisy, 2] = np.where(rng.random(2000) < 0.7, y, 1 - y)[noisy]  # a 70%-accurate bipolar voter on half the rows
    probs, _, _ = dawid_skene(L, 2)
    covered = (L != -1).any(axis=1)
    assert (probs[covered].argmax(axis=1) == y[covered]).mean() > 0.9
    one_rule = (L[:, 0] == 0) ^ (L[:, 1] == 1)
    assert probs[one_rule].max(axis=1).mean() > 0.8


def test_precision_thresholds_pick_the_most_coverage_at_the_precision():
    """A 'yes' score that is right above 0.7 and noise below: the threshold lands at 0.7, not at 0.5 (the
    argmax) nor above; a label whose votes never reach the precision gets NaN (it never votes)."""
    from labelmill.numeric.weak import precision_thresholds, vote_precision

    rng = np.random.default_rng(0)
    score = rng.random(400)
    hit = np.where(score >= 0.7, rng.random(400) < 0.95, rng.random(400) < 0.2)
    scores = np.stack([score, rng.random(400)], axis=1)
    hits = np.stack([hit, rng.random(400) < 0.1], axis=1)
    t = precision_thresholds(scores, hits, 0.8)
    assert 0.6 < t[0] <= 0.72 and np.isnan(t[1])
    assert (hits[scores[:, 0] >= t[0], 0]).mean() >= 0.8
    assert np.isnan(precision_thresholds(scores, hits, 0.8, can_vote=[False, True])[0])
    # a label on 90% of the rows and a score that knows nothing: 0.9 precision is no lift, so no vote
    majority = rng.random((400, 1)) < 0.9
    assert np.isnan(precision_thresholds(rng.random((400, 1)), majority, 0.6)[0])
    # coverage and accuracy of votes for / against (multi-label zero-shot votes against the labels it leaves out)
    V = np.array([[1, 0], [-1, -1], [0, 1]])
    assert vote_precision(V, np.array([[True, False], [True, True], [True, True]])) == (pytest.approx(2 / 3), 0.75)


def test_snorkel_label_model_beats_the_vote_on_simulated_sub_labelers():
    """The maintained library's label model, through the same seam as ours (snorkel is in the test extra)."""
    from labelmill.strategies.weak.labelmodels import combine, learned_accuracy

    L, y = simulate(3000, [0.9, 0.85, 0.4, 0.4, 0.4], coverage=0.9, k=3, seed=2)
    snorkel = combine(L, 3, "snorkel")
    mv = combine(L, 3, "majority_vote")
    assert snorkel.shape == (3000, 3) and np.allclose(snorkel.sum(axis=1), 1.0)
    assert (snorkel.argmax(axis=1) == y).mean() > (mv.argmax(axis=1) == y).mean()
    ds = combine(L, 3, "dawid_skene")
    assert learned_accuracy(L, ds) == pytest.approx([0.9, 0.85, 0.4, 0.4, 0.4], abs=0.06)


def test_seed_anchors_pin_what_a_sub_labeler_really_means():
    """A sub-labeler that swaps two classes and one that is right 60% of the time: from the votes alone EM
    cannot know which one to believe; twenty labeled seed rows tell it, and it reads the swapped one backwards."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    swapped = 1 - y
    noisy = np.where(rng.random(400) < 0.6, y, 1 - y)
    L = np.stack([swapped, swapped, noisy], axis=1)  # the swapped one twice: the votes alone side with it
    free = dawid_skene(L, 2)[0].argmax(axis=1)
    assert (free == y).mean() < 0.2
    seed = rng.integers(0, 2, 20)
    anchor_L = np.stack([1 - seed, 1 - seed, seed], axis=1)
    pinned, confusions, _ = dawid_skene(L, 2, anchor_L=anchor_L, anchor_y=seed)
    assert (pinned.argmax(axis=1) == y).mean() == 1.0 and confusions[0, 0, 1] > 0.9
    # a sub-labeler with no votes on the seed rows is left to EM
    assert dawid_skene(L, 2, anchor_L=anchor_L, anchor_y=seed, anchor_known=[True, True, False])[0].argmax(axis=1).tolist() == y.tolist()
    with pytest.raises(ValueError, match="anchors"):
        dawid_skene(L, 2, anchor_L=anchor_L[:, :2], anchor_y=seed)
