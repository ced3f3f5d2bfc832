"""The tiered cascade on fake keyword models (through the backend registry) with real all-MiniLM-L6-v2
embeddings: thresholds set on seed rows, each tier sees only what the tier below passed up, budgets cap a
tier, provenance names the tier, and the CLI and the report show rows, accuracy and time per tier."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import child_env, cli_command, fake_config
from test_freeal import _freeal_config, _rows

from labelmill.errors import ConfigError, InputDataError
from labelmill.events import RunStarted
from labelmill.store.db import Store
from labelmill.strategies.cascade.run import parse_tiers, tiered_cascade

STRONG = {"backend": "fake", "name": "strong-keywords", "params": {"keywords": {
    "positive": ["good", "great", "fun", "sunny", "beach", "garden", "summer", "bright", "warm", "flower"],
    "negative": ["bad", "dull", "boring", "rainy", "flooded", "queue", "cancelled", "cold", "traffic", "delayed"]}}}


def _seed(*seeds: int) -> list[dict]:
    """Seed rows: keyword rows, and notes with no sentiment word at all whose labels alternate (nobody can
    tell them apart: the student stays unsure of them, and so does every model)."""
    notes = [{"text": f"a plain note, number {i}", "label": ["positive", "negative"][i % 2]} for i in range(8)]
    return [r for s in seeds for r in _rows(s)] + notes


def _data() -> list[dict]:
    """Rows to label: keyword rows, and notes (labeled positive: a tie goes to the first label, so the top tier gets them right)."""
    return _rows(1) + _rows(2) + [{"text": f"a plain note, number {100 + i}", "label": "positive"} for i in range(10)]


def _tiers(log=None):
    weak = _freeal_config(**({"call_log": str(log)} if log else {}))["model"]
    return ["student", {"name": "weak", "model": weak}, {"name": "strong", "model": STRONG}]


def test_parse_tiers_reads_names_students_and_shares():
    tiers = parse_tiers("student:all-mpnet-base-v2,qwen2.5-coder-0.5b,openai:gpt-4o-mini@0.1")
    assert [(t.kind, t.model, t.budget) for t in tiers] == [("student", "all-mpnet-base-v2", None), ("model", "qwen2.5-coder-0.5b", None),
                                                           ("model", {"backend": "openai", "name": "gpt-4o-mini"}, 0.1)]
    for bad, said in [("qwen2.5-coder-0.5b,student", "only come first"), ("a,a", "twice"), ("a@2", r"\(0, 1\]"), ("a@x", "number"), ("", "no tiers")]:
        with pytest.raises(ConfigError, match=said):
            parse_tiers(bad)


def test_each_tier_labels_only_what_the_tier_below_passed_up(tmp_path):
    rows, seed = _data(), _seed(7, 8, 9, 10)
    log = tmp_path / "weak.log"
    result = tiered_cascade(_freeal_config(), rows, tiers=_tiers(log), seed=seed, target=0.97, calibration_rows=60,
                            project=tmp_path / "p.db", output=tmp_path / "out.csv")
    f, (student, weak, strong) = result.figures, result.tiers
    assert student.rows + weak.rows + strong.rows == len(rows) and student.rows > 0 and strong.rows > 0
    assert student.threshold is not None and student.seed_rows == len(seed) and strong.threshold is None
    out = pd.read_csv(tmp_path / "out.csv")
    assert set(out["llm_label_source"]) <= {"student", "weak", "strong"}
    assert (out["llm_label_source"] == "student").sum() == student.rows
    # the top tier knows every word: all rows it got are right, and the cascade beats the weak model alone
    top = out[out["llm_label_source"] == "strong"]
    assert (top["llm_label"] == top["label"]).all() and f["accuracy"] >= 0.9
    assert f["tier_shares"] == {"student": student.share, "weak": weak.share, "strong": strong.share}
    sidecar = json.loads((tmp_path / "out.csv.cascade.json").read_text())
    assert [t["name"] for t in sidecar["tiers"]] == ["student", "weak", "strong"] and all(t["seconds"] >= 0 for t in sidecar["tiers"])
    # the weak model saw its calibration sample of seed rows and only the rows the student passed up
    prompts = log.read_text().splitlines()
    assert len(prompts) <= 60 + (len(rows) - student.rows)
    with Store(tmp_path / "p.db") as store:  # every model label is a run in the store
        assert len(store.runs()) >= 3
    log.write_text("")
    again = tiered_cascade(_freeal_config(), rows, tiers=_tiers(log), seed=seed, target=0.97, calibration_rows=60, project=tmp_path / "p.db")
    assert log.read_text() == "" and again.frame["llm_label"].tolist() == result.frame["llm_label"].tolist()  # never asks twice


def test_a_budget_caps_a_tier_and_the_rest_keep_the_surest_label_below(tmp_path):
    rows, seed = _data(), _seed(7, 8)
    tiers = _tiers()
    tiers[2] = {"name": "strong", "model": STRONG, "budget": 0.05}
    result = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.99, calibration_rows=60, project=tmp_path / "p.db")
    strong = result.tiers[2]
    assert strong.rows <= int(0.05 * len(rows)) and strong.capped
    sources = result.frame["llm_label_source"]
    assert sources.str.endswith("(over budget)").sum() == len(rows) - sum(t.rows for t in result.tiers)
    assert result.frame["llm_label"].notna().all()


def test_bad_seed_rows_say_what_is_wrong(tmp_path):
    rows = _rows(1)
    with pytest.raises(InputDataError, match="no gold column"):
        tiered_cascade(_freeal_config(), rows, tiers=_tiers(), seed=[{"text": "x"}] * 40, project=tmp_path / "p.db")
    with pytest.raises(InputDataError, match="only 10 seed rows"):
        tiered_cascade(_freeal_config(), rows, tiers=_tiers(), seed=_rows(3)[:10], project=tmp_path / "p.db")


def test_cli_tiers_and_the_report(tmp_path):
    pd.DataFrame(_data()).to_csv(tmp_path / "rows.csv", index=False)
    pd.DataFrame(_seed(7, 8)).to_csv(tmp_path / "seed.csv", index=False)
    cfg = _freeal_config()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "strong.json").write_text(json.dumps(STRONG))
    done = subprocess.run(cli_command("run", "config.json", "rows.csv", "--out", "out.csv", "--tiers", "student,strong.json", "--tiers-seed", "seed.csv",
                                      "--tiers-target", "0.9", "--json"), cwd=tmp_path, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(t["rows"] for t in stats["tiers"]) == len(_data()) and stats["tiers"][1]["name"] == "strong.json"
    done = subprocess.run(cli_command("eval", "config.json", "out.csv", "--json"), cwd=tmp_path, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["cascade_tiers"][0]["name"] == "student" and "seconds" in metrics["cascade_tiers"][0]
    assert "Cascade tiers" in (tmp_path / "out.report.html").read_text()


def test_compare_next_keeps_rows_a_worse_model_would_get(tmp_path):
    # the "strong" model reads the sentiment words backwards (and the notes' numbers: the seed notes' labels
    # alternate with them): on the seed rows the student would pass up it is worse than the student, so with compare_next the student keeps every row and the model labels none
    backwards = {"backend": "fake", "name": "backwards", "params": {"keywords": {"positive": STRONG["params"]["keywords"]["negative"] + list("13579"),
                                                                                 "negative": STRONG["params"]["keywords"]["positive"] + list("02468")}}}
    tiers = ["student", {"name": "backwards", "model": backwards}]
    rows, seed = _data(), _seed(7, 8, 9, 10)
    plain = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.97, calibration_rows=60, project=tmp_path / "a.db")
    assert plain.tiers[1].rows > 0
    result = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.97, calibration_rows=60, project=tmp_path / "b.db", compare_next=True)
    student, model = result.tiers
    assert student.rows == len(rows) and model.rows == 0 and "not better" in student.note
    assert student.compared["next_tier_accuracy"] <= student.compared["this_tier_accuracy"] and student.compared["rows"] > 0
    assert result.figures["accuracy"] >= plain.figures["accuracy"]
    # a better next tier still gets its rows
    better = tiered_cascade(_freeal_config(), rows, tiers=["student", {"name": "strong", "model": STRONG}], seed=seed, target=0.97, calibration_rows=60,
                            project=tmp_path / "c.db", compare_next=True)
    assert better.tiers[1].rows > 0 and better.tiers[0].compared["next_tier_accuracy"] > better.tiers[0].compared["this_tier_accuracy"]


def test_the_student_s_threshold_follows_the_target_on_the_seed_rows(tmp_path):
    """The same rows and seed at two targets: a stricter target sets a higher threshold on the seed rows,
    the student keeps fewer rows, and the rows it keeps are exactly those at or above its threshold."""
    rows, seed = _data(), _seed(7, 8, 9, 10)
    tiers = ["student", {"name": "strong", "model": STRONG}]
    loose = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.9, project=tmp_path / "p.db")
    strict = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.97, project=tmp_path / "p.db")
    a, b = loose.tiers[0], strict.tiers[0]
    assert a.threshold is not None and b.threshold is not None and b.threshold > a.threshold + 0.2
    assert b.rows < a.rows and a.seed_accuracy_accepted >= 0.9 and b.seed_accuracy_accepted >= 0.97
    for result, st in ((loose, a), (strict, b)):
        conf = result.routing["student"][1]
        kept = (result.frame["llm_label_source"] == "student").to_numpy()
        assert (conf[kept] >= st.threshold).all() and (conf[~kept] < st.threshold).all()


def test_a_middle_model_tier_keeps_the_rows_its_calibration_sample_vouches_for(tmp_path):
    """The student passes every row up (a fixed threshold above any confidence); the weak model knows the
    good/bad words and ties on the rest. Calibrated on 60 seed rows, it keeps the keyword rows (all
    right) and passes the ties up to the strong model; at a target its 60 rows cannot vouch for, it keeps none."""
    rows, seed = _data(), _seed(7, 8)
    tiers = _tiers()
    tiers[0] = {"kind": "student", "name": "student", "threshold": 0.9999}
    result = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.9, calibration_rows=60, project=tmp_path / "p.db")
    student, weak, strong = result.tiers
    assert student.rows == 0 and weak.seed_rows == 60 and weak.threshold is not None and weak.seed_accuracy_accepted >= 0.9
    out, conf = result.frame, result.routing["weak"][1]
    kept = (out["llm_label_source"] == "weak").to_numpy()
    assert weak.rows == kept.sum() >= 60
    assert (conf[kept] >= weak.threshold).all() and (conf[~kept] < weak.threshold).all()
    assert (out["llm_label"][kept] == out["label"][kept]).all()
    ties = out["text"].str.contains("again|plain note").to_numpy()  # no good/bad word: the weak model cannot tell
    assert not (kept & ties).any() and (out["llm_label_source"][ties] == "strong").all()
    strict = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.97, calibration_rows=60, project=tmp_path / "p.db")
    assert strict.tiers[1].rows == 0 and strict.tiers[1].threshold is None and strict.tiers[2].rows == len(rows)


def test_parse_tiers_reads_every_form_a_tier_is_written_in(tmp_path):
    """Names, kinds, models, shares and thresholds, written out for each form: a plain student, a student with its
    encoder, a catalog name, BACKEND:NAME (only for a known backend), a model file (a mapping, or one under `model:`),
    a mapping, a Tier as it is, spaces and empty items dropped; shares at the bounds (1 allowed, 0 not)."""
    from labelmill.strategies.cascade.run import Tier

    (tmp_path / "m.yaml").write_text("backend: openai\nname: gpt-4o\n")
    (tmp_path / "wrapped.json").write_text('{"model": {"backend": "fake", "name": "x"}}')
    kept = Tier("mine", "model", "m")
    tiers = parse_tiers(f" student , ,qwen2.5-coder-0.5b@1,openai:gpt-4o-mini@0.5,custom:thing,{tmp_path / 'm.yaml'}@0.25,{tmp_path / 'wrapped.json'}")
    assert [(t.name, t.kind, t.model, t.budget) for t in tiers] == [
        ("student", "student", None, None), ("qwen2.5-coder-0.5b", "model", "qwen2.5-coder-0.5b", 1.0),
        ("openai:gpt-4o-mini", "model", {"backend": "openai", "name": "gpt-4o-mini"}, 0.5), ("custom:thing", "model", "custom:thing", None),
        (str(tmp_path / "m.yaml"), "model", {"backend": "openai", "name": "gpt-4o"}, 0.25),
        (str(tmp_path / "wrapped.json"), "model", {"backend": "fake", "name": "x"}, None)]
    assert parse_tiers("student:all-MiniLM-L6-v2@0.8")[0] == Tier("student:all-MiniLM-L6-v2", "student", "all-MiniLM-L6-v2", 0.8)
    listed = parse_tiers([{"kind": "student", "model": "enc"}, {"model": {"backend": "fake"}, "name": "weak", "budget": 0.3, "threshold": 0.7},
                          {"model": "qwen2.5-coder-1.5b"}, kept, "fake:strong"])
    assert [(t.name, t.kind, t.model, t.budget, t.threshold) for t in listed] == [
        ("enc", "student", "enc", None, None), ("weak", "model", {"backend": "fake"}, 0.3, 0.7),
        ("qwen2.5-coder-1.5b", "model", "qwen2.5-coder-1.5b", None, None), ("mine", "model", "m", None, None),
        ("fake:strong", "model", {"backend": "fake", "name": "strong"}, None, None)]
    assert parse_tiers([{"kind": "other"}])[0].name == "model" and listed[3] is kept
    assert parse_tiers("openai:ft:gpt-4o-mini:acme")[0].model == {"backend": "openai", "name": "ft:gpt-4o-mini:acme"}  # a fine-tuned name
    for bad, said in [("a@0", r"\(0, 1\]"), ("a@1.01", r"\(0, 1\]"), (str(tmp_path / "none.yaml"), "no such model file"),
                      ("student,student", "only come first"), ([], "no tiers")]:
        with pytest.raises(ConfigError, match=said):
            parse_tiers(bad)
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a model mapping"):
        parse_tiers(str(tmp_path / "list.yml"))


def test_the_result_s_figures_and_sidecar_say_what_the_output_holds(tmp_path):
    """rows, seed rows, who seeded, target and delta as asked; accuracy and each tier's accuracy read back from the
    output file's own columns; the sidecar is the same figures; each row's confidence is the one its tier said."""
    rows, seed = _data(), _seed(7, 8, 9, 10)
    result = tiered_cascade(_freeal_config(), rows, tiers=_tiers(), seed=seed, target=0.97, delta=0.1, calibration_rows=60,
                            project=tmp_path / "p.db", output=tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    f = result.figures
    assert (f["rows"], f["seed_rows"], f["seeded_by"], f["target"], f["delta"]) == (len(rows), len(seed), None, 0.97, 0.1) and f["wall_s"] >= 0
    right = out["llm_label"] == out["label"]
    assert f["accuracy"] == round(float(right.mean()), 4)
    for st in result.tiers:
        mine = out["llm_label_source"] == st.name
        assert st.accuracy == (round(float(right[mine].mean()), 4) if mine.any() else None)
        assert st.share == round(mine.sum() / len(rows), 4) and st.rows == mine.sum()
    assert json.loads((tmp_path / "out.csv.cascade.json").read_text()) == json.loads(json.dumps(f, default=float))
    student_conf = result.routing["student"][1]
    kept = (out["llm_label_source"] == "student").to_numpy()
    assert out["llm_confidence"].astype(float).to_numpy()[kept] == pytest.approx(student_conf[kept])
    assert (out["llm_error"] == "").all()


def test_a_student_with_a_share_keeps_at_most_that_share_its_surest_rows(tmp_path):
    rows, seed = _data(), _seed(7, 8, 9, 10)
    tiers = [{"kind": "student", "name": "student", "budget": 0.2}, {"name": "strong", "model": STRONG}]
    result = tiered_cascade(_freeal_config(), rows, tiers=tiers, seed=seed, target=0.9, project=tmp_path / "p.db")
    student = result.tiers[0]
    cap = int(0.2 * len(rows))
    kept = (result.frame["llm_label_source"] == "student").to_numpy()
    conf = result.routing["student"][1]
    assert student.capped and student.rows == kept.sum() == cap and student.share == round(cap / len(rows), 4)
    assert conf[kept].min() >= np.nanmax(conf[~kept])  # its surest rows
    free = tiered_cascade(_freeal_config(), rows, tiers=["student", {"name": "strong", "model": STRONG}], seed=seed, target=0.9, project=tmp_path / "p.db")
    assert free.tiers[0].rows > cap and not free.tiers[0].capped  # without the share it keeps more


def test_llm_cascade_is_a_student_and_a_capped_model_tier_over_a_sample(monkeypatch):
    """`labelmill run --cascade`: a student, then the config's model capped at llm_share of the rows (rows over the
    cap keep the student's label), seeded by a sample of `sample` rows, and a strong model after it when given."""
    from labelmill.strategies.cascade import run as cascade

    asked = []
    monkeypatch.setattr(cascade, "tiered_cascade", lambda config, data, **kw: asked.append(kw) or kw)
    cascade.llm_cascade("cfg.yaml", [])
    cascade.llm_cascade("cfg.yaml", [], sample=50, llm_share=0.3, target=0.8, strong="qwen2.5-coder-1.5b", project="p.db")
    assert asked == [
        {"tiers": [cascade.Tier("student", "student"), cascade.Tier("llm", "model", None, budget=0.2, threshold=None, keep_over_cap=True)],
         "seed": None, "seed_sample": 200, "target": 0.9},
        {"tiers": [cascade.Tier("student", "student"), cascade.Tier("llm", "model", None, budget=0.3, threshold=0.6, keep_over_cap=True),
                   cascade.Tier("strong", "model", "qwen2.5-coder-1.5b")], "seed": None, "seed_sample": 50, "target": 0.8, "project": "p.db"}]


def test_the_seed_is_read_like_the_rows_filtered_to_the_labels_and_needs_thirty(tmp_path):
    """The seed file is read by the config's dataset section; a config with no gold column reads the seed's `label`;
    seed rows whose label is not one of the config's are dropped before the count; 30 are enough, 29 are not; a
    limit labels the first rows only; a task other than classification is refused."""
    seed = tmp_path / "seed.csv"
    good = _rows(3)[:30]
    body = "text|label\n" + "".join(f"{r['text']}|{r['label']}\n" for r in good) + "an odd one|neutral\n"
    seed.write_bytes(body.encode("utf-16"))
    cfg = {**_freeal_config(), "gold_column": None, "dataset": {"encoding": "utf-16", "delimiter": "|"}}
    data = tmp_path / "rows.csv"
    data.write_bytes(("text|label\n" + "".join(f"{r['text']}|{r['label']}\n" for r in _rows(1))).encode("utf-16"))
    result = tiered_cascade(cfg, data, tiers=["student", {"name": "strong", "model": STRONG}], seed=seed, limit=20, project=tmp_path / "p.db")
    assert result.figures["seed_rows"] == 30 and result.figures["rows"] == 20 and len(result.frame) == 20
    seed.write_bytes(("text|label\n" + "".join(f"{r['text']}|{r['label']}\n" for r in good[:29]) + "an odd one|neutral\n").encode("utf-16"))
    with pytest.raises(InputDataError, match="only 29 seed rows carry one of the config's labels"):
        tiered_cascade(cfg, _rows(1), tiers=["student", {"name": "strong", "model": STRONG}], seed=seed, project=tmp_path / "p.db")
    with pytest.raises(ConfigError, match="works on classification and temporal tasks"):
        tiered_cascade({**cfg, "task": "multilabel"}, _rows(1), tiers=["student"], seed=seed, project=tmp_path / "p.db")


def test_a_diverse_sample_is_the_medoid_of_each_cluster_and_a_random_one_is_seeded():
    from labelmill.strategies.cascade.run import _sample

    X = np.array([[0.1, 0], [0, 0], [0, 0.1], [5.2, 5.2], [5, 5], [5.05, 5.05]])
    # centres (0.033, 0.033) and (5.083, 5.083): the nearest points are rows 1 and 5 (squared distances 0.0022, 0.0022),
    # not the cluster's lowest point (row 4)
    assert _sample(X, 2, "diverse", 0).tolist() == [1, 5]
    assert _sample(X, 6, "diverse", 0).tolist() == [0, 1, 2, 3, 4, 5] and _sample(X, 9, "random", 0).tolist() == [0, 1, 2, 3, 4, 5]
    drawn = [_sample(X, 3, "random", s).tolist() for s in range(6)]
    assert all(len(set(d)) == 3 and d == sorted(d) for d in drawn) and drawn == [_sample(X, 3, "random", s).tolist() for s in range(6)]
    assert len({tuple(d) for d in drawn}) > 1 and [1, 5] not in [_sample(X, 2, "random", s).tolist() for s in range(3)]


def test_a_model_tier_s_failed_rows_carry_no_label_no_confidence_and_their_error(tmp_path):
    from labelmill.config import load_config
    from labelmill.core import Job
    from labelmill.strategies.cascade.run import _label

    frame = pd.DataFrame(_rows(1)[:4])
    names = ["positive", "negative"]
    job = Job(load_config(_freeal_config()))
    events = []
    with Store(tmp_path / "p.db") as store:
        got = _label(job, store, frame, np.array([2, 0]), names, events.append)
    assert [e.total for e in events if isinstance(e, RunStarted)] == [2]  # the tier's run reports as any run
    assert sorted(got) == [0, 1] and [got[j][0] for j in (0, 1)] == [frame["label"][2], frame["label"][0]]
    assert all(0.5 < got[j][1] <= 1.0 and got[j][2] == "" for j in (0, 1))
    garbage = Job(load_config(fake_config(model={"method": "generate", "params": {"garbage_every": 1}})))
    with Store(tmp_path / "q.db") as store:
        failed = _label(garbage, store, frame, np.array([1, 3]), names, lambda e: None)
    assert failed == {0: (None, 0.0, "no_label"), 1: (None, 0.0, "no_label")}
