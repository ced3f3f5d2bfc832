"""Autolabel configs run unchanged (issue 37): every public benchmark config converts, and `plan` runs on
rows in each config's own column layout, with its few-shot file where the config names it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import child_env, cli_command

from labelmill import api
from labelmill.config import derive_config, load_config
from labelmill.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CONFIGS = sorted((SHARED / "autolabel_configs").glob("*.json"))
FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
FAKE = {"backend": "fake", "name": "fake"}


def _row(raw: dict, i: int) -> dict:
    """One row in the config's own layout: every field of its example template, the label column, and for
    attribute extraction one column per attribute (a JSON list of mentions, as Autolabel's data has it)."""
    prompt, dataset = raw["prompt"], raw.get("dataset") or {}
    row: dict = {}
    for field in FIELD.findall(prompt["example_template"]):
        row[field] = {"options": json.dumps(["Paris", "Lyon", "Nice"]), "context": f"Paris is the capital of France ({i}).",
                      "question": "What is the capital of France?"}.get(field, f"Acme Corp opened an office in Paris in 2019 ({i}).")
    labels = prompt.get("labels") or []
    names = list(labels) if isinstance(labels, dict) else [x["name"] if isinstance(x, dict) else x for x in labels]
    if dataset.get("label_column"):
        row[dataset["label_column"]] = names[i % len(names)] if names else "Paris"
    for attribute in prompt.get("attributes") or []:
        row[attribute["name"]] = json.dumps(["Paris"] if i % 2 else [])
    row.pop("output_dict", None)
    return row


def _project(tmp_path: Path, path: Path) -> tuple[Path, pd.DataFrame]:
    """The config copied beside its few-shot file (written at the path the config names, in its layout)."""
    raw = json.loads(path.read_text())
    config = tmp_path / path.name
    shutil.copy(path, config)
    rows = pd.DataFrame([_row(raw, i) for i in range(6)])
    shots = raw["prompt"].get("few_shot_examples")
    if isinstance(shots, str):
        (tmp_path / shots).parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(tmp_path / shots, index=False)
    return config, rows


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_autolabel_config_plans_on_rows_in_its_own_layout(path, tmp_path):
    config, rows = _project(tmp_path, path)
    notices: list[str] = []
    cfg = derive_config(load_config(config, notices=notices), model=FAKE)
    result = api.plan(cfg, rows)
    assert result["rows"] == len(rows) and result["prompt_preview"]
    assert any("converted an Autolabel" in n for n in notices)
    raw = json.loads(path.read_text())
    unread = {k for k in raw["prompt"] if k not in ("task_guidelines", "output_guidelines", "labels", "attributes", "example_template",
                                                     "few_shot_examples", "few_shot_selection", "few_shot_num", "chain_of_thought")}
    assert all(any(k in n for n in notices) for k in unread)  # a key we do not honour is named, never dropped silently
    if raw["prompt"].get("few_shot_num") and isinstance(raw["prompt"].get("few_shot_examples"), str):
        assert result["demos"] > 0  # the config's own few-shot file, read in its layout


def test_each_task_type_maps_onto_ours():
    by_name = {p.stem: load_config(p) for p in CONFIGS}
    assert {c.task for c in by_name.values()} == {"classification", "matching", "qa", "ner", "extraction"}
    # entity matching: the match label first (company.json lists "not duplicate" first), the template's own lines
    company = by_name["company"]
    assert company.label_names == ["duplicate", "not duplicate"]
    assert company.input_template == "Company 1 description: {entity1}\nCompany 2 description: {entity2}"
    assert by_name["walmart_amazon"].label_names == ["duplicate", "not duplicate"]
    # question answering: options -> multiple choice, context -> extractive spans, else free form
    assert (by_name["sciq"].qa.mode, by_name["sciq"].qa.options_column) == ("multiple_choice", "options")
    squad = by_name["squad_v2"]
    assert (squad.qa.mode, squad.qa.allow_unanswerable, squad.gold_column) == ("extractive", True, "answer")
    assert (by_name["qasper"].qa.mode, by_name["qasper"].qa.question_column) == ("free_form", "input")
    # attribute extraction: lists of all instances of a kind -> NER spans; other attributes -> extraction fields
    conll = by_name["conll2003"]
    assert conll.label_names == ["Location", "Organization", "Person", "Miscellaneous"] and conll.ner.mention_columns
    assert conll.input_template == "Example: {example}"
    numeric = by_name["numeric"]
    assert [(a.name, a.type) for a in numeric.attributes] == [("Number", "list")] and numeric.gold_column is None
    # few-shot selection and count, the label column of the demos
    banking = by_name["banking"]
    assert (banking.examples.selection, banking.examples.k, banking.examples.label_column) == ("similar", 10, "label")
    assert banking.model.backend == "openai" and banking.model.name == "gpt-3.5-turbo"


def test_conll2003_gold_mentions_become_spans_of_the_text(tmp_path):
    """Autolabel's conll2003 layout (one column per type, a list of mentions) is gold without reshaping:
    every occurrence of a mention in the text is a span of its type."""
    from labelmill.tasks import make_task

    cfg = load_config(SHARED / "autolabel_configs" / "conll2003.json")
    task = make_task(cfg)
    row = {"example": "Germany beat Italy ; Germany 's coach Joachim Loew was pleased .", "Location": '["Germany", "Italy"]',
           "Person": "['Joachim Loew']", "Organization": "[]", "Miscellaneous": ""}
    spans = task.gold(row)
    text = task.render(row)
    assert [(s["type"], text[s["start"]:s["end"]]) for s in spans] == [
        ("Location", "Germany"), ("Location", "Italy"), ("Location", "Germany"), ("Person", "Joachim Loew")]
    assert task.gold_columns() == ["Location", "Organization", "Person", "Miscellaneous"]


def test_an_unknown_task_type_and_a_missing_key_say_what_is_wrong(tmp_path):
    raw = json.loads((SHARED / "autolabel_configs" / "banking.json").read_text())
    with pytest.raises(ConfigError, match="not supported"):
        load_config({**raw, "task_type": "hierarchical_classification"})
    notices: list[str] = []
    load_config({**raw, "prompt": {**raw["prompt"], "label_selector_k": 3}, "embedding": {"provider": "openai"}}, notices=notices)
    assert any("prompt.label_selector_k" in n and "embedding" in n for n in notices)


def test_label_selection_becomes_the_nearest_labels_of_each_row_on_classification_only():
    raw = json.loads((SHARED / "autolabel_configs" / "banking.json").read_text())
    notices: list[str] = []
    config = load_config({**raw, "prompt": {**raw["prompt"], "label_selection": True}}, notices=notices)
    assert config.classification.labels_per_row == 10  # Autolabel's default count
    assert any(n.startswith("label_selection -> classification.labels_per_row 10") for n in notices)
    assert not any("not honoured" in n and "label_selection" in n for n in notices)
    config = load_config({**raw, "prompt": {**raw["prompt"], "label_selection": True, "label_selection_count": 5}})
    assert config.classification.labels_per_row == 5
    assert load_config(raw).classification.labels_per_row == 0
    with pytest.raises(ConfigError, match="label_selection_count"):
        load_config({**raw, "prompt": {**raw["prompt"], "label_selection": True, "label_selection_count": "ten"}})
    matching = json.loads((SHARED / "autolabel_configs" / "walmart_amazon.json").read_text())
    notices = []
    config = load_config({**matching, "prompt": {**matching["prompt"], "label_selection": True}}, notices=notices)
    assert config.classification.labels_per_row == 0
    assert any("classification tasks only" in n and "entity_matching" in n for n in notices)


def test_plan_and_run_take_another_model_without_editing_the_config(tmp_path):
    config, rows = _project(tmp_path, SHARED / "autolabel_configs" / "civil_comments.json")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(cli_command("plan", str(config), str(tmp_path / "rows.csv"), "--model", "fake:keywords", "--json"),
                          capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert planned["backend"] == "fake" and "keywords" in planned["model"]
    assert "openai/gpt-3.5-turbo needs its API key" in done.stderr  # the notice says how to run it here
    assert json.loads(config.read_text())["model"]["provider"] == "openai"  # the file is untouched


def test_old_autolabel_ner_gold_and_demos_are_mention_dicts_aligned_to_the_text():
    """named_entity_recognition keeps its gold as {type: [mentions]} in the label column: read without
    reshaping, for eval and for the few-shot demos; a span list still reads as spans."""
    from labelmill.tasks import make_task

    cfg = load_config({"task_type": "named_entity_recognition", "dataset": {"label_column": "CategorizedLabels"},
                       "prompt": {"task_guidelines": "Find the entities.", "labels": ["Location", "Person"],
                                  "example_template": "Example: {example}\nOutput: {CategorizedLabels}"}})
    assert (cfg.task, cfg.input_template, cfg.gold_column) == ("ner", "Example: {example}", "CategorizedLabels")
    task = make_task(cfg)
    row = {"example": "Ana flew from Paris to Lyon", "CategorizedLabels": '{"Location": ["Paris", "Lyon"], "Person": ["Ana"]}'}
    expected = [("Person", "Ana"), ("Location", "Paris"), ("Location", "Lyon")]
    assert [(s["type"], s["text"]) for s in task.gold(row)] == expected
    assert [(s["type"], s["text"]) for s in task.example_gold(row, "CategorizedLabels")] == expected
    spans = '[{"start": 0, "end": 3, "type": "Person", "text": "Ana"}]'
    assert [(s["type"], s["text"]) for s in task.gold({**row, "CategorizedLabels": spans})] == [("Person", "Ana")]


def test_model_text_names_a_local_model_or_a_backend():
    from labelmill.config import model_from_text

    assert model_from_text("qwen2.5-coder-1.5b") == {"backend": "llama_cpp", "name": "qwen2.5-coder-1.5b"}
    assert model_from_text("openai:gpt-4o-mini") == {"backend": "openai", "name": "gpt-4o-mini"}
    assert model_from_text("C:/models/x.gguf") == {"backend": "llama_cpp", "name": "C:/models/x.gguf"}  # not a backend: a path


# Autolabel's own metrics in eval (issue 37, scope 3): expected values worked out by hand from Autolabel
# 0.0.16's definitions (its metrics/*.py), not by our code.
def test_autolabel_text_f1_and_normalisation_follow_its_definitions():
    from labelmill.evaluation.autolabel_metrics import normalize_text, text_f1

    assert normalize_text("The  Cat, sat!") == "cat sat"
    assert text_f1("The cat sat.", "a cat sat down") == pytest.approx(0.8)  # {cat, sat} of 2 and of 3 tokens
    assert text_f1("the city of Lyon", "Lyon") == pytest.approx(0.5)  # precision 1/3, recall 1
    assert text_f1("", "") == 1.0 and text_f1("Paris", "") == 0.0 and text_f1("Paris", "Lyon") == 0.0


def test_autolabel_multilabel_accuracy_and_f1_over_the_label_set():
    from labelmill.evaluation.autolabel_metrics import multilabel

    out = multilabel([["a", "b"], ["c"], None], [["b", "a"], ["a"], ["a"]], [0.9, 0.4, float("nan")], ["a", "b", "c"])
    assert out["support"] == 3 and out["completion_rate"] == pytest.approx(2 / 3)
    assert out["accuracy"] == 0.5  # the same set in another order is right
    assert out["f1_micro"] == pytest.approx(4 / 6)  # 2 right labels, 1 extra, 1 missed
    assert out["f1_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert out["auroc"] == 1.0


def _eval_json(config: Path, output: Path) -> dict:
    return api.evaluate(config, output)


def test_eval_of_an_autolabel_classification_output_prints_autolabel_s_metrics_beside_ours(tmp_path):
    config = SHARED / "autolabel_configs" / "civil_comments.json"
    pd.DataFrame({
        "example": ["you idiot", "nice post", "thanks", "go away", "fine"],
        "label": ["toxic", "not toxic", "not toxic", "toxic", None],
        "llm_label": ["toxic", "toxic", "not toxic", None, "toxic"],
        "llm_confidence": [0.9, 0.6, 0.8, None, 0.7],
        "llm_error": [None, None, None, "parse_error: no label", None],
    }).to_csv(tmp_path / "out.csv", index=False)
    metrics = _eval_json(config, tmp_path / "out.csv")
    shown = subprocess.run(cli_command("eval", str(config), str(tmp_path / "out.csv")), capture_output=True, text=True, env=child_env(), timeout=120)
    assert shown.returncode == 0, shown.stderr
    shown = shown.stdout
    theirs = metrics["autolabel"]
    assert theirs["task_type"] == "classification"
    assert theirs["support"] == 5 and theirs["completion_rate"] == pytest.approx(0.8)  # every row counts, as in Autolabel
    assert theirs["accuracy"] == pytest.approx(2 / 3)  # rows that parsed and have gold: right, wrong, right
    assert theirs["auroc"] == pytest.approx(1.0)  # the wrong answer (0.6) is the least sure
    assert metrics["accuracy"] == pytest.approx(0.5)  # ours: a failed row is wrong, rows without gold left out
    assert "Autolabel's metrics (classification, as Autolabel 0.0.16 computes them): support 5   completion rate 0.800   accuracy 0.667   auroc 1.000" in shown


def test_eval_of_autolabel_qa_and_attribute_extraction_outputs(tmp_path):
    qa = SHARED / "autolabel_configs" / "squad_v2.json"
    pd.DataFrame({
        "context": ["Paris is in France.", "Lyon is big.", "x", "w"], "question": ["Where?", "Which city?", "y", "v"],
        "answer": ["France", "Lyon", "z", "unanswerable"], "llm_label": ["in France", "the city of Lyon", None, None],
        "llm_confidence": [0.9, 0.8, None, 0.7], "llm_error": [None, None, "parse_error: none", None],
    }).to_csv(tmp_path / "qa.csv", index=False)
    theirs = _eval_json(qa, tmp_path / "qa.csv")["autolabel"]
    # the last row: our empty answer is "unanswerable", the word Autolabel's config asks for, and right
    assert theirs["accuracy"] == pytest.approx(1 / 3) and theirs["completion_rate"] == pytest.approx(3 / 4)
    assert theirs["f1"] == pytest.approx((2 / 3 + 0.5 + 0.0 + 1.0) / 3)  # "in france" vs "france": P 1/2, R 1
    conll = SHARED / "autolabel_configs" / "conll2003.json"
    text = "Bo met Ana in Paris . Ana left ."
    spans = lambda *found: json.dumps([{"start": text.index(t), "end": text.index(t) + len(t), "type": kind, "text": t} for kind, t in found])
    pd.DataFrame({
        "example": [text, text], "Location": ['["Paris"]', '["Paris"]'], "Person": ['["Ana", "Bo"]', '["Ana", "Bo"]'],
        "Organization": ["[]", "[]"], "Miscellaneous": ["[]", "[]"],
        # row 1: every mention of its type (Bo before Ana, the gold's other order; Ana's every occurrence in the gold)
        "llm_label": [spans(("Person", "Bo"), ("Person", "Ana"), ("Location", "Paris")), spans(("Person", "Ana"), ("Organization", "Paris"))],
        "llm_confidence": [0.9, 0.5], "llm_error": [None, None],
    }).to_csv(tmp_path / "ner.csv", index=False)
    theirs = _eval_json(conll, tmp_path / "ner.csv")["autolabel"]
    assert theirs["task_type"] == "attribute_extraction"
    assert theirs["Person:accuracy"] == 0.5 and theirs["Location:accuracy"] == 0.5 and theirs["Organization:accuracy"] == 0.5
    assert theirs["Miscellaneous:accuracy"] == 1.0 and theirs["Person:support"] == 2 and theirs["Person:completion_rate"] == 1.0


def test_explanation_column_becomes_the_demos_reasoning_and_leaves_the_row_s_template(tmp_path):
    raw = json.loads((SHARED / "autolabel_configs" / "banking.json").read_text())
    seed = tmp_path / "seed.csv"
    pd.DataFrame({"example": ["my card has not come yet"], "label": ["card_arrival"], "explanation": ["It asks where the card is."]}).to_csv(seed, index=False)
    prompt = {**raw["prompt"], "few_shot_examples": str(seed), "few_shot_num": 1, "few_shot_selection": "fixed", "chain_of_thought": True,
              "example_template": "Input: {example}\nOutput: Let's think step by step.\n{explanation}\n{label}"}
    notices: list[str] = []
    config = load_config({**raw, "prompt": prompt, "dataset": {**raw["dataset"], "explanation_column": "explanation"}}, notices=notices)
    assert config.examples.explanation_column == "explanation" and config.input_template == "Input: {example}"
    assert any(n.startswith("explanation_column 'explanation': each demo shows its explanation") for n in notices)
    from labelmill.core.job import Job

    user, answer = Job(config.model_copy(update={"model": config.model.model_copy(update={"backend": "fake"})})).prompt("Input: where is my card").turns[0]
    assert (user, answer) == ("Input: my card has not come yet\n\nReasoning: It asks where the card is.\n\nNow give the answer only.", "card_arrival")
    notices = []
    load_config({**raw, "prompt": {**prompt, "chain_of_thought": False}, "dataset": {**raw["dataset"], "explanation_column": "explanation"}}, notices=notices)
    assert any("shown only with chain_of_thought" in n for n in notices)


def test_per_row_selections_show_their_examples_in_the_order_rows_share(tmp_path):
    from labelmill.autolabel import convert_autolabel_config

    base = {"task_name": "t", "task_type": "classification", "dataset": {"label_column": "label"},
            "prompt": {"task_guidelines": "g", "labels": ["a", "b"], "few_shot_examples": [{"example": "x", "label": "a"}], "few_shot_num": 1}}
    similar, notes = convert_autolabel_config({**base, "prompt": {**base["prompt"], "few_shot_selection": "semantic_similarity"}})
    fixed, _ = convert_autolabel_config({**base, "prompt": {**base["prompt"], "few_shot_selection": "fixed"}})
    assert similar["examples"]["order"] == "shared_first" and "order" not in fixed["examples"]
    assert any("shared_first" in n and "nearest_first" in n for n in notes)
