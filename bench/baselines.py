"""`python bench/baselines.py [--json]`: the majority baseline of every row set bench/README reports an
accuracy on: the accuracy of always answering the most common gold label of those rows (for extraction,
the most common value of each attribute). No model is run; an accuracy is only worth what it adds to this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def majority(values) -> tuple[str, float]:
    counts = pd.Series([str(v) for v in values]).value_counts(normalize=True)
    return str(counts.index[0]), round(float(counts.iloc[0]), 3)


def sets() -> dict[str, pd.Series | list]:
    sst2, agnews = pd.read_csv(DATA / "sst2" / "test.csv"), pd.read_csv(DATA / "ag_news" / "test.csv")
    banking = pd.read_csv(DATA / "banking77" / "test.csv")
    civil = pd.read_csv(DATA / "civil_comments" / "test.csv")
    walmart = pd.read_csv(DATA / "em_walmart_amazon" / "test.csv")
    extraction = pd.read_csv(ROOT / "examples" / "extraction" / "sample.csv")
    return {
        "sst2 first 300 test rows": sst2.label.head(300),
        "sst2 first 500 test rows": sst2.label.head(500),
        "sst2 all 1821 test rows": sst2.label,
        "ag_news first 200 test rows": agnews.label.head(200),
        "ag_news first 300 test rows": agnews.label.head(300),
        "ag_news first 500 test rows": agnews.label.head(500),
        "ag_news first 2000 test rows": agnews.label.head(2000),
        "banking77 200 test rows (random_state 0)": banking.sample(200, random_state=0).label,
        "banking77 300 test rows (random_state 0)": banking.sample(300, random_state=0).label,
        "civil_comments first 500 test rows": civil.label.head(500),
        "em_walmart_amazon first 300 test rows": walmart.label.head(300),
        "em_walmart_amazon first 500 test rows": walmart.label.head(500),
        "examples/sentiment/sample.csv (200)": pd.read_csv(ROOT / "examples" / "sentiment" / "sample.csv").label,
        **{f"examples/extraction/sample.csv (40): {c}": extraction[c] for c in ("brand", "model_number") if c in extraction},
    }


def main() -> dict:
    found = {name: {"rows": len(values), "majority_label": majority(values)[0], "majority_accuracy": majority(values)[1]} for name, values in sets().items()}
    if "--json" in sys.argv:
        print(json.dumps(found, indent=1))
    else:
        for name, f in found.items():
            print(f"{name:48} {f['rows']:>5} rows  majority {f['majority_accuracy']:.3f} ({f['majority_label']})")
    return found


if __name__ == "__main__":
    main()
