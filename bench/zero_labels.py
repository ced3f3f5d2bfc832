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

The tier (`--tier-model`, default qwen2.5-coder-1.5b, on `--tier-sets`): before the first review the stronger
model labels the half of the rows the 0.5B was least sure of (`labelmill review --tier-model`), and the loop
runs on those labels; the same loop without it is printed beside (`<set>_no_tier_*`), and so are the static
orders on the tier's labels (`<set>_share_lowconf_at_95_tier`, `<set>_share_random_at_95_tier`: same labels,
no loop), `<set>_tier_llm_accuracy` and `<set>_tier_label_s` (the stronger model's time, setup counted).

Label efficiency (`--ks`): k gold rows drawn at random from the train split, accuracy on the same test rows:

  <set>_k<k>_student   logistic regression on all-mpnet-base-v2 embeddings of the k rows
  <set>_k<k>_llm       the LLM zero-shot (k = 0), or with the k rows as its demo pool (4 nearest per row;
                       only at the k of --demos: a prompt per row, slow); `_llm_s` its time, the k rows'
                       own out-of-fold labels included (the combination's fit needs them)
  <set>_k<k>_best      labelmill's best with those k rows: of the student, the student with the LLM's surest labels
                       on the test rows as its prior (the review loop's), the student self-trained on its own surest
                       labels on the test rows (no LLM: `student+self`), and each combined with the LLM's
                       distribution (weights fitted on the k rows; with the tier, also the tier's distributions:
                       the stronger model on the test rows and the k rows at least as unsure; with --demos, also
                       the LLM given the k rows as demos, "LLM demos", the k rows' own from the other folds),
                       the one with the best 5-fold accuracy on the k rows (never chosen on test rows); `_best_uses` names it, `_arms` gives every arm
  <set>_majority       the test rows' majority label share

    python bench/zero_labels.py [--sets sst2,ag_news,banking77] [--rows 1000] [--runs 10] [--ks 0,50,100,200,500]
                                [--demos [50,100,200]] [--prior auto|llm|self|none] [--encoder NAME] [--audit 20] [--audit-every 20] [--audit-uniform 0.6] [--max-share 1.0]
                                [--tier-model qwen2.5-coder-1.5b|''] [--tier-share 0.5] [--tier-sets sst2,ag_news]
                                [--split test|train] [--truth saved|refit] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
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
from _report import add_audit_options, audit_knobs, emit, per_set, workdir  # noqa: E402
from review import fresh_copy, share_static  # noqa: E402  (the review bench's static baselines and store copy)


def test_rows(name: str, rows: int, split: str = "test"):
    """The rows every figure is measured on. `split="train"`: the first `rows` of a random permutation (seed 1)
    of the train split instead, to choose the loop's settings on rows that are not the test rows."""
    import pandas as pd

    if split == "train":
        frame = pd.read_csv(SETS[name][2])
        return frame.iloc[np.random.default_rng(1).permutation(len(frame))].head(rows).reset_index(drop=True)[["text", "label"]]
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


TRUTH_AT_SAVE = [True]  # `--truth saved` (default) or `refit`
LOOP_KNOBS: dict[str, Any] = {}  # the review loop's options from the command line (`--audit`, `--audit-every`, `--audit-uniform`)


def review_runs(config: Any, frame, gold: list[str], project: Path, runs: int, max_share: float, prior: str | None = "auto", batch: int = 10,
                tier: tuple[str, float] | None = None) -> dict:
    """`runs` review loops (audit draws seeded 0..runs-1) until the truth reaches the target; with `tier`
    (model, share), the stronger model labels the rows the first labeler was least sure of before the first
    review (`ReviewSession.escalate`; its time is the first run's setup)."""
    from labelmill.strategies.review.run import ReviewSession

    n = len(gold)
    shares, held, widths, waits, setup = [], [], [], [], []
    started = time.perf_counter()
    knobs = {"tier_model": tier[0], "tier_share": tier[1]} if tier else {}
    knobs.update(LOOP_KNOBS)
    warm = ReviewSession.open(config, frame, project=project, student=True, use_examples=False, **knobs)  # the embeddings, once, into the store
    warm.escalate()  # the tier's labels, once, into the store
    warm.close()
    first_open = time.perf_counter() - started
    for run in range(runs):
        copy = fresh_copy(project, f"run{run}")
        started = time.perf_counter()
        session = ReviewSession.open(config, frame, project=copy, student=True, use_examples=False, batch=batch, target=TARGET,
                                     stop_at_target=False, audit_seed=run, prior=prior, **knobs)
        session.escalate()
        setup.append(time.perf_counter() - started + (first_open if run == 0 else 0.0))
        clock = [time.perf_counter()]

        def truth(s: ReviewSession) -> float:
            """The dataset's accuracy as `labeled_frame` exports it: a reviewed row's final label is its
            review from the save on, every other row's the loop's label from its last refit (`--truth refit`:
            the loop's labels only, which take in the reviews at each refit: the figures before 2026-12-07)."""
            settled = s.reviewed() if TRUTH_AT_SAVE[0] else {}
            return float(np.mean([(settled[i] if i in settled else a) == g for i, (a, g) in enumerate(zip(s.routing.labels, gold))]))

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


def with_tier(config: Path, frame, probs: np.ndarray, rows: np.ndarray, model: str, project: Path) -> tuple[np.ndarray, float]:
    """The default labeler's distributions with `rows` labeled again by the stronger `model` (the loop's tier:
    `ReviewSession.escalate`), and the seconds that took (the store's cache answers what was asked before)."""
    import yaml

    cfg = yaml.safe_load(Path(config).read_text())
    cfg["model"]["name"] = model
    out = probs.copy()
    if not len(rows):
        return out, 0.0
    sub, _, _, seconds = llm_table(cfg, frame.iloc[rows].reset_index(drop=True), project)
    ok = ~np.isnan(sub).any(axis=1)
    out[np.asarray(rows)[ok]] = sub[ok]
    return out, seconds


def tier_rows(confidence: np.ndarray, share: float) -> np.ndarray:
    """The rows `escalate` gives the stronger model: the `share` the first labeler was least sure of."""
    return np.argsort(confidence, kind="stable")[: int(round(share * len(confidence)))]


def efficiency(name: str, config: Path, frame, gold: list[str], llm_probs: np.ndarray, project: Path, ks: list[int], demo_ks: list[int],
               tier: tuple[str, float] | None = None, llm_s: float = 0.0) -> dict:
    """The label-efficiency table: student, LLM and combination on the same k train rows. `<set>_k<k>_best_s`
    counts everything the choice needed (every arm is made before one is chosen): the LLM on the test rows
    (`llm_s`, measured by the caller), the embeddings, the LLM and the tier on the k rows and the test rows,
    the demos arm where there is one, and the fits."""
    import pandas as pd

    from labelmill.config import load_config
    from labelmill.selectors.embeddings import embed
    from labelmill.store import Store
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
    pool_probs, _, pool_conf, pool_label_s = llm_table(config, pool, project)  # the LLM on the k rows: the combination's fit needs it
    out[f"{name}_k0_llm"] = float(np.mean(llm_probs.argmax(axis=1) == y_test))
    llms = {"LLM": (pool_probs, llm_probs)}
    if tier:  # the tier's rows of the test set, and the k rows at least as unsure as the surest of them
        model, share = tier
        chosen = tier_rows(llm_probs.max(axis=1), share)
        test_tier, test_tier_s = with_tier(config, frame, llm_probs, chosen, model, project)
        edge = float(llm_probs.max(axis=1)[chosen].max()) if len(chosen) else -1.0
        pool_tier, pool_s = with_tier(config, pool, pool_probs, np.flatnonzero(pool_conf <= edge), model, project)
        llms["LLM tier"] = (pool_tier, test_tier)
        out[f"{name}_k0_llm_tier"] = float(np.mean(test_tier.argmax(axis=1) == y_test))
        out[f"{name}_k_rows_tier_s"] = round(pool_s, 1)
        setup_s = llm_s + test_tier_s + pool_s
    else:
        setup_s = llm_s
    setup_s += embed_s + pool_label_s
    out[f"{name}_embed_s"] = round(embed_s, 1)  # the student's setup (every student and combination arm)
    out[f"{name}_k_rows_label_s"] = round(pool_label_s, 1)  # the combination's extra setup: the LLM over the k rows
    for k in ks:
        if k == 0:
            continue
        X, y = X_pool[:k], y_pool[:k]
        if len(np.unique(y)) < 2:
            continue
        given = {llm: (P[:k], P_test) for llm, (P, P_test) in llms.items()}
        demo_s = 0.0
        if k in demo_ks:  # the LLM given the same k rows as demos: an LLM of its own, combined like the others
            demo_test, demo_held, demo_s = llm_with_demos(config, frame, pool.head(k), project, len(names))
            given["LLM demos"] = (demo_held, demo_test)
            out[f"{name}_k{k}_llm"] = float(np.mean(demo_test.argmax(axis=1) == y_test))
            out[f"{name}_k{k}_llm_s"] = round(demo_s, 1)
        fit_started = time.perf_counter()
        arms = candidates(X, y, given, X_test, len(names))
        out[f"{name}_k{k}_best_s"] = round(setup_s + demo_s + time.perf_counter() - fit_started, 1)
        out[f"{name}_k{k}_student"] = float(np.mean(arms["student"][1].argmax(axis=1) == y_test))
        cv = {arm: float(np.mean(held.argmax(axis=1) == y)) for arm, (held, _) in arms.items()}
        chosen = max(arms, key=lambda arm: (cv[arm], -list(arms).index(arm)))  # chosen on the k rows alone; ties to the simpler arm
        out[f"{name}_k{k}_best"] = float(np.mean(arms[chosen][1].argmax(axis=1) == y_test))
        out[f"{name}_k{k}_best_uses"] = f"{chosen} (chosen by 5-fold accuracy on the {k} rows: " + ", ".join(f"{a} {v:.3f}" for a, v in cv.items()) + ")"
        out[f"{name}_k{k}_arms"] = {arm: round(float(np.mean(test.argmax(axis=1) == y_test)), 3) for arm, (_, test) in arms.items()}
    return out


def candidates(X: np.ndarray, y: np.ndarray, llms: dict[str, tuple[np.ndarray, np.ndarray]], X_test: np.ndarray, k_labels: int,
               folds: int = 5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What labelmill can make of k gold rows, each arm as (out-of-fold distributions on the k rows, distributions
    on the test rows). `llms`: {name: (its distributions on the k rows, on the test rows)}, the first the default
    labeler's (its surest test labels are the prior of the arms without an LLM):
      student           logistic regression on the k rows
      student+prior     the same plus the LLM's surest labels on the unlabeled test rows (weight 0.5 against 2):
                        the review loop's student
      student+self      the student plus its own surest labels on the unlabeled test rows, twice (self-training,
                        `students.self_trained`; no LLM)
      <LLM>+<student arm>  each LLM's distribution combined with each student arm's (weights fitted on the k rows;
                        the prior is that LLM's surest labels): the review loop's combination"""
    from labelmill.numeric.combination import combine, fit_combination
    from labelmill.strategies.students import LinearStudent, self_trained, surest_rows

    def student(rows: np.ndarray, prior: np.ndarray | str | None, P_test: np.ndarray | None) -> LinearStudent:
        if isinstance(prior, str):  # "self": its own surest labels on the unlabeled test rows (no LLM)
            return self_trained(X[rows], y[rows], X_test, k_labels)
        if prior is None:
            return LinearStudent(k_labels, seed=0).fit(X[rows], y[rows])
        weight = np.concatenate([np.full(len(prior), 0.5), np.full(len(rows), 2.0)])
        return LinearStudent(k_labels, seed=0).fit(np.vstack([X_test[prior], X[rows]]), np.concatenate([P_test[prior].argmax(axis=1), y[rows]]), weight)

    order = np.random.default_rng(0).permutation(len(y))
    every = np.arange(len(y))

    def students(prior: np.ndarray | str | None, P_test: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        held = np.zeros((len(y), k_labels))
        for f in range(folds):
            test = order[f::folds]
            held[test] = student(np.setdiff1d(order, test), prior, P_test).predict_proba(X[test])
        return held, student(every, prior, P_test).predict_proba(X_test)

    first = next(iter(llms.values()))[1]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {"student": students(None, None), "student+prior": students(surest_rows(first), first),
                                                     "student+self": students("self", None)}
    for name, (P, P_test) in llms.items():
        bases = {"student": out["student"], "student+prior": out["student+prior"] if P_test is first else students(surest_rows(P_test), P_test),
                 "student+self": out["student+self"]}
        for base, (held_s, test_s) in bases.items():
            held_q = np.zeros((len(y), k_labels))
            for f in range(folds):  # the combination's own weights, fitted without the row they score
                test = order[f::folds]
                train = np.setdiff1d(order, test)
                held_q[test] = combine([P[test], held_s[test]], fit_combination([P[train], held_s[train]], y[train]))
            out[f"{name}+{base}"] = (held_q, combine([P_test, test_s], fit_combination([P, held_s], y)))
    return out


def llm_with_demos(config: Path, frame, pool, project: Path, n_labels: int, folds: int = 5) -> tuple[np.ndarray, np.ndarray, float]:
    """The LLM with the k `pool` rows as its demo pool (the 4 most similar per row): its distributions on the
    test rows, its distributions on the k rows themselves, each from the other folds' rows only (never its own
    row as a demo; the folds of `candidates`), and the seconds both took."""
    import yaml

    cfg = yaml.safe_load(Path(config).read_text())
    base = cfg.get("name", "zero")

    def with_pool(demos, rows) -> np.ndarray:
        cfg["examples"] = {**(cfg.get("examples") or {}), "items": demos.to_dict("records"), "label_column": "label", "k": 4,
                           "selection": "similar"}
        cfg["name"] = f"{base}-demos{len(demos)}"
        probs, _, _, _ = llm_table(cfg, rows, project)
        return probs

    started = time.perf_counter()
    test = with_pool(pool, frame)
    held = np.full((len(pool), n_labels), np.nan)
    order = np.random.default_rng(0).permutation(len(pool))
    for f in range(folds):
        rows = order[f::folds]
        held[rows] = with_pool(pool.iloc[np.setdiff1d(order, rows)], pool.iloc[rows].reset_index(drop=True))
    return np.nan_to_num(test, nan=1.0 / n_labels), np.nan_to_num(held, nan=1.0 / n_labels), time.perf_counter() - started


def bench_set(name: str, args, workdir: Path) -> dict:
    config = SETS[name][0]
    frame = test_rows(name, args.rows, args.split)
    gold = frame["label"].astype(str).tolist()
    project = workdir / (f"{name}.db" if args.split == "test" else f"{name}-{args.split}.db")
    probs, labels, conf, label_s = llm_table(config, frame, project)
    correct = np.array([a == g for a, g in zip(labels, gold)])
    n = len(gold)
    out = {f"{name}_rows": n, f"{name}_llm_accuracy": float(correct.mean()), f"{name}_label_s": round(label_s, 1)}
    out[f"{name}_share_lowconf_at_95"] = share_static(np.argsort(conf, kind="stable"), correct)
    out[f"{name}_share_random_at_95"] = float(np.mean([share_static(np.random.default_rng(s).permutation(n), correct) for s in range(5)]))
    tier = (args.tier_model, args.tier_share) if args.tier_model and name in args.tier_sets.split(",") else None
    if tier:  # the same baselines on the tier's labels (the stronger model on the unsure rows, no loop): same labels as the loop
        tiered, tier_s = with_tier(config, frame, probs, tier_rows(conf, tier[1]), tier[0], project)
        from labelmill.config import load_config

        names = load_config(config).label_names
        right = tiered.argmax(axis=1) == np.array([names.index(g) for g in gold])
        out.update({f"{name}_tier_label_s": round(tier_s, 1), f"{name}_tier_llm_accuracy": float(right.mean()),
                    f"{name}_share_lowconf_at_95_tier": share_static(np.argsort(tiered.max(axis=1), kind="stable"), right),
                    f"{name}_share_random_at_95_tier": float(np.mean([share_static(np.random.default_rng(s).permutation(n), right) for s in range(5)]))})
    if args.runs:
        loop_config = config
        if args.encoder:  # the review student's encoder (the LLM's prompts do not change: its labels come from the store)
            import yaml

            loop_config = yaml.safe_load(Path(config).read_text())
            loop_config.setdefault("examples", {})["embedding_model"] = args.encoder
        prior = None if args.prior == "none" else args.prior
        if tier:  # the loop without the tier beside it
            plain = review_runs(loop_config, frame, gold, project, args.runs, args.max_share, prior, args.batch)
            out.update({f"{name}_no_tier_share_reviewed_at_95": plain["share"], f"{name}_no_tier_interval_coverage": plain["coverage"],
                        f"{name}_no_tier_interval_mean_width": plain["width"]})
        loops = review_runs(loop_config, frame, gold, project, args.runs, args.max_share, prior, args.batch, tier)
        out[f"{name}_tier"] = f"{tier[0]} on the {tier[1]:.0%} of rows the first labeler was least sure of" if tier else "none"
        out.update({f"{name}_share_reviewed_at_95": loops["share"], f"{name}_share_reviewed_at_95_runs": loops["shares"],
                    f"{name}_interval_coverage": loops["coverage"], f"{name}_interval_checkpoints": loops["checkpoints"],
                    f"{name}_interval_mean_width": loops["width"], f"{name}_seconds_between_reviews_p95": loops["wait_p95"],
                    f"{name}_seconds_between_reviews_median": loops["wait_median"], f"{name}_review_setup_s": loops["first_setup_s"]})
        low = out[f"{name}_share_lowconf_at_95"]
        out[f"{name}_ratio_to_lowconf"] = loops["share"] / low if low else None
        if tier:
            low = out[f"{name}_share_lowconf_at_95_tier"]
            out[f"{name}_ratio_to_lowconf_tier"] = loops["share"] / low if low else None
    ks = [int(k) for k in args.ks.split(",") if k.strip()]
    if ks:
        demo_ks = [int(k) for k in args.demos.split(",") if k.strip()] if args.demos else []
        out.update(efficiency(name, config, frame, gold, probs, project, ks, demo_ks, tier, label_s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="sst2,ag_news,banking77")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ks", default="0,50,100,200,500")
    parser.add_argument("--demos", nargs="?", const="50,100,200", default="",
                        help="Also the LLM with the k rows as demos at these k (default 50,100,200; a prompt per row: slow).")
    parser.add_argument("--prior", default="auto", choices=["llm", "self", "auto", "none"], help="What the student learns from besides the reviews "
                        "(self: the LLM's surest labels, then the student's own once it learned from reviews; auto: its own "
                        "only while it beats the LLM on the audit rows).")
    parser.add_argument("--encoder", help="The review student's sentence encoder instead of the config's (e.g. all-MiniLM-L6-v2).")
    parser.add_argument("--tier-model", default="qwen2.5-coder-1.5b", help="The loop's stronger model ('' for none; `labelmill models pull` it first).")
    parser.add_argument("--tier-share", type=float, default=0.5, help="The share of rows, least sure first, the stronger model labels.")
    parser.add_argument("--tier-sets", default="sst2,ag_news", help="Sets whose loop has the tier (Banking77's 77 labels would take the 1.5B hours).")
    add_audit_options(parser)
    parser.add_argument("--truth", default="saved", choices=["saved", "refit"], help="When a review counts in the dataset's accuracy the "
                        "loops stop on: at its save, as exports read it (default), or at the next refit (the figures before 2026-12-07).")
    parser.add_argument("--batch", type=int, default=10, help="Refit the loop's models after this many reviews.")
    parser.add_argument("--max-share", type=float, default=1.0, help="Stop a review loop after this share of rows.")
    parser.add_argument("--split", default="test", choices=["test", "train"], help="train: measure the loop on --rows rows of the "
                        "train split (a random permutation, seed 1) instead of the test rows, to choose its settings (with --ks '').")
    parser.add_argument("--workdir", help="Keep the project stores here (default: a temporary folder).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.split != "test" and args.ks.strip():
        parser.error("--split train measures the review loop only: add --ks '' (the k rows are drawn from the train split too)")
    LOOP_KNOBS.update(audit_knobs(args))
    TRUTH_AT_SAVE[0] = args.truth == "saved"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures: dict = {"rows": args.rows, "runs": args.runs}
    started = time.perf_counter()
    with workdir(args.workdir) as work:
        per_set(args.sets, lambda name: bench_set(name, args, work), figures)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    emit(figures if args.json else {k: v for k, v in figures.items() if not isinstance(v, (dict, list))}, args.json)


if __name__ == "__main__":
    main()
