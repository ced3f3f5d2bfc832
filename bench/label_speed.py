"""Label N rows of shared SST-2 and AG News with the embedded model: accuracy, rows/s, and speed vs the limit.

The limit is measured in the same run, on the same loaded model: the forward pass over the rows' own
text tokens (no prompt around them), packed into full batches - the model's best batch rate. Our per-row
time excludes start-up (model load) and includes everything else: prompt building, cache look-ups,
the shared prefix, the template suffix, scoring the labels, parsing and committing to the store.

    python bench/label_speed.py [--rows 500] [--datasets sst2,ag_news] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

AG_NEWS_CONFIG = {
    "task": "classification",
    "name": "ag-news-topic",
    "labels": ["World", "Sports", "Business", "Sci/Tech"],
    "guidelines": "Classify the topic of the news article.",
    "input_template": "{text}",
    "gold_column": "label",
    "model": {"name": "qwen2.5-coder-0.5b", "method": "score"},
}
DATASETS = {
    "sst2": (ROOT / "examples" / "sentiment" / "config.yaml", DATA / "sst2" / "test.csv"),
    "ag_news": (AG_NEWS_CONFIG, DATA / "ag_news" / "test.csv"),
}


def bench_one(name: str, rows: int, repeats: int) -> dict:
    import pandas as pd

    import labelmill
    from labelmill.core import Job

    config_source, data_path = DATASETS[name]
    config = labelmill.load_config(config_source)
    frame = pd.read_csv(data_path).head(rows)
    job = Job(config)
    engine = job.backend.engine  # load the model now: start-up is not part of the per-row time
    texts = [job.row_input(r) for r in frame.to_dict("records")]
    row_tokens = [engine.tokenize(t, add_bos=False) for t in texts]
    engine.forward_seconds(row_tokens[: min(32, len(row_tokens))])  # warm-up
    limit_s = min(engine.forward_seconds(row_tokens) for _ in range(repeats))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = labelmill.label(config, frame, project=Path(tmp) / "bench.db", backend=job.backend)
        ours_s = time.perf_counter() - started
        out = Path(tmp) / "out.csv"
        result.frame.to_csv(out, index=False)
        metrics = labelmill.evaluate(config, out)
    n = len(frame)
    return {
        "rows": n,
        "accuracy": metrics["accuracy"],
        "completion_rate": metrics["completion_rate"],
        "macro_f1": metrics["macro_f1"],
        "rows_per_s": n / ours_s,
        "per_row_s": ours_s / n,
        "mean_row_tokens": sum(map(len, row_tokens)) / n,
        "limit_tokens_per_s": sum(map(len, row_tokens)) / limit_s,
        "limit_per_row_s": limit_s / n,
        "ratio_to_limit": ours_s / limit_s,
        "model_rows": result.model_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--datasets", default="sst2,ag_news")
    parser.add_argument("--repeats", type=int, default=1, help="limit measurements; the fastest counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for name in args.datasets.split(","):
        results[name] = bench_one(name, args.rows, args.repeats)
        if not args.json:
            r = results[name]
            print(
                f"{name}: {r['rows']} rows  accuracy {r['accuracy']:.3f} (completion {r['completion_rate']:.2f})  "
                f"{r['rows_per_s']:.2f} rows/s  per row {r['per_row_s']:.3f} s  limit {r['limit_per_row_s']:.3f} s "
                f"({r['mean_row_tokens']:.1f} tokens at {r['limit_tokens_per_s']:.0f} tok/s)  ratio {r['ratio_to_limit']:.2f}x",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
