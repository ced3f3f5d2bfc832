"""Guidelines that improve from the labeler's errors: `labelmill refine` on dev rows from the train/seed
files, then the refined guideline against the initial one on held-out test rows.

Default embedded model as the labeler; the proposer (`--proposer`, default the opt-in local
qwen2.5-coder-1.5b) explains the errors (`--explainer`) and drafts the edits, and is named in the output.
Banking77 runs with its own settings (PER_SET below: 200 dev rows, one round, 8 clusters, 4 candidates,
no tune comparison) unless flags say otherwise; <set>_settings says what each set ran with. Test rows: the first N test rows of AG News and Civil Comments, N rows of Banking77's
test file drawn at random with seed 0 (that file is sorted by intent). Dev rows: `--dev` rows drawn with
seed 0 from ag_news/train_subset.csv, civil_comments/train_seed.csv, banking77/train.csv.

Keys per set: <set>_initial_test, <set>_refined_test (accuracy; macro-F1 for Civil Comments),
<set>_tune_test (`labelmill tune` on the same dev rows, few-shot demos from the other train rows, stopped
at the number of model calls refine made: <set>_calls_refine / <set>_calls_tune), <set>_refined_tune_test
(tune starting from the refined guideline, same call budget: what the two steps add together; with
--combined), <set>_versions, <set>_proposer, <set>_rounds, <set>_final_guideline. --transfer MODEL scores
the initial and the refined guideline with another labeler on the first --transfer-rows test rows.

    python bench/refine.py [--sets ag_news,civil,banking77] [--rows 1000] [--dev 400] [--rounds 2] [--proposer NAME]
                           [--max-rules 3] [--edits KINDS] [--max-candidates N] [--no-tune] [--explainer proposer|labeler]
                           [--combined] [--transfer MODEL] [--transfer-rows 300] [--workdir DIR] [--json]
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


def bench_set(name: str, rows: int, dev_rows: int, rounds: int, proposer: str | None, workdir: Path, combined: bool = False,
              transfer: str | None = None, transfer_rows: int = 300, max_rules: int = 3, edits: tuple[str, ...] | None = None,
              max_candidates: int | None = None, with_tune: bool = True, explainer: str = "proposer") -> dict:
    import pandas as pd

    import labelmill
    from labelmill.store import Store
    from labelmill.strategies.refine.run import refine
    from labelmill.strategies.refine.versions import GuidelineVersions
    from labelmill.strategies.tune.run import tune

    train_path, test_path, metric = FILES[name]
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    test = test.sample(n=rows, random_state=0) if name == "banking77" else test.head(rows)
    dev = train.sample(n=min(dev_rows, len(train)), random_state=0).reset_index(drop=True)
    config = config_for(name, train)
    project = workdir / f"{name}.db"
    with Store(project) as store:  # a rerun in the same --workdir starts again from the config's guideline (its answers cached)
        history = GuidelineVersions(store, config["name"]).log()
        if history:
            GuidelineVersions(store, config["name"]).checkout(history[-1].id)
    started = time.perf_counter()
    options = {"edits": edits} if edits else {}
    result = refine(config, dev, project=project, rounds=rounds, max_rules=max_rules, proposer={"name": proposer} if proposer else None, metric=metric,
                    max_candidates=max_candidates, explainer=explainer, **options)
    refine_s = time.perf_counter() - started
    calls = result.calls["label"] + result.calls["text"]

    def score(cfg: dict, tag: str, frame=test) -> float:
        out = workdir / f"{name}-{tag}.csv"
        labelmill.run(cfg, frame.reset_index(drop=True), output=out, project=project)
        return round(float(labelmill.evaluate(cfg, out)[metric]), 4)

    figures = {f"{name}_metric": metric, f"{name}_test_rows": len(test), f"{name}_dev_rows": len(dev), f"{name}_proposer": proposer or config["model"]["name"],
               f"{name}_explainer": explainer}
    figures[f"{name}_initial_test"] = score(config, "initial")
    accepted_any = any(r.accepted for r in result.rounds)  # nothing accepted: the refined guideline is the config's own
    refined_text = result.final.prompt_text() if result.final_version and accepted_any else config["guidelines"]
    figures[f"{name}_refined_test"] = score({**config, "guidelines": refined_text}, "refined")
    # tune on the same dev rows at the same number of model calls, demos from the train rows outside the dev sample
    pool = workdir / f"{name}-pool.csv"
    rest = train.drop(index=train.sample(n=min(dev_rows, len(train)), random_state=0).index)
    rest.sample(n=min(4000, len(rest)), random_state=1).to_csv(pool, index=False)
    few = (0, 4, 8) if len(rest) >= 20 else (0,)  # Civil Comments' 200 seed rows are all dev rows: zero-shot and calibration only

    def tuned(guideline: str | None, tag: str) -> tuple[float, dict]:
        report = tune(config, dev, pool=pool if len(rest) >= 20 else None, shots=few, selectors=("balanced", "similar"),
                      calibrations=("none",) if len(rest) >= 20 else ("none", "auto"), limit=None,
                      budget_s=10 ** 6, max_calls=calls, guideline=guideline, project=workdir / f"{name}-{tag}.db", out=workdir / f"{name}-{tag}.yaml")
        import yaml

        best = yaml.safe_load((workdir / f"{name}-{tag}.yaml").read_text())
        return score(best, tag), {"best": report["best"]["name"], "dev_accuracy": report["best"]["accuracy"], "model_calls": report["model_calls"],
                                  "trials": [(t["name"], t["status"], t["accuracy"]) for t in report["trials"]]}

    if with_tune:
        figures[f"{name}_tune_test"], figures[f"{name}_tune"] = tuned(None, "tune")
    else:  # --no-tune: not measured (said so in the output, not left out silently)
        figures[f"{name}_tune_test"], figures[f"{name}_tune"] = None, {"model_calls": None, "skipped": "--no-tune"}
    if combined:
        figures[f"{name}_refined_tune_test"], figures[f"{name}_refined_tune"] = tuned(refined_text, "refined-tune")
    if transfer:
        head = test.head(transfer_rows)
        other = {**config, "model": {**config["model"], "name": transfer}}
        figures[f"{name}_transfer_model"] = transfer
        figures[f"{name}_transfer_initial"] = score(other, "transfer-initial", head)
        figures[f"{name}_transfer_refined"] = score({**other, "guidelines": refined_text}, "transfer-refined", head)
    with Store(project) as store:
        history = GuidelineVersions(store, config["name"]).log()
    figures.update({
        f"{name}_calls_refine": calls, f"{name}_calls_tune": figures[f"{name}_tune"]["model_calls"],
        f"{name}_versions": len(history), f"{name}_accepted": [v.id for v in history if v.dev],
        f"{name}_rounds": [{k: v for k, v in vars(r).items()} for r in result.rounds], f"{name}_refine_s": round(refine_s, 1),
        f"{name}_final_guideline": history[0].content if history else None,
        f"{name}_every_version_documented": all(v.diff and v.rationale and v.dev and v.heldout for v in history if v.author != "config"),
    })
    return figures


# What each set runs with unless a flag says otherwise. Banking77's 77 labels make each labeled row about
# 4x dearer (1.6 s on the 2-core machine) and scatter its errors over many confusions: fewer dev rows, one
# round, more clusters (the cap on rules), at most 4 candidate guidelines scored, no tune comparison.
DEFAULTS = {"dev": 400, "rounds": 2, "max_rules": 3, "max_candidates": None, "tune": True}
PER_SET = {"banking77": {"dev": 200, "rounds": 1, "max_rules": 8, "max_candidates": 4, "tune": False}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="ag_news,civil,banking77")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--dev", type=int, help="default 400 (per set: PER_SET)")
    parser.add_argument("--rounds", type=int, help="default 2 (per set: PER_SET)")
    parser.add_argument("--proposer", default="qwen2.5-coder-1.5b")
    parser.add_argument("--max-rules", type=int, help="default 3 (per set: PER_SET)")
    parser.add_argument("--edits", help="comma-separated edit kinds (add_rule,define_label,delete_rule; default all)")
    parser.add_argument("--max-candidates", type=int, help="candidates scored per round (default: every edit alone, then the ones that helped, together)")
    parser.add_argument("--no-tune", action="store_true", help="skip the tune comparison (its keys are null)")
    parser.add_argument("--tune", action="store_true", help="run the tune comparison even where PER_SET skips it")
    parser.add_argument("--explainer", default="proposer", choices=["labeler", "proposer"], help="who explains the errors")
    parser.add_argument("--combined", action="store_true")
    parser.add_argument("--transfer")
    parser.add_argument("--transfer-rows", type=int, default=300)
    parser.add_argument("--workdir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in [n.strip() for n in args.sets.split(",")]:
            given = {"dev": args.dev, "rounds": args.rounds, "max_rules": args.max_rules, "max_candidates": args.max_candidates,
                     "tune": False if args.no_tune else True if args.tune else None}
            use = {**DEFAULTS, **PER_SET.get(name, {}), **{k: v for k, v in given.items() if v is not None}}
            figures.update(bench_set(name, args.rows, use["dev"], use["rounds"], args.proposer, workdir, args.combined, args.transfer,
                                     args.transfer_rows, use["max_rules"], tuple(args.edits.split(",")) if args.edits else None,
                                     use["max_candidates"], use["tune"], args.explainer))
            figures[f"{name}_settings"] = use
            print(json.dumps({k: v for k, v in figures.items() if not isinstance(v, (list, dict))}, default=float), file=sys.stderr, flush=True)
    print(json.dumps(figures, default=float) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items() if not isinstance(v, list)))


if __name__ == "__main__":
    main()
