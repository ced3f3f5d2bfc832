"""Semantic roles and the order of events with the shipped example configs (issue 38).

  srl       examples/roles/config.yaml on the first --srl-rows (default 500) test predicates of
            propbank_ewt_srl, the predicate given. Arms, all on the same rows:
              llm        the model alone (4 most similar of the 400 seed predicates as demos; rules off)
              llm_rules  the shipped config: the word-order rules' arguments plus the model's where the rules
                         placed none (rules: first; the store's cache answers every prompt again: no model time)
              rules      the rules alone (no model, no labels)
              majority   the gold spans, each given the commonest role of the seed predicates (an oracle on spans)
            CoNLL-2005 argument F1 (exact span + role), head-word F1 (lenient), per role, completion, and the share
            of argument spans that are the sentence's own text.
  temporal  examples/temporal/config.yaml on the first --temporal-rows (default 1,000) test pairs of udst_temporal.
            Arms: zero-shot (k 0) and few-shot (the 4 most similar of the 450 seed pairs), both scored over the four
            labels; the zero-shot distributions batch-calibrated (divided by their mean over the rows: no gold);
            a student (logistic regression on all-MiniLM-L6-v2 embeddings of the marked pair) trained on the
            same 450 seed pairs; the majority label; the annotators' own agreement with the majority.
            With more labels (the dev file's, `--temporal-arms calibrated,cue_student`):
              calibrated   the zero-shot labeler calibrated on --temporal-calibration-rows (1,000) dev pairs
              cue_student  the task's order cues (+ embeddings) and logistic regression on the train and dev pairs,
                           its features, C and data chosen on dev halves (`cue_student`)

Same labels, same clock: each arm's seconds count everything it ran (the LLM arms: loading and labeling; the
student: embedding its seed rows and the test rows, and the fit). No test row chooses anything.

    python bench/roles_time.py [--json] [--sets srl,temporal] [--srl-rows 500] [--temporal-rows 1000]
                               [--temporal-arms zero_shot,few_shot,calibrated,cue_student] [--temporal-calibration-rows 1000]
                               [--model NAME] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ROLES_SHOWN = ("ARG0", "ARG1", "ARG2", "ARGM-TMP", "ARGM-LOC", "ARGM-NEG")


def load(name: str, model: str | None, **changes) -> dict:
    config = yaml.safe_load((ROOT / "examples" / name / "config.yaml").read_text())
    config["examples"]["file"] = str(ROOT / "examples" / name / config["examples"]["file"])
    if model:
        config["model"]["name"] = model
    for section, values in changes.items():
        config.setdefault(section, {}).update(values)
    return config


def _srl_figures(prefix: str, m: dict) -> dict:
    return {
        f"{prefix}_argument_f1": round(m["srl_argument_f1"], 4), f"{prefix}_argument_precision": round(m["srl_argument_precision"], 4),
        f"{prefix}_argument_recall": round(m["srl_argument_recall"], 4), f"{prefix}_head_f1": round(m["srl_head_f1"], 4),
        f"{prefix}_per_role_f1": {r: round(m["per_role"].get(r, {}).get("f1", 0.0), 3) for r in ROLES_SHOWN},
    }


def srl(rows: int, work: Path, model: str | None) -> dict:
    import labelmill
    from labelmill.config import load_config
    from labelmill.tasks import make_task
    from labelmill.tasks.roles import head_metrics, role_metrics, rule_arguments

    data = pd.read_json(DATA / "propbank_ewt_srl" / "test.jsonl", lines=True).head(rows)
    figures: dict = {"srl_rows": len(data)}
    out = work / "srl.jsonl"
    config = load("roles", model, roles={"rules": "off"})
    started = time.perf_counter()
    labelmill.run(config, data, output=out, project=work / "srl.db")
    wall = time.perf_counter() - started
    m = labelmill.evaluate(config, out)
    figures.update({"srl_completion_rate": m["srl_completion_rate"], "srl_exact_span_share": m["srl_exact_span_share"],
                    "srl_argument_f1": round(m["srl_argument_f1"], 4), "srl_head_f1": round(m["srl_head_f1"], 4),
                    "srl_s_per_row": round(wall / len(data), 3), "srl_gold_arguments": m["gold_arguments"], "srl_predicted_arguments": m["predicted_arguments"]})
    figures.update(_srl_figures("srl_llm", m))
    filled = load("roles", model)
    out_filled = work / "srl_rules.jsonl"
    labelmill.run(filled, data, output=out_filled, project=work / "srl.db")
    m = labelmill.evaluate(filled, out_filled)
    figures.update(_srl_figures("srl_llm_rules", m))
    figures["srl_llm_rules_exact_span_share"] = m["srl_exact_span_share"]

    task = make_task(load_config(config))
    records = data.to_dict("records")
    gold = [task.gold(r) for r in records]
    sentences = [r["text"] for r in records]
    started = time.perf_counter()
    ruled = [{"predicate": r["predicate"], "arguments": rule_arguments(r["text"], r["predicate"], r["tokens"])} for r in records]
    rules_s = time.perf_counter() - started
    m = {**role_metrics(gold, ruled), **head_metrics(gold, ruled, sentences)}
    figures.update(_srl_figures("srl_rules", m))
    figures["srl_rules_s_per_row"] = round(rules_s / len(data), 5)
    seed = [json.loads(line) for line in (ROOT / "examples" / "roles" / "seed.jsonl").open()]
    top = Counter(a["role"] for r in seed for a in r["arguments"]).most_common(1)[0][0]
    majority = [{"predicate": g["predicate"], "arguments": [{**a, "role": top} for a in g["arguments"]]} for g in gold]
    m = {**role_metrics(gold, majority), **head_metrics(gold, majority, sentences)}
    figures.update({"srl_majority_role": top, "srl_majority_argument_f1": round(m["srl_argument_f1"], 4), "srl_majority_head_f1": round(m["srl_head_f1"], 4)})
    return figures


def temporal(rows: int, work: Path, model: str | None, arms: list[str], calibration_rows: int = 1000) -> dict:
    import labelmill
    from labelmill.config import load_config
    from labelmill.selectors.embeddings import embed
    from labelmill.strategies.students.models import LinearStudent
    from labelmill.tasks import make_task

    data = pd.read_json(DATA / "udst_temporal" / "test.jsonl", lines=True).head(rows)
    figures: dict = {"temporal_rows": len(data)}
    for arm, changes in (("zero_shot", {"examples": {"k": 0}}), ("few_shot", {})):
        if arm not in arms:
            continue
        config = load("temporal", model, **changes)
        out = work / f"temporal_{arm}.jsonl"
        started = time.perf_counter()
        result = labelmill.run(config, data, output=out, project=work / f"temporal_{arm}.db")
        wall = time.perf_counter() - started
        m = labelmill.evaluate(config, out)
        if arm == "zero_shot":
            figures.update(_batch_calibrated(config, result.run_id, work / f"temporal_{arm}.db", list(data["relation"])))
        figures.update({
            f"temporal_{arm}_accuracy": round(m["temporal_accuracy"], 4), f"temporal_{arm}_macro_f1": round(m["temporal_macro_f1"], 4),
            f"temporal_{arm}_micro_f1_no_vague": round(m["temporal_micro_f1_no_vague"], 4), f"temporal_{arm}_completion_rate": m["completion_rate"],
            f"temporal_{arm}_per_label": {k: {"precision": round(v["precision"], 3), "recall": round(v["recall"], 3)} for k, v in m["per_class"].items()},
            f"temporal_{arm}_model_annotator_agreement": round(m["temporal_model_annotator_agreement"], 4),
            f"temporal_{arm}_s_per_row": round(wall / len(data), 3),
        })
        figures.update({"temporal_majority_label": m["majority_label"], "temporal_majority_accuracy": round(m["majority_accuracy"], 4),
                        "temporal_majority_macro_f1": round(m["majority_macro_f1"], 4),
                        "temporal_annotator_agreement": round(m["temporal_annotator_agreement"], 4),
                        "temporal_annotator_pairwise_agreement": round(m["temporal_annotator_pairwise_agreement"], 4)})
    # the headline figures are the shipped config's (few-shot)
    for key in ("accuracy", "macro_f1", "micro_f1_no_vague", "completion_rate"):
        if f"temporal_few_shot_{key}" in figures:
            figures[f"temporal_{key}"] = figures[f"temporal_few_shot_{key}"]

    if "calibrated" in arms:  # after zero_shot: its test answers are in the same project
        figures.update(calibrated(data, work, model, calibration_rows, figures.get("temporal_zero_shot_s_per_row")))
    if "cue_student" in arms:
        figures.update(cue_student(data, work))
    config = load_config(load("temporal", model))
    task = make_task(config)
    seed = pd.read_json(ROOT / "examples" / "temporal" / "seed.jsonl", lines=True)
    started = time.perf_counter()
    X_seed = embed([task.render(r) for r in seed.to_dict("records")], "all-MiniLM-L6-v2", None)
    X_test = embed([task.render(r) for r in data.to_dict("records")], "all-MiniLM-L6-v2", None)
    names = task.labels
    student = LinearStudent(len(names), seed=0).fit(X_seed, np.array([names.index(v) for v in seed["relation"]]))
    predicted = [names[i] for i in student.predict_proba(X_test).argmax(axis=1)]
    m = task.metrics(list(data["relation"]), predicted)
    figures.update({"temporal_student_seed_rows": len(seed), "temporal_student_accuracy": round(m["temporal_accuracy"], 4),
                    "temporal_student_macro_f1": round(m["temporal_macro_f1"], 4), "temporal_student_micro_f1_no_vague": round(m["temporal_micro_f1_no_vague"], 4),
                    "temporal_student_s": round(time.perf_counter() - started, 1)})
    return figures


CUE_GRID = {"features": ("cues", "cues+embedding"), "fit_on": ("dev", "train+dev"), "C": (0.1, 0.3, 1.0)}


def cue_student(data: pd.DataFrame, work: Path) -> dict:
    """The student with the task's order cues (`TemporalTask.student_features`, what the cascade's student tier
    learns from), on every labeled pair the train and dev files hold: logistic regression with balanced class
    weights (the target is macro-F1). Its features (the cues alone, or beside all-MiniLM-L6-v2 embeddings of the
    marked pair), C, and whether the train pairs join the dev pairs (train pairs have one annotator and no VAGUE)
    are chosen on dev: fit on the pairs of half the dev documents, macro-F1 on the other half's. Then refit on all of it; the test rows are
    scored once. Seconds: everything, the embeddings included."""
    from sklearn.metrics import f1_score

    from labelmill.config import load_config
    from labelmill.selectors.embeddings import embed
    from labelmill.store import Store
    from labelmill.strategies.students.models import LinearStudent
    from labelmill.tasks import make_task

    started = time.perf_counter()
    task = make_task(load_config(load("temporal", None)))
    names = task.labels
    parts = {"train": pd.read_json(DATA / "udst_temporal" / "train_subset.jsonl", lines=True),
             "dev": pd.read_json(DATA / "udst_temporal" / "dev.jsonl", lines=True), "test": data}
    records = {k: f.to_dict("records") for k, f in parts.items()}
    cues = {k: task.student_features(r) for k, r in records.items()}
    with Store(work / "temporal_cue_student.db") as store:
        emb = {k: embed([task.render(x) for x in r], "all-MiniLM-L6-v2", store) for k, r in records.items()}
    X = {"cues": cues, "cues+embedding": {k: np.hstack([emb[k], cues[k]]) for k in cues}}
    y = {k: np.array([names.index(v) for v in parts[k]["relation"]]) for k in ("train", "dev")}
    # halves of the dev *documents* (a sent_id minus its -NNNN): pairs of one sentence on both sides of a split
    # would let a fit remember the sentence (a random split of pairs read 0.31 here, and 0.24 on test)
    docs = parts["dev"]["sent_ids"].map(lambda ids: str(ids[0]).rsplit("-", 1)[0]).to_numpy()
    unique = np.unique(docs)
    first = set(np.random.default_rng(0).permutation(unique)[: len(unique) // 2])
    in_a = np.array([d in first for d in docs])
    a, b = np.flatnonzero(in_a), np.flatnonzero(~in_a)

    def fit(features: str, fit_on: str, C: float, dev_rows: np.ndarray) -> LinearStudent:
        Xs, ys = [X[features]["dev"][dev_rows]], [y["dev"][dev_rows]]
        if fit_on == "train+dev":
            Xs, ys = [X[features]["train"], *Xs], [y["train"], *ys]
        Xf, yf = np.vstack(Xs), np.concatenate(ys)
        counts = np.bincount(yf, minlength=len(names))
        weight = len(yf) / (np.count_nonzero(counts) * counts[yf])  # balanced: each label weighs the same in all
        return LinearStudent(len(names), C=C, seed=0).fit(Xf, yf, weight)

    def macro(gold: np.ndarray, predicted: np.ndarray) -> float:
        return float(f1_score(gold, predicted, labels=range(len(names)), average="macro", zero_division=0))

    tried = []
    for features in CUE_GRID["features"]:
        for fit_on in CUE_GRID["fit_on"]:
            for C in CUE_GRID["C"]:
                got = fit(features, fit_on, C, a).predict_proba(X[features]["dev"][b]).argmax(axis=1)
                tried.append({"features": features, "fit_on": fit_on, "C": C, "dev_half_macro_f1": round(macro(y["dev"][b], got), 4)})
    best = max(tried, key=lambda t: t["dev_half_macro_f1"])
    student = fit(best["features"], best["fit_on"], best["C"], np.arange(len(y["dev"])))
    predicted = [names[i] for i in student.predict_proba(X[best["features"]]["test"]).argmax(axis=1)]
    seconds = time.perf_counter() - started
    m = task.metrics(list(data["relation"]), predicted)
    gold_rows = len(y["dev"]) + (len(y["train"]) if best["fit_on"] == "train+dev" else 0)
    return {"temporal_cue_student_chosen": best, "temporal_cue_student_tried": tried, "temporal_cue_student_gold_rows": gold_rows,
            "temporal_cue_student_dev_halves": [len(a), len(b)],
            "temporal_cue_student_accuracy": round(m["temporal_accuracy"], 4), "temporal_cue_student_macro_f1": round(m["temporal_macro_f1"], 4),
            "temporal_cue_student_micro_f1_no_vague": round(m["temporal_micro_f1_no_vague"], 4),
            "temporal_cue_student_per_label_f1": {k: round(v["f1"], 3) for k, v in m["per_class"].items()},
            "temporal_cue_student_s": round(seconds, 1)}


def calibrated(data: pd.DataFrame, work: Path, model: str | None, rows: int, zero_s_per_row: float | None) -> dict:
    """The zero-shot labeler given labeled dev pairs as calibration (`_arms.llm_calibrated`: `calibrate`, method
    auto, on `rows` dev pairs drawn with seed 0; then the test pairs, whose answers the zero-shot arm left in the
    project). Its seconds: the zero-shot pass's plus the calibration's."""
    from _arms import llm_calibrated

    from labelmill.config import load_config
    from labelmill.tasks import make_task

    config = load_config(load("temporal", model, examples={"k": 0}))
    dev = pd.read_json(DATA / "udst_temporal" / "dev.jsonl", lines=True)
    seed = dev.sample(n=min(rows, len(dev)), random_state=0).reset_index(drop=True)
    arm = llm_calibrated(config, seed, data, work / "temporal_zero_shot.db")
    m = make_task(config).metrics(list(data["relation"]), list(arm.frame["llm_label"]))
    seconds = arm.seconds + (zero_s_per_row or 0.0) * len(data)
    return {"temporal_calibrated_method": arm.calibrator.method, "temporal_calibrated_gold_rows": len(seed),
            "temporal_calibrated_accuracy": round(m["temporal_accuracy"], 4), "temporal_calibrated_macro_f1": round(m["temporal_macro_f1"], 4),
            "temporal_calibrated_micro_f1_no_vague": round(m["temporal_micro_f1_no_vague"], 4),
            "temporal_calibrated_s_per_row": round(seconds / len(data), 3)}


def _batch_calibrated(config: dict, run_id: int, project: Path, gold: list[str]) -> dict:
    """The zero-shot run's stored distributions divided by their mean over the rows (batch calibration, the
    FreeAL first pass's label-free correction of a prompt's label bias): no gold label is used."""
    from labelmill.config import load_config
    from labelmill.store import Store
    from labelmill.strategies.freeal.run import batch_calibrate
    from labelmill.tasks import make_task

    task = make_task(load_config(config))
    with Store(project) as store:
        probs = store.labels(run_id, len(gold), task.labels).probs
    predicted = [task.labels[i] for i in batch_calibrate(probs).argmax(axis=1)]
    m = task.metrics(gold, predicted)
    return {"temporal_zero_shot_batch_accuracy": round(m["temporal_accuracy"], 4), "temporal_zero_shot_batch_macro_f1": round(m["temporal_macro_f1"], 4),
            "temporal_zero_shot_batch_micro_f1_no_vague": round(m["temporal_micro_f1_no_vague"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sets", default="srl,temporal")
    parser.add_argument("--srl-rows", type=int, default=500)
    parser.add_argument("--temporal-rows", type=int, default=1000)
    parser.add_argument("--temporal-arms", default="zero_shot,few_shot,calibrated,cue_student")
    parser.add_argument("--temporal-calibration-rows", type=int, default=1000, help="dev pairs the calibrated arm is given")
    parser.add_argument("--model")
    parser.add_argument("--workdir", help="keep the project files (and their cache) here: a rerun resumes")
    args = parser.parse_args()
    figures: dict = {"model": args.model or "qwen2.5-coder-0.5b"}
    with tempfile.TemporaryDirectory(prefix="labelmill-roles-time-") as tmp:
        if args.workdir:
            tmp = args.workdir
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            if name == "srl":
                figures.update(srl(args.srl_rows, Path(tmp), args.model))
            elif name == "temporal":
                figures.update(temporal(args.temporal_rows, Path(tmp), args.model, args.temporal_arms.split(","), args.temporal_calibration_rows))
            else:
                parser.error(f"unknown set {name!r}")
            print(json.dumps(figures), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for key, value in figures.items():
            print(f"{key:40} {value}")


if __name__ == "__main__":
    main()
