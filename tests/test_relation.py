"""Relations: a marked pair scored over relation x direction labels, and end-to-end extraction (entities,
then a scored question per allowed pair) through the core loop with the fake backend."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import labelmill
import labelmill.tasks.base
import labelmill.types
from labelmill.config import load_config
from labelmill.errors import ConfigError, InputDataError
from labelmill.store import Store
from labelmill.tasks import make_task
from labelmill.tasks.relation import mark, official_macro_f1, read_span, relation_keys, triples

from conftest import ROOT, SHARED


def test_spans_are_read_from_offsets_json_or_text_and_marked_in_order():
    text = "The company fabricates plastic chairs."
    assert read_span({"start": 4, "end": 11}, text, "e1") == {"start": 4, "end": 11, "text": "company"}
    assert read_span(json.dumps({"start": 31, "end": 37, "text": "chairs"}), text, "e2")["text"] == "chairs"
    assert read_span("plastic chairs", text, "e2") == {"start": 23, "end": 37, "text": "plastic chairs"}
    # e2 before e1 in the text: the marks still nest right
    assert mark(text, {"start": 31, "end": 37, "text": "chairs"}, {"start": 4, "end": 11, "text": "company"}) == (
        "The <e2>company</e2> fabricates plastic <e1>chairs</e1>."
    )
    with pytest.raises(ValueError, match="does not occur"):
        read_span("sofas", text, "e2")
    with pytest.raises(ValueError, match="outside the text"):
        read_span({"start": 30, "end": 99}, text, "e2")
    with pytest.raises(ValueError, match="overlap"):
        mark(text, {"start": 4, "end": 11, "text": "company"}, {"start": 8, "end": 22, "text": "any fabricates"})


def test_relation_labels_come_from_the_types_in_both_directions():
    config = load_config({
        "task": "relation", "name": "r", "model": {"backend": "fake"},
        "relation": {"types": [{"name": "Cause-Effect", "description": "{head} causes {tail}"}, {"name": "Part-Whole"}], "none_label": "Other"},
    })
    assert config.label_names == ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Part-Whole(e1,e2)", "Part-Whole(e2,e1)", "Other"]
    descriptions = {label.name: label.description for label in config.labels}
    assert descriptions["Cause-Effect(e2,e1)"] == "e2 causes e1"
    undirected = load_config({"task": "relation", "name": "r", "model": {"backend": "fake"}, "relation": {"types": [{"name": "A"}, {"name": "B"}], "directed": False}})
    assert undirected.label_names == ["A", "B", "Other"]
    task = make_task(config)
    shown = task.render({"text": "Smoke causes cancer.", "e1": "Smoke", "e2": "cancer"})
    assert shown.splitlines()[0] == "<e1>Smoke</e1> causes <e2>cancer</e2>."
    assert shown.splitlines()[1:] == ["e1: Smoke", "e2: cancer"]
    with pytest.raises(InputDataError, match="does not occur"):
        task.render({"text": "Smoke causes cancer.", "e1": "Fire", "e2": "cancer"})


def test_official_semeval_score_counts_a_wrong_direction_against_its_type():
    gold = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Part-Whole(e1,e2)", "Other", "Other"]
    predicted = ["Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)", "Other", "Part-Whole(e1,e2)", None]
    out = official_macro_f1(gold, predicted, "Other")
    # Cause-Effect: 1 right of 2 predicted, 2 gold -> P = R = 0.5; Part-Whole: 0 right -> 0; Other is left out
    assert out["official_per_type"]["Cause-Effect"]["f1"] == pytest.approx(0.5)
    assert out["official_per_type"]["Part-Whole"]["f1"] == 0.0
    assert set(out["official_per_type"]) == {"Cause-Effect", "Part-Whole"}
    assert out["official_macro_f1"] == pytest.approx(0.25)


def relations_config(**overrides) -> dict:
    config = {
        "task": "relations", "name": "rel",
        "labels": ["Peop", "Org", "Loc"],
        "relation": {"threshold": 0.6, "types": [
            {"name": "Work_For", "description": "{head} is employed by {tail}", "head": ["Peop"], "tail": ["Org"]},
            {"name": "OrgBased_In", "description": "{head} is headquartered in {tail}", "head": ["Org"], "tail": ["Loc"]},
            {"name": "Live_In", "description": "{head} resides in {tail}", "head": ["Peop"], "tail": ["Loc"]},
            {"name": "Located_In", "head": ["Loc"], "tail": ["Loc"]},
        ]},
        "model": {"backend": "fake", "name": "keywords", "method": "generate", "params": {
            # the entity list: two real mentions and one the text does not hold (Atlantis)
            "replies": [["Smith", "John Smith (Peop)\nAcme Corp (Org)\nParis (Loc)\nAtlantis (Loc)"]], "default_reply": "none",
            # each pair question fills its type's description: the fake says yes to two statements, no to the third
            "keywords": {"yes": ["employed", "headquartered"], "no": ["resides"]},
        }},
    }
    config.update(overrides)
    return config


ROW_TEXT = "John Smith works for Acme Corp , based in Paris ."


def test_end_to_end_relations_link_real_spans_and_report_what_is_not_there(tmp_path):
    gold_entities = [{"start": 0, "end": 10, "type": "Peop", "text": "John Smith"}, {"start": 21, "end": 30, "type": "Org", "text": "Acme Corp"},
                     {"start": 42, "end": 47, "type": "Loc", "text": "Paris"}]
    rows = pd.DataFrame([
        {"text": ROW_TEXT, "entities": gold_entities, "relations": [{"head": 0, "tail": 1, "type": "Work_For"}, {"head": 1, "tail": 2, "type": "OrgBased_In"}]},
        {"text": "Nothing here .", "entities": [], "relations": []},
    ])
    data = tmp_path / "rows.jsonl"
    rows.to_json(data, orient="records", lines=True)
    out = tmp_path / "out.jsonl"
    result = labelmill.run(relations_config(), data, output=out, project=tmp_path / "p.db")
    assert result.failed == 0
    labeled = pd.read_json(out, lines=True)
    value = labeled["llm_label"][0]
    for span in value["entities"]:
        assert ROW_TEXT[span["start"]:span["end"]] == span["text"]
    assert [e["text"] for e in value["entities"]] == ["John Smith", "Acme Corp", "Paris"]
    got = {(value["entities"][r["head"]]["text"], r["type"], value["entities"][r["tail"]]["text"]) for r in value["relations"]}
    # John Smith -> Paris (Live_In) is asked but not stated: its probability stays under the threshold
    assert got == {("John Smith", "Work_For", "Acme Corp"), ("Acme Corp", "OrgBased_In", "Paris")}
    assert all(r["confidence"] >= 0.6 for r in value["relations"])
    assert labeled["llm_unaligned"][0] == [{"type": "Loc", "text": "Atlantis"}]
    assert sorted(map(tuple, labeled["llm_triples"][0])) == [("Acme Corp", "OrgBased_In", "Paris"), ("John Smith", "Work_For", "Acme Corp")]
    assert labeled["llm_label"][1] == {"entities": [], "relations": []}
    # the pair questions went through the store's cache like every other request: a rerun asks nothing
    with Store(tmp_path / "p.db") as store:
        annotation = store.labels(result.run_id, 2).rows[0]
    assert annotation.signals["pairs"] == 3.0 and annotation.signals["relations"] == 2.0
    task = make_task(load_config(relations_config()))
    asked = [p.user.splitlines()[-1] for p, _ in task.followups(labelmill.tasks.base.RowInput(ROW_TEXT, {}), labelmill.types.Label(value={"spans": value["entities"]}))]
    assert sorted(asked) == sorted(["Question: does the sentence state that John Smith is employed by Acme Corp?",
                                    "Question: does the sentence state that Acme Corp is headquartered in Paris?",
                                    "Question: does the sentence state that John Smith resides in Paris?"])
    again = labelmill.run(relations_config(), data, output=out, project=tmp_path / "p2.db")
    assert again.failed == 0
    metrics = labelmill.evaluate(relations_config(), out)
    assert metrics["relation_f1_strict"] == 1.0 and metrics["entity_f1"] == 1.0 and metrics["completion_rate"] == 1.0
    assert [t["relations_kept"] for t in metrics["relation_thresholds"]][:2] == [2, 2]


def test_relation_metrics_are_strict_about_spans_types_and_direction():
    task = make_task(load_config(relations_config()))
    entities = [{"start": 0, "end": 10, "type": "Peop", "text": "John Smith"}, {"start": 21, "end": 30, "type": "Org", "text": "Acme Corp"}]
    gold = task.parse_gold({"entities": entities, "relations": [{"head": 0, "tail": 1, "type": "Work_For"}]})
    reversed_ = task.parse_gold({"entities": entities, "relations": [{"head": 1, "tail": 0, "type": "Work_For"}]})
    short = task.parse_gold({"entities": [{**entities[0], "end": 4, "text": "John"}, entities[1]], "relations": [{"head": 0, "tail": 1, "type": "Work_For"}]})
    retyped = task.parse_gold({"entities": [{**entities[0], "type": "Org"}, entities[1]], "relations": [{"head": 0, "tail": 1, "type": "Work_For"}]})
    assert task.metrics([gold], [gold])["relation_f1_strict"] == 1.0
    for wrong in (reversed_, short, retyped, None):
        assert task.metrics([gold], [wrong])["relation_f1_strict"] == 0.0
    assert task.metrics([gold], [retyped])["relation_f1_boundaries"] == 1.0  # right spans, wrong entity type
    assert triples(gold) == [{"head": {"start": 0, "end": 10, "type": "Peop", "text": "John Smith"}, "relation": "Work_For",
                              "tail": {"start": 21, "end": 30, "type": "Org", "text": "Acme Corp"}, "confidence": None}]
    assert relation_keys(gold) == {((0, 10, "Peop"), (21, 30, "Org"), "Work_For")}


def test_type_constraints_prune_pairs_and_bad_configs_are_named():
    task = make_task(load_config(relations_config()))
    entities = [{"start": 0, "end": 4, "type": "Peop", "text": "John"}, {"start": 5, "end": 9, "type": "Peop", "text": "Mary"},
                {"start": 10, "end": 15, "type": "Loc", "text": "Paris"}]
    pairs = task.pairs(entities)
    # Peop-Peop has no type here; Peop->Loc is Live_In; Loc->Peop nothing
    assert {(i, j) for i, j, _ in pairs} == {(0, 2), (1, 2)}
    assert all(kinds == ["Live_In"] for _, _, kinds in pairs)
    bad = relations_config()
    bad["relation"] = {"types": [{"name": "Work_For", "head": ["Person"], "tail": ["Org"]}]}
    with pytest.raises(ConfigError, match="Person"):
        load_config(bad)


def test_relations_need_a_backend_that_scores(tmp_path):
    config = relations_config(model={"backend": "openai", "name": "x", "method": "generate", "server": {"base_url": "http://127.0.0.1:9"}})
    with pytest.raises(Exception, match="cannot score"):
        labelmill.run(config, [{"text": ROW_TEXT}], project=tmp_path / "p.db")


@pytest.mark.skipif(not (SHARED / "semeval2010_task8" / "train.jsonl").exists(), reason="shared data not present")
def test_example_configs_load_and_their_demos_come_from_train():
    train = {json.loads(line)["text"] for line in (SHARED / "semeval2010_task8" / "train.jsonl").open()}
    seed = [json.loads(line) for line in (ROOT / "examples" / "relations" / "semeval_seed.jsonl").open()]
    assert seed and all(r["text"] in train for r in seed)  # (a few train sentences recur in the test file: the data's own)
    conll_test = {json.loads(line)["text"] for line in (SHARED / "conll04" / "test.jsonl").open()}
    conll_seed = [json.loads(line) for line in (ROOT / "examples" / "relations" / "conll04_seed.jsonl").open()]
    assert conll_seed and not any(r["text"] in conll_test for r in conll_seed)
    semeval = load_config(ROOT / "examples" / "relations" / "semeval.yaml")
    assert (semeval.base_dir / semeval.examples.file).resolve() == (SHARED / "semeval2010_task8" / "train.jsonl").resolve()
    assert len(semeval.label_names) == 19 and semeval.label_names[-1] == "Other"
    conll = load_config(ROOT / "examples" / "relations" / "conll04.yaml")
    assert (conll.base_dir / conll.examples.file).resolve() == (ROOT / "examples" / "relations" / "conll04_seed.jsonl").resolve()
    assert make_task(conll).pairs([{"start": 0, "end": 1, "type": "Peop", "text": "a"}, {"start": 2, "end": 3, "type": "Org", "text": "b"}]) == [(0, 1, ["Work_For"])]


def test_weak_supervision_votes_per_relation_on_the_marked_pair(tmp_path):
    """Sub-labelers per relation: a rule and a prompted question read the pair as the relation task shows it."""
    from labelmill.strategies.weak import weak

    config = {
        "task": "relation", "name": "weak-rel", "gold_column": "relation",
        "relation": {"types": [{"name": "Cause-Effect"}, {"name": "Component-Whole"}], "none_label": "Other"},
        "model": {"backend": "fake", "name": "keywords", "params": {"keywords": {"yes": ["e1"], "no": ["zzz"]}}},
        "weak": {"sub_labelers": [
            {"name": "causes", "kind": "regex", "pattern": r"<e1>[^<]*</e1> (causes|caused)", "label": "Cause-Effect(e1,e2)"},
            {"name": "part_of", "kind": "keywords", "keywords": ["part"], "label": "Component-Whole(e1,e2)"},
            # the fake answers "yes" only when the row it reads has the pair marked (the word e1; a tie goes to "no", listed first)
            {"name": "asked", "kind": "prompt", "question": "Does e1 cause e2?", "answers": {"no": "abstain", "yes": "Cause-Effect(e1,e2)"}},
        ]},
    }
    rows = [
        {"text": "Smoke causes cancer.", "e1": "Smoke", "e2": "cancer", "relation": "Cause-Effect(e1,e2)"},
        {"text": "The wheel is part of the car.", "e1": "wheel", "e2": "car", "relation": "Component-Whole(e1,e2)"},
    ]
    result = weak(config, rows, project=tmp_path / "p.db")
    votes = result.frame
    assert list(votes["weak_vote_causes"]) == ["Cause-Effect(e1,e2)", ""]
    assert list(votes["weak_vote_part_of"]) == ["", "Component-Whole(e1,e2)"]
    assert list(votes["weak_vote_asked"]) == ["Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)"]


def test_exports_label_studio_relations_and_triples(tmp_path):
    from labelmill.exports import export

    rows = [{"text": ROW_TEXT}, {"text": "Nothing here ."}]
    out = tmp_path / "out.jsonl"
    labelmill.run(relations_config(), rows, output=out, project=tmp_path / "p.db")
    tasks = json.loads(export(relations_config(), out, "label-studio", tmp_path / "ls.json").read_text())
    assert [t["id"] for t in tasks] == [1, 2]
    from conftest import label_studio_errors

    assert label_studio_errors(tmp_path / "ls.json") == []
    result = tasks[0]["predictions"][0]["result"]
    spans = {r["id"]: r["value"] for r in result if r["type"] == "labels"}
    for value in spans.values():
        assert tasks[0]["data"]["text"][value["start"]:value["end"]] == value["text"]
    links = [(spans[r["from_id"]]["text"], r["labels"][0], spans[r["to_id"]]["text"]) for r in result if r["type"] == "relation"]
    assert sorted(links) == [("Acme Corp", "OrgBased_In", "Paris"), ("John Smith", "Work_For", "Acme Corp")]
    assert tasks[0]["predictions"][0]["model_version"] == "labelmill:fake:keywords"
    assert "predictions" not in tasks[1] or all(r["type"] != "relation" for r in tasks[1]["predictions"][0]["result"])
    lines = [json.loads(line) for line in export(relations_config(), out, "triples", tmp_path / "t.jsonl").read_text().splitlines()]
    assert sorted((t["head"]["text"], t["relation"], t["tail"]["text"]) for t in lines) == sorted(links)
    assert all(ROW_TEXT[t["head"]["start"]:t["head"]["end"]] == t["head"]["text"] for t in lines)


def test_export_of_a_marked_pair_and_the_cli(tmp_path):
    import subprocess

    from labelmill.exports import export

    from conftest import child_env, cli_command

    config = {"task": "relation", "name": "r", "gold_column": "relation",
              "relation": {"types": [{"name": "Cause-Effect"}, {"name": "Component-Whole"}]},
              "model": {"backend": "fake", "name": "keywords", "params": {"keywords": {"Cause-Effect(e1,e2)": ["causes"], "Component-Whole(e1,e2)": ["part"]}}}}
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out.jsonl"
    labelmill.run(config, [{"text": "Smoke causes cancer.", "e1": "Smoke", "e2": "cancer", "relation": "Cause-Effect(e1,e2)"}], output=out, project=tmp_path / "p.db")
    done = subprocess.run(cli_command("export", str(path), str(out), "--format", "triples", "--out", str(tmp_path / "t.jsonl")), env=child_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    [triple] = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert (triple["head"]["text"], triple["relation"], triple["tail"]["text"]) == ("Smoke", "Cause-Effect(e1,e2)", "cancer")
    ls = json.loads(export(config, out, "label-studio", tmp_path / "ls.json").read_text())
    assert ls[0]["predictions"][0]["result"][0]["value"]["choices"] == ["Cause-Effect(e1,e2)"]
    from conftest import label_studio_errors

    assert label_studio_errors(tmp_path / "ls.json") == []
    assert ls[0]["data"]["text"].startswith("<e1>Smoke</e1> causes <e2>cancer</e2>.")
    pd.DataFrame([{"text": "Smoke causes cancer.", "e1": "Smoke", "e2": "cancer"}]).to_csv(tmp_path / "unlabeled.csv", index=False)
    bad = subprocess.run(cli_command("export", str(path), str(tmp_path / "unlabeled.csv"), "--format", "triples", "--out", str(tmp_path / "x")), env=child_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "llm_label" in bad.stderr


def test_a_failed_pair_question_fails_its_row_and_a_rerun_asks_again(tmp_path):
    """A timeout on a follow-up request is not an answer: the row fails (nothing cached), and the rerun labels it."""
    from labelmill.backends.fake import FakeBackend
    from labelmill.config import ModelSpec
    from labelmill.types import ScoreResult

    class FlakyPairs(FakeBackend):
        broken = True

        def score(self, prompts, candidates):
            if self.broken and tuple(candidates) == ("yes", "no"):
                return [ScoreResult([], error="timeout", error_detail="the server did not answer") for _ in prompts]
            return super().score(prompts, candidates)

    config = relations_config()
    backend = FlakyPairs(ModelSpec(**config["model"]))
    rows = [{"text": ROW_TEXT}]
    first = labelmill.run(config, rows, project=tmp_path / "p.db", backend=backend)
    assert first.failed == 1
    assert first.frame["llm_error"][0].startswith("timeout")
    backend.broken = False
    second = labelmill.run(config, rows, project=tmp_path / "p.db", backend=backend)
    assert second.failed == 0
    assert len(second.frame["llm_label"][0]["relations"]) == 2


def test_calibration_of_a_relation_config(tmp_path):
    """calibrate fits on the relation labels' distributions; a run with it flags the rows under the threshold."""
    import random

    rng = random.Random(0)
    rows = []
    for n in range(240):
        kind = rng.random() < 0.5
        noise = " ".join(rng.choice(["causes", "part", "of", "the", "maybe"]) for _ in range(3))
        text = f"Item{n} {'causes' if kind else 'is part of'} thing{n} {noise} ."
        rows.append({"text": text, "e1": f"Item{n}", "e2": f"thing{n}", "relation": "Cause-Effect(e1,e2)" if kind else "Component-Whole(e1,e2)"})
    pd.DataFrame(rows[:180]).to_json(tmp_path / "seed.jsonl", orient="records", lines=True)
    pd.DataFrame(rows[180:]).to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    config = {"task": "relation", "name": "r", "gold_column": "relation",
              "relation": {"types": [{"name": "Cause-Effect"}, {"name": "Component-Whole"}]},
              "model": {"backend": "fake", "name": "keywords", "params": {"keywords": {"Cause-Effect(e1,e2)": ["causes"], "Component-Whole(e1,e2)": ["part"]}}}}
    cal = labelmill.calibrate(config, tmp_path / "seed.jsonl", project=tmp_path / "p.db", target=0.9)
    assert cal.seed_report["seed_rows"] == 180
    assert cal.seed_report["ece_calibrated_cv"] < cal.seed_report["ece_raw"]  # the fake is sure of its keyword guesses: calibration tempers it
    result = labelmill.run(config, tmp_path / "test.jsonl", project=tmp_path / "p.db", calibration=cal)
    frame = result.frame
    threshold = cal.threshold if cal.threshold is not None else 1.1
    for label, confidence, review in zip(frame["llm_label"], frame["llm_confidence"], frame["llm_needs_review"]):
        assert review == (label is None or confidence < threshold)
    assert set(frame["llm_label"]) <= {"Cause-Effect(e1,e2)", "Component-Whole(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e2,e1)", "Other"}


def test_spacy_export_of_relations_reads_back_with_the_rel_layout(tmp_path):
    from labelmill.exports import export, read_docbin

    rows = [{"text": ROW_TEXT}, {"text": "Nothing here ."}]
    out = tmp_path / "out.jsonl"
    labelmill.run(relations_config(), rows, output=out, project=tmp_path / "p.db")
    docs = read_docbin(export(relations_config(), out, "spacy", tmp_path / "rel.spacy"))
    assert [d.text for d in docs] == [ROW_TEXT, "Nothing here ."]
    doc = docs[0]
    assert [(e.text, e.label_) for e in doc.ents] == [("John Smith", "Peop"), ("Acme Corp", "Org"), ("Paris", "Loc")]
    by_start = {e.start: e.text for e in doc.ents}
    held = sorted((by_start[h], label, by_start[t]) for (h, t), scores in doc._.rel.items() for label, p in scores.items() if p > 0)
    assert held == [("Acme Corp", "OrgBased_In", "Paris"), ("John Smith", "Work_For", "Acme Corp")]
    # every ordered pair of entities is there, with every type (0.0 where the label holds none): 3 x 2 pairs
    assert len(doc._.rel) == 6 and all(set(v) == {"Work_For", "OrgBased_In", "Live_In", "Located_In"} for v in doc._.rel.values())
    assert all(0.6 <= p <= 1.0 for v in doc._.rel.values() for p in v.values() if p > 0)  # the model's confidence
    assert docs[1].ents == () and docs[1]._.rel == {}


def test_spacy_export_of_a_marked_pair_keeps_the_direction(tmp_path):
    from labelmill.exports import export, read_docbin

    config = {"task": "relation", "name": "r", "relation": {"types": [{"name": "Cause-Effect"}, {"name": "Component-Whole"}]},
              "model": {"backend": "fake", "name": "keywords", "params": {"keywords": {"Cause-Effect(e2,e1)": ["from"], "Component-Whole(e1,e2)": ["part"], "Other": ["sat"]}}}}
    rows = [{"text": "Cancer comes from smoke.", "e1": "Cancer", "e2": "smoke"},
            {"text": "<e1>Wheels</e1> are part of a <e2>car</e2>.", "e1": None, "e2": None},
            {"text": "A cat sat on a mat.", "e1": "cat", "e2": "mat"}]
    out = tmp_path / "out.jsonl"
    labelmill.run(config, rows, output=out, project=tmp_path / "p.db")
    docs = read_docbin(export(config, out, "spacy", tmp_path / "pair.spacy"))
    assert docs[1].text == "Wheels are part of a car."  # the marks are not part of the text
    found = []
    for doc in docs:
        names = {e.start: (e.text, e.label_) for e in doc.ents}
        assert sorted(label for _, label in names.values()) == ["E1", "E2"]
        found.append(sorted((names[h][0], label, names[t][0]) for (h, t), v in doc._.rel.items() for label, p in v.items() if p > 0))
    # Cause-Effect(e2,e1): smoke (e2) is the head
    assert found == [[("smoke", "Cause-Effect", "Cancer")], [("Wheels", "Component-Whole", "car")], []]


def test_a_review_of_relations_is_checked_and_exported_to_spacy(tmp_path):
    from labelmill.exports import read_docbin
    from labelmill.strategies.review.exports import export
    from labelmill.strategies.review.run import ReviewSession

    session = ReviewSession.open(relations_config(), pd.DataFrame([{"text": ROW_TEXT}]), project=tmp_path / "p.db", student=False)
    try:
        entities = [{"start": 42, "end": 47, "type": "Loc"}, {"start": 0, "end": 10, "type": "Peop"}]  # out of order on purpose
        with pytest.raises(InputDataError, match="unknown type"):
            session.submit("ana", 0, {"entities": entities, "relations": [{"head": 1, "tail": 0, "type": "Lives"}]})
        with pytest.raises(InputDataError, match="itself"):
            session.submit("ana", 0, {"entities": entities, "relations": [{"head": 1, "tail": 1, "type": "Live_In"}]})
        with pytest.raises(InputDataError, match="outside the text"):
            session.submit("ana", 0, {"entities": [{"start": 40, "end": 99, "type": "Loc"}], "relations": []})
        with pytest.raises(InputDataError, match="needs head and tail"):
            session.submit("ana", 0, {"entities": entities, "relations": [{"head": 5, "tail": 0, "type": "Live_In"}]})
        session.submit("ana", 0, {"entities": entities, "relations": [{"head": 1, "tail": 0, "type": "Live_In"}]})
        saved = session.reviewed()[0]
        # entities sorted by offset, the relation's numbers follow them
        assert [e["text"] for e in saved["entities"]] == ["John Smith", "Paris"]
        assert saved["relations"] == [{"head": 0, "tail": 1, "type": "Live_In"}]
        [doc] = read_docbin(export(session, "spacy", tmp_path / "reviewed.spacy"))
        held = [(label, h, t) for (h, t), v in doc._.rel.items() for label, p in v.items() if p > 0]
        assert [(e.text, e.label_) for e in doc.ents] == [("John Smith", "Peop"), ("Paris", "Loc")] and held == [("Live_In", 0, 9)]
    finally:
        session.close()
