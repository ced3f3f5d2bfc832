"""Tiered cascade: an ordered list of labelers (a student, then models from small to large); each tier labels
only the rows the tier below was not sure enough of.

    labelmill run CONFIG ROWS --out OUT --tiers student:all-mpnet-base-v2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b \\
        --tiers-seed train.csv --tiers-target 0.95

Every threshold comes from labeled seed rows (a train/dev file or reviewed rows, never the rows being
labeled), for a target accuracy with the Clopper-Pearson bound `labelmill calibrate` uses
(`numeric.calibration.threshold_with_bound`):

- **student** (`student[:ENCODER]`): a logistic regression on sentence embeddings (MiniLM by default;
  `all-mpnet-base-v2` is the stronger one), trained on the seed rows' gold labels. Its confidence is a
  Platt fit, on out-of-fold predictions of the seed rows, of whether it is right.
- **a model** (a catalog name, a .gguf path, or `backend:name` such as `openai:gpt-4o-mini`): its
  confidence is calibrated on a sample (`calibration_rows`) of the seed rows that the tiers below it
  would pass up, so each threshold is set on rows as hard as the ones that tier will see.
- The **last** tier takes every row that reaches it. `NAME@SHARE` caps a model tier's cost: it labels at
  most that share of all rows, the ones the tiers below were least sure of (a student: it keeps at most
  that share, its surest rows); rows over a cap keep the surest label below them, marked "(over budget)" (or "(top tier failed)" where the top model gave no label).

Provenance: each model tier's labels are runs in the store (model, prompt, raw answer, confidence); the
output has `llm_label_source` (the tier that gave each label) and `llm_cascade_confidence`; the report's
cascade section shows rows, accuracy and time per tier from the `<out>.cascade.json` sidecar.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.core import check_columns
from labelmill.io import read_rows, write_rows
from labelmill.tasks import make_task

STUDENT = "student"


@dataclass
class Tier:
    name: str  # what the output's source column says
    kind: str  # "student" or "model"
    model: str | dict | None = None  # student: the encoder; model: a catalog name / path or a model mapping
    budget: float | None = None  # the most rows this tier may label, as a share of all rows
    threshold: float | None = None  # None: chosen on the seed rows for the target


@dataclass
class TierStats:
    name: str
    rows: int = 0
    share: float = 0.0
    threshold: float | None = None
    seed_rows: int = 0  # seed rows its threshold was set on
    seed_accuracy_accepted: float | None = None
    capped: bool = False
    compared: dict[str, Any] | None = None  # with compare_next: this tier's and the next tier's seed accuracy on the rows passed up
    note: str = ""
    seconds: float = 0.0
    accuracy: float | None = None  # against a gold column in the rows, reporting only


@dataclass
class TieredResult:
    frame: Any
    tiers: list[TierStats]
    figures: dict[str, Any] = field(default_factory=dict)
    output_path: Path | None = None
    # tier name -> (label per row or None, calibrated confidence per row or NaN): what each tier said on the rows it saw
    routing: dict[str, tuple[list[Any], np.ndarray]] = field(default_factory=dict)


def parse_tiers(spec: str | list[Any]) -> list[Tier]:
    """`student:all-mpnet-base-v2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b@0.3` (or a list of names / mappings)."""
    items = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    tiers: list[Tier] = []
    for item in items:
        if isinstance(item, Tier):
            tiers.append(item)
            continue
        if isinstance(item, dict):
            d = dict(item)
            kind = "student" if d.get("kind") == "student" else "model"
            tiers.append(Tier(name=str(d.get("name") or d.get("model") or kind), kind=kind, model=d.get("model"), budget=d.get("budget"), threshold=d.get("threshold")))
            continue
        text, _, cap = str(item).partition("@")
        budget = None
        if cap:
            try:
                budget = float(cap)
            except ValueError:
                raise ConfigError(f"tier {item!r}: the share after @ must be a number", fix="write e.g. qwen2.5-coder-1.5b@0.25") from None
            if not 0 < budget <= 1:
                raise ConfigError(f"tier {item!r}: the share after @ must be in (0, 1]", fix="write e.g. qwen2.5-coder-1.5b@0.25")
        if text.endswith((".json", ".yaml", ".yml")):
            if not Path(text).is_file():
                raise ConfigError(f"tier {text!r}: no such model file", fix="give a .json/.yaml file holding a model mapping (backend, name, ...)")
            import yaml

            mapping = yaml.safe_load(Path(text).read_text())
            if not isinstance(mapping, dict):
                raise ConfigError(f"tier {text!r}: the file must hold a model mapping", fix="write e.g. {backend: openai, name: gpt-4o-mini}")
            tiers.append(Tier(name=text, kind="model", model=mapping.get("model", mapping), budget=budget))
        elif text == STUDENT or text.startswith(STUDENT + ":"):
            encoder = text.partition(":")[2] or None
            tiers.append(Tier(name=STUDENT if not encoder else f"student:{encoder}", kind="student", model=encoder, budget=budget))
        else:
            backend, sep, name = text.partition(":")
            model: str | dict = {"backend": backend, "name": name} if sep and backend in _BACKENDS else text
            tiers.append(Tier(name=text, kind="model", model=model, budget=budget))
    if not tiers:
        raise ConfigError("no tiers given", fix="pass e.g. --tiers student,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    if any(t.kind == "student" for t in tiers[1:]):
        raise ConfigError("a student tier can only come first", fix="put student first: --tiers student,MODEL,...")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ConfigError(f"a tier is named twice: {names}", fix="list each labeler once")
    return tiers


_BACKENDS = ("llama_cpp", "openai", "anthropic", "vllm", "fake", "llama_server")


def tiered_cascade(
    config: str | Path | dict | Config,
    data: Any,
    *,
    tiers: str | list[Any],
    seed: Any,
    target: float = 0.95,
    delta: float = 0.05,
    calibration_rows: int = 200,
    project: str | Path = "labelmill.db",
    output: str | Path | None = None,
    limit: int | None = None,
    random_seed: int = 0,
    compare_next: bool = False,
    backends: dict[str, Any] | None = None,
    on_event: EventHandler = ignore,
) -> TieredResult:
    """Label `data` through `tiers` (see the module doc). `seed`: labeled rows (a path or frame with the
    config's gold column); `compare_next`: before a tier passes rows up, the next model labels a sample
    (`calibration_rows`) of the seed rows it would get, and where it is no more accurate on them than this
    tier, this tier keeps every row; `backends`: tier name -> a backend object (tests)."""
    from labelmill.core import Job
    from labelmill.store.db import Store

    started = time.perf_counter()
    cfg = load_with_notices(config, on_event)
    if cfg.task != "classification":
        raise ConfigError(f"a tiered cascade works on classification tasks; this config is {cfg.task!r}", fix="run without --tiers")
    tier_list = parse_tiers(tiers)
    names = cfg.label_names
    frame = read_rows(data, cfg.dataset)
    if limit is not None:
        frame = frame.head(limit)
    seed_frame = read_rows(seed, cfg.dataset)
    gold_column = cfg.gold_column or "label"
    if gold_column not in seed_frame.columns:
        raise InputDataError(f"the seed rows have no gold column {gold_column!r}", fix="give labeled seed rows (a train or dev file, or reviewed rows) with that column")
    seed_frame = seed_frame[seed_frame[gold_column].astype(str).isin(names)].reset_index(drop=True)
    if len(seed_frame) < 30:
        raise InputDataError(f"only {len(seed_frame)} seed rows carry one of the config's labels", fix="give at least 30 labeled seed rows (a few hundred is typical)")
    seed_gold = np.array([names.index(str(v)) for v in seed_frame[gold_column]])
    n, n_seed = len(frame), len(seed_frame)
    rng = np.random.default_rng(random_seed)

    labels: list[Any] = [None] * n
    confidence = np.full(n, np.nan)
    source = [""] * n
    errors = [""] * n
    open_rows = np.arange(n)  # rows no tier has accepted yet
    seed_open = np.arange(n_seed)  # seed rows the tiers so far would pass up
    stats: list[TierStats] = []
    best_below: dict[int, tuple[Any, float, str]] = {}  # row -> (label, confidence, tier) of the surest tier below
    routing: dict[str, tuple[list[Any], np.ndarray]] = {}

    task = make_task(cfg)
    check_columns(cfg, task, frame)
    row_texts = [task.render(r) for r in frame.to_dict("records")]
    seed_texts = [task.render(r) for r in seed_frame.to_dict("records")]
    with Store(project) as store:
        for position, tier in enumerate(tier_list):
            last = position == len(tier_list) - 1
            st = TierStats(tier.name)
            t0 = time.perf_counter()
            if not len(open_rows):
                stats.append(st)
                continue
            if tier.kind == "student":
                row_probs, seed_conf_raw, seed_pred, calibrator = _student(cfg, tier, row_texts, seed_texts, seed_gold, store, random_seed, on_event)
                seed_correct = seed_pred == seed_gold
                row_label = row_probs.argmax(axis=1)
                row_conf = calibrator.confidence(row_probs.max(axis=1))
                seed_conf = calibrator.confidence(seed_conf_raw)
                tier_labels = {int(i): (names[int(row_label[i])], float(row_conf[i]), "") for i in open_rows}
                calib = seed_open
            else:
                calib = np.sort(rng.permutation(seed_open)[: calibration_rows]) if not last else np.arange(0)
                job = Job(_tier_config(cfg, tier), (backends or {}).get(tier.name))
                try:
                    seed_conf, seed_correct_sub = np.full(n_seed, np.nan), np.zeros(n_seed, dtype=bool)
                    if len(calib):
                        on_event(Notice(f"cascade: {tier.name} labels {len(calib)} seed rows to set its threshold"))
                        got = _label(job, store, seed_frame, calib, names, on_event)
                        raw = np.array([got[i][1] if got.get(i) and got[i][0] is not None else 0.0 for i in range(len(calib))])
                        ok = np.array([got.get(i) is not None and got[i][0] == names[seed_gold[r]] for i, r in enumerate(calib)])
                        calibrator = _platt(raw, ok, names)
                        seed_conf[calib], seed_correct_sub[calib] = calibrator.confidence(raw), ok
                    else:
                        calibrator = None
                    asked = open_rows
                    if tier.budget is not None and len(open_rows) > int(tier.budget * n):
                        # a cost cap: this model labels only the rows the tiers below were least sure of
                        surest = np.array([best_below.get(int(i), (None, -1.0, ""))[1] for i in open_rows])
                        asked = np.sort(open_rows[np.argsort(surest, kind="stable")[: int(tier.budget * n)]])
                        st.capped = True
                    on_event(Notice(f"cascade: {tier.name} labels {len(asked)} rows"))
                    got = _label(job, store, frame, asked, names, on_event) if len(asked) else {}
                finally:
                    if (backends or {}).get(tier.name) is None:
                        job.backend.close()
                tier_labels = {}
                for j, i in enumerate(asked):
                    a = got.get(j)
                    if a is None or a[0] is None:
                        errors[int(i)] = (a[2] if a else "") or "no label"
                        continue
                    c = float(calibrator.confidence(np.array([a[1]]))[0]) if calibrator is not None else float(a[1])
                    tier_labels[int(i)] = (a[0], c, "")
                seed_correct = seed_correct_sub
            # the threshold: on the seed rows that reach this tier (for a model: the calibration sample of them)
            if last:
                accept = list(tier_labels)
                st.threshold = None
            else:
                chosen = tier.threshold
                sc, ok = seed_conf[calib], seed_correct[calib]
                st.seed_rows = int(len(calib))
                if chosen is None:
                    from labelmill.numeric.calibration import threshold_with_bound

                    found = threshold_with_bound(sc, ok, target, delta)
                    chosen = found["threshold"] if found else float("inf")  # nothing passes the bound: pass every row up
                    if found:
                        st.seed_accuracy_accepted = round(found["seed_accuracy"], 4)
                st.threshold = chosen if np.isfinite(chosen) else None
                if not np.isfinite(chosen):
                    st.note = f"no threshold reaches {target} (with the bound) on {len(calib)} seed rows: every row goes up"
                passed = calib[~(sc >= chosen)]  # (for a model: the sample of them that it saw)
                nxt = tier_list[position + 1]
                if compare_next and len(passed) and nxt.kind == "model":
                    # is the next tier better on the rows this one would pass up? measured on a sample of them
                    probe = np.sort(rng.permutation(passed)[: calibration_rows])
                    job_next = Job(_tier_config(cfg, nxt), (backends or {}).get(nxt.name))
                    try:
                        on_event(Notice(f"cascade: {nxt.name} labels {len(probe)} seed rows {tier.name} would pass up, to compare"))
                        got_next = _label(job_next, store, seed_frame, probe, names, on_event)
                    finally:
                        if (backends or {}).get(nxt.name) is None:
                            job_next.backend.close()
                    acc_next = float(np.mean([got_next.get(j) is not None and got_next[j][0] == names[seed_gold[r]] for j, r in enumerate(probe)]))
                    acc_here = float(np.mean(seed_correct[probe]))
                    st.compared = {"rows": int(len(probe)), "this_tier_accuracy": round(acc_here, 4), "next_tier_accuracy": round(acc_next, 4)}
                    if acc_next <= acc_here:
                        chosen = -np.inf
                        st.threshold = None
                        st.note = (f"{nxt.name} is not better on the seed rows this tier would pass up ({acc_next:.3f} vs {acc_here:.3f} "
                                   f"on {len(probe)}): this tier keeps every row")
                        passed = calib[:0]
                accept = [i for i, v in tier_labels.items() if v[1] >= chosen]
                seed_open = passed
            if tier.budget is not None and tier.kind == "student":  # a student keeps at most its share, its surest rows
                cap = int(tier.budget * n)
                if len(accept) > cap:
                    accept = sorted(accept, key=lambda i: -tier_labels[i][1])[:cap]
                    st.capped = True
            seen_labels, seen_conf = [None] * n, np.full(n, np.nan)
            for i, v in tier_labels.items():
                seen_labels[i], seen_conf[i] = v[0], v[1]
            routing[tier.name] = (seen_labels, seen_conf)
            accepted = set(accept)
            for i in accept:
                labels[i], confidence[i], source[i] = tier_labels[i][0], tier_labels[i][1], tier.name
                errors[i] = ""
            for i, v in tier_labels.items():
                if i not in accepted and (i not in best_below or v[1] > best_below[i][1]):
                    best_below[i] = (v[0], v[1], tier.name)
            open_rows = np.array([i for i in open_rows if int(i) not in accepted], dtype=int)
            st.rows, st.share = len(accept), round(len(accept) / max(1, n), 4)
            st.seconds = round(time.perf_counter() - t0, 2)
            stats.append(st)
            on_event(Notice(f"cascade: {tier.name} keeps {st.rows} rows (threshold {st.threshold}); {len(open_rows)} go on"))
    for i in open_rows:  # over a cap (or failed at the top): the surest label below, marked as such
        if int(i) in best_below:
            lab, conf, name = best_below[int(i)]
            why = "top tier failed" if errors[int(i)] else "over budget"  # the error column keeps what the top tier said
            labels[i], confidence[i], source[i] = lab, conf, f"{name} ({why})"
    from labelmill.core.output import labeled_frame

    out, columns = labeled_frame(frame, cfg, labels, [None if np.isnan(c) else float(c) for c in confidence], errors,
                                 {"source": ("llm_label_source", source)})
    figures: dict[str, Any] = {"rows": n, "seed_rows": n_seed, "target": target, "delta": delta, "wall_s": round(time.perf_counter() - started, 2),
                               "tier_shares": {s.name: s.share for s in stats}}
    if cfg.gold_column and cfg.gold_column in frame.columns:
        gold = frame[cfg.gold_column].astype(str).to_numpy()
        lab = np.array([str(x) if x is not None else "" for x in labels])
        figures["accuracy"] = round(float(np.mean(gold == lab)), 4)
        for st in stats:
            mine = np.array([s == st.name for s in source])
            st.accuracy = round(float(np.mean(gold[mine] == lab[mine])), 4) if mine.any() else None
    figures["tiers"] = [asdict(s) for s in stats]
    path = write_rows(out, output) if output else None
    if path is not None:
        Path(str(path) + ".cascade.json").write_text(json.dumps(figures, indent=1, default=float))
    return TieredResult(out, stats, figures, path, routing)


def _tier_config(cfg: Config, tier: Tier) -> Config:
    spec = tier.model if isinstance(tier.model, dict) else {"name": tier.model}
    return derive_config(cfg, model=spec)


def _platt(raw: np.ndarray, ok: np.ndarray, names: list[str]):
    from labelmill.numeric import calibration as cal_mod

    return cal_mod.fit("platt", None, None, raw.astype(float), ok.astype(bool), names)


def _student(cfg: Config, tier: Tier, row_texts: list[str], seed_texts: list[str], seed_gold: np.ndarray, store: Any, random_seed: int,
             on_event: EventHandler) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Train on the seed rows; (row probabilities, seed out-of-fold max probability, seed out-of-fold label, calibrator)."""
    from labelmill.selectors.embeddings import embed
    from labelmill.strategies.students.models import LinearStudent, out_of_fold

    encoder = tier.model or cfg.examples.embedding_model
    k = len(cfg.label_names)
    on_event(Notice(f"cascade: embedding {len(seed_texts)} seed rows and {len(row_texts)} rows with {encoder}"))
    X_seed = embed(seed_texts, encoder, store)
    X = embed(row_texts, encoder, store)
    oof = out_of_fold(X_seed, seed_gold, k, seed=random_seed)
    calibrator = _platt(oof.max(axis=1), oof.argmax(axis=1) == seed_gold, cfg.label_names)
    student = LinearStudent(k, seed=random_seed).fit(X_seed, seed_gold)
    return student.predict_proba(X), oof.max(axis=1), oof.argmax(axis=1), calibrator


def _label(job: Any, store: Any, frame: Any, rows: np.ndarray, names: list[str], on_event: EventHandler) -> dict[int, tuple[Any, float, str]]:
    """Label `rows` of `frame` with `job` (one resumable run of that subset): position -> (label, confidence, error)."""
    from labelmill.core import Runner

    sub = frame.iloc[np.asarray(rows, dtype=int)].reset_index(drop=True)
    result = Runner(job, store, on_event).run(sub)
    found = store.labels(result.run_id, len(sub), names)
    out: dict[int, tuple[Any, float, str]] = {}
    for j in range(len(sub)):
        a = found.get(j)
        if a is None:
            continue
        ok = a.label is not None and a.label in names
        out[j] = (a.label if ok else None, float(a.confidence) if ok and a.confidence is not None else 0.0, "" if ok else (a.error or "no label"))
    return out
