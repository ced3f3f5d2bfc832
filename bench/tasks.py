"""NER, entity matching, QA (and extraction) with the shipped example configs on the embedded default model.

Runs each example config unchanged on the first N rows of its shared test file and reports what
`labelmill eval --json` reports: completion rate plus NER strict/partial span F1, matching accuracy and
match-class F1, QA exact match and token F1 (answerable and unanswerable apart), extraction accuracy per
attribute (on the example's own sample: the shared data has no extraction set).

    python bench/tasks.py [--rows 300] [--tasks ner,matching,qa,extraction] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

TASKS = {
    "ner": (DATA / "conll2003" / "test.jsonl", ["completion_rate", "f1_strict", "f1_partial", "precision_strict", "recall_strict", "macro_f1_strict", "gold_spans", "predicted_spans"]),
    "matching": (DATA / "em_walmart_amazon" / "test.csv", ["completion_rate", "accuracy", "f1", "precision", "recall", "predicted_matches", "gold_matches"]),
    "qa": (DATA / "squad_v2" / "dev_subset.jsonl", ["completion_rate", "exact_match", "f1", "answerable", "unanswerable"]),
    "extraction": (ROOT / "examples" / "extraction" / "sample.csv", ["completion_rate", "accuracy", "row_accuracy"]),
}


def bench_one(name: str, rows: int, workdir: Path) -> dict:
    import labelmill

    config = ROOT / "examples" / name / "config.yaml"
    source, keys = TASKS[name]
    out = workdir / f"{name}{'.jsonl' if source.suffix == '.jsonl' else '.csv'}"
    started = time.perf_counter()
    result = labelmill.run(config, source, output=out, limit=rows, project=workdir / f"{name}.db")
    wall = time.perf_counter() - started
    metrics = labelmill.evaluate(config, out)
    figures = {k: metrics[k] for k in keys if k in metrics}
    figures.update({"rows": result.total, "failures": metrics.get("failures", {}), "wall_s": round(wall, 1), "s_per_row": round(wall / result.total, 3)})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--tasks", default="ner,matching,qa,extraction")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks.split(","):
            report[name] = bench_one(name, args.rows, Path(tmp))
            if not args.json:
                print(name, json.dumps(report[name]), flush=True)
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
