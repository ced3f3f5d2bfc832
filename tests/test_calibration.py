"""Calibration methods, the Clopper-Pearson bound and the threshold rule; `calibrate` end to end on the fake backend."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import child_env, cli_command, fake_config

import labelmill
from labelmill.numeric.calibration import (
    Calibrator,
    choose,
    clopper_pearson_lower,
    fit,
    fit_isotonic,
    threshold_with_bound,
)
from labelmill.evaluation.metrics import expected_calibration_error


def biased_distributions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident 3-label distributions that favour label 0 whatever the truth."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), gold] += 1.5
    logits[:, 0] += 1.0
    p = np.exp(2.5 * logits)
    return p / p.sum(axis=1, keepdims=True), gold


def test_bias_calibration_fixes_label_bias_and_confidence_on_held_out_rows():
    probs, gold = biased_distributions(1200, 0)
    seed, test = slice(0, 200), slice(200, None)
    raw_ok = probs[test].argmax(1) == gold[test]
    cal = fit("bias", probs[seed], gold[seed], probs[seed].max(1), probs[seed].argmax(1) == gold[seed], ["a", "b", "c"])
    pred, conf = cal.apply(probs[test], probs[test].max(1))
    ok = pred == gold[test]
    assert ok.mean() > raw_ok.mean() + 0.03  # the bias toward label 0 is gone
    ece_raw = expected_calibration_error(raw_ok, probs[test].max(1))[0]
    ece_cal = expected_calibration_error(ok, conf)[0]
    assert ece_raw > 0.1 and ece_cal < 0.06
    method, losses = choose(probs[seed], gold[seed], probs[seed].max(1), probs[seed].argmax(1) == gold[seed], ["a", "b", "c"])
    assert method in ("bias", "bias_platt") and set(losses) == {"temperature", "bias", "isotonic", "platt", "bias_platt"}
    combined = fit("bias_platt", probs[seed], gold[seed], probs[seed].max(1), probs[seed].argmax(1) == gold[seed], ["a", "b", "c"])
    pred2, conf2 = combined.apply(probs[test], probs[test].max(1))
    assert ((pred2 == gold[test]) == ok).all() and expected_calibration_error(pred2 == gold[test], conf2)[0] < 0.06


def test_temperature_only_rescales_and_keeps_the_predicted_label():
    probs, gold = biased_distributions(300, 1)
    cal = fit("temperature", probs, gold, probs.max(1), probs.argmax(1) == gold, ["a", "b", "c"])
    assert cal.temperature > 1.5  # the distributions were over-confident
    pred, conf = cal.apply(probs, probs.max(1))
    assert (pred == probs.argmax(1)).all() and (conf <= probs.max(1) + 1e-12).all()


def test_isotonic_is_monotone_and_round_trips_through_json(tmp_path):
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.3, 1.0, 500)
    correct = rng.uniform(size=500) < conf**3  # over-confident raw scores
    _, ys = fit_isotonic(conf, correct)
    assert bool(np.all(np.diff(ys) >= 0)) and 0 < min(ys) and max(ys) < 1
    cal = fit("isotonic", None, None, conf, correct, [])
    path = cal.save(tmp_path / "c.json")
    again = Calibrator.load(path)
    grid = np.linspace(0.3, 1.0, 50)
    assert np.allclose(again.confidence(grid), cal.confidence(grid))
    assert expected_calibration_error(correct, cal.confidence(conf))[0] < expected_calibration_error(correct, conf)[0] / 3


def test_clopper_pearson_matches_known_values():
    # reference values: beta.ppf(0.05, k, n - k + 1)
    assert clopper_pearson_lower(5, 10, 0.05) == pytest.approx(0.22244, abs=1e-4)
    assert clopper_pearson_lower(95, 100, 0.05) == pytest.approx(0.89775, abs=1e-4)
    assert clopper_pearson_lower(59, 59, 0.05) == pytest.approx(0.05 ** (1 / 59))
    assert clopper_pearson_lower(0, 10, 0.05) == 0.0


def _cp_lower(k: int, n: int, delta: float) -> float:
    """The one-sided Clopper-Pearson lower bound, from scipy's beta quantile (not our code)."""
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(delta, k, n - k + 1))


def test_threshold_with_bound_is_the_lowest_that_passes_the_bound_on_a_hand_made_case():
    """100 right answers on top, then one wrong in every 10: the threshold stops where the Clopper-Pearson
    lower bound of the rows above it drops under the target, not where their accuracy does."""
    conf = np.linspace(1.0, 0.0, 300, endpoint=False)
    ok = np.ones(300, dtype=bool)
    ok[100:][::10] = False
    chosen = threshold_with_bound(conf, ok, 0.95, 0.05, tolerate=0)
    n = chosen["seed_rows"]
    assert _cp_lower(int(ok[:n].sum()), n, 0.05) >= 0.95 > _cp_lower(int(ok[:n + 1].sum()), n + 1, 0.05)
    assert chosen["threshold"] == conf[n - 1] and chosen["lower_bound"] == pytest.approx(_cp_lower(int(ok[:n].sum()), n, 0.05))
    assert ok[:n + 1].mean() > 0.95  # the point accuracy would go on: only the bound stops it here


def test_threshold_with_bound_holds_on_new_rows_at_the_stated_rate():
    """Simulate many seed sets: the chosen threshold's accuracy on fresh rows is below target in <= ~delta of them."""
    target, delta = 0.85, 0.1
    rng = np.random.default_rng(4)

    def draw(n):
        conf = rng.uniform(0, 1, n)
        return conf, rng.uniform(size=n) < 0.55 + 0.45 * conf  # P(correct) rises with confidence

    misses, found = 0, 0
    for _ in range(60):
        conf, ok = draw(300)
        chosen = threshold_with_bound(conf, ok, target, delta)
        if chosen is None:
            continue
        found += 1
        t = chosen["threshold"]
        true_accuracy = 0.55 + 0.45 * (1 + t) / 2  # mean of P(correct) over conf in [t, 1]
        misses += true_accuracy < target
        assert chosen["lower_bound"] >= target and chosen["seed_accuracy"] >= target
        n, k = chosen["seed_rows"], round(chosen["seed_accuracy"] * chosen["seed_rows"])
        assert chosen["lower_bound"] == pytest.approx(_cp_lower(k, n, delta))  # the bound, not the seed accuracy
    assert found >= 50 and misses / found <= delta + 0.05


def scored_rows(n: int, seed: int) -> pd.DataFrame:
    """Rows for the keyword fake backend whose votes are noisy: some rows carry the other label's word."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        word = {"positive": "good", "negative": "bad"}[label]
        other = {"positive": "bad", "negative": "good"}[label]
        words = [word] * int(rng.integers(1, 3)) + [other] * int(rng.integers(0, 3)) + ["film"]
        rows.append({"text": " ".join(rng.permutation(words)), "label": label})
    return pd.DataFrame(rows)


def test_calibrate_then_run_with_the_calibration(tmp_path):
    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    scored_rows(300, 5).to_csv(tmp_path / "seed.csv", index=False)  # enough rows for a bounded threshold at 0.9
    scored_rows(200, 6).to_csv(tmp_path / "test.csv", index=False)
    cal = labelmill.calibrate(config, tmp_path / "seed.csv", out=tmp_path / "cal.json", project=tmp_path / "p.db", target=0.9)
    report = cal.seed_report
    assert report["seed_rows"] == 300 and report["method"] in ("temperature", "bias", "bias_platt")  # a distribution method: labels can change
    assert json.loads((tmp_path / "cal.json").read_text())["method"] == cal.method
    assert cal.threshold is not None and report["threshold"]["lower_bound"] >= 0.9
    n, k = report["threshold"]["seed_rows"], round(report["threshold"]["seed_accuracy"] * report["threshold"]["seed_rows"])
    assert report["threshold"]["lower_bound"] == pytest.approx(_cp_lower(k, n, 0.05))
    assert report["threshold"]["lower_bound"] < report["threshold"]["seed_accuracy"]
    result = labelmill.run(config, tmp_path / "test.csv", project=tmp_path / "p.db", calibration=tmp_path / "cal.json")
    frame = result.frame
    assert {"llm_confidence_raw", "llm_label_raw", "llm_needs_review"} <= set(frame.columns)
    # row by row: a row needs review exactly when it has no label or its calibrated confidence is under the threshold
    for label, confidence, review in zip(frame["llm_label"], frame["llm_confidence"], frame["llm_needs_review"]):
        assert review == (label is None or confidence < cal.threshold)
    assert 0 < frame["llm_needs_review"].sum() < len(frame)  # both kinds of rows are there
    plain = labelmill.run(dict(config, output={"include_distribution": True}), tmp_path / "test.csv", project=tmp_path / "p.db")
    assert plain.model_rows == 0 and (plain.frame["llm_confidence"] == frame["llm_confidence_raw"]).all()
    # the written label and confidence are exactly the calibrator's, from the stored distribution
    probs = np.array([[json.loads(d)[n] for n in ("positive", "negative")] for d in plain.frame["llm_distribution"]])
    predicted, expected = cal.apply(probs, plain.frame["llm_confidence"].to_numpy())
    assert predicted is not None
    assert frame["llm_label"].tolist() == [["positive", "negative"][i] for i in predicted]
    assert np.allclose(frame["llm_confidence"].to_numpy(dtype=float), expected)
    ok = (frame["llm_label"] == frame["label"]).to_numpy()
    ece_raw = expected_calibration_error((plain.frame["llm_label"] == frame["label"]).to_numpy(), plain.frame["llm_confidence"].to_numpy())[0]
    ece_cal = expected_calibration_error(ok, frame["llm_confidence"].to_numpy())[0]
    assert ece_cal < ece_raw


def test_cli_calibrate_prints_the_threshold_and_rejects_too_few_rows(tmp_path):
    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    (tmp_path / "c.yaml").write_text(json.dumps(config))
    scored_rows(120, 7).to_csv(tmp_path / "seed.csv", index=False)
    scored_rows(10, 8).to_csv(tmp_path / "tiny.csv", index=False)
    done = subprocess.run(cli_command("calibrate", "c.yaml", "seed.csv", "--target", "0.9"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "ECE" in done.stdout and "calibration.json" in done.stdout and (tmp_path / "calibration.json").exists()
    tiny = subprocess.run(cli_command("calibrate", "c.yaml", "tiny.csv"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, check=False)
    assert tiny.returncode != 0 and "at least 20 seed rows" in tiny.stderr and "Traceback" not in tiny.stderr


def test_tune_searches_strategies_and_writes_the_best_config(tmp_path):
    import yaml

    from labelmill.store.db import Store
    from labelmill.strategies.tune.run import tune

    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    scored_rows(80, 9).to_csv(tmp_path / "dev.csv", index=False)
    scored_rows(40, 10).to_csv(tmp_path / "pool.csv", index=False)
    report = tune(
        config, tmp_path / "dev.csv", pool=tmp_path / "pool.csv", shots=(0, 4), selectors=("random", "balanced"),
        calibrations=("none", "auto"), budget_s=120, project=tmp_path / "p.db", out=tmp_path / "best.yaml",
    )
    names = [t["name"] for t in report["trials"]]
    assert names[0] == "zero-shot" and "4-shot balanced + auto calibration" in names and len(names) == 6
    assert all(t["status"] == "done" for t in report["trials"]) and report["pareto"]
    best = report["best"]
    assert best["accuracy"] == max(t["accuracy"] for t in report["trials"])
    saved = labelmill.load_config(yaml.safe_load((tmp_path / "best.yaml").read_text()))
    assert saved.examples.k == best["shots"]
    with Store(tmp_path / "p.db") as store:
        assert store.db.execute("SELECT COUNT(*) FROM tune_trials").fetchone()[0] == 6
    tight = tune(config, tmp_path / "dev.csv", pool=tmp_path / "pool.csv", shots=(0, 4), selectors=("random",), budget_s=1e-3, project=tmp_path / "q.db")
    assert [t["status"] for t in tight["trials"]][1:] == ["skipped"] * 3  # the budget stops the search after the first


def test_threshold_chosen_on_separate_threshold_rows(tmp_path):
    from labelmill.numeric.calibration import threshold_with_bound

    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    scored_rows(60, 11).to_csv(tmp_path / "seed.csv", index=False)
    scored_rows(400, 12).to_csv(tmp_path / "held.csv", index=False)
    cal = labelmill.calibrate(config, tmp_path / "seed.csv", project=tmp_path / "p.db", target=0.9, threshold_rows=tmp_path / "held.csv")
    assert cal.seed_report["threshold_chosen_on"] == "400 threshold rows"
    # the threshold is set on the held rows' calibrated confidences: the rows at or above it pass the
    # Clopper-Pearson bound (scipy's), the rows down to the next lower confidence do not
    held = labelmill.run(config, tmp_path / "held.csv", project=tmp_path / "p.db", calibration=cal)
    assert held.model_rows == 0  # the held rows' answers came from the cache
    conf = held.frame["llm_confidence"].to_numpy(dtype=float)
    ok = (held.frame["llm_label"] == held.frame["label"]).to_numpy()
    t = cal.threshold
    assert t is not None
    above = conf >= t
    assert _cp_lower(int(ok[above].sum()), int(above.sum()), 0.05) >= 0.9
    lower = conf[conf < t]
    assert len(lower)
    down = conf >= lower.max()
    assert _cp_lower(int(ok[down].sum()), int(down.sum()), 0.05) < 0.9
    assert cal.seed_report["threshold"]["lower_bound"] >= 0.9


def test_one_confidently_wrong_top_row_does_not_end_the_bounded_search():
    rng = np.random.default_rng(7)
    conf = np.sort(rng.uniform(0.5, 1.0, 600))[::-1]
    ok = np.ones(600, dtype=bool)
    ok[0] = False  # the most confident row is wrong
    ok[300:] = rng.uniform(size=300) < 0.7
    chosen = threshold_with_bound(conf, ok, 0.95, 0.05)
    assert chosen is not None and chosen["seed_rows"] >= 124 and chosen["lower_bound"] >= 0.95
    # the old rule (start at the first 59 rows, all of which must be right) finds nothing here
    assert threshold_with_bound(conf, ok, 0.95, 0.05, tolerate=0) is None


def test_eval_of_a_calibrated_output_reports_before_and_after(tmp_path):
    config = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    scored_rows(120, 13).to_csv(tmp_path / "seed.csv", index=False)
    scored_rows(200, 14).to_csv(tmp_path / "test.csv", index=False)
    cal = labelmill.calibrate(config, tmp_path / "seed.csv", project=tmp_path / "p.db", target=0.9)
    labelmill.run(config, tmp_path / "test.csv", project=tmp_path / "p.db", calibration=cal, output=tmp_path / "out.csv")
    metrics = labelmill.evaluate(config, tmp_path / "out.csv", report=tmp_path / "r.html")
    out = pd.read_csv(tmp_path / "out.csv")
    raw_ok = (out["llm_label_raw"] == out["label"]).to_numpy()
    assert metrics["ece_before_calibration"] == pytest.approx(expected_calibration_error(raw_ok, out["llm_confidence_raw"].to_numpy(dtype=float))[0])
    assert metrics["accuracy_before_calibration"] == pytest.approx(raw_ok.mean())
    assert metrics["ece"] < metrics["ece_before_calibration"]
    assert "ece_before_calibration" in (tmp_path / "r.html").read_text()


def test_a_fused_calibrator_applies_its_weights_to_the_logits_and_reads_a_missing_signal_as_one_half():
    """P(right) = sigmoid(w_c logit(confidence) + sum_s w_s logit(signal) + bias), written out here; a signal a
    row lacks counts as 1/2 (logit 0); a row with no confidence stays without one."""
    from labelmill.numeric.calibration import Calibrator

    def logit(x):
        return np.log(x / (1 - x))

    cal = Calibrator("fused", ["a", "b"], fused={"confidence": 2.0, "p_true": 1.5, "agreement": -0.7, "bias": -0.5})
    raw = np.array([0.9, 0.6, 0.3, np.nan])
    signals = [{"p_true": 0.8, "agreement": 0.75}, {"p_true": 0.2}, None, {"p_true": 0.9, "agreement": 1.0}]
    expected = [1 / (1 + np.exp(-(2.0 * logit(0.9) + 1.5 * logit(0.8) - 0.7 * logit(0.75) - 0.5))),
                1 / (1 + np.exp(-(2.0 * logit(0.6) + 1.5 * logit(0.2) - 0.5))),
                1 / (1 + np.exp(-(2.0 * logit(0.3) - 0.5)))]
    got = cal.fused_confidence(raw, signals)
    assert np.allclose(got[:3], expected, atol=1e-6) and np.isnan(got[3])
    label, conf = cal.apply(None, raw, signals)
    assert label is None and np.allclose(conf[:3], expected, atol=1e-6)
