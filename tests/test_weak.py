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
    # from the sidecar labelmill weak wrote: what the label model learned and which sub-labelers it kept
    assert table["bad"]["kept"] is True and 0 <= table["zero_shot"]["learned_accuracy"] <= 1 and metrics["weak_label_model"] == "dawid_skene"
    report = (tmp_path / "out.report.html").read_text()
    assert "Weak supervision: sub-labelers" in report and "alt='coverage and accuracy per sub-labeler' src='data:image/png;base64," in report


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


def test_the_shipped_weak_examples_are_valid_and_their_rules_beat_chance_on_their_seed_rows():
    """Each shipped weak config loads, names only its own labels, mixes model questions with rules, and
    every keyword/regex rule fires on its own seed (train) rows with precision above the share of its label there."""
    from conftest import ROOT, SHARED

    from labelmill.config import load_config
    from labelmill.io import read_rows
    from labelmill.strategies.weak.sublabelers import check_sub_labeler, one_label, rule_votes

    for name in ("civil", "agnews"):
        path = ROOT / "examples" / "weak" / f"{name}.yaml"
        config = load_config(path)
        kinds = {spec.kind for spec in config.weak.sub_labelers}
        assert {"prompt", "keywords", "zero_shot"} <= kinds, name
        assert (path.parent / config.weak.seed).resolve() == (ROOT.parent / "shared" / "data" / config.weak.seed.split("shared/data/")[1]).resolve()
        seed = read_rows(SHARED / config.weak.seed.split("shared/data/")[1], config.dataset)
        seed = seed.sample(n=min(3000, len(seed)), random_state=0)  # (a train file may be sorted by label)
        texts, gold = seed["text"].astype(str).tolist(), seed[config.gold_column].astype(str).to_numpy()
        names = config.label_names
        for spec in config.weak.sub_labelers:
            check_sub_labeler(spec, names)
            if spec.kind in ("keywords", "regex"):
                fires = one_label(rule_votes(spec, texts, names)) >= 0
                precision, base = float(np.mean(gold[fires] == spec.label)), float(np.mean(gold == spec.label))
                assert fires.mean() >= 0.005 and precision > base + 0.1, (name, spec.name, fires.mean(), precision, base)


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


SEED = ([{"text": f"great fun day {i}", "label": "positive"} for i in range(10)]  # two 'yes' words: P(yes) ~ 1
        + [{"text": f"great day {i}", "label": "positive"} for i in range(2)]  # one word: P(yes) 0.95, mostly wrong
        + [{"text": f"fun day {i}", "label": "negative"} for i in range(3)]
        + [{"text": f"so dull {i}", "label": "negative"} for i in range(4)])


def test_auto_thresholds_and_flags_come_from_the_seed_rows(tmp_path):
    """abstain_below: auto: on the seed rows one 'yes' word is right 2 times in 5, two are always right, so
    the threshold lands above P(yes | one word) and 'fun times' (one word) gets no vote, where a fixed 0.6
    would vote. A rule that is wrong on the seed rows is flagged, and dropped with select."""
    pd.DataFrame(SEED).to_csv(tmp_path / "seed.csv", index=False)
    config = weak_config()
    config["weak"]["sub_labelers"][0]["abstain_below"] = "auto"
    config["weak"]["min_precision"] = 0.8  # one word: 12 of 15 right at P(yes) >= 0.953; two words: 10 of 10
    config["weak"]["sub_labelers"].append({"name": "dull_means_good", "kind": "keywords", "keywords": ["dull"], "label": "positive"})
    rows = [*ROWS, {"text": "fun times", "label": "negative"}, {"text": "great fun", "label": "positive"}]
    with pytest.raises(ConfigError, match="seed rows"):
        weak(config, rows, project=tmp_path / "p.db")
    result = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv", output=tmp_path / "out.csv")
    table = {r["name"]: r for r in result.summary}
    assert 0.96 < table["enthusiastic"]["thresholds"]["positive"] < 1.0 and table["enthusiastic"]["thresholds"]["negative"] is None
    assert result.L[:, 0].tolist() == [0, -1, -1, -1, -1, -1, 0]  # 'fun times' and 'fun but boring' no longer vote
    assert table["enthusiastic"]["seed_accuracy"] == 1.0 and table["enthusiastic"]["seed_rows"] == len(SEED)
    assert table["dull_means_good"]["seed_accuracy"] == 0.0 and table["dull_means_good"]["flags"] and table["dull_means_good"]["kept"]
    assert set(result.kept) == {s["name"] for s in config["weak"]["sub_labelers"]}
    assert 0 <= table["zero_shot"]["learned_accuracy"] <= 1
    side = json.loads((tmp_path / "out.csv.weak.json").read_text())
    assert side["label_model"] == "dawid_skene" and side["sub_labelers"][0]["thresholds"]["positive"] > 0.95
    # the seed rows are runs of their own: the input's run is untouched, a rerun asks nothing
    assert set(result.seed_run_ids) == {"enthusiastic", "zero_shot"} and not set(result.seed_run_ids.values()) & set(result.run_ids.values())
    dropped = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv", select=True)
    assert "dull_means_good" not in dropped.kept and {r["name"]: r["kept"] for r in dropped.summary}["dull_means_good"] is False
    assert dropped.frame["weak_vote_dull_means_good"].fillna("").tolist() == result.frame["weak_vote_dull_means_good"].fillna("").tolist()


def test_python_functions_and_label_columns_vote(tmp_path):
    """A function of the row (from a file next to the config) and another labeler's column (the input's,
    or a file with the same rows, such as a FreeAL output) are sub-labelers too."""
    (tmp_path / "rules.py").write_text("def short(row):\n    return 'negative' if len(row['text']) < 16 else None\n"
                                       "def broken(row):\n    return row['missing']\n")
    rows = [{**r, "other": lab} for r, lab in zip(ROWS, ["positive", "", "negative", "negative", "POSITIVE"])]
    pd.DataFrame({"student_label": ["positive", "negative", "negative", "positive", "negative"]}).to_csv(tmp_path / "freeal.csv", index=False)
    config = weak_config()
    config["weak"]["sub_labelers"] = [
        {"name": "short", "kind": "python", "function": f"{tmp_path / 'rules.py'}:short"},
        {"name": "other", "kind": "column", "column": "other"},
        {"name": "student", "kind": "column", "column": "student_label", "file": str(tmp_path / "freeal.csv")},
    ]
    result = weak(config, rows, project=tmp_path / "p.db")
    assert result.L.tolist() == [[-1, 0, 0], [1, -1, 1], [-1, 1, 1], [1, 1, 0], [1, 0, 1]]
    config["weak"]["sub_labelers"][0]["function"] = f"{tmp_path / 'rules.py'}:broken"
    with pytest.raises(ConfigError, match="raised on row 0 .KeyError"):
        weak(config, rows, project=tmp_path / "p.db")
    config["weak"]["sub_labelers"][0]["function"] = "no_such_module_here:f"
    with pytest.raises(ConfigError, match="cannot load"):
        weak(config, rows, project=tmp_path / "p.db")
    config["weak"]["sub_labelers"] = [{"name": "other", "kind": "column", "column": "label_typo"}]
    with pytest.raises(ConfigError, match="no column 'label_typo'"):
        weak(config, rows, project=tmp_path / "p.db")
    config["weak"]["sub_labelers"] = [{"name": "other", "kind": "column", "column": "label"}]
    bad = [{**r, "label": "meh"} for r in ROWS]
    with pytest.raises(ConfigError, match="'meh' on row 0"):
        weak(config, bad, project=tmp_path / "p.db")


def test_multi_label_tasks_get_one_label_model_per_label(tmp_path):
    rows = [{"text": "happy and furious", "labels": "anger|joy"}, {"text": "happy day", "labels": "joy"},
            {"text": "furious rant", "labels": "anger"}, {"text": "a quiet note", "labels": ""}]
    config = fake_config()
    config.update(task="multilabel", labels=["joy", "anger"], gold_column="labels")
    config["model"]["params"] = {"keywords": {"joy": ["happy"], "anger": ["furious"]}}
    config["weak"] = {"sub_labelers": [
        {"name": "happy", "kind": "keywords", "keywords": ["happy"], "label": "joy"},
        {"name": "furious", "kind": "regex", "pattern": "furious", "label": "anger"},
        {"name": "zero_shot", "kind": "zero_shot"},
    ]}
    result = weak(config, rows, project=tmp_path / "p.db", output=tmp_path / "out.csv")
    assert result.L.shape == (4, 3, 2) and result.L[0, 0].tolist() == [1, -1] and result.L[1, 2].tolist() == [1, 0]
    labels = result.frame["llm_label"].fillna("").tolist()
    assert labels[1] == "joy" and labels[2] == "anger" and result.frame["llm_error"][3].startswith("no_votes") is False
    # row 0: the rule votes for anger, the one-label zero-shot against it; the vote's tie keeps it (P >= 0.5)
    voted = weak(config, rows, project=tmp_path / "p.db", label_model="majority_vote")
    assert voted.frame["llm_label"][0] == "joy|anger" and voted.probs[0].tolist() == [1.0, 0.5]
    assert result.frame["weak_vote_happy"].fillna("").tolist() == ["joy", "joy", "", ""]
    assert all(0 <= c <= 1 for c in result.frame["llm_confidence"].dropna())
    metrics = labelmill.evaluate(config, tmp_path / "out.csv")
    table = {r["name"]: r for r in metrics["weak_sub_labelers"]}
    assert table["happy"]["coverage"] == 0.5 and table["happy"]["empirical_accuracy"] == 1.0


def test_propose_drafts_sub_labelers_for_a_person_to_edit(tmp_path):
    """The model's questions and keywords become a YAML draft; a word proposed for both labels is dropped, and
    so is a label name;
    each keyword rule's coverage is measured on the rows; the draft validates as a weak section."""
    import yaml

    from labelmill.strategies.weak.section import WeakSpec
    from labelmill.strategies.weak.propose import propose

    config = weak_config()
    config["model"]["params"]["replies"] = [
        [r"label is (\w+)\. Reply with the question", "1. Is the review {0}?"],
        [r"rows about (\w+) and rarely", "great, fun, film, Positive, \"{0} words\""],
    ]
    (tmp_path / "c.json").write_text(json.dumps(config))
    pd.DataFrame(ROWS).to_csv(tmp_path / "rows.csv", index=False)
    draft = propose(config, ROWS, project=tmp_path / "p.db")
    specs = {s.name: s for s in draft.sub_labelers}
    assert specs["is_positive"].question == "Is the review positive?" and specs["is_positive"].abstain_below == "auto"
    assert specs["positive_words"].keywords == ["positive words"] and "great" not in specs["negative_words"].keywords
    section = WeakSpec.model_validate(yaml.safe_load(draft.yaml())["weak"])
    assert [s.name for s in section.sub_labelers] == list(specs)
    done = subprocess.run(cli_command("weak", "propose", "c.json", "rows.csv", "--out", "draft.yaml"), cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fires on 0.0% of the 5 rows" in (tmp_path / "draft.yaml").read_text() and json.loads((tmp_path / "c.json").read_text()) == config


def test_seed_rows_are_a_sample_not_the_head_of_a_sorted_file(tmp_path):
    """Seed files are often sorted by label (AG News' train_subset starts with 2,000 World rows): with
    seed_rows under the file's length the rows are drawn across it, so the 'so dull' rows at the end count."""
    sorted_seed = [{"text": f"great fun day {i}", "label": "positive"} for i in range(30)] + [{"text": f"so dull {i}", "label": "negative"} for i in range(30)]
    pd.DataFrame(sorted_seed).to_csv(tmp_path / "seed.csv", index=False)
    config = weak_config()
    config["weak"]["sub_labelers"] = [{"name": "dull_means_bad", "kind": "keywords", "keywords": ["dull"], "label": "negative"}]
    config["weak"]["seed_rows"] = 20
    row = weak(config, ROWS, project=tmp_path / "p.db", seed=tmp_path / "seed.csv").summary[0]
    assert row["seed_rows"] == 20 and row["seed_accuracy"] == 1.0 and 0.2 < row["seed_coverage"] < 0.8


def test_bad_seed_rows_and_label_model_choices_are_clear_errors(tmp_path):
    pd.DataFrame({"text": ["great fun"]}).to_csv(tmp_path / "nogold.csv", index=False)
    with pytest.raises(ConfigError, match="no gold column 'label'"):
        weak(weak_config(), ROWS, project=tmp_path / "p.db", seed=tmp_path / "nogold.csv")
    config = weak_config()
    config["weak"]["sub_labelers"] = config["weak"]["sub_labelers"][1:3]
    with pytest.raises(ConfigError, match="at least 3 sub-labelers"):
        weak(config, ROWS, project=tmp_path / "p.db", label_model="snorkel")
    config = weak_config()
    config["weak"]["sub_labelers"][1]["abstain_below"] = "auto"
    with pytest.raises(ConfigError, match="keywords sub-labeler has none"):
        weak(config, ROWS, project=tmp_path / "p.db")
    config = weak_config(min_coverage=0.9, select=True)
    config["weak"]["sub_labelers"] = config["weak"]["sub_labelers"][1:3]  # the rules fire on 40% and 20%
    with pytest.raises(ConfigError, match="dropped every sub-labeler"):
        weak(config, ROWS, project=tmp_path / "p.db")


def test_seed_rows_anchor_dawid_skene_through_weak(tmp_path):
    """Four rules say the opposite of the truth and agree with each other; one honest rule agrees with none.
    Unanchored, EM cannot tell the inverted world from the real one and follows the majority of votes;
    with the seed rows (weak.fit_on_seed, the default) it learns the rules are inverted and labels right."""
    subs = [{"name": "good_means_negative", "kind": "keywords", "keywords": ["good"], "label": "negative"},
            {"name": "bad_means_positive", "kind": "keywords", "keywords": ["bad"], "label": "positive"},
            {"name": "shine_means_negative", "kind": "keywords", "keywords": ["shine"], "label": "negative"},
            {"name": "rain_means_positive", "kind": "keywords", "keywords": ["rain"], "label": "positive"},
            {"name": "honest_good", "kind": "keywords", "keywords": ["good"], "label": "positive"}]
    rows = [{"text": f"good shine {i}", "label": "positive"} for i in range(6)] + [{"text": f"bad rain {i}", "label": "negative"} for i in range(6)]
    seed = [{"text": f"good shine day {i}", "label": "positive"} for i in range(10)] + [{"text": f"bad rain day {i}", "label": "negative"} for i in range(10)]
    pd.DataFrame(seed).to_csv(tmp_path / "seed.csv", index=False)
    truth = [r["label"] for r in rows]
    config = fake_config()
    config["weak"] = {"sub_labelers": subs}
    anchored = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv")
    assert anchored.frame["llm_label"].tolist() == truth
    config["weak"]["fit_on_seed"] = False
    loose = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv")
    assert loose.frame["llm_label"].tolist() == ["negative" if t == "positive" else "positive" for t in truth]


# sub-labelers read from Python functions and label columns: loading, caching, multi-label columns and the
# messages a user gets (mutmut found each of these unchecked)
def _spec(**fields):
    from labelmill.strategies.weak.section import SubLabelerSpec

    return SubLabelerSpec(**{"name": "mine", **fields})


def test_a_python_sub_labeler_loads_from_a_file_once_even_under_a_folder_with_a_colon(tmp_path):
    from labelmill.strategies.weak.sublabelers import load_function

    folder = tmp_path / "v1:rules"  # a colon in the path: only the last one separates the function's name
    folder.mkdir()
    (folder / "rules.py").write_text("LOADS = []\nLOADS.append(1)\nLIMIT = 3\n\ndef short(row):\n    return 'a' if len(row['text']) < LIMIT else None\n")
    spec = _spec(kind="python", function="v1:rules/rules.py:short")
    first, again = load_function(spec, tmp_path), load_function(spec, tmp_path)
    assert first({"text": "hi"}) == "a" and first({"text": "hello"}) is None
    assert again is first and first.__globals__["LOADS"] == [1]  # the file ran once
    with pytest.raises(ConfigError) as info:
        load_function(_spec(kind="python", function="v1:rules/rules.py:LIMIT"), tmp_path)
    assert str(info.value).startswith("weak.sub_labelers[mine]: 'v1:rules/rules.py:LIMIT' is not a function")
    assert info.value.fix == "name a function of the row"
    with pytest.raises(ConfigError) as info:
        load_function(_spec(kind="python", function="missing.py:short"), tmp_path)
    assert f"cannot load 'missing.py:short' (FileNotFoundError: no file {tmp_path / 'missing.py'})" in str(info.value)
    assert info.value.fix == "check the module or file path (relative to the config's folder) and the function's name"
    assert load_function(_spec(kind="python", function="json:dumps"), tmp_path)({"a": 1}) == '{"a": 1}'  # an importable module


def test_a_python_sub_labeler_that_raises_names_the_row_and_the_fix():
    from labelmill.strategies.weak.sublabelers import python_votes

    spec = _spec(kind="python", function="rules.py:ratio")
    with pytest.raises(ConfigError) as info:
        python_votes(spec, lambda row: "a" if 1 / row["n"] else None, [{"n": 1}, {"n": 0}], ["a", "b"], multi=False)
    assert str(info.value) == "weak.sub_labelers[mine]: rules.py:ratio raised on row 1 (ZeroDivisionError: division by zero)"
    assert info.value.fix == "make the function return None for rows it cannot judge"
    votes = python_votes(spec, lambda row: ["A", "b"] if row["n"] else None, [{"n": 1}, {"n": 0}], ["a", "b", "c"], multi=True)
    assert votes.tolist() == [[1, 1, -1], [-1, -1, -1]]  # labels matched case-insensitively; None abstains


def test_a_label_column_votes_single_and_multi_label_and_refuses_other_values():
    from labelmill.strategies.weak.sublabelers import column_votes

    spec = _spec(kind="column", column="other")
    names = ["toxic", "not toxic", "spam"]
    single = column_votes(spec, ["not toxic", "", None, float("nan"), "TOXIC"], names, None)
    assert single.tolist() == [[-1, 1, -1], [-1, -1, -1], [-1, -1, -1], [-1, -1, -1], [1, -1, -1]]  # a label with a space stays whole
    multi = column_votes(spec, ["toxic|spam", "not toxic", "toxic| "], names, "|")
    assert multi.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]  # a multi-label cell also votes against the labels it leaves out
    with pytest.raises(ConfigError) as info:
        column_votes(spec, ["toxic", "rude"], names, None)
    assert str(info.value) == "weak.sub_labelers[mine] gave 'rude' on row 1, which is not a label of this task"
    assert info.value.fix == "use one of: toxic, not toxic, spam (or None to abstain)"


def test_seed_rows_anchor_each_label_model_of_a_multi_label_task(tmp_path):
    """The multi-label twin of the test above, through label columns: four columns list exactly the labels a
    row lacks, one lists the truth. Each label's model follows the inverted majority unanchored; anchored on
    seed rows that carry the same columns (a column from another file could not be read there), it learns
    the columns are inverted. The eval table lists each column with its polarity and coverage."""
    flip = {"joy": "anger", "anger": "joy"}
    def row(truth, i, text):
        return {"text": f"{text} {i}", "labels": truth, "honest": truth, **{f"inv{k}": flip[truth] for k in range(4)}}
    both = {"text": "sunny then stormy", "labels": "joy|anger", "honest": "joy|anger", **{f"inv{k}": "" for k in range(4)}}
    rows = [row("joy", i, "sunny") for i in range(6)] + [row("anger", i, "stormy") for i in range(6)] + [both]
    seed = [row("joy", i, "sunny day") for i in range(10)] + [row("anger", i, "stormy day") for i in range(10)]
    pd.DataFrame(seed).to_csv(tmp_path / "seed.csv", index=False)
    config = fake_config()
    config.update(task="multilabel", labels=["joy", "anger"], gold_column="labels")
    config["weak"] = {"sub_labelers": [{"name": f"inv{k}", "kind": "column", "column": f"inv{k}"} for k in range(4)]
                      + [{"name": "honest", "kind": "column", "column": "honest"}]}
    truth = [r["labels"] for r in rows]
    anchored = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv", output=tmp_path / "out.csv")
    assert anchored.frame["llm_label"].tolist() == truth
    config["weak"]["fit_on_seed"] = False
    loose = weak(config, rows, project=tmp_path / "p.db", seed=tmp_path / "seed.csv")
    assert loose.frame["llm_label"].tolist()[:12] == [flip[t] for t in truth[:12]]
    table = {r["name"]: r for r in labelmill.evaluate(config, tmp_path / "out.csv")["weak_sub_labelers"]}
    # the last row's "joy|anger" is two right votes: the cell is split at the task's separator
    assert table["honest"]["polarity"] == [0, 1] and table["honest"]["coverage"] == 1.0 and table["honest"]["empirical_accuracy"] == 1.0
    assert table["inv0"]["empirical_accuracy"] == 0.0 and table["inv0"]["gold_rows"] == 12 and table["inv0"]["coverage"] == pytest.approx(12 / 13)
