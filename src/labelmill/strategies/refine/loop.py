"""The refine loop: the guideline improves from the labeler's own errors on labeled dev rows.

Each round:
1. the labeler labels the search half of the dev rows with the current guideline;
2. it explains each error ("you said X, the answer is Y: what in the text shows Y?");
3. the errors are grouped by confusion (gold -> predicted), largest groups first;
4. a proposer model (the labeler, or another: `proposer`) drafts one rule per group, citing it;
5. each candidate guideline (the current one plus one rule, and plus all of them) is scored on the search
   half, with a small penalty per added rule;
6. the best candidate is accepted only if the held-out half of the dev rows improves too. An accepted
   guideline becomes a version in the store with its diff, a rationale naming the errors, and its search
   and held-out figures; the next round starts from it.

Closed label sets only (classification, matching, relation): a rule is judged by accuracy. Every model
answer goes through the project's cache, so a rerun asks nothing twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.config import Config, ModelSpec
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.guideline import Guideline, Rule
from labelmill.types import Prompt

EXPLAIN_SYSTEM = "You are a careful annotator who explains labeling mistakes in one sentence."
PROPOSE_SYSTEM = "You write labeling guidelines. Each rule is one short, general sentence a new annotator can apply."


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


def _with_guideline(cfg: Config, guideline: Guideline) -> Config:
    return cfg.model_copy(update={"guidelines": guideline.prompt_text(), "guidelines_file": None})


def _accuracy(cfg: Config, frame: Any, project: Path, on_event: EventHandler) -> tuple[float, list[Any], list[Any]]:
    import labelmill
    from labelmill.store import Store
    from labelmill.tasks import make_task

    result = labelmill.run(cfg, frame, project=project, on_event=on_event)
    with Store(project) as store:
        table = store.labels(result.run_id, len(frame), cfg.label_names)
    task = make_task(cfg)
    gold = [task.gold(r) for r in frame.to_dict("records")]
    predicted = table.labels
    ok = [g is not None and p is not None and task.is_correct(g, p) for g, p in zip(gold, predicted)]
    return float(np.mean(ok)) if ok else 0.0, gold, predicted


def _ask(cfg: Config, prompts: list[Prompt], project: Path, kind: str, max_tokens: int) -> list[str]:
    """Free-text answers through the core's cache (a rerun asks nothing twice)."""
    from labelmill.core import ask_texts

    return [t or "" for t in ask_texts(cfg, prompts, kind=kind, project=project, max_tokens=max_tokens)]


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


def refine(
    config: str | Path | dict | Config, dev: Any, *, project: str | Path = "labelmill.db", rounds: int = 2, proposer: dict | None = None,
    max_rules: int = 3, max_errors: int = 24, heldout_share: float = 0.5, rule_penalty: float = 0.002, seed: int = 0,
    author: str | None = None, on_event: EventHandler = ignore,
) -> RefineResult:
    """Refine the config's guideline on `dev` (rows with the gold column); versions go to the project store."""
    from labelmill.api import load_with_notices
    from labelmill.io import read_rows
    from labelmill.store import Store
    from labelmill.strategies.refine.versions import GuidelineVersions

    cfg = load_with_notices(config, on_event)
    if cfg.task not in ("classification", "matching", "relation"):
        raise ConfigError(f"refine works on closed label sets; this config is {cfg.task!r}", fix="use a classification, matching or relation config")
    frame = read_rows(dev, cfg.dataset) if not hasattr(dev, "columns") else dev
    if not cfg.gold_column or cfg.gold_column not in frame.columns:
        raise InputDataError(f"refine needs dev rows with the gold column {cfg.gold_column!r}", fix="label some rows (or review them) and pass those")
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(round(len(frame) * (1 - heldout_share)))
    search_rows = np.sort(order[:cut])  # positions in the dev file, for the evidence notes
    search, heldout = frame.iloc[search_rows].reset_index(drop=True), frame.iloc[np.sort(order[cut:])].reset_index(drop=True)
    if len(search) < 10 or len(heldout) < 10:
        raise InputDataError(f"refine needs at least 20 dev rows (10 to search, 10 held out); got {len(frame)}")
    project = Path(project)
    proposer_cfg = cfg if not proposer else cfg.model_copy(update={"model": ModelSpec.model_validate({**cfg.model.model_dump(), **proposer})})
    proposer_name = f"{proposer_cfg.model.backend}:{proposer_cfg.model.name}"
    with Store(project) as store:
        versions = GuidelineVersions(store, cfg.name or cfg.task)
        head = versions.get(versions.head_id(), missing_ok=True)
        current = Guideline.parse(head.content) if head else Guideline.from_config(cfg)
        if head is None:
            versions.commit(current.render(), rationale="the config's guideline", author=author or "config")
    out = RefineResult()
    for number in range(1, rounds + 1):
        labeler = _with_guideline(cfg, current)
        search_acc, gold, predicted = _accuracy(labeler, search, project, on_event)
        held_acc, _, _ = _accuracy(labeler, heldout, project, on_event)
        errors = [i for i, (g, p) in enumerate(zip(gold, predicted)) if p is not None and g is not None and str(g) != str(p)]
        texts = [labeler_text(labeler, r) for r in search.to_dict("records")]
        groups = Counter((str(gold[i]), str(predicted[i])) for i in errors).most_common(max_rules)
        result = RoundResult(number, search_acc, held_acc, len(errors), [], [], None)
        if not groups:
            out.rounds.append(result)
            break
        # explanations of the errors, then one rule per confusion group
        shown = errors[:max_errors]
        explain = [Prompt(EXPLAIN_SYSTEM, (), f"Guideline:\n{current.prompt_text()}\n\nText: {texts[i]}\nYou labeled it {predicted[i]}; "
                          f"the correct label is {gold[i]}. In one sentence: what in the text shows it is {gold[i]}?") for i in shown]
        why = dict(zip(shown, _ask(labeler, explain, project, "explain_error", 60)))
        proposals = []
        for (g, p), count in groups:
            members = [i for i in errors if str(gold[i]) == g and str(predicted[i]) == p]
            lines = "\n".join(f"- {texts[i][:300]}" + (f"\n  (why: {why[i][:200]})" if why.get(i) else "") for i in members[:6])
            ask = Prompt(PROPOSE_SYSTEM, (), f"Current guideline:\n{current.prompt_text()}\n\nThese texts are {g}, but a labeler following the guideline "
                         f"said {p}:\n{lines}\n\nWrite one new rule, one sentence, that makes these {g} without changing other cases. Reply with the rule only.")
            rule = clean_rule(_ask(proposer_cfg, [ask], project, "propose_rule", 80)[0])
            if rule and not is_copy(rule, [current.prompt_text(), *(texts[i] for i in members)]):
                evidence = f"{count} search errors ({g} labeled {p}), e.g. dev rows {', '.join(str(int(search_rows[i])) for i in members[:3])}"
                proposals.append(Rule(rule, evidence, f"refine ({proposer_name})"))
                result.groups.append({"gold": g, "predicted": p, "errors": count, "rule": rule})
        candidates = [[r] for r in proposals] + ([proposals] if len(proposals) > 1 else [])
        scored = []
        for added in candidates:
            trial = Guideline(current.title, current.intro, dict(current.labels), [*current.rules, *added])
            acc, _, _ = _accuracy(_with_guideline(cfg, trial), search, project, on_event)
            scored.append((acc - rule_penalty * len(added), acc, trial, added))
            result.candidates.append({"rules_added": [r.text for r in added], "search": acc})
        scored.sort(key=lambda t: -t[0])
        if scored and scored[0][0] > search_acc:
            _, acc, trial, added = scored[0]
            held_after, _, _ = _accuracy(_with_guideline(cfg, trial), heldout, project, on_event)
            result.heldout_after = held_after
            if held_after > held_acc:
                rationale = "; ".join(f"rule for {r.evidence}" for r in added)
                with Store(project) as store:
                    version = GuidelineVersions(store, cfg.name or cfg.task).commit(
                        trial.render(), rationale=f"round {number}: {rationale}", author=f"refine ({proposer_name})",
                        dev={"search_accuracy": acc, "search_rows": len(search), "before": search_acc},
                        heldout={"accuracy": held_after, "rows": len(heldout), "before": held_acc},
                    )
                result.accepted = version.id
                current = trial
                on_event(Notice(f"refine round {number}: accepted {version.id} (search {search_acc:.3f} -> {acc:.3f}, held-out {held_acc:.3f} -> {held_after:.3f})"))
            else:
                on_event(Notice(f"refine round {number}: best candidate did not improve the held-out rows ({held_acc:.3f} -> {held_after:.3f}); not accepted"))
        out.rounds.append(result)
    out.final = current
    with Store(project) as store:
        out.final_version = GuidelineVersions(store, cfg.name or cfg.task).head_id()
    return out


def labeler_text(cfg: Config, record: dict[str, Any]) -> str:
    from labelmill.tasks import make_task

    return make_task(cfg).render(record)
