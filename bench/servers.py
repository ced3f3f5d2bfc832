"""Model servers at full speed, failures survived, the cost cap, and Ray scale-out, against local fake servers.

The fake OpenAI-compatible server (labelmill.testing.server) runs in its own process and answers after
a fixed latency, so the bound on throughput is concurrency / latency. Rows are AG News test texts.

  throughput  2,000 rows, concurrency 64, 200 ms per answer: rows_per_s against bound_rows_per_s (320)
  faults      1,000 rows against a server that injects 429 (Retry-After), 500, slow answers past the
              timeout, malformed JSON and connection resets: rows lost or duplicated, typed errors,
              then a rerun that must complete every row
  max_cost    a priced model with --max-cost: where the run stops against the cap and one request's cost
  ray         the same job on a local Ray with 1 and 2 workers (concurrency 8 each): same labels as
              without Ray, and the speed-up of 2 workers over 1

    python bench/servers.py [--json] [--skip-ray]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news" / "test.csv"
LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def start_server(latency: float, fault_rate: float = 0.0, slow: float = 5.0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labelmill.testing.server", "--latency", str(latency), "--labels", ",".join(LABELS),
         "--fault-rate", str(fault_rate), "--slow", str(slow)],
        stdout=subprocess.PIPE, text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, url


def config(url: str, concurrency: int, **server) -> dict:
    return {
        "task": "classification", "name": "agnews-server", "labels": LABELS, "input_template": "{text}", "gold_column": "label",
        "guidelines": "Classify the topic of the news article.",
        "model": {"backend": "openai", "name": "fake-model", "method": "generate", "max_tokens": 4,
                  "server": {"base_url": url, "concurrency": concurrency, **server}, "price": {"input": 0.15, "output": 0.60}},
    }


def throughput(rows: pd.DataFrame, work: Path) -> dict:
    import labelmill

    proc, url = start_server(0.2)
    try:
        started = time.perf_counter()
        result = labelmill.run(config(url, 64), rows.head(2000), project=work / "speed.db")
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
    rate = result.total / wall
    return {"rows": result.total, "labeled": result.labeled, "wall_s": round(wall, 2), "rows_per_s": round(rate, 1),
            "bound_rows_per_s": 320.0, "ratio_to_bound": round(rate / 320.0, 3)}


def faults(rows: pd.DataFrame, work: Path) -> dict:
    import labelmill

    proc, url = start_server(0.02, fault_rate=0.15, slow=3.0)
    data = rows.head(1000).reset_index(drop=True)
    cfg = config(url, 32, timeout_s=1.0, max_retries=2, backoff_s=0.05, breaker_failures=50)
    try:
        first = labelmill.run(cfg, data, project=work / "faults.db", output=work / "faults1.csv")
        out1 = pd.read_csv(work / "faults1.csv", keep_default_na=False)
        stats_first = json.loads(urllib.request.urlopen(url + "/stats").read())
        second = labelmill.run(cfg, data, project=work / "faults.db", output=work / "faults2.csv")
        out2 = pd.read_csv(work / "faults2.csv", keep_default_na=False)
    finally:
        proc.terminate()
    typed = out1["llm_error"].str.split(":").str[0].value_counts().to_dict()
    typed.pop("", None)
    no_outcome = int(((out1["llm_label"] == "") & (out1["llm_error"] == "")).sum())
    return {
        "rows": len(data), "requests_first": stats_first.get("requests", 0),
        "faults_injected_first": {k.removeprefix("fault_"): v for k, v in stats_first.items() if k.startswith("fault_")},
        "output_rows_first": len(out1), "duplicated_first": int(out1["text"].duplicated().sum() - data["text"].duplicated().sum()),
        "labeled_first": first.labeled, "typed_errors_first": typed, "rows_without_label_or_error_first": no_outcome,
        "labeled_after_rerun": second.labeled, "output_rows_after_rerun": len(out2), "rerun_model_rows": second.model_rows,
        "same_order": bool((out2["text"] == data["text"]).all()),
    }


def max_cost(rows: pd.DataFrame, work: Path) -> dict:
    import labelmill
    from labelmill.errors import RunStopped

    proc, url = start_server(0.01)
    cfg = config(url, 16)
    cfg["model"]["price"] = {"input": 150.0, "output": 600.0}  # dear, so a few hundred rows reach the cap
    cap = 2.0
    try:
        try:
            labelmill.run(cfg, rows.head(1000), project=work / "cost.db", max_cost=cap)
            stopped, spent, labeled = False, None, None
        except RunStopped as exc:
            stopped, spent, labeled = True, exc.result.cost_usd, exc.result.labeled
    finally:
        proc.terminate()
    # one request's cost: the most expensive answered row (its prompt and completion tokens at the price)
    import sqlite3

    con = sqlite3.connect(work / "cost.db")
    costs = [(p * 150.0 + c * 600.0) / 1e6 for p, c in con.execute("SELECT prompt_tokens, completion_tokens FROM annotations")]
    con.close()
    return {"cap_usd": cap, "stopped": stopped, "spent_usd": round(spent, 6) if spent is not None else None, "labeled": labeled,
            "max_request_cost_usd": round(max(costs), 6), "cap_minus_spent_usd": round(cap - spent, 6) if spent is not None else None,
            "within_one_request": spent is not None and 0 <= cap - spent <= max(costs)}


def ray_scaling(rows: pd.DataFrame, work: Path) -> dict:
    import ray

    import labelmill
    from labelmill.config import load_config
    from labelmill.execute.ray import label_on_ray

    proc, url = start_server(0.1)
    data = rows.head(1200).reset_index(drop=True)
    try:
        plain = labelmill.run(config(url, 8), data, project=work / "plain.db")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        timings = {}
        labels = {}
        for workers in (1, 2):
            started = time.perf_counter()
            result = label_on_ray(load_config(config(url, 8)), data, project=work / f"ray{workers}.db", workers=workers)
            timings[workers] = time.perf_counter() - started
            labels[workers] = result.frame["llm_label"].tolist()
    finally:
        proc.terminate()
        ray.shutdown()
    same = all(labels[w] == plain.frame["llm_label"].tolist() for w in labels)
    rate = {w: len(data) / t for w, t in timings.items()}
    return {"rows": len(data), "rows_per_s_1_worker": round(rate[1], 1), "rows_per_s_2_workers": round(rate[2], 1),
            "speedup_2_over_1": round(rate[2] / rate[1], 2), "same_labels_as_without_ray": same,
            "bound_rows_per_s_per_worker": 80.0}


def main() -> None:
    parser = argparse.ArgumentParser(description="Model-server throughput, faults, cost cap and Ray scale-out.")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    rows = pd.read_csv(DATA)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["throughput"] = throughput(rows, work)
        report["faults"] = faults(rows, work)
        report["max_cost"] = max_cost(rows, work)
        if not args.skip_ray:
            report["ray"] = ray_scaling(rows, work)
    report["rows_per_s"] = report["throughput"]["rows_per_s"]
    report["bound_rows_per_s"] = report["throughput"]["bound_rows_per_s"]
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for section, figures in report.items():
            print(section, figures)


if __name__ == "__main__":
    main()
