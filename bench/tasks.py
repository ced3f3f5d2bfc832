"""NER, entity matching, QA (and extraction) with the shipped example configs on the embedded default model.

Runs each example config unchanged on the first N rows of its shared test file and reports what
`labelmill eval --json` reports: completion rate plus NER strict/partial span F1, matching accuracy and
match-class F1, QA exact match and token F1 (answerable and unanswerable apart), extraction accuracy per
attribute (on the example's own sample: the shared data has no extraction set).

    python bench/tasks.py [--rows 300] [--tasks ner,matching,qa,extraction] [--json]
                          [--config TASK=PATH] [--set TASK:KEY.PATH=VALUE]

--config runs another config for a task (`--config qa=examples/qa/config-1.5b.yaml` for the opt-in 1.5B
model); --set changes one key of a task's config (`--set qa:qa.verify=false` turns off QA's answerability
check; VALUE is read as YAML).
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


def load(name: str, path: Path | None, changes: list[str]) -> dict:
    """The task's config as a dict, with --set changes applied and its examples file made absolute."""
    import yaml

    path = path or ROOT / "examples" / name / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for change in changes:
        key, _, value = change.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    if isinstance(config.get("examples"), dict) and config["examples"].get("file"):
        config["examples"]["file"] = str((path.parent / config["examples"]["file"]).resolve())
    return config


def bench_one(name: str, rows: int, workdir: Path, path: Path | None = None, changes: list[str] | None = None) -> dict:
    import labelmill

    config = load(name, path, changes or [])
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
    parser.add_argument("--config", action="append", default=[], metavar="TASK=PATH")
    parser.add_argument("--set", action="append", default=[], metavar="TASK:KEY=VALUE")
    args = parser.parse_args()
    configs = {k: Path(v) for k, _, v in (c.partition("=") for c in args.config)}
    changes: dict[str, list[str]] = {}
    for change in args.set:
        task, _, rest = change.partition(":")
        changes.setdefault(task, []).append(rest)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks.split(","):
            report[name] = bench_one(name, args.rows, Path(tmp), configs.get(name), changes.get(name))
            if not args.json:
                print(name, json.dumps(report[name]), flush=True)
    if args.json:
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
