"""FreeAL, the student and the cascade: the numeric parts on synthetic data, the loops end to end on the fake
keyword model (through the backend registry) with real all-MiniLM-L6-v2 embeddings, scikit-learn and cleanlab."""

from __future__ import annotations

import json
import random
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import child_env, cli_command, fake_config

from labelmill.strategies.cascade.run import llm_cascade
from labelmill.strategies.freeal.run import (
    batch_calibrate,
    clean_posterior,
    demo_pool,
    freeal,
    rank_label_issues,
)
from labelmill.store.db import Store
from labelmill.strategies.students.models import LinearStudent, out_of_fold


def _blobs(n_per: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 5
    X = np.concatenate([c + rng.normal(size=(n_per, 8)) for c in centres])
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.repeat(np.arange(3), n_per)


def test_clean_posterior_separates_small_from_large_losses_and_is_monotone():
    rng = np.random.default_rng(0)
    losses = np.concatenate([rng.gamma(2.0, 0.05, 300), rng.normal(2.5, 0.5, 60).clip(0.5)])
    post = clean_posterior(losses)
    assert post[:300].mean() > 0.95 and post[300:].mean() < 0.1
    order = np.argsort(losses)
    assert np.all(np.diff(post[order]) <= 1e-12)  # a smaller loss is never less clean


def test_out_of_fold_student_and_label_issues_find_flipped_labels():
    X, y = _blobs()
    noisy = y.copy()
    flipped = np.array([3, 70, 150, 11, 99])
    noisy[flipped] = (noisy[flipped] + 1) % 3
    oof = out_of_fold(X, noisy, 3)
    assert oof.shape == (180, 3) and np.allclose(oof.sum(axis=1), 1)
    assert (oof.argmax(axis=1) == y).mean() > 0.95  # learned through the noise
    ranked = rank_label_issues(noisy, oof)  # confident learning: precise, may miss a borderline flip
    assert len(set(ranked) & set(flipped)) >= 4 and len(set(ranked) - set(flipped)) <= 1
    assert set(ranked[:3]) <= set(flipped)
    # a label the student never saw still gets a (small) probability column
    probs = LinearStudent(4).fit(X, y).predict_proba(X)
    assert probs.shape == (180, 4) and probs[:, 3].max() < 0.01


def test_a_warm_started_student_reaches_the_cold_fit_s_optimum_in_fewer_steps():
    X, y = _blobs()
    rng = np.random.default_rng(3)
    X = np.hstack([X, rng.normal(size=(180, 56)) * 0.3])
    cold = LinearStudent(3, C=10.0).fit(X, y)
    part = np.arange(180) % 5 != 0
    start = LinearStudent(3, C=10.0).fit(X[part], y[part])
    warm = LinearStudent(3, C=10.0).fit(X, y, start=start)
    assert np.abs(warm.predict_proba(X) - cold.predict_proba(X)).max() < 0.02
    assert warm._model.n_iter_[0] < cold._model.n_iter_[0]
    # a start that saw other labels is ignored, not an error
    other = LinearStudent(4).fit(X[:120], y[:120])
    assert np.allclose(LinearStudent(3, C=10.0).fit(X, y, start=other).predict_proba(X), cold.predict_proba(X))


def test_demo_pool_takes_medoids_of_clean_rows_per_label():
    X, y = _blobs()
    loss = np.random.default_rng(1).random(180)
    clean = np.ones(180, dtype=bool)
    clean[60:120] = False  # label 1 has no clean row: no demo of it
    pool = demo_pool(X, y, clean, loss, 3, per_label=5)
    assert len(pool) == 10
    assert all(clean[i] for i in pool)
    assert sorted({int(y[i]) for i in pool}) == [0, 2]


def test_batch_calibration_removes_a_constant_label_bias():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    logits = np.where(gold[:, None] == np.arange(2), 2.0, 0.0) + rng.normal(scale=0.6, size=(400, 2)) + np.array([0.0, 2.0])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert (probs.argmax(axis=1) == gold).mean() < 0.8  # the bias pushes many label-0 rows to label 1
    assert (batch_calibrate(probs).argmax(axis=1) == gold).mean() > 0.9


# the loops on the fake keyword model ------------------------------------------------------------------
def test_freeal_says_when_batch_calibration_moves_many_labels():
    """Batch calibration assumes balanced labels: on data where one label is common and the model is unsure
    of the rest, it moves those rows to the rare label; round 0 counts them and a notice names --no-debias."""
    rows = [{"text": f"a good day number {i}", "label": "positive"} for i in range(30)]
    rows += [{"text": f"an office memo number {i}", "label": "positive"} for i in range(12)]  # no keyword: a near tie
    notices: list[str] = []
    result = freeal(fake_config(), rows, rounds=0, project=":memory:", debias=True, on_event=lambda e: notices.append(getattr(e, "message", "")))
    assert result.rounds[0].changed == 12 and result.rounds[0].batch_calibrated
    assert (result.frame["llm_label"] == "negative").sum() == 12
    warning = [m for m in notices if "batch calibration changed 12 of 42" in m]
    assert warning and "--no-debias" in warning[0] and "negative 0% -> 29%" in warning[0]
    notices.clear()
    plain = freeal(fake_config(), rows, rounds=0, project=":memory:", debias=False, on_event=lambda e: notices.append(getattr(e, "message", "")))
    assert plain.rounds[0].changed == 0 and (plain.frame["llm_label"] == "positive").all()
    assert not any("batch calibration changed" in m for m in notices)
    # by default two labels are left as they are (one is often rare), and the run says so
    default = freeal(fake_config(), rows, rounds=0, project=":memory:", on_event=lambda e: notices.append(getattr(e, "message", "")))
    assert default.rounds[0].changed == 0 and not default.rounds[0].batch_calibrated
    assert any("two labels, so no batch calibration" in m for m in notices)
    # three labels or more: batch calibration is on by default, and gives what debias=True gives
    three = fake_config(labels=["positive", "negative", "neutral"])
    three["model"]["params"]["keywords"]["neutral"] = ["memo"]
    biased = [{"text": f"a good memo number {i}", "label": "neutral"} for i in range(14)] + rows
    default3 = freeal(three, biased, rounds=0, project=":memory:")
    forced3 = freeal(three, biased, rounds=0, project=":memory:", debias=True)
    assert default3.rounds[0].batch_calibrated and default3.rounds[0].changed == forced3.rounds[0].changed > 0
    assert default3.frame["llm_label"].tolist() == forced3.frame["llm_label"].tolist()


SUNNY = ["sunny beach", "garden picnic", "summer holiday", "bright sunshine", "warm seaside", "flower garden", "sunny terrace", "beach picnic"]
RAINY = ["rainy traffic", "flooded road", "long queue", "cancelled train", "cold drizzle", "traffic jam", "rainy commute", "delayed bus"]


def _rows(seed: int = 0) -> list[dict]:
    """Keyword rows the fake model gets right; rows without a keyword it answers 'positive' for (a tie), wrong for the rainy ones."""
    rnd = random.Random(seed)
    rows = []
    for i in range(24):
        rows.append({"text": f"{rnd.choice(SUNNY)} and a {rnd.choice(['good', 'great', 'fun'])} {rnd.choice(SUNNY)} day {i}", "label": "positive"})
        rows.append({"text": f"{rnd.choice(RAINY)} and a {rnd.choice(['bad', 'dull', 'boring'])} {rnd.choice(RAINY)} morning {i}", "label": "negative"})
    for i in range(10):
        rows.append({"text": f"{rnd.choice(RAINY)}, {rnd.choice(RAINY)} again, morning {i}", "label": "negative"})
        rows.append({"text": f"{rnd.choice(SUNNY)}, {rnd.choice(SUNNY)} again, day {i}", "label": "positive"})
    rnd.shuffle(rows)
    return rows


def _freeal_config(**model_params) -> dict:
    cfg = fake_config()
    cfg["model"]["params"] = {**cfg["model"]["params"], "follow_demos": True, **model_params}
    return cfg


def test_freeal_relabels_the_noisy_rows_with_demos_from_its_own_labels(tmp_path):
    rows = _rows()
    project = tmp_path / "p.db"
    result = freeal(_freeal_config(), rows, rounds=2, project=project, output=tmp_path / "out.csv")
    first, last = result.rounds[0], result.rounds[-1]
    assert first.accuracy == pytest.approx(1 - 10 / len(rows))  # the rainy rows without a keyword are wrong
    assert last.accuracy > first.accuracy + 0.1
    assert sum(r.changed for r in result.rounds) >= 6
    out = pd.read_csv(tmp_path / "out.csv")
    assert {"llm_label", "llm_confidence", "llm_round", "student_label", "student_confidence", "label_issue_rank"} <= set(out.columns)
    # a row's llm_round is the round whose run gave its final label: the last round's relabeled rows all
    # keep its label, an earlier round keeps at most the rows it relabeled
    assert (out["llm_round"] == last.round).sum() == last.relabeled > 0
    assert all((out["llm_round"] == r.round).sum() <= r.relabeled for r in result.rounds[1:])
    with Store(project) as store:
        saved = store.db.execute("SELECT round, stats FROM freeal_rounds ORDER BY round").fetchall()
        assert [r for r, _ in saved] == [r.round for r in result.rounds]
        # every relabeled row's label is an annotation of the round's run, with its prompt's provenance
        run_ids = json.loads(saved[1][1])["run_ids"]
        assert run_ids and all(store.db.execute("SELECT COUNT(*) FROM annotations WHERE run_id = ?", (i,)).fetchone()[0] > 0 for i in run_ids)
        config = json.loads(store.db.execute("SELECT config FROM runs WHERE id = ?", (run_ids[0],)).fetchone()[0])
    demos = config["examples"]["items"]
    assert demos and all("__freeal_label" in d for d in demos)
    # the demos carry the LLM's labels of other rows, never the gold column: scrambling gold changes nothing
    scrambled = [{**r, "label": "negative" if r["label"] == "positive" else "positive"} for r in rows]
    again = freeal(_freeal_config(), scrambled, rounds=2, project=tmp_path / "q.db")
    assert again.frame["llm_label"].tolist() == result.frame["llm_label"].tolist()
    assert again.rounds[-1].accuracy == pytest.approx(1 - last.accuracy)


def test_cascade_with_no_labeled_rows_sends_only_unsure_rows_to_the_llm(tmp_path):
    rows = _rows(1) + _rows(2) + _rows(3)
    log = tmp_path / "calls.log"
    cfg = _freeal_config(call_log=str(log))
    result = llm_cascade(cfg, rows, sample=60, llm_share=0.5, target=0.8, project=tmp_path / "p.db", output=tmp_path / "out.csv")
    f, n = result.figures, len(rows)
    assert f["seeded_by"] == "llm" and f["seed_rows"] == 60  # the LLM's labels on its 60-row sample are the seed
    out = pd.read_csv(tmp_path / "out.csv")
    source = out["llm_label_source"]
    llm_rows = int((source == "llm").sum())
    assert 60 <= llm_rows <= 0.5 * n and set(source) <= {"llm", "student", "student (over budget)"} and (source == "student").any()
    assert out["llm_label"].notna().all()
    # the sample is asked once: the seed and the LLM's tier share the store's cache (identical prompts once too)
    assert len(log.read_text().splitlines()) <= llm_rows
    student = out[source == "student"]
    assert (student["llm_label"] == student["label"]).mean() > 0.8
    # rerun: every LLM row comes from the store's cache
    log.write_text("")
    again = llm_cascade(cfg, rows, sample=60, llm_share=0.5, target=0.8, project=tmp_path / "p.db")
    assert log.read_text() == "" and again.frame["llm_label"].tolist() == result.frame["llm_label"].tolist()


def test_cli_freeal_and_cascade(tmp_path):
    data = tmp_path / "rows.csv"
    pd.DataFrame(_rows()).to_csv(data, index=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_freeal_config()))
    done = subprocess.run(cli_command("freeal", str(config), str(data), "--out", str(tmp_path / "f.csv"), "--rounds", "1", "--project", str(tmp_path / "p.db")),
                          check=False, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "FreeAL rounds" in done.stdout and "label_issue_rank" in done.stdout
    # the CLI hands the strategy's command its progress renderer: the runs and the loop's notices reach stderr
    assert "labeling run" in done.stderr and "note: freeal: embedding the rows for the student" in done.stderr
    done = subprocess.run(cli_command("eval", str(config), str(tmp_path / "f.csv"), "--json"), check=False, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    labeled = pd.read_csv(tmp_path / "f.csv")
    assert [r["round"] for r in metrics["freeal_rounds"]] == [0, 1]
    assert metrics["student_accuracy"] == pytest.approx((labeled["student_label"] == labeled["label"]).mean())
    assert "FreeAL rounds" in (tmp_path / "f.report.html").read_text()
    done = subprocess.run(cli_command("run", str(config), str(data), "--out", str(tmp_path / "c.csv"), "--cascade", "--cascade-sample", "30", "--json", "--project", str(tmp_path / "p.db")),
                          check=False, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["seed_rows"] == 30 and figures["seeded_by"] == "llm" and figures["rows"] == 68
    rows_by_tier = {t["name"]: t["rows"] for t in figures["tiers"]}
    done = subprocess.run(cli_command("eval", str(config), str(tmp_path / "c.csv"), "--json"), check=False, capture_output=True, text=True, env=child_env(), timeout=300)
    metrics = json.loads(done.stdout)
    assert metrics["by_source"]["llm"]["rows"] == rows_by_tier["llm"] >= 30
    assert sum(v["rows"] for v in metrics["by_source"].values()) == 68
    assert [t["name"] for t in metrics["cascade_tiers"]] == ["student", "llm"]
    bad = subprocess.run(cli_command("run", str(config), str(data), "--out", str(tmp_path / "c.csv"), "--cascade", "--cascade-sample", "30", "--limit", "15"),
                         check=False, capture_output=True, text=True, env=child_env(), timeout=300)
    assert bad.returncode != 0 and "sample" in bad.stderr and "Traceback" not in bad.stderr


def test_freeal_with_a_fine_tuned_student(tmp_path):
    rows = _rows()
    result = freeal(_freeal_config(), rows, rounds=1, project=tmp_path / "p.db", student="finetune", finetune_epochs=4)
    agree = (result.frame["student_label"] == result.frame["llm_label"]).mean()
    assert agree > 0.8  # the fine-tuned encoder learned the loop's labels
    assert result.frame["student_confidence"].between(0, 1).all()


def test_cascade_sends_rows_the_llm_is_unsure_of_to_a_strong_model(tmp_path):
    rows = _rows(4) + _rows(5)
    strong = {"name": "strong-keywords", "params": {"keywords": {
        "positive": ["good", "great", "fun", "sunny", "beach", "garden", "summer", "bright", "warm", "flower"],
        "negative": ["bad", "dull", "boring", "rainy", "flooded", "queue", "cancelled", "cold", "traffic", "delayed"]}}}
    result = llm_cascade(_freeal_config(), rows, sample=40, llm_share=1.0, target=1.0, strong=strong, strong_threshold=0.6, project=tmp_path / "p.db")
    source = result.frame["llm_label_source"]
    assert set(source) == {"llm", "strong"}  # at target 1.0 the student keeps nothing; the keyword-less rows are ties for the weak model
    strong_rows = result.frame[source == "strong"]
    assert (strong_rows["llm_label"] == strong_rows["label"]).all()  # the strong model knows these words
    assert result.figures["accuracy"] == 1.0


def test_round_zero_with_demos_the_llm_wrote(tmp_path):
    # no examples in the config: the fake "writes" one demo per label and request; with them the
    # keyword-less rainy rows follow the rainy demo in round 0 already
    replies = [['example 1: .*label is "negative"', "I'm sorry, but as an AI language model I cannot write that."],
               ['label is "negative"', "rainy traffic, flooded road, cancelled train, traffic jam, cold drizzle"],
               ['label is "positive"', "sunny beach, garden picnic, flower garden, warm seaside"]]
    rows = _rows()
    plain = freeal(_freeal_config(), rows, rounds=0, project=tmp_path / "a.db")
    result = freeal(_freeal_config(replies=replies), rows, rounds=0, project=tmp_path / "p.db", generate_demos=2)
    assert plain.rounds[0].accuracy == pytest.approx(1 - 10 / len(rows))
    assert result.rounds[0].accuracy > plain.rounds[0].accuracy + 0.1
    with Store(tmp_path / "p.db") as store:
        kinds = dict(store.db.execute("SELECT kind, COUNT(*) FROM cache GROUP BY kind").fetchall())
        config = json.loads(store.runs()[0]["config"])
    assert kinds["generate_demo"] == 4  # 2 per label
    demos = config["examples"]["items"]
    assert [d["__freeal_label"] for d in demos] == ["positive", "positive", "negative"]  # the refusal is dropped
    assert set(demos[0]) == {"text", "__freeal_label"}  # the demo row holds its text and the LLM's label, nothing else
    with pytest.raises(Exception, match="one column"):
        cfg = _freeal_config(replies=replies)
        cfg["input_template"] = "{text} / {label}"
        freeal(cfg, rows, rounds=0, project=tmp_path / "b.db", generate_demos=1)


def test_cascade_routes_exactly_the_least_confident_rows_tier_by_tier(tmp_path):
    """Tier 1: the rows the LLM labels besides its sample are exactly the least confident of the student's
    rows below its threshold, as many as llm_share allows. Tier 2: the rows the strong model labels are exactly
    the LLM's rows whose confidence is below strong_threshold; the strong model is asked about no other row.
    How many rows fall under the threshold moves with the encoder's numbers (float32, bfloat16, numpy), so a
    first run with no cap finds them and the second gives the LLM room for half of them: always a real choice."""
    rows = _rows(4) + _rows(5) + _rows(6)
    n = len(rows)

    def cascade(share: float, name: str):
        strong = {"name": "strong-keywords", "params": {"call_log": str(tmp_path / f"{name}.log"), "keywords": {
            "positive": ["good", "great", "fun", "sunny"], "negative": ["bad", "dull", "boring", "rainy"]}}}
        return llm_cascade(_freeal_config(), rows, sample=60, llm_share=share, target=0.8, strong=strong, strong_threshold=0.6,
                           project=tmp_path / f"{name}.db")

    uncapped = cascade(1.0, "uncapped")
    under = np.flatnonzero(uncapped.frame["llm_label_source"].to_numpy() != "student")
    places = (len(under) - 60) // 2
    assert places >= 1  # at least two rows under the threshold besides the sample
    result = cascade((60 + places + 0.5) / n, "capped")
    strong_log = tmp_path / "capped.log"
    source = result.frame["llm_label_source"].to_numpy()
    conf = result.routing["student"][1]
    sample = np.flatnonzero(np.isnan(conf))  # the student leaves the LLM's seed sample to it
    assert len(sample) == 60 and set(source[sample]) <= {"llm", "strong"}
    rest = np.setdiff1d(np.arange(n), sample)
    threshold = result.tiers[0].threshold
    assert threshold is not None and threshold == uncapped.tiers[0].threshold
    assert (source[rest[conf[rest] >= threshold]] == "student").all()
    below = rest[conf[rest] < threshold]
    routed = np.array([i for i in below if source[i] in ("llm", "strong")])
    over = np.array([i for i in below if source[i] == "student (over budget)"])
    assert len(routed) == places and len(over) == len(below) - places >= 1  # the cap bites: a real choice
    assert conf[routed].max() <= conf[over].min()  # no row left to the student was less sure than a routed one
    # tier 2: exactly the LLM rows under the strong threshold, and the strong model saw only those
    llm_conf = result.routing["llm"][1]
    asked = np.flatnonzero(~np.isnan(llm_conf))
    assert set(asked.tolist()) == set(sample.tolist()) | set(routed.tolist())
    weak = {int(i) for i in asked if llm_conf[i] < 0.6}
    assert {int(i) for i in np.flatnonzero(source == "strong")} == weak and weak
    assert len(strong_log.read_text().splitlines()) == len(weak)
