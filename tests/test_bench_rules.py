"""The same-labels, same-clock rule in the benches' own arithmetic (issue 34): the cascade passes only against
the strong model's better arm (calibrated or not) with every arm's setup in its seconds, and the review
bench's static order counts the rows a person must fix."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def arms(**kw):
    out = {}
    for arm, (acc, wall) in kw.items():
        out[f"s_{arm}_accuracy"], out[f"s_{arm}_wall_s"] = acc, wall
    return out


def test_the_cascade_passes_against_the_strong_model_s_better_arm(bench):
    verdict = bench("cascade").verdict
    # calibrated 0.92 is the better strong arm: 0.906 is within 1.5 points of it (0.905), 100 s is a third of 300 s
    got = verdict("s", arms(strong=(0.90, 200.0), strong_calibrated=(0.92, 300.0), student_alone=(0.88, 50.0), cascade=(0.906, 100.0)))
    assert got["s_pass_against"] == "strong_calibrated"
    assert got["s_pass"] is True
    assert got["s_best_other"] == "strong_calibrated"
    assert got["s_arms"]["cascade"] == {"accuracy": 0.906, "wall_s": 100.0}
    # a point lower fails on accuracy (0.904 < 0.905); a second more fails on time (100.1 > 100)
    assert verdict("s", arms(strong=(0.90, 200.0), strong_calibrated=(0.92, 300.0), cascade=(0.904, 100.0)))["s_pass"] is False
    slow = verdict("s", arms(strong=(0.90, 200.0), strong_calibrated=(0.92, 300.0), cascade=(0.95, 100.1)))
    assert slow["s_pass"] is False
    assert slow["s_best_other"] == "strong_calibrated"  # the cascade is not its own other arm, even when it is the best


def test_the_cascade_s_best_other_arm_can_be_the_student_alone(bench):
    got = bench("cascade").verdict("s", arms(strong=(0.46, 900.0), strong_calibrated=(0.70, 1200.0), student_alone=(0.90, 60.0), cascade=(0.85, 200.0)))
    assert got["s_best_other"] == "student_alone"
    assert got["s_pass_against"] == "strong_calibrated"  # the pass line is about the strong model
    assert got["s_pass"] is True  # 0.85 >= 0.685 in 200 s <= 400 s


def test_without_a_strong_arm_there_is_no_pass_line(bench):
    got = bench("cascade").verdict("s", arms(student_alone=(0.9, 60.0), cascade=(0.85, 200.0)))
    assert "s_pass" not in got
    assert got["s_best_other"] == "student_alone"


def test_the_static_share_counts_the_wrong_rows_a_person_fixes_in_order(bench):
    share = bench("review").share_static
    correct = np.array([True] * 16 + [False] * 4)  # 0.80 right; 0.95 needs 19 of 20: three fixes
    assert share(np.array([16, 17, 18, 19]), correct) == 3 / 20
    assert share(np.arange(20), correct) == 19 / 20  # sixteen right rows reviewed before the wrong ones
    assert share(np.arange(20), np.ones(20, dtype=bool)) == 0.0


def test_the_shared_arms_learn_from_the_gold_rows_only_and_time_every_step(bench, tmp_path, monkeypatch):
    import pandas as pd

    from conftest import HashEncoder
    from labelmill.config import load_config
    from labelmill.selectors import embeddings

    monkeypatch.setattr(embeddings, "load_encoder", lambda model: HashEncoder())  # the arm's arithmetic, not the encoder's
    arms = bench("_arms")
    config = load_config({"task": "classification", "name": "arms", "labels": ["positive", "negative"], "input_template": "{text}",
                          "gold_column": "label", "examples": {"k": 0},
                          "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}}}})
    gold = pd.DataFrame({"text": ["lovely film", "lovely day", "dull film", "dull day", "a film"],
                         "label": ["positive", "positive", "negative", "negative", "neutral"]})
    rows = pd.DataFrame({"text": ["lovely lovely", "dull dull", "lovely", "dull"], "label": ["positive", "negative", "positive", "negative"]})
    student = arms.student_alone(config, gold, rows, tmp_path / "student.db")
    assert (student.gold_rows, student.left_out) == (4, 1)  # "neutral" is not a label of the config: left out, counted
    assert student.labels.tolist() == ["positive", "negative", "positive", "negative"]  # "lovely"/"dull" only in the gold rows
    assert student.accuracy(rows["label"]) == 1.0 and student.accuracy(["negative"] * 4) == 0.5
    assert student.probs.shape == (4, 2) and student.seconds > 0
    with pytest.raises(ValueError, match="no gold row"):
        arms.student_alone(config, gold.iloc[4:], rows, tmp_path / "none.db")

    seed = pd.DataFrame({"text": ["good", "bad", "good film", "bad film"] * 5, "label": ["positive", "negative"] * 10})
    cal = arms.llm_calibrated(config, seed, rows, tmp_path / "llm.db", output=tmp_path / "out.csv")
    assert len(cal.frame) == 4 and cal.seconds > 0 and cal.calibrator.method
    assert {"llm_needs_review", "llm_confidence_raw"} <= set(cal.frame.columns)  # the rows were labeled with the calibration
    assert pd.read_csv(tmp_path / "out.csv")["llm_label"].tolist() == cal.frame["llm_label"].tolist()


def test_autolabel_bench_rows_random_sample_spans_the_sorted_file_and_keeps_demos_apart(bench, monkeypatch):
    compat = bench("autolabel_compat")
    monkeypatch.setitem(compat.TAKE, "order", "first")
    first, _ = compat.banking(200, 20)
    assert first["label"].nunique() <= 5  # the test file is sorted by intent: its head is a handful of intents
    monkeypatch.setitem(compat.TAKE, "order", "random")
    drawn, seed = compat.banking(200, 20)
    again, _ = compat.banking(200, 20)
    assert len(drawn) == 200 and drawn["example"].is_unique and drawn["label"].nunique() >= 50
    assert list(drawn["example"]) == list(again["example"])  # seed 0: the same rows every run
    assert len(seed) == 20
    asked, demos = compat.squad_v2(700, 700)  # 1,407 rows: drawn from all of them, half the demos would be asked rows
    assert len(asked) == 700 and len(demos) == 700
    assert not set(zip(asked["context"], asked["question"])) & set(zip(demos["context"], demos["question"]))


def test_autolabel_bench_resumes_each_part_an_earlier_command_measured_and_runs_the_rest(bench, monkeypatch, tmp_path, capsys):
    import json

    import pandas as pd

    compat = bench("autolabel_compat")
    ran: list[tuple[str, str]] = []

    def fake_part(part):
        def measure(name, config, test, kind, args):
            ran.append((name, part))
            return {f"{name}_{part}_s_per_row": float(len(ran))}
        return measure

    rows = pd.DataFrame({"example": ["a", "b"], "label": ["x", "x"]})
    monkeypatch.setattr(compat, "project_for", lambda name, n, seed_rows, work: (work / "c.json", rows, "classification"))
    monkeypatch.setattr(compat, "PARTS", {part: fake_part(part) for part in ("labelmill", "autolabel", "floor")})
    monkeypatch.setattr(compat, "machine_tag", lambda: "2core-avx2")
    argv = ["autolabel_compat.py", "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "kept"), "--rows", "7", "--json", "--resume"]
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "banking", "--parts", "labelmill"])
    compat.main()
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "banking,ledgar", "--parts", "labelmill,autolabel"])
    compat.main()
    # banking's labelmill figures came from the first command's file; only what was not measured ran
    assert ran == [("banking", "labelmill"), ("banking", "autolabel"), ("ledgar", "labelmill"), ("ledgar", "autolabel")]
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["banking_labelmill_s_per_row"] == 1.0 and last["banking_autolabel_s_per_row"] == 2.0
    assert last["banking_speedup"] == 2.0  # the ratio of a kept part and a new one
    assert (tmp_path / "kept" / "banking" / "labelmill-first7-seed200-2core-avx2.json").exists()
    monkeypatch.setattr(sys, "argv", [a for a in argv if a != "--resume"] + ["--sets", "banking", "--parts", "labelmill"])
    compat.main()  # without --resume every part runs again
    assert ran[-1] == ("banking", "labelmill") and len(ran) == 5
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "banking", "--parts", "labelmill", "--rows", "8"])
    compat.main()  # other rows: not the same measurement
    assert len(ran) == 6
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "banking", "--parts", "labelmill", "--sample", "random"])
    compat.main()  # other rows again
    assert len(ran) == 7
    monkeypatch.setattr(compat, "machine_tag", lambda: "2core-avx512")
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "banking", "--parts", "labelmill"])
    compat.main()  # the same rows on another kind of machine: measured again, not set beside the other's times
    assert len(ran) == 8 and (tmp_path / "kept" / "banking" / "labelmill-first7-seed200-2core-avx512.json").exists()
    monkeypatch.setattr(compat, "machine_tag", lambda: "2core-avx2")
    monkeypatch.setattr(compat, "PARTS", dict(compat.PARTS, floor=lambda *a: {"ledgar_autolabel_error": "crashed"}))
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "ledgar", "--parts", "floor"])
    compat.main()  # a failure is printed but never kept: the next --resume runs it again
    assert not list((tmp_path / "kept" / "ledgar").glob("floor-*"))
    monkeypatch.setattr(sys, "argv", argv + ["--sets", "ledgar", "--parts", "lablemill"])
    with pytest.raises(SystemExit):
        compat.main()  # a part's name misspelt is an error, not a set measured with nothing


def test_autolabel_s_attribute_answers_are_read_as_mention_lists_whether_json_text_or_lists(bench):
    import json

    import pandas as pd

    compat = bench("autolabel_compat")
    frame = pd.DataFrame({"example": ["SOCCER - JAPAN WIN , CHINA LOSE .", "Nadim Ladki"],
                          "Location": [json.dumps(["JAPAN", "CHINA"]), "[]"], "Organization": ["[]", "[]"],
                          "Person": ["[]", json.dumps(["Nadim Ladki"])], "Miscellaneous": ["[]", "[]"]})
    as_text = [{"Location": '["CHINA", "JAPAN"]', "Organization": "[]", "Person": "[]", "Miscellaneous": '["SOCCER"]'},
               {"Location": "[]", "Organization": '["Nadim Ladki"]', "Person": "[]", "Miscellaneous": "[]"}]
    as_lists = [{k: json.loads(v) for k, v in row.items()} for row in as_text]
    scored = compat.score_autolabel("attribute_extraction", frame, as_text, [None, None])
    assert scored == compat.score_autolabel("attribute_extraction", frame, as_lists, [None, None])
    # Location right on both rows, Person right on the first only, Organization and Miscellaneous on one each
    assert compat.headline("attribute_extraction", scored) == ("mean_type_accuracy", (1.0 + 0.5 + 0.5 + 0.5) / 4)
    assert compat._mentions("not json") == ["not json"] and compat._mentions(None) == [] and compat._mentions("") == []


def test_autolabel_bench_s_trivial_baseline_is_the_commonest_label_or_no_mention_scored_like_the_tools(bench):
    import pandas as pd

    compat = bench("autolabel_compat")
    labels = pd.DataFrame({"example": list("abcde"), "label": ["y", "x", "x", "x", "z"]})
    assert compat.headline("classification", compat.trivial_baseline("classification", labels))[1] == 0.6
    mentions = pd.DataFrame({"example": ["a", "b"], "Location": ['["Paris"]', "[]"], "Organization": ["[]", "[]"],
                             "Person": ["[]", '["Ann"]'], "Miscellaneous": ["[]", "[]"]})
    # no mention at all: Location and Person right on one row of two, the other two types on both
    assert compat.headline("attribute_extraction", compat.trivial_baseline("attribute_extraction", mentions))[1] == 0.75


def test_the_prompt_floor_evaluates_every_shared_prefix_once_and_keeps_every_other_token(bench):
    compat = bench("autolabel_compat")
    guide, demo_a, demo_b = [1, 2, 3], [7, 7], [8]
    rows = [guide + demo_b + [40, 41], guide + demo_a + [50], guide + demo_a + [60, 61], guide + demo_a + [60, 61]]
    own = compat.unshared_tokens(rows)
    # sorted: the two demo_a rows ending 50 and 60 61, its twin, then the demo_b row; the first is evaluated whole
    assert own == [guide + demo_a + [50], [60, 61], [61], [8, 40, 41]]
    assert sum(map(len, own)) == 12  # the prefix tree's nodes: 3 + 2 + 1 + 2 + 1 + 3 (the twin keeps its last token)


def test_rows_given_to_the_engine_fewer_at_a_time_share_less_of_their_prompts(bench):
    compat = bench("autolabel_compat")
    guide, demo_a, demo_b = [1, 2, 3], [7, 7], [8]
    rows = [guide + demo_a + [50], guide + demo_b + [40], guide + demo_a + [60], guide + demo_b + [41]]
    # all at once: the guidelines once, demo_a once (+50, +60), demo_b once (+40, +41): 3 + 2 + 1 + 1 + 1 + 1 + 1
    assert compat.tokens_by_call(rows, 4) == 10 / 4
    # two at a time: the guidelines still once, but each call holds one row of each demo, so no demo is shared
    assert compat.tokens_by_call(rows, 2) == (3 + 3 + 2 + 3 + 2) / 4
    assert compat.tokens_by_call(rows, 1) == (3 + 3 + 2 + 3 + 2) / 4


def test_the_efficiency_bench_s_self_trained_arm_learns_from_the_unlabeled_rows_and_is_combined_with_each_llm(bench):
    zero = bench("zero_labels")
    rng = np.random.default_rng(0)
    X_test = np.vstack([rng.normal([-2, 0], 0.4, (200, 2)), rng.normal([2, 0], 0.4, (200, 2))])
    y_test = np.array([0] * 200 + [1] * 200)
    # ten labeled rows off the clusters' axis: their line alone is tilted through both clusters
    X = np.vstack([rng.normal([-0.4, 2.2], 0.2, (5, 2)), rng.normal([2.6, -2.2], 0.2, (5, 2))])
    y = np.array([0] * 5 + [1] * 5)
    llm = np.full((len(y_test), 2), 0.5), np.full((len(y), 2), 0.5)  # an LLM that knows nothing
    arms = zero.candidates(X, y, {"LLM": (llm[1], llm[0])}, X_test, 2)
    assert set(arms) == {"student", "student+prior", "student+self", "LLM+student", "LLM+student+prior", "LLM+student+self"}
    accuracy = {arm: np.mean(test.argmax(axis=1) == y_test) for arm, (_, test) in arms.items()}
    assert accuracy["student"] < 0.97 and accuracy["student+self"] == 1.0
