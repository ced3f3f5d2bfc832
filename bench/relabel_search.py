"""The relabel step after the strategy search on the reviews: do demos pay, and what do they buy?

A new user's start (the configs in examples/zero/: label names and one line of guideline, no examples, no
seed): the default 0.5B labels the first --rows test rows zero-shot, and the loop of `labelmill review`
(student on with the LLM's surest labels as its prior, random audit rows on, batch 10) is simulated with
the gold column as the reviewer for --reviews reviews (audit seed 0). Then, as `labelmill review
--tune-after` does:

  search     `ReviewSession.tune_relabel()`: `tune` on the reviews, a seeded half as the demo pool and the other
             half scored (the people's labels as gold), zero-shot against 4- and 8-shot similar and balanced
             demos; the relabel step is on only where the best demos beat zero-shot there
  relabel    `ReviewSession.relabel(--relabel)`: the most uncertain unreviewed rows labeled again with the
             chosen demos from every reviewed row, and the loop refitted

Reported per set (the gold column is read for these figures only, never by the loop or the search):
  <set>_majority            the rows' majority label share
  <set>_search_*            the search's dev rows, zero-shot and best few-shot accuracy there, its choice, seconds
  <set>_relabel_rows        rows relabeled (0 when the search turned the step off)
  <set>_relabeled_llm_before / _after   the LLM's accuracy on those rows before and after
  <set>_truth_before / _after           the whole dataset's accuracy (the loop's labels) before and after
  <set>_estimate_before / _after        what the page says of it (estimated accuracy, 95% interval)
  <set>_relabel_s                       the relabel step's seconds

With --paced SECONDS, the app's default instead (`labelmill review` on the embedded model): a person reviews one
row every SECONDS (think time, not counted) while the strategy search starts on its own after 40 reviews and
the relabel step after it, every 50 reviews, if demos paid; both run on a thread of the same process, as in
the app. For --paced-reviews reviews (400), then the jobs under way are let finish:
  <set>_paced_wait_p95_idle / _during_job   a save to the next row shown (the loop's refits included), p95,
                                             while no model job runs and while one does
  <set>_paced_reviews_during_job            how many of those reviews a model job ran beside
  <set>_paced_truth_with_steps / _without   the dataset's accuracy after the same reviews, with the default
                                             steps and on a copy of the store without them
  <set>_paced_search / _relabel_steps       the search's outcome, and how many relabel steps ran

    python bench/relabel_search.py [--sets sst2,ag_news] [--rows 1000] [--reviews 100] [--relabel 200] [--workdir DIR] [--json]
    python bench/relabel_search.py --paced 3 [--paced-reviews 400] [--sets sst2] [--rows 1000] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import add_audit_options, audit_knobs, emit, per_set, workdir  # noqa: E402
from zero_labels import SETS, llm_table, test_rows  # noqa: E402

AUDIT: dict = {}  # the loop's audit options from the command line (`--audit`, `--audit-every`, `--audit-uniform`)


def bench_set(name: str, rows: int, reviews: int, relabel: int, workdir: Path) -> dict:
    from labelmill.config import load_config
    from labelmill.store import Store
    from labelmill.strategies.review.run import ReviewSession

    config = SETS[name][0]
    frame = test_rows(name, rows)
    gold = frame["label"].astype(str).tolist()
    project = workdir / f"{name}.db"
    _, _, _, label_s = llm_table(config, frame, project)  # the zero-shot labels (cached in the store on a rerun)
    names = load_config(config).label_names
    session = ReviewSession.open(config, frame, project=project, student=True, use_examples=False, batch=10, stop_at_target=False, audit_seed=0, **AUDIT)

    def truth() -> float:
        return float(np.mean([a == g for a, g in zip(session.routing.labels, gold)]))

    def estimate() -> list:
        status = session.status()
        return [status["estimated_accuracy"], status["interval"]]

    done = session.simulate(lambda i: gold[i], reviews=reviews)
    majority = max(gold.count(v) for v in set(gold)) / len(gold)
    out = {f"{name}_rows": len(gold), f"{name}_majority": majority, f"{name}_label_s": round(label_s, 1), f"{name}_reviews": done,
           f"{name}_truth_before": truth(), f"{name}_estimate_before": estimate()}
    started = time.perf_counter()
    found = session.tune_relabel()
    out.update({f"{name}_search_s": round(time.perf_counter() - started, 1), f"{name}_search_dev_rows": found["dev_rows"],
                f"{name}_search_zero_shot": found["zero_shot_accuracy"], f"{name}_search_best_few_shot": found["best_few_shot"],
                f"{name}_search_relabel": found["relabel"]})
    chosen = session.routing.queue()[:relabel]
    before = [session.table.rows[i].label if session.table.rows[i] is not None else None for i in chosen]
    started = time.perf_counter()
    count = session.relabel(relabel)
    out[f"{name}_relabel_s"] = round(time.perf_counter() - started, 1)
    out[f"{name}_relabel_rows"] = count
    if count:
        with Store(project) as store:
            table = store.labels(store.runs()[-1]["id"], count, names)
        out[f"{name}_relabeled_llm_before"] = float(np.mean([b == gold[i] for b, i in zip(before, chosen)]))
        out[f"{name}_relabeled_llm_after"] = float(np.mean([a == gold[i] for a, i in zip(table.labels, chosen)]))
    out.update({f"{name}_truth_after": truth(), f"{name}_estimate_after": estimate()})
    session.close()
    return out


def paced_set(name: str, rows: int, pace: float, workdir: Path, reviews: int = 400) -> dict:
    """The app's default model steps beside a person who reviews one row every `pace` seconds, for `reviews`
    reviews (see the module's text)."""
    from labelmill.strategies.review.cli import model_steps
    from labelmill.strategies.review.run import ReviewSession
    from review import fresh_copy

    config = SETS[name][0]
    frame = test_rows(name, rows)
    gold = frame["label"].astype(str).tolist()
    project = workdir / f"{name}-paced.db"
    llm_table(config, frame, project)  # the zero-shot labels, as `labelmill review` makes them before it opens
    without = fresh_copy(project, "without")
    said: list[str] = []
    session = ReviewSession.open(config, frame, project=project, student=True, use_examples=False, batch=10, stop_at_target=False, audit_seed=0, **AUDIT,
                                 on_event=lambda e: said.append(str(getattr(e, "message", ""))))
    model_steps(session, None, None, default=True)
    waits: dict[str, list[float]] = {"idle": [], "job": []}
    started_at = time.perf_counter()
    for _ in range(reviews):
        job = session.background_job
        started = time.perf_counter()
        if not session.simulate(lambda i: gold[i], reviews=1):
            break
        waits["job" if job else "idle"].append(time.perf_counter() - started)
        time.sleep(pace)
    done = session.log.count()
    session.wait_for_relabel()
    ended = time.perf_counter() - started_at
    truth_with = float(np.mean([a == g for a, g in zip(session.routing.labels, gold)]))
    search = session.relabel_search
    session.close()
    plain = ReviewSession.open(config, frame, project=without, student=True, use_examples=False, batch=10, stop_at_target=False, audit_seed=0, **AUDIT)
    plain.simulate(lambda i: gold[i], reviews=done)
    truth_without = float(np.mean([a == g for a, g in zip(plain.routing.labels, gold)]))
    plain.close()

    def p95(values: list[float]) -> float | None:
        return round(float(np.quantile(values, 0.95)), 3) if values else None

    return {f"{name}_majority": max(gold.count(v) for v in set(gold)) / len(gold), f"{name}_paced_reviews": done,
            f"{name}_paced_wait_p95_idle": p95(waits["idle"]), f"{name}_paced_wait_p95_during_job": p95(waits["job"]),
            f"{name}_paced_wait_max_during_job": round(max(waits["job"]), 3) if waits["job"] else None,
            f"{name}_paced_reviews_during_job": len(waits["job"]), f"{name}_paced_search": search,
            f"{name}_paced_relabel_steps": sum(m.startswith("review: relabeled") for m in said), f"{name}_paced_s": round(ended, 1),
            f"{name}_paced_truth_with_steps": truth_with, f"{name}_paced_truth_without": truth_without}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="sst2,ag_news")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--reviews", type=int, default=100)
    parser.add_argument("--relabel", type=int, default=200)
    parser.add_argument("--workdir", help="Keep the project stores here (default: a temporary folder).")
    parser.add_argument("--paced-reviews", type=int, default=400)
    parser.add_argument("--paced", type=float, help="Seconds between a person's reviews: measure the app's default model steps beside them.")
    add_audit_options(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    AUDIT.update(audit_knobs(args))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures: dict = {"rows": args.rows, "reviews": args.reviews}
    started = time.perf_counter()
    with workdir(args.workdir) as work:
        if args.paced is not None:
            figures["pace_s"] = args.paced
            per_set(args.sets, lambda name: paced_set(name, args.rows, args.paced, work, args.paced_reviews), figures)
        else:
            per_set(args.sets, lambda name: bench_set(name, args.rows, args.reviews, args.relabel, work), figures)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    emit(figures, args.json)


if __name__ == "__main__":
    main()
