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
