"""Run one Autolabel config through Autolabel itself (refuel-autolabel 0.0.16) and write its labels, errors,
its own metrics and its wall time as JSON. Run by bench/autolabel_compat.py with the Python of a separate
environment that has Autolabel (its pins, pydantic 1 and langchain 0.0.226, cannot share ours); it imports
nothing of labelmill.

    python _autolabel_run.py CONFIG.json ROWS.csv OUT.json --base-url http://127.0.0.1:PORT/v1 \
        --embedding /path/to/all-MiniLM-L6-v2 --max-tokens 32

What is changed in the config, and only for this run (the file is not edited): the model is the OpenAI chat
provider pointed at the local llama.cpp server (`OPENAI_API_BASE`), so Autolabel asks the same GGUF model as
labelmill; `max_tokens` caps an answer as labelmill's task does (Autolabel's default, 1,000, lets a 0.5B model
ramble past the server's context); the few-shot embeddings are the same all-MiniLM-L6-v2 labelmill uses, from
its local folder (Autolabel's default asks OpenAI for embeddings); confidence is off (Autolabel computes it
from completion logprobs or its own hosted endpoint, neither of which a chat server here gives). tiktoken,
used only to price the run, cannot fetch its encodings offline: a whitespace count stands in. Autolabel's
attribute extraction ends the run at the first answer that is not JSON (a field-name bug in 0.0.16): mapped,
so that answer is the failed row it was meant to be; and where its writer of the labeled table then fails (an
answer without every attribute), the answers it labeled are read from the agent all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import time


class _Words:
    """tiktoken's encoding, as far as Autolabel's cost estimate uses it."""

    def encode(self, text: str) -> list[int]:
        return [0] * len(str(text).split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("rows")
    parser.add_argument("out")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--embedding", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    started = time.perf_counter()
    os.environ["OPENAI_API_BASE"] = args.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-local")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import tiktoken

    tiktoken.encoding_for_model = lambda name: _Words()  # pricing only
    tiktoken.get_encoding = lambda name: _Words()
    from autolabel import AutolabelDataset, LabelingAgent
    import autolabel.tasks.attribute_extraction as extraction

    # Autolabel 0.0.16 builds its parse-error record with a field name its own model lacks (`error_msg` for
    # `error_message`), so the first answer that is not JSON ends the whole run; mapped here, that answer is
    # recorded as the failed row Autolabel meant it to be
    class _LabelingError(extraction.LabelingError):
        def __init__(self, **fields):
            if "error_msg" in fields:
                fields["error_message"] = fields.pop("error_msg")
            super().__init__(**fields)

    extraction.LabelingError = _LabelingError

    config = json.loads(open(args.config, encoding="utf-8").read())
    config["model"] = {"provider": "openai", "name": "gpt-3.5-turbo", "compute_confidence": False,
                       "params": {"max_tokens": args.max_tokens, "request_timeout": 600}}
    config["embedding"] = {"provider": "huggingface_pipeline", "model": args.embedding}
    # Autolabel reads the few-shot file relative to the working directory: run from the config's folder
    os.chdir(os.path.dirname(os.path.abspath(args.config)))
    agent = LabelingAgent(config=config, cache=False, console_output=False)
    dataset = AutolabelDataset(os.path.abspath(args.rows), config=agent.config)
    metrics = {}
    try:
        agent.run(dataset, skip_eval=True)
    except Exception as exc:  # its writer of the labeled table fails on an answer without every attribute
        metrics["crashed_after_labeling"] = f"{type(exc).__name__}: {exc}"
    annotations = agent.get_all_annotations()  # every row's answer, kept as it labeled
    seconds = time.perf_counter() - started
    if dataset.gt_labels:
        gt = dataset.gt_labels if isinstance(dataset.gt_labels, list) else {k: v for k, v in dataset.gt_labels.items()}
        try:
            for m in agent.task.eval(annotations, gt):
                if not isinstance(m.value, list):
                    metrics[str(getattr(m.name, "value", m.name))] = m.value
        except Exception as exc:  # its attribute-extraction eval needs the confidences it cannot compute here
            metrics["error"] = f"Autolabel's own eval failed: {type(exc).__name__}: {exc}"
    out = {
        "labels": [a.label for a in annotations],
        "errors": [None if a.error is None else str(a.error) for a in annotations],
        "metrics": metrics,
        "seconds": seconds,
        "rows": len(annotations),
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, default=str)


if __name__ == "__main__":
    main()
