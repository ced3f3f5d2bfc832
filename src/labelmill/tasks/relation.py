"""Relations between entities.

`relation`: a row holds a text and two marked spans, e1 and e2. The answer is one label of a closed set:
each relation type in both directions, `Type(e1,e2)` and `Type(e2,e1)` (or the type alone when
`relation.directed` is false), or the none label. It is scored like classification, so it never fails to
parse and its distribution is its confidence.

`relations`: end to end. The model lists the entities with the NER task's prompt, parser and alignment;
then for every ordered pair of found entities and every relation type whose entity-type constraints allow
it (`relation.types[].head` / `tail`), one scored yes/no question: does the sentence state it (the type's
description with {head} and {tail} filled in)? A pair gets the type with the highest P(yes) when that
reaches `relation.threshold`. (Yes/no answers are one token each; scoring multi-token type names against
"none" favours the short answer, and the 0.5B model then never names a relation.) So every
relation links two spans that occur in the text; a mention the model wrote that occurs nowhere is reported
under `unaligned` and never becomes an entity or a relation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from labelmill.config import Strict
from labelmill.errors import InputDataError
from labelmill.numeric.confidence import label_distribution
from labelmill.registry import Section
from labelmill.tasks.base import RowInput, is_missing, load_structured, normalise
from labelmill.tasks.classification import ClassificationTask, classification_metrics, guidelines_with_labels
from labelmill.tasks.ner import NerTask, span_metrics, spans_to_bio
from labelmill.tasks.spans import occurrences
from labelmill.types import Label, Outcome, Prompt

if TYPE_CHECKING:
    from labelmill.config import Config


class RelationTypeSpec(Strict):
    """One relation type, with the entity types it may link (relations task: pairs of other types are never asked)."""

    name: str = Field(description="The relation as it appears in the output and the gold column.")
    description: str | None = Field(None, description="What the relation means, head to tail; shown to the model.")
    head: list[str] = Field(default_factory=list, description="relations: entity types allowed as the head (empty: any).")
    tail: list[str] = Field(default_factory=list, description="relations: entity types allowed as the tail (empty: any).")

class RelationSpec(Strict):
    """Relations between entities: a marked pair (task relation) or extracted end to end (task relations)."""

    types: list[RelationTypeSpec] = Field(default_factory=list, description="The relation types.")
    directed: bool = Field(True, description="relation: each type is a label in both directions, Type(e1,e2) and Type(e2,e1).")
    none_label: str = Field("Other", description="relation: the label for a pair with none of the relations.")
    text_column: str = Field("text", description="Column with the sentence.")
    head_column: str = Field("e1", description="relation: column with the first marked span: {start, end, text}, its JSON, or its text.")
    tail_column: str = Field("e2", description="relation: column with the second marked span.")
    entities_column: str = Field("entities", description="relations: gold entities [{start, end, type, text}] (eval and few-shot examples).")
    relations_column: str = Field("relations", description="relations: gold relations [{head, tail, type}], head/tail indexing the entities.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="relations: a pair gets its most likely relation when that relation's probability is at least this.")
    max_pairs: int = Field(40, ge=1, description="relations: the most candidate pairs asked per row (nearest pairs first).")
    pair_demos: int = Field(8, ge=0, description="relations: pair questions from the few-shot examples shown before each pair (half with a relation).")


SECTION = Section("relation", RelationSpec, owner="task relation and relations", fingerprint="always")


_DIRECTED = re.compile(r"^(?P<type>.+)\((?P<a>e[12]),(?P<b>e[12])\)$")
_MARK = re.compile(r"<(/?)(e[12])>")
NONE = "none"


# ----------------------------------------------------------------------------------------------
# marked pairs


def read_span(value: Any, text: str, column: str) -> dict[str, Any]:
    """A span cell as {start, end, text}: a dict with offsets, its JSON, or the span's text (its first
    occurrence). Offsets must lie inside the text; a text that does not occur is an error."""
    data = load_structured(value) if isinstance(value, str) else value
    if isinstance(data, Mapping) and "start" in data and "end" in data:
        start, end = int(data["start"]), int(data["end"])
        if not 0 <= start < end <= len(text):
            raise ValueError(f"column {column!r}: span {start}-{end} is outside the text ({len(text)} characters)")
        return {"start": start, "end": end, "text": text[start:end]}
    if isinstance(data, Mapping) and "text" in data:
        data = data["text"]
    if isinstance(data, str) and data.strip():
        found = occurrences(text, data.strip())
        if not found:
            raise ValueError(f"column {column!r}: {data.strip()[:60]!r} does not occur in the text")
        start, end = found[0]
        return {"start": start, "end": end, "text": text[start:end]}
    raise ValueError(f"column {column!r}: no span (give {{start, end}} offsets or the span's text)")


def mark(text: str, e1: Mapping[str, Any], e2: Mapping[str, Any]) -> str:
    """The text with <e1>..</e1> and <e2>..</e2> around the two spans (which must not overlap)."""
    if e1["start"] < e2["end"] and e2["start"] < e1["end"]:
        raise ValueError(f"the two marked spans overlap ({e1['text']!r}, {e2['text']!r})")
    inserts = sorted([(e1["start"], "<e1>"), (e1["end"], "</e1>"), (e2["start"], "<e2>"), (e2["end"], "</e2>")], key=lambda x: (x[0], x[1].startswith("<e")))
    out, cursor = [], 0
    for at, tag in inserts:
        out += [text[cursor:at], tag]
        cursor = at
    out.append(text[cursor:])
    return "".join(out)


def marked_texts(marked: str) -> tuple[str, str]:
    """The texts of e1 and e2 in an already marked text."""
    found = {}
    for name in ("e1", "e2"):
        m = re.search(f"<{name}>(.*?)</{name}>", marked, re.S)
        if not m:
            raise ValueError(f"the text has no <{name}>...</{name}> marks")
        found[name] = m.group(1)
    return found["e1"], found["e2"]


def unmark(marked: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A text marked <e1>..</e1> and <e2>..</e2> as (the plain text, e1's span, e2's span), offsets into
    the plain text."""
    plain, at, spans, opened = [], 0, {}, {}
    cursor = 0
    for m in _MARK.finditer(marked):
        plain.append(marked[cursor:m.start()])
        at += m.start() - cursor
        cursor = m.end()
        if m.group(1):
            if m.group(2) in opened:
                spans[m.group(2)] = (opened.pop(m.group(2)), at)
        else:
            opened[m.group(2)] = at
    plain.append(marked[cursor:])
    text = "".join(plain)
    if set(spans) != {"e1", "e2"}:
        raise ValueError("the text has no <e1>...</e1> and <e2>...</e2> marks")
    return text, *({"start": a, "end": b, "text": text[a:b]} for a, b in (spans["e1"], spans["e2"]))


def _row_text(row: Mapping[str, Any], text_column: str) -> str:
    text = row.get(text_column)
    return "" if is_missing(text) else str(text)


def _unusable(exc: ValueError, text: str, text_column: str, e1_column: str, e2_column: str) -> InputDataError:
    return InputDataError(f"a row's marked pair is unusable: {exc} (text: {text[:80]!r})",
                          fix=f"give {e1_column} and {e2_column} as {{start, end}} offsets or texts that occur in {text_column}")


def row_pair(row: Mapping[str, Any], text_column: str, e1_column: str, e2_column: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A row's plain text and its two spans (offsets into that text): from <e1>/<e2> marks in the text, or from
    the two span columns. InputDataError, naming the columns, when they do not make a pair."""
    text = _row_text(row, text_column)
    try:
        if _MARK.search(text):
            return unmark(text)
        return text, read_span(row.get(e1_column), text, e1_column), read_span(row.get(e2_column), text, e2_column)
    except ValueError as exc:
        raise _unusable(exc, text, text_column, e1_column, e2_column) from None


def shown_pair(row: Mapping[str, Any], text_column: str, e1_column: str, e2_column: str) -> str:
    """A row as a marked pair is shown: the text with <e1>..</e1> and <e2>..</e2> (kept as they are when the
    text is marked already), then a line naming each span."""
    text = _row_text(row, text_column)
    if _MARK.search(text):
        return pair_input(text, *marked_texts(text))
    plain, e1, e2 = row_pair(row, text_column, e1_column, e2_column)
    try:
        return pair_input(mark(plain, e1, e2), e1["text"], e2["text"])
    except ValueError as exc:
        raise _unusable(exc, plain, text_column, e1_column, e2_column) from None


def split_label(label: str) -> tuple[str, bool] | None:
    """'Type(e2,e1)' as ('Type', True): the type and whether e2 is its head; 'Type' as ('Type', False);
    None for an empty label."""
    if not label:
        return None
    m = _DIRECTED.match(label)
    return (m.group("type"), m.group("a") == "e2") if m else (label, False)


def pair_input(marked: str, e1: str, e2: str) -> str:
    return f"{marked}\ne1: {e1}\ne2: {e2}"


def relation_labels(config: Config) -> list[str]:
    spec = config.relation
    labels = []
    for kind in spec.types:
        labels += [f"{kind.name}(e1,e2)", f"{kind.name}(e2,e1)"] if spec.directed else [kind.name]
    return labels + [spec.none_label]


def official_macro_f1(gold: Sequence[Any], predicted: Sequence[Any], none_label: str) -> dict[str, Any]:
    """SemEval-2010 Task 8's official score: for each relation type (directions merged, the none label
    left out), precision = predictions right in type and direction / predictions of that type, recall =
    the same / gold rows of that type; macro-F1 over the types. A failed row predicts nothing."""

    def kind(label: Any) -> str | None:
        if label is None or label == none_label:
            return None
        m = _DIRECTED.match(str(label))
        return m.group("type") if m else str(label)

    types = sorted({k for k in map(kind, gold) if k} | {k for k in map(kind, predicted) if k})
    per_type, f1s = {}, []
    for t in types:
        right = sum(1 for g, p in zip(gold, predicted) if p is not None and g == p and kind(g) == t)
        n_pred = sum(1 for p in predicted if kind(p) == t)
        n_gold = sum(1 for g in gold if kind(g) == t)
        precision = right / n_pred if n_pred else 0.0
        recall = right / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_type[t] = {"precision": precision, "recall": recall, "f1": f1, "support": n_gold}
        f1s.append(f1)
    return {"official_macro_f1": float(np.mean(f1s)) if f1s else 0.0, "official_per_type": per_type}


class RelationTask(ClassificationTask):
    """The relation between two marked spans of a text, from a closed set of relation × direction labels."""

    @classmethod
    def configure(cls, config: Config) -> None:
        from labelmill.config import LabelSpec

        spec = config.relation
        if not config.labels:
            if not spec.types:
                raise ValueError("relation.types: give the relation types (or the full label set under labels)")
            descriptions = {k.name: k.description for k in spec.types}
            config.labels = []
            for name in relation_labels(config):
                m = _DIRECTED.match(name)
                base = m.group("type") if m else name
                text = descriptions.get(base)
                if m and text and "{head}" in text:  # written with {head} and {tail}: filled in per direction
                    text = text.replace("{head}", m.group("a")).replace("{tail}", m.group("b"))
                elif m and text:
                    text = f"{text} ({m.group('a')} is the first argument, {m.group('b')} the second)"
                elif name == spec.none_label:
                    text = "none of the relations above holds between e1 and e2"
                config.labels.append(LabelSpec(name=name, description=text))
        if len(config.labels) < 2:
            raise ValueError("labels: a relation task needs at least two labels")

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        return "{" + config.relation.text_column + "}"

    default_guidelines = (
        "Classify the semantic relation between the two marked nominals of the sentence: e1, marked <e1>...</e1>, "
        "and e2, marked <e2>...</e2>. Type(e1,e2) means e1 fills the first role of Type and e2 the second; "
        "Type(e2,e1) the reverse."
    )

    def required_columns(self) -> list[str]:
        spec = self.config.relation
        return [spec.text_column] + [c for c in (spec.head_column, spec.tail_column) if c]

    def render(self, row: Mapping[str, Any]) -> str:
        spec = self.config.relation
        return shown_pair(row, spec.text_column, spec.head_column, spec.tail_column)

    def pair(self, row: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The row's plain text and its two spans (offsets into that text), however the row marks them."""
        spec = self.config.relation
        return row_pair(row, spec.text_column, spec.head_column, spec.tail_column)

    def system_prompt(self) -> str:
        return guidelines_with_labels(self.config, self.default_guidelines) + "\n\nAnswer with the label only."

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        out = classification_metrics(gold, predicted, self.labels)
        out.update(official_macro_f1(gold, predicted, self.config.relation.none_label))
        return out


# ----------------------------------------------------------------------------------------------
# end to end


def _typed(span: Mapping[str, Any]) -> tuple[int, int, str]:
    return int(span["start"]), int(span["end"]), str(span["type"])


def relation_keys(value: Any, typed: bool = True) -> set[tuple]:
    """(head span, tail span, type) keys of a parsed relations value; entity types in the keys when `typed`."""
    keys = set()
    if not value:
        return keys
    entities = value.get("entities") or []
    for r in value.get("relations") or []:
        try:
            head, tail = entities[int(r["head"])], entities[int(r["tail"])]
        except (IndexError, KeyError, TypeError, ValueError):
            continue
        h, t = _typed(head), _typed(tail)
        keys.add((h if typed else h[:2], t if typed else t[:2], str(r["type"])))
    return keys


class RelationsTask(NerTask):
    """Entities (the NER prompt and alignment), then a scored relation question for each allowed pair."""

    asks_followups = True
    default_guidelines = NerTask.default_guidelines
    pair_guidelines = (
        "Read the sentence and answer the question about two of its entities, e1 (marked <e1>...</e1>) and e2 "
        "(marked <e2>...</e2>). Answer yes only when the sentence itself states it; answer yes or no."
    )

    @classmethod
    def configure(cls, config: Config) -> None:
        NerTask.configure(config)
        if not config.relation.types:
            raise ValueError("relation.types: give at least one relation type for the relations task")
        known = set(config.label_names)
        for kind in config.relation.types:
            unknown = [t for t in kind.head + kind.tail if t not in known]
            if unknown:
                raise ValueError(f"relation.types: {kind.name} names entity type {unknown[0]!r}, which is not in labels ({', '.join(sorted(known))})")
            if normalise(kind.name) == NONE:
                raise ValueError("relation.types: 'none' is the answer for no relation; give the type another name")

    def __init__(self, config):
        super().__init__(config)
        self.spec = config.relation
        self.types = list(config.relation.types)
        self._pair_system = self.pair_guidelines
        self._pair_turns = self._pair_demos()

    # pairs ---------------------------------------------------------------------------------------
    def allowed(self, head_type: str, tail_type: str) -> list[str]:
        return [k.name for k in self.types if (not k.head or head_type in k.head) and (not k.tail or tail_type in k.tail)]

    def pairs(self, entities: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, list[str]]]:
        """Ordered pairs of distinct, non-overlapping entities with at least one allowed type, nearest first."""
        out = []
        for i, a in enumerate(entities):
            for j, b in enumerate(entities):
                if i == j or (a["start"] < b["end"] and b["start"] < a["end"]):
                    continue
                kinds = self.allowed(str(a["type"]), str(b["type"]))
                if kinds:
                    out.append((i, j, kinds))
        out.sort(key=lambda p: (abs(entities[p[0]]["start"] - entities[p[1]]["start"]), p[0], p[1]))
        return out[: self.spec.max_pairs]

    def statement(self, kind: str, head: Mapping[str, Any], tail: Mapping[str, Any]) -> str:
        """What a relation type claims about a pair, in words: its description with {head} and {tail} filled
        in, or the type's name."""
        spec = next(k for k in self.types if k.name == kind)
        if spec.description and "{head}" in spec.description:
            return spec.description.replace("{head}", str(head["text"])).replace("{tail}", str(tail["text"]))
        described = f" ({spec.description})" if spec.description else ""
        return f"{head['text']} is {kind} {tail['text']}{described}"

    def pair_question(self, text: str, head: Mapping[str, Any], tail: Mapping[str, Any], kind: str) -> str:
        """One yes/no question: does the sentence state this relation from head (e1) to tail (e2)?"""
        return f"{mark(text, head, tail)}\nQuestion: does the sentence state that {self.statement(kind, head, tail)}?"

    def _pair_demos(self) -> tuple[tuple[str, str], ...]:
        """Pair questions from the few-shot examples, alternating a stated relation (yes) and an unstated one (no)."""
        if self.spec.pair_demos == 0 or self.config.examples.k == 0:
            return ()
        from labelmill.selectors.pickers import load_examples

        positives, negatives = [], []
        for item in load_examples(self.config):
            gold = self.example_gold(item, "")
            text = self.render(item)
            entities = gold["entities"]
            related = {(h[:2], t[:2]): kind for h, t, kind in relation_keys(gold)}
            for i, j, kinds in self.pairs(entities):
                key = ((entities[i]["start"], entities[i]["end"]), (entities[j]["start"], entities[j]["end"]))
                for kind in kinds:
                    question = self.pair_question(text, entities[i], entities[j], kind)
                    (positives if related.get(key) == kind else negatives).append((question, "yes" if related.get(key) == kind else "no"))
        turns: list[tuple[str, str]] = []
        half = self.spec.pair_demos // 2
        for pos, neg in zip(positives[:half], negatives[: self.spec.pair_demos - half]):
            turns += [pos, neg]
        return tuple(turns)

    def _questions(self, entities: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str]]:
        return [(i, j, kind) for i, j, kinds in self.pairs(entities) for kind in kinds]

    def followups(self, row: RowInput, label: Label) -> list[tuple[Prompt, tuple[str, ...]]]:
        entities = label.value.get("spans", []) if isinstance(label.value, dict) else []
        return [
            (Prompt(self._pair_system, self._pair_turns, self.pair_question(row.text, entities[i], entities[j], kind)), ("yes", "no"))
            for i, j, kind in self._questions(entities)
        ]

    def apply_followups(self, row: RowInput, label: Label, answers: list[list[float]]) -> Outcome:
        value = dict(label.value)
        entities = value.pop("spans", [])
        best: dict[tuple[int, int], tuple[float, str]] = {}
        questions = self._questions(entities)
        for (i, j, kind), logprobs in zip(questions, answers):
            p_yes = float(label_distribution(logprobs)[0])
            if p_yes >= self.spec.threshold and p_yes > best.get((i, j), (-1.0, ""))[0]:
                best[i, j] = (p_yes, kind)  # a pair holds at most one relation: its likeliest stated type
        relations = [{"head": i, "tail": j, "type": kind, "confidence": p, "head_text": entities[i]["text"], "tail_text": entities[j]["text"]}
                     for (i, j), (p, kind) in sorted(best.items())]
        confidences = [s.get("confidence") for s in entities if s.get("confidence") is not None] + [r["confidence"] for r in relations]
        signals = {**(label.signals or {}), "pairs": float(len({(i, j) for i, j, _ in questions})), "relations": float(len(relations))}
        return Label(value={"entities": entities, "relations": relations, **value},
                     confidence=float(min(confidences)) if confidences else label.confidence, signals=signals)

    # output, gold and metrics ----------------------------------------------------------------------
    def output_value(self, label: Label) -> Any:
        value = label.value if isinstance(label.value, dict) else {}
        return {"entities": value.get("entities", value.get("spans", [])), "relations": value.get("relations", [])}

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        value = value if isinstance(value, dict) else {}
        entities = value.get("entities", [])
        tokens = record.get(self.config.ner.tokens_column) if self.config.ner.tokens_column else None
        tokens = load_structured(tokens) if not is_missing(tokens) else None
        out: dict[str, Any] = {"tags": " ".join(spans_to_bio(self.render(record), entities, tokens if isinstance(tokens, list) else None))}
        out["triples"] = [[r["head_text"], r["type"], r["tail_text"]] for r in value.get("relations", [])]
        if value.get("unaligned"):
            out["unaligned"] = value["unaligned"]
        return out

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        return super().demo_answer(gold["entities"] if isinstance(gold, dict) else gold, row)

    def check_demo(self, number: int, gold: Any) -> None:
        super().check_demo(number, gold["entities"] if isinstance(gold, dict) else gold)

    def example_gold_columns(self, label_column: str) -> list[str]:
        return [self.spec.entities_column, self.spec.relations_column]

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.gold(item)

    def gold_columns(self) -> list[str]:
        return [self.spec.entities_column, self.spec.relations_column]

    def gold(self, record: Mapping[str, Any]) -> Any:
        entities = record.get(self.spec.entities_column)
        if not isinstance(entities, (list, np.ndarray)) and is_missing(entities):
            return None
        relations = record.get(self.spec.relations_column)
        relations = [] if not isinstance(relations, (list, np.ndarray)) and is_missing(relations) else load_structured(relations)
        return self.parse_gold({"entities": load_structured(entities), "relations": relations})

    def parse_gold(self, value: Any) -> Any:
        if not isinstance(value, (dict, list, np.ndarray)) and is_missing(value):
            return None
        data = load_structured(value) if isinstance(value, str) else value
        if not isinstance(data, dict):
            return None
        raw = list(data.get("entities") or [])
        entities = []
        for item in raw:
            kind = item.get("type", item.get("label"))
            entities.append({"type": self.type_by_norm.get(normalise(str(kind)), str(kind)), "start": int(item["start"]), "end": int(item["end"]), "text": item.get("text", "")})
        order = sorted(range(len(entities)), key=lambda i: (entities[i]["start"], entities[i]["end"]))
        where = {old: new for new, old in enumerate(order)}
        relations = []
        for r in data.get("relations") or []:
            try:
                rel = {"head": where[int(r["head"])], "tail": where[int(r["tail"])], "type": str(r["type"])}
            except (KeyError, TypeError, ValueError):
                continue
            if r.get("confidence") is not None:
                rel["confidence"] = float(r["confidence"])
            relations.append(rel)
        return {"entities": [entities[i] for i in order], "relations": relations}

    def parse_output(self, value: Any) -> Any:
        return self.parse_gold(value)

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        if predicted is None or gold is None:
            return False
        return relation_keys(gold) == relation_keys(predicted) and {_typed(s) for s in gold["entities"]} == {_typed(s) for s in predicted["entities"]}

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        n = len(gold)
        entity = span_metrics([(g or {}).get("entities", []) for g in gold], [(p or {}).get("entities", []) if p else None for p in predicted], self.labels)
        tp = n_pred = n_gold = tp_loose = 0
        kinds = [k.name for k in self.types]
        per = {k: {"tp": 0, "pred": 0, "gold": 0} for k in kinds}
        scored: list[tuple[float, bool]] = []  # (confidence, right) of every predicted relation
        for g, p in zip(gold, predicted):
            gk, pk = relation_keys(g), relation_keys(p)
            loose = relation_keys(g, typed=False)
            n_gold += len(gk)
            n_pred += len(pk)
            tp += len(gk & pk)
            tp_loose += sum(1 for h, t, r in pk if (h[:2], t[:2], r) in loose)
            for key in gk:
                per.setdefault(key[2], {"tp": 0, "pred": 0, "gold": 0})["gold"] += 1
            for key in pk:
                per.setdefault(key[2], {"tp": 0, "pred": 0, "gold": 0})["pred"] += 1
                per[key[2]]["tp"] += key in gk
            if p:
                for r in p.get("relations", []):
                    keys = relation_keys({"entities": p["entities"], "relations": [r]})
                    scored.append((float(r.get("confidence", 1.0)), bool(keys and keys <= gk)))

        def prf(right: int, predicted_n: int, gold_n: int) -> dict[str, float]:
            precision = right / predicted_n if predicted_n else 0.0
            recall = right / gold_n if gold_n else 0.0
            return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}

        strict = prf(tp, n_pred, n_gold)
        thresholds = []
        for t in (0.5, 0.6, 0.7, 0.8, 0.9):
            kept = [right for c, right in scored if c >= t]
            thresholds.append({"threshold": t, "relations_kept": len(kept), **prf(sum(kept), len(kept), n_gold)})
        completed = sum(p is not None for p in predicted)
        return {
            "n_rows": n,
            "completion_rate": completed / n if n else 0.0,
            "accuracy": sum(self.is_correct(g, p) for g, p in zip(gold, predicted)) / n if n else 0.0,
            "relation_f1_strict": strict["f1"], "relation_precision_strict": strict["precision"], "relation_recall_strict": strict["recall"],
            "relation_f1_boundaries": prf(tp_loose, n_pred, n_gold)["f1"],
            "gold_relations": n_gold, "predicted_relations": n_pred,
            "per_relation": {k: {**prf(c["tp"], c["pred"], c["gold"]), "support": c["gold"]} for k, c in per.items()},
            "relation_thresholds": thresholds,
            "entity_f1": entity["f1_strict"], "entity_precision": entity["precision_strict"], "entity_recall": entity["recall_strict"],
            "entity_per_type": entity["per_type"],
        }


def triples(value: Any) -> list[dict[str, Any]]:
    """A relations value as JSON-ready triples: head and tail with their offsets and types, the relation and its confidence."""
    value = value or {}
    entities = value.get("entities") or []
    out = []
    for r in value.get("relations") or []:
        head, tail = entities[int(r["head"])], entities[int(r["tail"])]
        out.append({"head": {k: head[k] for k in ("start", "end", "type", "text") if k in head}, "relation": r["type"],
                    "tail": {k: tail[k] for k in ("start", "end", "type", "text") if k in tail}, "confidence": r.get("confidence")})
    return out


__all__ = ["RelationTask", "RelationsTask", "mark", "row_pair", "shown_pair", "official_macro_f1", "read_span", "relation_keys", "split_label", "triples", "unmark"]
