"""Attribute extraction: one JSON object per row, following a declared schema.

The schema becomes a JSON schema: llama.cpp decodes under its grammar, OpenAI-compatible servers get it
as `response_format`. Every answer is validated here anyway (a backend may ignore the schema, or stop
at max_tokens); an invalid answer gets one re-ask that shows the model its answer and the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any


from labelmill.numeric.confidence import TokenText, mean_token_prob
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt
from labelmill.tasks.base import RowInput, Task, is_missing, load_structured, normalise

if TYPE_CHECKING:
    from labelmill.config import Config

_JSON_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean"}


class ExtractionTask(Task):
    default_max_tokens = 128

    @classmethod
    def configure(cls, config: Config) -> None:
        if not config.attributes:
            raise ValueError("attributes: an extraction task needs at least one attribute")
        keys = [a.name for a in config.attributes]
        if len(set(keys)) != len(keys):
            raise ValueError("attributes: duplicate attribute names")

    def __init__(self, config):
        super().__init__(config)
        self.attributes = config.attributes

    # prompt --------------------------------------------------------------------------------------
    def system_prompt(self) -> str:
        lines = []
        for a in self.attributes:
            kind = "list of strings" if a.type == "list" else a.type
            extra = f"; one of: {', '.join(a.values)}" if a.values else ""
            optional = "" if a.required else "; null if the text does not say"
            desc = f": {a.description}" if a.description else ""
            lines.append(f"- {a.name} ({kind}{extra}{optional}){desc}")
        guidelines = self.config.guidelines.strip() or "Extract the attributes below from the text."
        return f"{guidelines}\n\nAttributes:\n" + "\n".join(lines) + "\n\nAnswer with one JSON object with exactly these keys."

    def schema(self) -> dict:
        properties = {}
        for a in self.attributes:
            if a.type == "list":
                prop: dict[str, Any] = {"type": "array", "items": {"type": "string", **({"enum": a.values} if a.values else {})}}
            else:
                prop = {"type": _JSON_TYPES[a.type]}
                if a.values:
                    prop = {"enum": list(a.values)}
            if not a.required:
                prop = {"anyOf": [prop, {"type": "null"}]}
            properties[a.name] = prop
        return {"type": "object", "properties": properties, "required": [a.name for a in self.attributes], "additionalProperties": False}

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        return json.dumps({a.name: (gold or {}).get(a.name) for a in self.attributes}, ensure_ascii=False)

    def example_gold_columns(self, label_column: str) -> list[str]:
        return [self._gold_column(a) for a in self.attributes]

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.gold(item)

    def reask(self, prompt: Prompt, generation: Generation, failure: ParseFailure) -> Prompt | None:
        if failure.kind not in ("invalid_json", "schema"):
            return None
        turns = prompt.turns + ((prompt.user, generation.text),)
        return Prompt(
            system=prompt.system,
            turns=turns,
            user=f"That answer is invalid: {failure.detail}. Answer again with one corrected JSON object only.",
        )

    # answers -------------------------------------------------------------------------------------
    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        text = generation.text.strip()
        fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
        if fence:
            text = fence.group(1).strip()
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            return ParseFailure("invalid_json", generation.text, "no JSON object in the answer")
        try:
            data = json.loads(text[start : end + 1])
        except ValueError as exc:
            return ParseFailure("invalid_json", generation.text, f"not valid JSON ({exc.msg} at character {exc.pos})")
        if not isinstance(data, dict):
            return ParseFailure("invalid_json", generation.text, "the answer is not a JSON object")
        value, problems = self.validate(data)
        if problems:
            return ParseFailure("schema", generation.text, "; ".join(problems))
        confidence, per_attribute = _value_confidences(generation, value)
        signals = {f"confidence.{k}": v for k, v in per_attribute.items() if v is not None}
        return Label(value=value, confidence=confidence, signals=signals)

    def validate(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The object with values coerced to their declared types, and what is wrong with it."""
        out: dict[str, Any] = {}
        problems: list[str] = []
        for a in self.attributes:
            raw = data.get(a.name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if a.required:
                    problems.append(f"'{a.name}' is required")
                out[a.name] = None
                continue
            try:
                value = _coerce(raw, a.type)
            except (TypeError, ValueError):
                problems.append(f"'{a.name}' must be {a.type}, got {raw!r}")
                continue
            if a.values:
                allowed = {normalise(v): v for v in a.values}
                items = value if isinstance(value, list) else [value]
                bad = [v for v in items if normalise(str(v)) not in allowed]
                if bad:
                    problems.append(f"'{a.name}' must be one of {a.values}, got {bad[0]!r}")
                    continue
                value = [allowed[normalise(str(v))] for v in items] if isinstance(value, list) else allowed[normalise(str(value))]
            out[a.name] = value
        extra = [k for k in data if k not in {a.name for a in self.attributes}]
        if extra:
            problems.append(f"unknown key(s) {extra[:3]}")
        return out, problems

    # gold and metrics ----------------------------------------------------------------------------
    def _gold_column(self, attribute) -> str:
        return attribute.gold_column or attribute.name

    def gold_columns(self) -> list[str]:
        if self.config.gold_column:
            return [self.config.gold_column]
        return [self._gold_column(a) for a in self.attributes]

    def gold(self, record: Mapping[str, Any]) -> Any:
        if self.config.gold_column:
            return self.parse_gold(record.get(self.config.gold_column))
        values = {}
        for a in self.attributes:
            cell = record.get(self._gold_column(a))
            values[a.name] = None if is_missing(cell) else _coerce_soft(cell, a.type)
        return values

    def parse_gold(self, value: Any) -> Any:
        data = load_structured(value)
        if not isinstance(data, dict):
            return None
        return {a.name: (None if is_missing(data.get(a.name)) else _coerce_soft(data.get(a.name), a.type)) for a in self.attributes}

    def parse_output(self, value: Any) -> Any:
        return self.parse_gold(value)

    def output_value(self, label: Label) -> Any:
        return label.value

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        return {a.name: (value or {}).get(a.name) for a in self.attributes}

    def _same(self, gold: Any, predicted: Any) -> bool:
        if gold is None or predicted is None:
            return gold is None and predicted is None
        if isinstance(gold, list) or isinstance(predicted, list):
            as_set = lambda v: {normalise(str(x)) for x in (v if isinstance(v, list) else [v])}
            return as_set(gold) == as_set(predicted)
        if isinstance(gold, (int, float)) and isinstance(predicted, (int, float)):
            return abs(float(gold) - float(predicted)) <= 1e-6 * max(1.0, abs(float(gold)))
        return normalise(str(gold)) == normalise(str(predicted))

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        return predicted is not None and all(self._same(gold.get(a.name), predicted.get(a.name)) for a in self.attributes)

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        n = len(gold)
        completed = sum(p is not None for p in predicted)
        per = {}
        for a in self.attributes:
            right = sum(1 for g, p in zip(gold, predicted) if p is not None and self._same(g.get(a.name), p.get(a.name)))
            per[a.name] = {"accuracy": right / n if n else 0.0, "accuracy_on_completed": right / completed if completed else 0.0}
        exact = sum(self.is_correct(g, p) for g, p in zip(gold, predicted))
        return {
            "n_rows": n,
            "accuracy": {name: v["accuracy"] for name, v in per.items()},
            "row_accuracy": exact / n if n else 0.0,  # every attribute right
            "accuracy_on_completed": exact / completed if completed else 0.0,
            "completion_rate": completed / n if n else 0.0,
            "per_attribute": per,
        }


def _coerce(value: Any, kind: str) -> Any:
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise TypeError
        return str(value).strip()
    if kind == "number":
        if isinstance(value, bool):
            raise TypeError
        return float(str(value).replace(",", "").strip("$€£ ")) if isinstance(value, str) else float(value)
    if kind == "integer":
        number = _coerce(value, "number")
        if number != int(number):
            raise ValueError
        return int(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = normalise(str(value))
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError
    if kind == "list":
        if isinstance(value, list):
            return [str(v).strip() for v in value if not is_missing(v)]
        return [p.strip() for p in str(value).split(",") if p.strip()]
    raise ValueError(kind)


def _coerce_soft(value: Any, kind: str) -> Any:
    value = load_structured(value) if kind == "list" and isinstance(value, str) else value
    try:
        return _coerce(value, kind)
    except (TypeError, ValueError):
        return value


def _value_confidences(generation: Generation, value: Mapping[str, Any]) -> tuple[float | None, dict[str, float | None]]:
    """Per attribute: mean probability of the tokens that wrote its value; overall: the lowest of them."""
    text = TokenText(generation.tokens, generation.token_logprobs)
    if not text.ok:
        return mean_token_prob(generation.token_logprobs), {}
    raw = text.raw
    per: dict[str, float | None] = {}
    for name in value:
        key_at = raw.find(f'"{name}"')
        if key_at < 0:
            per[name] = None
            continue
        colon = raw.find(":", key_at)
        stop = min([i for i in (raw.find(',"', colon), raw.find(', "', colon), raw.find("}", colon)) if i >= 0] or [len(raw)])
        start = colon + 1 + (len(raw[colon + 1 :]) - len(raw[colon + 1 :].lstrip()))  # the value, not the space before it
        per[name] = text.mean_prob(start, stop)
    known = [v for v in per.values() if v is not None]
    return (float(min(known)) if known else None), per
