"""FreeAL's first pass without gold: batch calibration against the alternatives that were tried for it.

The embedded default model labels the first --rows rows (default 400) of SST-2, AG News and Civil Comments
and --rows rows of Banking77 drawn at random (seed 0; the file is sorted by intent) zero-shot, with the
label scored (the distribution over the closed label set). The same distributions are then corrected five
ways, none of them using a gold label:

  raw            the model's own distribution
  batch          divide by the mean distribution over the rows (Zhou et al. 2024; FreeAL's default for three
                 labels or more)
  content_free   divide by the distribution the same prompt gives to content-free inputs ("N/A", "[MASK]",
                 "null", "...": Zhao et al. 2021)
  em_prior       batch calibration, then a label prior estimated from the rows by EM (Saerens et al. 2002),
                 so a label that really is rare is not pushed up to an equal share
  rare_only      divide only the labels the model almost never gives probability to (mean probability under
                 half of 1/L) by their mean, leave the rest

Accuracy and macro-F1 against the gold column (used for nothing else) for each, with the majority
baseline beside them.

    python bench/first_pass_calibration.py [--json] [--sets sst2,agnews,civil,banking77] [--rows 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from freeal import SETS, config, label_names, rows_of  # noqa: E402

CONTENT_FREE = ["N/A", "[MASK]", "null", "..."]


def normalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)


def batch(p: np.ndarray) -> np.ndarray:
    return normalise(p / np.maximum(p.mean(axis=0), 1e-9))


def content_free(p: np.ndarray, free: np.ndarray) -> np.ndarray:
    return normalise(p / np.maximum(free.mean(axis=0), 1e-9))


def em_prior(p: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Batch-calibrated distributions (read as posteriors under a uniform prior), re-weighted by the prior
    that EM finds for these rows."""
    q = batch(p)
    prior = np.full(p.shape[1], 1.0 / p.shape[1])
    for _ in range(iterations):
        post = normalise(q * prior * p.shape[1])
        new = post.mean(axis=0)
        if np.abs(new - prior).max() < 1e-6:
            break
        prior = new
    return normalise(q * prior), prior


def rare_only(p: np.ndarray) -> np.ndarray:
    mean = p.mean(axis=0)
    divisor = np.where(mean < 0.5 / p.shape[1], np.maximum(mean, 1e-9), 1.0)
    return normalise(p / divisor)


def distributions(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    out = np.zeros((len(frame), len(names)))
    for i, raw in enumerate(frame["llm_distribution"]):
        d = json.loads(raw) if isinstance(raw, str) and raw else {}
        out[i] = [float(d.get(n, 0.0)) for n in names]
    out[out.sum(axis=1) == 0] = 1.0  # a row without a distribution (none expected) counts as uniform
    return normalise(out)


def bench_set(name: str, rows: int, work: Path) -> dict:
    import labelmill
    from sklearn.metrics import f1_score

    names = label_names(name)
    data = rows_of(name, rows)
    cfg = {**config(name), "output": {"include_distribution": True}}
    path = work / f"{name}.csv"
    data.to_csv(path, index=False)
    labeled = labelmill.run(cfg, path, project=work / f"{name}.db")
    p = distributions(labeled.frame, names)
    columns = list(SETS[name].get("columns", ("text",)))
    free_rows = pd.DataFrame({c: CONTENT_FREE for c in columns})
    free_path = work / f"{name}-free.csv"
    free_rows.to_csv(free_path, index=False)
    cf_cfg = {k: v for k, v in cfg.items() if k != "gold_column"}
    free = distributions(labelmill.run(cf_cfg, free_path, project=work / f"{name}-free.db").frame, names)
    gold = data["label"].astype(str).to_numpy()
    prior_probs, prior = em_prior(p)
    methods = {"raw": p, "batch": batch(p), "content_free": content_free(p, free), "em_prior": prior_probs, "rare_only": rare_only(p)}
    out: dict = {f"{name}_rows": len(data), f"{name}_majority_accuracy": round(float(pd.Series(gold).value_counts(normalize=True).max()), 4)}
    for method, probs in methods.items():
        predicted = np.array(names)[probs.argmax(axis=1)]
        out[f"{name}_{method}_accuracy"] = round(float((predicted == gold).mean()), 4)
        out[f"{name}_{method}_macro_f1"] = round(float(f1_score(gold, predicted, average="macro", labels=sorted(set(gold)))), 4)
    out[f"{name}_em_prior"] = {n: round(float(v), 3) for n, v in zip(names, prior) if v >= 0.01}
    out[f"{name}_gold_prior"] = {n: round(float(v), 3) for n, v in pd.Series(gold).value_counts(normalize=True).items() if v >= 0.01}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sets", default="sst2,agnews,civil,banking77")
    parser.add_argument("--rows", type=int, default=400)
    args = parser.parse_args()
    figures: dict = {"model": "qwen2.5-coder-0.5b"}
    with tempfile.TemporaryDirectory(prefix="labelmill-firstpass-") as work:
        for name in args.sets.split(","):
            if name not in SETS:
                parser.error(f"unknown set {name!r}; choose from {', '.join(SETS)}")
            figures.update(bench_set(name, args.rows, Path(work)))
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for key, value in figures.items():
            print(f"{key:40s} {value}")


if __name__ == "__main__":
    main()
