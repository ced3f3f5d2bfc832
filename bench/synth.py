"""`python bench/synth.py [--parts student,judge,summaries] [--json]`: synthesis and judging on shared data.

- **student** (`<set>_synthetic_student_accuracy`): `labelmill synth examples` writes `--per-label` examples per
  label for SST-2 and AG News from no real rows (the shipped sentiment config; an AG News topic config);
  a student (logistic regression on `--student-encoder` embeddings, all-mpnet-base-v2 by default) learns
  only from the kept examples and is scored on the first `--test-rows` real test rows. `<set>_distinct_2`, `<set>_dedup_removed_share` and
  the other filters' counts beside it.
- **judge** (`judge_pairwise_accuracy`): pairs from shared SQuAD 2.0 answerable questions, the gold answer
  against the answer of another question on the same context, the gold's side drawn at random; judged in
  both orders by `--judge-model`; `judge_flip_rate`, `judge_position_consistency`, the accuracy of one order alone.
- **summaries** (`summary_restore_score_*`): the 173 distinct contexts of shared SQuAD 2.0, the template
  searched on the first `--search-rows` and scored on the rest (`labelmill synth summaries`).

Default embedded model unless a key names another; wall seconds per part.
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
from _report import emit

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
AGNEWS = {"task": "classification", "name": "agnews-topics", "input_template": "{text}", "gold_column": "label",
          "guidelines": "Classify the topic of the news article.",
          "labels": [{"name": "World", "description": "world news: politics, governments, wars, diplomacy"},
                     {"name": "Sports", "description": "sports news"},
                     {"name": "Business", "description": "business and economy news: companies, markets, earnings"},
                     {"name": "Sci/Tech", "description": "science and technology news: computers, the internet, space, research"}],
          "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "score"}}


def student_part(name: str, per_label: int, test_rows: int, work: Path, encoder: str = "all-mpnet-base-v2", consistency: str = "student") -> dict:
    from labelmill.config import load_config
    from labelmill.selectors.embeddings import embed
    from labelmill.store import Store
    from labelmill.strategies.students.models import LinearStudent
    from labelmill.strategies.synth.examples import synth_examples

    config = load_config(ROOT / "examples" / "sentiment" / "config.yaml") if name == "sst2" else load_config(AGNEWS)
    test = pd.read_csv(DATA / ("sst2" if name == "sst2" else "ag_news") / "test.csv").head(test_rows)
    started = time.perf_counter()
    config = config.model_copy(update={"examples": config.examples.model_copy(update={"embedding_model": encoder})})  # dedup and the filter's student
    result = synth_examples(config, per_label=per_label, project=work / f"{name}.db", consistency=consistency)
    kept = result.frame[result.frame["kept"]]
    names = config.label_names
    with Store(work / f"{name}.db") as store:
        X = embed(kept["text"].tolist(), encoder, store)
        X_test = embed(test["text"].astype(str).tolist(), encoder, store)
    y = np.array([names.index(v) for v in kept["label"]])
    student = LinearStudent(len(names)).fit(X, y)
    predicted = np.array(names)[student.predict_proba(X_test).argmax(axis=1)]
    f = result.figures
    out = {f"{name}_student_encoder": encoder, f"{name}_consistency": consistency, f"{name}_synthetic_student_accuracy": round(float(np.mean(predicted == test["label"].astype(str).to_numpy())), 4),
           f"{name}_synthetic_rows": int(len(kept)), f"{name}_generated": f["generated"], f"{name}_distinct_2": f["distinct_2"],
           f"{name}_dedup_removed_share": f["dedup_removed_share"], f"{name}_removed_inconsistent": f.get("removed_inconsistent"),
           f"{name}_removed_rules": f["removed_rules"], f"{name}_embedding_spread": f.get("embedding_spread"), f"{name}_test_rows": len(test),
           f"{name}_wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def squad_pairs(limit: int | None, seed: int = 0) -> pd.DataFrame:
    """Gold answer vs the answer of another question on the same context (not one of the gold's answers)."""
    data = pd.read_csv(DATA / "squad_v2" / "dev_subset_answerable.csv")
    rng = np.random.default_rng(seed)
    rows = []
    for context, group in data.groupby("context", sort=False):
        answers = group["answer"].astype(str).tolist()
        for _, row in group.iterrows():
            golds = {a.strip().casefold() for a in json.loads(row["all_answers"])} | {str(row["answer"]).strip().casefold()}
            wrong = [a for a in answers if a.strip().casefold() not in golds and not any(g in a.casefold() or a.casefold() in g for g in golds)]
            if not wrong:
                continue
            other = wrong[int(rng.integers(len(wrong)))]
            gold_first = bool(rng.integers(2))
            rows.append({"context": context, "question": row["question"], "first": row["answer"] if gold_first else other,
                         "second": other if gold_first else row["answer"], "human": "first" if gold_first else "second"})
    frame = pd.DataFrame(rows)
    return frame.head(limit) if limit else frame


def judge_part(model: str, pairs: int | None, work: Path, mode: str = "pointwise") -> dict:
    from labelmill.strategies.synth.judge import judge_pairs

    frame = squad_pairs(pairs)
    started = time.perf_counter()
    result = judge_pairs(frame, model=model, project=work / "judge.db", mode=mode)
    f = result.figures
    out = {"judge_model": f["judge_model"], "judge_mode": f["mode"], "judge_pairs": f["pairs"], "judge_pairwise_accuracy": f["accuracy"], "judge_flip_rate": f["flip_rate"],
           "judge_position_consistency": f["position_consistency"], "judge_accuracy_on_decided": f["accuracy_on_decided"],
           "judge_ties": f["ties"], "judge_accuracy_one_order": f["accuracy_one_order"], "judge_kappa": f["kappa"],
           "judge_s_per_pair": round((time.perf_counter() - started) / max(1, f["pairs"]), 3)}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def summaries_part(search_rows: int, work: Path, restore_words: int | None = None) -> dict:
    from labelmill.strategies.synth.summaries import synth_summaries

    contexts = pd.read_csv(DATA / "squad_v2" / "dev_subset.csv").drop_duplicates("context")[["context"]].rename(columns={"context": "text"})
    config = {"task": "generation", "name": "squad-summaries", "guidelines": "Summarize the text in one sentence.", "input_template": "{text}",
              "model": {"backend": "llama_cpp", "name": "qwen2.5-coder-0.5b", "method": "generate", "max_tokens": 80}}
    started = time.perf_counter()
    result = synth_summaries(config, contexts, search_rows=search_rows, project=work / "summaries.db", restore_words=restore_words)
    f = result.figures
    out = {"summary_restore_words": restore_words or "all", "summary_contexts": int(len(contexts)), "summary_search_rows": f["search_rows"], "summary_held_out_rows": f["held_out_rows"],
           "summary_restore_score_initial": f["restore_score_initial"], "summary_restore_score_searched": f["restore_score_searched"],
           "summary_compression_initial": f["compression_initial"], "summary_compression_searched": f["compression_searched"],
           "summary_chosen_template": f["chosen_template"], "summary_search": f["search"], "summary_wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps({k: v for k, v in out.items() if k != "summary_search"}), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="student,judge,summaries")
    parser.add_argument("--sets", default="sst2,agnews")
    parser.add_argument("--per-label", type=int, default=150)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--student-encoder", default="all-mpnet-base-v2", help="The student's sentence encoder (all-MiniLM-L6-v2 is the small one).")
    parser.add_argument("--consistency", default="student", help="student (cross-fitted on the other synthetic examples), labeler (the config's model) or none.")
    parser.add_argument("--judge-model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--pairs", type=int, default=200, help="The first N pairs (0: all 688).")
    parser.add_argument("--judge-mode", default="pointwise", help="pointwise (P(correct) per answer) or pairwise (A/B in both orders); both: each.")
    parser.add_argument("--search-rows", type=int, default=40)
    parser.add_argument("--restore-words", type=int, default=0, help="Restore the first N words of each context (0: all of it).")
    parser.add_argument("--project-dir", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = args.project_dir or Path(tempfile.mkdtemp(prefix="labelmill-synth-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {"model": "qwen2.5-coder-0.5b"}
    parts = args.parts.split(",")
    if "student" in parts:
        for name in args.sets.split(","):
            figures.update(student_part(name, args.per_label, args.test_rows, work, args.student_encoder, args.consistency))
    if "judge" in parts:
        modes = ["pointwise", "pairwise"] if args.judge_mode == "both" else [args.judge_mode]
        for mode in modes:
            part = judge_part(args.judge_model, args.pairs or None, work, mode)
            figures.update(part if mode == modes[0] else {f"{k}_{mode}": v for k, v in part.items()})
    if "summaries" in parts:
        figures.update(summaries_part(args.search_rows, work, args.restore_words or None))
    emit(figures, args.json)


if __name__ == "__main__":
    main()
