"""`python bench/student_ceiling.py [--json]`: the ceiling of the cascade's and FreeAL's student on SST-2:
logistic regression on all-MiniLM-L6-v2 embeddings trained on all 6,920 *gold* train rows, scored on the
1,821 test rows (bench/README: 0.81). No LLM is run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def main() -> dict:
    from labelmill.selectors.embeddings import embed
    from labelmill.strategies.students.models import LinearStudent

    train, test = pd.read_csv(DATA / "train.csv"), pd.read_csv(DATA / "test.csv")
    names = sorted(set(train["label"]))
    started = time.perf_counter()
    X_train = embed(train["text"].tolist(), "all-MiniLM-L6-v2", None)
    X_test = embed(test["text"].tolist(), "all-MiniLM-L6-v2", None)
    y = np.array([names.index(v) for v in train["label"]])
    student = LinearStudent(len(names), seed=0).fit(X_train, y)
    predicted = [names[i] for i in student.predict_proba(X_test).argmax(axis=1)]
    figures = {"train_rows": len(train), "test_rows": len(test), "student_accuracy_gold_trained": round(float(np.mean(np.array(predicted) == test["label"].to_numpy())), 4),
               "majority_accuracy": round(float(test["label"].value_counts(normalize=True).max()), 4), "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(figures, indent=1) if "--json" in sys.argv else "\n".join(f"{k:32} {v}" for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    main()
