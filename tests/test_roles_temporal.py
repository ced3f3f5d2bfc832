"""Semantic roles and event order: parsing, alignment and metrics against hand-checked rows, and both tasks
through the core loop on the fake backend."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import labelmill
from labelmill.config import load_config
from labelmill.errors import ConfigError, InputDataError
from labelmill.tasks import make_task
import labelmill.tasks.base
import labelmill.types
from labelmill.tasks.roles import merge_arguments, align_arguments, head_metrics, head_token, load_frame_files, parse_frames, role_metrics, role_name, rule_arguments
from labelmill.tasks.temporal import annotator_labels, majority, micro_f1_without

from conftest import ROOT

SENTENCE = "where can I get morcillas in tampa bay , I will like the argentinian type"
GET = {"start": 12, "end": 15, "text": "get", "lemma": "get", "sense": "get.01"}
GOLD_GET = [{"start": 0, "end": 5, "text": "where", "role": "ARGM-LOC"}, {"start": 6, "end": 9, "text": "can", "role": "ARGM-MOD"},
            {"start": 10, "end": 11, "text": "I", "role": "ARG0"}, {"start": 16, "end": 25, "text": "morcillas", "role": "ARG1"},
            {"start": 26, "end": 38, "text": "in tampa bay", "role": "ARGM-LOC"}]


def roles_config(**extra):
    return {"task": "roles", "name": "srl", "model": {"backend": "fake"}, **extra}


# ----------------------------------------------------------------------------------------------
# roles: parsing and alignment


def test_role_names_are_read_in_propbank_short_forms_and_unknown_roles_are_not_guessed():
    known = {n: n for n in ("ARG0", "ARG1", "ARGM-TMP", "ARGM-NEG", "R-ARG0")}
    assert role_name("A0", known) == "ARG0"
    assert role_name("arg1", known) == "ARG1"
    assert role_name("AM-TMP", known) == "ARGM-TMP"
    assert role_name("ARGM_NEG", known) == "ARGM-NEG"
    assert role_name("argm tmp", known) == "ARGM-TMP"
    assert role_name("R-A0", known) == "R-ARG0"
    assert role_name("ARG5", known) is None
    assert role_name("Agent", known) is None


def test_an_answer_is_parsed_into_frames_and_lines_that_are_not_roles_are_kept_apart():
    known = {n: n for n in ("ARG0", "ARG1", "ARGM-LOC")}
    frames, other = parse_frames("ARG0: I\n- ARG1: morcillas\nin tampa bay (ARGM-LOC)\nThe verb means to obtain.", known)
    assert frames == [{"predicate": None, "arguments": [("ARG0", "I", "ARG0: I"), ("ARG1", "morcillas", "- ARG1: morcillas"),
                                                        ("ARGM-LOC", "in tampa bay", "in tampa bay (ARGM-LOC)")]}]
    assert other == ["The verb means to obtain."]
    found, _ = parse_frames("PREDICATE: get\nARG0: I\nPREDICATE: like\nARG1: the argentinian type", known)
    assert [(f["predicate"], [a[1] for a in f["arguments"]]) for f in found] == [("get", ["I"]), ("like", ["the argentinian type"])]
    assert parse_frames("none", known) == ([], [])
    assert parse_frames("I am not sure.", known) == (None, ["I am not sure."])


def test_arguments_align_to_the_occurrence_nearest_the_predicate_and_never_invent_text():
    spans, missed = align_arguments(SENTENCE, GET, [("ARG0", "I", 0.9), ("ARG1", "Morcillas", None), ("ARGM-LOC", "in Tampa Bay", 0.5),
                                                    ("ARG2", "in miami", 0.4), ("ARG1", "get", 0.8)])
    # "I" occurs twice (10 and 41): the one next to "get" is taken; case is ignored; the predicate is never an argument
    assert [(s["role"], s["start"], s["end"], s["text"]) for s in spans] == [("ARG0", 10, 11, "I"), ("ARG1", 16, 25, "morcillas"),
                                                                           ("ARGM-LOC", 26, 38, "in tampa bay")]
    assert all(SENTENCE[s["start"]:s["end"]] == s["text"] for s in spans)
    assert missed == [{"role": "ARG2", "text": "in miami"}, {"role": "ARG1", "text": "get"}]
    like = {"start": 48, "end": 52, "text": "like"}
    spans, _ = align_arguments(SENTENCE, like, [("ARG0", "I", None)])
    assert (spans[0]["start"], spans[0]["end"]) == (41, 42)


# ----------------------------------------------------------------------------------------------
# roles: heads and metrics


def test_head_words_by_the_fixed_rule():
    def head(phrase, sentence=None):
        sentence = sentence or phrase
        a, b = head_token(sentence, 0, len(phrase))
        return sentence[a:b]

    assert head("in tampa bay") == "bay"
    assert head("the Iguazu Falls on the border of Argentina and Brazil") == "Falls"
    assert head("I") == "I"
    assert head("some articles that discuss the details") == "articles"
    assert head("\"the best one ,") == "one"
    assert head("n't") == "n't"
    assert head("because of the rain") == "rain"  # a leading subordinator is not the head, nor cuts the phrase


def test_argument_f1_is_exact_span_and_role_and_head_f1_is_lenient_on_boundaries():
    gold = [{"predicate": GET, "arguments": GOLD_GET}]
    predicted = [{"predicate": GET, "arguments": [
        {"start": 10, "end": 11, "role": "ARG0", "text": "I"},                       # exact
        {"start": 16, "end": 38, "role": "ARG1", "text": "morcillas in tampa bay"},  # too long: same head "morcillas", wrong span
        {"start": 29, "end": 38, "role": "ARGM-LOC", "text": "tampa bay"},           # head "bay" matches "in tampa bay"
        {"start": 6, "end": 9, "role": "ARGM-TMP", "text": "can"},                   # right span, wrong role
    ]}]
    m = role_metrics(gold, predicted)
    # exact: 1 of 4 predicted, 1 of 5 gold
    assert m["srl_argument_precision"] == pytest.approx(1 / 4)
    assert m["srl_argument_recall"] == pytest.approx(1 / 5)
    assert m["srl_argument_f1"] == pytest.approx(2 * (1 / 4) * (1 / 5) / (1 / 4 + 1 / 5))
    assert m["per_role"]["ARG0"]["f1"] == 1.0 and m["per_role"]["ARGM-MOD"]["recall"] == 0.0 and m["per_role"]["ARGM-TMP"]["precision"] == 0.0
    h = head_metrics(gold, predicted, [SENTENCE])
    # heads: I, morcillas, bay right; can with the wrong role is not
    assert h["srl_head_precision"] == pytest.approx(3 / 4) and h["srl_head_recall"] == pytest.approx(3 / 5)
    # a failed row predicts nothing and its gold arguments are all missed
    m = role_metrics(gold + gold, predicted + [None])
    assert m["srl_argument_recall"] == pytest.approx(1 / 10) and m["srl_completion_rate"] == 0.5
    # a predicate without arguments is right only when the answer says none, not when the row failed
    empty = [{"predicate": GET, "arguments": []}] * 2
    assert role_metrics(empty, [{"predicate": GET, "arguments": []}, None])["accuracy"] == 0.5


def test_a_head_match_is_counted_once_per_gold_argument():
    gold = [{"predicate": GET, "arguments": [{"start": 16, "end": 25, "role": "ARG1", "text": "morcillas"}]}]
    twice = [{"predicate": GET, "arguments": [{"start": 16, "end": 25, "role": "ARG1", "text": "morcillas"},
                                              {"start": 16, "end": 38, "role": "ARG1", "text": "morcillas in tampa bay"}]}]
    h = head_metrics(gold, twice, [SENTENCE])
    assert h["srl_head_precision"] == 0.5 and h["srl_head_recall"] == 1.0


def test_senses_are_compared_only_where_both_sides_have_one():
    gold = [{"predicate": GET, "arguments": []}, {"predicate": {**GET, "sense": "get.03"}, "arguments": []}]
    predicted = [{"predicate": {**GET, "sense": "get.01"}, "arguments": []}, {"predicate": {k: v for k, v in GET.items() if k != "sense"}, "arguments": []}]
    m = role_metrics(gold, predicted)
    assert m["srl_sense_accuracy"] == 1.0 and m["srl_senses_compared"] == 1
    assert "srl_sense_accuracy" not in role_metrics(gold, [{"predicate": {"start": 12, "end": 15}, "arguments": []}] * 2)


def test_the_rules_find_modals_negations_subjects_and_objects():
    sentence = "I do n't think he will buy the car in May ."
    buy = {"start": 23, "end": 26, "text": "buy", "lemma": "buy"}
    found = rule_arguments(sentence, buy)
    # the subject runs back to a clause boundary (no parser knows "think" is a verb), but its head is "he"
    assert [(a["role"], a["text"]) for a in found] == [("ARG0", "I do n't think he"), ("ARGM-MOD", "will"), ("ARG1", "the car"), ("ARG2", "in May")]
    assert sentence[slice(*head_token(sentence, found[0]["start"], found[0]["end"]))] == "he"
    comma = "Well , he will buy the car ."
    assert [(a["role"], a["text"]) for a in rule_arguments(comma, {"start": 15, "end": 18, "text": "buy"})][0] == ("ARG0", "he")
    passive = "The car was sold by my uncle ."
    sold = {"start": 12, "end": 16, "text": "sold", "lemma": "sell"}
    assert [(a["role"], a["text"]) for a in rule_arguments(passive, sold)] == [("ARG1", "The car"), ("ARG0", "by my uncle")]
    think = {"start": 9, "end": 14, "text": "think", "lemma": "think"}
    assert ("ARGM-NEG", "n't") in [(a["role"], a["text"]) for a in rule_arguments(sentence, think)]


# ----------------------------------------------------------------------------------------------
# roles: through the loop


def _srl_rows(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def test_a_roles_run_labels_real_spans_and_eval_reads_them(tmp_path):
    config = roles_config(roles={"check": False}, model={"backend": "fake", "params": {
        "replies": [[r"Predicate: get$", "ARG0: I\nARG1: morcillas\nARGM-LOC: in Miami\nARGM-TMP: get"]]}})
    data = _srl_rows(tmp_path, [{"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}])
    out = tmp_path / "out.jsonl"
    result = labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    assert result.failed == 0
    labeled = pd.read_json(out, lines=True)
    value = labeled["llm_label"][0]
    assert value["predicate"] == {"start": 12, "end": 15, "text": "get", "lemma": "get"}  # the row's gold sense is not an answer
    assert [(a["role"], a["start"], a["text"]) for a in value["arguments"]] == [("ARG0", 10, "I"), ("ARG1", 16, "morcillas")]
    assert all(0 < a["confidence"] <= 1 for a in value["arguments"])
    assert labeled["llm_unaligned"][0] == [{"role": "ARGM-LOC", "text": "in Miami"}, {"role": "ARGM-TMP", "text": "get"}]
    metrics = labelmill.evaluate(config, out)
    assert metrics["srl_argument_precision"] == 1.0 and metrics["srl_argument_recall"] == pytest.approx(2 / 5)
    assert metrics["srl_exact_span_share"] == 1.0 and metrics["srl_completion_rate"] == 1.0
    # an output whose argument text is not the sentence's own (edited by hand) is caught by the share
    edited = labeled.copy()
    edited.at[0, "llm_label"] = {**value, "arguments": [value["arguments"][0], {**value["arguments"][1], "text": "chorizo"}]}
    edited.to_json(tmp_path / "edited.jsonl", orient="records", lines=True)
    assert labelmill.evaluate(config, tmp_path / "edited.jsonl")["srl_exact_span_share"] == 0.5


def test_the_scored_check_gives_each_argument_its_role_or_drops_it():
    task = make_task(load_config(roles_config(roles={"check": True})))
    row = labelmill.tasks.base.RowInput("", {"text": SENTENCE, "predicate": GET})
    label = labelmill.types.Label(value={"predicate": GET, "arguments": [
        {"role": "ARG1", "start": 10, "end": 11, "text": "I", "confidence": 0.9}, {"role": "ARG1", "start": 0, "end": 5, "text": "where", "confidence": 0.9}]})
    asked = task.followups(row, label)
    assert [p.user.splitlines()[-2] for p, _ in asked] == ["Phrase: I", "Phrase: where"]
    assert asked[0][1] == tuple(task.labels) + ("none",)
    import math

    def answer(best: str, p: float) -> list[float]:
        rest = (1 - p) / len(task.labels)
        return [math.log(p if c == best else rest) for c in asked[0][1]]

    checked = task.apply_followups(row, label, [answer("ARG0", 0.7), answer("none", 0.8)])
    assert [(a["role"], a["written_role"], round(a["confidence"], 3)) for a in checked.value["arguments"]] == [("ARG0", "ARG1", 0.7)]
    assert checked.value["dropped"][0]["text"] == "where" and checked.confidence == pytest.approx(0.7)


def test_the_rules_fill_what_the_model_left_and_never_overlap_it(tmp_path):
    config = roles_config(roles={"check": False, "rules": "fill"}, model={"backend": "fake", "params": {"replies": [[r"Predicate: get$", "ARG1: morcillas in tampa bay"]]}})
    data = _srl_rows(tmp_path, [{"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}])
    out = tmp_path / "out.jsonl"
    labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    value = pd.read_json(out, lines=True)["llm_label"][0]
    # the model's ARG1 stays; the rules add their subject (back to "where", a boundary), and their object
    # (morcillas) and prepositional phrase overlap the model's argument: left out
    assert [(a["role"], a["text"], a.get("source")) for a in value["arguments"]] == [("ARG0", "can I", "rules"), ("ARG1", "morcillas in tampa bay", None)]
    first = merge_arguments(value["arguments"][1:], rule_arguments(SENTENCE, GET), "first")
    assert [(a["role"], a["text"]) for a in first] == [("ARG0", "can I"), ("ARG1", "morcillas"), ("ARG2", "in tampa bay")]


def test_without_a_predicate_the_model_finds_them_first(tmp_path):
    config = roles_config(roles={"predicate_column": None, "check": False},
                          model={"backend": "fake", "params": {"default_reply": "PREDICATE: get\nARG0: I\nPREDICATE: like\nARG0: I\nARG1: the argentinian type"}})
    task = make_task(load_config(config))
    assert "PREDICATE: verb" in task.system_prompt()
    data = _srl_rows(tmp_path, [{"text": SENTENCE}])
    out = tmp_path / "out.jsonl"
    labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    frames = pd.read_json(out, lines=True)["llm_label"][0]["frames"]
    assert [(f["predicate"]["text"], [(a["role"], a["start"]) for a in f["arguments"]]) for f in frames] == [
        ("get", [("ARG0", 10)]), ("like", [("ARG0", 41), ("ARG1", 53)])]


def test_demos_show_gold_arguments_in_the_answer_format(tmp_path):
    examples = tmp_path / "train.jsonl"
    pd.DataFrame([{"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}]).to_json(examples, orient="records", lines=True)
    config = load_config(roles_config(examples={"file": str(examples), "k": 1}, roles={"check": False}))
    task = make_task(config)
    gold = task.example_gold({"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}, "arguments")
    assert task.demo_answer(gold, {"text": SENTENCE, "predicate": GET}) == "ARGM-LOC: where\nARGM-MOD: can\nARG0: I\nARG1: morcillas\nARGM-LOC: in tampa bay"
    shown = task.render({"text": SENTENCE, "predicate": GET})
    assert shown.splitlines() == ["Sentence: where can I <pred>get</pred> morcillas in tampa bay , I will like the argentinian type", "Predicate: get"]
    with pytest.raises(InputDataError, match="does not occur"):
        task.render({"text": SENTENCE, "predicate": "buy"})


def test_frame_files_name_the_lemmas_roles_and_senses_are_chosen_by_a_scored_question(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "get.xml").write_text(
        '<frameset><predicate lemma="get"><roleset id="get.01" name="receive"><roles><role n="0" f="PAG" descr="receiver"/>'
        '<role n="1" f="PPT" descr="thing gotten"/></roles></roleset><roleset id="get.03" name="become"><roles>'
        '<role n="1" f="PPT" descr="thing becoming"/><role n="2" f="PRD" descr="new state"/><role n="M" f="LOC" descr="where"/></roles></roleset></predicate></frameset>',
        encoding="utf-8")
    read = load_frame_files(frames)
    assert read["get.01"] == {"name": "receive", "roles": {"ARG0": "receiver", "ARG1": "thing gotten"}}
    assert read["get.03"]["roles"] == {"ARG1": "thing becoming", "ARG2": "new state", "ARGM-LOC": "where"}
    config = roles_config(roles={"frames": "frames", "senses": True, "check": False},
                          model={"backend": "fake", "params": {"default_reply": "ARG0: I", "keywords": {"get.01": ["receiver"], "get.03": ["nothing"]}}})
    config_path = tmp_path / "c.yaml"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    task = make_task(load_config(config_path))
    shown = task.render({"text": SENTENCE, "predicate": GET})
    assert "Roleset get.01 (receive): ARG0 = receiver; ARG1 = thing gotten" in shown
    data = _srl_rows(tmp_path, [{"text": SENTENCE, "predicate": {**GET, "sense": "get.03"}, "arguments": GOLD_GET}])
    out = tmp_path / "out.jsonl"
    labelmill.run(load_config(config_path), data, output=out, project=tmp_path / "p.db")
    value = pd.read_json(out, lines=True)["llm_label"][0]
    assert value["predicate"]["sense"] == "get.01" and value["predicate"]["sense_confidence"] > 0.5
    assert labelmill.evaluate(load_config(config_path), out)["srl_sense_accuracy"] == 0.0
    with pytest.raises(ConfigError, match="roles.senses"):
        load_config(roles_config(roles={"senses": True}))
    with pytest.raises(ConfigError, match="does not exist"):
        make_task(load_config({**roles_config(), "roles": {"frames": str(tmp_path / "missing")}}))


# ----------------------------------------------------------------------------------------------
# temporal


def temporal_config(**extra):
    return {"task": "temporal", "name": "order", "gold_column": "relation", "model": {"backend": "fake"}, **extra}


def test_annotator_labels_come_from_start_points_or_labels():
    names = {"before": "BEFORE", "after": "AFTER", "equal": "EQUAL", "vague": "VAGUE"}
    assert annotator_labels([[0, 52, 78, 100, 4], [39, 78, 0, 100, 4], [0, 100, 0, 80, 3]], names) == ["BEFORE", "AFTER", "EQUAL"]
    assert annotator_labels(json.dumps(["before", "After", "nonsense"]), names) == ["BEFORE", "AFTER"]
    assert annotator_labels(None, names) == []
    assert majority(["BEFORE", "AFTER", "BEFORE"], "VAGUE") == "BEFORE"
    assert majority(["BEFORE", "AFTER", "EQUAL"], "VAGUE") == "VAGUE"
    assert majority(["BEFORE", "AFTER"], "VAGUE") == "VAGUE"


def test_matres_micro_f1_leaves_vague_out_on_both_sides():
    gold = ["BEFORE", "AFTER", "VAGUE", "BEFORE", "VAGUE"]
    predicted = ["BEFORE", "VAGUE", "BEFORE", None, "VAGUE"]
    m = micro_f1_without(gold, predicted, "VAGUE")
    # right: 1 (row 0; row 4's VAGUE = VAGUE counts on neither side); predicted non-vague: rows 0 and 2; gold non-vague: rows 0, 1, 3
    assert m["precision"] == 0.5 and m["recall"] == pytest.approx(1 / 3) and m["f1"] == pytest.approx(0.4)


def test_a_temporal_run_marks_the_pair_scores_four_labels_and_reports_agreement(tmp_path):
    config = temporal_config(model={"backend": "fake", "params": {"keywords": {"BEFORE": ["then"], "AFTER": ["after"], "EQUAL": ["while"], "VAGUE": ["maybe"]}}})
    task = make_task(load_config(config))
    assert task.candidates() == ["BEFORE", "AFTER", "EQUAL", "VAGUE"]
    text = "She ate and then she left."
    assert task.render({"text": text, "e1": {"start": 4, "end": 7}, "e2": "left"}).splitlines() == [
        "She <e1>ate</e1> and then she <e2>left</e2>.", "e1: ate", "e2: left"]
    rows = [
        {"text": text, "e1": {"start": 4, "end": 7}, "e2": {"start": 21, "end": 25}, "relation": "BEFORE",
         "annotations": [[0, 10, 20, 30, 4], [0, 10, 5, 30, 4], [10, 20, 0, 30, 2]]},
        {"text": "He left after she <e1>ate</e1> and <e2>slept</e2>.", "relation": "AFTER", "annotations": [[50, 60, 0, 10, 4], [50, 60, 0, 10, 4], [0, 60, 0, 10, 4]]},
        {"text": "They sang while they <e1>danced</e1>, <e2>smiling</e2>.", "relation": "VAGUE", "annotations": [[0, 1, 0, 1, 1], [0, 1, 5, 9, 1], [9, 10, 0, 1, 1]]},
    ]
    path = tmp_path / "pairs.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    out = tmp_path / "out.jsonl"
    labelmill.run(config, path, output=out, project=tmp_path / "p.db")
    labeled = pd.read_json(out, lines=True)
    assert list(labeled["llm_label"]) == ["BEFORE", "AFTER", "EQUAL"]
    m = labelmill.evaluate(config, out)
    assert m["completion_rate"] == 1.0 and m["temporal_accuracy"] == pytest.approx(2 / 3)
    assert m["majority_label"] == "AFTER" or m["majority_accuracy"] == pytest.approx(1 / 3)
    # annotators: row 1 B,B,A (majority B: 2 of 3 agree), row 2 A,A,EQUAL (2 of 3), row 3 EQUAL,B,A (no majority: VAGUE, 0 of 3)
    assert m["temporal_annotator_agreement"] == pytest.approx(4 / 9)
    # pairs that agree: row 1 one of 3, row 2 one of 3, row 3 none
    assert m["temporal_annotator_pairwise_agreement"] == pytest.approx(2 / 9)
    # the model: row 1 B vs B,B,A = 2; row 2 A vs A,A,E = 2; row 3 EQUAL vs E,B,A = 1
    assert m["temporal_model_annotator_agreement"] == pytest.approx(5 / 9)
    assert m["temporal_micro_f1_no_vague"] == pytest.approx(micro_f1_without(["BEFORE", "AFTER", "VAGUE"], ["BEFORE", "AFTER", "EQUAL"], "VAGUE")["f1"])
    assert m["temporal_micro_f1_no_vague"] == pytest.approx(2 * (2 / 3) * 1.0 / (2 / 3 + 1.0))


def test_a_temporal_config_names_a_bad_vague_label_and_a_broken_pair():
    with pytest.raises(ConfigError, match="vague_label"):
        load_config(temporal_config(labels=["BEFORE", "AFTER"]))
    task = make_task(load_config(temporal_config()))
    with pytest.raises(InputDataError, match="pair is unusable"):
        task.render({"text": "She ate.", "e1": "ate", "e2": "slept"})


def test_the_example_configs_load_and_read_their_data():
    for name in ("roles", "temporal"):
        config = load_config(ROOT / "examples" / name / "config.yaml")
        task = make_task(config)
        rows = pd.read_json(config.base_dir / config.examples.file, lines=True).head(3).to_dict("records")
        for row in rows:
            assert task.render(row)
            assert task.gold(row) is not None


def test_roles_export_to_label_studio_and_back_and_to_spacy_span_groups(tmp_path):
    from labelmill.exports import export, label_studio_result, label_studio_value, read_docbin

    config = roles_config(roles={"check": False}, model={"backend": "fake", "params": {"replies": [[r"Predicate: get$", "ARG0: I\nARG1: morcillas"]]}})
    data = _srl_rows(tmp_path, [{"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}])
    out = tmp_path / "out.jsonl"
    labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    dest = export(config, out, "label-studio", tmp_path / "ls.json")
    [item] = json.loads(dest.read_text())
    assert item["data"]["text"] == SENTENCE
    result = item["predictions"][0]["result"]
    spans = [(r["value"]["text"], r["value"]["labels"][0]) for r in result if r["type"] == "labels"]
    assert spans == [("get", "V"), ("I", "ARG0"), ("morcillas", "ARG1")]
    assert [(r["from_id"], r["to_id"], r["labels"]) for r in result if r["type"] == "relation"] == [("r0p0", "r0p0a0", ["ARG0"]), ("r0p0", "r0p0a1", ["ARG1"])]
    back = label_studio_value("roles", result)
    assert back["predicate"]["start"] == 12 and [(a["role"], a["start"], a["end"]) for a in back["arguments"]] == [("ARG0", 10, 11), ("ARG1", 16, 25)]
    xml = (tmp_path / "ls.label_config.xml").read_text()
    assert '<Label value="V"/>' in xml and '<Relation value="ARGM-TMP"/>' in xml
    # two predicates: each argument comes back to the predicate its relation names
    two = {"frames": [{"predicate": {"start": 12, "end": 15, "text": "get"}, "arguments": [{"role": "ARG0", "start": 10, "end": 11, "text": "I"}]},
                      {"predicate": {"start": 48, "end": 52, "text": "like"}, "arguments": [{"role": "ARG0", "start": 41, "end": 42, "text": "I"}]}]}
    again = label_studio_value("roles", label_studio_result("roles", two, SENTENCE, "k"))
    assert [(f["predicate"]["text"], [a["start"] for a in f["arguments"]]) for f in again["frames"]] == [("get", [10]), ("like", [41])]
    pytest.importorskip("spacy")
    docbin = export(config, out, "spacy", tmp_path / "srl.spacy")
    [doc] = read_docbin(docbin)
    assert [(s.text, s.label_) for s in doc.spans["srl_0"]] == [("get", "V"), ("I", "ARG0"), ("morcillas", "ARG1")]
    assert len(doc.spans["srl"]) == 3 and not doc.ents


def test_temporal_exports_the_marked_pair_with_its_choice(tmp_path):
    from labelmill.exports import export

    config = temporal_config(model={"backend": "fake", "params": {"keywords": {"BEFORE": ["then"]}}})
    path = tmp_path / "pairs.jsonl"
    pd.DataFrame([{"text": "She ate and then she left.", "e1": "ate", "e2": "left", "relation": "BEFORE"}]).to_json(path, orient="records", lines=True)
    out = tmp_path / "out.jsonl"
    labelmill.run(config, path, output=out, project=tmp_path / "p.db")
    [item] = json.loads(export(config, out, "label-studio", tmp_path / "ls.json").read_text())
    assert item["data"]["text"].startswith("She <e1>ate</e1> and then she <e2>left</e2>.")
    assert item["predictions"][0]["result"][0]["value"] == {"choices": ["BEFORE"]}


def test_weak_supervision_votes_on_the_marked_event_pair(tmp_path):
    """A rule reads a temporal row as the task shows it: the pair marked, so it can look between the events."""
    from labelmill.strategies.weak import weak

    config = temporal_config(
        model={"backend": "fake", "params": {"keywords": {"BEFORE": ["then"]}}},
        weak={"sub_labelers": [
            {"name": "then_between", "kind": "regex", "pattern": r"</e1>[^<]* then [^<]*<e2>", "label": "BEFORE"},
            {"name": "after_between", "kind": "regex", "pattern": r"</e1>[^<]* after [^<]*<e2>", "label": "AFTER"},
        ]})
    rows = [{"text": "She ate and then she left.", "e1": "ate", "e2": "left", "relation": "BEFORE"},
            {"text": "He left after she ate.", "e1": "left", "e2": "ate", "relation": "AFTER"},
            {"text": "Then she ate; she left.", "e1": "ate", "e2": "left", "relation": "BEFORE"}]
    votes = weak(config, rows, project=tmp_path / "p.db").frame
    assert list(votes["weak_vote_then_between"]) == ["BEFORE", "", ""]   # row 3's "Then" is not between the events
    assert list(votes["weak_vote_after_between"]) == ["", "AFTER", ""]


def test_calibration_of_a_temporal_config_tempers_a_sure_labeler(tmp_path):
    import random

    rng = random.Random(0)
    rows = []
    for n in range(200):
        before = rng.random() < 0.6
        noise = " ".join(rng.choice(["then", "after", "and", "so"]) for _ in range(3))
        text = f"A{n} ate {'and then' if before else 'after'} B{n} left {noise} ."
        rows.append({"text": text, "e1": "ate", "e2": "left", "relation": "BEFORE" if before else "AFTER"})
    pd.DataFrame(rows[:150]).to_json(tmp_path / "seed.jsonl", orient="records", lines=True)
    pd.DataFrame(rows[150:]).to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    config = temporal_config(model={"backend": "fake", "name": "keywords", "params": {"keywords": {"BEFORE": ["then"], "AFTER": ["after"]}}})
    cal = labelmill.calibrate(config, tmp_path / "seed.jsonl", project=tmp_path / "p.db", target=0.9)
    assert cal.seed_report["seed_rows"] == 150
    assert cal.seed_report["ece_calibrated_cv"] < cal.seed_report["ece_raw"]
    frame = labelmill.run(config, tmp_path / "test.jsonl", project=tmp_path / "p.db", calibration=cal).frame
    threshold = cal.threshold if cal.threshold is not None else 1.1
    assert all(review == (confidence < threshold) for confidence, review in zip(frame["llm_confidence"], frame["llm_needs_review"]))


def test_the_shipped_frames_file_reads_in_the_yaml_layout():
    frames = load_frame_files(ROOT / "examples" / "roles" / "frames.yaml")
    assert frames["give.01"] == {"name": "transfer", "roles": {"ARG0": "giver", "ARG1": "thing given", "ARG2": "entity given to"}}
    assert sorted(r for r in frames if r.startswith("get.")) == ["get.01", "get.03"]


def test_a_given_predicate_takes_every_argument_line_once_whatever_blocks_the_model_writes(tmp_path):
    config = roles_config(roles={"rules": "fill"}, model={"backend": "fake", "params": {"replies": [[r"Predicate: get$",
        "PREDICATE: get\nARG0: I\nPREDICATE: like\nARG1: morcillas\nARG0: I"]]}})
    data = _srl_rows(tmp_path, [{"text": SENTENCE, "predicate": GET, "arguments": GOLD_GET}])
    out = tmp_path / "out.jsonl"
    labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    value = pd.read_json(out, lines=True)["llm_label"][0]
    assert value["predicate"]["start"] == 12
    # "I" written twice lands once (the second has no free occurrence near "get" but the one at 41); the rules
    # add nothing over the model's spans and each rule span once
    got = [(a["role"], a["start"], a.get("source")) for a in value["arguments"]]
    assert got == [("ARG0", 10, None), ("ARG1", 16, None), ("ARG2", 26, "rules"), ("ARG0", 41, None)]


def test_a_predicate_cell_with_broken_offsets_is_a_clear_input_error():
    task = make_task(load_config(roles_config()))
    with pytest.raises(InputDataError, match="not whole numbers"):
        task.render({"text": SENTENCE, "predicate": {"start": "twelve", "end": 15}})
    with pytest.raises(InputDataError, match="outside the sentence"):
        task.render({"text": SENTENCE, "predicate": {"start": 12, "end": 500}})


def test_order_cues_name_the_tense_modals_and_connectives_around_each_event():
    from labelmill.tasks.temporal import order_cues

    text = "He had left before she arrived ."
    got = order_cues(text, {"start": 7, "end": 11, "text": "left"}, {"start": 23, "end": 30, "text": "arrived"})
    # worked out by hand: "had" just before e1; "before" after e1, between the two, and two tokens before e2 ("she" is
    # not a cue word), "had" four tokens before e2; "arrived" ends in -ed; two tokens between the events
    assert got == {"e1_word=left": 1.0, "e1_before0=had": 1.0, "e1_before=had": 1.0, "e1_after0=before": 1.0,
                   "e2_word=arrived": 1.0, "e2_ends=ed": 1.0, "e2_before1=before": 1.0, "e2_before=before": 1.0,
                   "e2_before3=had": 1.0, "e2_before=had": 1.0,
                   "between_tokens": 2 / 40, "between=before": 1.0, "pair=left|arrived": 1.0}
    # a mark between the events, a cue word two tokens after e1 and two cue words before e2
    got = order_cues("She ate , then she will leave .", {"start": 4, "end": 7, "text": "ate"}, {"start": 24, "end": 29, "text": "leave"})
    assert got == {"e1_word=ate": 1.0, "e1_ends=e": 1.0, "e1_after1=then": 1.0,
                   "e2_word=leave": 1.0, "e2_ends=e": 1.0, "e2_before0=will": 1.0, "e2_before=will": 1.0, "e2_before2=then": 1.0,
                   "e2_before=then": 1.0, "between_tokens": 4 / 40, "between=,": 1.0, "between=then": 1.0, "between=will": 1.0,
                   "pair=ate|leave": 1.0}
    swapped = order_cues(text, {"start": 23, "end": 30, "text": "arrived"}, {"start": 7, "end": 11, "text": "left"})
    assert swapped["e2_first"] == 1.0 and swapped["between=before"] == 1.0 and swapped["pair=arrived|left"] == 1.0
    far = order_cues("A " + "word " * 60 + "B", {"start": 0, "end": 1, "text": "A"}, {"start": 302, "end": 303, "text": "B"})
    assert far["between_tokens"] == 1.0  # capped at 40 tokens


def test_a_temporal_task_gives_the_student_its_hashed_cues_however_the_pair_is_marked():
    from labelmill.tasks.temporal import CUE_DIMS, hashed

    assert hashed([{"a": 1.0}], dims=8).tolist() == [[0, 0, 0, 1.0, 0, 0, 0, 0]]  # CRC-32 of "a" is 0xe8b7be43: slot 3 of 8
    assert hashed([{"a": 1.0, "b": 0.5}, {}], dims=8)[1].sum() == 0
    task = make_task(load_config(temporal_config()))
    offsets = {"text": "She ate and then she left.", "e1": {"start": 4, "end": 7}, "e2": {"start": 21, "end": 25}}
    marked = {"text": "She <e1>ate</e1> and then she <e2>left</e2>."}
    features = task.student_features([offsets, marked])
    assert features.shape == (2, CUE_DIMS) and features.dtype.name == "float32"
    assert (features[0] == features[1]).all() and features[0].sum() > 0
    assert make_task(load_config({"task": "classification", "labels": ["a", "b"]})).student_features([offsets]) is None


def test_the_cascade_s_student_learns_event_order_from_the_task_s_cues(tmp_path, monkeypatch):
    """The student tier takes the task's cues beside the embedding: with an encoder that sees nothing (every text
    the same vector), it still gets the pairs' order from the connective between the events; without the cues it
    is left with one label for every row."""
    import numpy as np

    from conftest import HashEncoder
    from labelmill.selectors import embeddings
    from labelmill.strategies.cascade.run import tiered_cascade
    from labelmill.tasks.temporal import TemporalTask

    class Blind(HashEncoder):
        def encode(self, texts, **_):
            return self._Vectors(np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8))

    monkeypatch.setattr(embeddings, "load_encoder", lambda model: Blind())
    monkeypatch.setenv(embeddings.ENGINE_ENV, "sentence-transformers")

    cues = {"before": "BEFORE", "after": "AFTER", "while": "EQUAL"}
    subjects, verbs = ["the man", "my sister", "the team", "our dog", "a child", "the crowd", "his boss", "the nurse"], ["sang", "ran", "slept", "cried", "ate", "left"]

    def pairs(start: int, n: int) -> list[dict]:
        out = []
        for i in range(start, start + n):
            cue = list(cues)[i % 3]
            a, b = verbs[i % len(verbs)], verbs[(i * 5 + 1) % len(verbs)]
            first = f"{subjects[i % len(subjects)]} "
            text = f"{first}{a} {cue} {subjects[(i + 3) % len(subjects)]} {b} ."
            e2 = len(text) - len(b) - 2
            out.append({"text": text, "e1": {"start": len(first), "end": len(first) + len(a)}, "e2": {"start": e2, "end": e2 + len(b)},
                        "relation": cues[cue]})
        return out

    config = temporal_config(labels=["BEFORE", "AFTER", "EQUAL", "VAGUE"],
                             model={"backend": "fake", "params": {"keywords": {"VAGUE": ["zzz"]}}})

    def student_accuracy(project):
        rows = pairs(1000, 30)
        result = tiered_cascade(config, rows, tiers=["student", {"name": "fake", "model": config["model"]}], seed=pairs(0, 90), target=0.5,
                                calibration_rows=30, project=project)
        labels = result.routing["student"][0]
        return sum(label == row["relation"] for label, row in zip(labels, rows)) / len(rows)

    with_cues = student_accuracy(tmp_path / "a.db")
    monkeypatch.setattr(TemporalTask, "student_features", lambda self, records: None)
    without = student_accuracy(tmp_path / "b.db")
    assert with_cues == 1.0 and without == 1 / 3  # 30 rows, ten of each label
