"""`labelmill calibrate`'s seed path (core.entry.calibrate_on_seed and its parts) on the keyword fake: the
out-of-fold figures rebuilt in the test from their recipe (five folds of a seeded permutation, each fitted on the
other four fifths with numeric.calibration), the method checks, the 20-row floor, gold labels outside the label
set, the threshold rows, and the options passed through label_rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROWS, fake_config
from test_calibration import scored_rows

import labelmill
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import Notice
from labelmill.numeric import calibration as cal_mod

CONFIG = fake_config(model={"method": "score", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})


def labeled(tmp_path, rows: pd.DataFrame, name: str = "seed") -> tuple:
    """The seed rows' stored distributions and confidences, read from a plain run's output (same cache)."""
    path = tmp_path / f"{name}.csv"
    rows.to_csv(path, index=False)
    out = labelmill.run(dict(CONFIG, output={"include_distribution": True}), path, project=tmp_path / "p.db").frame
    return path, out


def test_the_out_of_fold_figures_follow_their_recipe(tmp_path):
    """isotonic on 300 seed rows: fold f holds the rows at positions f, f+5, ... of a permutation seeded 0, and its
    confidences come from a fit on the other rows; ECE after and the calibrated accuracy are those rows' figures."""
    rows = scored_rows(300, 7)
    path, out = labeled(tmp_path, rows)
    cal = labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="isotonic", target=0.9)
    raw = out["llm_confidence"].to_numpy(dtype=float)
    right = (out["llm_label"] == rows["label"]).to_numpy()
    conf = np.full(300, np.nan)
    order = np.random.default_rng(0).permutation(300)
    for f in range(5):
        test = np.sort(order[f::5])
        train = np.setdiff1d(np.arange(300), test)
        _, conf[test] = cal_mod.fit("isotonic", None, None, raw[train], right[train], ["positive", "negative"]).apply(None, raw[test])
    report = cal.seed_report
    assert report["method"] == "isotonic" and report["cv_log_loss"] == {}
    assert report["ece_calibrated_cv"] == pytest.approx(cal_mod.expected_calibration_error(right, conf)[0], abs=1e-12)
    assert report["accuracy_calibrated_cv"] == pytest.approx(right.mean(), abs=1e-12)  # isotonic keeps every label
    assert report["threshold_without_bound"] == cal_mod.threshold_point(conf, right, 0.9)


def test_bias_calibration_s_out_of_fold_accuracy_counts_the_labels_it_moves(tmp_path):
    """bias shifts the labels' scores, so a row's calibrated label can differ from the model's: the out-of-fold
    accuracy is the share of rows whose fold's calibrated label is the gold one."""
    rows = scored_rows(300, 3)
    path, out = labeled(tmp_path, rows)
    cal = labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="bias", target=0.9)
    probs = np.array([[json.loads(d)[n] for n in ("positive", "negative")] for d in out["llm_distribution"]])
    gold = np.array([["positive", "negative"].index(g) for g in rows["label"]])
    raw = out["llm_confidence"].to_numpy(dtype=float)
    right = (out["llm_label"] == rows["label"]).to_numpy()
    ok = np.zeros(300, dtype=bool)
    order = np.random.default_rng(0).permutation(300)
    for f in range(5):
        test = np.sort(order[f::5])
        train = np.setdiff1d(np.arange(300), test)
        pred, _ = cal_mod.fit("bias", probs[train], gold[train], raw[train], right[train], ["positive", "negative"]).apply(probs[test], raw[test])
        ok[test] = pred == gold[test]
    assert cal.seed_report["accuracy_calibrated_cv"] == pytest.approx(ok.mean(), abs=1e-12)


def test_a_method_is_refused_where_the_seed_rows_cannot_carry_it(tmp_path):
    rows = scored_rows(60, 5)
    path, _ = labeled(tmp_path, rows)
    with pytest.raises(ConfigError, match="unknown calibration method 'histogram'"):
        labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="histogram")
    for method in ("temperature", "bias", "bias_platt", "isotonic", "platt"):  # a scored label set carries them all
        assert labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method=method).method == method
    generated = fake_config(model={"method": "generate", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}})
    for method in ("temperature", "bias", "bias_platt"):
        with pytest.raises(ConfigError, match=f"{method} calibration needs a label distribution for every seed row"):
            labelmill.calibrate(generated, path, project=tmp_path / "g.db", method=method)
    assert labelmill.calibrate(generated, path, project=tmp_path / "g.db", method="isotonic").method == "isotonic"


def test_a_label_with_under_three_seed_rows_rules_out_bias_and_auto_says_so(tmp_path):
    rows = pd.concat([scored_rows(80, 5).query("label == 'positive'"), pd.DataFrame([{"text": "bad film", "label": "negative"}] * 2)])
    path, _ = labeled(tmp_path, rows.reset_index(drop=True))
    with pytest.raises(ConfigError, match="bias calibration needs seed rows of every label; 'negative' has fewer than 3"):
        labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="bias_platt")
    events = []
    cal = labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", on_event=events.append)
    assert "calibrate: no bias calibration, since label 'negative' has fewer than 3 seed rows (is the seed a random sample?)" in [
        e.message for e in events if isinstance(e, Notice)]
    assert not cal.method.startswith("bias") and not [m for m in cal.seed_report["cv_log_loss"] if m.startswith("bias")]
    enough = pd.concat([rows, pd.DataFrame([{"text": "bad film", "label": "negative"}])]).reset_index(drop=True)  # 3 now
    path, _ = labeled(tmp_path, enough, "enough")
    assert labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="bias").method == "bias"


def test_twenty_seed_rows_with_gold_are_the_floor(tmp_path):
    rows = scored_rows(25, 5)
    rows.loc[20:, "label"] = ""  # five rows without gold
    path, _ = labeled(tmp_path, rows)
    assert labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="isotonic").seed_report["seed_rows"] == 20
    rows.loc[19, "label"] = ""
    path, _ = labeled(tmp_path, rows, "fewer")
    with pytest.raises(InputDataError, match="at least 20 seed rows with a gold label"):
        labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="isotonic")


def test_a_gold_label_outside_the_label_set_leaves_the_distribution_methods_out(tmp_path):
    rows = scored_rows(60, 5)
    rows.loc[0, "label"] = "neutral"
    path, _ = labeled(tmp_path, rows)
    with pytest.raises(ConfigError, match="temperature calibration needs a label distribution"):
        labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db", method="temperature")
    cal = labelmill.calibrate(CONFIG, path, project=tmp_path / "p.db")
    assert set(cal.seed_report["cv_log_loss"]) == {"isotonic"}  # auto's one method on the confidence alone


def test_the_threshold_is_chosen_on_threshold_rows_when_given_and_needs_twenty_of_them(tmp_path):
    seed, _ = labeled(tmp_path, scored_rows(60, 5))
    held, out = labeled(tmp_path, scored_rows(200, 9), "held")
    cal = labelmill.calibrate(CONFIG, seed, project=tmp_path / "p.db", method="isotonic", target=0.9, threshold_rows=held)
    assert cal.seed_report["threshold_chosen_on"] == "200 threshold rows"
    fitted = labelmill.calibrate(CONFIG, seed, project=tmp_path / "p.db", method="isotonic", target=0.9)
    _, conf = fitted.apply(None, out["llm_confidence"].to_numpy(dtype=float))
    right = (out["llm_label"] == scored_rows(200, 9)["label"]).to_numpy()
    assert cal.seed_report["threshold_without_bound"] == cal_mod.threshold_point(conf, right, 0.9)
    twenty = scored_rows(30, 9)
    twenty.loc[20:, "label"] = ""
    exact, _ = labeled(tmp_path, twenty, "twenty")
    assert labelmill.calibrate(CONFIG, seed, project=tmp_path / "p.db", method="isotonic", threshold_rows=exact).seed_report[
        "threshold_chosen_on"] == "20 threshold rows"  # exactly 20 with gold: enough
    few = scored_rows(30, 9)
    few.loc[19:, "label"] = ""
    small, _ = labeled(tmp_path, few, "small")
    with pytest.raises(InputDataError, match="the threshold rows have 19 rows with a gold label"):
        labelmill.calibrate(CONFIG, seed, project=tmp_path / "p.db", method="isotonic", threshold_rows=small)


def test_label_rows_passes_the_cost_cap_and_says_when_a_given_backend_labels_every_ensemble_member(tmp_path):
    from labelmill.backends.fake import FakeBackend
    from labelmill.config import ModelSpec, load_config
    from labelmill.core.entry import label_rows

    events = []
    label_rows(load_config(fake_config()), ROWS[:2], project=tmp_path / "p.db", on_event=events.append, max_cost=3.0)
    assert "--max-cost: fake is a local model and costs nothing; no cap applies" in [e.message for e in events if isinstance(e, Notice)]
    member = fake_config()["model"]
    ensemble = load_config({**fake_config(), "ensemble": {"members": [{"model": member}, {"model": {**member, "name": "other"}}]}})
    events.clear()
    label_rows(ensemble, ROWS[:2], project=tmp_path / "e.db", on_event=events.append, backend=FakeBackend(ModelSpec.model_validate(member)))
    assert "ensemble: the backend passed in labels for every member, so the members' model sections are not used" in [
        e.message for e in events if isinstance(e, Notice)]
    events.clear()
    label_rows(ensemble, ROWS[:2], project=tmp_path / "f.db", on_event=events.append)
    assert not [e for e in events if isinstance(e, Notice) and e.message.startswith("ensemble: the backend passed in")]
