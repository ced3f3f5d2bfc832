"""The output frame read from a real store, with annotations and calibrators written by hand: rows past the
frame, explanations without chain of thought, rows not reached, needs-review at the threshold's edge, label
distributions that do not cover every label, and a strategy's columns beside taken names."""

from __future__ import annotations

import pandas as pd

from labelmill.config import load_config
from labelmill.core.output import calibrate_rows, labeled_frame, output_frame
from labelmill.numeric.calibration import Calibrator
from labelmill.store import Store
from labelmill.store.tables import Annotation
from labelmill.tasks import make_task

from conftest import fake_config, hand_annotation


def _a(i: int, label=None, confidence=None, distribution=None, explanation=None, error=None) -> Annotation:
    return hand_annotation(i, label, confidence=confidence, distribution=distribution, explanation=explanation, error=error)


def test_output_frame_from_annotations_written_by_hand(tmp_path):
    config = load_config(fake_config())
    task = make_task(config)
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "llm_label": ["taken", "taken", "taken", "taken"]})
    with Store(tmp_path / "p.db") as store:
        run = store.open_run(run_key="r", task_name="t", config={}, config_hash="c", input_path=None, input_hash="i", n_rows=5)
        store.save_batch(run, [_a(0, "positive", 0.9, {"positive": 0.9, "negative": 0.1}, explanation="kind words"),
                               _a(1, "negative", 0.6, {"negative": 0.6}), _a(2, error="unparseable"), _a(4, "positive", 0.99)], [])
        out, columns, failed = output_frame(store, run, frame, config, task)
        # the input's llm_label is kept; a row past the frame (4) is not read; row 3 was never reached
        assert columns["label"] == "llm_label_2" and out["llm_label"].tolist() == ["taken"] * 4 and failed == 1
        assert out["llm_label_2"].tolist()[:2] == ["positive", "negative"] and out["llm_label_2"].isna().tolist()[2:] == [True, True]
        assert out[columns["error"]].tolist()[2:] == ["unparseable", "pending: not labeled yet; rerun to label it"]
        assert out[columns["error"]].tolist()[0] == ""
        assert out[columns["explanation"]].tolist()[0] == "kind words"  # explanations shown though the config asks no chain of thought
        # a calibrator: needs-review below its threshold, at it not; a distribution missing a label is not re-read
        cal = Calibrator("temperature", ["positive", "negative"], temperature=1.0, threshold=0.6)
        out, columns, _ = output_frame(store, run, frame, config, task, cal)
        assert out[columns["needs_review"]].tolist() == [False, False, True, True]
        assert abs(out[columns["confidence"]][0] - 0.9) < 1e-9 and out[columns["confidence"]][1] == 0.6 and out[columns["label_raw"]].tolist()[:2] == ["positive", "negative"]


def test_calibrate_rows_by_method_and_coverage():
    names = ["positive", "negative"]
    flip = Calibrator("bias", names, temperature=1.0, bias=[0.0, 5.0])  # pushes every distribution to "negative"
    labels, conf = calibrate_rows(flip, ["positive", "positive", None, "positive"], [0.9, 0.9, None, None],
                                  [{"positive": 0.9, "negative": 0.1}, {"positive": 0.9}, None, {"positive": 0.9, "negative": 0.1}])
    assert labels == ["negative", "positive", None, "negative"]  # a partial distribution keeps its label; a failure stays None
    assert conf[0] > 0.9 and conf[1] == 0.9 and conf[2] is None
    iso = Calibrator("isotonic", names, iso_x=[0.0, 1.0], iso_y=[0.2, 0.4])  # a confidence method never reads the distribution
    labels, conf = calibrate_rows(iso, ["positive"], [0.5], [{"positive": 0.1, "negative": 0.9}])
    assert labels == ["positive"] and abs(conf[0] - 0.3) < 1e-12


def test_a_strategy_s_columns_never_overwrite_each_other_or_the_input():
    config = load_config(fake_config())
    frame = pd.DataFrame({"text": ["a"], "llm_label": ["mine"]})
    out, columns = labeled_frame(frame, config, ["x"], [0.5], [""], {"source": ("llm_label_2", ["student"])})
    assert columns == {"label": "llm_label_2", "confidence": "llm_confidence", "error": "llm_error", "source": "llm_label_2_2"}
    assert out["llm_label"].tolist() == ["mine"] and out["llm_label_2"].tolist() == ["x"] and out["llm_label_2_2"].tolist() == ["student"]
