import numpy as np
import pytest

from labelmill.evaluation.metrics import expected_calibration_error, threshold_for_target, threshold_table
from labelmill.tasks.classification import classification_metrics


def test_threshold_for_target_on_a_known_case():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, np.nan])
    correct = np.array([1, 1, 1, 0, 1, 0, 0], dtype=bool)
    chosen = threshold_for_target(correct, confidence, 0.95)
    assert chosen["threshold"] == 0.9 and chosen["rows"] == 3 and chosen["share"] == pytest.approx(3 / 7)
    chosen = threshold_for_target(correct, confidence, 0.8)
    assert chosen["threshold"] == 0.7 and chosen["accuracy"] == pytest.approx(0.8)
    assert threshold_for_target(np.zeros(3, bool), np.array([0.9, 0.8, 0.7]), 0.5) is None


def test_ties_are_all_in_or_all_out():
    confidence = np.array([0.9, 0.9, 0.9, 0.5])
    correct = np.array([1, 1, 0, 1], dtype=bool)
    chosen = threshold_for_target(correct, confidence, 0.7)
    # cutting inside the 0.9 tie would claim 2 rows at accuracy 1.0; the honest cut keeps all ties together
    assert chosen["rows"] == 4 and chosen["threshold"] == 0.5 and chosen["accuracy"] == 0.75


def test_threshold_table_shares_count_every_row():
    table = threshold_table(np.array([1, 0, 1], bool), np.array([0.9, 0.6, np.nan]), thresholds=(0.0, 0.7))
    assert table[0] == {"threshold": 0.0, "share": pytest.approx(2 / 3), "rows": 2, "accuracy": 0.5}
    assert table[1]["rows"] == 1 and table[1]["accuracy"] == 1.0


def test_ece_is_small_when_calibrated_and_large_when_not():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    calibrated = rng.uniform(size=confidence.size) < confidence
    ece, bins = expected_calibration_error(calibrated, confidence)
    assert ece < 0.02 and sum(b["rows"] for b in bins) == confidence.size
    overconfident, _ = expected_calibration_error(rng.uniform(size=confidence.size) < 0.5, confidence)
    assert overconfident > 0.2


def test_classification_metrics_count_failures_as_wrong():
    m = classification_metrics(["a", "a", "b", "b"], ["a", None, "b", "a"], ["a", "b"])
    assert m["accuracy"] == 0.5 and m["completion_rate"] == 0.75 and m["accuracy_on_completed"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["precision"] == 0.5 and m["per_class"]["b"]["recall"] == 0.5
    assert m["confusion_matrix"]["rows"] == [[1, 0, 1], [1, 1, 0]]


def test_classification_metrics_match_scikit_learn_on_random_labels():
    """Our figures are scikit-learn's (failures count as a prediction of no label, so they cost recall only);
    we keep the ten-line version so the base install needs no scikit-learn."""
    import sklearn.metrics as sk  # the student extra, installed with the tests
    from labelmill.tasks.classification import classification_metrics

    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "d"]
    for _ in range(50):
        n = int(rng.integers(5, 200))
        gold = list(rng.choice(labels[:3], n))  # "d" is never gold: a label only predicted
        predicted = [None if rng.random() < 0.1 else str(x) for x in rng.choice(labels, n)]
        ours = classification_metrics(gold, predicted, labels)
        filled = [p if p is not None else "(none)" for p in predicted]
        present = [lab for lab in labels if lab in gold or lab in predicted]
        assert ours["accuracy"] == pytest.approx(sk.accuracy_score(gold, filled))
        assert ours["macro_f1"] == pytest.approx(sk.f1_score(gold, filled, labels=present, average="macro", zero_division=0))
        p, r, f, s = sk.precision_recall_fscore_support(gold, filled, labels=labels, zero_division=0)
        for i, lab in enumerate(labels):
            assert ours["per_class"][lab]["precision"] == pytest.approx(p[i]) and ours["per_class"][lab]["recall"] == pytest.approx(r[i])
            assert ours["per_class"][lab]["f1"] == pytest.approx(f[i]) and ours["per_class"][lab]["support"] == s[i]
        matrix = sk.confusion_matrix(gold, filled, labels=[*labels, "(none)"])
        assert ours["confusion_matrix"]["rows"] == matrix[: len(labels)].tolist()
