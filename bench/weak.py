"""`python bench/weak.py [--rows 1000] [--sets civil,agnews] [--json]`: weak supervision against zero-shot on
the default embedded model, with the shipped sub-labelers (examples/weak/civil.yaml, agnews.yaml: written
from guidelines and train files). The first N test rows of shared Civil Comments and AG News; gold labels
are used only to score (the sub-labeler table's empirical accuracy is not used by the label model). The
seed rows the configs name (weak.seed: train files, never test rows) set the questions' auto thresholds
and the seed-accuracy column, and anchor Dawid-Skene. `<set>_unsupervised_*`: no gold at all (no seed
rows, each question at a fixed 0.5, Dawid-Skene from the votes alone).

`<set>_snorkel_*`: the same votes combined by snorkel's LabelModel instead of Dawid-Skene (no new model
calls). `--sets goemotions` (multi-label, examples/weak/goemotions.yaml, `--rows` of its test file):
`goemotions_zero_shot_*` and `goemotions_weak_*` micro-F1, macro-F1 and exact-match accuracy.

Keys per set: `<set>_zero_shot_*`, `<set>_majority_vote_*`, `<set>_weak_*` (Dawid-Skene), macro-F1 for
Civil Comments and accuracy for AG News (both are reported for both), the majority baseline, coverage,
and seconds per row: the zero-shot labeler's own, and all sub-labelers together (zero-shot included).
`<set>_end_model_*`: the student trained on the label model's probabilistic labels (all-MiniLM-L6-v2 embeddings).

Same labels, same clock (bench/README): Dawid-Skene is given the config's seed rows, so the same seed rows go to
two more arms. `<set>_zero_shot_calibrated_*`: the zero-shot labeler calibrated on them (`labelmill calibrate`,
method auto; its seconds: the zero-shot run, the seed rows' labeling and the fit). `<set>_seed_student_*`:
logistic regression on all-mpnet-base-v2 embeddings of the seed rows (its seconds: loading the encoder,
embedding seed and test rows, the fit). The zero-shot labeler's seed rows are labeled once, in the calibrated
arm, and that time is counted in weak supervision's seconds too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _arms import llm_calibrated, student_alone
from _report import emit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = {"civil": (DATA / "civil_comments" / "test.csv", ROOT / "examples" / "weak" / "civil.yaml"),
        "agnews": (DATA / "ag_news" / "test.csv", ROOT / "examples" / "weak" / "agnews.yaml")}


def scores(gold: np.ndarray, predicted: list) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    predicted = ["" if p is None or (isinstance(p, float) and np.isnan(p)) else str(p) for p in predicted]
    accuracy = float(np.mean(np.array(predicted) == gold))
    return round(accuracy, 4), round(float(f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)), 4)


def seed_frame(config) -> pd.DataFrame:
    """The seed rows weak supervision reads (weak.seed, the same sample of weak.seed_rows)."""
    from labelmill.io import read_rows

    frame = read_rows(config.base_dir / config.weak.seed, config.dataset)
    if len(frame) > config.weak.seed_rows:
        frame = frame.sample(n=config.weak.seed_rows, random_state=config.model.seed).sort_index()
    return frame.reset_index(drop=True)


def seed_arms(name: str, config, data: pd.DataFrame, seed: pd.DataFrame, project: Path, zero_s: float) -> tuple[dict, float]:
    """The zero-shot labeler calibrated on the seed rows, and the student on them (`_arms`); returns the figures
    and the calibration's seconds (the zero-shot labeler's seed rows, which weak supervision labels too)."""
    gold = data["label"].astype(str).to_numpy()
    out: dict = {}
    cal = llm_calibrated(config, seed, data, project)  # the test rows' answers from the cache
    out[f"{name}_zero_shot_calibrated_method"] = cal.calibrator.method
    out[f"{name}_zero_shot_calibrated_accuracy"], out[f"{name}_zero_shot_calibrated_macro_f1"] = scores(gold, cal.frame["llm_label"].tolist())
    out[f"{name}_zero_shot_calibrated_s_per_row"] = round((zero_s + cal.seconds) / len(data), 3)
    student = student_alone(config, seed, data, project.with_name(f"{name}_student.db"), label_column=config.gold_column)
    out[f"{name}_seed_student_accuracy"], out[f"{name}_seed_student_macro_f1"] = scores(gold, student.labels.tolist())
    out[f"{name}_seed_student_s_per_row"] = round(student.seconds / len(data), 3)
    out[f"{name}_seed_student_gold_rows"] = student.gold_rows  # seed rows with a label outside the config's set are left out
    return out, cal.seconds


def bench_set(name: str, rows: int, work: Path) -> dict:
    import labelmill
    from labelmill.config import derive_config, load_config
    from labelmill.numeric.weak import majority_vote
    from labelmill.strategies.weak import weak

    data_path, config_path = SETS[name]
    data = pd.read_csv(data_path).head(rows)[["text", "label"]]
    gold = data["label"].astype(str).to_numpy()
    config = load_config(config_path)
    project = work / f"{name}.db"
    out: dict = {f"{name}_rows": len(data), f"{name}_majority_accuracy": round(float(pd.Series(gold).value_counts(normalize=True).max()), 4)}
    started = time.perf_counter()
    zero = labelmill.run(config, data, project=project)
    zero_s = time.perf_counter() - started
    out[f"{name}_zero_shot_accuracy"], out[f"{name}_zero_shot_macro_f1"] = scores(gold, zero.frame["llm_label"].tolist())
    out[f"{name}_zero_shot_s_per_row"] = round(zero_s / len(data), 3)
    arms, cal_s = seed_arms(name, config, data, seed_frame(config), project, zero_s)
    out.update(arms)
    started = time.perf_counter()
    result = weak(config, data, project=project, end_model=True)  # the zero-shot sub-labeler comes from the cache now
    weak_s = time.perf_counter() - started + zero_s + cal_s
    out[f"{name}_weak_accuracy"], out[f"{name}_weak_macro_f1"] = scores(gold, result.frame["llm_label"].tolist())
    snorkel = weak(config, data, project=project, label_model="snorkel")  # the same votes, from the cache
    out[f"{name}_snorkel_accuracy"], out[f"{name}_snorkel_macro_f1"] = scores(gold, snorkel.frame["llm_label"].tolist())
    out[f"{name}_kept"] = result.kept
    from labelmill.evaluation.metrics import expected_calibration_error

    conf = result.frame["llm_confidence"].to_numpy(dtype=float)
    done = ~np.isnan(conf)
    right = result.frame["llm_label"].astype(str).to_numpy() == gold
    out[f"{name}_weak_ece"] = round(expected_calibration_error(right[done], conf[done])[0], 4)  # is its confidence a probability?
    out[f"{name}_seed_rows"] = config.weak.seed_rows if config.weak.seed else 0
    # no gold anywhere: no seed rows, each question at a fixed 0.5 (its argmax), Dawid-Skene from the votes alone
    subs = [{**s.model_dump(), "abstain_below": 0.5} if s.abstain_below == "auto" else s.model_dump() for s in config.weak.sub_labelers]
    alone = weak(derive_config(config, weak={"seed": None, "sub_labelers": subs}), data, project=project)
    out[f"{name}_unsupervised_accuracy"], out[f"{name}_unsupervised_macro_f1"] = scores(gold, alone.frame["llm_label"].tolist())
    names = config.label_names
    covered = (result.L != -1).any(axis=1)
    mv = majority_vote(result.L, len(names)).argmax(axis=1)
    out[f"{name}_majority_vote_accuracy"], out[f"{name}_majority_vote_macro_f1"] = scores(gold, [names[i] if c else None for i, c in zip(mv, covered)])
    out[f"{name}_end_model_accuracy"], out[f"{name}_end_model_macro_f1"] = scores(gold, result.frame["weak_end_label"].tolist())
    out[f"{name}_coverage"] = round(float(covered.mean()), 4)
    out[f"{name}_weak_s_per_row"] = round(weak_s / len(data), 3)
    out[f"{name}_sub_labelers"] = result.summary
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("sub_labelers")}), file=sys.stderr, flush=True)
    return out


def bench_multilabel(rows: int, work: Path) -> dict:
    import labelmill
    from labelmill.config import load_config
    from labelmill.strategies.weak import weak
    from labelmill.tasks import make_task

    config = load_config(ROOT / "examples" / "weak" / "goemotions.yaml")
    data = pd.read_csv(DATA / "goemotions" / "test.csv").head(rows)[["text", "labels"]]
    task = make_task(config)
    gold = [task.gold(r) for r in data.to_dict("records")]
    project = work / "goemotions.db"
    out: dict = {"goemotions_rows": len(data)}
    started = time.perf_counter()
    zero = labelmill.run(config, data, project=project)
    zero_s = time.perf_counter() - started
    started = time.perf_counter()
    result = weak(config, data, project=project)
    weak_s = time.perf_counter() - started + zero_s
    for key, frame, seconds in (("zero_shot", zero.frame, zero_s), ("weak", result.frame, weak_s)):
        predicted = [task.parse_output(v) if isinstance(v, str) else None for v in frame["llm_label"]]
        m = task.metrics(gold, predicted)
        out.update({f"goemotions_{key}_micro_f1": round(m["micro_f1"], 4), f"goemotions_{key}_macro_f1": round(m["macro_f1"], 4),
                    f"goemotions_{key}_exact_match": round(m["accuracy"], 4), f"goemotions_{key}_completion": round(m["completion_rate"], 4),
                    f"goemotions_{key}_s_per_row": round(seconds / len(data), 3)})
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--sets", default="civil,agnews")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--project-dir", type=Path, help="Keep the projects (and their caches) here instead of a temporary folder.")
    args = parser.parse_args()
    work = args.project_dir or Path(tempfile.mkdtemp(prefix="labelmill-weak-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"model": "qwen2.5-coder-0.5b"}
    for name in args.sets.split(","):
        figures.update(bench_multilabel(args.rows, work) if name == "goemotions" else bench_set(name, args.rows, work))
    emit(figures, args.json)


if __name__ == "__main__":
    main()
