"""Reasoning and voting on SST-2 with the embedded default model: which signals tell right labels from wrong ones.

Splits (fixed): seed = 200 SST-2 dev rows (random_state 0, as bench/trust.py); test = the first N test rows.

  checks      scored labels plus P(True) and verbalized confidence (reasoning.p_true, reasoning.verbalized)
  vote5       generated labels, self-consistency with 5 answers (greedy + 4 at temperature 0.7): agreement
  cot         chain of thought: a generated explanation, then the label scored given it
  fused       `calibrate --method fused` on the seed rows (confidence + p_true + verbalized), against
              `calibrate --method auto` (the confidence alone), applied to the test rows

For every signal: AUROC of "the label is right" on the test rows (0.5 = no information) and ECE of the
raw signal read as a probability; for the calibrations: ECE, and the share and accuracy of test rows
at or above the threshold chosen on the seed rows (out of fold, no bound) for target 0.95.

  ensemble    (with --ensemble-model M) the scored labels of the default model and of M, and their
              ensemble (mean of the two label distributions): accuracy and AUROC of each
  --only ensemble runs just that part.

    python bench/reasoning.py [--test-rows 300] [--ensemble-model qwen2.5-coder-1.5b] [--only ensemble] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def config(method: str, **reasoning) -> dict:
    return {
        "task": "classification", "name": "sst2-reasoning", "labels": ["positive", "negative"],
        "guidelines": "Classify the sentiment of the movie review.", "input_template": "{text}", "gold_column": "label",
        "reasoning": reasoning,
        "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": method, "max_tokens": 6},
    }


def auroc(correct: np.ndarray, score: np.ndarray) -> float | None:
    ok = ~np.isnan(score)
    pos, neg = score[ok & correct], score[ok & ~correct]
    if not len(pos) or not len(neg):
        return None
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def signal(store_path: Path, run_id: int, name: str, n: int) -> np.ndarray:
    from labelmill.store.db import Store

    values = np.full(n, np.nan)
    with Store(store_path) as store:
        for item in store.annotations(run_id):
            if item.row_index < n and item.signals and name in item.signals:
                values[item.row_index] = float(item.signals[name])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test-rows", type=int, default=300)
    parser.add_argument("--seed-rows", type=int, default=200)
    parser.add_argument("--ensemble-model", default=None, help="A second model for the ensemble part (e.g. qwen2.5-coder-1.5b, opt-in).")
    parser.add_argument("--only", default=None, choices=["ensemble"], help="Run only this part.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import labelmill
    from labelmill.evaluation.metrics import expected_calibration_error

    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed = pd.read_csv(DATA / "sst2" / "dev.csv").sample(args.seed_rows, random_state=0)[["text", "label"]]
        test = pd.read_csv(DATA / "sst2" / "test.csv").head(args.test_rows)[["text", "label"]]
        seed.to_csv(work / "seed.csv", index=False)
        test.to_csv(work / "test.csv", index=False)
        gold = test["label"].to_numpy()
        project = work / "p.db"
        report["test_rows"], report["seed_rows"] = len(test), len(seed)

        def run(name: str, cfg: dict, **kw):
            started = time.perf_counter()
            result = labelmill.run(cfg, work / "test.csv", project=project, **kw)
            ok = result.frame["llm_label"].to_numpy() == gold
            conf = pd.to_numeric(result.frame["llm_confidence"], errors="coerce").to_numpy(dtype=float)
            report[f"{name}_accuracy"] = float(ok.mean())
            report[f"{name}_completion_rate"] = float(result.frame["llm_label"].notna().mean())
            report[f"{name}_s_per_row"] = round((time.perf_counter() - started) / len(test), 3)
            return result, ok, conf

        if args.ensemble_model:
            members = [{}, {"model": {"name": args.ensemble_model}}]
            for name, cfg in (("member_default", config("score")), ("member_other", {**config("score"), "model": {**config("score")["model"], "name": args.ensemble_model}}),
                              ("ensemble", {**config("score"), "ensemble": {"members": members, "combine": "mean"}})):
                _, ok, conf = run(name, cfg)
                report[f"{name}_auroc"] = auroc(ok, conf)
                report[f"{name}_ece"] = expected_calibration_error(ok, conf)[0]
            report["ensemble_model"] = args.ensemble_model
        if args.only == "ensemble":
            print(json.dumps(report, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
            return
        checks_cfg = config("score", p_true=True, verbalized=True)
        result, ok, conf = run("checks", checks_cfg)
        report["confidence_auroc"] = auroc(ok, conf)
        report["confidence_ece"] = expected_calibration_error(ok, conf)[0]
        for name in ("p_true", "verbalized"):
            values = signal(project, result.run_id, name, len(test))
            report[f"{name}_auroc"] = auroc(ok, values)
            report[f"{name}_ece"] = expected_calibration_error(ok, values)[0]
            report[f"{name}_mean"] = float(np.nanmean(values))
        plain = labelmill.run(config("score"), work / "test.csv", project=project)
        report["checks_labels_unchanged"] = bool((plain.frame["llm_label"] == result.frame["llm_label"]).all())

        for method in ("auto", "fused"):
            cal = labelmill.calibrate(checks_cfg, work / "seed.csv", method=method, project=project, out=work / f"{method}.json")
            _, c_ok, c_conf = run(f"calibrated_{method}", checks_cfg, calibration=cal)
            point = cal.seed_report.get("threshold_without_bound") or {}
            threshold = point.get("threshold")
            mask = c_conf >= threshold if threshold is not None else np.zeros(len(c_conf), bool)
            report.update({
                f"calibrated_{method}_method": cal.method,
                f"calibrated_{method}_weights": cal.fused or None,
                f"calibrated_{method}_ece": expected_calibration_error(c_ok, c_conf)[0],
                f"calibrated_{method}_auroc": auroc(c_ok, c_conf),
                f"calibrated_{method}_threshold_095": threshold,
                f"calibrated_{method}_auto_share_095": float(mask.mean()),
                f"calibrated_{method}_auto_accuracy_095": float(c_ok[mask].mean()) if mask.any() else None,
            })

        vote_cfg = config("generate", samples=5, sample_temperature=0.7)
        result, ok, conf = run("vote5", vote_cfg)
        report["vote5_agreement_auroc"] = auroc(ok, conf)
        report["vote5_agreement_ece"] = expected_calibration_error(ok, conf)[0]
        greedy = signal(project, result.run_id, "answer_confidence", len(test))
        report["vote5_answer_confidence_auroc"] = auroc(ok, greedy)
        report["vote5_unanimous_share"] = float(np.mean(conf == 1.0))
        run("generate_greedy", config("generate"))

        result, ok, conf = run("cot", config("score", chain_of_thought=True))
        report["cot_explanations"] = int(result.frame["llm_explanation"].fillna("").str.len().gt(0).sum())
        report["cot_confidence_auroc"] = auroc(ok, conf)
        report["cot_example"] = {"text": test["text"].iloc[0][:200], "explanation": result.frame["llm_explanation"].iloc[0], "label": result.frame["llm_label"].iloc[0]}
    print(json.dumps(report, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
