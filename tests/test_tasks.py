"""NER, matching, QA and extraction: parsers, alignment, metrics, and runs through the real runner with fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelmill
from labelmill.config import load_config
from labelmill.core import Job
from labelmill.tasks import make_task
from labelmill.tasks.base import RowInput
from labelmill.tasks.spans import occurrences
from labelmill.tasks.ner import (
    align_mentions,
    parse_mentions,
    span_metrics,
    spans_to_bio,
)
from labelmill.tasks.qa import align_answer, exact_match, token_f1
from labelmill.types import Generation, Label, ParseFailure

from conftest import SHARED
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TYPES = {"per": "PER", "org": "ORG", "loc": "LOC", "misc": "MISC"}


def ner_config(**extra):
    return load_config({"task": "ner", "labels": ["PER", "ORG", "LOC", "MISC"], "gold_column": "spans", **extra})


def conll_rows(split: str = "test", n: int = 400) -> list[dict]:
    path = SHARED / "conll2003" / f"{split}.jsonl"
    if not path.exists():
        pytest.fail(f"shared data missing: {path}")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh)]


# NER ------------------------------------------------------------------------------------------


def test_ner_parses_the_formats_small_models_write():
    mentions, other = parse_mentions("Japan (LOC)\n- Nadim Ladki (PER)\nORG: Reuters\nFriday (DATE)\n**Asian Cup** [MISC]", TYPES)
    assert [(t, m) for t, m, _ in mentions] == [("LOC", "Japan"), ("PER", "Nadim Ladki"), ("ORG", "Reuters"), ("MISC", "Asian Cup")]
    assert other == ["Friday (DATE)"]  # a type outside the set is skipped, not guessed
    assert parse_mentions("none", TYPES) == ([], [])
    assert [(t, m) for t, m, _ in parse_mentions('[{"type": "PER", "text": "Bitar"}]', TYPES)[0]] == [("PER", "Bitar")]
    assert parse_mentions("I could not find anything useful here", TYPES)[0] is None


def test_ner_alignment_is_robust_and_never_invents():
    text = "Lebanon 's Bitar saved twice ; BITAR was the hero of LEBANON ."
    spans, unaligned = align_mentions(text, [("PER", "Bitar", 0.9), ("LOC", "Lebanon's", 0.8), ("ORG", "Hezbollah", 0.5)])
    got = [(s["type"], s["text"]) for s in spans]
    # every occurrence, case-insensitive on the second pass only when no exact match exists
    assert ("PER", "Bitar") in got and ("LOC", "Lebanon 's") in got
    assert unaligned == [{"type": "ORG", "text": "Hezbollah"}]
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
    # a mention inside a longer word is not matched when a whole-word match exists
    spans, _ = align_mentions("US troops and USA Today", [("LOC", "US", None)])
    assert [(s["start"], s["end"]) for s in spans] == [(0, 2)]


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcXYZ .'-", min_size=1, max_size=6), min_size=1, max_size=12),
    picks=st.lists(st.tuples(st.integers(0, 11), st.integers(1, 3), st.sampled_from(["PER", "LOC"]), st.booleans()), max_size=5),
)
def test_every_span_is_a_slice_of_the_input(words, picks):
    text = " ".join(words)
    mentions = []
    for start, length, kind, upper in picks:
        chunk = " ".join(words[start : start + length]) or "zzz"
        mentions.append((kind, chunk.upper() if upper else chunk.replace(" ", ""), None))
    spans, unaligned = align_mentions(text, mentions)
    previous_end = -1
    squeeze = lambda t: "".join(t.split()).casefold()  # noqa: E731
    for span in spans:
        assert span["start"] >= previous_end and span["end"] > span["start"]  # sorted, never overlapping, never empty
        previous_end = span["end"]
        # each span is some mention of its own type, found in the text (case and spaces aside)
        assert any(kind == span["type"] and squeeze(m) == squeeze(span["text"]) for kind, m, _ in mentions)
    # a mention is placed, reported as not in the text, or every occurrence of it lies under a span already
    # placed (a nested or repeated mention): never silently lost
    placed = {(s["type"], squeeze(s["text"])) for s in spans} | {(u["type"], squeeze(u["text"])) for u in unaligned}
    for kind, m, _ in mentions:
        if (kind, squeeze(m)) not in placed:
            hits = occurrences(text, m)
            assert hits and all(any(s["start"] < end and start < s["end"] for s in spans) for start, end in hits)


def test_spans_on_a_hand_labeled_sentence():
    """Mentions given out of order, in other case, one nested in another: sorted spans, the right types,
    the nested one placed at its own later occurrence, the invented one reported."""
    text = "Angela Merkel met Emmanuel Macron in Paris on Monday, and Merkel flew back to Berlin."
    mentions = [("LOC", "Paris", None), ("PER", "Emmanuel Macron", None), ("PER", "angela merkel", None),
                ("LOC", "Berlin", None), ("PER", "Merkel", None), ("ORG", "Google", None)]
    spans, unaligned = align_mentions(text, mentions)
    assert [(s["start"], s["end"], s["type"]) for s in spans] == [(0, 13, "PER"), (18, 33, "PER"), (37, 42, "LOC"), (58, 64, "PER"), (78, 84, "LOC")]
    assert [s["text"] for s in spans] == ["Angela Merkel", "Emmanuel Macron", "Paris", "Merkel", "Berlin"]
    assert unaligned == [{"type": "ORG", "text": "Google"}]


def test_spans_align_on_the_shared_conll_data():
    """Answers rebuilt from gold (with case and spacing changed as models do) align to the exact gold spans."""
    task = make_task(ner_config())
    gold_all, pred_all = [], []
    for row in conll_rows():
        gold = task.parse_gold(row["spans"])
        answer = "\n".join(f"{s['text'].replace(' ', '') if i % 2 else s['text']} ({s['type']})" for i, s in enumerate(gold)) or "none"
        out = task.parse(Generation(answer), RowInput(row["text"], row))
        assert isinstance(out, Label)
        for span in out.value["spans"]:
            assert row["text"][span["start"] : span["end"]] == span["text"]
        gold_all.append(gold)
        pred_all.append(task.parse_output(out.value["spans"]))
    metrics = task.metrics(gold_all, pred_all)
    assert metrics["f1_strict"] > 0.97  # the rest: a mention also occurring inside a longer gold span elsewhere
    assert metrics["completion_rate"] == 1.0


def test_bio_export_reproduces_the_shared_tags():
    for row in conll_rows(n=300):
        assert spans_to_bio(row["text"], [{**s, "type": s["label"]} for s in row["spans"]], row["tokens"]) == row["tags"]


def test_span_metrics_strict_and_partial():
    gold = [[{"start": 0, "end": 5, "type": "PER"}, {"start": 10, "end": 15, "type": "LOC"}]]
    pred = [[{"start": 0, "end": 5, "type": "PER"}, {"start": 10, "end": 13, "type": "ORG"}, {"start": 20, "end": 22, "type": "LOC"}]]
    m = span_metrics(gold, pred, ["PER", "LOC", "ORG"])
    assert m["precision_strict"] == pytest.approx(1 / 3) and m["recall_strict"] == pytest.approx(1 / 2)
    assert m["precision_partial"] == pytest.approx(1.5 / 3) and m["recall_partial"] == pytest.approx(1.5 / 2)
    assert m["per_type"]["PER"]["f1"] == 1.0 and m["per_type"]["LOC"]["f1"] == 0.0


def test_ner_run_and_eval_end_to_end_with_a_scripted_model(tmp_path):
    rows = conll_rows(n=30)
    data = tmp_path / "ner.jsonl"
    pd.DataFrame(rows).to_json(data, orient="records", lines=True)
    replies = [["Japan", "JAPAN (LOC)\nCHINA (PER)\nJapan (LOC)"], ["Syria", "Syria (LOC)\nmade-up name (PER)"], ["Italy", "garbled"]]
    config = ner_config(model={"backend": "fake", "params": {"replies": replies, "default_reply": "none"}})
    out = tmp_path / "out.jsonl"
    result = labelmill.run(config, data, output=out, project=tmp_path / "p.db")
    frame = pd.read_json(out, lines=True)
    assert "llm_tags" in frame.columns and "llm_unaligned" in frame.columns
    for text, spans, error in zip(frame.text, frame.llm_label, frame.llm_error):
        if not error:
            assert all(text[s["start"] : s["end"]] == s["text"] for s in spans)
    assert any(u == [{"type": "PER", "text": "made-up name"}] for u in frame.llm_unaligned if isinstance(u, list))
    # 'garbled' answers got one re-ask showing the format; the scripted model then says none
    garbled = [i for i, r in enumerate(rows) if "Italy" in r["text"] and "Japan" not in r["text"] and "Syria" not in r["text"]]
    assert garbled and result.failed == 0
    assert all(frame.llm_label[i] == [] for i in garbled)
    metrics = labelmill.evaluate(config, out)
    assert 0 < metrics["f1_strict"] <= metrics["f1_partial"] <= 1
    assert metrics["completion_rate"] == pytest.approx(1 - result.failed / len(rows))


# matching -------------------------------------------------------------------------------------


def test_matching_gold_values_and_match_f1(tmp_path):
    config = load_config(EXAMPLES / "matching" / "config.yaml")
    task = make_task(config)
    assert [task.parse_gold(v) for v in (1, "1", 0, "0", "yes", "no match", True)] == ["match", "match", "no match", "no match", "match", "no match", "match"]
    m = task.metrics(["match", "no match", "no match", "match"], ["match", "match", "no match", None])
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5 and m["completion_rate"] == 0.75


def test_matching_scores_yes_no_and_renders_json_fields(tmp_path):
    config = load_config(EXAMPLES / "matching" / "config.yaml").model_copy(deep=True)
    config.model = config.model.model_copy(update={"backend": "fake", "params": {"keywords": {"yes": ["sony"], "no": ["pny"]}}})
    job = Job(config)
    assert job.candidates == ["yes", "no"]
    sample = pd.read_csv(EXAMPLES / "matching" / "sample.csv")
    text = job.row_input(sample.iloc[0].to_dict())
    left = json.loads(sample.iloc[0]["left_json"])
    assert text.startswith(f"Record A: {left['title']} (model number: {left['modelno']})")
    result = labelmill.run(config, sample, project=tmp_path / "p.db")
    assert set(result.frame.llm_label) <= {"match", "no match"} and result.failed == 0


# QA -------------------------------------------------------------------------------------------


def test_squad_normalised_scores():
    assert exact_match("The Normans.", ["Normans"]) == 1.0
    assert token_f1("in the 10th century", ["10th and 11th centuries", "10th century"]) == pytest.approx(0.8)
    assert token_f1("", [""]) == 1.0


def test_extractive_answers_are_context_spans():
    context = "The Normans gave their name to Normandy, a region in France."
    assert align_answer(context, "france") == (53, 59, False)
    start, end, fuzzy = align_answer(context, "a region of France")
    assert fuzzy and context[start:end].endswith("region in France")  # a near miss becomes the nearest span
    assert align_answer(context, "Germany") is None


def test_qa_parse_unanswerable_and_verification():
    config = load_config({"task": "qa", "gold_column": "all_answers", "qa": {"answerable_threshold": 0.4}})
    task = make_task(config)
    row = RowInput("...", {"context": "Rollo led the Norse raiders in 911.", "question": "Who led them?"})
    answer = task.parse(Generation("Answer: Rollo", [-0.1, -0.2]), row)
    assert answer.value == "Rollo"
    assert task.parse(Generation("unanswerable"), row).value == ""
    made_up = task.parse(Generation("Charlemagne"), row)
    assert made_up.value == "" and made_up.signals["not_in_context"] == 1.0
    check = task.verify_prompt(row, answer)
    assert "Proposed answer: Rollo" in check.user
    assert task.apply_verification(answer, 0.2).value == ""
    assert task.apply_verification(answer, 0.9).value == "Rollo"
    assert task.parse_gold("[]") == [""] and task.parse_gold('["France", "France"]') == ["France", "France"]


def test_qa_run_eval_reports_answerable_and_unanswerable(tmp_path):
    rows = [
        {"context": "The Norse raiders were led by Rollo.", "question": "Who led the raiders?", "all_answers": ["Rollo"]},
        {"context": "Normandy is in France.", "question": "Where is Normandy?", "all_answers": ["France"]},
        {"context": "The Normans spoke French.", "question": "What did the Saxons speak?", "all_answers": []},
    ]
    replies = [["Who led", "Rollo"], ["Where is", "in Germany"], ["Saxons", "unanswerable"]]
    config = load_config({"task": "qa", "gold_column": "all_answers", "model": {"backend": "fake", "params": {"replies": replies, "keywords": {"yes": ["rollo"], "no": ["normandy"]}}}})
    out = tmp_path / "qa.csv"
    result = labelmill.run(config, rows, output=out, project=tmp_path / "p.db")
    # the answer's offset in the context; -1 for "unanswerable" (and for the made-up answer, now unanswerable)
    assert result.frame["llm_answer_start"].tolist() == [rows[0]["context"].index("Rollo"), -1, -1] == [30, -1, -1]
    assert result.frame["llm_label"].tolist()[0] == "Rollo" and result.frame["llm_label"].tolist()[2] == ""
    m = labelmill.evaluate(config, out)
    assert m["answerable"]["rows"] == 2 and m["unanswerable"]["rows"] == 1
    assert m["unanswerable"]["exact_match"] == 1.0 and m["answerable"]["exact_match"] == 0.5
    assert m["f1"] == pytest.approx(2 / 3) and m["completion_rate"] == 1.0


def test_multiple_choice_scores_option_letters(tmp_path):
    rows = [{"question": "Which is a fruit?", "options": "car|apple|stone", "answer": "apple"},
            {"question": "Which is a tool?", "options": ["hammer", "cloud"], "answer": "hammer"}]
    config = load_config({"task": "qa", "gold_column": "answer", "qa": {"mode": "multiple_choice", "options_column": "options"},
                          "model": {"backend": "fake", "params": {"keywords": {"B": ["fruit"], "A": ["tool"]}}}})
    job = Job(config)
    assert job.method == "score" and job.candidates[:3] == ["A", "B", "C"]
    assert job.row_input(rows[0]).endswith("A) car\nB) apple\nC) stone")
    result = labelmill.run(config, rows, project=tmp_path / "p.db", backend=job.backend)
    assert list(result.frame.llm_label) == ["apple", "hammer"]
    dist = job.outcome({"logprobs": [-1.0, -0.5, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0]}, RowInput("", rows[1])).distribution
    assert set(dist) == {"hammer", "cloud"}  # letters beyond the row's options are not candidates


# extraction -----------------------------------------------------------------------------------


def extraction_config(**model):
    return load_config({
        "task": "extraction",
        "attributes": [
            {"name": "brand", "type": "string"},
            {"name": "price", "type": "number", "required": False},
            {"name": "colour", "type": "string", "values": ["black", "white"], "required": False},
        ],
        "input_template": "{title}",
        "model": {"backend": "fake", **model},
    })


def test_extraction_schema_and_validation():
    task = make_task(extraction_config())
    schema = task.schema()
    assert schema["required"] == ["brand", "price", "colour"] and schema["additionalProperties"] is False
    assert schema["properties"]["colour"] == {"anyOf": [{"enum": ["black", "white"]}, {"type": "null"}]}
    ok = task.parse(Generation('```json\n{"brand": "Sony", "price": "$1,299.50", "colour": "Black"}\n```'))
    assert ok.value == {"brand": "Sony", "price": 1299.5, "colour": "black"}
    bad = task.parse(Generation('{"brand": null, "price": "cheap", "colour": "red"}'))
    assert isinstance(bad, ParseFailure) and bad.kind == "schema"
    assert "'brand' is required" in bad.detail and "'price' must be number" in bad.detail and "one of" in bad.detail
    assert task.parse(Generation('{"brand": "Sony",')).kind == "invalid_json"


def test_extraction_reasks_once_with_the_error(tmp_path):
    replies = [["invalid: '(\\w+)' is required", '{{"brand": "Acme", "price": 5, "colour": null}}'], ["acme", '{"price": 5}'], ["sony", '{"brand": "Sony", "price": null, "colour": "white"}']]
    config = extraction_config(params={"replies": replies, "call_log": str(tmp_path / "calls.log")})
    rows = [{"title": "acme anvil"}, {"title": "sony tv"}, {"title": "nothing here"}]
    out = tmp_path / "x.csv"
    result = labelmill.run(config, rows, output=out, project=tmp_path / "p.db")
    frame = pd.read_csv(out, keep_default_na=False)
    assert json.loads(frame.llm_label[0]) == {"brand": "Acme", "price": 5.0, "colour": None}  # fixed by the re-ask
    assert frame.llm_brand[1] == "Sony" and frame.llm_colour[1] == "white"
    assert frame.llm_error[2].startswith("invalid_json")  # the re-ask got no reply either: typed failure, run goes on
    assert result.failed == 1
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 5  # 3 prompts + 2 re-asks; nothing twice
    # a rerun sends nothing: first answers and re-asks are both cached
    labelmill.run(config, rows, project=tmp_path / "p2.db")
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 10  # a new project, a new cache
    labelmill.run(config, rows, project=tmp_path / "p2.db")
    assert len((tmp_path / "calls.log").read_text().splitlines()) == 10


def test_extraction_eval_per_attribute(tmp_path):
    config = load_config(EXAMPLES / "extraction" / "config.yaml")
    task = make_task(config)
    gold = [task.gold({"brand": "hp", "model_number": ""}), task.gold({"brand": "", "model_number": "x1"})]
    pred = [{"brand": "HP", "model_number": None}, {"brand": "acme", "model_number": "x1"}]
    m = task.metrics(gold, pred)
    assert m["accuracy"] == {"brand": 0.5, "model_number": 1.0} and m["row_accuracy"] == 0.5


def test_a_parser_bug_is_a_typed_failure_not_a_crash(tmp_path, monkeypatch):
    config = ner_config(model={"backend": "fake", "params": {"default_reply": "Japan (LOC)"}})
    from labelmill.tasks import ner

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(ner, "align_mentions", broken)
    result = labelmill.run(config, [{"text": "Japan won", "spans": []}], project=tmp_path / "p.db")
    assert result.failed == 1 and result.frame.llm_error[0].startswith("parser_error: ValueError: boom")


@pytest.mark.parametrize("name", ["ner", "matching", "qa", "extraction"])
def test_examples_load_and_name_their_columns(name):
    config = load_config(EXAMPLES / name / "config.yaml")
    job = Job(config.model_copy(update={"model": config.model.model_copy(update={"backend": "fake"})}))
    from labelmill.io import read_rows

    frame = read_rows(next((EXAMPLES / name).glob("sample.*")))
    job.check_columns(frame)
    assert job.demos, "every example shows few-shot demos"
    task = job.task
    assert all(c in frame.columns for c in task.gold_columns())


@pytest.mark.parametrize("name", ["classification", "multilabel", "ner", "matching", "qa", "extraction"])
def test_init_templates_are_valid_configs(name):
    import yaml

    config = load_config(yaml.safe_load(labelmill.init_config(name)))
    assert config.task == name


def test_per_span_and_per_attribute_confidence_come_from_their_own_tokens():
    import math

    ner = make_task(ner_config())
    tokens = ["Japan", " (", "LOC", ")\n", "Syria", " (", "LOC", ")"]
    logprobs = [math.log(p) for p in (0.9, 0.9, 0.9, 0.9, 0.3, 0.3, 0.3, 0.3)]
    out = ner.parse(Generation("".join(tokens), logprobs, tokens=tokens), RowInput("Japan beat Syria", {}))
    assert [round(s["confidence"], 6) for s in out.value["spans"]] == [0.9, 0.3]
    assert out.confidence == pytest.approx(0.3)  # a row is as sure as its least sure span
    ext = make_task(extraction_config())
    tokens = ['{"brand": ', '"Sony"', ', "price": ', "5", ', "colour": ', "null", "}"]
    logprobs = [math.log(p) for p in (1.0, 0.8, 1.0, 0.4, 1.0, 0.6, 1.0)]
    out = ext.parse(Generation("".join(tokens), logprobs, tokens=tokens))
    assert out.signals["confidence.brand"] == pytest.approx(0.8) and out.signals["confidence.price"] == pytest.approx(0.4)
    assert out.confidence == pytest.approx(0.4)


def test_the_quality_qa_config_is_the_qa_example_on_the_larger_model():
    root = Path(__file__).resolve().parents[1] / "examples" / "qa"
    base, quality = load_config(root / "config.yaml"), load_config(root / "config-1.5b.yaml")
    assert quality.model.name == "qwen2.5-coder-1.5b" and quality.qa.answerable_threshold == 0.6
    same = lambda c: {**c.model_dump(exclude={"base_dir", "name"}), "model": None, "qa": c.qa.model_dump(exclude={"answerable_threshold"})}
    assert same(base) == same(quality)
