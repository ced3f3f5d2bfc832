"""Reasoning and voting through the real runner, store and cache, with the fake backend as the model."""

import json
import sqlite3

import pytest
from conftest import ROWS, fake_config

import labelmill
from labelmill.errors import LabelmillError
from labelmill.core.reasoning import answer_text, expected_digit, p_true_prompt, verbalized_prompt, vote
from labelmill.store.db import Store
from labelmill.types import Label, ParseFailure, Prompt


def calls(path):
    return path.read_text().split() if path.exists() else []


def annotations(db):
    with Store(db) as store:
        run_id = store.runs()[-1]["id"]
        return list(store.annotations(run_id))


def test_vote_takes_the_majority_and_reports_agreement():
    outcomes = [Label("a", 0.9), Label("b", 0.6), Label("b", 0.7), ParseFailure("empty", ""), Label("a", 0.8), Label("b", 0.5)]
    label, explanation = vote(outcomes, ["e0", "e1", "e2", None, "e4", "e5"])
    assert label.value == "b" and label.confidence == pytest.approx(3 / 6)
    assert label.distribution == pytest.approx({"a": 2 / 6, "b": 3 / 6})
    assert label.signals["agreement"] == pytest.approx(0.5) and label.signals["failed_votes"] == 1.0
    assert label.signals["answer_confidence"] == pytest.approx(0.9)  # the first (greedy) answer's own confidence
    assert explanation == "e1"  # the explanation behind the first answer that gave the winner
    tie, _ = vote([Label("x", 0.5), Label("y", 0.5)])
    assert tie.value == "x"  # a tie goes to the greedy answer
    failed, _ = vote([ParseFailure("empty", ""), ParseFailure("no_label", "")])
    assert isinstance(failed, ParseFailure) and failed.kind == "empty"


def test_expected_digit_reads_the_scale():
    import math

    sure = [0.0 if d == 9 else -50.0 for d in range(10)]
    half = [math.log(0.5) if d in (0, 9) else -50.0 for d in range(10)]
    assert expected_digit(sure) == pytest.approx(1.0) and expected_digit(half) == pytest.approx(0.5)


def test_self_consistency_votes_over_sampled_answers(tmp_path):
    log = tmp_path / "calls.log"
    config = fake_config(
        model={"method": "generate", "params": {"keywords": {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}, "call_log": str(log)}},
        reasoning={"samples": 5, "sample_temperature": 1.5},
    )
    result = labelmill.label(config, ROWS, project=tmp_path / "p.db")
    assert len(calls(log)) == 5 * len(ROWS)  # the greedy answer and 4 samples per row
    items = annotations(tmp_path / "p.db")
    agreement = [a.signals["agreement"] for a in items]
    assert all(a.confidence == pytest.approx(g) for a, g in zip(items, agreement))
    assert all(a.signals["votes"] == 5.0 for a in items)
    # "nothing to say" has no keyword: the labels are equally likely and the samples disagree;
    # "fun fun fun" has three votes for positive and the samples agree
    by_text = {r["text"]: a for r, a in zip(ROWS, items)}
    assert by_text["fun fun fun"].signals["agreement"] == 1.0
    assert by_text["nothing to say"].signals["agreement"] < 1.0
    assert sum(v for v in by_text["nothing to say"].distribution.values()) == pytest.approx(1.0)
    # samples are seeded: a rerun of the same config in a new project gives the same votes, and the
    # same project answers everything from the cache
    again = labelmill.label(config, ROWS, project=tmp_path / "q.db")
    assert again.frame.llm_confidence.tolist() == result.frame.llm_confidence.tolist()
    before = len(calls(log))
    labelmill.label(dict(config, name="renamed"), ROWS, project=tmp_path / "p.db")
    assert len(calls(log)) == before


def test_chain_of_thought_keeps_the_explanation_and_answers_given_it(tmp_path):
    # the fake "explains" with a scripted sentence that names a keyword; the answer prompt shows it,
    # so a row without keywords is decided by its explanation
    config = fake_config(
        model={"params": {"keywords": {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]},
                          "replies": [["nothing to say\\n\\nBefore answering", "The review sounds dull to me."]],
                          "default_reply": "It reads as a plain statement."}},
        reasoning={"chain_of_thought": True},
    )
    out = tmp_path / "out.csv"
    result = labelmill.label(config, ROWS, output=out, project=tmp_path / "p.db")
    frame = result.frame
    assert frame.llm_explanation.tolist()[-1] == "The review sounds dull to me."
    assert frame.llm_label.tolist()[-1] == "negative"  # zero-shot without the explanation: positive (the tie-break)
    assert frame.llm_label.tolist()[:6] == [r["label"] for r in ROWS[:6]]
    items = annotations(tmp_path / "p.db")
    assert items[-1].explanation == "The review sounds dull to me." and items[-1].method == "score"
    with sqlite3.connect(tmp_path / "p.db") as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM cache GROUP BY kind").fetchall())
    assert kinds == {"explain": len(ROWS), "score": len(ROWS)}
    # eval reads the output as usual
    metrics = labelmill.evaluate(config, out)
    assert metrics["accuracy"] == pytest.approx(6 / 7)


def test_chain_of_thought_with_several_paths_votes_over_explanations(tmp_path):
    config = fake_config(
        model={"params": {"keywords": {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}}},
        reasoning={"chain_of_thought": True, "samples": 3, "sample_temperature": 2.0},
    )
    labelmill.label(config, ROWS, project=tmp_path / "p.db")
    items = annotations(tmp_path / "p.db")
    assert all(a.signals["votes"] == 3.0 and a.explanation for a in items)
    with sqlite3.connect(tmp_path / "p.db") as db:
        explained = db.execute("SELECT COUNT(*) FROM cache WHERE kind = 'explain'").fetchone()[0]
    assert explained == 3 * len(ROWS)  # three explanation paths per row, each answered


def test_p_true_and_verbalized_are_signals_beside_the_label(tmp_path):
    keywords = {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"],
                # the fake checker says yes / 9 for rows with positive words, no / 0 for negative ones
                "yes": ["good", "great", "fun"], "no": ["bad", "dull", "boring"], "9": ["good", "great", "fun"], "0": ["bad", "dull", "boring"]}
    config = fake_config(model={"params": {"keywords": keywords}}, reasoning={"p_true": True, "verbalized": True})
    plain = labelmill.label(fake_config(model={"params": {"keywords": keywords}}), ROWS, project=tmp_path / "a.db")
    result = labelmill.label(config, ROWS, project=tmp_path / "p.db")
    assert result.frame.llm_label.tolist() == plain.frame.llm_label.tolist()
    assert result.frame.llm_confidence.tolist() == plain.frame.llm_confidence.tolist()
    items = annotations(tmp_path / "p.db")
    for row, item in zip(ROWS, items):
        p_true = item.signals["p_true"]
        assert (p_true > 0.9) if item.label == "positive" and row["text"] != "nothing to say" else (p_true < 0.1 or 0.45 < p_true < 0.55)
        verbal = item.signals["verbalized"]
        expected = {"positive": (0.75, 1.0), "negative": (0.0, 0.25), "": (0.4, 0.6)}[row["label"] if row["text"] != "nothing to say" else ""]
        assert expected[0] < verbal < expected[1]  # a flat answer reads 1/2
    with sqlite3.connect(tmp_path / "p.db") as db:
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM cache GROUP BY kind").fetchall())
    assert kinds["verify"] == kinds["verbalized"] == len(ROWS)


def test_checks_need_a_scoring_backend(tmp_path):
    config = fake_config(reasoning={"p_true": True})
    config["model"] = {"backend": "openai", "name": "gpt-x", "server": {"base_url": "http://127.0.0.1:9/v1"}}
    with pytest.raises(LabelmillError, match="cannot score"):
        labelmill.label(config, ROWS, project=tmp_path / "p.db")


def test_reasoning_changes_the_run_but_default_configs_keep_theirs():
    from labelmill.config import Config

    plain = Config.model_validate(fake_config())
    same = Config.model_validate(fake_config(reasoning={"samples": 1}))
    other = Config.model_validate(fake_config(reasoning={"samples": 3}))
    assert plain.fingerprint() == same.fingerprint() != other.fingerprint()


def test_fused_calibration_learns_from_the_checks(tmp_path):
    # the label's own confidence is the same on every row; only the P(True) check ("clearly" -> yes)
    # tells the right labels from the wrong ones, and the fused calibration learns to use it
    keywords = {"positive": ["good"], "negative": ["bad"], "yes": ["clearly"], "no": ["maybe"]}
    config = fake_config(model={"params": {"keywords": keywords}}, reasoning={"p_true": True})
    rows = [{"text": f"a good film {i} clearly", "label": "positive"} for i in range(30)]
    rows += [{"text": f"a good film {i} maybe", "label": "positive" if i % 2 else "negative"} for i in range(30)]
    seed = tmp_path / "seed.csv"
    import pandas as pd

    pd.DataFrame(rows).to_csv(seed, index=False)
    fused = labelmill.calibrate(config, seed, method="fused", project=tmp_path / "p.db")
    platt = labelmill.calibrate(config, seed, method="platt", project=tmp_path / "p.db")
    assert set(fused.fused) == {"confidence", "p_true", "bias"} and fused.fused["p_true"] > 0.5
    out = labelmill.label(config, rows, project=tmp_path / "p.db", calibration=fused).frame
    sure, unsure = out.llm_confidence[:30].astype(float), out.llm_confidence[30:].astype(float)
    assert sure.min() > 0.9 and abs(unsure.mean() - 0.5) < 0.1
    flat = labelmill.label(config, rows, project=tmp_path / "p.db", calibration=platt).frame.llm_confidence.astype(float)
    assert flat.max() - flat.min() < 1e-6  # the confidence alone cannot tell them apart
    # a fused calibration saved to JSON and loaded gives the same confidences
    fused.save(tmp_path / "cal.json")
    from labelmill.numeric.calibration import Calibrator

    again = labelmill.label(config, rows, project=tmp_path / "p.db", calibration=Calibrator.load(tmp_path / "cal.json")).frame
    assert again.llm_confidence.tolist() == out.llm_confidence.tolist()


def test_tune_tries_reasoning_strategies(tmp_path):
    import pandas as pd
    import yaml

    from labelmill.errors import ConfigError
    from labelmill.strategies.tune.run import tune

    config = fake_config(model={"params": {"keywords": {"positive": ["good", "great", "fun"], "negative": ["bad", "dull", "boring"]}}})
    pd.DataFrame(ROWS * 4).to_csv(tmp_path / "dev.csv", index=False)
    report = tune(config, tmp_path / "dev.csv", shots=(0,), calibrations=("none",), reasonings=("none", "cot_sc3"), budget_s=60,
                  project=tmp_path / "p.db", out=tmp_path / "best.yaml")
    assert [t["name"] for t in report["trials"]] == ["zero-shot", "zero-shot + cot_sc3"]
    assert all(t["status"] == "done" for t in report["trials"])
    saved = yaml.safe_load((tmp_path / "best.yaml").read_text())
    best = report["best"]
    assert saved.get("reasoning", {}).get("samples", 1) == (3 if best["reasoning"] == "cot_sc3" else 1)
    with pytest.raises(ConfigError, match="unknown reasoning strategy"):
        tune(config, tmp_path / "dev.csv", shots=(0,), reasonings=("none", "sc1"), project=tmp_path / "p.db")


def _member_keywords(extra_positive):
    return {"model": {"params": {"keywords": {"positive": ["good", "great", "fun", *extra_positive], "negative": ["bad", "dull", "boring"]}}}}


def test_ensemble_of_prompts_and_models_combines_its_members(tmp_path):
    # three members: the config as is, other guidelines, and a "model" that also reads "nothing" as positive
    members = [{}, {"guidelines": "Classify the review's sentiment."}, _member_keywords(["nothing"])]
    config = fake_config(ensemble={"members": members})
    out = tmp_path / "out.csv"
    result = labelmill.label(config, ROWS, output=out, project=tmp_path / "p.db")
    with Store(tmp_path / "p.db") as store:
        runs = store.runs()
        assert len(runs) == 4  # one run per member, then the ensemble's
        items = list(store.annotations(runs[-1]["id"]))
        members_first = list(store.annotations(runs[0]["id"]))
    assert all(a.method == "ensemble" and a.source == "ensemble" for a in items)
    # scored members: the ensemble averages their distributions
    for a, first in zip(items, members_first):
        assert sum(a.distribution.values()) == pytest.approx(1.0)
        assert a.label == max(a.distribution, key=a.distribution.get)
    nothing = items[-1]
    assert json.loads(nothing.raw_answer)["members"] == ["positive", "positive", "positive"]
    assert nothing.signals["agreement"] == 1.0 and nothing.confidence > members_first[-1].confidence
    assert result.frame.llm_label.tolist() == [r["label"] for r in ROWS]
    # rerun: every member and the ensemble come from the store, nothing is labeled again
    again = labelmill.label(config, ROWS, output=out, project=tmp_path / "p.db")
    assert again.model_rows == 0 and again.frame.llm_confidence.tolist() == result.frame.llm_confidence.tolist()


def test_ensemble_vote_and_typos(tmp_path):
    members = [{}, _member_keywords(["nothing"]), {"model": {"params": {"keywords": {"positive": ["nothing"], "negative": ["say"]}}}}]
    config = fake_config(ensemble={"members": members, "combine": "vote"})
    result = labelmill.label(config, ROWS, project=tmp_path / "p.db")
    with Store(tmp_path / "p.db") as store:
        items = list(store.annotations(store.runs()[-1]["id"]))
    assert all(a.confidence in (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0) for a in items)
    assert all(a.confidence == a.signals["agreement"] for a in items)
    assert result.frame.llm_label.tolist()[-1] == "positive"
    bad = fake_config(ensemble={"members": [{"guideline": "x"}]})
    with pytest.raises(LabelmillError, match="not a config section"):
        labelmill.label(bad, ROWS, project=tmp_path / "p.db")


def test_plan_counts_the_requests_reasoning_adds():
    plain = labelmill.plan(fake_config(), ROWS)
    more = labelmill.plan(fake_config(reasoning={"chain_of_thought": True, "samples": 3, "p_true": True}), ROWS)
    assert plain["requests_per_row"] == {"answers": 1, "explanations": 0, "checks": 0}
    assert more["requests_per_row"] == {"answers": 3, "explanations": 3, "checks": 1}
    assert more["estimated_seconds"] > 4 * plain["estimated_seconds"]


def test_ensemble_plans_every_member_and_one_model_paths_refuse_it():
    from labelmill.config import Config
    from labelmill.core import Job

    config = fake_config(ensemble={"members": [{}, {"guidelines": "Classify the review's sentiment."}]})
    planned = labelmill.plan(config, ROWS)
    plain = labelmill.plan(fake_config(), ROWS)
    assert planned["requests_per_row"]["ensemble_members"] == 2 and planned["estimated_seconds"] == pytest.approx(2 * plain["estimated_seconds"])
    with pytest.raises(LabelmillError, match="ensemble"):
        Job(Config.model_validate(config))


def test_fused_without_signals_says_so(tmp_path):
    import pandas as pd

    from labelmill.events import Notice

    pd.DataFrame(ROWS * 4).to_csv(tmp_path / "seed.csv", index=False)
    notices = []
    cal = labelmill.calibrate(fake_config(), tmp_path / "seed.csv", method="fused", project=tmp_path / "p.db", on_event=notices.append)
    assert set(cal.fused) == {"confidence", "bias"}
    assert any(isinstance(n, Notice) and "reasoning.p_true" in n.message for n in notices)


def test_a_failed_explanation_fails_its_row_and_a_rerun_labels_it(tmp_path):
    # the first run's explanation requests time out for the row "boring"; the row is a typed, transient
    # failure (not a label made without its explanation), and the rerun labels it
    from labelmill.backends.fake import FakeBackend
    from labelmill.config import ModelSpec
    from labelmill.types import Generation

    class Flaky(FakeBackend):
        fail = True

        def generate(self, prompts, **kw):
            out = super().generate(prompts, **kw)
            return [Generation("", error="timeout", error_detail="slow") if self.fail and p.user.startswith("boring\n") else g for p, g in zip(prompts, out)]

    config = fake_config(reasoning={"chain_of_thought": True, "samples": 2})
    backend = Flaky(ModelSpec.model_validate(config["model"]))
    first = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    frame = first.frame
    boring = [r["text"] for r in ROWS].index("boring")
    assert frame.llm_label.isna().tolist() == [i == boring for i in range(len(ROWS))]
    assert frame.llm_error[boring].startswith("timeout")
    Flaky.fail = False
    again = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    assert again.frame.llm_label.tolist()[boring] == "negative" and again.frame.llm_explanation[boring]


def test_ensemble_rows_follow_their_members_on_a_rerun(tmp_path):
    from labelmill.backends.fake import FakeBackend
    from labelmill.config import ModelSpec
    from labelmill.types import ScoreResult

    class Flaky(FakeBackend):
        fail = True

        def score(self, prompts, candidates):
            out = super().score(prompts, candidates)
            return [ScoreResult([], error="timeout") if self.fail and p.user == "boring" else r for p, r in zip(prompts, out)]

    config = fake_config(ensemble={"members": [{}, {"guidelines": "Classify the review's sentiment."}], "combine": "mean"})
    backend = Flaky(ModelSpec.model_validate(config["model"]))
    boring = [r["text"] for r in ROWS].index("boring")
    first = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    assert first.frame.llm_label.isna().tolist() == [i == boring for i in range(len(ROWS))]
    Flaky.fail = False
    again = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    assert again.frame.llm_label.tolist() == [r["label"] for r in ROWS[:6]] + ["positive"]  # the members' new labels reach the ensemble


def test_a_transient_failure_of_one_path_fails_the_row_and_a_rerun_sends_only_it(tmp_path):
    """Chain of thought with 3 paths: only path 2's explanation for "boring" times out. The row is a typed,
    transient failure (not a label voted by 2 of 3 paths), and the rerun sends exactly that one request."""
    from labelmill.backends.fake import FakeBackend
    from labelmill.config import ModelSpec
    from labelmill.types import Generation

    sent: list[tuple[str, int]] = []

    class OnePathFlaky(FakeBackend):
        fail = True

        def generate(self, prompts, **kw):
            out = super().generate(prompts, **kw)
            sent.extend((p.user.split("\n")[0], kw.get("seed", 0)) for p in prompts)
            path = kw.get("seed", 0) - self.spec.seed
            return [Generation("", error="timeout", error_detail="slow") if self.fail and path == 2 and p.user.startswith("boring\n") else g
                    for p, g in zip(prompts, out)]

    config = fake_config(reasoning={"chain_of_thought": True, "samples": 3})
    backend = OnePathFlaky(ModelSpec.model_validate(config["model"]))
    first = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    boring = [r["text"] for r in ROWS].index("boring")
    assert first.frame.llm_label.isna().tolist() == [i == boring for i in range(len(ROWS))]
    assert first.frame.llm_error[boring].startswith("timeout")
    OnePathFlaky.fail = False
    sent.clear()
    again = labelmill.label(config, ROWS, project=tmp_path / "p.db", backend=backend)
    assert again.frame.llm_label.tolist()[boring] == "negative"
    with Store(tmp_path / "p.db") as store:
        item = store.labels(again.run_id, len(ROWS), ["positive", "negative"]).get(boring)
    assert item.signals["votes"] == 3.0 and item.signals["failed_votes"] == 0.0
    # the rerun generated only the failed explanation: the other paths' answers came from the cache
    assert [s for s in sent if s[0] == "boring"] == [("boring", backend.spec.seed + 2)]
    assert {s[0] for s in sent} == {"boring"}


def test_vote_fails_on_a_transient_failure_and_skips_a_lasting_one():
    from labelmill.core.reasoning import vote
    from labelmill.types import Label, ParseFailure

    yes, no = Label("positive", 0.9), Label("negative", 0.8)
    outcome, _ = vote([yes, yes, ParseFailure("timeout", "", "slow")])
    assert isinstance(outcome, ParseFailure) and outcome.kind == "timeout"
    outcome, _ = vote([yes, no, yes, ParseFailure("no_label", "blah")])
    assert isinstance(outcome, Label) and outcome.value == "positive" and outcome.signals["failed_votes"] == 1.0
    assert outcome.confidence == pytest.approx(0.5)


# the checks' prompts and the vote, by hand (core.reasoning) ---------------------------------------------------------
TASK_PROMPT = Prompt(system="Classify the sentiment.", turns=(("x", "y"),), user="a fun film")


def test_the_p_true_and_verbalized_checks_show_the_task_the_row_and_the_answer_word_for_word():
    asked = p_true_prompt(TASK_PROMPT, Label(value="positive", confidence=0.9))
    assert asked == Prompt(system="You check answers given to a task. Answer yes or no.", turns=(),
                           user="Task: Classify the sentiment.\n\na fun film\n\nProposed answer: positive\nIs the proposed answer correct?")
    rated = verbalized_prompt(TASK_PROMPT, Label(value={"city": "Zürich", "n": 2}, confidence=0.9))
    assert rated == Prompt(system="You rate answers given to a task. Answer with one digit.", turns=(),
                           user='Task: Classify the sentiment.\n\na fun film\n\nProposed answer: {"city": "Zürich", "n": 2}\n'
                                "How likely is it that the proposed answer is correct? Answer with one digit from 0 (surely wrong) to 9 (surely right).")
    assert answer_text("") == "(no answer)" and answer_text("no") == "no" and answer_text(["a", "é"]) == '["a", "é"]'


def test_structured_answers_vote_together_whatever_their_key_order_and_have_no_distribution():
    first, second, third = ({"a": 1, "b": 2}, 0.9), ({"b": 2, "a": 1}, 0.8), ({"a": 3, "b": 2}, 0.7)
    won, _ = vote([Label(value=v, confidence=c) for v, c in (third, first, second)])
    assert won.value == {"a": 1, "b": 2} and won.confidence == pytest.approx(2 / 3) and won.distribution is None
    fails = [ParseFailure("no_label", "x", "first"), ParseFailure("no_label", "y", "second")]
    assert vote(fails, ["why 1", "why 2"]) == (fails[0], "why 1")  # all failed: the first failure and its explanation


def test_explained_demos_show_their_reasoning_before_their_answer_with_chain_of_thought():
    """`examples.explanation_column`: with chain of thought, a demo's question carries its explanation as the
    row's answer prompt carries the model's own, then the request for the answer; a demo without one, or a
    config without chain of thought, shows the plain demo."""
    from labelmill.config import load_config
    from labelmill.core.job import Job
    from labelmill.errors import ConfigError

    items = [{"text": "a great day", "label": "positive", "why": "It calls the day great."},
             {"text": "a dull show", "label": "negative", "why": ""}]
    examples = {"items": items, "k": 2, "explanation_column": "why"}
    prompt = Job(load_config(fake_config(examples=examples, reasoning={"chain_of_thought": True}))).prompt("a fun film")
    assert prompt.turns == (("a great day\n\nReasoning: It calls the day great.\n\nNow give the answer only.", "positive"),
                            ("a dull show", "negative"))
    assert prompt.user == "a fun film"
    plain = Job(load_config(fake_config(examples=examples))).prompt("a fun film")
    assert plain.turns == (("a great day", "positive"), ("a dull show", "negative"))
    with pytest.raises(ConfigError, match="explanation column 'reason'"):
        Job(load_config(fake_config(examples={**examples, "explanation_column": "reason"}, reasoning={"chain_of_thought": True})))
