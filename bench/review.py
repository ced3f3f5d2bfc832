"""Human effort: how many rows must a person review before the whole dataset reaches 95% accuracy?

Default embedded model, the configs in examples/review/ (label-balanced demos from each set's train
split), the first N test rows of shared SST-2 and AG News. The gold column plays the reviewer and is used
for nothing else: not for the queue, the estimate or the student. Each set runs three ways:

  random    rows reviewed in a random order (mean over 5 seeds), the model's labels elsewhere
  lowconf   lowest model confidence first, no loop
  ours      labelmill's queue with the loop (`ReviewSession.simulate`): after every batch of reviews the
            student (fine-tuned encoder + a linear head refitted on the examples and the reviewed rows)
            and the combination refit, every unreviewed row is relabeled and the queue re-ranks
  ours_reviews_only   the same loop with a student that learns from the reviewed rows only

Same labels, same clock (bench/README): "ours" is given the config's examples file (the student learns from
it, 1,000 of its rows are the seed), so two more arms get the same gold rows, with the static orders:

  student_alone      logistic regression on all-mpnet-base-v2 embeddings of every example ours learns from
                     (seed rows included), its labels everywhere; lowest student confidence first, and random
  llm_calibrated     the LLM calibrated on ours' 1,000 seed rows (`labelmill calibrate`, method auto: bias
                     calibration moves labels); lowest calibrated confidence first

Each arm's seconds count its setup: <set>_ours_s (labeling, opening: seed pass, fine-tuning, embeddings; the
loop), <set>_student_alone_s (embedding the examples and the rows, the fit), <set>_llm_calibrated_s (labeling,
the seed rows' pass, the fit).

Keys per set: <set>_share_reviewed_at_95, <set>_share_random_at_95, <set>_share_lowconf_at_95, the
ratios, <set>_estimated_vs_true_accuracy_max_gap (largest |estimate - truth| from the 50th review on,
while the loop runs), and the starting accuracy.

    python bench/review.py [--sets sst2,ag_news] [--rows 1000] [--batch 10] [--student finetuned] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _arms import llm_calibrated, student_alone
from _report import add_audit_options, audit_knobs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = {
    "sst2": (ROOT / "examples" / "review" / "sst2.yaml", DATA / "sst2" / "test.csv"),
    "ag_news": (ROOT / "examples" / "review" / "agnews.yaml", DATA / "ag_news" / "test.csv"),
}
TARGET = 0.95
AUDIT: dict = {}  # the loop's audit options from the command line (`--audit`, `--audit-every`, `--audit-uniform`)


def share_static(order: np.ndarray, correct: np.ndarray, target: float = TARGET) -> float:
    """The share of rows reviewed, in `order`, before the accuracy reaches `target` (labels fixed)."""
    right = correct.astype(float).copy()
    n = len(right)
    total = right.sum()
    if total / n >= target:
        return 0.0
    for k, i in enumerate(order, start=1):
        total += 1.0 - right[i]
        right[i] = 1.0
        if total / n >= target:
            return k / n
    return 1.0


def fresh_copy(project: Path, name: str) -> Path:
    """A copy of the labeled project with no reviews (SQLite's backup API), so each way starts from zero
    reviews while the model's labels, the embeddings and the fine-tuned encoder's cache come along."""
    import sqlite3

    dest = project.with_name(f"{project.stem}-{name}.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    with sqlite3.connect(project) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
        has_reviews = dst.execute("SELECT name FROM sqlite_master WHERE name = 'reviews'").fetchone()
        if has_reviews:
            dst.execute("DELETE FROM reviews")
    return dest


def run_loop(config: Path, frame, project: Path, gold: list[str], student, batch: int, use_examples: bool) -> dict:
    from labelmill.strategies.review.run import ReviewSession

    project = fresh_copy(project, "examples" if use_examples else "reviews-only")
    started = time.perf_counter()
    session = ReviewSession.open(config, frame, project=project, batch=batch, student=student, use_examples=use_examples, target=TARGET,
                                 stop_at_target=False, **AUDIT)  # the bench measures the truth, so it runs until the truth reaches the target
    opened = time.perf_counter() - started
    n = len(gold)
    curve: list[tuple[int, float, float]] = []

    def point(s: ReviewSession) -> tuple[int, float, float]:
        r = s.routing
        settled = s.reviewed()
        right = sum(1 for i in range(n) if (i in settled) or r.labels[i] == gold[i])
        conf = sum(1.0 if i in settled else float(r.confidence[i]) for i in range(n))
        return len(settled), right / n, conf / n

    curve.append(point(session))
    session.simulate(lambda i: gold[i], until=lambda s: point(s)[1] >= TARGET, on_step=lambda s: curve.append(point(s)))
    final = curve[-1]
    gaps = [abs(est - acc) for k, acc, est in curve if k >= 50]
    out = {
        "share": final[0] / n if final[1] >= TARGET else 1.0,
        "max_gap": max(gaps) if gaps else 0.0,
        "start_accuracy": curve[0][1], "start_estimate": curve[0][2],
        "open_s": round(opened, 1), "loop_s": round(time.perf_counter() - started - opened, 1), "refits": session.refits,
        "curve": [(k, round(a, 4), round(e, 4)) for k, a, e in curve[:: max(1, len(curve) // 25)]],
        "final_status": {k: session.status()[k] for k in ("estimated_accuracy", "lower_bound", "reviews_to_target")},
    }
    session.close()
    return out


def same_label_arms(name: str, config: Path, frame, project: Path, label_s: float) -> dict:
    """The student on ours' gold rows, and the LLM calibrated on ours' seed rows (`_arms`): static orders on
    their labels. Ours' rows are the review session's own split (`gold_pool`)."""
    import pandas as pd

    from labelmill.config import load_config
    from labelmill.strategies.review import gold_pool

    cfg = load_config(config)
    gold = frame["label"].astype(str).to_numpy()
    n = len(gold)
    pool = gold_pool(cfg)
    records = pd.DataFrame([{**r, "label": label} for r, label in zip(pool.records, pool.labels)])
    student = student_alone(cfg, records, frame, project.with_name(f"{name}-student-alone.db"))  # its own store
    right = student.labels == gold
    out = {f"{name}_student_alone_gold_rows": student.gold_rows, f"{name}_student_alone_accuracy": float(right.mean()),
           f"{name}_student_alone_s": round(student.seconds, 1),
           f"{name}_student_alone_share_lowconf_at_95": share_static(np.argsort(student.probs.max(axis=1), kind="stable"), right),
           f"{name}_student_alone_share_random_at_95": float(np.mean([share_static(np.random.default_rng(s).permutation(n), right) for s in range(5)]))}
    seed = records.iloc[pool.seed].reset_index(drop=True)
    cal = llm_calibrated(cfg, seed, frame, project)  # ours labeled these seed rows: from the cache where the prompt matches
    right = cal.frame["llm_label"].astype(str).to_numpy() == gold
    conf = np.nan_to_num(cal.frame["llm_confidence"].to_numpy(dtype=float), nan=0.0)
    out.update({f"{name}_llm_calibrated_method": cal.calibrator.method, f"{name}_llm_calibrated_accuracy": float(right.mean()),
                f"{name}_llm_calibrated_s": round(label_s + cal.seconds, 1),
                f"{name}_llm_calibrated_share_lowconf_at_95": share_static(np.argsort(conf, kind="stable"), right)})
    return out


def bench_set(name: str, rows: int, batch: int, student, workdir: Path) -> dict:
    import pandas as pd

    import labelmill

    config, source = SETS[name]
    frame = pd.read_csv(source).head(rows)
    gold = frame["label"].astype(str).tolist()
    project = workdir / f"{name}.db"
    started = time.perf_counter()
    result = labelmill.run(config, frame, project=project)
    label_s = time.perf_counter() - started
    from labelmill.config import load_config
    from labelmill.store import Store

    names = load_config(config).label_names
    with Store(project) as store:
        table = store.labels(result.run_id, len(frame), names)
    llm = table.labels
    conf = np.nan_to_num(table.confidence, nan=0.0)
    correct = np.array([a == g for a, g in zip(llm, gold)])
    n = len(gold)
    randoms = [share_static(np.random.default_rng(seed).permutation(n), correct) for seed in range(5)]
    lowconf = share_static(np.argsort(conf, kind="stable"), correct)
    ours = run_loop(config, frame, project, gold, student, batch, use_examples=True)
    alone = run_loop(config, frame, project, gold, True, batch, use_examples=False)
    arms = same_label_arms(name, config, frame, project, label_s)  # after ours: its seed rows' answers are in the store
    random_share = float(np.mean(randoms))
    return {
        f"{name}_rows": n,
        f"{name}_llm_accuracy": float(correct.mean()),
        f"{name}_label_s": round(label_s, 1),
        f"{name}_share_reviewed_at_95": ours["share"],
        f"{name}_share_random_at_95": random_share,
        f"{name}_share_random_at_95_seeds": randoms,
        f"{name}_share_lowconf_at_95": lowconf,
        f"{name}_ratio_to_random": ours["share"] / random_share if random_share else None,
        f"{name}_ratio_to_lowconf": ours["share"] / lowconf if lowconf else None,
        f"{name}_estimated_vs_true_accuracy_max_gap": ours["max_gap"],
        f"{name}_ours": ours,
        f"{name}_share_reviews_only_at_95": alone["share"],
        f"{name}_reviews_only_max_gap": alone["max_gap"],
        f"{name}_ours_s": round(label_s + ours["open_s"] + ours["loop_s"], 1),
        **arms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="sst2,ag_news")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--student", default="finetuned", choices=["finetuned", "linear"])
    add_audit_options(parser)
    parser.add_argument("--workdir", help="Keep the project stores here (default: a temporary folder).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    AUDIT.update(audit_knobs(args))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    student = "finetuned" if args.student == "finetuned" else True
    figures: dict = {"rows": args.rows, "batch": args.batch, "student": args.student}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            one = bench_set(name.strip(), args.rows, args.batch, student, workdir)
            print(json.dumps({k: v for k, v in one.items() if not isinstance(v, (dict, list))}, default=float), file=sys.stderr, flush=True)
            figures.update(one)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(figures, default=float))
        return
    for key, value in figures.items():
        if not isinstance(value, (dict, list)):
            print(f"{key:45} {value}")


if __name__ == "__main__":
    main()
