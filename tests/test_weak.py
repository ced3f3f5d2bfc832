"""Weak supervision on the fake backend: prompted sub-labelers run as cached runs of their own, rules need
no model, the label matrix and the label model's output, the analysis in eval and its report, the CLI."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import labelmill
from labelmill.errors import ConfigError
from labelmill.strategies.weak import weak

from conftest import child_env, cli_command, fake_config

ROWS = [
    {"text": "a great and fun film", "label": "positive"},       # enthusiastic: yes; no rule; zero-shot positive
    {"text": "boring and dull", "label": "negative"},            # keywords rule fires; zero-shot negative
    {"text": "bad acting, bad plot", "label": "negative"},      # regex fires; zero-shot negative
    {"text": "fun but boring", "label": "negative"},             # enthusiastic: a tie; keywords fires; zero-shot tie
    {"text": "nothing to say", "label": "positive"},             # zero-shot only (a tie: the first label)
]


def weak_config(call_log: str | None = None, **weak_section) -> dict:
    config = fake_config()
    config["model"]["params"] = {"keywords": {"positive": ["great", "fun", "good"], "negative": ["bad", "dull", "boring"],
                                              "yes": ["great", "fun"], "no": ["boring", "dull", "bad"]}}
    if call_log:
        config["model"]["params"]["call_log"] = call_log
    config["weak"] = {"sub_labelers": [
        {"name": "enthusiastic", "kind": "prompt", "question": "Is the review enthusiastic?", "answers": {"yes": "positive", "no": "abstain"},
         "abstain_below": 0.6},  # a tie (0.5) is no answer
        {"name": "boring", "kind": "keywords", "keywords": ["boring", "dull"], "label": "negative"},
        {"name": "bad", "kind": "regex", "pattern": r"\bbad\b", "label": "negative"},
        {"name": "zero_shot", "kind": "zero_shot"},
    ], **weak_section}
    return config


def test_weak_builds_the_label_matrix_and_combines_it(tmp_path):
    log = tmp_path / "calls.log"
    result = weak(weak_config(str(log)), ROWS, project=tmp_path / "p.db", output=tmp_path / "out.csv")
    # columns: enthusiastic (yes -> positive=0, no -> abstain), boring rule, bad rule, zero-shot; -1 = abstain
    assert result.sub_labelers == ["enthusiastic", "boring", "bad", "zero_shot"]
    assert result.L.tolist() == [[0, -1, -1, 0], [-1, 1, -1, 1], [-1, -1, 1, 1], [-1, 1, -1, 0], [-1, -1, -1, 0]]
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["weak_vote_boring"].fillna("").tolist() == ["", "negative", "", "negative", ""]
    assert out["llm_label"].tolist()[:3] == ["positive", "negative", "negative"]
    assert np.allclose(result.probs.sum(axis=1), 1.0) and out["llm_confidence"].between(0, 1).all()
    summary = {row["name"]: row for row in result.summary}
    assert summary["boring"]["coverage"] == pytest.approx(0.4) and summary["boring"]["empirical_accuracy"] == 1.0
    assert summary["zero_shot"]["empirical_accuracy"] == pytest.approx(4 / 5) and summary["zero_shot"]["conflicts"] == pytest.approx(0.2)
    # the prompted sub-labeler and the main labeler are runs in the store; a rerun asks the model nothing
    asked = len(log.read_text().splitlines())
    assert asked == 10  # 5 rows x (the enthusiastic question + the zero-shot prompt)
    again = weak(weak_config(str(log)), ROWS, project=tmp_path / "p.db")
    assert len(log.read_text().splitlines()) == asked and again.L.tolist() == result.L.tolist()
    # the zero-shot sub-labeler is the plain run of the config: `labelmill run` finds its labels in the cache
    plain = labelmill.run(weak_config(str(log)), ROWS, project=tmp_path / "p.db")
    assert plain.model_rows == 0


def test_rows_without_votes_and_majority_vote(tmp_path):
    config = weak_config()
    config["weak"]["sub_labelers"] = config["weak"]["sub_labelers"][1:3]  # the two rules only
    result = weak(config, ROWS, project=tmp_path / "p.db", label_model="majority_vote")
    assert result.frame["llm_label"].fillna("").tolist() == ["", "negative", "negative", "negative", ""]
    assert result.frame["llm_error"].tolist()[0].startswith("no_votes")
    assert result.frame["llm_confidence"].tolist()[1] == 1.0


def test_eval_and_the_cli_show_the_sub_labeler_table(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(weak_config()))
    pd.DataFrame(ROWS).to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(cli_command("weak", "c.json", "rows.csv", "--out", "out.csv"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "boring" in done.stdout and "coverage 0.400" in done.stdout
    done = subprocess.run(cli_command("eval", "c.json", "out.csv", "--json"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    table = {row["name"]: row for row in metrics["weak_sub_labelers"]}
    assert table["bad"]["coverage"] == pytest.approx(0.2) and table["bad"]["empirical_accuracy"] == 1.0
    assert metrics["weak_coverage"] == 1.0
    assert "Weak supervision: sub-labelers" in (tmp_path / "out.report.html").read_text()


def test_a_sub_labeler_voting_for_an_unknown_label_is_a_clear_error(tmp_path):
    config = weak_config()
    config["weak"]["sub_labelers"][1]["label"] = "negativ"
    with pytest.raises(ConfigError, match="'negativ', which is not a label"):
        weak(config, ROWS, project=tmp_path / "p.db")
    config = weak_config()
    config["weak"]["sub_labelers"][2]["pattern"] = "(unclosed"
    with pytest.raises(ConfigError, match="not a regular expression"):
        weak(config, ROWS, project=tmp_path / "p.db")


def test_yaml_yes_and_no_are_answers_not_booleans(tmp_path):
    from labelmill.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("task: classification\nlabels: [toxic, not toxic]\nweak:\n  sub_labelers:\n    - name: insult\n      kind: prompt\n"
                    "      question: Is it insulting?\n      answers:\n        yes: toxic\n        no: abstain\n")
    assert load_config(path).weak.sub_labelers[0].answers == {"yes": "toxic", "no": "abstain"}


def test_the_shipped_weak_examples_are_valid():
    from conftest import ROOT

    from labelmill.config import load_config
    from labelmill.strategies.weak.sublabelers import check_sub_labeler

    for name in ("civil", "agnews"):
        config = load_config(ROOT / "examples" / "weak" / f"{name}.yaml")
        for spec in config.weak.sub_labelers:
            check_sub_labeler(spec, config.label_names)


def test_the_end_model_labels_the_rows_no_sub_labeler_covered(tmp_path):
    """Rules only: the sentiment words decide the covered rows; the student learns them from the label
    model's probabilities and labels every row, the uncovered ones too."""
    rows = [{"text": f"{w} movie number {i}", "label": lab} for i in range(12) for w, lab in (("wonderful", "positive"), ("awful", "negative"))]
    rows += [{"text": "a wonderful film", "label": "positive"}, {"text": "an awful film", "label": "negative"}]  # no rule fires
    config = fake_config()
    config["weak"] = {"sub_labelers": [
        {"name": "good", "kind": "regex", "pattern": r"wonderful movie", "label": "positive"},
        {"name": "bad", "kind": "regex", "pattern": r"awful movie", "label": "negative"},
    ]}
    result = weak(config, rows, project=tmp_path / "p.db", end_model=True)
    assert result.frame["llm_label"].isna().tolist()[-2:] == [True, True]
    assert result.frame["weak_end_label"].tolist() == [r["label"] for r in rows]
    assert result.frame["weak_end_confidence"].between(0.5, 1.0).all()


def test_a_run_with_a_limit_resumes_into_the_full_one(tmp_path):
    """Like `labelmill run --limit`: each model sub-labeler's run is keyed by the whole input, so the later
    full run resumes it (one run per sub-labeler in the store) and asks only for the rows not done yet."""
    import sqlite3

    log = tmp_path / "calls.log"
    first = weak(weak_config(str(log)), ROWS, project=tmp_path / "p.db", limit=2)
    assert len(first.frame) == 2 and len(log.read_text().splitlines()) == 4  # 2 rows x 2 model sub-labelers
    full = weak(weak_config(str(log)), ROWS, project=tmp_path / "p.db")
    assert len(log.read_text().splitlines()) == 10 and full.L[:2].tolist() == first.L.tolist()
    with sqlite3.connect(tmp_path / "p.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
