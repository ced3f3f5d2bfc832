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


# eval without gold, and gold it cannot match (issue 39) ------------------------------------------------
def _support_rows():
    texts = ["my invoice is wrong", "refund my payment please", "where is my parcel", "the delivery is late",
             "how do I change my password", "what are your opening hours", "charge on my card twice", "tracking number missing",
             "the package never came", "billing address update", "can I pay by invoice", "shipping to Canada"]
    return [{"text": t, "label": lab} for t, lab in zip(texts, ["billing", "billing", "shipping", "shipping", "misc", "misc", "billing",
                                                               "shipping", "shipping", "billing", "billing", "shipping"])]


def _support_config(**extra):
    from conftest import fake_config

    return fake_config(labels=["billing", "shipping", "other"], guidelines="Route the customer message.",
                       model={"params": {"keywords": {"billing": ["invoice", "refund", "card", "billing", "pay", "password", "hours"],
                                                      "shipping": ["parcel", "delivery", "tracking", "package", "shipping"]}}}, **extra)


def test_eval_without_gold_reports_counts_confidence_the_rows_to_review_and_a_never_chosen_label(tmp_path):
    import json
    import subprocess

    import pandas as pd
    from conftest import child_env, cli_command

    config = tmp_path / "config.json"
    config.write_text(json.dumps(_support_config(gold_column=None)))
    pd.DataFrame([{"text": r["text"]} for r in _support_rows()]).to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(cli_command("run", str(config), str(tmp_path / "rows.csv"), "--out", str(tmp_path / "out.csv"), "--project", str(tmp_path / "p.db"), "--quiet"),
                          capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no gold column: label counts" in done.stdout  # run's next step says what eval will show
    done = subprocess.run(cli_command("eval", str(config), str(tmp_path / "out.csv"), "--json"), capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    m = json.loads(done.stdout)
    out = pd.read_csv(tmp_path / "out.csv")
    assert m["gold"] is False and m["n_rows"] == 12 and m["completion_rate"] == 1.0
    assert m["label_counts"] == {k: int((out["llm_label"] == k).sum()) for k in ("billing", "shipping", "other")} and m["label_counts"]["other"] == 0
    assert any("'other' is 0 of 12 answers" in w for w in m["warnings"])
    least = [r["row"] for r in m["least_confident"]]
    assert least == out["llm_confidence"].sort_values(kind="stable").index[: len(least)].tolist()
    assert m["confidence"]["median"] == pytest.approx(out["llm_confidence"].median())
    shown = subprocess.run(cli_command("eval", str(config), str(tmp_path / "out.csv")), capture_output=True, text=True, env=child_env(), timeout=300)
    assert shown.returncode == 0 and "least confident rows" in shown.stdout and "next: labelmill review" in shown.stdout


def test_eval_counts_gold_outside_the_labels_as_errors_and_says_so_and_bounds_its_threshold(tmp_path):
    import labelmill

    rows = _support_rows()
    result = labelmill.run(_support_config(), rows, project=tmp_path / "p.db")
    m = labelmill.evaluate(_support_config(), result.frame)
    assert m["gold_outside_labels"] == {"misc": 2} and any("'misc' (2 rows)" in w for w in m["warnings"])
    assert m["n_rows"] == 12  # the two rows stay, as errors
    assert m["accuracy"] == pytest.approx(sum(r["label"] == lab for r, lab in zip(rows, result.frame["llm_label"])) / 12)
    assert m["threshold_with_bound"] is None and m["share_with_bound"] == 0.0  # 12 rows cannot certify 0.95 with a 95% bound
