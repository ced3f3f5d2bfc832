"""Accept Autolabel task configs by converting them to ours: every Autolabel task type, its prompt keys,
few-shot settings and data layout. Every key we do not honour is named in a notice; none is dropped silently.

| Autolabel task_type | labelmill task |
|---|---|
| classification / multilabel_classification | classification / multilabel |
| named_entity_recognition | ner (gold: a JSON {type: [mentions]}, aligned to the text) |
| entity_matching | matching (the label that means "same" first) |
| question_answering | qa: multiple_choice with an `{options}` field, extractive with a `{context}` field, else free_form |
| attribute_extraction | ner when every attribute is "a list of all instances" of something in the text (conll2003), else extraction |

The example template's lines without the label become the input template (Autolabel shows the same lines
for the row); the label's line is our answer format. Model providers map onto our backends (openai,
anthropic); others run on the embedded model, and `--model` runs any config on another model unedited.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labelmill.registry import Section

_TASKS = {
    "classification": "classification", "multilabel_classification": "multilabel", "named_entity_recognition": "ner",
    "entity_matching": "matching", "question_answering": "qa", "attribute_extraction": "extraction",
}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SELECTION = {
    "fixed": "fixed", "random": "random", "semantic_similarity": "similar", "max_marginal_relevance": "mmr",
    "label_diversity_random": "balanced", "label_diversity_similar": "similar_per_label",
}
_PER_ROW = {"similar", "mmr", "similar_per_label"}  # picked per row: their order is ours to choose
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "llama_cpp": "llama_cpp", "vllm": "vllm"}
_OUTPUT_DICT = "output_dict"  # attribute extraction's label placeholder
# keys read below; anything else in the config is named in a notice
_HONOURED = {
    "": {"task_name", "task_type", "dataset", "model", "prompt"},
    "dataset": {"label_column", "delimiter", "text_column", "label_separator", "explanation_column"},
    "model": {"provider", "name", "compute_confidence"},
    "prompt": {"task_guidelines", "output_guidelines", "labels", "attributes", "example_template", "few_shot_examples",
               "few_shot_selection", "few_shot_num", "chain_of_thought", "label_selection", "label_selection_count"},
}


class AutolabelOrigin(BaseModel):
    """Where a converted config came from: `eval` then prints Autolabel's own metrics beside ours."""

    model_config = ConfigDict(extra="forbid")

    task_type: str | None = Field(None, description="The Autolabel task_type the config was converted from (set by the converter).")


# the converter's own section: it records the source, and never changes what the labeler answers
SECTION = Section("autolabel", AutolabelOrigin, owner="the Autolabel converter", fingerprint="never")


def is_autolabel_config(raw: dict[str, Any]) -> bool:
    return "task_type" in raw and isinstance(raw.get("prompt"), dict)


def convert_autolabel_config(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map an Autolabel config onto ours; returns the new dict and notices about what changed."""
    from labelmill.errors import ConfigError

    task_type = raw.get("task_type")
    if task_type not in _TASKS:
        raise ConfigError(f"Autolabel task_type {task_type!r} is not supported", fix=f"use one of {sorted(_TASKS)} or write a labelmill config (`labelmill init classification`)")
    prompt, dataset = raw["prompt"], raw.get("dataset") or {}
    notes = [f"converted an Autolabel '{task_type}' config to labelmill's format"]
    gold = dataset.get("label_column")
    template = prompt.get("example_template") or "Input: {example}\nOutput: {label}"
    explained = dataset.get("explanation_column")
    label_fields = {f for f in (gold, "label", _OUTPUT_DICT, explained) if f}  # the demo's answer side, never the row's input
    fields = [f for f in dict.fromkeys(_FIELD.findall(template)) if f not in label_fields]
    config: dict[str, Any] = {
        "task": _TASKS[task_type], "name": raw.get("task_name", "autolabel-task"), "gold_column": gold,
        "guidelines": _guidelines(prompt), "input_template": _input_template(template, label_fields),
        "dataset": {k: v for k, v in {"delimiter": dataset.get("delimiter")}.items() if v},
        "autolabel": {"task_type": task_type},
    }
    if prompt.get("labels"):
        config["labels"] = _labels(prompt["labels"])
    _TASK_STEPS[task_type](config, prompt, dataset, fields, notes)
    _examples(config, prompt, gold, notes)
    _explanations(config, prompt, explained, notes)
    if prompt.get("chain_of_thought"):
        config["reasoning"] = {"chain_of_thought": True}
    _label_selection(config, prompt, task_type, notes)
    config["model"] = _model(raw.get("model") or {}, notes)
    _unhonoured(raw, notes)
    return config, notes


# the parts every task shares ------------------------------------------------------------------------
def _label_selection(config: dict[str, Any], prompt: dict[str, Any], task_type: str, notes: list[str]) -> None:
    """`label_selection` (with `label_selection_count`, Autolabel's default 10): each row's prompt lists, and our
    score covers, the labels nearest the row; on classification only, as in Autolabel."""
    if not prompt.get("label_selection"):
        return
    count = prompt.get("label_selection_count", 10)
    if config["task"] != "classification":
        notes.append(f"label_selection: Autolabel narrows the labels of classification tasks only; not used for {task_type!r}")
        return
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        from labelmill.errors import ConfigError

        raise ConfigError(f"prompt.label_selection_count must be a whole number of labels, got {count!r}", fix="set it to e.g. 10, or leave it out")
    config["classification"] = {"labels_per_row": count}
    notes.append(f"label_selection -> classification.labels_per_row {count}: each row's prompt lists and scores the {count} labels "
                 "nearest it (the examples' embedding model), in the config's order; the others get probability 0")


def _labels(labels: Any) -> list[Any]:
    """Autolabel's labels: a list of names (or of {name, description}), or a mapping name -> description."""
    if isinstance(labels, dict):
        return [{"name": str(k), "description": str(v)} if v else {"name": str(k)} for k, v in labels.items()]
    return [{"name": str(x["name"]), **({"description": str(x["description"])} if x.get("description") else {})} if isinstance(x, dict) else str(x)
            for x in labels]


def _label_names(config: dict[str, Any]) -> list[str]:
    return [x["name"] if isinstance(x, dict) else x for x in config.get("labels") or []]


def _guidelines(prompt: dict[str, Any]) -> str:
    """Task and output guidelines; `{attribute_json}` filled in as Autolabel does (name -> description)."""
    text = "\n".join(p for p in (prompt.get("task_guidelines"), prompt.get("output_guidelines")) if p)
    if "{attribute_json}" in text:
        described = {a["name"]: a.get("description", "") for a in prompt.get("attributes") or [] if isinstance(a, dict) and "name" in a}
        text = text.replace("{attribute_json}", json.dumps(described, indent=1))
    return text


def _input_template(template: str, label_fields: set[str]) -> str:
    """The example template's lines that hold no label placeholder: what Autolabel shows for the row."""
    lines = [line for line in template.splitlines() if line.strip() and not set(_FIELD.findall(line)) & label_fields]
    while lines and not _FIELD.search(lines[-1]):  # the label's own heading ("Output:") goes with it
        lines.pop()
    kept = "\n".join(lines).strip()
    if not _FIELD.search(kept):  # a template whose only line holds the label too: keep its input fields
        fields = [f for f in dict.fromkeys(_FIELD.findall(template)) if f not in label_fields]
        kept = "\n".join(f"{f}: {{{f}}}" for f in fields) if len(fields) > 1 else "{" + (fields[0] if fields else "text") + "}"
    return kept


def _examples(config: dict[str, Any], prompt: dict[str, Any], gold: str | None, notes: list[str]) -> None:
    examples = prompt.get("few_shot_examples")
    if not examples:
        return
    selection = str(prompt.get("few_shot_selection", "fixed"))
    if selection not in _SELECTION:
        notes.append(f"few_shot_selection '{selection}' is not one Autolabel documents; using 'fixed'")
    elif _SELECTION[selection] != selection:
        notes.append(f"few_shot_selection '{selection}' -> labelmill's '{_SELECTION[selection]}'")
    spec: dict[str, Any] = {"k": int(prompt.get("few_shot_num", 4)), "selection": _SELECTION.get(selection, "fixed")}
    if spec["selection"] in _PER_ROW:
        spec["order"] = "shared_first"
        notes.append("each row's examples are shown most-picked first, in one order for all rows (examples.order shared_first), so rows "
                     "that pick the same examples share their prompt's beginning; Autolabel shows the nearest first (examples.order nearest_first)")
    spec.update({"file": examples} if isinstance(examples, str) else {"items": list(examples)})
    if gold and config["task"] not in ("extraction",):
        spec["label_column"] = gold
    config["examples"] = spec


def _explanations(config: dict[str, Any], prompt: dict[str, Any], column: Any, notes: list[str]) -> None:
    """`dataset.explanation_column`: the demos' explanations, shown with chain of thought."""
    if not column:
        return
    if "examples" not in config:
        notes.append(f"dataset.explanation_column {column!r}: no few-shot examples to explain; not used")
        return
    config["examples"]["explanation_column"] = str(column)
    if prompt.get("chain_of_thought"):
        notes.append(f"explanation_column {column!r}: each demo shows its explanation as its reasoning before its label")
    else:
        notes.append(f"explanation_column {column!r}: read, but shown only with chain_of_thought (it is off)")


def _model(model: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    provider, name = model.get("provider"), model.get("name")
    if model.get("compute_confidence") is False:
        notes.append("model.compute_confidence false: labelmill always gives a confidence (it costs nothing extra when scored)")
    if provider in _PROVIDERS and name and provider != "llama_cpp":
        notes.append(f"model {provider}/{name} needs its API key online; `--model qwen2.5-coder-0.5b` runs this config on the embedded model")
        return {"backend": _PROVIDERS[provider], "name": name}
    if provider in (None, "llama_cpp"):
        return {"name": name} if name else {}
    notes.append(f"model {provider}/{name} has no labelmill backend; using the embedded model (`--model` picks another)")
    return {}


def _unhonoured(raw: dict[str, Any], notes: list[str]) -> None:
    """Name every key this conversion does not read."""
    left = [k for k in raw if k not in _HONOURED[""]]
    for section in ("dataset", "model", "prompt"):
        left += [f"{section}.{k}" for k in (raw.get(section) or {}) if k not in _HONOURED[section]]
    if left:
        notes.append(f"not honoured (no labelmill equivalent yet): {', '.join(left)}")


# per task ------------------------------------------------------------------------------------------
def _classification(config: dict[str, Any], prompt: dict[str, Any], dataset: dict[str, Any], fields: list[str], notes: list[str]) -> None:
    if config["task"] == "multilabel" and dataset.get("label_separator"):
        config["label_separator"] = dataset["label_separator"]


def _ner(config: dict[str, Any], prompt: dict[str, Any], dataset: dict[str, Any], fields: list[str], notes: list[str]) -> None:
    """Old Autolabel NER: the label column holds {type: [mentions]}; the mentions are aligned to the text."""
    config["ner"] = {"tokens_column": None}
    if prompt.get("output_guidelines"):
        config["guidelines"] = prompt.get("task_guidelines") or ""
        notes.append("output_guidelines left out: labelmill's NER asks for its own answer format ('entity (TYPE)' lines)")


def _matching(config: dict[str, Any], prompt: dict[str, Any], dataset: dict[str, Any], fields: list[str], notes: list[str]) -> None:
    """Our matching task reads the match label first: of two labels where one is the other negated ("not
    duplicate" / "duplicate"), the plain one goes first."""
    labels, names = config.get("labels") or [], _label_names(config)
    negated = re.compile(r"^(?:not|no|non)[\s_-]+", re.IGNORECASE)
    if len(labels) == 2 and negated.sub("", names[0]).lower() == names[1].lower() != names[0].lower():
        config["labels"] = [labels[1], labels[0]]
        notes.append(f"labels reordered: '{names[1]}' (the match label) first, as labelmill's matching task reads them")


def _qa(config: dict[str, Any], prompt: dict[str, Any], dataset: dict[str, Any], fields: list[str], notes: list[str]) -> None:
    text = (config["guidelines"] or "").lower()
    if "options" in fields:
        question = "question" if "question" in fields else fields[0]
        config["qa"] = {"mode": "multiple_choice", "options_column": "options", "question_column": question}
        config["input_template"] = "\n".join(line for line in config["input_template"].splitlines() if "{options}" not in line)
        notes.append("question_answering with {options}: multiple choice, the options shown as lettered choices and scored")
    elif "context" in fields:
        unanswerable = "unanswerable" in text or "cannot be answered" in text
        config["qa"] = {"mode": "extractive", "question_column": "question" if "question" in fields else fields[0],
                        "allow_unanswerable": unanswerable, "verify": unanswerable}
    else:
        config["qa"] = {"mode": "free_form", "question_column": "question" if "question" in fields else fields[0]}
    config.pop("labels", None)


def _attributes(config: dict[str, Any], prompt: dict[str, Any], dataset: dict[str, Any], fields: list[str], notes: list[str]) -> None:
    """Attributes that are each "a list of all instances" of a kind of mention in one text are NER spans;
    other attributes are extraction fields (a list where the description says so)."""
    attributes = [a for a in prompt.get("attributes") or [] if isinstance(a, dict) and a.get("name")]
    config["gold_column"] = None  # gold: one column per attribute, as Autolabel's data has it
    described = [str(a.get("description", "")).lower() for a in attributes]
    if attributes and len(fields) == 1 and all("all instances" in d for d in described):
        config["task"] = "ner"
        config["labels"] = [{"name": a["name"], "description": a["description"]} if a.get("description") else a["name"] for a in attributes]
        config["ner"] = {"tokens_column": None, "mention_columns": True}
        config["guidelines"] = prompt.get("task_guidelines") or ""
        notes.append(f"attribute_extraction of mention lists ({', '.join(a['name'] for a in attributes)}) -> labelmill's ner: spans aligned "
                     "to the text, one gold column of mentions per type; output_guidelines left out (the answer format is ner's)")
        return
    config["attributes"] = [
        {"name": a["name"], "type": "list" if d.startswith("a list") or "wrapped in a list" in d else "string", "required": False,
         **({"description": a["description"]} if a.get("description") else {}), **({"values": [str(v) for v in a["options"]]} if a.get("options") else {})}
        for a, d in zip(attributes, described)
    ]


_TASK_STEPS = {
    "classification": _classification, "multilabel_classification": _classification, "named_entity_recognition": _ner,
    "entity_matching": _matching, "question_answering": _qa, "attribute_extraction": _attributes,
}
