"""refine's parts one at a time, each expected value worked out by hand: the projection's arithmetic from
`plan`'s figures, the proposer's answer cleaned, the over-predicted label, the helpful edits taken together,
a row's excerpt, a cluster's theme and its split by explanations, the edits applied to a guideline."""

from __future__ import annotations

import pandas as pd
import pytest

from labelmill.config import load_config
from labelmill.guideline import Guideline, Rule
from labelmill.strategies.refine import run as refine_run
from labelmill.strategies.refine.run import (
    Cluster,
    Edit,
    RefineOptions,
    apply_edits,
    clean_rule,
    cluster_errors,
    over_predicted,
    projection,
    together,
)

CONFIG = {"task": "classification", "name": "movies", "labels": ["positive", "negative"], "guidelines": "Classify the sentiment.",
          "input_template": "{text}", "gold_column": "label", "examples": {"k": 0}, "model": {"backend": "fake"}}


class FakePlan:
    """`labelmill plan`'s figures as a paid model would give them: the labeler's for its rows, the writer's for one."""

    def __init__(self, label_s: float, label_cost: float | None, write_s: float, write_cost: float | None):
        self.label, self.write, self.calls = (label_s, label_cost), (write_s, write_cost), []

    def __call__(self, cfg, sample, limit=None):
        self.calls.append((cfg.model.method, cfg.model.max_tokens, limit))
        if cfg.model.method == "generate":
            return {"rows": 1, "estimated_seconds": self.write[0], "estimated_cost_usd": self.write[1]}
        rows = len(sample) if limit is None else min(limit, len(sample))
        return {"rows": rows, "estimated_seconds": self.label[0], "estimated_cost_usd": self.label[1]}


def test_the_projection_is_plan_s_per_row_figures_times_the_calls_the_rounds_can_take(monkeypatch):
    import labelmill.core

    fake = FakePlan(label_s=2.47, label_cost=0.0003, write_s=1.0, write_cost=0.0000123)
    monkeypatch.setattr(labelmill.core, "plan_rows", fake)
    cfg = load_config(CONFIG)
    sample = pd.DataFrame([{"text": f"row {i}", "label": "positive"} for i in range(30)])
    opts = RefineOptions(rounds=2, max_rules=3, max_errors=24, beam=2)
    got = projection(cfg, cfg, sample, 18, 18, opts)
    # candidates 4 x 3 + 2 = 14; label calls 2 x (18 + 18 + 14 x 18 + 2 x 18) = 648; text calls 2 x (24 + 9 + 1) = 68
    # seconds: 648 x 2.47 / 20 = 80.028, plus 68 x max(1.0, 80 / 25 = 3.2) = 217.6: 297.628
    # cost: 648 x 0.0003 / 20 = 0.00972, plus 68 x 0.0000123 = 0.0008364: 0.0105564
    assert got == {"label_calls": 648, "text_calls": 68, "estimated_seconds": 297.6, "estimated_cost_usd": 0.0106}
    # the labeler is planned on 20 of the sample's rows, the writer as a generation of 80 tokens on one
    assert fake.calls[1] == ("generate", 80, 1) and fake.calls[0][0] != "generate" and fake.calls[0][2] == 20


def test_the_projection_of_a_slow_writer_on_one_row_and_of_a_local_model(monkeypatch):
    import labelmill.core

    fake = FakePlan(label_s=0.5, label_cost=0.001, write_s=10.0, write_cost=0.002)
    monkeypatch.setattr(labelmill.core, "plan_rows", fake)
    cfg = load_config(CONFIG)
    one = pd.DataFrame([{"text": "row", "label": "positive"}])
    got = projection(cfg, cfg, one, 1, 1, RefineOptions(rounds=1, max_rules=1, max_errors=2, beam=1, max_candidates=3))
    # label calls 1 x (1 + 1 + 3 x 1 + 1 x 1) = 6; text calls 1 x (2 + 3 + 1) = 6; one row planned
    # seconds 6 x 0.5 + 6 x 10.0 = 63.0; cost 6 x 0.001 + 6 x 0.002 = 0.018
    assert got == {"label_calls": 6, "text_calls": 6, "estimated_seconds": 63.0, "estimated_cost_usd": 0.018}
    assert fake.calls[0][2] == 1
    for label_cost, write_cost in ((None, 0.002), (0.001, None)):  # either side without a price: no cost
        monkeypatch.setattr(labelmill.core, "plan_rows", FakePlan(0.5, label_cost, 10.0, write_cost))
        assert projection(cfg, cfg, one, 1, 1, RefineOptions(rounds=1, max_rules=1, max_errors=2, beam=1, max_candidates=3))["estimated_cost_usd"] is None


def test_a_proposer_s_answer_is_cleaned_to_its_first_rule_line():
    assert clean_rule('"Reviews that praise the acting are positive."') == "Reviews that praise the acting are positive."
    assert clean_rule("RULE 2: Sarcasm is negative here.") == "Sarcasm is negative here."
    assert clean_rule("- short\n* Refunds are about money back.") == "Refunds are about money back."  # 'short' has 5 letters: no rule
    assert clean_rule("12345678") == "12345678" and clean_rule("1234567") == ""  # eight characters make a line
    assert clean_rule("ok\n\n") == ""
    assert clean_rule("x" * 400) == "x" * 300


def test_the_over_predicted_label_needs_twice_its_true_count_and_the_most_errors_come_first():
    gold = ["a", "a", "b", "b", "b", "c", "c", "c", "c", "d"]
    said = ["b", "b", "b", "b", "b", "d", "d", "d", "d", "d"]
    errors = [0, 1, 5, 6, 7, 8]
    # b: said 5 times, true 3 times: under twice; d: said 5, true 1: over, with 4 errors
    assert over_predicted(gold, said, errors) == [("d", [5, 6, 7, 8])]
    # exactly twice counts: b said 6 times against 3 true
    gold2 = ["a", "a", "a", "b", "b", "b"]
    said2 = ["b", "b", "b", "b", "b", "b"]
    assert over_predicted(gold2, said2, [0, 1, 2]) == [("b", [0, 1, 2])]
    # a label never right (true 0) needs only be said twice; the list is ordered by errors, largest first
    gold3 = ["x", "x", "x", "y", "y", "y", "y", "z", "z"]
    said3 = ["p", "p", "p", "q", "q", "q", "q", "z", "z"]
    assert over_predicted(gold3, said3, [0, 1, 2, 3, 4, 5, 6], limit=2) == [("q", [3, 4, 5, 6]), ("p", [0, 1, 2])]


def test_single_edits_that_beat_the_baseline_are_taken_best_first_one_definition_per_label():
    g = Guideline("t", "", {}, [])
    rule = Edit("add_rule", "r1")
    rule2 = Edit("add_rule", "r2")
    short = Edit("define_label", "short", "positive")
    long = Edit("define_label", "long", "positive")
    other = Edit("define_label", "other", "negative")
    scored = [(0.70, 0.9, g, [rule]), (0.80, 0.1, g, [short]), (0.75, 0.5, g, [long]), (0.72, 0.2, g, [other]),
              (0.90, 0.9, g, [rule, rule2]), (0.60, 0.9, g, [rule2])]
    # by the first figure (not the second); the pair is never taken; 0.60 is not above 0.60; the second
    # definition of 'positive' is dropped, the next edits are still read
    assert together(scored, 0.60) == [short, other, rule]
    assert together(scored, 0.70) == [short, other]  # equal to the baseline is no gain


def test_an_excerpt_is_one_line_cut_at_a_word():
    assert refine_run._excerpt("a  b\n c") == "a b c"
    assert refine_run._excerpt("abcd efgh", limit=9) == "abcd efgh"  # exactly the limit: whole
    assert refine_run._excerpt("abcd efgh ijkl", limit=11) == "abcd efgh ..."
    assert refine_run._excerpt("abcd efghij", limit=8) == "abcd ..."


def test_a_cluster_s_theme_is_what_most_of_its_explanations_say():
    c = Cluster("Business", ["Sci/Tech"], [0, 1, 2, 3])
    why = {0: "The shares of the company fell.", 1: "Company shares and profit.", 2: "Profit of the company.", 3: "A technology story."}
    refine_run._theme(c, why)
    # 'company' 3 times, 'shares' 2, 'profit' 2 (need at least max(2, 4 // 3) = 2); 'technology' once; the labels' own words never
    assert c.theme == ["company", "shares", "profit"]
    c = Cluster("Business", ["Sci/Tech"], [0, 1])
    refine_run._theme(c, {0: "The company.", 1: ""})  # one explanation is no theme
    assert c.theme == []
    c = Cluster("World", ["Sports"], list(range(9)))
    refine_run._theme(c, dict(enumerate(["oil price", "oil price", "oil price", "oil war", "war", "election", "vote", "poll", "count"])))
    assert c.theme == ["oil", "price"]  # nine explanations: a word needs max(2, 9 // 3) = 3; 'war' has 2
    assert c.describe() == "9 search errors (World labeled Sports), explanations citing oil, price"


def test_a_big_confusion_splits_in_two_by_its_explanations_and_the_unexplained_rows_join_the_larger_part():
    c = Cluster("negative", ["positive"], [0, 1, 2, 3, 4, 5, 6])
    why = {0: "sarcasm irony mocking", 1: "sarcasm irony mocking tone", 2: "sarcasm mocking irony",
           3: "plot spoilers ending", 4: "plot ending spoilers"}
    parts = refine_run._split_by_explanation(c, why)
    assert [(p.gold, p.predicted, p.members) for p in parts] == [("negative", ["positive"], [0, 1, 2, 5, 6]), ("negative", ["positive"], [3, 4])]
    assert refine_run._split_by_explanation(c, {0: "the a an", 1: "the of", 2: "a", 3: "an the"}) == []  # stop words only
    assert refine_run._split_by_explanation(c, {0: "sarcasm", 1: "sarcasm", 2: "sarcasm", 3: "sarcasm"}) == []  # one word
    assert refine_run._split_by_explanation(c, {0: "sarcasm irony", 1: "sarcasm irony", 2: "sarcasm irony", 3: "plot ending"}) == []  # a part of one


def test_with_room_the_largest_explained_cluster_is_split_in_place():
    gold = ["neg"] * 7 + ["pos"] * 5
    said = ["pos"] * 7 + ["neg"] * 5
    why = {0: "sarcasm irony", 1: "sarcasm irony", 2: "sarcasm irony", 3: "plot ending", 4: "plot ending", 5: "", 6: "",
           7: "praise acting", 8: "praise acting", 9: "praise acting", 10: "music score", 11: "music score"}
    # the larger confusion (7 rows) splits first, in its place; then the cap of three is reached
    assert [c.members for c in cluster_errors(gold, said, list(range(12)), why, limit=3)] == [[0, 1, 2, 5, 6], [3, 4], [7, 8, 9, 10, 11]]
    # with room for four, the next one with four explanations splits too (the first part has only three)
    assert [c.members for c in cluster_errors(gold, said, list(range(12)), why, limit=4)] == [[0, 1, 2, 5, 6], [3, 4], [7, 8, 9], [10, 11]]


def test_edits_apply_in_order_with_a_rule_s_evidence_author_and_examples_and_the_title_kept():
    g = Guideline("movies", "Classify the sentiment.", {"positive": "praise"}, [Rule("old one"), Rule("old two")])
    out = apply_edits(g, [Edit("delete_rule", "old one", "1"), Edit("add_rule", "Irony is negative.", None, "3 errors", "refine (fake)", ["so great, not"]),
                          Edit("define_label", "criticism", "negative")])
    assert out.title == "movies" and out.intro == "Classify the sentiment."
    assert out.labels == {"positive": "praise", "negative": "criticism"}
    assert [(r.text, r.evidence, r.author, r.examples) for r in out.rules] == [("old two", "", "", []), ("Irony is negative.", "3 errors", "refine (fake)", ["so great, not"])]
    assert g.rules[0].text == "old one" and "negative" not in g.labels  # the original is untouched


@pytest.mark.parametrize("kind,target,expected", [("add_rule", None, "add rule: x"), ("define_label", "pos", "define pos: x"), ("delete_rule", "2", "delete rule 2: x")])
def test_an_edit_describes_itself(kind, target, expected):
    assert Edit(kind, "x", target).describe() == expected


def test_refine_scores_a_guideline_on_the_metric_it_is_asked_for_and_sums_what_each_run_cost(tmp_path):
    """A paid fake model (each answer billed $0.01): the cost adds up over the scoring runs, a cached rerun
    costs nothing; macro-F1 worked out by hand."""
    from labelmill.strategies.refine.run import RefineResult, _accuracy

    cfg = load_config({**CONFIG, "model": {"backend": "fake", "method": "generate", "params": {
        "keywords": {"positive": ["good"], "negative": ["bad"]}, "cost_usd": 0.01}}})
    frame = pd.DataFrame([{"text": "good a", "label": "positive"}, {"text": "bad b", "label": "negative"},
                          {"text": "good c", "label": "negative"}, {"text": "bad d", "label": "negative"}])
    spent = RefineResult()
    acc, gold, predicted = _accuracy(cfg, frame, tmp_path / "p.db", lambda e: None, spent)
    assert acc == 0.75 and gold == ["positive", "negative", "negative", "negative"] and predicted == ["positive", "negative", "positive", "negative"]
    assert spent.calls["label"] == 4 and spent.cost_usd == pytest.approx(0.04)
    # positive: precision 1/2, recall 1/1, F1 2/3; negative: precision 2/2, recall 2/3, F1 0.8; macro (2/3 + 0.8) / 2
    f1, _, _ = _accuracy(cfg, frame, tmp_path / "p.db", lambda e: None, spent, metric="macro_f1")
    assert f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert spent.calls["label"] == 4 and spent.cost_usd == pytest.approx(0.04)  # the same prompts: from the cache
    _accuracy(cfg, frame.iloc[:2].assign(text=["good e", "bad f"]), tmp_path / "p.db", lambda e: None, spent)
    assert spent.calls["label"] == 6 and spent.cost_usd == pytest.approx(0.06)


def test_a_narrower_definition_is_asked_with_the_rows_it_took_and_ranked_by_the_errors_it_addresses(tmp_path):
    """The loop's `_narrower` step on errors written out by hand. The fake proposer answers only a prompt
    that names the over-predicted label, its wrong rows with their true labels, the guideline and the
    label's present definition; its answer echoes the first row and the definition."""
    import numpy as np

    from labelmill.strategies.refine.run import RoundResult, _Found, _Refine

    ask = (r"said (\w+) for these texts, which are not \1:\n- (\w+ \w+) \(is (\w+)\)\n[\s\S]*\n\nGuideline:\nTHE GUIDE\n\n"
           r"Rewrite the definition of the label \1 \(now: \"([^\"]*)\"\)")
    labels = [{"name": "positive", "description": "praise of any kind"}, "negative", "neutral", "mixed", "sarcastic"]
    config = {**CONFIG, "labels": labels, "model": {"backend": "fake", "params": {
        "replies": [[ask, "Positive: only open praise of the film, unlike {1} ({2}); was {3}"]], "default_reply": "no pattern here at all"}}}
    dev = pd.DataFrame([{"text": f"row {i}", "label": "positive"} for i in range(20)])
    loop = _Refine.prepare(config, dev, RefineOptions(), tmp_path / "p.db", None, lambda e: None)
    loop.search_rows = np.array([40, 41, 42, 43, 44, 45, 46, 47, 48, 49])
    gold = ["negative", "neutral", "negative", "mixed", "sarcastic", "positive", "negative", "mixed", "mixed", "mixed"]
    said = ["positive", "positive", "positive", "positive", "positive", "positive", "negative", "sarcastic", "sarcastic", "sarcastic"]
    errors = [0, 1, 2, 3, 4, 7, 8, 9]
    texts = ["dull film", "flat plot", "weak acting", "odd mix", "oh great", "good film", "bad film", "so so", "half good", "meh ok"]
    # positive: said 6 times, right once, 5 errors; sarcastic: said 3 times, right 0 times, 3 errors: only the first is narrowed
    result = RoundResult(1, 0.2, 0.2, 8, [{"errors": 6, "rule": "r", "definition": "d"}, {"errors": 5, "rule": "r"}, {"errors": 4, "rule": "r"}], [], None)
    proposals = [Edit("add_rule", "a"), Edit("define_label", "b", "x"), Edit("add_rule", "c"), Edit("add_rule", "d")]
    loop._narrower(_Found(gold, said, errors, texts, "THE GUIDE"), result, proposals)
    definition = "only open praise of the film, unlike dull film (negative); was praise of any kind"
    # after the groups of 6 and 5 errors (their rules and definition), before the group of 4
    assert [e.text for e in proposals] == ["a", "b", "c", definition, "d"]
    narrower = proposals[3]
    assert (narrower.kind, narrower.target, narrower.author) == ("define_label", "positive", "refine (fake:qwen2.5-coder-0.5b)")
    assert narrower.evidence == "5 search errors (positive said for negative, neutral, mixed and other labels), e.g. dev rows 40, 41, 42"
    assert result.groups[2] == {"over_predicted": "positive", "errors": 5, "definition": definition}
    assert [g.get("errors") for g in result.groups] == [6, 5, 5, 4]


def _loop(tmp_path, labels=None, replies=(), **opts):
    """A refine loop on the fake labeler that reads "'WORD' means LABEL" rules, with its halves replaced by
    rows written out here: none of the held-out rows has a keyword, so without a rule it says positive."""
    from labelmill.strategies.refine.run import _Refine

    config = {**CONFIG, "labels": labels or CONFIG["labels"], "model": {"backend": "fake", "params": {
        "keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True, "replies": list(replies), "default_reply": "no idea"}}}
    dev = pd.DataFrame([{"text": f"row {i}", "label": "positive"} for i in range(20)])
    events = []
    loop = _Refine.prepare(config, dev, RefineOptions(**opts), tmp_path / "p.db", None, lambda e: events.append(getattr(e, "message", str(e))))
    loop.heldout = pd.DataFrame([{"text": "dreadful a", "label": "negative"}, {"text": "dreadful b", "label": "negative"},
                                 {"text": "awful c", "label": "negative"}, {"text": "fine d", "label": "positive"}, {"text": "fine e", "label": "positive"}])
    return loop, events


def test_the_held_out_half_picks_among_the_candidates_that_beat_the_search_half_and_must_improve_on_it(tmp_path):
    from labelmill.store import Store
    from labelmill.strategies.refine.run import RoundResult
    from labelmill.strategies.refine.versions import GuidelineVersions

    loop, events = _loop(tmp_path)
    assert loop._accuracy(loop.current, loop.heldout)[0] == 0.4  # the two 'fine' rows
    dreadful = [Edit("add_rule", "'dreadful' means negative.", None, "E1", "ann"), Edit("define_label", "praise", "positive", "E2", "bob")]
    awful = [Edit("add_rule", "'awful' means negative.", None, "E3", "ann")]
    both = [dreadful[0], awful[0]]
    scored = [(0.5, 0.5, apply_edits(loop.current, dreadful), dreadful),  # held-out 0.8
              (0.45, 0.55, apply_edits(loop.current, awful), awful),  # held-out 0.6: above the first's search figure, below its held-out one
              (0.3, 0.9, apply_edits(loop.current, both), both)]  # held-out 1.0, but its penalised search figure only equals the baseline
    result = RoundResult(1, 0.3, 0.4, 3, [], [], None)
    loop._accept(1, result, scored, 0.3, 0.4)
    assert result.heldout_after == 0.8 and loop.current.rules[0].text == "'dreadful' means negative." and len(loop.current.rules) == 1
    with Store(tmp_path / "p.db") as store:
        top = GuidelineVersions(store, "movies").log()[0]
    assert top.id == result.accepted
    assert top.rationale == "round 1: add rule: 'dreadful' means negative. (for E1); define positive: praise (for E2)" and top.author == "ann, bob"
    assert top.dev == {"search_accuracy": 0.5, "search_rows": 10, "before": 0.3} and top.heldout == {"accuracy": 0.8, "rows": 5, "before": 0.4}
    assert events[-1] == f"refine round 1: accepted {result.accepted} (search 0.300 -> 0.500, held-out 0.400 -> 0.800)"

    # the same held-out figure as now is no improvement
    again = RoundResult(2, 0.5, 0.8, 1, [], [], None)
    loop._accept(2, again, [(0.6, 0.6, apply_edits(loop.current, [Edit("add_rule", "'fine' means positive.")]), [])], 0.5, 0.8)
    assert again.heldout_after == 0.8 and again.accepted is None and len(loop.current.rules) == 1
    assert events[-1] == "refine round 2: the best candidates did not improve the held-out rows (0.800 -> 0.800); not accepted"
    nothing = RoundResult(3, 0.5, 0.8, 1, [], [], None)
    loop._accept(3, nothing, [(0.5, 0.9, loop.current, [])], 0.5, 0.8)  # nothing beats the search half: the held-out half is not asked
    assert nothing.heldout_after is None and nothing.accepted is None


def test_a_version_scored_on_macro_f1_is_stored_under_that_metric(tmp_path):
    from labelmill.store import Store
    from labelmill.strategies.refine.run import RoundResult
    from labelmill.strategies.refine.versions import GuidelineVersions

    loop, _ = _loop(tmp_path, metric="macro_f1")
    rule = [Edit("add_rule", "'dreadful' means negative.", None, "E1", "ann")]
    result = RoundResult(1, 0.3, 0.25, 3, [], [], None)
    loop._accept(1, result, [(0.5, 0.5, apply_edits(loop.current, rule), rule)], 0.3, 0.25)
    # dreadful a, b right, awful c said positive: positive P 2/3 R 1 F1 0.8; negative P 1 R 2/3 F1 0.8
    with Store(tmp_path / "p.db") as store:
        top = GuidelineVersions(store, "movies").log()[0]
    assert top.dev == {"search_macro_f1": 0.5, "search_rows": 10, "before": 0.3} and top.heldout == {"macro_f1": pytest.approx(0.8), "rows": 5, "before": 0.25}


def test_the_loop_says_what_it_will_spend_and_why_it_stopped(tmp_path, monkeypatch):
    import labelmill.core

    # 10 search and 10 held-out rows, 3 rules, 24 errors, beam 3, 2 rounds: 2 x (10 + 10 + 14 x 10 + 3 x 10) = 380 label calls,
    # 2 x (24 + 9 + 1) = 68 texts; 380 x 0.5 / 10 + 68 x 10.0 = 699 s; 380 x 0.0001 + 68 x 0.002 = $0.1740
    monkeypatch.setattr(labelmill.core, "plan_rows", FakePlan(0.5, None, 10.0, 0.002))
    loop, events = _loop(tmp_path, budget_s=60, max_cost=0.5)
    assert events[-1] == "refine: at most 380 labeling calls and 68 generated texts over 2 round(s), about 699 s; budget 60 s; cost cap $0.5"
    monkeypatch.setattr(labelmill.core, "plan_rows", FakePlan(0.5, 0.001, 10.0, 0.002))
    _, paid = _loop(tmp_path / "paid")
    assert paid[-1] == "refine: at most 380 labeling calls and 68 generated texts over 2 round(s), about 699 s, $0.1740"
    loop.out.stopped = "budget_s"
    out = loop.finish()
    assert events[-1] == "refine: stopped by --budget; what was accepted is kept"
    assert out.final is loop.current and out.final_version is not None
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions

    with Store(tmp_path / "p.db") as store:
        assert out.final_version == GuidelineVersions(store, "movies").log()[0].id
    loop.out.stopped = "max_cost"
    loop.finish()
    assert events[-1] == "refine: stopped by --max-cost; what was accepted is kept"


def test_a_cluster_gets_a_rule_and_a_large_one_a_second_draft_from_its_other_rows(tmp_path):
    """The fake proposer answers only the prompts that show the cluster's rows (with their explanations) and
    the guideline: its rules name the row it was shown first."""
    from labelmill.strategies.refine.run import _Found

    second = [r"These texts are (\w+), but a labeler following the guideline below said (\w+):\n- (\w+) alpha\n[\s\S]*\n\nGuideline:\nTHE GUIDE\n\n"
              r"What are these texts about\?", "Rule: Texts about {2} are {0}."]
    first = [r"These texts are (\w+), but a labeler following the guideline below said (\w+):\n- (\w+) alpha\n  \(why: (\w+)\)\n[\s\S]*\n\n"
             r"Guideline:\nTHE GUIDE\n\nWrite one new rule", "Rule: Reviews like {2} that say {3} are {0}, not {1}."]
    loop, _ = _loop(tmp_path, replies=[second, first])
    texts = [f"item{i} alpha" for i in range(9)]
    f = _Found(["negative"] * 9, ["positive"] * 9, list(range(9)), texts, "THE GUIDE", {0: "mocking"})
    cluster = Cluster("negative", ["positive"], list(range(9)))
    found, drafts = {}, []
    made = loop._rules(cluster, f, "EVIDENCE", found, drafts)
    author = "refine (fake:qwen2.5-coder-0.5b)"
    assert [(e.kind, e.text, e.target, e.evidence, e.author, e.examples) for e in made] == [
        ("add_rule", "Reviews like item0 that say mocking are negative, not positive.", None, "EVIDENCE", author, ["item0 alpha", "item1 alpha"])]
    # nine rows or more: a second draft from rows 7 to 12 of the cluster, kept apart to be scored after every first draft
    assert [(e.kind, e.text, e.evidence, e.author, e.examples) for e in drafts] == [
        ("add_rule", "Texts about item6 are negative.", "EVIDENCE", author, ["item6 alpha", "item7 alpha"])]
    assert found == {"rule": "Reviews like item0 that say mocking are negative, not positive.", "second_rule": "Texts about item6 are negative."}
    found, drafts = {}, []
    eight = Cluster("negative", ["positive"], list(range(8)))
    assert len(loop._rules(eight, f, "EVIDENCE", found, drafts)) == 1 and drafts == [] and "second_rule" not in found
    # a rule that names another label than the rows' own is no rule
    wrong, _ = _loop(tmp_path / "wrong", replies=[[first[0], "Rule: Reviews like {2} that say {3} are {1}."]])
    assert wrong._rules(cluster, f, "E", found := {}, []) == [] and found == {}


def test_a_cluster_s_label_gets_a_new_definition_asked_with_its_present_one(tmp_path):
    from labelmill.strategies.refine.run import _Found

    ask = [r"said (\w+) for these (\w+) texts:\n- item0 alpha\n[\s\S]*\n\nGuideline:\nTHE GUIDE\n\nRewrite the definition of the label \2 "
           r"\(now: \"([^\"]*)\"\)", "NEGATIVE: harsh words about the film, not {0}; was {2}"]
    loop, _ = _loop(tmp_path, labels=["positive", {"name": "negative", "description": "criticism"}], replies=[ask])
    f = _Found(["negative"] * 2, ["positive"] * 2, [0, 1], ["item0 alpha", "item1 alpha"], "THE GUIDE")
    found = {}
    made = loop._definition(Cluster("negative", ["positive"], [0, 1]), f, "EVIDENCE", found)
    assert [(e.kind, e.text, e.target, e.evidence, e.author) for e in made] == [
        ("define_label", "harsh words about the film, not positive; was criticism", "negative", "EVIDENCE", "refine (fake:qwen2.5-coder-0.5b)")]
    assert found == {"definition": "harsh words about the film, not positive; was criticism"}
    bare, _ = _loop(tmp_path / "bare", replies=[ask])  # no definition yet: the label's name stands for it
    assert bare._definition(Cluster("negative", ["positive"], [0, 1]), f, "E", {})[0].text == "harsh words about the film, not positive; was negative"
    same = [[r"Rewrite the definition", "negative: criticism"]]  # the definition it has already is no edit
    loop2, _ = _loop(tmp_path / "same", labels=["positive", {"name": "negative", "description": "criticism"}], replies=same)
    assert loop2._definition(Cluster("negative", ["positive"], [0, 1]), f, "E", found := {}) == [] and found == {}


def test_each_edit_is_scored_alone_with_its_penalty_then_the_helpful_ones_together(tmp_path):
    """Search rows written out here: without rules 0.4, the 'dreadful' rule 0.8, the 'awful' rule 0.6, both
    1.0; a definition the fake labeler ignores stays at 0.4. Penalties worked out by hand from the prompt's
    growth: 'Classify the sentiment.' (23 characters) gains '\\n\\nLabels:\\n{labels}' (18) and a rules block."""
    from labelmill.strategies.refine.run import RoundResult

    loop, _ = _loop(tmp_path)
    loop.search = loop.heldout.copy()
    dreadful, awful = Edit("add_rule", "'dreadful' means negative."), Edit("add_rule", "'awful' means negative.")
    define = Edit("define_label", "praise", "positive")
    result = RoundResult(1, 0.4, 0.4, 3, [], [], None)
    scored = loop._score([dreadful, awful, define], result, 0.4)
    # rules block '\n\nRules:\n1. ' (12) + 26 = 38: grown 56, penalty 0.002 + 0.001 x 0.56 = 0.00256; 'awful': 35, grown 53: 0.00253;
    # the definition '\n\nLabel definitions:\n- positive: praise' (39), grown 57: 0.00057; both rules 12 + 26 + 4 + 23 = 65, grown 83: 0.00483
    assert result.candidates == [{"edits": ["add rule: 'dreadful' means negative."], "search": 0.8, "penalty": 0.0026},
                                 {"edits": ["add rule: 'awful' means negative."], "search": 0.6, "penalty": 0.0025},
                                 {"edits": ["define positive: praise"], "search": 0.4, "penalty": 0.0006},
                                 {"edits": ["add rule: 'dreadful' means negative.", "add rule: 'awful' means negative."], "search": 1.0, "penalty": 0.0048}]
    assert [(round(v, 5), a, e) for v, a, _, e in scored] == [(0.99517, 1.0, [dreadful, awful]), (0.79744, 0.8, [dreadful]),
                                                             (0.59747, 0.6, [awful]), (0.39943, 0.4, [define])]
    # three candidates: the last slot goes to the helpful two together, the definition waits
    capped = RoundResult(1, 0.4, 0.4, 3, [], [], None)
    loop.opts = RefineOptions(max_candidates=3)
    assert [e for _, _, _, e in loop._score([dreadful, awful, define], capped, 0.4)] == [[dreadful, awful], [dreadful], [awful]]
    two = RoundResult(1, 0.4, 0.4, 3, [], [], None)
    loop.opts = RefineOptions(max_candidates=2)
    assert [e for _, _, _, e in loop._score([dreadful, awful, define], two, 0.4)] == [[dreadful], [awful]]
    one_helps = RoundResult(1, 0.4, 0.4, 3, [], [], None)
    loop.opts = RefineOptions(max_candidates=3)
    assert [e for _, _, _, e in loop._score([define, dreadful, Edit("add_rule", "'fine' means positive.")], one_helps, 0.4)] == [
        [dreadful], [define], [Edit("add_rule", "'fine' means positive.")]]  # one helpful edit: no combination; 'fine' changes nothing, costs a rule
    loop.opts = RefineOptions(rule_penalty=0.5)  # ranked by the penalised figure: 0.8 - 0.5 - 0.00056 falls under the definition's 0.39943
    assert [e for _, _, _, e in loop._score([dreadful, define], RoundResult(1, 0.4, 0.4, 3, [], [], None), 0.4)] == [[define], [dreadful]]
    loop.current = apply_edits(loop.current, [dreadful])  # a deletion shrinks the prompt: no penalty, and no bonus either
    deleted = loop._score([Edit("delete_rule", "'dreadful' means negative.", "1")], RoundResult(1, 0.8, 0.8, 1, [], [], None), 0.8)
    assert [(v, a) for v, a, _, _ in deleted] == [(0.4, 0.4)]


def test_errors_are_explained_by_the_labeler_or_the_proposer_and_echoes_are_dropped(tmp_path):
    from labelmill.strategies.refine.run import _Found, _with_guideline

    explain = [r"Guideline:\nTHE GUIDE\n\nText: (\w+) (\w+)\nYou labeled it (\w+); the correct label is (\w+)\. In one sentence: what in the text "
               r"shows it is \4\?", "The word {0} reads as {3} here"]
    echo = [r"Text: echo", "The text shows it is negative."]
    loop, _ = _loop(tmp_path, replies=[echo, explain], max_errors=3)
    gold = ["negative", "negative", "negative", "negative", "positive"]
    said = ["positive", "positive", "positive", "positive", "positive"]
    f = _Found(gold, said, [0, 1, 2, 3], ["dull one", "echo two", "flat three", "slow four", "good five"], "THE GUIDE")
    labeler = _with_guideline(loop.cfg, loop.current)
    # the first three errors (max_errors) are asked; the echo of the question says nothing and is dropped
    assert loop._explain(labeler, f) == {0: "The word dull reads as negative here", 2: "The word flat reads as negative here"}
    assert loop.out.calls["text"] == 3
    other, _ = _loop(tmp_path / "other", replies=[echo, explain], explainer="proposer",
                     proposer={"params": {"replies": [[r"Text: (\w+)", "The proposer reads {0} as negative"]]}})
    assert other._explain(_with_guideline(other.cfg, other.current), f) == {
        0: "The proposer reads dull as negative", 1: "The proposer reads echo as negative", 2: "The proposer reads flat as negative", 3: "The proposer reads slow as negative"}


def test_a_round_that_accepts_nothing_ends_the_loop_unless_the_proposer_samples(tmp_path):
    from labelmill.strategies.refine.run import refine

    rows = [{"text": f"a dreadful film {i}", "label": "negative"} for i in range(10)] + [{"text": f"a good film {i}", "label": "positive"} for i in range(10)]
    config = {**CONFIG, "model": {"backend": "fake", "params": {"keywords": {"positive": ["good"], "negative": ["bad"]}, "rule_words": True,
                                                               "default_reply": "no idea"}}}
    events = []
    result = refine(config, pd.DataFrame(rows), project=tmp_path / "p.db", rounds=2, on_event=lambda e: events.append(getattr(e, "message", "")))
    assert [r.round for r in result.rounds] == [1] and result.rounds[0].accepted is None and result.rounds[0].errors > 0
    assert "refine: round 1 accepted nothing; the next round would repeat it, so the loop ends here" in events
    events.clear()
    assert len(refine(config, pd.DataFrame(rows), project=tmp_path / "q.db", rounds=1, on_event=lambda e: events.append(getattr(e, "message", ""))).rounds) == 1
    assert not any("accepted nothing" in m for m in events)  # the last round: nothing to say about a next one
    sampled = refine(config, pd.DataFrame(rows), project=tmp_path / "r.db", rounds=2, proposer={"temperature": 0.7})
    assert [r.round for r in sampled.rounds] == [1, 2]  # a sampling proposer may write something else next round


def test_prepare_reads_a_file_splits_the_rows_and_names_them_by_their_index(tmp_path):
    from labelmill.errors import InputDataError
    from labelmill.store import Store
    from labelmill.strategies.refine.run import _Refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    def prepare(dev, project, **opts):
        return _Refine.prepare(CONFIG, dev, RefineOptions(**opts), tmp_path / project, None, lambda e: None)

    rows = [{"text": f"row {i}", "label": "positive"} for i in range(20)]
    pd.DataFrame(rows).to_csv(tmp_path / "dev.csv", index=False)
    loop = prepare(str(tmp_path / "dev.csv"), "a.db", author="ann")
    assert len(loop.search) == 10 and len(loop.heldout) == 10  # twenty rows: the least it takes
    assert not set(loop.search["text"]) & set(loop.heldout["text"]) and set(loop.search["text"]) | set(loop.heldout["text"]) == {r["text"] for r in rows}
    assert list(loop.search.index) == list(range(10)) and list(loop.heldout.index) == list(range(10))
    assert list(loop.search.columns) == ["text", "label"] == list(loop.heldout.columns)
    assert sorted(loop.search_rows) == sorted(int(t.split()[1]) for t in loop.search["text"])  # positions in the file
    with Store(tmp_path / "a.db") as store:
        assert GuidelineVersions(store, "movies").log()[0].author == "ann"
    numbered = prepare(pd.DataFrame(rows, index=range(100, 120)), "b.db")  # the review loop's row numbers
    assert sorted(numbered.search_rows) == sorted(100 + int(t.split()[1]) for t in numbered.search["text"])
    named = prepare(pd.DataFrame(rows, index=[f"r{i}" for i in range(20)]), "c.db")
    assert sorted(named.search_rows) == sorted(int(t.split()[1]) for t in named.search["text"])
    with pytest.raises(InputDataError, match="at least 20 dev rows"):
        prepare(pd.DataFrame(rows[:19]), "d.db")
    with pytest.raises(InputDataError, match="at least 20 dev rows"):  # 21 rows, 45% held out: 12 to search, 9 held out
        prepare(pd.DataFrame(rows + rows[:1]), "e.db", heldout_share=0.45)
    with pytest.raises(InputDataError, match="gold column 'label'"):
        prepare(pd.DataFrame([{"text": r["text"]} for r in rows]), "f.db")
    judge = prepare(pd.DataFrame(rows), "g.db", proposer={"name": "qwen2.5-coder-1.5b"})
    assert judge.proposer_name == "fake:qwen2.5-coder-1.5b" and judge.cfg.model.name == "qwen2.5-coder-0.5b"


def test_refine_s_commands_are_named_by_their_import_paths_and_every_strategy_s_resolve():
    """The CLI imports a strategy's commands from 'module:attribute' when it starts: refine names `guidelines`
    and `refine`, and every registered strategy's named commands import as click commands."""
    import importlib

    import click

    from labelmill.core.strategy import get_strategy, strategies

    def resolve(entry):
        module, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(module), attribute)

    assert [resolve(e).name for e in get_strategy("refine").command()] == ["guidelines", "refine"]
    for name in strategies.names():
        named = get_strategy(name).command()
        for entry in named if isinstance(named, (list, tuple)) else [named]:
            command = resolve(entry) if isinstance(entry, str) else entry
            assert command is None or isinstance(command, click.Command), (name, entry)
