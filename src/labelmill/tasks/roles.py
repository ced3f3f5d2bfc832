"""Semantic roles: the arguments of a predicate, as character spans of the sentence with PropBank roles.

A row holds a sentence and a predicate (`roles.predicate_column`: {start, end, text, lemma}, its JSON, or its
text). The prompt shows the sentence with the predicate marked <pred>...</pred>; the model writes one
argument per line as `ROLE: phrase`. Every phrase is aligned to the sentence (exactly, then ignoring case,
then ignoring whitespace: the NER alignment), at the occurrence nearest the predicate that overlaps neither
the predicate nor another argument; a phrase that occurs nowhere is reported under `unaligned` and never
becomes an argument. So every argument's text is `sentence[start:end]`. A role outside the closed set (the
config's labels, default PropBank's core and modifier roles) is skipped, not guessed. Each argument's
confidence is the probability the model gave the tokens of its line.

A row without a predicate: the model finds the predicates first, writing `PREDICATE: word` before each
predicate's argument lines; the output is then a list of frames.

Frame files (`roles.frames`, optional): PropBank's frame XML files, or a YAML/JSON file {roleset: {name, roles:
{ARG0: description}}}. The prompt then names the rolesets of the predicate's lemma with their own roles
("give.01: ARG0 = giver ..."), and with `roles.senses` the roleset is chosen by a scored question.

Eval is CoNLL-2005's: an argument is right when its span and role are both exact (the predicate itself is
not an argument); micro precision/recall/F1 and per role. Head-word F1 is the lenient form: an argument is
right when its role matches and its head word is the gold argument's (heads by the rule in `head_token`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from labelmill.config import Strict
from labelmill.errors import ConfigError, InputDataError
from labelmill.numeric.confidence import label_distribution, mean_token_prob
from labelmill.registry import Section
from labelmill.tasks.base import RowInput, Task, is_missing, load_structured, normalise, unfenced
from labelmill.tasks.classification import guidelines_with_labels
from labelmill.tasks.ner import line_confidences
from labelmill.tasks.spans import occurrences
from labelmill.types import Generation, Label, Outcome, ParseFailure, Prompt

if TYPE_CHECKING:
    from labelmill.config import Config


class RolesSpec(Strict):
    """Semantic roles: the arguments of a predicate as spans of the sentence, with PropBank-style roles."""

    text_column: str = Field("text", description="Column with the sentence.")
    predicate_column: str | None = Field(
        "predicate", description="Column with the predicate: {start, end, text, lemma, sense}, its JSON, or its text. An empty cell "
        "(or no such column): the model finds the predicates first, then their arguments.",
    )
    arguments_column: str = Field("arguments", description="Gold arguments [{start, end, role, text}] (eval and few-shot examples).")
    tokens_column: str | None = Field("tokens", description="Column with the sentence's tokens, used by the rules (else words split off punctuation and clitics).")
    rules: Literal["off", "fill", "first"] = Field(
        "off", description="Word-order rules beside the model (no parser): fill = the model's arguments, plus the rules' where the model "
        "placed none over them; first = the rules' arguments, plus the model's where the rules placed none; off = the model's alone.",
    )
    frames: str | None = Field(
        None, description="Optional frame files, relative to the config: a PropBank frames directory (XML) or a YAML/JSON file "
        "{roleset: {name, roles: {ARG0: giver, ...}}}; the prompt then names each roleset's own roles.",
    )
    check: bool = Field(
        False, description="Ask a scored question per argument: its role among the labels, or none (the argument is dropped); "
        "the argument's confidence is then that role's probability (else the probability the model gave the argument's line). "
        "Off by default: on the embedded 0.5B it lowered head F1 (bench/README, roles).",
    )
    senses: bool = Field(False, description="Also choose the predicate's roleset (sense) among the frames' rolesets for its lemma (scored).")
    max_predicates: int = Field(8, ge=1, description="Without a marked predicate: the most predicates kept per sentence.")


SECTION = Section("roles", RolesSpec, owner="task roles", fingerprint="unless_default")


#: PropBank's roles with what they mean; the default closed set (R-/C- roles are asked for only when a config lists them)
PROPBANK_ROLES = (
    ("ARG0", "the agent: who does, causes or experiences it"),
    ("ARG1", "the patient or theme: what it is done to, or what it is about"),
    ("ARG2", "the instrument, benefactive, attribute or end state (depends on the verb)"),
    ("ARG3", "the starting point, benefactive or attribute (depends on the verb)"),
    ("ARG4", "the ending point"),
    ("ARGM-TMP", "when"),
    ("ARGM-LOC", "where"),
    ("ARGM-MNR", "how, in what manner"),
    ("ARGM-NEG", "a negation: not, n't, never"),
    ("ARGM-MOD", "a modal verb: can, will, would, should, must, may"),
    ("ARGM-ADV", "a general adverbial: a condition, a concession, a time clause not about when"),
    ("ARGM-DIS", "a discourse connective: but, and, so, however, also"),
    ("ARGM-CAU", "the cause: why"),
    ("ARGM-PRP", "the purpose: what for"),
    ("ARGM-DIR", "the direction: to or from where"),
    ("ARGM-EXT", "the extent or amount"),
    ("ARGM-ADJ", "an adjective modifying a noun predicate"),
    ("ARGM-PRD", "a secondary predicate about another argument"),
    ("ARGM-GOL", "the goal or recipient"),
    ("ARGM-COM", "with whom"),
)

_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*(?P<role>[A-Za-z][A-Za-z0-9-]*)\s*[:=]\s*(?P<text>.*?)\s*$")
_AFTER = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*(?P<text>.+?)\s*[(\[](?P<role>[A-Za-z][A-Za-z0-9-]*)[)\]]\s*$")
_PREDICATE_KEYS = {"predicate", "pred", "verb", "v", "rel"}
_NONE = {"none", "no arguments", "nothing", "n/a", "no argument"}
_ROLE_ALIAS = re.compile(r"^(?P<prefix>[rc]-)?(?:arg|a)(?P<rest>m?-?[a-z]+|[0-9])$")


def role_name(raw: str, known: Mapping[str, str]) -> str | None:
    """The role of the closed set a written role names: exactly, or in PropBank's short forms
    (A0 -> ARG0, AM-TMP / ARGM_TMP / argm tmp -> ARGM-TMP); None when it names none."""
    key = raw.strip().strip("*`'\"").upper().replace("_", "-").replace(" ", "-")
    if key in known:
        return known[key]
    m = _ROLE_ALIAS.match(key.lower())
    if m:
        rest = m.group("rest").upper().lstrip("-")
        if rest.startswith("M") and not rest[1:2].isdigit() and len(rest) > 1:
            rest = "M-" + rest[1:].lstrip("-")
        name = ((m.group("prefix") or "").upper()) + "ARG" + rest
        return known.get(name)
    return None


def parse_frames(text: str, roles: Mapping[str, str]) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """[{predicate: word or None, arguments: [(role, phrase, line)]}] from an answer, and the lines that gave
    nothing. `None` when the answer is neither 'none' nor has a single role line."""
    body = unfenced(text)
    if normalise(body) in _NONE:
        return [], []
    frames: list[dict[str, Any]] = [{"predicate": None, "arguments": []}]
    unparsed: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line or normalise(line) in _NONE:
            continue
        m = _LINE.match(line)
        if m and normalise(m.group("role")) in _PREDICATE_KEYS:
            frames.append({"predicate": m.group("text").strip().strip("\"'`*"), "arguments": []})
            continue
        found = None
        for pattern in (_LINE, _AFTER):
            m = pattern.match(line)
            if m:
                role = role_name(m.group("role"), roles)
                phrase = m.group("text").strip().strip("\"'“”‘’`*").strip()
                if role and phrase:
                    found = (role, phrase, raw)
                    break
                if role and normalise(phrase) in _NONE | {""}:
                    found = ()
                    break
        if found is None:
            unparsed.append(line)
        elif found:
            frames[-1]["arguments"].append(found)
    kept = [f for f in frames if f["predicate"] is not None or f["arguments"]]
    if not kept and unparsed:
        return None, unparsed
    return kept, unparsed


def align_arguments(sentence: str, predicate: Mapping[str, Any] | None, arguments: Sequence[tuple[str, str, float | None]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Argument spans for (role, phrase, confidence): each phrase at its occurrence nearest the predicate that
    overlaps neither the predicate nor an argument already placed (in the order written); phrases that occur
    nowhere (or only over the predicate) come back as unaligned."""
    taken = np.zeros(len(sentence) + 1, dtype=bool)
    if predicate is not None:
        taken[predicate["start"]:predicate["end"]] = True
    anchor = (predicate["start"] + predicate["end"]) / 2 if predicate is not None else 0.0
    spans, unaligned = [], []
    for role, phrase, confidence in arguments:
        hits = [(s, e) for s, e in occurrences(sentence, phrase) if not taken[s:e].any()]
        if not hits:
            unaligned.append({"role": role, "text": phrase})
            continue
        start, end = min(hits, key=lambda h: (min(abs(h[0] - anchor), abs(h[1] - anchor)), h[0]))
        taken[start:end] = True
        spans.append({"role": role, "start": start, "end": end, "text": sentence[start:end], "confidence": confidence})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    return spans, unaligned


# ----------------------------------------------------------------------------------------------
# heads

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|n['’]t|[^\w\s]")
_LEAD = frozenset("in on at for with from to by of about into onto because after before since while when if as than through "
                  "during without under over between like until upon within across against toward towards among".split())
_CUT = _LEAD | frozenset("that which who whom whose where and or but , ; : ( ) -- –".split())


def head_token(sentence: str, start: int, end: int) -> tuple[int, int]:
    """The head word of sentence[start:end] as character offsets, by a fixed rule (no parser): drop edge
    punctuation and a leading preposition or subordinator; cut the phrase at its first later preposition,
    relative word, conjunction or comma; the head is the last word left ('in tampa bay' -> 'bay', 'the Iguazu
    Falls on the border' -> 'Falls', 'I' -> 'I')."""
    tokens = [(m.start() + start, m.end() + start, m.group().lower()) for m in _TOKEN.finditer(sentence[start:end])]
    words = [t for t in tokens if re.match(r"\w", t[2])]
    if not words:
        return (start, end)
    while tokens and not re.match(r"\w", tokens[0][2]):
        tokens = tokens[1:]
    if len(tokens) > 1 and tokens[0][2] in _LEAD:
        tokens = tokens[1:]
    kept = [tokens[0]]
    for t in tokens[1:]:
        if t[2] in _CUT:
            break
        kept.append(t)
    words = [t for t in kept if re.match(r"\w", t[2])] or words
    return words[-1][0], words[-1][1]


# ----------------------------------------------------------------------------------------------
# rules: a syntax-free labeler of the commonest roles

_MODALS = frozenset("can could will would shall should may might must 'll 'd ca wo".split())
_NEGATIONS = frozenset(["not", "n't", "never"])
_BE = frozenset("is are was were be been being am 's 're 'm".split())
_AUXILIARIES = _BE | frozenset("have has had do does did to 've get got".split())
_TIME_WORDS = frozenset("today yesterday tomorrow now then always still already ever recently soon later again currently once often "
                        "sometimes usually".split())
_BOUNDARY = frozenset(", ; : . ? ! and but or that which who because if when while so \" ( ) where what how why - --".split())
_PREPOSITIONS = frozenset("in on at for with from by of about into to through during after before since until under over like as than without".split())
_WORDS = re.compile(r"n['’]t|\w+(?=n['’]t)|['’]\w+|\w+|[^\w\s]+")


def tokens_with_offsets(sentence: str, tokens: Sequence[str] | None = None) -> list[tuple[int, int, str]]:
    """(start, end, token) for the row's tokens where it has them, else words with clitics ('n't', ''s') apart."""
    if tokens:
        out, cursor = [], 0
        for token in tokens:
            at = sentence.find(str(token), cursor)
            if at < 0:
                return tokens_with_offsets(sentence)
            out.append((at, at + len(str(token)), str(token)))
            cursor = at + len(str(token))
        return out
    return [(m.start(), m.end(), m.group()) for m in _WORDS.finditer(sentence)]


def rule_arguments(sentence: str, predicate: Mapping[str, Any], tokens: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The arguments a few word-order rules find, with no model and no parser: modals, negations and time
    adverbs next to the predicate; the words before it back to a clause boundary as the subject (ARG0, or ARG1
    for a passive or a form of 'be'); the words after it up to a boundary or preposition as the object (ARG1,
    ARG2 after 'be' or in a passive); a following prepositional phrase ('by' in a passive: ARG0; with a time
    word: ARGM-TMP; else ARG2). What they find is what English word order says most often; eval measures it."""
    words = tokens_with_offsets(sentence, tokens)
    at = next((k for k, (a, _, _) in enumerate(words) if a >= predicate["start"]), None)
    if at is None:
        return []
    low = [w[2].lower().replace("’", "'") for w in words]
    lemma = str(predicate.get("lemma") or predicate.get("text", "")).lower()
    found: list[tuple[str, int, int]] = []
    copula, passive = lemma == "be", False
    j = at - 1
    while j >= 0 and (low[j] in _AUXILIARIES or low[j] in _MODALS or low[j] in _NEGATIONS or low[j] in _TIME_WORDS or low[j].endswith("ly")):
        if low[j] in _MODALS:
            found.append(("ARGM-MOD", j, j))
        elif low[j] in _NEGATIONS:
            found.append(("ARGM-NEG", j, j))
        elif low[j] in _TIME_WORDS:
            found.append(("ARGM-TMP", j, j))
        elif low[j] in _BE and re.search(r"(ed|en|wn|t|ne|ld|id|de|nd)$", low[at]):
            passive = True
        j -= 1
    k = j
    while k >= 0 and low[k] not in _BOUNDARY:
        k -= 1
    if j > k:
        found.append(("ARG1" if passive or copula else "ARG0", k + 1, j))
    e = at + 1
    while e < len(words) and (low[e] in _NEGATIONS or low[e] in _TIME_WORDS):
        found.append(("ARGM-NEG" if low[e] in _NEGATIONS else "ARGM-TMP", e, e))
        e += 1
    s = e
    while e < len(words) and low[e] not in _BOUNDARY and not (e > s and low[e] in _PREPOSITIONS):
        e += 1
    if e > s:
        found.append(("ARG0" if passive and low[s] == "by" else "ARG2" if copula or passive else "ARG1", s, e - 1))
        if e < len(words) and low[e] in _PREPOSITIONS:
            f = e + 1
            while f < len(words) and low[f] not in _BOUNDARY and low[f] not in _PREPOSITIONS:
                f += 1
            if f > e + 1:
                timed = any(w in _TIME_WORDS or w.isdigit() for w in low[e + 1:f])
                found.append(("ARG0" if passive and low[e] == "by" else "ARGM-TMP" if timed else "ARG2", e, f - 1))
    out = [{"role": role, "start": words[a][0], "end": words[b][1], "text": sentence[words[a][0]:words[b][1]]} for role, a, b in found]
    return sorted(out, key=lambda x: (x["start"], x["end"]))


def merge_arguments(model: Sequence[Mapping[str, Any]], rules: Sequence[Mapping[str, Any]], policy: str) -> list[dict[str, Any]]:
    """The model's and the rules' arguments together: `fill` keeps every model argument and adds the rules'
    where no model argument overlaps them; `first` the reverse. A rule's argument carries source 'rules'
    and no confidence (no model gave it one)."""
    ruled = [{**a, "source": "rules", "confidence": None} for a in rules]
    first, second = (list(model), ruled) if policy == "fill" else (ruled, list(model))
    out = [dict(a) for a in first]
    for a in second:
        if not any(a["start"] < b["end"] and b["start"] < a["end"] for b in out):
            out.append(dict(a))
    return sorted(out, key=lambda a: (a["start"], a["end"]))


# ----------------------------------------------------------------------------------------------
# frame files


def load_frame_files(path: Path) -> dict[str, dict[str, Any]]:
    """{roleset: {name, roles: {ARGn: description}}} from PropBank frame XML files (a directory or one file) or a
    YAML/JSON file of that shape."""
    import json

    import yaml

    if not path.exists():
        raise ConfigError(f"roles.frames: {path} does not exist", fix="give a PropBank frames directory or a YAML/JSON frames file, relative to the config")
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    out: dict[str, dict[str, Any]] = {}
    for file in files:
        try:
            if file.suffix.lower() == ".xml":
                out.update(_frames_from_xml(file))
                continue
            text = file.read_text(encoding="utf-8")
            data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
        except Exception as exc:  # a broken frame file is a config error, named
            raise ConfigError(f"roles.frames: cannot read {file}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"roles.frames: {file} must map rolesets (give.01) to {{name, roles}}")
        for roleset, item in data.items():
            item = item or {}
            roles = item.get("roles", item) if isinstance(item, dict) else {}
            out[str(roleset)] = {"name": str(item.get("name", "")) if isinstance(item, dict) else "",
                                 "roles": {str(k).upper(): str(v) for k, v in roles.items() if str(k).upper().startswith("ARG")}}
    return out


def _frames_from_xml(file: Path) -> dict[str, dict[str, Any]]:
    import xml.etree.ElementTree as ET

    out = {}
    for roleset in ET.parse(file).getroot().iter("roleset"):
        roles = {}
        for role in roleset.iter("role"):
            n = str(role.get("n", "")).upper()
            f = str(role.get("f", "")).upper()
            name = f"ARG{n}" if n.isdigit() else f"ARGM-{f}" if n == "M" and f else None
            if name:
                roles[name] = role.get("descr", "")
        out[str(roleset.get("id"))] = {"name": roleset.get("name", ""), "roles": roles}
    return out


def lemma_of(roleset: str) -> str:
    return roleset.rsplit(".", 1)[0]


# ----------------------------------------------------------------------------------------------
# the task


class RolesTask(Task):
    """A predicate's arguments as spans of the sentence, each with a role of the closed set."""

    default_max_tokens = 96
    default_guidelines = (
        "Label the semantic roles of the predicate marked <pred>...</pred> in the sentence: find the phrases that "
        "are its arguments and give each its role. Roles:\n{labels}\n\n"
        "Write one argument per line as: ROLE: phrase, copying the phrase exactly from the sentence. "
        "Do not include the predicate itself. If the predicate has no arguments, write none."
    )
    find_guidelines = (
        "Find the predicates (verbs) of the sentence and label their semantic roles. Roles:\n{labels}\n\n"
        "For each predicate write a line PREDICATE: verb, copied from the sentence, then one line per argument "
        "as ROLE: phrase, copying the phrase exactly. If the sentence has no predicate, write none."
    )

    @classmethod
    def configure(cls, config: Config) -> None:
        from labelmill.config import LabelSpec

        if not config.labels:
            config.labels = [LabelSpec(name=name, description=text) for name, text in PROPBANK_ROLES]
        if config.roles.senses and not config.roles.frames:
            raise ValueError("roles.senses: choosing a roleset needs roles.frames (the rolesets to choose from)")

    @classmethod
    def default_input_template(cls, config: Config) -> str:
        return "{" + config.roles.text_column + "}"

    def __init__(self, config: Config):
        super().__init__(config)
        self.spec = config.roles
        self.role_by_key = {name.upper(): name for name in self.labels}
        self.frames: dict[str, dict[str, Any]] = load_frame_files(config.base_dir / self.spec.frames) if self.spec.frames else {}
        self.by_lemma: dict[str, list[str]] = {}
        for roleset in self.frames:
            self.by_lemma.setdefault(lemma_of(roleset).lower(), []).append(roleset)
        self.asks_followups = bool(self.spec.check or (self.spec.senses and self.frames))
        self._role_turns: tuple[tuple[str, str], ...] | None = None

    # rows ------------------------------------------------------------------------------------------
    def required_columns(self) -> list[str]:
        return [self.spec.text_column]

    def sentence(self, row: Mapping[str, Any]) -> str:
        text = row.get(self.spec.text_column)
        return "" if is_missing(text) else str(text)

    def predicate(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        """The row's predicate as {start, end, text, lemma?, sense?}, or None when the row gives none."""
        column = self.spec.predicate_column
        cell = row.get(column) if column else None
        if cell is None or (not isinstance(cell, Mapping) and is_missing(cell)):
            return None
        sentence = self.sentence(row)
        data = load_structured(cell) if isinstance(cell, str) else cell
        if isinstance(data, Mapping) and "start" in data and "end" in data:
            try:
                start, end = int(data["start"]), int(data["end"])
            except (TypeError, ValueError):
                raise InputDataError(f"column {column!r}: predicate offsets {data['start']!r}, {data['end']!r} are not whole numbers",
                                     fix="give the predicate as {start, end} character offsets or a word of the sentence") from None
            if not 0 <= start < end <= len(sentence):
                raise InputDataError(f"column {column!r}: predicate span {start}-{end} is outside the sentence ({len(sentence)} characters)")
            out = {"start": start, "end": end, "text": sentence[start:end]}
        else:
            word = str(data.get("text", "") if isinstance(data, Mapping) else data).strip()
            found = occurrences(sentence, word) if word else []
            if not found:
                raise InputDataError(f"column {column!r}: predicate {word[:40]!r} does not occur in the sentence {sentence[:60]!r}",
                                     fix="give the predicate as {start, end} offsets or a word of the sentence")
            out = {"start": found[0][0], "end": found[0][1], "text": sentence[found[0][0]:found[0][1]]}
        if isinstance(data, Mapping):
            out.update({k: str(data[k]) for k in ("lemma", "sense") if not is_missing(data.get(k))})
        return out

    def tokens(self, row: Mapping[str, Any]) -> list[str] | None:
        cell = row.get(self.spec.tokens_column) if self.spec.tokens_column else None
        if cell is None or (not isinstance(cell, (list, np.ndarray)) and is_missing(cell)):
            return None
        data = load_structured(cell)
        return [str(t) for t in data] if isinstance(data, (list, np.ndarray)) else None

    def lemma(self, predicate: Mapping[str, Any]) -> str:
        return str(predicate.get("lemma") or predicate["text"]).lower()

    def display_text(self, row: Mapping[str, Any]) -> str:
        return self.sentence(row)

    def render(self, row: Mapping[str, Any]) -> str:
        sentence = self.sentence(row)
        predicate = self.predicate(row)
        if predicate is None:
            return f"Sentence: {sentence}"
        out = f"Sentence: {marked_predicate(sentence, predicate)}\nPredicate: {predicate['text']}"
        rolesets = self.by_lemma.get(self.lemma(predicate), [])[:3]
        for roleset in rolesets:  # the lemma's own roles, never the row's (gold) sense
            frame = self.frames[roleset]
            roles = "; ".join(f"{k} = {v}" for k, v in frame["roles"].items())
            out += f"\nRoleset {roleset}{' (' + frame['name'] + ')' if frame['name'] else ''}: {roles}"
        return out

    # prompt ----------------------------------------------------------------------------------------
    def system_prompt(self) -> str:
        finding = self.spec.predicate_column is None
        return guidelines_with_labels(self.config, self.find_guidelines if finding else self.default_guidelines)

    def user_message(self, row_input: str) -> str:
        if row_input.startswith("Sentence: ") and "\nPredicate: " not in row_input and self.spec.predicate_column is not None:
            return f"{row_input}\nFind each predicate: write PREDICATE: verb before its arguments."
        return row_input

    def demo_answer(self, gold: Any, row: Mapping[str, Any] | None = None) -> str:
        frames = frames_of(gold)
        lines = []
        for frame in frames:
            if len(frames) > 1 or (row is not None and self.predicate(row) is None):
                lines.append(f"PREDICATE: {frame['predicate']['text']}")
            lines += [f"{a['role']}: {a['text']}" for a in sorted(frame["arguments"], key=lambda a: a["start"]) if a["role"] in self.labels]
        return "\n".join(lines) if lines else "none"

    def example_gold_columns(self, label_column: str) -> list[str]:
        return [self.spec.arguments_column]

    def example_gold(self, item: Mapping[str, Any], label_column: str) -> Any:
        return self.gold(item)

    def check_demo(self, number: int, gold: Any) -> None:
        if gold is None:
            raise ConfigError(f"examples: example {number} has no arguments column ({self.spec.arguments_column!r})")

    def reask(self, prompt: Prompt, generation: Generation, failure: ParseFailure) -> Prompt | None:
        if failure.kind != "no_roles_parsed":
            return None
        return Prompt(system=prompt.system, turns=prompt.turns + ((prompt.user, generation.text),),
                      user="That answer does not follow the format. Write one argument per line as ROLE: phrase, "
                      f"with ROLE one of {', '.join(self.labels)}; or write none.")

    # answers ---------------------------------------------------------------------------------------
    def parse(self, generation: Generation, row: RowInput | None = None) -> Outcome:
        fields = row.fields if row is not None else {}
        parsed, unparsed = parse_frames(generation.text, self.role_by_key)
        if parsed is None:
            return ParseFailure("no_roles_parsed", generation.text, "no 'ROLE: phrase' line, and not 'none'")
        sentence = self.sentence(fields)
        given = self.predicate(fields) if fields else None
        if given is not None:  # the row's own sense (a gold cell's) is never passed off as an answer
            given.pop("sense", None)
        lines = [a[2] for f in parsed for a in f["arguments"]]
        confs = iter(line_confidences(generation, lines))
        if given is not None:  # one predicate given: every argument line is its, whatever blocks the model wrote
            parsed = [{"predicate": None, "arguments": [a for f in parsed for a in f["arguments"]]}]
        frames, unaligned, used = [], [], np.zeros(len(sentence) + 1, dtype=bool)
        for frame in parsed:
            arguments = [(role, phrase, next(confs)) for role, phrase, _ in frame["arguments"]]
            predicate = given
            if predicate is None and frame["predicate"]:
                hits = [(s, e) for s, e in occurrences(sentence, frame["predicate"]) if not used[s:e].any()]
                if hits:
                    predicate = {"start": hits[0][0], "end": hits[0][1], "text": sentence[hits[0][0]:hits[0][1]]}
                    used[predicate["start"]:predicate["end"]] = True
                else:
                    unaligned.append({"role": "V", "text": frame["predicate"]})
            if predicate is None:  # a predicate that occurs nowhere, or arguments before any PREDICATE line
                unaligned += [{"role": r, "text": p} for r, p, _ in arguments]
                continue
            spans, missed = align_arguments(sentence, predicate, arguments)
            unaligned += missed
            if self.spec.rules != "off":
                spans = merge_arguments(spans, rule_arguments(sentence, predicate, self.tokens(fields)), self.spec.rules)
            frames.append({"predicate": predicate, "arguments": spans})
        frames = frames[: self.spec.max_predicates]
        confidences = [a["confidence"] for f in frames for a in f["arguments"] if a.get("confidence") is not None]
        confidence = float(min(confidences)) if confidences else mean_token_prob(generation.token_logprobs)
        signals = {"arguments": float(sum(len(f["arguments"]) for f in frames)), "unaligned": float(len(unaligned)), "other_lines": float(len(unparsed))}
        value: dict[str, Any] = dict(frames[0]) if given is not None else {"frames": frames}
        value["unaligned"] = unaligned
        return Label(value=value, confidence=confidence, signals=signals)

    def output_value(self, label: Label) -> Any:
        value = label.value if isinstance(label.value, dict) else {}
        if "frames" in value:
            return {"frames": value["frames"]}
        return {"predicate": value.get("predicate"), "arguments": value.get("arguments", [])}

    def extra_outputs(self, value: Any, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if isinstance(value, dict) and value.get("unaligned"):
            out["unaligned"] = value["unaligned"]
        return out

    # scored follow-ups: each argument's role, then each predicate's sense ---------------------------
    NO_ROLE = "none"

    def role_question(self, sentence: str, predicate: Mapping[str, Any], phrase: str) -> str:
        return f"Sentence: {marked_predicate(sentence, predicate)}\nPredicate: {predicate['text']}\nPhrase: {phrase}\nRole of the phrase:"

    def _role_system(self) -> str:
        return guidelines_with_labels(self.config, (
            "Give the semantic role that the phrase plays for the predicate marked <pred>...</pred>. Roles:\n{labels}\n"
            f"- {self.NO_ROLE}: the phrase is not an argument of this predicate\n\nAnswer with the role only."))

    def _role_demos(self) -> tuple[tuple[str, str], ...]:
        """Role questions from the few-shot examples: their gold arguments, one per role in turn (at most 8)."""
        if not self.spec.check or self.config.examples.k == 0 or (not self.config.examples.file and not self.config.examples.items):
            return ()
        from labelmill.selectors.pickers import load_examples

        by_role: dict[str, list[tuple[str, str]]] = {}
        for item in load_examples(self.config):
            gold, sentence = self.gold(item), self.sentence(item)
            for frame in frames_of(gold):
                if frame["predicate"].get("start", -1) < 0:
                    continue
                for a in frame["arguments"]:
                    if a["role"] in self.labels:
                        by_role.setdefault(a["role"], []).append((self.role_question(sentence, frame["predicate"], sentence[a["start"]:a["end"]]), a["role"]))
        turns: list[tuple[str, str]] = []
        while len(turns) < 8 and any(by_role.values()):
            for role in sorted(by_role, key=lambda r: -len(by_role[r])):
                if by_role[role] and len(turns) < 8:
                    turns.append(by_role[role].pop(0))
        return tuple(turns)

    def sense_options(self, predicate: Mapping[str, Any]) -> list[str]:
        return self.by_lemma.get(self.lemma(predicate), []) if self.spec.senses else []

    def followups(self, row: RowInput, label: Label) -> list[tuple[Prompt, tuple[str, ...]]]:
        out = []
        sentence = self.sentence(row.fields)
        frames = frames_of(label.value)
        if self.spec.check:
            if self._role_turns is None:
                self._role_turns = self._role_demos()
            system, candidates = self._role_system(), tuple(self.labels) + (self.NO_ROLE,)
            for frame in frames:
                for a in frame["arguments"]:
                    out.append((Prompt(system, self._role_turns, self.role_question(sentence, frame["predicate"], a["text"])), candidates))
        for frame in frames:
            options = self.sense_options(frame["predicate"])
            if len(options) < 2:
                continue
            described = "\n".join(f"- {r}: {self.frames[r]['name'] or ''} ({'; '.join(f'{k} = {v}' for k, v in self.frames[r]['roles'].items())})" for r in options)
            question = f"Sentence: {sentence}\nPredicate: {frame['predicate']['text']}\nWhich sense of the predicate is meant?\n{described}"
            out.append((Prompt("Choose the roleset (sense) of the predicate. Answer with the roleset only.", (), question), tuple(options)))
        return out

    def apply_followups(self, row: RowInput, label: Label, answers: list[list[float]]) -> Outcome:
        value = dict(label.value)
        frames = [{"predicate": dict(f["predicate"]), "arguments": list(f["arguments"])} for f in frames_of(value)]
        answers_iter = iter(answers)
        dropped = []
        if self.spec.check:
            roles = list(self.labels) + [self.NO_ROLE]
            for frame in frames:
                kept = []
                for a in frame["arguments"]:
                    probs = label_distribution(next(answers_iter))
                    best = int(np.argmax(probs))
                    if roles[best] == self.NO_ROLE:
                        dropped.append({"role": a["role"], "text": a["text"], "start": a["start"], "end": a["end"], "p_none": float(probs[best])})
                        continue
                    kept.append({**a, "role": roles[best], "confidence": float(probs[best]), "written_role": a["role"]})
                frame["arguments"] = kept
        for frame in frames:
            options = self.sense_options(frame["predicate"])
            if not options:
                continue
            sense, p = options[0], 1.0
            if len(options) > 1:
                probs = label_distribution(next(answers_iter))
                sense, p = options[int(np.argmax(probs))], float(np.max(probs))
            frame["predicate"].update(sense=sense, sense_confidence=p)
        if "frames" in value:
            value["frames"] = frames
        elif frames:
            value.update(frames[0])
        if dropped:
            value["dropped"] = dropped
        confidences = [a["confidence"] for f in frames for a in f["arguments"] if a.get("confidence") is not None]
        signals = {**(label.signals or {}), "arguments": float(sum(len(f["arguments"]) for f in frames)), "dropped": float(len(dropped))}
        return Label(value=value, confidence=float(min(confidences)) if confidences else label.confidence, signals=signals)

    # gold and metrics ------------------------------------------------------------------------------
    def gold_columns(self) -> list[str]:
        return [self.spec.arguments_column]

    def gold(self, record: Mapping[str, Any]) -> Any:
        cell = record.get(self.spec.arguments_column)
        if not isinstance(cell, (list, np.ndarray)) and is_missing(cell):
            return None
        data = load_structured(cell)
        if not isinstance(data, (list, np.ndarray)):
            return None
        data = list(data)
        if data and isinstance(data[0], Mapping) and "predicate" in data[0]:
            return self.parse_gold({"frames": data})
        return self.parse_gold({"predicate": self.predicate(record), "arguments": data})

    def parse_gold(self, value: Any) -> Any:
        if not isinstance(value, (dict, list, np.ndarray)) and is_missing(value):
            return None
        data = load_structured(value) if isinstance(value, str) else value
        if isinstance(data, Mapping) and "frames" in data:
            frames = [self._frame(f) for f in data["frames"] or [] if isinstance(f, Mapping)]
            return {"frames": [f for f in frames if f is not None]}
        if isinstance(data, Mapping):
            return self._frame(data)
        return None

    def _frame(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        predicate = data.get("predicate")
        arguments = []
        for item in data.get("arguments") or []:
            if not isinstance(item, Mapping) or "start" not in item or "end" not in item:
                continue
            role = str(item.get("role", item.get("type", "")))
            arguments.append({"role": self.role_by_key.get(role.upper(), role), "start": int(item["start"]), "end": int(item["end"]), "text": item.get("text", "")})
        if isinstance(predicate, Mapping) and "start" in predicate:
            predicate = {k: predicate[k] for k in ("start", "end", "text", "lemma", "sense") if k in predicate}
            predicate["start"], predicate["end"] = int(predicate["start"]), int(predicate["end"])
        else:
            predicate = None
        return {"predicate": predicate, "arguments": sorted(arguments, key=lambda a: (a["start"], a["end"]))}

    def parse_output(self, value: Any) -> Any:
        return self.parse_gold(value)

    def is_correct(self, gold: Any, predicted: Any) -> bool:
        if predicted is None or gold is None:
            return False
        return _frame_keys(gold) == _frame_keys(predicted)

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
        return role_metrics(gold, predicted)

    def record_metrics(self, records: Sequence[Mapping[str, Any]], predicted: Sequence[Any]) -> dict[str, Any]:
        """Head-word F1 (heads need the sentence) and the share of argument spans that are the sentence's own text."""
        sentences = [self.sentence(r) for r in records]
        gold = [self.gold(r) for r in records]
        heads = head_metrics(gold, predicted, sentences)
        spans = [(s, a) for s, p in zip(sentences, predicted) for f in frames_of(p) for a in f["arguments"]]
        exact = sum(1 for s, a in spans if s[a["start"]:a["end"]] == a.get("text")) / len(spans) if spans else 1.0
        return {**heads, "srl_exact_span_share": exact, "srl_predicted_arguments": len(spans)}


def marked_predicate(sentence: str, predicate: Mapping[str, Any]) -> str:
    """The sentence with the predicate marked <pred>...</pred>."""
    return f"{sentence[:predicate['start']]}<pred>{predicate['text']}</pred>{sentence[predicate['end']:]}"


def frames_of(value: Any) -> list[dict[str, Any]]:
    """A roles value (one predicate's {predicate, arguments}, or {frames: [...]}) as a list of frames."""
    if not isinstance(value, Mapping):
        return []
    if "frames" in value:
        return [f for f in value["frames"] or [] if isinstance(f, Mapping) and f.get("predicate")]
    return [{"predicate": value.get("predicate") or {"start": -1, "end": -1, "text": ""}, "arguments": value.get("arguments") or []}]


def _predicate_key(frame: Mapping[str, Any]) -> tuple[int, int]:
    p = frame.get("predicate") or {}
    return int(p.get("start", -1)), int(p.get("end", -1))


def _frame_keys(value: Any) -> set[tuple]:
    return {(_predicate_key(f), a["start"], a["end"], a["role"]) for f in frames_of(value) for a in f["arguments"]}


def _prf(right: float, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = right / n_pred if n_pred else 0.0
    recall = right / n_gold if n_gold else 0.0
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


def role_metrics(gold: Sequence[Any], predicted: Sequence[Any]) -> dict[str, Any]:
    """CoNLL-2005 argument scores: an argument is right when its predicate, span and role are exact; micro
    P/R/F1 over every gold role (R-/C- included), per role, and the predicate sense accuracy where both sides
    have a sense. A failed row (predicted None) predicts nothing."""
    tp = n_pred = n_gold = 0
    per: dict[str, dict[str, int]] = {}
    senses_right = senses_asked = 0
    exact_rows = 0
    for g, p in zip(gold, predicted):
        gk, pk = _frame_keys(g), _frame_keys(p) if p is not None else set()
        n_gold += len(gk)
        n_pred += len(pk)
        tp += len(gk & pk)
        exact_rows += p is not None and gk == pk
        for key in gk:
            per.setdefault(key[3], Counter())["gold"] += 1
        for key in pk:
            per.setdefault(key[3], Counter())["pred"] += 1
            per[key[3]]["tp"] += key in gk
        gold_senses = {_predicate_key(f): f["predicate"].get("sense") for f in frames_of(g)}
        for f in frames_of(p) if p is not None else []:
            want, got = gold_senses.get(_predicate_key(f)), f["predicate"].get("sense")
            if want and got:
                senses_asked += 1
                senses_right += want == got
    n = len(gold)
    completed = sum(p is not None for p in predicted)
    overall = _prf(tp, n_pred, n_gold)
    per_role = {r: {**_prf(c["tp"], c["pred"], c["gold"]), "support": c["gold"], "predicted": c["pred"]} for r, c in sorted(per.items())}
    out = {
        "n_rows": n, "completion_rate": completed / n if n else 0.0,
        "accuracy": exact_rows / n if n else 0.0,  # predicates whose arguments are all exactly right
        "srl_argument_f1": overall["f1"], "srl_argument_precision": overall["precision"], "srl_argument_recall": overall["recall"],
        "srl_completion_rate": completed / n if n else 0.0,
        "gold_arguments": n_gold, "predicted_arguments": n_pred,
        "per_role": per_role,
    }
    if senses_asked:
        out["srl_sense_accuracy"] = senses_right / senses_asked
        out["srl_senses_compared"] = senses_asked
    return out


def head_metrics(gold: Sequence[Any], predicted: Sequence[Any], sentences: Sequence[str]) -> dict[str, Any]:
    """Head-word F1: a predicted argument is right when a gold argument of the same predicate and role has the
    same head word (`head_token`), each gold argument matched at most once."""
    right = n_pred = n_gold = 0
    for g, p, sentence in zip(gold, predicted, sentences):
        gold_heads = Counter((_predicate_key(f), head_token(sentence, a["start"], a["end"]), a["role"]) for f in frames_of(g) for a in f["arguments"])
        n_gold += sum(gold_heads.values())
        for f in frames_of(p) if p is not None else []:
            for a in f["arguments"]:
                n_pred += 1
                key = (_predicate_key(f), head_token(sentence, a["start"], a["end"]), a["role"])
                if gold_heads[key] > 0:
                    gold_heads[key] -= 1
                    right += 1
    scores = _prf(right, n_pred, n_gold)
    return {"srl_head_f1": scores["f1"], "srl_head_precision": scores["precision"], "srl_head_recall": scores["recall"]}


__all__ = ["PROPBANK_ROLES", "RolesTask", "align_arguments", "frames_of", "head_metrics", "head_token", "load_frame_files", "merge_arguments", "parse_frames", "role_metrics", "role_name", "rule_arguments"]
