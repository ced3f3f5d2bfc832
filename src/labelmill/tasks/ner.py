"""Named-entity recognition: the model lists entities as 'text (TYPE)' lines; we align them to the input.

The mention comes before its type so that the model picks the type having written the mention.

The answer is parsed leniently (lines, bullets, 'text (TYPE)', JSON lists or objects) and every mention
is aligned to character offsets of the input: exactly, then ignoring case, then ignoring whitespace
as well ("Lebanon's" finds "Lebanon 's"). A mention is labeled at every place it occurs, longer
mentions first, never overlapping. Mentions that occur nowhere are reported as unaligned, never
invented. Spans therefore always satisfy `span.text == input[span.start:span.end]`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from labelmill.numeric.confidence import TokenText, mean_token_prob
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt
from labelmill.config import Strict
from labelmill.registry import Section
from labelmill.tasks.base import RowInput, Task, is_missing, load_structured, normalise, unfenced
from labelmill.tasks.classification import guidelines_with_labels
from labelmill.tasks.spans import occurrences

if TYPE_CHECKING:
    from labelmill.config import Config


class NERSpec(Strict):
    """Named-entity recognition options."""

    tokens_column: str | None = Field("tokens", description="Column with the text's tokens, used to export BIO tags (else whitespace tokens).")
    mention_columns: bool = Field(
        False, description="Gold (and the examples' labels) as one column per entity type, named as the type, holding the list of its "
        "mentions (Autolabel's attribute layout); the mentions are aligned to the text. A gold cell holding {type: [mentions]} is read the same way.",
    )


SECTION = Section("ner", NERSpec, owner="task ner", fingerprint="always")


_NONE = {"none", "no entities", "no entity", "nothing", "n/a", "null", "[]", "{}", "no named entities"}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_TYPED_AFTER = re.compile(r"^(?P<text>.+?)\s*(?:\((?P<t1>[^()]+)\)|\[(?P<t2>[^\[\]]+)\]|\s[-–=]>?\s(?P<t3>.+)|:\s*(?P<t4>.+))$")


class NerTask(Task):
    """Entity spans of the declared types, as character offsets into the input text."""

    @classmethod
    def configure(cls, config: Config) -> None:
        if not config.labels:
            raise ValueError("labels: give at least one label (the entity types)")

    default_max_tokens = 96
    default_guidelines = (
        "Find the named entities in the text. Entity types:\n{labels}\n\n"
        "Write one entity per line as: entity (TYPE), copying the entity exactly as it appears in the text. "
        "If the text has no entities, write none."
    )

    def __init__(self, config):
        super().__init__(config)
        self.type_by_norm = {normalise(t): t for t in self.labels}

    # prompt --------------------------------------------------------------------------------------
    def system_prompt(self) -> str:
        return guidelines_with_labels(self.config, self.default_guidelines)

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        lines, seen = [], set()
        for span in sorted(gold or [], key=lambda s: s["start"]):
            line = f"{span['text']} ({span['type']})"
            if line not in seen:
                seen.add(line)
                lines.append(line)
        return "\n".join(lines) if lines else "none"

    def check_demo(self, number: int, gold: Any) -> None:
        from labelmill.selectors.pickers import check_demo_labels

        check_demo_labels(number, [s["type"] for s in gold or []], self.labels)

    def reask(self, prompt: Prompt, generation: Generation, failure: ParseFailure) -> Prompt | None:
        if failure.kind != "no_entities_parsed":
            return None
        return Prompt(
            system=prompt.system,
            turns=prompt.turns + ((prompt.user, generation.text),),
            user="That answer does not follow the format. Write one entity per line as: entity (TYPE), "
            f"with TYPE one of {', '.join(self.labels)}; or write none.",
        )

    # answers -------------------------------------------------------------------------------------
    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        text = generation.text
        mentions, unparsed = parse_mentions(text, self.type_by_norm)
        if mentions is None:
            return ParseFailure("no_entities_parsed", text, "no 'entity (TYPE)' line, and not 'none'")
        source = row.text if row is not None else ""
        line_conf = line_confidences(generation, [m[2] for m in mentions])
        spans, unaligned = align_mentions(source, [(m[0], m[1], c) for m, c in zip(mentions, line_conf)])
        confs = [s["confidence"] for s in spans if s.get("confidence") is not None]
        confidence = float(min(confs)) if confs else mean_token_prob(generation.token_logprobs)
        signals = {"spans": float(len(spans)), "unaligned": float(len(unaligned)), "other_lines": float(len(unparsed))}
        return Label(value={"spans": spans, "unaligned": unaligned, "unparsed": unparsed}, confidence=confidence, signals=signals)

    def output_value(self, label: Label) -> Any:
        value = label.value
        return value.get("spans", []) if isinstance(value, dict) else value

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        spans = value.get("spans", []) if isinstance(value, dict) else value or []
        text = self.render(record)
        tokens = record.get(self.config.ner.tokens_column) if self.config.ner.tokens_column else None
        tokens = load_structured(tokens) if not is_missing(tokens) else None
        out = {"tags": " ".join(spans_to_bio(text, spans, tokens if isinstance(tokens, list) else None))}
        if isinstance(value, dict) and value.get("unaligned"):
            out["unaligned"] = value["unaligned"]
        return out

    # gold and metrics ----------------------------------------------------------------------------
    def gold_columns(self) -> list[str]:
        return list(self.labels) if self.config.ner.mention_columns else super().gold_columns()

    def gold(self, record: Mapping[str, Any]) -> Any:
        """Spans from the gold column; with `ner.mention_columns`, or a cell holding {type: [mentions]}, the
        mentions are aligned to the row's text (every occurrence, as the model's answers are)."""
        if self.config.ner.mention_columns:
            return self._aligned(record, {t: record.get(t) for t in self.labels})
        return self._gold_cell(record, record.get(self.config.gold_column)) if self.config.gold_column else None

    def example_gold_columns(self, label_column: str) -> list[str]:
        return list(self.labels) if self.config.ner.mention_columns else [label_column]

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.gold(item) if self.config.ner.mention_columns else self._gold_cell(item, item[label_column])

    def _gold_cell(self, record: Mapping[str, Any], cell: Any) -> Any:
        data = load_structured(cell)
        return self._aligned(record, data) if isinstance(data, dict) and "spans" not in data else self.parse_gold(cell)

    def _aligned(self, record: Mapping[str, Any], by_type: Mapping[str, Any]) -> list[dict[str, Any]]:
        mentions = []
        for kind, cell in by_type.items():
            values = load_structured(cell)
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, (list, tuple, np.ndarray)):
                continue
            kind = self.type_by_norm.get(normalise(str(kind)), str(kind))
            mentions += [(kind, str(v), None) for v in values if not is_missing(v) and str(v).strip()]
        spans, _ = align_mentions(self.render(record), mentions)
        return sorted(({k: s[k] for k in ("type", "start", "end", "text")} for s in spans), key=lambda s: (s["start"], s["end"]))

    def parse_gold(self, value: Any) -> Any:
        if not isinstance(value, (list, np.ndarray)) and is_missing(value):
            return None
        data = load_structured(value)
        if isinstance(data, dict) and "spans" in data:
            data = data["spans"]
        if not isinstance(data, (list, np.ndarray)):
            return None
        spans = []
        for item in data:
            if not isinstance(item, dict) or "start" not in item or "end" not in item:
                continue
            kind = item.get("type", item.get("label"))
            kind = self.type_by_norm.get(normalise(str(kind)), str(kind))
            spans.append({"type": kind, "start": int(item["start"]), "end": int(item["end"]), "text": item.get("text", "")})
        return sorted(spans, key=lambda s: (s["start"], s["end"]))

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        if predicted is None:
            return False
        return _keys(gold, True) == _keys(predicted, True)

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        result = span_metrics(gold, predicted, self.labels)
        n = len(gold)
        completed = sum(p is not None for p in predicted)
        exact_rows = sum(self.is_correct(g, p) for g, p in zip(gold, predicted))
        result.update(
            {
                "n_rows": n,
                "completion_rate": completed / n if n else 0.0,
                "accuracy": exact_rows / n if n else 0.0,  # rows whose spans are all exactly right
                "accuracy_on_completed": exact_rows / completed if completed else 0.0,
            }
        )
        return result


# ----------------------------------------------------------------------------------------------
# parsing the answer


def parse_mentions(text: str, type_by_norm: Mapping[str, str]) -> tuple[list[tuple[str, str, str]] | None, list[str]]:
    """(type, mention, source line) triples, and the lines that gave none.

    A line shaped like an entity but of a type outside the set ('Friday (DATE)') is skipped, not
    guessed. None when the answer is neither 'none' nor has a single entity-shaped line.
    """
    body = unfenced(text)
    if normalise(body) in _NONE:
        return [], []
    from_json = _mentions_from_json(body, type_by_norm)
    if from_json is not None:
        return from_json, []
    mentions: list[tuple[str, str, str]] = []
    unparsed: list[str] = []
    shaped = False
    for raw_line in body.splitlines():
        line = _BULLET.sub("", raw_line).strip()
        if not line or normalise(line) in _NONE:
            continue
        found = _mentions_from_line(line, type_by_norm)
        if found:
            mentions.extend((t, m, raw_line) for t, m in found)
        else:
            unparsed.append(raw_line.strip())
            shaped = shaped or bool(_TYPED_AFTER.match(line))
    if not mentions and unparsed and not shaped:
        return None, unparsed
    return mentions, unparsed


def _clean_mention(text: str) -> str:
    return text.strip().strip("\"'“”‘’`*").strip()


def _known_type(name: str, type_by_norm: Mapping[str, str], fuzzy: bool = False) -> str | None:
    """The entity type `name` names: exactly (after normalising), or with `fuzzy` also 'B-PER', 'person'."""
    key = normalise(name)
    if key in type_by_norm:
        return type_by_norm[key]
    if not fuzzy:
        return None
    key = re.sub(r"^[bi]-", "", key)
    for norm, kind in type_by_norm.items():
        if key == norm or (len(norm) >= 3 and key.startswith(norm)):
            return kind
    return None


def _mentions_from_line(line: str, type_by_norm: Mapping[str, str]) -> list[tuple[str, str]]:
    for fuzzy in (False, True):
        # TYPE: mention[; mention]
        head, sep, rest = line.partition(":")
        if sep:
            kind = _known_type(head, type_by_norm, fuzzy)
            if kind is not None:
                rest = rest.strip()
                if normalise(rest) in _NONE:
                    return []
                parts = [_clean_mention(p) for p in re.split(r"\s*;\s*|\s*\|\s*", rest)]
                return [(kind, p) for p in parts if p]
        # mention (TYPE) / mention [TYPE] / mention - TYPE / mention: TYPE
        m = _TYPED_AFTER.match(line)
        if m:
            name = next(g for g in (m.group("t1"), m.group("t2"), m.group("t3"), m.group("t4")) if g is not None)
            kind = _known_type(name, type_by_norm, fuzzy)
            if kind is not None and _clean_mention(m.group("text")):
                return [(kind, _clean_mention(m.group("text")))]
    return []


def _mentions_from_json(body: str, type_by_norm: Mapping[str, str]) -> list[tuple[str, str, str]] | None:
    if not body or body[0] not in "[{":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    out: list[tuple[str, str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            kind = _known_type(str(key), type_by_norm, True)
            values = value if isinstance(value, list) else [value]
            if kind is not None:
                out += [(kind, str(v), body) for v in values if isinstance(v, (str, int, float)) and str(v).strip()]
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                kind_raw = item.get("type") or item.get("label") or item.get("entity_type") or item.get("category")
                text = item.get("text") or item.get("entity") or item.get("span") or item.get("mention") or item.get("name")
                kind = _known_type(str(kind_raw), type_by_norm, True) if kind_raw else None
                if kind and text:
                    out.append((kind, str(text), body))
    return out


def line_confidences(generation: Generation, lines: Sequence[str]) -> list[float | None]:
    """Mean probability of the generated tokens that wrote each line (None without token data)."""
    text = TokenText(generation.tokens, generation.token_logprobs)
    if not text.ok:
        return [None] * len(lines)
    out: list[float | None] = []
    cursor = 0
    for line in (line.strip() for line in lines):
        at = text.raw.find(line, cursor) if line else -1
        if at < 0 and line:
            at = text.raw.find(line)
        if at < 0:
            out.append(None)
            continue
        cursor = at
        out.append(text.mean_prob(at, at + len(line)))
    return out


# ----------------------------------------------------------------------------------------------
# alignment


def align_mentions(text: str, mentions: Sequence[tuple[str, str, float | None]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Spans for (type, mention, confidence) triples: every occurrence, longest mentions first, no overlaps."""
    taken = np.zeros(len(text) + 1, dtype=bool)
    spans: list[dict[str, Any]] = []
    unaligned: list[dict[str, Any]] = []
    seen: Counter = Counter()
    order = sorted(range(len(mentions)), key=lambda i: -len(mentions[i][1]))
    for i in order:
        kind, mention, confidence = mentions[i]
        key = (kind, mention.casefold())
        seen[key] += 1
        if seen[key] > 1:
            continue  # a repeated line adds nothing: every occurrence is labeled already
        hits = occurrences(text, mention)
        placed = False
        for start, end in hits:
            if taken[start:end].any():
                continue
            taken[start:end] = True
            spans.append({"type": kind, "start": start, "end": end, "text": text[start:end], "confidence": confidence})
            placed = True
        if not placed and not hits:
            unaligned.append({"type": kind, "text": mention})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    return spans, unaligned


# ----------------------------------------------------------------------------------------------
# BIO export and metrics


def _tokens_with_offsets(text: str, tokens: Sequence[str] | None) -> list[tuple[str, int, int]]:
    if tokens:
        out, cursor = [], 0
        for token in tokens:
            at = text.find(token, cursor)
            if at < 0:
                return _tokens_with_offsets(text, None)
            out.append((token, at, at + len(token)))
            cursor = at + len(token)
        return out
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def spans_to_bio(text: str, spans: Sequence[Mapping[str, Any]], tokens: Sequence[str] | None = None) -> list[str]:
    """BIO tags over `tokens` (or whitespace tokens); a token is inside a span when it overlaps it."""
    tags = []
    for _, start, end in _tokens_with_offsets(text, tokens):
        tag = "O"
        for span in spans:
            if start < span["end"] and end > span["start"]:
                tag = ("B-" if start <= span["start"] or not tags or not tags[-1].endswith(span["type"]) else "I-") + span["type"]
                break
        tags.append(tag)
    return tags


def _keys(spans: Any, typed: bool) -> set:
    return {(s["start"], s["end"], s["type"]) if typed else (s["start"], s["end"]) for s in spans or []}


def _prf(correct: float, predicted: int, gold: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_metrics(gold: Sequence[Any], predicted: Sequence[Any], types: Sequence[str]) -> dict[str, Any]:
    """Strict (same boundaries and type) and partial (overlap, type ignored, a partial overlap counts 1/2;
    the SemEval-2013 'partial' scheme) span precision/recall/F1, micro and per type, and macro over types.
    A failed row (predicted None) predicts nothing."""
    n_gold = n_pred = 0
    strict = 0
    partial = 0.0
    per_type = {t: {"tp": 0, "pred": 0, "gold": 0} for t in types}
    for g, p in zip(gold, predicted):
        g, p = list(g or []), list(p or [])
        n_gold += len(g)
        n_pred += len(p)
        gold_keys = _keys(g, True)
        for span in p:
            if span["type"] in per_type:
                per_type[span["type"]]["pred"] += 1
            if (span["start"], span["end"], span["type"]) in gold_keys:
                strict += 1
                if span["type"] in per_type:
                    per_type[span["type"]]["tp"] += 1
        for span in g:
            if span["type"] in per_type:
                per_type[span["type"]]["gold"] += 1
        used: set[int] = set()
        for span in p:  # partial: best unused gold span overlapping this one
            best = 0.0
            best_j = -1
            for j, other in enumerate(g):
                if j in used or not (span["start"] < other["end"] and other["start"] < span["end"]):
                    continue
                score = 1.0 if (span["start"], span["end"]) == (other["start"], other["end"]) else 0.5
                if score > best:
                    best, best_j = score, j
            if best_j >= 0:
                used.add(best_j)
                partial += best
    strict_prf = _prf(strict, n_pred, n_gold)
    partial_prf = _prf(partial, n_pred, n_gold)
    types_out = {}
    for kind, c in per_type.items():
        types_out[kind] = {**_prf(c["tp"], c["pred"], c["gold"]), "support": c["gold"], "predicted": c["pred"]}
    present = [v["f1"] for v in types_out.values() if v["support"] or v["predicted"]]
    return {
        "f1_strict": strict_prf["f1"],
        "precision_strict": strict_prf["precision"],
        "recall_strict": strict_prf["recall"],
        "f1_partial": partial_prf["f1"],
        "precision_partial": partial_prf["precision"],
        "recall_partial": partial_prf["recall"],
        "macro_f1_strict": float(np.mean(present)) if present else 0.0,
        "gold_spans": n_gold,
        "predicted_spans": n_pred,
        "per_type": types_out,
    }
