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

Same labels, same clock: each arm's seconds count everything it ran (the LLM arms: loading and labeling; the
student: embedding its seed rows and the test rows, and the fit). No test row chooses anything.

    python bench/roles_time.py [--json] [--sets srl,temporal] [--srl-rows 500] [--temporal-rows 1000]
                               [--temporal-arms zero_shot,few_shot] [--model NAME] [--workdir DIR]
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


def temporal(rows: int, work: Path, model: str | None, arms: list[str]) -> dict:
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
    parser.add_argument("--temporal-arms", default="zero_shot,few_shot")
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
                figures.update(temporal(args.temporal_rows, Path(tmp), args.model, args.temporal_arms.split(",")))
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
