"""`python bench/qa_signals.py [--model qwen2.5-coder-0.5b] [--per-article 150] [--json]`: how well each
signal tells answerable SQuAD 2.0 questions from unanswerable ones, and the `qa.answerable_threshold` of
best F1, on held-out questions: the first N of each of two articles that neither the test rows (the first
300 rows of squad_v2/dev_subset.jsonl: Normans, Computational_complexity_theory) nor the demos (Victoria)
come from, i.e. Southern_California and Sky_(United_Kingdom).

The QA example config runs with the threshold at 0 (no answer is replaced), so every answer keeps the
check's P(yes) as a signal. Reported, as AUROC for "answerable" (0.5 = no information):
  p_yes                  the scored check "does the context state this answer?" (0 when the model abstained)
  answer_probability     the answer's mean token probability
  p_unanswerable         the probability of starting the answer with "unanswerable"
  novel_question_words   the share of the question's words that are not in the context
  with --question-likelihood, also the question's log-probability given the context ("Question: ..." scored
  after "Context: ..."), per token and per character, the question's length alone, and the context's own
  share (the same question scored after an empty context, subtracted);
and, from the data alone, the question length's AUROC in each article of the file and on the test rows;
then, for each threshold t on a grid of 0.01, the F1 of "answer when P(yes) >= t, else unanswerable"; the
best t is what `answerable_threshold` holds (0.29 in examples/qa/config.yaml, 0.6 in config-1.5b.yaml).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "squad_v2" / "dev_subset.jsonl"
HELD_OUT = ("Southern_California", "Sky_(United_Kingdom)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = set("the a an of in on at to for by with from and or is was were are be been what which who whom whose when where why how did do does "
            "that this these those it its as than into about".split())


def held_out(per_article: int) -> pd.DataFrame:
    data = pd.read_json(DATA, lines=True)
    return pd.concat([data[data["title"] == t].head(per_article) for t in HELD_OUT]).reset_index(drop=True)


def novel_words(question: str, context: str) -> float:
    words = [w for w in _WORD.findall(question.lower()) if w not in _STOP]
    seen = set(_WORD.findall(context.lower()))
    return sum(w not in seen for w in words) / len(words) if words else 0.0


def auroc(answerable: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(answerable, score)), 3)


def length_by_article() -> dict:
    """AUROC of the question's length alone for "answerable", per article of the whole file and on the 300
    test rows (no model: it shows where the length artefact holds)."""
    data = pd.read_json(DATA, lines=True)
    answerable = np.array([len(a) > 0 for a in data["all_answers"]], dtype=int)
    length = data["question"].str.len().to_numpy()
    out = {title: auroc(answerable[(data["title"] == title).to_numpy()], length[(data["title"] == title).to_numpy()]) for title in data["title"].unique()}
    out["first 300 rows (the test rows)"] = auroc(answerable[:300], length[:300])
    return out


def question_likelihood(config, rows: pd.DataFrame, answerable: np.ndarray) -> dict:
    """AUROCs of log P(question | context) (per token, per character), the question's length, and the
    context's share: log P(question | context) - log P(question | no context), per token."""
    from labelmill.backends import make_backend
    from labelmill.types import Prompt

    backend = make_backend(config.model)
    system = "Read the context, then ask a question about it."
    with_context, without, tokens, chars = [], [], [], []
    for context, question in zip(rows["context"], rows["question"]):
        asked = f"Question: {question}"
        with_context.append(backend.score([Prompt(system, (), f"Context: {context}")], [asked])[0].logprobs[0])
        without.append(backend.score([Prompt(system, (), "Context: (none)")], [asked])[0].logprobs[0])
        tokens.append(max(1, backend.count_tokens(asked)))
        chars.append(len(question))
    lp, lp0, n, c = map(np.array, (with_context, without, tokens, chars))
    return {
        "auroc_question_logprob_per_token": auroc(answerable, lp / n), "auroc_question_logprob_per_char": auroc(answerable, lp / c),
        "auroc_question_length": auroc(answerable, c), "auroc_context_share_per_token": auroc(answerable, (lp - lp0) / n),
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--per-article", type=int, default=150, help="Questions from each held-out article (the 1.5B figure used 50).")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--question-likelihood", action="store_true", help="Also score each question's likelihood given its context (two more passes).")
    args = parser.parse_args()

    import labelmill
    from labelmill.config import load_config
    from labelmill.store import Store
    from labelmill.tasks import make_task

    config = yaml.safe_load((ROOT / "examples" / "qa" / "config.yaml").read_text())
    config["qa"]["answerable_threshold"] = 0.0
    config["model"]["name"] = args.model
    config["examples"]["file"] = str(ROOT / "examples" / "qa" / config["examples"]["file"])
    rows = held_out(args.per_article)
    work = Path(tempfile.mkdtemp(prefix="labelmill-qa-"))
    started = time.perf_counter()
    result = labelmill.label(config, rows, project=work / "p.db")
    seconds = time.perf_counter() - started
    with Store(work / "p.db") as store:
        table = store.labels(result.run_id, len(rows))
    answers = ["" if a is None else str(a) for a in result.frame["llm_label"]]
    signals = [s or {} for s in table.signals]
    answerable = np.array([len(a) > 0 for a in rows["all_answers"]], dtype=int)
    p_yes = np.array([s.get("p_answerable", 0.0) if a else 0.0 for s, a in zip(signals, answers)])
    answer_probability = np.nan_to_num(table.confidence, nan=0.0)
    p_unanswerable = np.array([s.get("p_unanswerable", 0.0) for s in signals])
    novel = np.array([novel_words(q, c) for q, c in zip(rows["question"], rows["context"])])
    task = make_task(load_config(config))
    gold = [task.parse_gold(g) for g in rows["all_answers"]]
    curve = []
    for t in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        predicted = [a if a and p >= t else "" for a, p in zip(answers, p_yes)]
        curve.append((float(t), task.metrics(gold, predicted)["f1"]))
    best_t, best_f1 = max(curve, key=lambda x: (x[1], -x[0]))
    figures = {
        "model": args.model, "held_out_rows": len(rows), "articles": list(HELD_OUT), "answerable_share": round(float(answerable.mean()), 3),
        "auroc_p_yes": auroc(answerable, p_yes), "auroc_answer_probability": auroc(answerable, answer_probability),
        "auroc_p_unanswerable": auroc(answerable, p_unanswerable), "auroc_novel_question_words": auroc(answerable, novel),
        "best_threshold": best_t, "f1_at_best_threshold": round(best_f1, 4),
        "f1_without_check": round(dict(curve)[0.0], 4),
        "f1_always_unanswerable": round(task.metrics(gold, [""] * len(rows))["f1"], 4),
        "seconds_per_row": round(seconds / len(rows), 2),
        "auroc_question_length_by_article": length_by_article(),
    }
    if args.question_likelihood:
        figures.update(question_likelihood(load_config(config), rows, answerable))
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    return figures


if __name__ == "__main__":
    sys.exit(main() and 0)
