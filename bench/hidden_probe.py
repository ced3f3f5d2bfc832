"""A student on the LLM's own features: a linear probe of the default model's last hidden state.

For each of the first --rows SST-2 test rows (default: all 1,821) the embedded default model
(qwen2.5-coder-0.5b) reads the zero-shot classification prompt that `labelmill run` sends, and its last
hidden state at the answer position (the prompt's last token; 896 numbers) is kept. A logistic regression on
those features is scored by 5-fold cross-validation, trained twice: on the gold labels (the most any
student on these features could give) and on the LLM's own zero-shot labels (what a student in a cascade
or in FreeAL would learn from). Reported beside them: the LLM's zero-shot accuracy, the probe's agreement
with the LLM, and the seconds per row of the feature pass.

    python bench/hidden_probe.py [--json] [--rows 1821]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from freeal import config, rows_of  # noqa: E402


def hidden_states(prompts: list[str], model_path: str, n_threads: int) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model_path, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
                          n_ctx=2048, n_batch=2048, n_ubatch=2048, n_seq_max=16, n_threads=n_threads, verbose=False)
    plain = llm.tokenize
    # the rendered prompt holds the chat template's special tokens: read them as such, as the labeler does
    llm.tokenize = lambda text, add_bos=True, special=False: plain(text, add_bos=False, special=True)  # type: ignore[method-assign]
    rows = []
    for start in range(0, len(prompts), 16):
        rows += llm.embed(prompts[start:start + 16])
    llm.close()
    return np.asarray(rows, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=int, default=1821)
    args = parser.parse_args()

    import labelmill
    from labelmill.config import Config
    from labelmill.core.job import Job
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = rows_of("sst2", args.rows)
    gold = data["label"].astype(str).to_numpy()
    cfg = config("sst2")
    with tempfile.TemporaryDirectory(prefix="labelmill-probe-") as work:
        path = Path(work) / "sst2.csv"
        data.to_csv(path, index=False)
        llm_labels = labelmill.run(cfg, path, project=Path(work) / "sst2.db").frame["llm_label"].astype(str).to_numpy()
    job = Job(Config.model_validate(cfg))
    prompts = [job.backend.render(job.prompt(job.row_input(row))) for row in data.to_dict("records")]
    started = time.perf_counter()
    X = hidden_states(prompts, str(job.backend.resolved.path), job.backend.spec.n_threads or 2)
    seconds = time.perf_counter() - started

    def probe(y: np.ndarray) -> np.ndarray:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
        return cross_val_predict(model, X, y, cv=5)

    on_gold = probe(gold)
    on_llm = probe(llm_labels)
    figures = {
        "model": job.backend.model_id, "rows": len(data), "features": int(X.shape[1]),
        "majority_accuracy": round(float(np.mean(gold == max(set(gold), key=list(gold).count))), 4),
        "llm_zero_shot_accuracy": round(float(np.mean(llm_labels == gold)), 4),
        "probe_on_gold_accuracy": round(float(np.mean(on_gold == gold)), 4),
        "probe_on_llm_labels_accuracy": round(float(np.mean(on_llm == gold)), 4),
        "probe_on_llm_labels_agreement_with_llm": round(float(np.mean(on_llm == llm_labels)), 4),
        "feature_pass_s_per_row": round(seconds / len(data), 3),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        for key, value in figures.items():
            print(f"{key:42s} {value}")


if __name__ == "__main__":
    main()
