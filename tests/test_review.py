"""review: agreement figures, the review log, the router and the loop, the session API, the web app's
security (through FastAPI's test client, the real app) and the exports' round trips. The model is the fake
keyword backend, which goes through the same backend registry as llama.cpp."""

from __future__ import annotations

import csv
import json
import random
import re
import html
from pathlib import Path

import numpy as np
import pytest

from labelmill.numeric.agreement import agreement, cohen_kappa, fleiss_kappa, krippendorff_alpha
from labelmill.strategies.review.routing import Router, StudentData, combine, fit_combination
from labelmill.strategies.review.run import Budget, ReviewOptions, ReviewSession
from conftest import label_studio_errors

ROOT = Path(__file__).resolve().parents[1]


# agreement ------------------------------------------------------------------------------------------
def test_cohen_kappa_on_no_items_and_on_a_label_one_rater_never_gives():
    from sklearn.metrics import cohen_kappa_score

    assert cohen_kappa([], []) is None
    a, b = ["x", "y", "z", "x", "y"], ["x", "y", "y", "x", "x"]  # 'z' only in a
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa(["x"], [])


def test_cohen_kappa_matches_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(0)
    a = [rng.choice("xyz") for _ in range(200)]
    b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert cohen_kappa(["p", "p"], ["p", "p"]) == 1.0


def test_fleiss_kappa_on_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[c for c, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=5e-4)


def test_krippendorff_alpha_on_the_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example with missing values: 0.743
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=1e-3)


def test_agreement_summary_per_pair():
    ratings = {0: {"a": "x", "b": "x"}, 1: {"a": "y", "b": "x"}, 2: {"a": "y", "b": "y", "c": "y"}, 3: {"a": "x"}}
    out = agreement(ratings)
    assert out["items_with_overlap"] == 3
    assert out["full_agreement"] == pytest.approx(2 / 3)
    assert {tuple(p["annotators"]) for p in out["cohen"]} == {("a", "b"), ("a", "c"), ("b", "c")}


# the router -----------------------------------------------------------------------------------------
def good_and_noise(seed: int, n: int, k: int, right: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold labels, a source that gives the gold label `right` (0.1 to each other), and a random one."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, n)
    good = np.full((n, k), 0.1)
    good[np.arange(n), gold] = right
    return gold, good, rng.dirichlet(np.ones(k), n)


def test_combination_learns_which_source_to_trust():
    gold, good, noise = good_and_noise(0, 400, 3, 0.8)
    theta = fit_combination([noise, good], gold)
    assert theta[1] > theta[0] + 1.0
    assert (combine([noise, good], theta).argmax(1) == gold).mean() > 0.95


def test_a_combination_started_from_another_fit_reaches_the_same_optimum():
    k = 4
    gold, good, noise = good_and_noise(2, 300, k, 0.7)
    cold = fit_combination([noise, good], gold)
    warm = fit_combination([noise, good], gold, start=np.array([3.0, 0.2, 1.0, -1.0, 0.5, 0.0]))
    assert np.allclose(warm, cold, atol=2e-3)
    assert not np.allclose(cold, np.concatenate([np.ones(2), np.zeros(k)]), atol=0.1)  # the optimum is not the default start


def test_the_held_out_fits_give_the_same_answers_two_at_a_time_as_one_by_one(monkeypatch):
    """Big student fits (many labels) run two at a time on threads; the loop's numbers must not change with it."""
    from labelmill.strategies.review import routing

    rng = np.random.default_rng(3)
    names = [f"l{j}" for j in range(6)]
    X = rng.normal(size=(120, 12))
    y = X[:, :6].argmax(axis=1)
    probs = rng.dirichlet(np.ones(6), 120)
    reviewed = {int(i): names[y[i]] for i in range(0, 120, 3)}
    audit = [int(i) for i in range(0, 120, 9)]
    answers = []
    for threshold in (0, 10**12):  # everything on threads, then nothing
        monkeypatch.setattr(routing, "PARALLEL_FITS_ABOVE", threshold)
        router = Router(names, [names[j] for j in probs.argmax(1)], probs.max(1), probs, StudentData(embeddings=X))
        answers.append(router.route(reviewed, audit=audit))
    threaded, serial = answers
    assert threaded.labels == serial.labels and np.allclose(threaded.confidence, serial.confidence)
    assert threaded.estimate == pytest.approx(serial.estimate)


def test_a_row_weighted_zero_counts_for_nothing_in_the_combination():
    rng = np.random.default_rng(1)
    n, k = 300, 2
    gold = rng.integers(0, k, n)
    llm = np.where(np.eye(k)[gold] > 0, 0.7, 0.3)
    flipped = 1 - gold  # the second half of the rows: gold says the opposite (the hard rows a queue picks)
    both = np.concatenate([gold[:150], flipped[150:]])
    weight = np.concatenate([np.ones(150), np.zeros(150)])
    assert np.allclose(fit_combination([llm], both, weight=weight), fit_combination([llm[:150]], gold[:150]), atol=1e-4)
    assert not np.allclose(fit_combination([llm], both), fit_combination([llm[:150]], gold[:150]), atol=1e-2)


def test_with_no_examples_the_student_learns_the_llm_s_surest_labels_first():
    """Per label, the more confident half of the rows the LLM gave it: the student's prior before any review."""
    names = ["a", "b"]
    sure = np.array([0.99, 0.95, 0.7, 0.6, 0.98, 0.9, 0.8, 0.55, 0.51, 0.52])
    said = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # the LLM says a four times, b six times
    probs = np.where(np.eye(2)[said] > 0, sure[:, None], 1 - sure[:, None])
    X = np.random.default_rng(0).normal(size=(10, 8))
    router = Router(names, [names[i] for i in said], sure, probs, StudentData(embeddings=X))
    assert router.prior_rows.tolist() == [0, 1, 4, 5, 6]  # a: 0.99, 0.95 of four; b: 0.98, 0.9, 0.8 of six
    assert Router(names, [names[i] for i in said], sure, probs, StudentData(embeddings=X), prior=None).prior_rows.tolist() == []
    x, y, w = router._pool(np.array([1]))
    assert y.tolist() == [0, 1, 1, 1] and np.allclose(w, 0.5)  # a reviewed row leaves the prior


def test_a_self_prior_turns_from_the_llm_s_surest_labels_to_the_student_s_own_once_it_learned_from_reviews():
    """Two clusters; the LLM says "a" for every row, the reviews say the second cluster is "b". Before any fit the
    "self" prior is the LLM's (only "a"); after a fit on the reviews it is the student's own surest labels, rows
    of both clusters each with its cluster's label, and a reviewed row never in it."""
    rng = np.random.default_rng(0)
    names = ["a", "b"]
    X = np.vstack([rng.normal([3, 0], 0.3, (20, 2)), rng.normal([-3, 0], 0.3, (20, 2))])
    sure = np.linspace(0.9, 0.6, 40)  # the LLM is surer of the first cluster's rows: its prior is theirs, all "a"
    probs = np.stack([sure, 1 - sure], axis=1)
    router = Router(names, ["a"] * 40, sure, probs, StudentData(embeddings=X), prior="self")
    _, before, _ = router._pool(np.arange(0))
    assert set(before.tolist()) == {0}
    reviewed, gold = np.array([0, 1, 2, 3, 4, 20, 21, 22, 23, 24]), np.array([0] * 5 + [1] * 5)  # ten: the student fits
    router._student(reviewed, gold)
    x, y, w = router._pool(reviewed)
    cluster_b = x[:, 0] < 0
    assert y.tolist() == cluster_b.astype(int).tolist() and 0 < cluster_b.sum() < len(y)  # each cluster's own label
    assert not any((X[reviewed][:, None] == x[None]).all(axis=2).any(axis=1)) and np.allclose(w, 0.5)
    llm_prior = Router(names, ["a"] * 40, sure, probs, StudentData(embeddings=X))
    llm_prior._student(reviewed, gold)
    assert set(llm_prior._pool(reviewed)[1].tolist()) == {0}  # the default keeps the LLM's


def test_an_auto_prior_learns_the_student_s_own_labels_only_while_it_beats_the_llm_on_the_audit_rows():
    rng = np.random.default_rng(0)
    names = ["a", "b"]
    X = np.vstack([rng.normal([3, 0], 0.3, (20, 2)), rng.normal([-3, 0], 0.3, (20, 2))])
    truth = np.array([0] * 20 + [1] * 20)
    reviewed = np.concatenate([np.arange(10), np.arange(20, 35)])
    audit = [5, 6, 7, 8, 9, 30, 31, 32, 33, 34]  # five rows of each cluster
    sure = np.linspace(0.9, 0.6, 40)
    says_a = np.stack([sure, 1 - sure], axis=1)  # the LLM says "a" everywhere: right on half the audit rows
    router = Router(names, ["a"] * 40, sure, says_a, StudentData(embeddings=X), prior="auto")
    router._student(reviewed, truth[reviewed], audit=audit)  # the student's audit answers: all ten right
    assert router._own_probs is not None and set(router._pool(reviewed)[1].tolist()) == {0, 1}
    right = np.where(np.eye(2)[truth] > 0, 0.8, 0.2)  # an LLM right on every row: as good as the student, so it stays the teacher
    router = Router(names, [names[i] for i in truth], right.max(1), right, StudentData(embeddings=X), prior="auto")
    router._student(reviewed, truth[reviewed], audit=audit)
    assert router._own_probs is None
    too_few = Router(names, ["a"] * 40, sure, says_a, StudentData(embeddings=X), prior="auto")
    too_few._student(reviewed, truth[reviewed], audit=audit[:9])  # nine audit rows: not yet a judgement
    assert too_few._own_probs is None


def test_an_audit_row_is_judged_by_a_student_that_saw_every_other_review():
    """Ten labels, each reviewed once by the queue and once by the audit, the two rows of a label close together.
    A student that saw every review but the audit rows knows every label, so it gets each audit row right; the
    5-fold answers miss the labels whose queue row fell in the audit row's fold (a fifth of the reviews left out)."""
    rng = np.random.default_rng(0)
    names = list("abcdefghij")
    centres = np.eye(10, 16) * 5
    X = np.vstack([centres + rng.normal(scale=0.1, size=(10, 16)), centres + rng.normal(scale=0.1, size=(10, 16))])  # 0-9 queue, 10-19 audit
    probs = np.full((20, 10), 1 / 10)
    router = Router(names, ["a"] * 20, probs.max(1), probs, StudentData(embeddings=X), prior=None)
    rows = np.arange(20)
    gold = np.concatenate([np.arange(10), np.arange(10)])
    _, held, _ = router._student(rows, gold, audit=list(range(10, 20)))
    assert held[10:].argmax(axis=1).tolist() == list(range(10))
    _, folded, _ = router._student(rows, gold)
    assert folded[10:].argmax(axis=1).tolist() != list(range(10))  # the 5-fold answers alone miss some


def test_router_queue_estimate_and_trusted_rows():
    names = ["a", "b"]
    probs = np.array([[0.99, 0.01], [0.6, 0.4], [0.52, 0.48], [0.1, 0.9], [0.97, 0.03]])
    labels = [names[i] for i in probs.argmax(1)]
    router = Router(names, labels, probs.max(1), probs, trust_threshold=0.95, student=False)
    routed = router.route({})
    assert routed.queue() == [2, 1, 3]  # least confident first; rows 0 and 4 are trusted and never queued
    assert routed.trusted.tolist() == [True, False, False, False, True]
    assert routed.estimate["estimated_accuracy"] == pytest.approx(probs.max(1).mean())
    after = router.route({2: "b"})
    assert after.labels[2] == "b" and after.confidence[2] == 1.0 and 2 not in after.queue()
    assert after.estimate["estimated_accuracy"] > routed.estimate["estimated_accuracy"]
    assert after.estimate["lower_bound"] <= after.estimate["estimated_accuracy"]


def test_a_big_refit_fits_the_combination_on_a_sample_with_every_audit_row(monkeypatch):
    """Past FIT_MAX_ROWS reviewed rows the combination is fitted on a sample of them that holds every audit
    row (the estimate's unbiased part); the labels and the queue still come from every reviewed row."""
    from labelmill.strategies.review import routing

    rng = np.random.default_rng(0)
    names, n = ["a", "b"], 400
    truth = rng.integers(0, 2, n)
    probs = np.clip(np.eye(2)[truth] * 0.5 + rng.uniform(0.1, 0.4, (n, 2)), 0.01, None)
    probs /= probs.sum(1, keepdims=True)
    reviewed = {i: names[truth[i]] for i in range(300)}
    audit = list(range(0, 300, 7))  # 43 audit rows
    router = Router(names, [names[j] for j in probs.argmax(1)], probs.max(1), probs, student=False)
    whole = router.route(reviewed, audit=audit)
    monkeypatch.setattr(routing, "FIT_MAX_ROWS", 100)
    sampled = router.route(reviewed, audit=audit)
    assert sampled.fit["fit_sample"] == 100 and "fit_sample" not in whole.fit
    assert sampled.estimate["audit_rows"] == whole.estimate["audit_rows"] == 43  # every audit row judged out of fold
    assert [sampled.labels[i] for i in range(300)] == [names[truth[i]] for i in range(300)]
    assert sampled.fit["weights"] != whole.fit["weights"]  # fitted on other rows
    kept = routing._fit_sample(np.arange(10, 310), audit, 100, 0)
    assert set((np.asarray(audit)[np.asarray(audit) >= 10] - 10).tolist()) <= set(kept.tolist()) and len(kept) == 100
    assert kept.tolist() == sorted(kept.tolist())


def test_budget_parsing():
    assert Budget.parse("200").rows_allowed(1000) == 200
    assert Budget.parse("15%").rows_allowed(1000) == 150
    assert Budget.parse("0.2").rows_allowed(1000) == 200
    assert Budget.parse("30m").seconds == 1800
    with pytest.raises(Exception, match="budget"):
        Budget.parse("lots")


# sessions over a fake model -------------------------------------------------------------------------------
def write_rows(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = {"good": "positive", "great": "positive", "fine": "positive", "bad": "negative", "awful": "negative", "meh": "negative"}
    rows = []
    for i in range(n):
        w = rng.choice(sorted(words))
        rows.append({"text": f"row {i}: a {w} film", "label": words[w]})
    rows[3]["text"] = "<script>alert(1)</script> bad"
    rows[4]["text"] = '<img src=x onerror="alert(2)"> good'
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


CONFIG = {
    "task": "classification", "name": "review-test", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
    "input_template": "{text}", "gold_column": "label", "examples": {"k": 0},
    "model": {"backend": "fake", "params": {"keywords": {"positive": ["good", "great"], "negative": ["bad", "awful"]}}},
}

# the same fake model, which also follows its demos: a row takes the label of the demo sharing most words with it
FOLLOWS = {**CONFIG, "model": {"backend": "fake", "params": {"keywords": CONFIG["model"]["params"]["keywords"], "follow_demos": True}}}


def reviewed_session(config: dict, data: Path, project: Path, reviews: int, **knobs) -> tuple[ReviewSession, list[str]]:
    """A session (no student, no refits, no stop at the target) with its first `reviews` rows reviewed by the gold column."""
    s = ReviewSession.open(config, data, project=project, student=False, batch=100, stop_at_target=False, **knobs)
    gold = s.frame["label"].astype(str).tolist()
    for i in range(reviews):
        s.submit("ana", i, gold[i])
    return s, gold


@pytest.fixture
def session(tmp_path):
    data = write_rows(tmp_path / "rows.csv")
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, batch=5)
    yield s
    s.close()


def test_simulated_reviewer_fixes_labels_and_every_decision_is_logged(session, tmp_path):
    gold = session.frame["label"].astype(str).tolist()
    start = session.status()
    assert start["in_queue"] == 60 and start["reviewed"] == 0
    done = session.simulate(lambda i: gold[i], reviews=20)
    assert done == 20
    status = session.status()
    assert status["reviewed"] == 20 and status["refits"] >= 4
    final = session.routing.labels
    assert all(final[i] == gold[i] for i in session.reviewed())
    reviews = session.log.all()
    assert len(reviews) == 20 and all(r.annotator == "simulated" and r.kind == "simulated" for r in reviews)
    # every other review is a random audit row (flagged in the log); the fake model cannot tell
    # 'fine'/'meh' rows: they are tied, so the queue gave them in between
    assert [r.audit for r in reviews] == [1, 0] * 10
    first = [r.row_index for r in reviews[:20] if not r.audit]
    assert all(("fine" in session.texts[i] or "meh" in session.texts[i]) for i in first)
    assert session.log.audit_rows() == [r.row_index for r in reviews if r.audit]
    # reopening the project (a killed server) finds every review
    session.close()
    again = ReviewSession.open(CONFIG, tmp_path / "rows.csv", project=tmp_path / "p.db", student=False)
    assert again.status()["reviewed"] == 20
    assert again.reviewed() == {r.row_index: r.label for r in reviews}
    again.close()


def test_audit_rows_drawn_towards_likely_errors_keep_their_weight_in_the_log_and_the_estimate(tmp_path):
    """`audit_uniform` 0.25: a quarter of each audit draw is uniform over the 60 unreviewed rows, the rest in
    proportion to 1 - confidence. With every row at confidence 1 but row 3 (0.5) and row 7 (0.75), row 3's
    chance is 0.25/60 + 0.75 x 2/3 (weight 1 / (that x 60) = 1/30.25), row 7's 0.25/60 + 0.75 x 1/3 (1/15.25),
    any other row's 0.25/60 (weight 4). The weight is logged with the review, read back by a fresh session and
    handed to the refit beside its row; a uniform draw (`audit_uniform` 1) is the session's random order, logs
    no weight and weighs 1."""
    data = write_rows(tmp_path / "rows.csv")
    expected = {3: 1 / 30.25, 7: 1 / 15.25}
    drawn = {}
    for seed in range(12):
        s = ReviewSession.open(CONFIG, data, project=tmp_path / f"p{seed}.db", student=False, batch=50, audit_seed=seed, audit_uniform=0.25)
        s.routing.confidence[:] = 1.0
        s.routing.confidence[[3, 7]] = [0.5, 0.75]
        row = s.next_row("ana")
        s.submit("ana", row.index, "positive")
        weight = expected.get(row.index, 4.0)
        drawn[row.index] = weight
        assert s.log.audit_rows() == [row.index] and s.log.audit_weights() == pytest.approx([weight], abs=1e-12)
        seen = []
        route = s.router.route
        s.router.route = lambda reviewed, **kw: seen.append(kw) or route(reviewed, **kw)
        s.refit()
        assert seen[0]["audit"] == [row.index] and seen[0]["audit_weight"] == pytest.approx([weight], abs=1e-12)
        s.close()
        again = ReviewSession.open(CONFIG, data, project=tmp_path / f"p{seed}.db", student=False)
        assert again.log.audit_weights() == pytest.approx([weight], abs=1e-12)
        again.close()
    assert {3, 7} <= set(drawn) and any(w == 4.0 for w in drawn.values())  # the likely errors drawn, and other rows too
    # all towards the likely errors: row 3 for ana, and bob's draw skips the row ana holds (then uniform, weight 1)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "two.db", student=False, batch=50, audit_uniform=0.0)
    s.routing.confidence[:] = 1.0
    s.routing.confidence[3] = 0.5
    assert s.next_row("ana").index == 3
    other = s.next_row("bob")
    assert other.index != 3
    s.submit("bob", other.index, "positive")
    assert s.log.audit_weights() == pytest.approx([1.0], abs=1e-12)
    s.close()
    plain = ReviewSession.open(CONFIG, data, project=tmp_path / "plain.db", student=False, batch=50, audit_uniform=1.0)
    row = plain.next_row("ana")
    assert row.index == int(np.random.default_rng(0).permutation(60)[0])
    plain.submit("ana", row.index, "positive")
    assert plain.log.all()[0].audit == 1 and plain.log.all()[0].audit_weight is None and plain.log.audit_weights() == [1.0]
    plain.close()


def test_undo_overlap_conflicts_and_resolution(tmp_path):
    data = write_rows(tmp_path / "rows.csv", n=20)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, overlap=2, audit=0)
    a = s.next_row("ann")
    s.submit("ann", a.index, "positive")
    assert s.reviewed() == {}  # one rating of two: not settled yet
    b = s.next_row("bob")
    assert b.index == a.index  # the row comes back for the second annotator
    s.submit("bob", b.index, "negative")
    settled, conflicts = s.log.final()
    assert conflicts == {a.index: {"ann": "positive", "bob": "negative"}}
    s.resolve("carol", a.index, "negative")
    assert s.reviewed() == {a.index: "negative"}
    c = s.next_row("ann")
    s.submit("ann", c.index, "positive")
    assert s.undo("ann") == c.index
    assert c.index not in s.log.ratings()
    assert [r.action for r in s.log.all()][-1] == "undo"  # nothing deleted: the undo is a row of its own
    with pytest.raises(Exception, match="not one of"):
        s.submit("ann", 0, "maybe")
    s.close()


def test_a_second_reader_of_the_log_sees_every_save_and_undo_as_they_land(tmp_path):
    """The log reads only the rows added since its last read: another session's saves and undos still show."""
    from labelmill.strategies.review.log import ReviewLog
    from labelmill.store.db import Store

    data = write_rows(tmp_path / "rows.csv", n=20)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, audit=0)
    with Store(tmp_path / "p.db") as other_store:
        other = ReviewLog(other_store, s.run_id)
        assert other.all() == []
        s.submit("ann", 3, "positive")
        s.submit("ann", 5, "negative")
        assert [(r.row_index, r.label) for r in other.all()] == [(3, "positive"), (5, "negative")]
        s.undo("ann")
        assert other.ratings() == {3: {"ann": "positive"}}
        other.add(7, "h", "bob", "negative")
        s.submit("ann", 9, "positive")
        assert [r.row_index for r in other.active()] == [3, 7, 9]
        assert [r.row_index for r in s.log.active()] == [3, 7, 9]
        assert len(other.all()) == 5  # 4 saves and the undo, each once
    s.close()


def test_bulk_accept_takes_the_shown_labels(session):
    rows = [i for i in range(10) if not session.routing.reviewed[i]][:4]
    assert session.bulk_accept("ann", rows) == 4
    assert all(session.reviewed()[i] == session.routing.labels[i] for i in rows)


# the web app (FastAPI's test client on the real app) ------------------------------------------------------
def _client(session):
    from fastapi.testclient import TestClient

    from labelmill.strategies.review.app import create_app

    token = session.log.add_annotator("ana")
    client = TestClient(create_app(session))
    return client, token


def _csrf(page: str) -> str:
    return json.loads(html.unescape(re.search(r'data-config="([^"]+)"', page).group(1)))["csrf"]


def test_app_needs_a_token_and_a_csrf_token(session):
    client, token = _client(session)
    assert client.get("/").status_code == 401
    assert client.get("/api/next").status_code == 401
    assert client.get("/api/next", headers={"Authorization": "Bearer nope"}).status_code == 401
    client.cookies.set("labelmill_session", token)  # the token itself is no login
    assert client.get("/api/next").status_code == 401
    login = client.get("/login", params={"token": token}, follow_redirects=False)
    assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
    assert token not in login.headers["set-cookie"]  # the cookie holds a session id, never the token
    client.cookies.set("labelmill_session", login.cookies["labelmill_session"])
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    row = client.get("/api/next").json()["row"]
    assert client.post("/api/review", json={"row": row["index"], "label": "positive"}).status_code == 403
    assert client.post("/api/review", json={"row": row["index"], "label": "positive"}, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    ok = client.post("/api/review", json={"row": row["index"], "label": "positive"}, headers={"X-CSRF-Token": _csrf(page.text)})
    assert ok.status_code == 200 and session.reviewed() == {row["index"]: "positive"}
    bad = client.post("/api/review", json={"row": 0, "label": "<b>"}, headers={"X-CSRF-Token": _csrf(page.text)})
    assert bad.status_code == 400
    assert client.post("/api/propose", content=b"\xff not json").status_code == 403  # no CSRF token
    early = client.post("/api/propose", content=b"\xff not json", headers={"X-CSRF-Token": _csrf(page.text)})
    assert early.status_code == 400 and "20 reviewed rows" in early.json()["error"] and session.background_job is None


def test_app_static_route_refuses_path_traversal(session):
    client, token = _client(session)
    client.get("/login", params={"token": token})
    assert client.get("/static/review.js").status_code == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fconfig.py", "/static//etc/passwd"):
        assert client.get(path).status_code == 404, path


def test_hostile_text_is_data_not_markup(session):
    client, token = _client(session)
    client.get("/login", params={"token": token})
    page = client.get("/").text
    assert "<script>alert" not in page and "onerror" not in page  # rows never enter the HTML; the script sets textContent
    row = client.get("/api/row/3").json()["row"]
    assert row["text"] == "<script>alert(1)</script> bad"
    # no HTML sink anywhere in the page's script (the browser check of the shown row is
    # test_review_browser.py::test_hostile_rows_are_shown_as_text)
    script = (ROOT / "src/labelmill/strategies/review/static/review.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute(\"on"):
        assert sink not in script, sink


# exports and imports --------------------------------------------------------------------------------------
def shipped_sentiment() -> tuple[dict, Path]:
    """The shipped sentiment example (config and its 200 SST-2 rows), on the fake keyword model."""
    import yaml

    config = yaml.safe_load((ROOT / "examples/sentiment/config.yaml").read_text())
    config["model"] = {"backend": "fake", "params": {"keywords": {"positive": ["good", "best", "charm", "fun", "warm"],
                                                                  "negative": ["bad", "dull", "worst", "boring", "mess"]}}}
    return config, ROOT / "examples/sentiment/sample.csv"


def test_label_studio_export_then_import_keeps_every_label(tmp_path):
    from labelmill.strategies.review.exports import export, import_label_studio

    config, data = shipped_sentiment()
    s = ReviewSession.open(config, data, project=tmp_path / "a.db", student=False)
    gold = s.frame["label"].astype(str).tolist()
    s.simulate(lambda i: gold[i], reviews=12, annotator="ana")
    path = export(s, "label-studio", tmp_path / "tasks.json")
    tasks = json.loads(path.read_text())
    assert len(tasks) == 200 and all(t["predictions"][0]["model_version"].startswith("labelmill:fake") for t in tasks)
    assert sum(1 for t in tasks if t.get("annotations")) == 12
    assert label_studio_errors(path) == []  # Label Studio's own validator accepts every prediction and annotation
    before = s.reviewed()
    s.close()
    # a fresh project: the import brings the reviews back
    t = ReviewSession.open(config, data, project=tmp_path / "b.db", student=False)
    assert import_label_studio(t, path) == 12
    assert t.reviewed() == before
    assert {r.annotator for r in t.log.all()} == {"ana"} and {r.kind for r in t.log.all()} == {"import"}
    t.close()


def test_argilla_hf_and_table_exports_load_with_their_libraries(tmp_path):
    from labelmill.strategies.review.exports import export

    config, data = shipped_sentiment()
    session = ReviewSession.open(config, data, project=tmp_path / "a.db", student=False)
    gold = session.frame["label"].astype(str).tolist()
    session.simulate(lambda i: gold[i], reviews=7, annotator="ana")
    reviewed = session.reviewed()
    # Argilla 2.x: the SDK's own reader parses the records; its pydantic models accept the settings
    folder = export(session, "argilla", tmp_path / "argilla")
    import argilla
    from argilla._models import DatasetModel, FieldModel, QuestionModel
    from argilla.records._io._json import JsonIO

    settings = json.loads((folder / ".argilla" / "settings.json").read_text())
    assert [QuestionModel(**q).name for q in settings["questions"]] == ["label"]
    assert [FieldModel(**f).name for f in settings["fields"]] == ["text"]
    DatasetModel(**{k: v for k, v in json.loads((folder / ".argilla" / "dataset.json").read_text()).items() if v is not None})
    records = JsonIO._records_from_json(folder / "records.json")
    assert len(records) == 200 and argilla.__version__.startswith("2.")
    first = records[0].suggestions["label"]
    assert first.value in ("positive", "negative") and 0 <= first.score <= 1 and first.agent.startswith("labelmill:fake")
    answered = {int(r.metadata["row"]): r.responses["label"][0].value for r in records if r.responses["label"]}
    assert answered == reviewed
    # Hugging Face datasets
    import datasets

    ds = datasets.load_from_disk(str(export(session, "hf", tmp_path / "hf")))
    assert ds.num_rows == 200 and {"review_label", "final_label", "llm_label"} <= set(ds.column_names)
    assert {i: ds[i]["review_label"] for i in reviewed} == reviewed
    # JSONL / CSV / Parquet with the review columns
    import pandas as pd

    for fmt, read in (("jsonl", lambda p: pd.read_json(p, lines=True)), ("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        frame = read(export(session, fmt, tmp_path / f"out.{fmt}"))
        assert len(frame) == 200 and (frame["review_status"] == "reviewed").sum() == 7
        assert all(frame.loc[i, "final_label"] == label for i, label in reviewed.items())
    session.close()


def test_conll_export_on_the_shipped_ner_example(tmp_path):
    from labelmill.strategies.review.exports import export, read_conll

    config = str(ROOT / "examples/ner/config.yaml")
    import yaml

    cfg = yaml.safe_load(Path(config).read_text())
    sample = [json.loads(line) for line in (ROOT / "examples/ner/sample.jsonl").read_text().splitlines() if line.strip()][:6]
    cfg["model"] = {"backend": "fake", "params": {"replies": [], "default_reply": "none"}}
    cfg["examples"] = {"k": 0}
    cfg["base_dir"] = str(ROOT / "examples/ner")
    rows = tmp_path / "ner.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in sample) + "\n")
    s = ReviewSession.open(cfg, rows, project=tmp_path / "n.db", student=False)
    text = s.texts[0]
    gold = [{"start": sp["start"], "end": sp["end"], "type": sp["label"]} for sp in sample[0]["spans"]]
    s.submit("ana", 0, gold)
    path = export(s, "conll", tmp_path / "out.conll")
    sentences = read_conll(path)
    assert len(sentences) == 6
    expected = ["O"] * len(sample[0]["tokens"])
    for sp in sample[0]["spans"]:
        for t in range(sp["token_start"], sp["token_end"]):
            expected[t] = ("B-" if t == sp["token_start"] else "I-") + sp["label"]
    assert text.split() == sample[0]["tokens"]
    assert sentences[0] == list(zip(sample[0]["tokens"], expected))
    # spaCy DocBin: spaCy reads the same entities back
    import spacy
    from spacy.tokens import DocBin

    docs = list(DocBin().from_disk(export(s, "spacy", tmp_path / "out.spacy")).get_docs(spacy.blank("xx").vocab))
    assert len(docs) == 6 and docs[0].text == text
    assert [(e.start_char, e.end_char, e.label_) for e in docs[0].ents] == [(g["start"], g["end"], g["type"]) for g in gold]
    with pytest.raises(Exception, match="outside the text"):
        s.submit("ana", 1, [{"start": 0, "end": 10_000, "type": gold[0]["type"]}])
    s.close()


def test_relabel_uses_the_nearest_reviewed_rows_as_demos(tmp_path):
    """The fake model answers a row it has no keyword for with the label of the demo sharing most words:
    after people label a few 'fine' and 'meh' rows, relabeling fixes the other such rows."""
    config = FOLLOWS
    data = write_rows(tmp_path / "rows.csv", n=40)
    s = ReviewSession.open(config, data, project=tmp_path / "p.db", student=False, batch=100)
    gold = s.frame["label"].astype(str).tolist()
    unsure = [i for i in range(40) if any(w in s.texts[i] for w in ("fine", "meh"))]
    wrong_before = sum(s.routing.labels[i] != gold[i] for i in unsure)
    fine = [i for i in unsure if "fine" in s.texts[i]][:3]
    meh = [i for i in unsure if "meh" in s.texts[i]][:3]
    for i in fine + meh:
        s.submit("ana", i, gold[i])
    s.refit()
    rest = [i for i in unsure if i not in fine + meh]
    assert s.relabel(limit=40, k=4) > 0
    wrong_after = sum(s.routing.labels[i] != gold[i] for i in rest)
    assert wrong_before >= 3 and wrong_after == 0
    runs = s.store.runs()
    assert len(runs) == 2 and "items" in runs[-1]["config"]  # the relabel is a run of its own, its demos in its config
    s.close()


STRONG = {"keywords": {"positive": ["good", "great", "fine"], "negative": ["bad", "awful", "meh"]}}


def test_the_tier_gives_the_rows_the_first_labeler_was_least_sure_of_to_a_stronger_model_once(tmp_path):
    """The fake's 'strong' model knows 'fine' and 'meh', the first labeler does not (a tie: its least sure rows).
    After `escalate` those rows carry the strong model's labels, in a run of its own; a session opened again
    finds them in the cache (no model call), and the status says the tier ran."""
    calls = tmp_path / "calls.log"
    config = {**CONFIG, "model": {"backend": "fake", "params": {**CONFIG["model"]["params"], "by_model": {"strong": STRONG}, "call_log": str(calls)}}}
    data = write_rows(tmp_path / "rows.csv", n=40)
    s = ReviewSession.open(config, data, project=tmp_path / "p.db", student=False, tier_model="strong", tier_share=0.5)
    gold = s.frame["label"].astype(str).tolist()
    unsure = [i for i in range(40) if any(w in s.texts[i] for w in ("fine", "meh"))]
    sure = [i for i in range(40) if i not in unsure]
    assert sum(s.routing.labels[i] != gold[i] for i in unsure) >= 3
    before = {i: s.routing.labels[i] for i in sure}
    assert s.status()["tier"] == {"model": "strong", "rows": 0, "running": False}
    asked = len(calls.read_text().splitlines())
    assert s.escalate() == 20
    assert len(calls.read_text().splitlines()) - asked == 20  # the 20 least sure rows, each asked once
    assert all(s.routing.labels[i] == gold[i] for i in unsure) and {i: s.routing.labels[i] for i in sure} == before
    assert s.status()["tier"] == {"model": "strong", "rows": 20, "running": False}
    runs = s.store.runs()
    assert len(runs) == 2 and json.loads(runs[-1]["config"])["model"]["name"] == "strong"
    s.close()
    asked = len(calls.read_text().splitlines())
    again = ReviewSession.open(config, data, project=tmp_path / "p.db", student=False, tier_model="strong")
    assert again.escalate_in_background() and again.wait_for_relabel(60)  # as the app opens: in the background
    assert again.status()["tier"]["rows"] == 20 and len(calls.read_text().splitlines()) == asked  # the cache answers
    assert all(again.routing.labels[i] == gold[i] for i in unsure)
    again.close()
    plain = ReviewSession.open(config, data, project=tmp_path / "q.db", student=False)
    assert plain.escalate() == 0 and not plain.escalate_in_background() and plain.status()["tier"] is None
    plain.close()


def test_the_review_command_runs_the_tier_before_a_simulated_reviewer(tmp_path):
    import yaml
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands

    _add_strategy_commands()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "model": {"backend": "fake", "params": {**CONFIG["model"]["params"], "by_model": {"strong": STRONG}}}}))
    data = write_rows(tmp_path / "rows.csv", n=30)
    out = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "p.db"), "--no-student", "--simulate", "label",
                                   "--reviews", "2", "--tier-model", "strong", "--tier-share", "0.2", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["tier"] == {"model": "strong", "rows": 6, "running": False}


def test_the_review_command_draws_audit_rows_towards_likely_errors_when_asked(tmp_path):
    """`--audit-uniform 0`: every audit draw goes to rows in proportion to 1 - confidence, and each audit review
    keeps its weight; `--audit-uniform 1` draws the plain random order (no weight kept); by default (0.6) each
    draw keeps its weight too."""
    import yaml
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands
    from labelmill.store.db import Store
    from labelmill.strategies.review.log import ReviewLog

    _add_strategy_commands()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    data = write_rows(tmp_path / "rows.csv", n=30)
    logs = {}
    for name, extra in (("weighted", ["--audit-uniform", "0"]), ("plain", ["--audit-uniform", "1"]), ("default", [])):
        out = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / f"{name}.db"), "--no-student", "--simulate", "label",
                                       "--reviews", "6", "--json", *extra])
        assert out.exit_code == 0, out.output
        with Store(tmp_path / f"{name}.db") as store:
            run_id = store.db.execute("SELECT max(id) FROM runs").fetchone()[0]
            logs[name] = [r for r in ReviewLog(store, run_id).all() if r.audit]
    import pandas as pd

    texts = pd.read_csv(data)["text"].tolist()
    # a tied row (confidence 0.5) is drawn more often than a uniform draw would (weight under 1), a row the model
    # is sure of (0.95) less often (over 1)
    tied = [("fine" in texts[r.row_index] or "meh" in texts[r.row_index]) for r in logs["weighted"]]
    assert len(tied) == 3 and all(r.audit_weight is not None and (r.audit_weight < 1) == t for r, t in zip(logs["weighted"], tied))
    assert len(logs["plain"]) == 3 and all(r.audit_weight is None for r in logs["plain"])
    assert len(logs["default"]) == 3 and all(r.audit_weight is not None and r.audit_weight > 0 for r in logs["default"])

def test_cli_headless_simulate_export_and_import(tmp_path):
    import yaml
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands

    _add_strategy_commands()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    data = write_rows(tmp_path / "rows.csv", n=30)
    runner = CliRunner()
    out = runner.invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "p.db"), "--no-student", "--simulate", "label",
                              "--reviews", "9", "--export", "label-studio", "--out", str(tmp_path / "ls.json"), "--json"])
    assert out.exit_code == 0, out.output
    status = json.loads(out.output.strip().splitlines()[-1])
    assert status["reviewed"] == 9
    tasks = json.loads((tmp_path / "ls.json").read_text())
    assert sum(1 for t in tasks if t.get("annotations")) == 9
    # labelmill export brings the reviews along with --project
    out = runner.invoke(cli, ["export", str(config), str(data), "--project", str(tmp_path / "p.db"), "--format", "csv", "--out", str(tmp_path / "r.csv")])
    assert out.exit_code == 0, out.output
    import pandas as pd

    frame = pd.read_csv(tmp_path / "r.csv")
    assert (frame["review_status"] == "reviewed").sum() == 9
    # a fresh project imports the Label Studio file
    out = runner.invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "q.db"), "--no-student",
                              "--import-label-studio", str(tmp_path / "ls.json"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["reviewed"] == 9
    # a broken import is a clear error, and nothing is lost
    (tmp_path / "bad.json").write_text("{not json")
    out = runner.invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "q.db"), "--no-student", "--import-label-studio", str(tmp_path / "bad.json")])
    assert out.exit_code != 0 and "cannot read Label Studio export" in str(out.exception or out.output)


def test_the_queue_stops_when_the_target_holds(tmp_path):
    data = write_rows(tmp_path / "rows.csv", n=40)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, batch=1, target=0.8)
    gold = s.frame["label"].astype(str).tolist()
    done = s.simulate(lambda i: gold[i])
    status = s.status()
    assert status["target_reached"] and status["lower_bound"] >= 0.8
    assert status["in_queue"] == 0 and s.next_row("ana") is None
    assert 0 < done < 40  # it stopped before every row was seen
    s.close()


def test_app_conflicts_page_and_resolution(tmp_path):
    from fastapi.testclient import TestClient

    from labelmill.strategies.review.app import create_app

    data = write_rows(tmp_path / "rows.csv", n=10)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, overlap=2)
    tokens = {name: s.log.add_annotator(name) for name in ("ann", "bob")}
    client = TestClient(create_app(s))
    client.get("/login", params={"token": tokens["ann"]})
    csrf = _csrf(client.get("/").text)
    s.submit("ann", 5, "positive")
    s.submit("bob", 5, "negative")
    found = client.get("/api/conflicts").json()["conflicts"]
    assert found == [{"row": 5, "text": s.texts[5], "ratings": {"ann": "positive", "bob": "negative"}}]
    assert "Conflicts" in client.get("/conflicts").text
    assert client.post("/api/resolve", json={"row": 5, "label": "nope"}, headers={"X-CSRF-Token": csrf}).status_code == 400
    assert client.post("/api/resolve", json={"row": 5, "label": "negative"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/conflicts").json()["conflicts"] == [] and s.reviewed()[5] == "negative"
    resolution = s.log.all()[-1]
    assert (resolution.kind, resolution.annotator, resolution.label) == ("resolve", "ann", "negative")
    s.close()


def test_relabel_runs_in_the_background_every_n_reviews(tmp_path):
    config = FOLLOWS
    data = write_rows(tmp_path / "rows.csv", n=40)
    s = ReviewSession.open(config, data, project=tmp_path / "p.db", student=False, batch=100, stop_at_target=False)
    s.relabel_every, s.relabel_rows = 6, 40
    gold = s.frame["label"].astype(str).tolist()
    unsure = [i for i in range(40) if any(w in s.texts[i] for w in ("fine", "meh"))]
    chosen = [i for i in unsure if "fine" in s.texts[i]][:3] + [i for i in unsure if "meh" in s.texts[i]][:3]
    for i in chosen:
        s.submit("ana", i, gold[i])
    assert s.wait_for_relabel(timeout=120)
    assert all(s.routing.labels[i] == gold[i] for i in unsure)
    assert len(s.store.runs()) == 2
    s.close()


def test_the_strategy_search_on_the_reviews_turns_the_relabel_step_on_only_where_demos_beat_zero_shot(tmp_path):
    """The fake model knows good/great/bad/awful; a 'fine' or 'meh' row is a tie for it, answered positive.
    Given demos (follow_demos), such a row takes the label of the demo sharing most words with it."""
    follows = FOLLOWS
    data = write_rows(tmp_path / "rows.csv", n=80)
    s, gold = reviewed_session(follows, data, tmp_path / "p.db", 39)
    assert s.tune_relabel(shots=(4,), selectors=("similar",)) is None and s.relabel_k == 4  # 39 reviewed rows: too few to search
    s.submit("ana", 39, gold[39])
    found = s.tune_relabel(shots=(2,), selectors=("similar",))
    assert (found["dev_rows"], found["pool_rows"]) == (20, 20) and found["relabel"] == "on"
    # zero-shot misses the 'meh' rows among the 20 it is scored on; with the 2 most similar reviewed rows as demos, none
    assert found["zero_shot_accuracy"] < 1.0 and found["best_few_shot"] == {"k": 2, "selection": "similar", "accuracy": 1.0}
    assert s.relabel_k == 2 and s.relabel_selection == "similar" and s.status()["relabel"] == {"k": 2, "selection": "similar", "search": found, "searching": False,
                                                                                                 "search_after": None, "every": None, "running": False}
    with s.store.transaction() as db:
        assert db.execute("SELECT COUNT(*) FROM tune_trials").fetchone()[0] == 2  # zero-shot and 2-shot similar, kept like any tune run
    s.close()

    ignores = ReviewSession.open(CONFIG, data, project=tmp_path / "q.db", student=False, batch=100, stop_at_target=False)
    for i in range(40):
        ignores.submit("ana", i, gold[i])
    off = ignores.tune_relabel(shots=(4,), selectors=("similar",))
    assert off["relabel"] == "off" and off["best_few_shot"]["accuracy"] == off["zero_shot_accuracy"] < 1.0
    assert ignores.relabel_k == 0 and ignores.relabel(limit=40) == 0 and len(ignores.store.runs()) == 1 + 2  # the first run and tune's two
    ignores.close()

    # in the app: a slow model (0.5 s a batch) still relabeling from the 20th review when the 40th comes; the search
    # waits for it and starts as it ends (no later review needed); a config with no gold column (the people's are the only labels)
    slow = {k: v for k, v in follows.items() if k != "gold_column"}
    slow["model"] = {**slow["model"], "params": {**slow["model"]["params"], "delay_s": 0.5}}
    auto = ReviewSession.open(slow, data, project=tmp_path / "r.db", student=False, batch=100, stop_at_target=False)
    auto.tune_after, auto.relabel_every, auto.relabel_rows = 40, 20, 10
    for i in range(40):
        auto.submit("ana", i, gold[i])
    assert auto.background_job == "relabel" and auto.relabel_search is None
    assert auto.wait_for_relabel(timeout=120) and auto.relabel_search is not None and auto.relabel_search["relabel"] == "on"
    auto.close()


def test_the_app_s_default_relabel_step_waits_for_the_search_to_find_that_demos_pay(tmp_path):
    from labelmill.strategies.review.cli import model_steps

    follows = FOLLOWS
    data = write_rows(tmp_path / "rows.csv", n=80)
    said: list[str] = []
    s = ReviewSession.open(follows, data, project=tmp_path / "p.db", student=False, batch=100, stop_at_target=False,
                           on_event=lambda e: said.append(getattr(e, "message", "")))
    model_steps(s, None, None, default=True)
    assert (s.tune_after, s.relabel_every, s.relabel_after_search) == (40, 50, True)
    s.relabel_every, s.relabel_rows = 10, 10  # due three times before the search can run
    gold = s.frame["label"].astype(str).tolist()
    for i in range(39):
        s.submit("ana", i, gold[i])
    assert s.background_job is None and len(s.store.runs()) == 1  # no relabel with the nearest rows before the search says demos pay
    s.submit("ana", 39, gold[39])
    assert s.wait_for_relabel(timeout=120) and s.relabel_search["relabel"] == "on"
    relabeled = [m for m in said if m.startswith("review: relabeled")]
    assert relabeled == ["review: relabeled 10 uncertain rows with reviewed rows as demos"]  # chained after the search, no review needed
    assert said.index(relabeled[0]) > next(i for i, m in enumerate(said) if "beat zero-shot" in m)
    s.close()

    said.clear()
    ignores = ReviewSession.open(CONFIG, data, project=tmp_path / "q.db", student=False, batch=100, stop_at_target=False,
                                 on_event=lambda e: said.append(getattr(e, "message", "")))
    model_steps(ignores, None, None, default=True)
    ignores.relabel_every = 10
    for i in range(60):
        ignores.submit("ana", i, gold[i])
        ignores.wait_for_relabel(timeout=120)
    assert ignores.relabel_search["relabel"] == "off" and not [m for m in said if m.startswith("review: relabeled")]
    ignores.close()


def test_the_search_s_outcome_is_kept_and_a_session_opened_again_does_not_search_again(tmp_path, capsys):
    follows = FOLLOWS
    data = write_rows(tmp_path / "rows.csv", n=80)
    s, gold = reviewed_session(follows, data, tmp_path / "p.db", 40)
    found = s.tune_relabel(shots=(2,), selectors=("similar",))
    assert found["relabel"] == "on"
    s.close()

    again = ReviewSession.open(follows, data, project=tmp_path / "p.db", student=False, batch=100, stop_at_target=False)
    assert (again.relabel_k, again.relabel_selection, again.relabel_search) == (2, "similar", found)
    from labelmill.strategies.review.cli import model_steps

    model_steps(again, None, None, default=True)
    assert "the strategy search of an earlier session holds (relabel step on); no new search" in capsys.readouterr().err
    again.tune_after = 40
    for i in range(40, 45):
        again.submit("ana", i, gold[i])
    assert again.background_job is None and again.status()["relabel"]["search_after"] is None
    with again.store.transaction() as db:
        assert db.execute("SELECT COUNT(*) FROM tune_trials").fetchone()[0] == 2  # the first search's two trials only
        assert db.execute("SELECT reviewed FROM review_searches").fetchall() == [(40,)]
    later = again.tune_relabel(shots=(4,), selectors=("similar",))  # asked for: a second search, on 45 rows
    again.close()
    last = ReviewSession.open(follows, data, project=tmp_path / "p.db", student=False, batch=100, stop_at_target=False)
    assert later["relabel"] == "on" and (last.relabel_k, last.relabel_selection, last.relabel_search) == (4, "similar", later)  # the latest holds
    last.close()

    off, _ = reviewed_session(CONFIG, data, tmp_path / "q.db", 40)
    assert off.tune_relabel(shots=(4,), selectors=("similar",))["relabel"] == "off"
    off.close()
    reopened = ReviewSession.open(CONFIG, data, project=tmp_path / "q.db", student=False, batch=100, stop_at_target=False)
    assert reopened.relabel_k == 0 and reopened.relabel_search["relabel"] == "off" and reopened.relabel(limit=10) == 0
    reopened.close()
    fresh = ReviewSession.open(CONFIG, data, project=tmp_path / "r.db", student=False, batch=100, stop_at_target=False)
    assert (fresh.relabel_k, fresh.relabel_search) == (4, None)  # nothing kept: the default demos until a search runs
    fresh.close()


def test_model_steps_asked_for_run_as_asked_and_the_default_is_for_local_models_only(tmp_path, monkeypatch):
    import yaml
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands
    from labelmill.strategies.review import cli as review_cli

    _add_strategy_commands()
    opened: list = []
    monkeypatch.setattr(review_cli, "serve", lambda session, host, port: opened.append(session))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    data = write_rows(tmp_path / "rows.csv", n=30)

    def steps(*args: str) -> tuple:
        out = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "p.db"), "--no-student", *args])
        assert out.exit_code == 0, out.output
        session = opened.pop()
        session.close()
        return session.tune_after, session.relabel_every, session.relabel_after_search

    assert steps() == (0, 0, False)  # the fake model stands for an API here: answers may cost money, so nothing runs unasked
    assert steps("--tune-after", "60") == (60, 0, False)
    assert steps("--relabel-every", "30") == (0, 30, False)
    monkeypatch.setattr(review_cli, "LOCAL_BACKENDS", ("fake",))
    assert steps() == (40, 50, True)
    assert steps("--relabel-every", "30") == (40, 30, False)  # asked for: from the start, with the nearest reviewed rows
    assert steps("--tune-after", "60") == (60, 50, True)
    assert steps("--no-relabel") == (0, 0, False)


def test_the_search_scores_at_most_tune_max_dev_reviewed_rows_and_pools_the_rest(tmp_path, monkeypatch):
    from labelmill.strategies.review import run as review_run

    monkeypatch.setattr(review_run, "TUNE_MAX_DEV", 25)
    data = write_rows(tmp_path / "rows.csv", n=70)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, batch=100, stop_at_target=False)
    gold = s.frame["label"].astype(str).tolist()
    for i in range(60):
        s.submit("ana", i, gold[i])
    found = s.tune_relabel(shots=(2,), selectors=("similar",))
    assert (found["dev_rows"], found["pool_rows"]) == (25, 35)
    s.close()


def test_cli_headless_searches_the_relabel_step_s_demos_before_relabeling(tmp_path):
    import yaml
    from click.testing import CliRunner

    from labelmill.cli import cli
    from labelmill.cli.app import _add_strategy_commands

    _add_strategy_commands()
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))  # a model that ignores demos: the search turns the step off
    data = write_rows(tmp_path / "rows.csv", n=60)
    out = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "p.db"), "--no-student", "--simulate", "label",
                                   "--reviews", "40", "--tune-after", "40", "--relabel", "10", "--json"])
    assert out.exit_code == 0, out.output
    assert re.search(r"demos did not beat zero-shot on 20 reviewed rows \([48]-shot (similar|balanced) ([\d.]+) against \2\); the relabel step is off", out.output)
    assert "relabeled nothing: demos did not beat zero-shot on the reviewed rows" in out.output
    status = json.loads(out.output.strip().splitlines()[-1])
    assert status["relabel"]["k"] == 0 and status["relabel"]["search"]["relabel"] == "off" and status["relabel"]["search"]["dev_rows"] == 20
    few = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "r.db"), "--no-student", "--simulate", "label",
                                   "--reviews", "10", "--tune-after", "40", "--json"])
    assert few.exit_code == 0 and "no strategy search: 10 rows reviewed, --tune-after asks for 40" in few.output
    bad = CliRunner().invoke(cli, ["review", str(config), str(data), "--project", str(tmp_path / "q.db"), "--tune-after", "39", "--json"])
    assert bad.exit_code == 2 and "39 is not in the range x>=40" in bad.output


def test_blind_mode_and_budget(tmp_path):
    data = write_rows(tmp_path / "rows.csv", n=30)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, blind=True, overlap=2, budget="10%", audit=0)
    row = s.next_row("ann")
    assert row.model_label is None and row.confidence is None and row.current is None and row.cluster == []
    s.submit("ann", row.index, "positive")
    again = s.next_row("bob")
    assert again.index == row.index and again.reviews == {}  # bob does not see ann's answer
    assert s.status()["budget_left"] == 2  # 10% of 30 rows = 3 reviews, one row used
    s.submit("bob", again.index, "positive")
    assert len(s.queue("ann")) <= 2
    s.close()
    timed = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, budget="0s")
    assert timed.next_row("ann") is None and timed.status()["budget_left"] == 0
    timed.close()


# the accuracy estimate and its interval (a random audit sample) ------------------------------------------
def _simulated_loop(kind: str, seed: int, n: int = 1000, reviews: int = 300, uniform: float = 1.0, audit: int = 30,
                    every: int = 10) -> list[tuple[bool, float]]:
    """A review loop on synthetic rows: the model's confidence c, the chance it is right p(c) (calibrated
    or not), least confident rows reviewed first, every other review an audit row drawn at random until
    `audit`, then one in `every` (`ReviewSession._audit_due`'s rule); with `uniform` below 1 an audit row
    is drawn among the unreviewed rows with a chance `uniform` / rows + (1 - `uniform`) (1 - c) / sum(1 - c), weighted 1 / (chance x rows) in the estimate.
    At every 10th review from the 30th: (does the 95% interval hold the true accuracy, its width)."""
    from scipy.special import expit, logit

    from labelmill.numeric.estimate import accuracy_interval

    rng = np.random.default_rng(seed)
    c = rng.beta(5, 2, n)
    x = logit(np.clip(c, 1e-6, 1 - 1e-6))
    p = {"calibrated": c, "overconfident": expit(0.6 * x - 0.8), "uninformative": expit(0.2 * x - 1.0), "cubed": c ** 3,
         "underconfident": expit(2.0 * x + 0.5)}[kind]
    right = rng.uniform(size=n) < p
    reviewed = np.zeros(n, dtype=bool)
    queue, draws = iter(np.argsort(c)), iter(rng.permutation(n))
    audit_c, audit_ok, audit_w, out = [], [], [], []
    for r in range(reviews):
        audits = len(audit_c)
        if (audits < audit and audits * 2 <= r) or (audits >= audit and audits - audit < (r - 2 * audit) // every + 1):
            if uniform < 1.0:
                free = np.flatnonzero(~reviewed)
                chance = uniform / len(free) + (1 - uniform) * (1 - c[free]) / (1 - c[free]).sum()
                j = rng.choice(len(free), p=chance / chance.sum())
                i, weight = free[j], 1 / (chance[j] * len(free))
            else:
                i, weight = next(j for j in draws if not reviewed[j]), 1.0
            audit_c.append(c[i])
            audit_ok.append(right[i])
            audit_w.append(weight)
        else:
            i = next(j for j in queue if not reviewed[j])
        reviewed[i] = True
        if r + 1 >= 30 and (r + 1) % 10 == 0:
            truth = (reviewed.sum() + right[~reviewed].sum()) / n
            found = accuracy_interval(c[~reviewed], int(reviewed.sum()), np.array(audit_c), np.array(audit_ok), frontier=float(c[~reviewed].min()),
                                      audit_weight=np.array(audit_w) if uniform < 1.0 else None)
            out.append((found["low"] <= truth <= found["high"], found["high"] - found["low"]))
    return out


_DEFAULT_AUDIT = (ReviewOptions().audit, ReviewOptions().audit_every, ReviewOptions().audit_uniform)


@pytest.mark.parametrize("audit,every,uniform", [(30, 10, 1.0), (30, 10, 0.5), _DEFAULT_AUDIT])
@pytest.mark.parametrize("kind", ["calibrated", "overconfident", "uninformative", "cubed", "underconfident"])
def test_the_audit_interval_holds_the_true_accuracy_in_simulated_loops(kind, audit, every, uniform):
    """Over 40 simulated loops, at every 10th review from the 30th: the 95% interval holds the true
    accuracy at >= 0.90 of the checkpoints, and at >= 0.85 of the loops at each checkpoint; with audit rows
    drawn uniformly, drawn half towards the rows likely wrong (weighted), and as the loop's defaults draw
    them (20 audit rows, then one in 20, 0.6 of each draw uniform)."""
    runs = [_simulated_loop(kind, seed, uniform=uniform, audit=audit, every=every) for seed in range(40)]
    held = np.array([[h for h, _ in run] for run in runs])
    assert held.mean() >= 0.90 and held.mean(axis=0).min() >= 0.85, (held.mean(), held.mean(axis=0).min())
    widths = np.array([[w for _, w in run] for run in runs])
    assert widths[:, -1].mean() < widths[:, 0].mean()  # more reviews, a narrower interval


def _sarcastic_rows(path: Path, n: int, seed: int) -> list[str]:
    """The keyword model is sure of 'good'/'great', but people read 40% of those rows as negative."""
    rng = random.Random(seed)
    words = {"good": "positive", "great": "positive", "fine": "positive", "bad": "negative", "awful": "negative", "meh": "negative"}
    rows = []
    for i in range(n):
        w = rng.choice(sorted(words))
        label = "negative" if w in ("good", "great") and rng.random() < 0.4 else words[w]
        rows.append({"text": f"row {i}: a {w} film", "label": label})
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return [r["label"] for r in rows]


def test_the_page_s_interval_holds_the_truth_where_the_confidence_alone_is_far_off(tmp_path):
    """A confidently wrong model: from its confidences alone the dataset looks 0.86 accurate when it is
    0.71. With the audit rows (the loop's defaults) the session's 95% interval holds the true accuracy (the
    share of rows whose current label is the gold one) at most checkpoints from the 30th review on."""
    gold = _sarcastic_rows(tmp_path / "rows.csv", 300, seed=0)
    checks: dict[int, list] = {}
    for audit in (0, 20):
        knobs = {} if audit else {"audit": 0}
        s = ReviewSession.open(CONFIG, tmp_path / "rows.csv", project=tmp_path / f"p{audit}.db", student=False, batch=10, stop_at_target=False, **knobs)
        seen = checks.setdefault(audit, [])

        def step(session):
            count = session.log.count()
            if count >= 30 and count % 10 == 0:
                truth = float(np.mean([a == b for a, b in zip(session.routing.labels, gold)]))
                status = session.status()
                seen.append((truth, status["interval"] or status["estimated_accuracy"]))

        s.simulate(lambda i: gold[i], reviews=120, on_step=step)
        if audit:
            # the defaults: every other review until 20 (the first 40), then one in 20 (after 40, 60, 80 and 100)
            assert s.status()["audit_rows"] == 20 + 4 and len(s.log.audit_rows()) == 24
        s.close()
    blind_truth, blind_estimate = checks[0][0]
    assert blind_estimate - blind_truth > 0.1  # the confidences alone: far too sure
    held = [low <= truth <= high for truth, (low, high) in checks[20]]
    assert len(held) == 10 and sum(held) >= 8


def test_reviews_feed_guideline_proposals_a_person_accepts_and_the_next_round_commits(tmp_path):
    """No gold column in the config: the reviews are refine's gold. Its proposals from the model's errors on
    the reviewed rows wait for a person (evidence naming dataset rows); the next round scores the accepted
    one and commits it with the person named."""
    import pandas as pd

    from labelmill.store.db import Store
    from labelmill.strategies.refine.proposals import Proposals
    from labelmill.strategies.refine.versions import GuidelineVersions
    from test_guidelines import movie_config, movie_rows

    config = movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])
    config.pop("gold_column")
    filler = [{"text": f"a good film, part {i}", "label": "positive"} for i in range(30)]
    rows = pd.DataFrame(filler + movie_rows(12))  # the fake says positive for the 12 'dreadful' rows (30-65), all negative
    gold = rows["label"].tolist()
    s = ReviewSession.open(config, rows[["text"]], project=tmp_path / "p.db", student=False, audit=0)
    s.simulate(lambda i: gold[i], reviews=10)
    assert s.propose_guideline() == 0  # 10 reviewed rows: too few to hold half out
    s.simulate(lambda i: gold[i], reviews=20)
    assert s.propose_guideline() >= 1
    reviewed = s.reviewed()
    with Store(tmp_path / "p.db") as store:
        found = Proposals(store, "movies").list("pending")
        rule = next(p for p in found if p.kind == "add_rule")
        assert rule.text == "'dreadful' means negative."
        named = [int(n) for n in re.search(r"dev rows ([\d, ]+)", rule.evidence).group(1).split(", ")]
        assert named and all(n in reviewed and "dreadful" in rows["text"][n] for n in named)  # dataset rows, reviewed ones
        Proposals(store, "movies").decide(rule.key, "accept", "ana")
        for other in found:
            if other.key != rule.key:
                Proposals(store, "movies").decide(other.key, "reject", "ana")
    assert s.propose_guideline() == 0
    with Store(tmp_path / "p.db") as store:
        versions = GuidelineVersions(store, "movies")
        head = versions.get(versions.head_id())
    assert "'dreadful' means negative." in head.content and "accepted by ana" in head.author
    s.close()


def test_a_proposal_round_starts_in_the_background_after_every_n_reviews_and_never_beside_another_model_job(tmp_path):
    import threading

    import pandas as pd

    from labelmill.store.db import Store
    from labelmill.strategies.refine.proposals import Proposals
    from test_guidelines import movie_config, movie_rows

    config = movie_config([[r"These texts are (\w+), but[\s\S]*?(dreadful)", "Rule: '{1}' means {0}."]])
    rows = pd.DataFrame(movie_rows(12))
    gold = rows["label"].tolist()
    s = ReviewSession.open(config, rows, project=tmp_path / "p.db", student=False, audit=0)
    s.propose_every = 10
    release = threading.Event()
    assert s._in_background("relabel", lambda: str(release.wait(30)))  # a model job holds the slot
    s.simulate(lambda i: gold[i], reviews=25)
    assert s.background_job == "relabel" and not s.propose_in_background()
    release.set()
    assert s.wait_for_relabel(30)
    s.simulate(lambda i: gold[i], reviews=1)  # due since review 20: starts now
    assert s.wait_for_relabel(60)
    with Store(tmp_path / "p.db") as store:
        assert any(p.text == "'dreadful' means negative." for p in Proposals(store, "movies").list("pending"))
    s.close()


def test_the_app_s_refits_run_off_the_request_path_and_coalesce(session):
    """With background refits (the app's), a save returns while a refit runs; the reviews saved meanwhile
    make one more refit, whose routing holds them all."""
    import threading

    gold = session.frame["label"].astype(str).tolist()
    session.background_refit = True
    release, entered = threading.Event(), threading.Event()
    route = session.router.route

    def slow_route(reviewed, **kwargs):
        entered.set()
        release.wait(30)
        return route(reviewed, **kwargs)

    session.router.route = slow_route
    refits = session.refits
    for _ in range(5):  # batch 5: the fifth save starts a refit, which blocks
        row = session.next_row("ana")
        session.submit("ana", row.index, gold[row.index])
    assert entered.wait(10) and session.status()["refitting"]
    for _ in range(12):  # saves go on while it blocks: they return, and owe one refit between them
        row = session.next_row("ana")
        session.submit("ana", row.index, gold[row.index])
    assert session.refits == refits
    release.set()
    assert session.wait_for_refit(30)
    assert session.refits == refits + 2 and not session.status()["refitting"]
    assert session.routing.reviewed.sum() == 17


def test_the_log_s_views_advanced_review_by_review_equal_the_views_read_afresh(tmp_path):
    """The log keeps its views (decisions in force, ratings, final labels and conflicts, audit rows and weights) up to
    date review by review; after every step of a random mix of saves, resolutions and undos they equal
    what a fresh reader of the same store computes from the whole log."""
    from labelmill.strategies.review.log import ReviewLog
    from labelmill.store.db import Store

    data = write_rows(tmp_path / "rows.csv", n=30)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, audit=0)
    log = s.log
    rng = random.Random(4)
    people = ["ana", "bob", "cy"]

    def views(one: ReviewLog):
        return ({k: dict(v) for k, v in one.ratings().items()}, [dict(x) for x in one.final(1)], [dict(x) for x in one.final(2)],
                one.audit_rows(), one.audit_weights(), one.count(), [r.id for r in one.active()], dict(one.shared()), [one.rated_by(p) for p in people])

    with Store(tmp_path / "p.db") as other:
        for step in range(150):
            views(log)  # the views are asked for after every step, so each later step advances them
            action = rng.random()
            who = rng.choice(people)
            if action < 0.7:
                audit = rng.choice([0.0, 0.0, 0.0, 1.0, 0.5, 2.0])  # not an audit row, or one drawn with its weight
                log.add(rng.randrange(8), "h", who, rng.choice(["positive", "negative"]), audit=audit)
            elif action < 0.85:
                log.add(rng.randrange(8), "h", who, rng.choice(["positive", "negative"]), kind="resolve")
            else:
                log.undo(who)
            assert views(log) == views(ReviewLog(other, s.run_id)), step
    s.close()


def test_the_status_s_queue_length_is_the_queue_s_length_through_saves_leases_undos_and_refits(tmp_path):
    data = write_rows(tmp_path / "rows.csv", n=40)
    s = ReviewSession.open(CONFIG, data, project=tmp_path / "p.db", student=False, audit=0, batch=4)
    rng = random.Random(2)
    for step in range(60):
        action = rng.random()
        who = rng.choice(["ana", "bob"])
        if action < 0.6:
            row = s.next_row(who)  # leases the row
            if row is not None and rng.random() < 0.8:
                s.submit(who, row.index, rng.choice(["positive", "negative"]))
        elif action < 0.75:
            s.undo(who)
        elif action < 0.85:
            s.refit()
        else:
            s.submit(who, rng.randrange(40), rng.choice(["positive", "negative"]))  # a row off the queue
        assert s._queue_length() == len(s.queue()), step
    s.close()


def test_reason_counts_are_the_counts_of_the_reasons_shown(tmp_path):
    from labelmill.strategies.review.routing import Reasons

    rng = np.random.default_rng(0)
    n = 300
    llm = list(rng.choice(["a", "b", "c"], n))
    student = list(rng.choice(["a", "b", "c"], n))
    reviewed = rng.random(n) < 0.2
    rank = np.zeros(n, dtype=int)
    rank[rng.choice(n, 40, replace=False)] = np.arange(1, 41)
    reasons = Reasons(rng.random(n), reviewed, llm, student, rank, rng.random(n) * 0.3)
    rows = rng.choice(n, 200, replace=False)
    expected: dict[str, int] = {}
    for i in rows:
        for why in reasons[int(i)]:
            kind = ("low confidence" if why.startswith("confidence") else "LLM and student disagree" if why.startswith("LLM says")
                    else why.split(":")[0])
            expected[kind] = expected.get(kind, 0) + 1
    assert reasons.counts(rows) == expected and len(expected) == 4
    assert reasons[int(np.flatnonzero(reviewed)[0])] == [] and len(reasons[:5]) == 5


def test_fit_combination_finds_the_optimum_of_its_stated_objective():
    """The fit minimises, within the bounds, sum_i r_i * -log q_i(gold_i) + l2/2 (|w - 1|^2 + |b|^2), with q the
    softmax of sum_j w_j log(max(p_j, 1e-6)) + b: checked against the same objective written here and
    minimised by another method (Powell, no gradient), for two penalties and row weights."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    n, k = 120, 3
    gold = rng.integers(0, k, n)
    a = np.clip(np.eye(k)[gold] * 0.5 + rng.dirichlet(np.ones(k), n), 0, None)
    b = rng.dirichlet(np.ones(k), n)
    b[:5, 0] = 0.0  # an exact zero: floored at 1e-6, not log(0)
    parts = [a / a.sum(1, keepdims=True), b]
    r = rng.uniform(0.5, 2.0, n)

    def objective(theta, l2):
        z = theta[0] * np.log(np.maximum(parts[0], 1e-6)) + theta[1] * np.log(np.maximum(parts[1], 1e-6)) + theta[2:]
        z = z - z.max(axis=1, keepdims=True)
        logq = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -(r * logq[np.arange(n), gold]).sum() + 0.5 * l2 * (((theta[:2] - 1) ** 2).sum() + (theta[2:] ** 2).sum())

    for l2 in (1.0, 8.0):
        theirs = minimize(objective, np.r_[1.0, 1.0, np.zeros(k)], args=(l2,), method="Powell", bounds=[(0, 10)] * 2 + [(-10, 10)] * k,
                          options={"xtol": 1e-8, "ftol": 1e-12, "maxiter": 20000}).x
        ours = fit_combination(parts, gold, l2=l2, weight=r) if l2 != 1.0 else fit_combination(parts, gold, weight=r)  # 1.0: the default
        assert np.all(np.isfinite(ours)) and objective(ours, l2) <= objective(theirs, l2) + 1e-4
        assert np.allclose(ours, theirs, atol=2e-3)
    z = ours[0] * np.log(np.maximum(parts[0], 1e-6)) + ours[1] * np.log(np.maximum(parts[1], 1e-6)) + ours[2:]
    by_hand = np.exp(z - z.max(axis=1, keepdims=True))
    assert np.allclose(combine(parts, ours), by_hand / by_hand.sum(axis=1, keepdims=True), atol=1e-9)


def test_the_search_s_summary_says_what_it_found_even_when_a_trial_was_left_out():
    from labelmill.strategies.review.run import search_summary

    on = {"dev_rows": 20, "zero_shot_accuracy": 0.5, "best_few_shot": {"k": 8, "selection": "similar", "accuracy": 0.75}, "relabel": "on"}
    assert search_summary(on) == "8-shot similar demos beat zero-shot on 20 reviewed rows (0.750 against 0.500); the relabel step uses them"
    off = {**on, "best_few_shot": {"k": 4, "selection": "balanced", "accuracy": 0.5}, "relabel": "off"}
    assert search_summary(off) == "demos did not beat zero-shot on 20 reviewed rows (4-shot balanced 0.500 against 0.500); the relabel step is off"
    assert search_summary({**off, "best_few_shot": None}).startswith("the strategy search compared nothing on 20 reviewed rows (raise its budget)")
    assert search_summary({**off, "zero_shot_accuracy": None}).endswith("the relabel step is off")
    assert search_summary(None) == "the strategy search needs 40 reviewed rows"


def test_gold_pool_is_the_split_the_session_learns_from(tmp_path):
    """bench/review.py gives its same-label arms `gold_pool`'s rows: they must be the session's own split."""
    from labelmill.config import load_config
    from labelmill.strategies.review import gold_pool

    items = [{"text": f"good film {i}", "label": "positive"} for i in range(6)] + [{"text": f"bad film {i}", "label": "negative"} for i in range(6)]
    items += [{"text": "a film", "label": "neutral"}, {"text": "no label"}]  # outside the label set, no label: left out
    config = {**CONFIG, "examples": {"k": 0, "items": items}}
    pool = gold_pool(load_config(config), seed_rows=2)
    assert len(pool.records) == 12 and "neutral" not in pool.labels
    assert len(pool.seed) == 2 and len(pool.train) == 10 and sorted(pool.seed + pool.train) == list(range(12))
    assert len(gold_pool(load_config(config), seed_rows=100).seed) == 3  # at most a quarter of the examples
    assert gold_pool(load_config(CONFIG)) is None  # no examples: no pool

    s = ReviewSession.open(config, write_rows(tmp_path / "rows.csv"), project=tmp_path / "p.db", student=False, batch=5, seed_rows=2)
    try:
        assert [s.router.names[i] for i in s.router.pool_y] == [pool.labels[i] for i in pool.train]
    finally:
        s.close()
