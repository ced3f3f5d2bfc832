"""From zero labels: what people's first reviews buy, and whether the LLM earns its place.

A new user has rows and a task description, no labeled examples. The configs in examples/zero/ hold the
label names and one line of guideline, no examples file and no seed; the default embedded model labels
the first N test rows (Banking77: the first N of a random permutation, seed 0); the gold column answers
only as the reviewer. Every time is counted, setup (model load, labeling, embeddings) included.

Review (`labelmill review`'s loop, `ReviewSession.simulate`, student on, audit on, batch 10), run
`--runs` times with different audit draws, until the dataset's true accuracy reaches 95%:

  <set>_share_reviewed_at_95           reviews / rows when the truth reached 95% (mean over runs)
  <set>_share_lowconf_at_95            lowest LLM confidence first, no loop (the LLM's labels elsewhere)
  <set>_share_random_at_95             random order, no loop (mean over 5 orders)
  <set>_interval_coverage              share of checkpoints (every 10th review from the 30th, every run)
                                       whose 95% interval holds the true accuracy
  <set>_interval_mean_width
  <set>_seconds_between_reviews_p95    a save to the next row shown, refits included

Label efficiency (`--ks`): k gold rows drawn at random from the train split, accuracy on the same test rows:

  <set>_k<k>_student   logistic regression on all-mpnet-base-v2 embeddings of the k rows
  <set>_k<k>_llm       the LLM zero-shot (k = 0), or with the k rows as its demo pool (4 nearest per row;
                       only with --demos: a prompt per row, slow)
  <set>_k<k>_best      labelmill's best with those k rows: of the student, the student with the LLM's surest labels
                       on the test rows as its prior (the review loop's), and each combined with the LLM's
                       distribution (weights fitted on the k rows), the one with the best 5-fold accuracy on the
                       k rows (never chosen on test rows); `_best_uses` names it, `_arms` gives every arm
  <set>_majority       the test rows' majority label share

    python bench/zero_labels.py [--sets sst2,ag_news,banking77] [--rows 1000] [--runs 10] [--ks 0,50,100,200,500]
                                [--demos] [--prior llm|none] [--encoder NAME] [--audit 30] [--max-share 1.0]
                                [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = {
    "sst2": (ROOT / "examples" / "zero" / "sst2.yaml", DATA / "sst2" / "test.csv", DATA / "sst2" / "train.csv"),
    "ag_news": (ROOT / "examples" / "zero" / "agnews.yaml", DATA / "ag_news" / "test.csv", DATA / "ag_news" / "train_subset.csv"),
    "banking77": (ROOT / "examples" / "zero" / "banking77.yaml", DATA / "banking77" / "test.csv", DATA / "banking77" / "train.csv"),
}
TARGET = 0.95
ENCODER = "all-mpnet-base-v2"

sys.path.insert(0, str(ROOT / "bench"))
from _report import emit  # noqa: E402
from review import fresh_copy, share_static  # noqa: E402  (the review bench's static baselines and store copy)


def test_rows(name: str, rows: int):
    import pandas as pd

    frame = pd.read_csv(SETS[name][1])
    if name == "banking77":  # sorted by intent: a random permutation first
        frame = frame.iloc[np.random.default_rng(0).permutation(len(frame))]
    return frame.head(rows).reset_index(drop=True)[["text", "label"]]


def llm_table(config: Path, frame, project: Path) -> tuple[np.ndarray, list, np.ndarray, float]:
    """The LLM's distribution, label and confidence per row (labeled once; cached in the project store)."""
    import labelmill
    from labelmill.config import load_config
    from labelmill.store import Store

    started = time.perf_counter()
    result = labelmill.run(config, frame, project=project)
    with Store(project) as store:
        table = store.labels(result.run_id, len(frame), load_config(config).label_names)
    return table.probs, table.labels, np.nan_to_num(table.confidence, nan=0.0), time.perf_counter() - started


def review_runs(config: Any, frame, gold: list[str], project: Path, runs: int, max_share: float, prior: str | None = "llm", audit: int = 30, batch: int = 10) -> dict:
    """`runs` review loops (audit draws seeded 0..runs-1) until the truth reaches the target."""
    from labelmill.strategies.review.run import ReviewSession

    n = len(gold)
    shares, held, widths, waits, setup = [], [], [], [], []
    started = time.perf_counter()
    warm = ReviewSession.open(config, frame, project=project, student=True, use_examples=False)  # the embeddings, once, into the store
    warm.close()
    first_open = time.perf_counter() - started
    for run in range(runs):
        copy = fresh_copy(project, f"run{run}")
        started = time.perf_counter()
        session = ReviewSession.open(config, frame, project=copy, student=True, use_examples=False, batch=batch, target=TARGET,
                                     stop_at_target=False, audit_seed=run, prior=prior, audit=audit)
        setup.append(time.perf_counter() - started + (first_open if run == 0 else 0.0))
        clock = [time.perf_counter()]

        def truth(s: ReviewSession) -> float:
            return float(np.mean([a == g for a, g in zip(s.routing.labels, gold)]))

        def step(s: ReviewSession) -> None:
            now = time.perf_counter()
            waits.append(now - clock[0])
            count = s.log.count()
            if count >= 30 and count % 10 == 0:
                interval = s.status()["interval"]
                if interval is not None:
                    right = truth(s)
                    held.append(interval[0] <= right <= interval[1])
                    widths.append(interval[1] - interval[0])
            clock[0] = time.perf_counter()

        done = session.simulate(lambda i: gold[i], reviews=int(max_share * n), until=lambda s: truth(s) >= TARGET, on_step=step)
        shares.append(done / n if truth(session) >= TARGET else 1.0)
        session.close()
        print(f"  run {run}: {done} reviews, share {shares[-1]:.3f}", file=sys.stderr, flush=True)
    return {"share": float(np.mean(shares)), "shares": shares, "coverage": float(np.mean(held)) if held else None, "checkpoints": len(held),
            "width": float(np.mean(widths)) if widths else None, "wait_p95": float(np.quantile(waits, 0.95)) if waits else None,
            "wait_median": float(np.median(waits)) if waits else None, "setup_s": float(np.mean(setup)), "first_setup_s": setup[0] if setup else None}


def efficiency(name: str, config: Path, frame, gold: list[str], llm_probs: np.ndarray, project: Path, ks: list[int], demos: bool) -> dict:
    """The label-efficiency table: student, LLM and combination on the same k train rows."""
    import pandas as pd

    from labelmill.config import load_config
    from labelmill.selectors.embeddings import embed
    from labelmill.store import Store
    from labelmill.strategies.review.routing import surest_rows

    names = load_config(config).label_names
    index = {v: i for i, v in enumerate(names)}
    y_test = np.array([index[g] for g in gold])
    train = pd.read_csv(SETS[name][2])
    train = train[train["label"].astype(str).isin(index)].reset_index(drop=True)
    pool = train.iloc[np.random.default_rng(0).permutation(len(train))[: max(ks)]].reset_index(drop=True)[["text", "label"]]
    y_pool = np.array([index[str(v)] for v in pool["label"]])
    out: dict = {f"{name}_majority": float(np.bincount(y_test).max() / len(y_test))}
    started = time.perf_counter()
    with Store(project) as store:
        X_test = embed(frame["text"].astype(str).tolist(), ENCODER, store)
        X_pool = embed(pool["text"].astype(str).tolist(), ENCODER, store)
    embed_s = time.perf_counter() - started
    pool_probs, _, _, pool_label_s = llm_table(config, pool, project)  # the LLM on the k rows: the combination's fit needs it
    out[f"{name}_k0_llm"] = float(np.mean(llm_probs.argmax(axis=1) == y_test))
    out[f"{name}_embed_s"] = round(embed_s, 1)  # the student's setup (every student and combination arm)
    out[f"{name}_k_rows_label_s"] = round(pool_label_s, 1)  # the combination's extra setup: the LLM over the k rows
    prior = surest_rows(llm_probs)  # the review loop's prior: the LLM's surest labels on the (unlabeled) test rows
    for k in ks:
        if k == 0:
            continue
        X, y, P = X_pool[:k], y_pool[:k], pool_probs[:k]
        if len(np.unique(y)) < 2:
            continue
        arms = candidates(X, y, P, X_test, llm_probs, prior, len(names))
        out[f"{name}_k{k}_student"] = float(np.mean(arms["student"][1].argmax(axis=1) == y_test))
        cv = {arm: float(np.mean(held.argmax(axis=1) == y)) for arm, (held, _) in arms.items()}
        chosen = max(arms, key=lambda arm: (cv[arm], -list(arms).index(arm)))  # chosen on the k rows alone; ties to the simpler arm
        out[f"{name}_k{k}_best"] = float(np.mean(arms[chosen][1].argmax(axis=1) == y_test))
        out[f"{name}_k{k}_best_uses"] = f"{chosen} (chosen by 5-fold accuracy on the {k} rows: " + ", ".join(f"{a} {v:.3f}" for a, v in cv.items()) + ")"
        out[f"{name}_k{k}_arms"] = {arm: round(float(np.mean(test.argmax(axis=1) == y_test)), 3) for arm, (_, test) in arms.items()}
        if demos:
            out[f"{name}_k{k}_llm"] = llm_with_demos(config, frame, pool.head(k), y_test, names, project)
    return out


def candidates(X: np.ndarray, y: np.ndarray, P: np.ndarray, X_test: np.ndarray, P_test: np.ndarray, prior: np.ndarray, k_labels: int,
               folds: int = 5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What labelmill can make of k gold rows, each arm as (out-of-fold distributions on the k rows, distributions
    on the test rows):
      student        logistic regression on the k rows
      student+prior  the same plus the LLM's surest labels on the unlabeled test rows (weight 0.5 against 2):
                     the review loop's student
      LLM+student    the LLM's distribution combined with the student's, weights fitted on the k rows
      LLM+student+prior  the review loop's combination"""
    from labelmill.numeric.combination import combine, fit_combination
    from labelmill.strategies.students.models import LinearStudent

    prior_x, prior_y = X_test[prior], P_test[prior].argmax(axis=1)

    def student(rows: np.ndarray, with_prior: bool) -> LinearStudent:
        if not with_prior:
            return LinearStudent(k_labels, seed=0).fit(X[rows], y[rows])
        weight = np.concatenate([np.full(len(prior), 0.5), np.full(len(rows), 2.0)])
        return LinearStudent(k_labels, seed=0).fit(np.vstack([prior_x, X[rows]]), np.concatenate([prior_y, y[rows]]), weight)

    order = np.random.default_rng(0).permutation(len(y))
    every = np.arange(len(y))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for with_prior in (False, True):
        held = np.zeros((len(y), k_labels))
        for f in range(folds):
            test = order[f::folds]
            held[test] = student(np.setdiff1d(order, test), with_prior).predict_proba(X[test])
        out["student+prior" if with_prior else "student"] = (held, student(every, with_prior).predict_proba(X_test))
    for base in ("student", "student+prior"):
        held_s, test_s = out[base]
        held_q = np.zeros((len(y), k_labels))
        for f in range(folds):  # the combination's own weights, fitted without the row they score
            test = order[f::folds]
            train = np.setdiff1d(order, test)
            held_q[test] = combine([P[test], held_s[test]], fit_combination([P[train], held_s[train]], y[train]))
        out[f"LLM+{base}"] = (held_q, combine([P_test, test_s], fit_combination([P, held_s], y)))
    return out


def llm_with_demos(config: Path, frame, demos, y_test: np.ndarray, names: list[str], project: Path) -> float:
    """The LLM with the k rows as its demo pool: the 4 most similar per row."""
    import yaml

    import labelmill
    from labelmill.store import Store

    cfg = yaml.safe_load(Path(config).read_text())
    cfg["examples"] = {"items": demos.to_dict("records"), "label_column": "label", "k": 4, "selection": "similar"}
    result = labelmill.run(cfg, frame, project=project)
    with Store(project) as store:
        table = store.labels(result.run_id, len(frame), names)
    return float(np.mean(np.array([names.index(v) if v in names else -1 for v in table.labels]) == y_test))


def bench_set(name: str, args, workdir: Path) -> dict:
    config = SETS[name][0]
    frame = test_rows(name, args.rows)
    gold = frame["label"].astype(str).tolist()
    project = workdir / f"{name}.db"
    probs, labels, conf, label_s = llm_table(config, frame, project)
    correct = np.array([a == g for a, g in zip(labels, gold)])
    n = len(gold)
    out = {f"{name}_rows": n, f"{name}_llm_accuracy": float(correct.mean()), f"{name}_label_s": round(label_s, 1)}
    out[f"{name}_share_lowconf_at_95"] = share_static(np.argsort(conf, kind="stable"), correct)
    out[f"{name}_share_random_at_95"] = float(np.mean([share_static(np.random.default_rng(s).permutation(n), correct) for s in range(5)]))
    if args.runs:
        loop_config = config
        if args.encoder:  # the review student's encoder (the LLM's prompts do not change: its labels come from the store)
            import yaml

            loop_config = yaml.safe_load(Path(config).read_text())
            loop_config.setdefault("examples", {})["embedding_model"] = args.encoder
        loops = review_runs(loop_config, frame, gold, project, args.runs, args.max_share, None if args.prior == "none" else args.prior, args.audit, args.batch)
        out.update({f"{name}_share_reviewed_at_95": loops["share"], f"{name}_share_reviewed_at_95_runs": loops["shares"],
                    f"{name}_interval_coverage": loops["coverage"], f"{name}_interval_checkpoints": loops["checkpoints"],
                    f"{name}_interval_mean_width": loops["width"], f"{name}_seconds_between_reviews_p95": loops["wait_p95"],
                    f"{name}_seconds_between_reviews_median": loops["wait_median"], f"{name}_review_setup_s": loops["first_setup_s"]})
        low = out[f"{name}_share_lowconf_at_95"]
        out[f"{name}_ratio_to_lowconf"] = loops["share"] / low if low else None
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    if ks:
        out.update(efficiency(name, config, frame, gold, probs, project, ks, args.demos))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="sst2,ag_news,banking77")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ks", default="0,50,100,200,500")
    parser.add_argument("--demos", action="store_true", help="Also the LLM with the k rows as demos (a prompt per row: slow).")
    parser.add_argument("--prior", default="llm", choices=["llm", "none"], help="What the student learns from before any review.")
    parser.add_argument("--encoder", help="The review student's sentence encoder instead of the config's (e.g. all-MiniLM-L6-v2).")
    parser.add_argument("--audit", type=int, default=30, help="Random audit rows among the first reviews (0: none).")
    parser.add_argument("--batch", type=int, default=10, help="Refit the loop's models after this many reviews.")
    parser.add_argument("--max-share", type=float, default=1.0, help="Stop a review loop after this share of rows.")
    parser.add_argument("--workdir", help="Keep the project stores here (default: a temporary folder).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures: dict = {"rows": args.rows, "runs": args.runs}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            one = bench_set(name.strip(), args, workdir)
            print(json.dumps({k: v for k, v in one.items() if not isinstance(v, (dict, list))}, default=float), file=sys.stderr, flush=True)
            figures.update(one)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    emit(figures if args.json else {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}, args.json)


if __name__ == "__main__":
    main()
