"""Guidelines that improve from the labeler's errors: `labelmill refine` on dev rows from the train/seed
files, then the refined guideline against the initial one on held-out test rows.

Default embedded model as the labeler, the proposer named in the output (`--proposer`, default the
labeler's model). Test rows: the first N test rows of AG News and Civil Comments, N rows of Banking77's
test file drawn at random with seed 0 (that file is sorted by intent). Dev rows: `--dev` rows drawn with
seed 0 from ag_news/train_subset.csv, civil_comments/train_seed.csv, banking77/train.csv.

Keys per set: <set>_initial_test, <set>_refined_test (accuracy; macro-F1 for Civil Comments),
<set>_versions, <set>_proposer, <set>_rounds, <set>_final_guideline. (`<set>_tune_test`, tune under
the same number of model calls, is not measured yet.)

    python bench/refine.py [--sets ag_news,civil,banking77] [--rows 1000] [--dev 200] [--rounds 2] [--proposer NAME] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

LABELS = {
    "ag_news": (["World", "Sports", "Business", "Sci/Tech"], "Classify the topic of the news article."),
    "civil": (["toxic", "not toxic"], "Is this comment toxic (rude, disrespectful or unreasonable, likely to make someone leave a discussion)?"),
}
FILES = {
    "ag_news": (DATA / "ag_news" / "train_subset.csv", DATA / "ag_news" / "test.csv", "accuracy"),
    "civil": (DATA / "civil_comments" / "train_seed.csv", DATA / "civil_comments" / "test.csv", "macro_f1"),
    "banking77": (DATA / "banking77" / "train.csv", DATA / "banking77" / "test.csv", "accuracy"),
}


def config_for(name: str, train) -> dict:
    if name == "banking77":
        labels, guideline = sorted(train["label"].astype(str).unique()), "Classify the intent of the online-banking customer's message."
    else:
        labels, guideline = LABELS[name]
    return {"task": "classification", "name": f"{name}-refine", "labels": list(labels), "guidelines": guideline, "input_template": "{text}",
            "gold_column": "label", "examples": {"k": 0}, "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "score"}}


def bench_set(name: str, rows: int, dev_rows: int, rounds: int, proposer: str | None, workdir: Path) -> dict:
    import pandas as pd

    import labelmill
    from labelmill.store import Store
    from labelmill.strategies.refine.loop import refine
    from labelmill.strategies.refine.versions import GuidelineVersions

    train_path, test_path, metric = FILES[name]
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    test = test.sample(n=rows, random_state=0) if name == "banking77" else test.head(rows)
    dev = train.sample(n=min(dev_rows, len(train)), random_state=0).reset_index(drop=True)
    config = config_for(name, train)
    project = workdir / f"{name}.db"
    started = time.perf_counter()
    result = refine(config, dev, project=project, rounds=rounds, proposer={"name": proposer} if proposer else None)
    refine_s = time.perf_counter() - started

    def score(guideline_text: str, tag: str) -> float:
        cfg = {**config, "guidelines": guideline_text}
        out = workdir / f"{name}-{tag}.csv"
        labelmill.run(cfg, test.reset_index(drop=True), output=out, project=project)
        return float(labelmill.evaluate(cfg, out)[metric])

    initial = score(config["guidelines"], "initial")
    refined = score(result.final.prompt_text(), "refined") if result.final_version else initial
    with Store(project) as store:
        history = GuidelineVersions(store, config["name"]).log()
    return {
        f"{name}_initial_test": initial, f"{name}_refined_test": refined, f"{name}_metric": metric,
        f"{name}_versions": len(history), f"{name}_proposer": proposer or config["model"]["name"],
        f"{name}_rounds": [{k: v for k, v in vars(r).items()} for r in result.rounds], f"{name}_refine_s": round(refine_s, 1),
        f"{name}_final_guideline": history[0].content if history else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="ag_news,civil,banking77")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--dev", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proposer")
    parser.add_argument("--workdir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            figures.update(bench_set(name.strip(), args.rows, args.dev, args.rounds, args.proposer, workdir))
    print(json.dumps(figures, default=float) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items() if not isinstance(v, list)))


if __name__ == "__main__":
    main()
