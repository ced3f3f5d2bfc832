"""Accept Autolabel task configs (classification, multi-label) by converting them to ours."""

from __future__ import annotations

import re
from typing import Any

_SUPPORTED = {"classification": "classification", "multilabel_classification": "multilabel"}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_autolabel_config(raw: dict[str, Any]) -> bool:
    return "task_type" in raw and isinstance(raw.get("prompt"), dict)


def convert_autolabel_config(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map an Autolabel config onto ours; returns the new dict and notices about what changed."""
    from labelmill.errors import ConfigError

    task_type = raw.get("task_type")
    if task_type not in _SUPPORTED:
        raise ConfigError(
            f"Autolabel task_type {task_type!r} is not supported yet",
            fix=f"use one of {sorted(_SUPPORTED)} or write a labelmill config (`labelmill init classification`)",
        )
    prompt = raw["prompt"]
    dataset = raw.get("dataset") or {}
    notes = [f"converted an Autolabel '{task_type}' config to labelmill's format"]
    gold = dataset.get("label_column")
    example_template = prompt.get("example_template", "Input: {example}\nOutput: {label}")
    input_fields = [f for f in _FIELD.findall(example_template) if f != gold and f != "label"]
    input_template = " ".join("{" + f + "}" for f in input_fields) if input_fields else "{text}"
    if len(input_fields) > 1:
        input_template = "\n".join(f"{f}: {{{f}}}" for f in input_fields)
    guidelines = "\n".join(p for p in (prompt.get("task_guidelines"), prompt.get("output_guidelines")) if p)
    config: dict[str, Any] = {
        "task": _SUPPORTED[task_type],
        "name": raw.get("task_name", "autolabel-task"),
        "labels": list(prompt.get("labels") or []),
        "guidelines": guidelines,
        "input_template": input_template,
        "gold_column": gold,
        "dataset": {k: v for k, v in {"delimiter": dataset.get("delimiter")}.items() if v},
    }
    if task_type == "multilabel_classification" and dataset.get("label_separator"):
        config["label_separator"] = dataset["label_separator"]
    shots = prompt.get("few_shot_num")
    if prompt.get("few_shot_examples"):
        examples = prompt["few_shot_examples"]
        selection = prompt.get("few_shot_selection", "fixed")
        if selection not in ("fixed", "random"):
            notes.append(f"few_shot_selection '{selection}' is not available yet; using 'fixed'")
            selection = "fixed"
        spec: dict[str, Any] = {"k": int(shots or 4), "selection": selection}
        if isinstance(examples, str):
            spec["file"] = examples
        else:
            spec["items"] = list(examples)
        config["examples"] = spec
    model = raw.get("model") or {}
    if model.get("provider") not in (None, "llama_cpp"):
        notes.append(
            f"model {model.get('provider')}/{model.get('name')} is not available offline; "
            "using the embedded model (set model.backend/model.name to change it)"
        )
    return config, notes
