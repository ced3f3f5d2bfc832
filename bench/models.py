"""`python bench/models.py [--rows 300] [--json]`: the trade of each catalog model, for README's table.

Each model runs in a process of its own (its peak RSS is its RAM): the LLMs label the first `--rows` test
rows of shared SST-2 and AG News zero-shot (scored, the configs of bench/cascade.py); the student encoders
are a logistic regression on their embeddings of `--seed-rows` train rows, scored on the same test rows.
s/row includes loading the model (an LLM) and everything after; for an encoder, embedding the train and
test rows and the fit, per test row (so its s/row overstates what labeling more rows costs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _report import emit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LLMS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
ENCODERS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")


def one(model: str, rows: int, seed_rows: int) -> dict:
    """Measure one model in this process."""
    import tempfile

    import numpy as np

    from cascade import SETS, seed_rows as draw_seed, set_config

    out: dict = {"model": model}
    for name in ("sst2", "agnews"):
        test = pd.read_csv(DATA / SETS[name][0]).head(rows)
        cfg = set_config(name)
        if model in ENCODERS:
            from labelmill.selectors.embeddings import embed, load_encoder
            from labelmill.strategies.students.models import LinearStudent

            load_encoder(model)
            seed = draw_seed(name, seed_rows)
            started = time.perf_counter()
            X_seed = embed(seed["text"].astype(str).tolist(), model)
            X = embed(test["text"].astype(str).tolist(), model)
            names = cfg.label_names
            student = LinearStudent(len(names)).fit(X_seed, np.array([names.index(str(v)) for v in seed["label"]]))
            predicted = np.array(names)[student.predict_proba(X).argmax(axis=1)]
            seconds = time.perf_counter() - started
        else:
            from labelmill import api
            from labelmill.config import derive_config
            cfg = derive_config(cfg, model={"name": model})
            started = time.perf_counter()
            result = api.label(cfg, test, project=Path(tempfile.mkdtemp()) / "p.db")
            seconds = time.perf_counter() - started
            predicted = result.frame[result.columns["label"]].astype(str).to_numpy()
        out[f"{name}_accuracy"] = round(float((predicted == test["label"].astype(str).to_numpy()).mean()), 4)
        out[f"{name}_s_per_row"] = round(seconds / len(test), 4)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--seed-rows", type=int, default=2000, help="Train rows each student encoder learns from.")
    parser.add_argument("--models", default=",".join(LLMS + ENCODERS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.rows, args.seed_rows)))
        return
    from labelmill.models import catalog_model, resolve_model

    figures: dict = {"rows": args.rows, "seed_rows": args.seed_rows}
    for model in args.models.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", model, "--rows", str(args.rows), "--seed-rows", str(args.seed_rows)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            figures[model] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        entry = catalog_model(model)
        if entry is not None:
            path = resolve_model(entry.name).path
            row["size_mb"] = round((path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())) / 1e6)
        figures[model] = row
        print(json.dumps(row), file=sys.stderr, flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    main()
