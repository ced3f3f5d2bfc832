"""The refine loop: the guideline improves from the labeler's own errors on labeled dev rows.

Each round:
1. the labeler labels the search half of the dev rows with the current guideline;
2. it explains each error ("you said X, the answer is Y: what in the text shows Y?");
3. the errors are clustered (`cluster_errors`): by confusion (gold -> predicted), a confusion with a single
   error folded into the cluster of the label the row should have had (with many labels most confusions
   are single errors), largest clusters first; each cluster carries its explanations and the words they
   share most (its theme);
4. a proposer model (the labeler, or another: `proposer`) drafts edits for each cluster, citing it: a new
   rule (for a cluster of 9 errors or more, a second one from other rows of it, naming their subject), and
   a rewritten definition of the label the rows should have had; a label the labeler says at
   least twice as often as it is right (a small model's favourite) gets a narrower definition; a rule
   added by an earlier round may be deleted (`edits`);
5. with `decide` (the CLI's --interactive; or --review, `proposals.ReviewDecisions`: people decide in the
   review app's guideline page and the loop waits for them), a person accepts, edits or rejects each
   proposal first;
6. each candidate guideline is scored on the search half, with a penalty per added rule and per 100
   added characters (longer is not better for free): the current one with each edit alone, largest
   clusters first, then with the edits that each improved it, together (with `max_candidates`, the edits
   of the largest clusters only, and the last slot kept for that combination when there is one). A rule
   must name the label its cluster should have had;
7. the best few (`beam`) are tried on the held-out half, and the best of them is accepted only if the
   held-out rows improve too. An accepted guideline becomes a version in the store with its diff, a
   rationale naming the errors, its search and held-out figures and the hash of the system prompt it
   makes (`annotations.guidelines_hash` on every label made with it); the next round starts from it.

Budget: `projection` says how many model calls, seconds and dollars the rounds will take at most (the CLI
prints it first); `budget_s` and `max_cost` stop the loop between steps, keeping what was accepted.

Closed label sets only (classification, matching, relation): a rule is judged by accuracy. Every model
answer goes through the project's cache, so a rerun asks nothing twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from labelmill.config import Config, ModelSpec
from labelmill.core.strategy import Options
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.guideline import Guideline, Rule
from labelmill.types import Prompt

EXPLAIN_SYSTEM = "You are a careful annotator who explains labeling mistakes in one sentence."
PROPOSE_SYSTEM = "You write labeling guidelines. Each rule is one short, general sentence a new annotator can apply."


@dataclass
class Edit:
    kind: str  # add_rule, define_label, delete_rule
    text: str  # the rule, the new definition, or the deleted rule's text
    target: str | None = None  # define_label: the label; delete_rule: the rule's number (1-based)
    evidence: str = ""
    author: str = ""
    examples: list[str] = field(default_factory=list)  # add_rule: dev texts of the cluster it addresses

    def describe(self) -> str:
        what = {"add_rule": "add rule", "define_label": f"define {self.target}", "delete_rule": f"delete rule {self.target}"}[self.kind]
        return f"{what}: {self.text}"


def apply_edits(guideline: Guideline, edits: list[Edit]) -> Guideline:
    labels, rules = dict(guideline.labels), list(guideline.rules)
    drop = {int(e.target) - 1 for e in edits if e.kind == "delete_rule" and e.target}
    rules = [r for n, r in enumerate(rules) if n not in drop]
    for e in edits:
        if e.kind == "add_rule":
            rules.append(Rule(e.text, e.evidence, e.author, list(e.examples)))
        elif e.kind == "define_label" and e.target:
            labels[e.target] = e.text
    return Guideline(guideline.title, guideline.intro, labels, rules)


@dataclass
class RoundResult:
    round: int
    search_before: float
    heldout_before: float
    errors: int
    groups: list[dict[str, Any]]
    candidates: list[dict[str, Any]]  # rules added, search score
    accepted: str | None  # version id
    heldout_after: float | None = None


@dataclass
class RefineResult:
    rounds: list[RoundResult] = field(default_factory=list)
    final: Guideline | None = None
    final_version: str | None = None
    projection: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: {"label": 0, "text": 0})  # requests that reached the model
    cost_usd: float = 0.0
    stopped: str | None = None  # why the loop ended before its rounds: budget_s, max_cost, review (proposals wait for a person)


def _with_guideline(cfg: Config, guideline: Guideline) -> Config:
    return cfg.model_copy(update={"guidelines": guideline.prompt_text(), "guidelines_file": None})


def _accuracy(cfg: Config, frame: Any, project: Path, on_event: EventHandler, spent: RefineResult | None = None,
              metric: str = "accuracy") -> tuple[float, list[Any], list[Any]]:
    from labelmill.core import label_rows
    from labelmill.store import Store
    from labelmill.tasks import make_task

    result = label_rows(cfg, frame, project=project, on_event=on_event)
    if spent is not None:
        spent.calls["label"] += int(result.model_rows)
        spent.cost_usd += float(result.cost_usd or 0.0)
    with Store(project) as store:
        table = store.labels(result.run_id, len(frame), cfg.label_names)
    task = make_task(cfg)
    gold = [task.gold(r) for r in frame.to_dict("records")]
    predicted = table.labels
    if metric != "accuracy":
        return float(task.metrics(gold, predicted)[metric]), gold, predicted
    ok = [g is not None and p is not None and task.is_correct(g, p) for g, p in zip(gold, predicted)]
    return float(np.mean(ok)) if ok else 0.0, gold, predicted


def _ask(cfg: Config, prompts: list[Prompt], project: Path, kind: str, max_tokens: int, spent: RefineResult | None = None) -> list[str]:
    """Free-text answers through the core's cache (a rerun asks nothing twice)."""
    from labelmill.core import ask_texts

    if spent is not None:
        spent.calls["text"] += len(prompts)
    return [t or "" for t in ask_texts(cfg, prompts, kind=kind, project=project, max_tokens=max_tokens)]


def prompt_hash(cfg: Config, guideline: Guideline) -> str:
    """The hash the core stamps on each label made with this guideline (`annotations.guidelines_hash`)."""
    import hashlib

    from labelmill.tasks import make_task

    return hashlib.sha256(make_task(_with_guideline(cfg, guideline)).system_prompt().encode()).hexdigest()[:16]


def projection(cfg: Config, proposer_cfg: Config, sample: Any, search_rows: int, heldout_rows: int, opts: RefineOptions) -> dict[str, Any]:
    """The most model calls the rounds can take, and their time and cost from `labelmill plan`'s estimates."""
    rounds, max_rules, max_errors, beam, max_candidates = opts.rounds, opts.max_rules, opts.max_errors, opts.beam, opts.max_candidates
    from labelmill.core import plan_rows as plan

    # a rule (two for a large cluster) and a definition per cluster, a narrower definition of an over-predicted label,
    # deletions, the helpful ones together
    candidates = 4 * max_rules + 2 if max_candidates is None else max_candidates
    label_calls = rounds * (search_rows + heldout_rows + candidates * search_rows + beam * heldout_rows)
    text_calls = rounds * (max_errors + 3 * max_rules + 1)
    labeler = plan(cfg, sample, limit=min(20, len(sample)))
    per_row_s, per_row_cost = labeler["estimated_seconds"] / max(1, labeler["rows"]), labeler["estimated_cost_usd"]
    per_row_cost = None if per_row_cost is None else per_row_cost / max(1, labeler["rows"])
    writer = plan(proposer_cfg.model_copy(update={"model": proposer_cfg.model.model_copy(update={"method": "generate", "max_tokens": 80})}), sample, limit=1)
    seconds = label_calls * per_row_s + text_calls * max(writer["estimated_seconds"], 80 / 25.0)
    cost = None if per_row_cost is None or writer["estimated_cost_usd"] is None else label_calls * per_row_cost + text_calls * writer["estimated_cost_usd"]
    return {"label_calls": int(label_calls), "text_calls": int(text_calls), "estimated_seconds": round(seconds, 1),
            "estimated_cost_usd": None if cost is None else round(cost, 4)}


def clean_rule(text: str) -> str:
    """The first sentence-like line of a proposer's answer, without numbering, quotes or a 'Rule:' prefix."""
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*]|\d+[.)]|rule\s*\d*\s*:)\s*", "", line.strip(), flags=re.IGNORECASE).strip().strip('"').strip()
        if len(line) >= 8:
            return line[:300]
    return ""


def is_copy(rule: str, sources: list[str], share: float = 0.6) -> bool:
    """A proposal that mostly repeats the guideline or one of the error texts is no rule (small proposers
    do that); `share` of its words found in one source counts as a copy."""
    words = re.findall(r"[a-z0-9']+", rule.lower())
    if not words:
        return True
    for source in sources:
        have = set(re.findall(r"[a-z0-9']+", source.lower()))
        if sum(w in have for w in words) / len(words) >= share:
            return True
    return False


_STOP = set("""a an the of to in on for and or but is are was were be been it its this that these those as at by with from
not no text texts label labeled labelled should shows show about which what it's their there they than then so because into
correct correctly instead one only also more most same would could can does do did has have had when where how why who will
whom while just very some any all them him her his she you your our mentions mentioned mention clearly
indicates indicate indicating aligns align clear situation customer intent statement message comment article""".split())


@dataclass
class Cluster:
    gold: str
    predicted: list[str]  # the labels the labeler gave these rows, most frequent first
    members: list[int]  # error positions in the search rows
    theme: list[str] = field(default_factory=list)  # the words the explanations share most

    @property
    def said(self) -> str:
        return " or ".join(self.predicted[:3]) + (" or other labels" if len(self.predicted) > 3 else "")

    def describe(self) -> str:
        return f"{len(self.members)} search errors ({self.gold} labeled {self.said})" + (f", explanations citing {', '.join(self.theme)}" if self.theme else "")


def cluster_errors(gold: list[Any], predicted: list[Any], errors: list[int], why: dict[int, str], limit: int) -> list[Cluster]:
    """Errors grouped by confusion; a confusion with one error joins the cluster of its gold label (with
    77 labels most confusions are single errors, and one row is no evidence for a rule). Largest first,
    ties by first appearance, at most `limit`. While there are fewer than `limit` (two labels: one or two
    confusions in all), the largest cluster with four explanations or more is split in two by its
    explanations' words. Each cluster's theme is the words most of its explanations use."""
    pairs = Counter((str(gold[i]), str(predicted[i])) for i in errors)
    clusters: dict[tuple[str, str | None], Cluster] = {}
    for i in errors:
        g, p = str(gold[i]), str(predicted[i])
        key = (g, p) if pairs[(g, p)] > 1 else (g, None)
        clusters.setdefault(key, Cluster(g, [], [])).members.append(i)
    for cluster in clusters.values():
        said = Counter(str(predicted[i]) for i in cluster.members)
        cluster.predicted = [label for label, _ in said.most_common()]
    ranked = sorted(clusters.values(), key=lambda c: -len(c.members))  # stable: first appearance breaks ties
    ranked = [c for c in ranked if len(c.members) > 1 or len(ranked) <= limit][:limit]
    # fewer clusters than the cap (two labels, one big confusion): split the largest by what their explanations say
    tried: set[int] = set()
    while len(ranked) < limit:
        big = [c for c in ranked if id(c) not in tried and sum(1 for i in c.members if why.get(i)) >= 4]
        if not big:
            break
        cluster = big[0]
        tried.add(id(cluster))
        parts = _split_by_explanation(cluster, why)
        if parts:
            at = ranked.index(cluster)
            ranked[at : at + 1] = parts
    for cluster in ranked:
        _theme(cluster, why)
    return ranked


def over_predicted(gold: list[Any], predicted: list[Any], errors: list[int], limit: int = 1, least: int = 3) -> list[tuple[str, list[int]]]:
    """Labels the labeler says at least twice as often as they are right on the search rows, with the
    errors where it said them (at least `least`), most errors first: a small model's favourite label,
    often the first in the list or the only capitalised one, takes rows from every other label."""
    said, true = Counter(str(p) for p in predicted if p is not None), Counter(str(g) for g in gold if g is not None)
    wrong: dict[str, list[int]] = {}
    for i in errors:
        wrong.setdefault(str(predicted[i]), []).append(i)
    found = [(label, rows) for label, rows in wrong.items() if len(rows) >= least and said[label] >= 2 * max(1, true[label])]
    return sorted(found, key=lambda t: -len(t[1]))[:limit]


def _theme(cluster: Cluster, why: dict[int, str]) -> None:
    words: Counter = Counter()
    for i in cluster.members:
        words.update({w for w in re.findall(r"[a-z][a-z'-]{2,}", why.get(i, "").lower()) if w not in _STOP
                      and w not in cluster.gold.lower() and all(w not in p.lower() for p in cluster.predicted)})
    explained = sum(1 for i in cluster.members if why.get(i))
    cluster.theme = [w for w, n in words.most_common(3) if explained > 1 and n >= max(2, explained // 3)]


def _split_by_explanation(cluster: Cluster, why: dict[int, str]) -> list[Cluster]:
    """Two clusters of one confusion, by the words of the explanations (TF-IDF, k-means); the rows without an
    explanation stay with the larger part. Nothing when the explanations do not separate."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    explained = [i for i in cluster.members if why.get(i)]
    try:
        vectors = TfidfVectorizer(stop_words=sorted(_STOP)).fit_transform([why[i] for i in explained])
    except ValueError:  # nothing but stop words
        return []
    if vectors.shape[1] < 2:
        return []
    parts = KMeans(n_clusters=2, n_init=10, random_state=0).fit_predict(vectors)
    groups = [[i for i, part in zip(explained, parts) if part == k] for k in (0, 1)]
    if min(len(g) for g in groups) < 2:
        return []
    groups.sort(key=len, reverse=True)
    groups[0] += [i for i in cluster.members if not why.get(i)]
    return [Cluster(cluster.gold, cluster.predicted, sorted(g)) for g in groups]


class RefineOptions(Options):
    """refine's knobs. `proposer`: the model (mapping) that writes the edits (default: the labeler).
    `metric`: what a candidate must improve (accuracy, or macro_f1 where one label is rare). `explainer`: who
    explains the errors, the labeler (the loop as OpenAI described it) or the proposer (a small labeler's
    explanations are often an echo of the question, which are dropped). `budget_s`/`max_cost` stop the loop;
    what was accepted is kept. `author`: who the config's own guideline is committed as."""

    rounds: int = Field(2, ge=0)
    proposer: dict | None = None
    max_rules: int = Field(3, ge=1)
    max_errors: int = Field(24, ge=1)
    heldout_share: float = Field(0.5, gt=0.0, lt=1.0)
    rule_penalty: float = 0.002
    length_penalty: float = 0.001
    beam: int = Field(3, ge=1)
    edits: tuple[str, ...] = ("add_rule", "define_label", "delete_rule")
    budget_s: float | None = None
    max_candidates: int | None = None
    max_cost: float | None = None
    metric: str = "accuracy"
    seed: int = 0
    explainer: str = "labeler"
    author: str | None = None


def refine(
    config: str | Path | dict | Config, dev: Any, options: RefineOptions | dict | None = None, *, project: str | Path = "labelmill.db",
    decide: Callable[[Edit], Edit | None] | None = None, on_event: EventHandler = ignore, **knobs: Any,
) -> RefineResult:
    """Refine the config's guideline on `dev` (rows with the gold column); versions go to the project store
    (the knobs are `RefineOptions`', as `options` or as keywords). `decide(edit)` (a person, in
    --interactive, or the review app's decisions) returns the edit as it stands, an edited one, or None to drop it."""
    loop = _Refine.prepare(config, dev, RefineOptions.of(options, knobs), Path(project), decide, on_event)
    for number in range(1, loop.opts.rounds + 1):
        if loop.over() or not loop.round(number):
            break
    return loop.finish()


@dataclass
class _Refine:
    """The loop's state: the config, the dev rows split into a search and a held-out half, and the current guideline."""

    cfg: Config
    opts: RefineOptions
    project: Path
    decide: Callable[[Edit], Edit | None] | None
    on_event: EventHandler
    search: Any
    heldout: Any
    search_rows: np.ndarray  # the dev rows' numbers (their index when it is integer: the review loop's dataset rows), for the evidence notes
    proposer_cfg: Config
    current: Guideline
    out: RefineResult
    started: float

    @property
    def proposer_name(self) -> str:
        return f"{self.proposer_cfg.model.backend}:{self.proposer_cfg.model.name}"

    @classmethod
    def prepare(cls, config: Any, dev: Any, opts: RefineOptions, project: Path, decide: Any, on_event: EventHandler) -> _Refine:
        """Check the config and options, split the dev rows, announce the projection, and start from the
        guideline's head version (committing the config's own guideline first when there is none)."""
        import time

        from labelmill.config import load_with_notices
        from labelmill.io import read_rows

        started = time.perf_counter()
        cfg = load_with_notices(config, on_event)
        _check(cfg, opts)
        frame = read_rows(dev, cfg.dataset) if not hasattr(dev, "columns") else dev
        if not cfg.gold_column or cfg.gold_column not in frame.columns:
            raise InputDataError(f"refine needs dev rows with the gold column {cfg.gold_column!r}", fix="label some rows (or review them) and pass those")
        order = np.random.default_rng(opts.seed).permutation(len(frame))
        cut = int(round(len(frame) * (1 - opts.heldout_share)))
        search_rows = np.sort(order[:cut])
        search, heldout = frame.iloc[search_rows].reset_index(drop=True), frame.iloc[np.sort(order[cut:])].reset_index(drop=True)
        if len(search) < 10 or len(heldout) < 10:
            raise InputDataError(f"refine needs at least 20 dev rows (10 to search, 10 held out); got {len(frame)}")
        proposer_cfg = cfg if not opts.proposer else cfg.model_copy(update={"model": ModelSpec.model_validate({**cfg.model.model_dump(), **opts.proposer})})
        out = RefineResult()
        out.projection = projection(cfg, proposer_cfg, search, len(search), len(heldout), opts)
        _announce(out.projection, opts, on_event)
        numbers = np.asarray(frame.index)[search_rows] if np.issubdtype(np.asarray(frame.index).dtype, np.integer) else search_rows
        return cls(cfg, opts, project, decide, on_event, search, heldout, numbers, proposer_cfg, _head(cfg, project, opts.author), out, started)

    def over(self) -> bool:
        """Whether the time or cost budget is spent (and why, in `out.stopped`)."""
        import time

        if self.opts.budget_s is not None and time.perf_counter() - self.started > self.opts.budget_s:
            self.out.stopped = "budget_s"
        elif self.opts.max_cost is not None and self.out.cost_usd >= self.opts.max_cost:
            self.out.stopped = "max_cost"
        return self.out.stopped is not None

    def _accuracy(self, guideline: Guideline, frame: Any) -> tuple[float, list[Any], list[Any]]:
        return _accuracy(_with_guideline(self.cfg, guideline), frame, self.project, self.on_event, self.out, self.opts.metric)

    def _ask(self, cfg: Config, prompt: Prompt, kind: str) -> str:
        return _ask(cfg, [prompt], self.project, kind, 80, self.out)[0]

    def round(self, number: int) -> bool:
        """One round: label both halves, explain and cluster the search errors, propose edits, score them on
        the search half and accept the best on the held-out half. False: the loop ends here."""
        labeler = _with_guideline(self.cfg, self.current)
        search_acc, gold, predicted = self._accuracy(self.current, self.search)
        held_acc, _, _ = self._accuracy(self.current, self.heldout)
        errors = [i for i, (g, p) in enumerate(zip(gold, predicted)) if p is not None and g is not None and str(g) != str(p)]
        texts = [labeler_text(labeler, r) for r in self.search.to_dict("records")]
        result = RoundResult(number, search_acc, held_acc, len(errors), [], [], None)
        if not errors:
            self.out.rounds.append(result)
            return False
        found = _Found(gold, predicted, errors, texts, readable(labeler))  # the guideline as the labeler reads it, its label list filled in
        found.why = self._explain(labeler, found)
        proposals = self._proposals(found, result)
        if self.decide is not None:
            proposals = [c for c in (self.decide(edit) for edit in proposals) if c is not None]
            if getattr(self.decide, "waiting", 0):  # people answer in the review app: stop until they have
                self.out.stopped = "review"
                result.groups.append({"waiting_for_review": self.decide.waiting})
                self.out.rounds.append(result)
                return False
        self._accept(number, result, self._score(proposals, result, search_acc), search_acc, held_acc)
        self.out.rounds.append(result)
        if self.out.stopped:
            return False
        if result.accepted is None and self.decide is None and number < self.opts.rounds and not self.proposer_cfg.model.temperature:
            # the same guideline, the same errors, the same (cached, greedy) proposals: another round would repeat this one
            self.on_event(Notice(f"refine: round {number} accepted nothing; the next round would repeat it, so the loop ends here"))
            return False
        return True

    def _explain(self, labeler: Config, f: _Found) -> dict[int, str]:
        """Explanations of the errors (the largest confusions first), those that say something beyond the question."""
        shown = [i for c in cluster_errors(f.gold, f.predicted, f.errors, {}, self.opts.max_rules) for i in c.members][: self.opts.max_errors]
        explain = [Prompt(EXPLAIN_SYSTEM, (), f"Guideline:\n{f.guide}\n\nText: {f.texts[i]}\nYou labeled it {f.predicted[i]}; "
                          f"the correct label is {f.gold[i]}. In one sentence: what in the text shows it is {f.gold[i]}?") for i in shown]
        asked = _ask(labeler if self.opts.explainer == "labeler" else self.proposer_cfg, explain, self.project, "explain_error", 60, self.out)
        # an answer that only echoes the question ("the text shows it is toxic") or the text explains nothing
        return {i: text.strip() for i, text in zip(shown, asked)
                if text.strip() and not is_copy(text, [f"the text shows it is {f.gold[i]} you labeled it {f.predicted[i]} the correct label is", f.texts[i]])}

    def _proposals(self, f: _Found, result: RoundResult) -> list[Edit]:
        """Edits per cluster of errors (a rule, a second rule draft for a large cluster, a definition), a
        narrower definition of a label said far too often, deletions of recent rules; each edit once."""
        edits, proposals, drafts = self.opts.edits, [], []
        for cluster in cluster_errors(f.gold, f.predicted, f.errors, f.why, self.opts.max_rules):
            found = {"gold": cluster.gold, "predicted": cluster.said, "errors": len(cluster.members), "theme": cluster.theme}
            evidence = f"{cluster.describe()}, e.g. dev rows {', '.join(str(int(self.search_rows[i])) for i in cluster.members[:3])}"
            if "add_rule" in edits:
                proposals += self._rules(cluster, f, evidence, found, drafts)
            if "define_label" in edits and cluster.gold in self.current.labels:
                proposals += self._definition(cluster, f, evidence, found)
            result.groups.append(found)
        if "define_label" in edits:  # a label said far more often than it is right (a small model's favourite): narrow it
            self._narrower(f, result, proposals)
        proposals += drafts
        if "delete_rule" in edits:  # a rule an earlier round added may now do more harm than good
            for n, rule in list(enumerate(self.current.rules, start=1))[-self.opts.max_rules:]:
                proposals.append(Edit("delete_rule", rule.text, str(n), f"rule {n} tried without", f"refine ({self.proposer_name})"))
        firsts: dict[tuple, Edit] = {}
        for edit in proposals:  # the same edit proposed twice (two clusters of one label) is one candidate
            firsts.setdefault((edit.kind, edit.target, edit.text), edit)
        return list(firsts.values())

    def _lines(self, f: _Found, members: list[int]) -> str:
        return "\n".join(f"- {f.texts[i][:300]}" + (f"\n  (why: {f.why[i][:200]})" if f.why.get(i) else "") for i in members[:6])

    def _rules(self, cluster: Cluster, f: _Found, evidence: str, found: dict[str, Any], drafts: list[Edit]) -> list[Edit]:
        """A rule for the cluster; for a large one, a second draft from other rows of it naming their subject
        (added to `drafts`: scored after every first draft)."""
        g, p, members, author = cluster.gold, cluster.said, cluster.members, f"refine ({self.proposer_name})"
        ask = Prompt(PROPOSE_SYSTEM, (), f"These texts are {g}, but a labeler following the guideline below said {p}:\n{self._lines(f, members)}\n\n"
                     f"Guideline:\n{f.guide}\n\nWrite one new rule for the guideline, one sentence, that makes texts like these {g} "
                     f"without changing other cases. Reply in the form 'Rule: <one sentence>'.")
        rule = clean_rule(self._ask(self.proposer_cfg, ask, "propose_rule"))
        sources = [self.current.prompt_text(), *(f.texts[i] for i in members)]
        made = []
        if usable_rule(rule, g, sources):
            made.append(Edit("add_rule", rule, None, evidence, author, [_excerpt(f.texts[i]) for i in members[:2] if f.texts[i].strip()]))
            found["rule"] = rule
        if len(members) >= 9:
            other = "\n".join(f"- {f.texts[i][:300]}" for i in members[6:12])
            ask = Prompt(PROPOSE_SYSTEM, (), f"These texts are {g}, but a labeler following the guideline below said {p}:\n{other}\n\n"
                         f"Guideline:\n{f.guide}\n\nWhat are these texts about? Write one new rule for the guideline, one sentence, that names "
                         f"their subject concretely (the kind of company, product, event or person) and says such texts are {g}. "
                         "Reply in the form 'Rule: <one sentence>'.")
            second = clean_rule(self._ask(self.proposer_cfg, ask, "propose_rule"))
            if usable_rule(second, g, sources):
                drafts.append(Edit("add_rule", second, None, evidence, author, [_excerpt(f.texts[i]) for i in members[6:8] if f.texts[i].strip()]))
                found["second_rule"] = second
        return made

    def _definition(self, cluster: Cluster, f: _Found, evidence: str, found: dict[str, Any]) -> list[Edit]:
        """A new definition of the label the cluster should have had."""
        g, p, members = cluster.gold, cluster.said, cluster.members
        ask = Prompt(PROPOSE_SYSTEM, (), f"A labeler following the guideline below said {p} for these {g} texts:\n{self._lines(f, members)}\n\n"
                     f"Guideline:\n{f.guide}\n\nRewrite the definition of the label {g} (now: \"{self.current.labels[g] or g}\") as one sentence "
                     f"that makes texts like these clearly {g}, not {p}. Reply in the form '{g}: <definition>'.")
        definition = clean_rule(self._ask(self.proposer_cfg, ask, "propose_definition"))
        definition = re.sub(rf"^\W*{re.escape(g)}\W*:\s*", "", definition, flags=re.IGNORECASE)  # "card_arrival: ..." repeats the label
        if _words(definition) >= 3 and definition != self.current.labels[g] and not is_copy(definition, [self.current.intro, *(f.texts[i] for i in members)]):
            found["definition"] = definition
            return [Edit("define_label", definition, g, evidence, f"refine ({self.proposer_name})")]
        return []

    def _narrower(self, f: _Found, result: RoundResult, proposals: list[Edit]) -> None:
        """A narrower definition of the label said most often for others, ranked with the clusters by the errors it addresses."""
        for label, wrong in over_predicted(f.gold, f.predicted, f.errors, limit=1):
            said = Counter(str(f.gold[i]) for i in wrong)
            lines = "\n".join(f"- {f.texts[i][:300]} (is {f.gold[i]})" for i in wrong[:6])
            evidence = (f"{len(wrong)} search errors ({label} said for {', '.join(g for g, _ in said.most_common(3))}"
                        f"{' and other labels' if len(said) > 3 else ''}), e.g. dev rows {', '.join(str(int(self.search_rows[i])) for i in wrong[:3])}")
            ask = Prompt(PROPOSE_SYSTEM, (), f"A labeler following the guideline below said {label} for these texts, which are not {label}:\n{lines}\n\n"
                         f"Guideline:\n{f.guide}\n\nRewrite the definition of the label {label} (now: \"{self.current.labels.get(label) or label}\") "
                         f"as one sentence that says exactly when {label} applies, so that texts like these are not {label}. "
                         f"Reply in the form '{label}: <definition>'.")
            definition = clean_rule(self._ask(self.proposer_cfg, ask, "propose_narrower"))
            definition = re.sub(rf"^\W*{re.escape(label)}\W*:\s*", "", definition, flags=re.IGNORECASE)
            if _words(definition) >= 3 and definition != self.current.labels.get(label) and not is_copy(definition, [self.current.intro, *(f.texts[i] for i in wrong)]):
                narrower = Edit("define_label", definition, label, evidence, f"refine ({self.proposer_name})")
                at = next((n for n, g in enumerate(result.groups) if g.get("errors", 0) < len(wrong)), len(result.groups))
                before = sum(("rule" in g) + ("definition" in g) for g in result.groups[:at])
                proposals.insert(before, narrower)
                result.groups.insert(at, {"over_predicted": label, "errors": len(wrong), "definition": definition})

    def _score(self, proposals: list[Edit], result: RoundResult, search_acc: float) -> list[tuple[float, float, Guideline, list[Edit]]]:
        """Each edit alone on the search half (largest clusters first, deletions last), then the edits that
        each improved it, together; under max_candidates the last slot goes to that combination when there is one."""
        scored: list[tuple[float, float, Guideline, list[Edit]]] = []
        o = self.opts

        def score(chosen: list[Edit]) -> None:
            trial = apply_edits(self.current, chosen)
            acc, _, _ = self._accuracy(trial, self.search)
            grown = max(0, len(trial.prompt_text()) - len(self.current.prompt_text()))
            penalty = o.rule_penalty * max(0, len(trial.rules) - len(self.current.rules)) + o.length_penalty * grown / 100
            scored.append((acc - penalty, acc, trial, chosen))
            result.candidates.append({"edits": [e.describe() for e in chosen], "search": acc, "penalty": round(penalty, 4)})

        room = len(proposals) + 1 if o.max_candidates is None else o.max_candidates
        waiting = list(proposals)
        while waiting and len(scored) < room and not self.over():
            if len(scored) == room - 1 and len(together(scored, search_acc)) > 1:
                break
            score([waiting.pop(0)])
        if len(together(scored, search_acc)) > 1 and len(scored) < room and not self.over():
            score(together(scored, search_acc))
        scored.sort(key=lambda t: -t[0])
        return scored

    def _accept(self, number: int, result: RoundResult, scored: list[tuple[float, float, Guideline, list[Edit]]], search_acc: float, held_acc: float) -> None:
        """The best of the `beam` candidates that beat the search half, on the held-out half; committed as a
        version only when it improves the held-out half too."""
        from labelmill.store import Store
        from labelmill.strategies.refine.versions import GuidelineVersions

        best = None
        for _, acc, trial, chosen in [t for t in scored if t[0] > search_acc][: self.opts.beam]:
            if self.over():
                break
            held_after, _, _ = self._accuracy(trial, self.heldout)
            if best is None or held_after > best[0]:
                best = (held_after, acc, trial, chosen)
        if best is None:
            return
        held_after, acc, trial, chosen = best
        result.heldout_after = held_after
        if held_after <= held_acc:
            self.on_event(Notice(f"refine round {number}: the best candidates did not improve the held-out rows ({held_acc:.3f} -> {held_after:.3f}); not accepted"))
            return
        metric, rationale = self.opts.metric, "; ".join(f"{e.describe()} (for {e.evidence})" for e in chosen)
        with Store(self.project) as store:
            version = GuidelineVersions(store, self.cfg.name or self.cfg.task).commit(
                trial.render(), rationale=f"round {number}: {rationale}", author=", ".join(dict.fromkeys(e.author for e in chosen)),
                dev={"search_accuracy" if metric == "accuracy" else f"search_{metric}": acc, "search_rows": len(self.search), "before": search_acc},
                heldout={metric: held_after, "rows": len(self.heldout), "before": held_acc}, prompt_hash=prompt_hash(self.cfg, trial),
            )
        result.accepted = version.id
        self.current = trial
        self.on_event(Notice(f"refine round {number}: accepted {version.id} (search {search_acc:.3f} -> {acc:.3f}, held-out {held_acc:.3f} -> {held_after:.3f})"))

    def finish(self) -> RefineResult:
        """Why the loop stopped, the final guideline and the head version."""
        from labelmill.store import Store
        from labelmill.strategies.refine.versions import GuidelineVersions

        if self.out.stopped == "review":
            self.on_event(Notice(f"refine: {self.decide.waiting} proposed edit(s) wait for a person: open the review app's guideline page "
                                 "(labelmill review CONFIG DATA, then /guideline), decide, and run refine --review again"))
        elif self.out.stopped:
            self.on_event(Notice(f"refine: stopped by {'--budget' if self.out.stopped == 'budget_s' else '--max-cost'}; what was accepted is kept"))
        self.out.final = self.current
        with Store(self.project) as store:
            self.out.final_version = GuidelineVersions(store, self.cfg.name or self.cfg.task).head_id()
        return self.out


@dataclass
class _Found:
    """A round's errors on the search half and what the proposer is shown of them."""

    gold: list[Any]
    predicted: list[Any]
    errors: list[int]
    texts: list[str]
    guide: str
    why: dict[int, str] = field(default_factory=dict)


def _check(cfg: Config, opts: RefineOptions) -> None:
    if cfg.task not in ("classification", "matching", "relation"):
        raise ConfigError(f"refine works on closed label sets; this config is {cfg.task!r}", fix="use a classification, matching or relation config")
    if opts.explainer not in ("labeler", "proposer"):
        raise ConfigError(f"unknown explainer {opts.explainer!r}", fix="the labeler or the proposer explains the errors")
    unknown = [e for e in opts.edits if e not in ("add_rule", "define_label", "delete_rule")]
    if unknown:
        raise ConfigError(f"unknown edit kind {unknown[0]!r}", fix="edits are add_rule, define_label and delete_rule")


def _announce(p: dict[str, Any], opts: RefineOptions, on_event: EventHandler) -> None:
    on_event(Notice(f"refine: at most {p['label_calls']} labeling calls and {p['text_calls']} generated texts over {opts.rounds} round(s), "
                    f"about {p['estimated_seconds']:.0f} s" + ("" if p["estimated_cost_usd"] is None else f", ${p['estimated_cost_usd']:.4f}")
                    + (f"; budget {opts.budget_s:.0f} s" if opts.budget_s else "") + (f"; cost cap ${opts.max_cost}" if opts.max_cost is not None else "")))


def _head(cfg: Config, project: Path, author: str | None) -> Guideline:
    """The guideline's head version in the store; the config's own guideline, committed, when there is none."""
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions

    with Store(project) as store:
        versions = GuidelineVersions(store, cfg.name or cfg.task)
        head = versions.get(versions.head_id(), missing_ok=True)
        current = Guideline.parse(head.content) if head else Guideline.from_config(cfg)
        if head is None:
            versions.commit(current.render(), rationale="the config's guideline", author=author or "config", prompt_hash=prompt_hash(cfg, current))
    return current


def usable_rule(rule: str, label: str, sources: list[str]) -> bool:
    """A drafted rule worth scoring: three words or more, not a question, naming the label its rows should
    have had (one that does not, "... should be labeled as Sports" for World rows, points the labeler
    elsewhere), and no copy of the guideline or of an error text."""
    return _words(rule) >= 3 and not rule.endswith("?") and names_label(rule, label) and not is_copy(rule, sources)


def names_label(text: str, label: str) -> bool:
    """Whether a proposal names the label, as written or with its underscores and slashes read as spaces
    ("card_arrival", "card arrival")."""
    def plain(t: str) -> str:
        return " ".join(re.findall(r"[^\W_]+", t.lower()))

    return bool(plain(label)) and f" {plain(label)} " in f" {plain(text)} "


def together(scored: list[tuple[float, float, Guideline, list[Edit]]], baseline: float) -> list[Edit]:
    """The single edits whose penalised search figure beat the current guideline's, best first; of two
    definitions of one label, the better one."""
    chosen: list[Edit] = []
    for value, _, _, edits in sorted(scored, key=lambda t: -t[0]):
        if value <= baseline or len(edits) != 1:
            continue
        edit = edits[0]
        if edit.kind == "define_label" and any(e.kind == "define_label" and e.target == edit.target for e in chosen):
            continue
        chosen.append(edit)
    return chosen


def _words(text: str) -> int:
    """Words of two letters or more: a proposal of numbers or symbols ("[1, 13, 34, ...") is no edit."""
    return len(re.findall(r"[^\W\d_]{2,}", text))


def _excerpt(text: str, limit: int = 160) -> str:
    """A dev row as a one-line example under a rule (the rendered input, cut at a word)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def readable(cfg: Config) -> str:
    """The guidelines as the labeler reads them, with the task's label list, for the explainer and the
    proposer (a '{labels}' placeholder left in their prompt made the 1.5B write rules about the list)."""
    from labelmill.tasks.classification import guidelines_with_labels

    return guidelines_with_labels(cfg, "")


def labeler_text(cfg: Config, record: dict[str, Any]) -> str:
    from labelmill.tasks import make_task

    return make_task(cfg).render(record)
