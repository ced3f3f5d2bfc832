"""Relations between entities with the shipped example configs, on the embedded default model.

  semeval   examples/relations/semeval.yaml (task relation: a marked pair, 19 labels scored, 8 most similar
            of 451 train demos) on the first --semeval-rows (default 1,000) rows of SemEval-2010 Task 8's
            test.jsonl. The official score: macro-F1 over the nine relation types with direction, Other
            left out.
  conll04   examples/relations/conll04.yaml (task relations: entities, then a scored question per pair the
            type constraints allow) on all 288 CoNLL04 test sentences. Strict relation micro-F1 (both
            spans, both entity types and the relation right) with entity F1 beside it.

Each figure is what `labelmill eval --json` reports on the run's output, with completion rate and s/row.
--model swaps the model of both configs (e.g. qwen2.5-coder-1.5b, the opt-in model); --gold-entities also
runs CoNLL04's relation step on the gold entities (the ceiling the entity step leaves).

    python bench/relations.py [--json] [--semeval-rows 1000] [--conll-rows 288] [--sets semeval,conll04]
                              [--model NAME] [--gold-entities] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "relations"


def load(name: str, model: str | None) -> dict:
    config = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    config["examples"]["file"] = str(EXAMPLES / config["examples"]["file"])
    if model:
        config["model"]["name"] = model
    return config


def semeval(rows: int, work: Path, model: str | None) -> dict:
    import labelmill

    data = pd.read_json(DATA / "semeval2010_task8" / "test.jsonl", lines=True).head(rows)
    config = load("semeval", model)
    out = work / "semeval.jsonl"
    started = time.perf_counter()
    labelmill.run(config, data, output=out, project=work / "semeval.db")
    wall = time.perf_counter() - started
    m = labelmill.evaluate(config, out)
    majority = float(data["relation"].value_counts(normalize=True).max())
    return {
        "semeval_rows": len(data), "semeval_official_macro_f1": round(m["official_macro_f1"], 4), "semeval_completion_rate": m["completion_rate"],
        "semeval_accuracy": round(m["accuracy"], 4), "semeval_majority_accuracy": round(majority, 4), "semeval_macro_f1_19": round(m["macro_f1"], 4),
        "semeval_s_per_row": round(wall / len(data), 3),
        "semeval_per_type_f1": {k: round(v["f1"], 3) for k, v in m["official_per_type"].items()},
    }


def conll04(rows: int, work: Path, model: str | None, gold_entities: bool) -> dict:
    import labelmill

    data = pd.read_json(DATA / "conll04" / "test.jsonl", lines=True).head(rows)
    config = load("conll04", model)
    out = work / "conll04.jsonl"
    started = time.perf_counter()
    labelmill.run(config, data, output=out, project=work / "conll04.db")
    wall = time.perf_counter() - started
    m = labelmill.evaluate(config, out)
    figures = {
        "conll04_rows": len(data), "conll04_relation_strict_f1": round(m["relation_f1_strict"], 4),
        "conll04_relation_precision": round(m["relation_precision_strict"], 4), "conll04_relation_recall": round(m["relation_recall_strict"], 4),
        "conll04_entity_f1": round(m["entity_f1"], 4), "conll04_completion_rate": m["completion_rate"],
        "conll04_predicted_relations": m["predicted_relations"], "conll04_gold_relations": m["gold_relations"],
        "conll04_s_per_row": round(wall / len(data), 3),
        "conll04_per_relation_f1": {k: round(v["f1"], 3) for k, v in m["per_relation"].items()},
        "conll04_relation_thresholds": [{k: round(v, 3) if isinstance(v, float) else v for k, v in t.items()} for t in m["relation_thresholds"]],
    }
    if gold_entities:
        figures.update(conll04_gold_entities(data, config))
    return figures


def conll04_gold_entities(data: pd.DataFrame, config: dict) -> dict:
    """The relation step alone: every pair of gold entities asked, as the relations task asks them."""
    from labelmill.config import load_config
    from labelmill.core.job import Job
    from labelmill.tasks.base import RowInput
    from labelmill.types import Label

    cfg = load_config(config)
    job = Job(cfg)
    task = job.task
    gold = [task.gold(r) for r in data.to_dict("records")]
    backend = job.backend
    predicted = []
    started = time.perf_counter()
    for record, g in zip(data.to_dict("records"), gold):
        row = RowInput(task.render(record), record)
        label = Label(value={"spans": g["entities"]}, confidence=1.0)
        questions = task.followups(row, label)
        # every pair question of a row has the same answers (yes / no): one batched request per row
        answers = [r.logprobs for r in backend.score([p for p, _ in questions], ["yes", "no"])] if questions else []
        predicted.append(task.parse_gold(task.output_value(task.apply_followups(row, label, answers))))
    m = task.metrics(gold, predicted)
    return {"conll04_gold_entities_relation_f1": round(m["relation_f1_strict"], 4), "conll04_gold_entities_s_per_row": round((time.perf_counter() - started) / len(data), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sets", default="semeval,conll04")
    parser.add_argument("--semeval-rows", type=int, default=1000)
    parser.add_argument("--conll-rows", type=int, default=288)
    parser.add_argument("--model")
    parser.add_argument("--gold-entities", action="store_true")
    parser.add_argument("--workdir", help="keep the project files (and their cache) here: a rerun resumes")
    args = parser.parse_args()
    figures: dict = {"model": args.model or "qwen2.5-coder-0.5b"}
    with tempfile.TemporaryDirectory(prefix="labelmill-relations-") as tmp:
        if args.workdir:
            tmp = args.workdir
            Path(tmp).mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            if name == "semeval":
                figures.update(semeval(args.semeval_rows, Path(tmp), args.model))
            elif name == "conll04":
                figures.update(conll04(args.conll_rows, Path(tmp), args.model, args.gold_entities))
            else:
                parser.error(f"unknown set {name!r}")
            print(json.dumps(figures), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for key, value in figures.items():
            print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
