"""weak's parts one at a time, each expected value worked out by hand: `weak propose`'s draft from the
model's answers (a fake proposer that answers only the prompts it should), the answers cleaned, the draft's
YAML; the sub-labeler table `eval` builds from the vote columns and the sidecar; snorkel's label model on
rows nobody voted on."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from labelmill.errors import ConfigError, InputDataError
from labelmill.strategies.weak import propose as propose_module
from labelmill.strategies.weak.propose import Draft, _question, _words, propose
from labelmill.strategies.weak.section import SubLabelerSpec

CONFIG = {"task": "classification", "name": "news", "labels": ["Sci/Tech", "World", "Sports"], "guidelines": "  Sort the news by topic.  ",
          "input_template": "{text}", "gold_column": "label", "examples": {"k": 0}, "model": {"backend": "fake", "seed": 0}}


class Proposer:
    """Answers propose's prompts by what they ask: a question or a keyword list per label, recorded."""

    def __init__(self, questions: dict[str, str], words: dict[str, str]):
        self.questions, self.words, self.asked = questions, words, []

    def __call__(self, cfg, prompts, project, backend):
        self.asked.append((cfg.model.backend, cfg.model.name, [p.user for p in prompts]))
        out = []
        for p in prompts:
            q = re.search(r"the row's label is (.+)\. Reply with the question only\.$", p.user)
            w = re.search(r"Write (\d+) words that often appear in rows about (.+) and rarely", p.user)
            assert q or w, p.user
            out.append(self.questions[q.group(1)] if q else self.words[w.group(2)])
        return out


def rows(n: int) -> list[dict]:
    return [{"text": f"row {i}: the  match   ended {'late' if i % 2 else 'early'}", "label": "Sports"} for i in range(n)]


def test_propose_drafts_a_question_and_a_keyword_rule_per_label_from_the_answers(monkeypatch, tmp_path):
    """Questions cleaned (numbering, 'Question:', quotes); a non-question gives none. Keywords: the label names and
    their words dropped ('sci', 'tech', 'world'), a word proposed for two labels dropped from both ('match'), at
    most `keywords` kept; each rule's coverage on the rows by hand; slugs from the label names; zero-shot last."""
    fake = Proposer(
        questions={"Sci/Tech": "1. Question: \"Is it about science or technology?\"", "World": "World news, surely.",
                   "Sports": "- 'Is it about a game?'"},
        words={"Sci/Tech": "chip, match, Sci, tech, Sci/Tech, software", "World": "election, world, war, summit",
               "Sports": "match, late, goal, early, score"},
    )
    monkeypatch.setattr(propose_module, "_ask", fake)
    draft = propose(CONFIG, rows(10), project=tmp_path / "p.db", keywords=3)
    specs = {s.name: s for s in draft.sub_labelers}
    assert list(specs) == ["is_sci_tech", "sci_tech_words", "world_words", "is_sports", "sports_words", "zero_shot"]
    assert specs["is_sci_tech"].question == "Is it about science or technology?" and specs["is_sports"].question == "Is it about a game?"
    assert specs["is_sci_tech"].answers == {"yes": "Sci/Tech", "no": "abstain"} and specs["is_sci_tech"].abstain_below == "auto"
    assert specs["is_sci_tech"].kind == "prompt" and specs["zero_shot"].kind == "zero_shot"
    # keywords=3 keeps the first three words of each answer before any is dropped: 'chip, match, sci' -> 'chip'
    assert specs["sci_tech_words"].keywords == ["chip"] and specs["sci_tech_words"].label == "Sci/Tech"
    assert specs["world_words"].keywords == ["election", "war"]
    assert specs["sports_words"].keywords == ["late", "goal"] and specs["sports_words"].kind == "keywords"
    # 'late' is in the 5 odd rows of 10; 'chip', 'election', 'war' in none
    assert draft.coverage == {"sci_tech_words": 0.0, "world_words": 0.0, "sports_words": 0.5}
    assert draft.rows == 10 and draft.proposer == "fake:qwen2.5-coder-0.5b"  # (the default model's name)


def test_propose_shows_a_seeded_sample_of_rows_and_asks_the_named_proposer(monkeypatch, tmp_path):
    """The prompt: the guideline stripped, the labels, `sample` rows (seeded, in row order, spaces collapsed,
    cut at 240 characters); the proposer's settings replace the labeler's; the coverage is measured on a seeded
    sample of `coverage_rows` rows when the file has more."""
    fake = Proposer(questions={n: "Is it?" for n in CONFIG["labels"]}, words={n: "late" for n in CONFIG["labels"][:1]} | {"World": "", "Sports": ""})
    monkeypatch.setattr(propose_module, "_ask", fake)
    data = [{**r, "text": r["text"] + " " + "x" * 300} for r in rows(30)]
    draft = propose(CONFIG, data, project=tmp_path / "p.db", sample=4, proposer={"name": "big"}, coverage_rows=20)
    backend, name, asked = fake.asked[0]
    assert (backend, name) == ("fake", "big") and draft.proposer == "fake:big" and draft.rows == 20
    assert len(asked) == 6  # 3 questions, then 3 keyword lists
    shown = re.search(r"Some rows to label:\n([\s\S]*?)\n\n", asked[0]).group(1).splitlines()
    frame = pd.DataFrame(data).sample(n=20, random_state=0).sort_index()
    texts = frame["text"].tolist()
    picked = sorted(np.random.default_rng(0).choice(20, size=4, replace=False))
    assert shown == [f"- {' '.join(texts[i].split())[:240]}" for i in picked] and all(len(line) == 242 for line in shown)
    assert asked[0].startswith("Task: Sort the news by topic.\nLabels: Sci/Tech, World, Sports\nSome rows to label:\n")
    assert asked[0].endswith("exactly when the row's label is Sci/Tech. Reply with the question only.")
    assert asked[3].endswith("Write 12 words that often appear in rows about Sci/Tech and rarely in the others (not the label names). "
                             "Reply with the words, separated by commas.")
    # 'late' is in the odd rows of the 20 sampled
    assert draft.coverage == {"sci_tech_words": pytest.approx(np.mean(["late" in t for t in texts]), abs=0)}
    every = propose(CONFIG, data[:5], project=tmp_path / "p.db", sample=8)
    assert every.rows == 5 and len(re.search(r"Some rows to label:\n([\s\S]*?)\n\n", fake.asked[-1][2][0]).group(1).splitlines()) == 5


def test_propose_refuses_a_task_without_labels_to_vote_and_an_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="classification tasks; this config is 'ner'"):
        propose({**CONFIG, "task": "ner", "labels": ["PER"]}, rows(3), project=tmp_path / "p.db")
    with pytest.raises(InputDataError, match="no rows"):
        propose(CONFIG, pd.DataFrame({"text": [], "label": []}), project=tmp_path / "p.db")


def test_a_question_is_the_first_line_that_reads_as_one():
    assert _question("Sure!\n2) question: `Is the team winning?`\nIs it?") == "Is the team winning?"
    assert _question("* Does it name a country?") == "Does it name a country?"
    assert _question("Is it?\nIs it about sport?") == "Is it about sport?"  # two words: too short
    assert _question("Is it big?") == "Is it big?"  # three words: enough
    long = "Is " + "very " * 38 + "big?"  # 40 words
    assert _question(long) == long and _question("Is " + "very " * 39 + "big?") == ""
    assert _question("It is about sport.") == "" and _question("") == ""


def test_keywords_are_cleaned_deduplicated_and_limited():
    assert _words("1. Goal, goal; \"Penalty kick\".\n- red card\n* offside", 10) == ["goal", "penalty kick", "red card", "offside"]
    assert _words("a b c d, one two three, !!!, x/y, " + "w" * 42, 10) == ["one two three"]  # four words, symbols, too long
    assert _words("a, b, c, d", 2) == ["a", "b"] and _words("", 5) == []
    assert _words("Café, l'été, 12 goals, 3-0", 5) == ["café", "l'été", "goals", "3-0"]  # a number then a space reads as numbering


def test_the_draft_is_yaml_with_a_comment_per_rule_and_where_it_came_from():
    draft = Draft([SubLabelerSpec(name="is_world", kind="prompt", question="Is it world news?", answers={"yes": "World", "no": "abstain"}),
                   SubLabelerSpec(name="world_words", kind="keywords", keywords=["élection"], label="World"),
                   SubLabelerSpec(name="zero_shot", kind="zero_shot")], {"world_words": 0.125}, 8, "fake:big")
    assert draft.yaml() == (
        "# Drafted by labelmill weak propose (fake:big) from the guidelines and 8 rows.\n"
        "# Edit before use: keep what makes sense, fix the questions, remove words that mislead.\n"
        "weak:\n"
        "  sub_labelers:\n"
        "    - name: is_world\n"
        "      kind: prompt\n"
        "      question: Is it world news?\n"
        "      answers:\n"
        "        'yes': World\n"
        "        'no': abstain\n"
        "    # fires on 12.5% of the 8 rows\n"
        "    - name: world_words\n"
        "      kind: keywords\n"
        "      keywords:\n"
        "      - élection\n"
        "      label: World\n"
        "    - name: zero_shot\n"
        "      kind: zero_shot\n"
    )


# the sub-labeler table eval builds (WeakStrategy.evaluate) ------------------------------------------------------
def _context(frame, gold, config=None, output=None):
    from labelmill.config import load_config
    from labelmill.core.strategy import EvalContext
    from labelmill.tasks import make_task

    task = make_task(load_config(config or {**CONFIG, "labels": ["pos", "neg"]}))
    return EvalContext(frame=frame, task=task, gold=gold, correct=np.zeros(len(gold), dtype=bool), output=output)


def test_the_sub_labeler_table_is_read_from_the_vote_columns_by_hand(tmp_path):
    """Three vote columns over five rows (gold pos, neg, neg, pos, unknown): `a` votes pos, pos, -, neg, -;
    `b` votes -, neg, neg, (a label outside the set: no vote), -; `c` votes nothing. Coverage a 3/5, b 2/5; overlaps:
    rows both vote on, 1 of 5 (row 1); conflicts: that row, where a says pos and b neg; a is right on row 0 (pos) and
    not on 1 and 3: 1/3; b on rows 1 and 2: 2/2. Rows with any vote: 0-3, 4 of 5."""
    from labelmill.strategies.weak.strategy import STRATEGY

    frame = pd.DataFrame({"text": list("vwxyz"), "weak_vote_a": ["pos", "pos", None, "neg", ""], "weak_vote_b": [None, "neg", "neg", "other", None],
                          "weak_vote_c": [None] * 5, "llm_label": ["pos"] * 5})
    found = STRATEGY.evaluate(_context(frame, ["pos", "neg", "neg", "pos", None]))
    a, b, c = found["weak_sub_labelers"]
    assert a == {"name": "a", "polarity": [0, 1], "coverage": 0.6, "overlaps": 0.2, "conflicts": 0.2, "gold_rows": 3, "empirical_accuracy": pytest.approx(1 / 3, abs=1e-12)}
    assert b == {"name": "b", "polarity": [1], "coverage": 0.4, "overlaps": 0.2, "conflicts": 0.2, "gold_rows": 2, "empirical_accuracy": 1.0}
    assert c == {"name": "c", "polarity": [], "coverage": 0.0, "overlaps": 0.0, "conflicts": 0.0, "gold_rows": 0, "empirical_accuracy": None}
    assert found["weak_coverage"] == 0.8 and "weak_label_model" not in found
    assert STRATEGY.evaluate(_context(frame.drop(columns=["weak_vote_a", "weak_vote_b", "weak_vote_c"]), ["pos"] * 5)) == {}


def test_the_sidecar_adds_what_the_vote_columns_cannot_hold(tmp_path):
    """`<output>.weak.json`: its figures join the rows of the sub-labelers it names (its other keys do not), and
    the label model is named; a sub-labeler it does not name keeps the vote columns' figures only."""
    from labelmill.strategies.weak.strategy import STRATEGY

    out = tmp_path / "out.csv"
    side = {"label_model": "snorkel", "sub_labelers": [
        {"name": "a", "kind": "keywords", "seed_rows": 20, "seed_coverage": 0.5, "seed_accuracy": 0.9, "learned_accuracy": 0.8,
         "thresholds": {"pos": 0.7}, "flags": ["low coverage"], "kept": True, "secret": 1}]}
    (tmp_path / "out.csv.weak.json").write_text(json.dumps(side))
    frame = pd.DataFrame({"text": ["v", "w"], "weak_vote_a": ["pos", None], "weak_vote_b": ["neg", "neg"]})
    found = STRATEGY.evaluate(_context(frame, ["pos", "neg"], output=out))
    a, b = found["weak_sub_labelers"]
    assert a == {"name": "a", "polarity": [0], "coverage": 0.5, "overlaps": 0.5, "conflicts": 0.5, "gold_rows": 1, "empirical_accuracy": 1.0,
                 "kind": "keywords", "seed_rows": 20, "seed_coverage": 0.5, "seed_accuracy": 0.9, "learned_accuracy": 0.8, "thresholds": {"pos": 0.7},
                 "flags": ["low coverage"], "kept": True}
    assert b == {"name": "b", "polarity": [1], "coverage": 1.0, "overlaps": 0.5, "conflicts": 0.5, "gold_rows": 2, "empirical_accuracy": 0.5}
    assert found["weak_label_model"] == "snorkel" and found["weak_coverage"] == 1.0
    assert "weak_label_model" not in STRATEGY.evaluate(_context(frame, ["pos", "neg"], output=tmp_path / "other.csv"))


def test_the_multi_label_table_counts_each_label_a_cell_gives():
    """Cells hold labels joined by the task's separator: coverage is the share of rows with any; accuracy the
    share of the labels given that the row's gold holds (a: 'pos' right, 'neg' wrong on row 0, 'neg' right on row
    2: 2/3); a label outside the set is no polarity but is counted; coverage of the table: rows any column voted on."""
    from labelmill.strategies.weak.strategy import STRATEGY

    config = {**CONFIG, "task": "multilabel", "labels": ["pos", "neg", "odd"], "label_separator": ";"}
    frame = pd.DataFrame({"text": ["v", "w", "x", "y"], "weak_vote_a": ["pos;neg", None, "neg", ""], "weak_vote_b": [None, "zzz", None, None]})
    found = STRATEGY.evaluate(_context(frame, [["pos"], ["pos"], ["neg", "odd"], []], config=config))
    a, b = found["weak_sub_labelers"]
    assert a == {"name": "a", "polarity": [0, 1], "coverage": 0.5, "gold_rows": 2, "empirical_accuracy": pytest.approx(2 / 3, abs=1e-12)}
    assert b == {"name": "b", "polarity": [], "coverage": 0.25, "gold_rows": 1, "empirical_accuracy": 0.0}
    assert found["weak_coverage"] == 0.75


# snorkel's label model through our seam ---------------------------------------------------------------------------
def test_snorkel_gives_rows_nobody_voted_on_the_uniform_and_the_rest_its_fit():
    """Rows with no vote get exactly 1/k (snorkel would give its class balance); the covered rows get snorkel's own
    answer, fitted with the seed and 500 epochs on CPU (the same call made here directly); fewer than three
    sub-labelers is a clear error."""
    from snorkel.labeling.model import LabelModel

    from labelmill.strategies.weak.labelmodels import snorkel_label_model

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 100)
    L = np.where(rng.uniform(size=(100, 4)) < 0.7, np.where(rng.uniform(size=(100, 4)) < 0.8, y[:, None], rng.integers(0, 3, (100, 4))), -1)
    L[:20] = -1
    got = snorkel_label_model(L, 3, seed=7)
    assert np.array_equal(got[:20], np.full((20, 3), 1 / 3))
    direct = LabelModel(cardinality=3, verbose=False, device="cpu")
    direct.fit(L, n_epochs=500, seed=7, progress_bar=False)
    assert np.allclose(got[20:], direct.predict_proba(L)[20:], atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="at least 3 sub-labelers; 2 vote here"):
        snorkel_label_model(L[:, :2], 3)
    assert snorkel_label_model(L[:, :3], 3).shape == (100, 3)  # three are enough


# a model sub-labeler's config, scores and votes -------------------------------------------------------------------
def _stored(i, label, confidence=None, distribution=None):
    from labelmill.store.tables import StoredLabel

    return StoredLabel(row_index=i, row_hash=str(i), label=label, error=None, error_detail=None, confidence=confidence, distribution=distribution,
                       signals=None, raw_answer=None, method="score", backend="fake", model_id="m", model_sha256=None, prompt_hash="p",
                       guidelines_hash="g", cache_key=str(i), cached=False)


def _table(items, n):
    from labelmill.store.tables import label_table

    return label_table(items, n)


def test_a_prompted_sub_labeler_is_a_config_of_its_own_with_the_question_after_the_row():
    from labelmill.config import load_config
    from labelmill.strategies.weak.sublabelers import QUESTION_GUIDELINES, prompt_config

    base = load_config({**CONFIG, "examples": {"k": 2, "items": [{"text": "a goal", "label": "Sports"}]}, "input_template": "Title: {text}"})
    spec = SubLabelerSpec(name="is_sport", kind="prompt", question="Is it about {sport}?", answers={"yes": "Sports", "maybe": "abstain", "no": "abstain"})
    cfg = prompt_config(base, spec)
    assert cfg.name == "news:is_sport" and cfg.task == "classification" and cfg.label_names == ["yes", "maybe", "no"]
    assert cfg.guidelines == QUESTION_GUIDELINES and cfg.gold_column is None
    assert cfg.examples.k == 0 and cfg.examples.items == [] and cfg.examples.file is None
    assert cfg.input_template == "Title: {text}\n\nQuestion: Is it about {{sport}}?"  # braces in the question are text
    assert cfg.input_template.format(text="x") == "Title: x\n\nQuestion: Is it about {sport}?"
    assert prompt_config(base, spec, input_template="[{text}]").input_template.startswith("[{text}]\n\nQuestion: ")
    plain = load_config({k: v for k, v in CONFIG.items() if k != "input_template"})
    assert prompt_config(plain, spec).input_template == "{text}\n\nQuestion: Is it about {{sport}}?"


def test_a_model_sub_labeler_s_scores_sum_the_answers_that_vote_for_each_label():
    """Answers yes -> Sports, sure -> Sports, no -> abstain. Row 0: distribution yes 0.5, sure 0.25, no 0.25: Sports
    0.75, chosen Sports. Row 1: 'no' chosen: no vote, scores 0 but Sports 0.1 from 'yes'. Row 2: no distribution,
    confidence 0.8: Sports 0.8. Row 3: no distribution, no confidence: 1. Row 4: nothing stored; row 5: a failed
    row (no label); row 6: a non-text label. Zero-shot maps each label to itself."""
    from labelmill.strategies.weak.sublabelers import model_scores

    spec = SubLabelerSpec(name="q", kind="prompt", question="Sport?", answers={"yes": "Sports", "sure": "Sports", "no": "abstain"})
    names = ["Sci/Tech", "World", "Sports"]
    table = _table([_stored(0, "yes", 0.5, {"yes": 0.5, "sure": 0.25, "no": 0.25}), _stored(1, "no", 0.9, {"yes": 0.1, "no": 0.9}),
                    _stored(2, "sure", 0.8), _stored(3, "yes"), _stored(5, None, 0.9, {"yes": 1.0}), _stored(6, ["yes"], 0.9)], 7)
    chosen, scores = model_scores(table, spec, names)
    assert chosen.tolist() == [2, -1, 2, 2, -1, -1, -1]
    assert scores.tolist() == [[0, 0, 0.75], [0, 0, 0.1], [0, 0, 0.8], [0, 0, 1.0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    zero = SubLabelerSpec(name="z", kind="zero_shot")
    chosen, scores = model_scores(_table([_stored(0, "World", 0.6, {"World": 0.6, "Sports": 0.3, "Sci/Tech": 0.1})], 1), zero, names)
    assert chosen.tolist() == [1] and scores.tolist() == [[0.1, 0.6, 0.3]]


def test_model_votes_with_a_fixed_floor_and_with_per_label_thresholds():
    """A fixed abstain_below 0.7: rows at 0.6 abstain, at 0.7 vote, with no confidence vote. Thresholds (auto):
    the label whose score clears its threshold by the most (World 0.6 - 0.5 = 0.1 against Sports 0.3 - 0.25 = 0.05),
    a score exactly at its threshold fires, a NaN threshold never fires. Multi-label zero-shot: the labels given
    vote for, the others against, under the floor nothing."""
    from labelmill.strategies.weak.sublabelers import model_votes

    names = ["Sci/Tech", "World", "Sports"]
    zero = SubLabelerSpec(name="z", kind="zero_shot", abstain_below=0.7)
    table = _table([_stored(0, "World", 0.6), _stored(1, "Sports", 0.7), _stored(2, "World", None)], 4)
    assert model_votes(table, zero, names).tolist() == [[-1, -1, -1], [-1, -1, 1], [-1, 1, -1], [-1, -1, -1]]
    dist = _table([_stored(0, "World", 0.6, {"World": 0.6, "Sports": 0.3, "Sci/Tech": 0.1}),
                   _stored(1, "Sci/Tech", 0.9, {"Sci/Tech": 0.9, "World": 0.05, "Sports": 0.05}),
                   _stored(2, "Sports", 0.25, {"Sports": 0.25, "World": 0.4, "Sci/Tech": 0.35})], 3)
    thresholds = np.array([np.nan, 0.5, 0.25])
    assert model_votes(dist, zero, names, thresholds=thresholds).tolist() == [[-1, 1, -1], [-1, -1, -1], [-1, -1, 1]]
    multi = _table([_stored(0, ["World", "Sports"], 0.8), _stored(1, ["World"], 0.5), _stored(2, [], 0.9)], 3)
    assert model_votes(multi, zero, names, multi=True).tolist() == [[0, 1, 1], [-1, -1, -1], [0, 0, 0]]
    loose = SubLabelerSpec(name="z", kind="zero_shot")
    assert model_votes(multi, loose, names, multi=True).tolist() == [[0, 1, 1], [0, 1, 0], [0, 0, 0]]


# rules, functions and columns: what they give and the errors they name -------------------------------------------
def test_a_python_sub_labeler_s_unknown_label_or_abstain_word_and_a_column_of_whitespace():
    """A function's answer outside the label set names the sub-labeler and the row; 'abstain' (any case, any
    spaces) and '' abstain; a column cell of spaces is empty; a one-label column keeps a label with spaces whole."""
    from labelmill.strategies.weak.sublabelers import column_votes, python_votes

    spec = SubLabelerSpec(name="fn", kind="python", function="rules.py:f")
    with pytest.raises(ConfigError) as info:
        python_votes(spec, lambda row: row["v"], [{"v": "a"}, {"v": None}, {"v": "zz"}], ["a", "b"], multi=False)
    assert str(info.value) == "weak.sub_labelers[fn] gave 'zz' on row 2, which is not a label of this task"
    votes = python_votes(spec, lambda row: row["v"], [{"v": " Abstain "}, {"v": ""}, {"v": "B"}], ["a", "b"], multi=False)
    assert votes.tolist() == [[-1, -1], [-1, -1], [-1, 1]]
    col = SubLabelerSpec(name="c", kind="column", column="x")
    assert column_votes(col, ["   ", " b ", "a b"], ["a", "b", "a b"], None).tolist() == [[-1, -1, -1], [-1, 1, -1], [-1, -1, 1]]


# weak's analysis table on the input rows (run._summary) ------------------------------------------------------------
def test_the_analysis_table_on_the_input_rows_by_hand():
    """One-label: gold pos, neg, (not a label), neg; `r` votes pos, pos, neg, -: coverage 3/4, right on row 0 only
    of the two rows with a label it voted on (1/2). Multi-label (gold {a}, {a, b}, {}): a column voting for a and
    against b on rows 0 and 1 and nothing on row 2: coverage 2/3; its four votes: row 0 a right, b right (not in
    gold), row 1 a right, b wrong: 3/4; polarity: the labels it votes for. Without a gold column: no accuracy."""
    from labelmill.config import load_config
    from labelmill.strategies.weak.run import _rows, _summary
    from labelmill.tasks import make_task

    cfg = load_config({**CONFIG, "labels": ["pos", "neg"]})
    task = make_task(cfg)
    frame = pd.DataFrame({"text": ["w", "x", "y", "z"], "label": ["pos", "neg", "meh", "neg"]})
    r = SubLabelerSpec(name="r", kind="keywords", keywords=["w"], label="pos")
    V = np.array([[1, -1], [1, -1], [-1, 1], [-1, -1]])
    (row,) = _summary(cfg, task, [r], _rows(cfg, task, frame, None, False), [V], cfg.label_names, False)
    assert row == {"name": "r", "kind": "keywords", "polarity": [0, 1], "coverage": 0.75, "overlaps": 0.0, "conflicts": 0.0, "gold_rows": 2,
                   "empirical_accuracy": 0.5}
    (bare,) = _summary(cfg, task, [r], _rows(cfg, task, frame.drop(columns=["label"]), None, False), [V], cfg.label_names, False)
    assert "empirical_accuracy" not in bare and bare["coverage"] == 0.75
    mcfg = load_config({**CONFIG, "task": "multilabel", "labels": ["a", "b"], "label_separator": ";"})
    mtask = make_task(mcfg)
    mframe = pd.DataFrame({"text": ["u", "v", "w"], "label": ["a", "a;b", ""]})
    col = SubLabelerSpec(name="c", kind="column", column="x")
    M = np.array([[1, 0], [1, 0], [-1, -1]])
    (mrow,) = _summary(mcfg, mtask, [col], _rows(mcfg, mtask, mframe, None, False), [M], mcfg.label_names, True)
    assert mrow == {"name": "c", "kind": "column", "polarity": [0], "coverage": pytest.approx(2 / 3, abs=1e-12), "gold_rows": 2, "empirical_accuracy": 0.75}
    (mbare,) = _summary(mcfg, mtask, [col], _rows(mcfg, mtask, mframe.drop(columns=["label"]), None, False), [M], mcfg.label_names, True)
    assert mbare == {"name": "c", "kind": "column", "polarity": [0], "coverage": pytest.approx(2 / 3, abs=1e-12)}


def test_flags_name_low_coverage_low_seed_accuracy_and_no_seed_votes_at_their_bounds():
    from labelmill.strategies.weak.run import _flags

    assert _flags({"coverage": 0.05, "seed_rows": 10, "seed_accuracy": 0.6}, 0.05, 0.6) == []  # at the bounds: kept
    assert _flags({"coverage": 0.049, "seed_rows": 10, "seed_accuracy": 0.59}, 0.05, 0.6) == ["coverage 0.049 < 0.05", "seed accuracy 0.590 < 0.6"]
    assert _flags({"coverage": 0.5, "seed_rows": 10, "seed_accuracy": None}, 0.05, 0.6) == ["no votes on the seed rows"]
    assert _flags({"coverage": 0.5, "seed_rows": 0, "seed_accuracy": None}, 0.05, 0.6) == [] and _flags({"coverage": 0.5}, 0.05, 0.6) == []


def test_the_output_columns_multi_label_and_rows_nobody_voted_on():
    """Multi-label: the labels at 0.5 or more joined by the separator, the confidence the product of each label's
    max(p, 1 - p) (0.9 x 0.6 = 0.54), the vote column the labels voted for; a row nobody voted on: no label, no
    confidence, the reason; an end model's label and confidence columns."""
    from labelmill.config import load_config
    from labelmill.strategies.weak.run import _output

    cfg = load_config({**CONFIG, "task": "multilabel", "labels": ["a", "b"], "label_separator": ";"})
    frame = pd.DataFrame({"text": ["u", "v"]})
    probs = np.array([[0.9, 0.4], [0.5, 0.5]])
    out, _ = _output(cfg, frame, [np.array([[1, 1], [-1, -1]])], probs, np.array([True, False]), ["c"], ["a", "b"], np.array([[0.2, 0.8], [0.7, 0.3]]))
    assert out["llm_label"].tolist()[0] == "a" and pd.isna(out["llm_label"].tolist()[1])
    assert out["llm_confidence"].tolist()[0] == pytest.approx(0.54, abs=1e-12) and pd.isna(out["llm_confidence"].tolist()[1])
    assert out["llm_error"].tolist() == ["", "no_votes: no sub-labeler voted on this row"]
    assert out["weak_vote_c"].tolist() == ["a;b", ""]
    assert out["weak_end_label"].tolist() == ["b", "a"] and out["weak_end_confidence"].tolist() == [0.8, 0.7]


def test_seed_rows_that_lack_a_label_are_named_in_a_notice_and_the_sidecar_lists_what_was_kept(tmp_path):
    """A seed file with only negative rows: weak says no seed row has 'positive' (an auto threshold for it would
    never fire). The sidecar next to the output holds the label model, the kept sub-labelers and each one's row."""
    from labelmill.events import Notice
    from labelmill.strategies.weak import weak
    from test_weak import ROWS, weak_config

    pd.DataFrame([{"text": "so dull", "label": "negative"}, {"text": "bad", "label": "negative"}]).to_csv(tmp_path / "seed.csv", index=False)
    config = weak_config()
    config["weak"]["sub_labelers"] = config["weak"]["sub_labelers"][1:3] + [{"name": "fun", "kind": "keywords", "keywords": ["fun"], "label": "positive"}]
    seen = []
    weak(config, ROWS, project=tmp_path / "p.db", seed=tmp_path / "seed.csv", output=tmp_path / "out.csv", on_event=seen.append)
    said = [e.message for e in seen if isinstance(e, Notice) and "no seed row" in e.message]
    assert said == ["weak: no seed row has the label positive: an auto threshold for it never fires"]
    side = json.loads((tmp_path / "out.csv.weak.json").read_text(encoding="utf-8"))
    assert side["label_model"] == "dawid_skene" and side["kept"] == ["boring", "bad", "fun"]
    assert [r["name"] for r in side["sub_labelers"]] == ["boring", "bad", "fun"] and side["sub_labelers"][0]["seed_rows"] == 2
