"""Tiered cascade: an ordered list of labelers (a student, then models from small to large); each tier labels
only the rows the tier below was not sure enough of.

    labelmill run CONFIG ROWS --out OUT --tiers student:all-mpnet-base-v2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b \\
        --tiers-seed train.csv --tiers-target 0.95

Every threshold comes from labeled seed rows (a train/dev file or reviewed rows, never the rows being
labeled), for a target accuracy with the Clopper-Pearson bound `labelmill calibrate` uses
(`numeric.calibration.threshold_with_bound`). With no labeled rows at all (`seed` None: `labelmill run
--cascade`, the preset `llm_cascade` builds), the first model labels a sample of the rows instead (k-means
medoids of the student's embeddings, `seed_sample` rows) and its labels are the seed: the student learns
them, its threshold is set on how often it agrees with that model, and the sample's rows keep the model's
labels (a model tier below the last then needs a fixed threshold on its own confidence).

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
from pydantic import ConfigDict, Field

from labelmill.config import Config, derive_config, load_with_notices
from labelmill.errors import ConfigError, InputDataError
from labelmill.events import EventHandler, Notice, ignore
from labelmill.core import check_columns
from labelmill.core.strategy import Options
from labelmill.io import read_rows, write_rows
from labelmill.tasks import make_task

STUDENT = "student"
TIERED_TASKS = ("classification", "temporal")  # one label of a closed set, scored: what a student and a threshold can take over


@dataclass
class Tier:
    name: str  # what the output's source column says
    kind: str  # "student" or "model"
    model: str | dict | None = None  # student: the encoder; model: a catalog name / path or a model mapping
    budget: float | None = None  # the most rows this tier may label, as a share of all rows
    threshold: float | None = None  # None: chosen on the seed rows for the target
    keep_over_cap: bool = False  # a capped model tier: the rows over its cap keep the surest label below (True) or go up (False)


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


class TieredOptions(Options):
    """The tiered cascade's knobs. `tiers`: the labelers, cheapest first (see `parse_tiers`). `seed`: labeled
    rows (a path or frame with the config's gold column). `target`/`delta`: each threshold's accuracy and the
    level of its Clopper-Pearson bound. `compare_next`: before a tier passes rows up, the next model labels a
    sample (`calibration_rows`) of the seed rows it would get, and where it is no more accurate on them than
    this tier, this tier keeps every row. With no `seed`, the first model labels `seed_sample` rows of the
    data ("diverse": k-means medoids of the student's embeddings; "random") and its labels are the seed."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tiers: str | list[Any]
    seed: Any = None
    seed_sample: int = Field(200, ge=20)
    seed_sampling: str = Field("diverse", pattern="^(diverse|random)$")
    target: float = Field(0.95, gt=0.0, le=1.0)
    delta: float = Field(0.05, gt=0.0, lt=1.0)
    calibration_rows: int = Field(200, ge=1)
    limit: int | None = Field(None, ge=1)
    random_seed: int = 0
    compare_next: bool = False


def tiered_cascade(
    config: str | Path | dict | Config, data: Any, options: TieredOptions | dict | None = None, *, project: str | Path = "labelmill.db",
    output: str | Path | None = None, backends: dict[str, Any] | None = None, on_event: EventHandler = ignore, **knobs: Any,
) -> TieredResult:
    """Label `data` through the tiers (see the module doc; the knobs are `TieredOptions`', as `options` or as
    keywords). `backends`: tier name -> a backend object (tests)."""
    from labelmill.store.db import Store

    opts = TieredOptions.of(options, knobs)
    started = time.perf_counter()
    cascade = _Cascade.prepare(config, data, opts, backends or {}, on_event)
    with Store(project) as store:
        cascade.store = store
        if cascade.seeding is not None:
            cascade.seed_from_model()
        for position, tier in enumerate(cascade.tiers):
            cascade.run_tier(position, tier)
    return cascade.result(output, time.perf_counter() - started)


@dataclass
class _Cascade:
    """The cascade's state between tiers: each row's label so far, the rows still open, and the seed rows the
    tiers so far would pass up (where the next tier's threshold is set)."""

    cfg: Config
    opts: TieredOptions
    tiers: list[Tier]
    frame: Any
    seed_frame: Any
    seed_gold: np.ndarray
    row_texts: list[str]
    seed_texts: list[str]
    backends: dict[str, Any]
    on_event: EventHandler
    store: Any = None
    labels: list[Any] = field(default_factory=list)
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    source: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    open_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # rows no tier has accepted yet
    seed_open: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # seed rows the tiers so far would pass up
    stats: list[TierStats] = field(default_factory=list)
    best_below: dict[int, tuple[Any, float, str]] = field(default_factory=dict)  # row -> (label, confidence, tier) of the surest tier below
    routing: dict[str, tuple[list[Any], np.ndarray]] = field(default_factory=dict)
    rng: Any = None
    asked: set[int] = field(default_factory=set)  # the rows the last model tier was asked about
    seeding: str | None = None  # with no labeled seed: the model tier whose labels on a sample are the seed
    seed_seconds: float = 0.0  # the seeding model's time on its sample
    reserved: set[int] = field(default_factory=set)  # that sample's rows: the tiers below it leave them to it

    @property
    def names(self) -> list[str]:
        return self.cfg.label_names

    @classmethod
    def prepare(cls, config: Any, data: Any, opts: TieredOptions, backends: dict[str, Any], on_event: EventHandler) -> _Cascade:
        """The config, the tiers, the rows and the labeled seed rows, each checked."""
        cfg = load_with_notices(config, on_event)
        if cfg.task not in TIERED_TASKS:
            raise ConfigError(f"a tiered cascade works on {' and '.join(TIERED_TASKS)} tasks (one label of a closed set); this config is {cfg.task!r}",
                              fix="run without --tiers")
        tier_list, names = parse_tiers(opts.tiers), cfg.label_names
        frame = read_rows(data, cfg.dataset)
        if opts.limit is not None:
            frame = frame.head(opts.limit)
        task = make_task(cfg)
        check_columns(cfg, task, frame)
        n = len(frame)
        made = cls(cfg, opts, tier_list, frame, frame.iloc[:0], np.zeros(0, dtype=int), [task.render(r) for r in frame.to_dict("records")], [],
                   backends, on_event, labels=[None] * n, confidence=np.full(n, np.nan), source=[""] * n, errors=[""] * n, open_rows=np.arange(n),
                   rng=np.random.default_rng(opts.random_seed))
        if opts.seed is None:
            made.seeding = _seeding_tier(tier_list)
            return made
        seed_frame = read_rows(opts.seed, cfg.dataset)
        gold_column = cfg.gold_column or "label"
        if gold_column not in seed_frame.columns:
            raise InputDataError(f"the seed rows have no gold column {gold_column!r}", fix="give labeled seed rows (a train or dev file, or reviewed rows) with that column")
        seed_frame = seed_frame[seed_frame[gold_column].astype(str).isin(names)].reset_index(drop=True)
        if len(seed_frame) < 30:
            raise InputDataError(f"only {len(seed_frame)} seed rows carry one of the config's labels", fix="give at least 30 labeled seed rows (a few hundred is typical)")
        made.set_seed(seed_frame, np.array([names.index(str(v)) for v in seed_frame[gold_column]]), [task.render(r) for r in seed_frame.to_dict("records")])
        return made

    def set_seed(self, seed_frame: Any, gold: np.ndarray, texts: list[str]) -> None:
        self.seed_frame, self.seed_gold, self.seed_texts, self.seed_open = seed_frame, gold, texts, np.arange(len(seed_frame))

    def seed_from_model(self) -> None:
        """No labeled rows: the seeding model labels a sample of the rows (k-means medoids of the student's
        embeddings, or a random draw) and its labels are the seed; those rows are left to it."""
        from labelmill.core import Job
        from labelmill.selectors.embeddings import embed

        o, tier = self.opts, next(t for t in self.tiers if t.name == self.seeding)
        k = min(len(self.frame), o.seed_sample)
        if k < 20:
            raise InputDataError(f"the cascade's sample has {k} rows; the student needs at least 20", fix="label at least 20 rows (a sample of 200 is typical)")
        X = embed(self.row_texts, self.tiers[0].model or self.cfg.examples.embedding_model, self.store)
        rows = _sample(X, k, o.seed_sampling, o.random_seed)
        self.on_event(Notice(f"cascade: no labeled seed rows: {tier.name} labels {len(rows)} rows ({o.seed_sampling} sample) as the seed"))
        job, t0 = Job(_tier_config(self.cfg, tier), self.backends.get(tier.name)), time.perf_counter()
        try:
            got = _label(job, self.store, self.frame, rows, self.names, self.on_event)
            self.seed_seconds = time.perf_counter() - t0
        finally:
            if self.backends.get(tier.name) is None:
                job.backend.close()
        kept = [j for j in range(len(rows)) if got.get(j) is not None and got[j][0] is not None]
        if len(kept) < 20:
            raise InputDataError(f"{tier.name} labeled only {len(kept)} of the {len(rows)} sample rows; the student needs at least 20",
                                 fix="see llm_error in the output; check the model, or give labeled seed rows")
        picked = rows[kept]
        self.set_seed(self.frame.iloc[picked].reset_index(drop=True), np.array([self.names.index(got[j][0]) for j in kept]),
                      [self.row_texts[int(i)] for i in picked])
        self.reserved = {int(i) for i in rows}

    def run_tier(self, position: int, tier: Tier) -> None:
        """One tier labels the open rows, its threshold is set on the seed rows that reach it, and it keeps the
        rows at or above the threshold (the last tier keeps every row it labeled)."""
        last = position == len(self.tiers) - 1
        st, t0 = TierStats(tier.name), time.perf_counter()
        if not len(self.open_rows):
            self.stats.append(st)
            return
        if tier.kind == "student":
            tier_labels, seed_conf, seed_correct, calib = self._student_tier(tier)
        else:
            tier_labels, seed_conf, seed_correct, calib = self._model_tier(tier, last, st)
        if last:
            accept, st.threshold = list(tier_labels), None
        else:
            accept = self._threshold(position, tier, st, tier_labels, seed_conf[calib], seed_correct, calib)
        self._accept(tier, st, tier_labels, accept)
        if tier.keep_over_cap and st.capped:
            self._settle(self.asked, "over budget")
        st.seconds = round(time.perf_counter() - t0 + (self.seed_seconds if tier.name == self.seeding else 0.0), 2)  # its seed sample's time too
        self.stats.append(st)
        self.on_event(Notice(f"cascade: {tier.name} keeps {st.rows} rows (threshold {st.threshold}); {len(self.open_rows)} go on"))

    def _student_tier(self, tier: Tier) -> tuple[dict[int, tuple[Any, float, str]], np.ndarray, np.ndarray, np.ndarray]:
        task = make_task(self.cfg)  # the task's own features beside the embedding (event order: its cues), where it has any
        seed_f, row_f = task.student_features(self.seed_frame.to_dict("records")), task.student_features(self.frame.to_dict("records"))
        row_probs, seed_conf_raw, seed_pred, calibrator = _student(self.cfg, tier, (self.row_texts, self.seed_texts), self.seed_gold, self.store,
                                                                   self.opts.random_seed, self.on_event, None if seed_f is None else (row_f, seed_f))
        row_label, row_conf = row_probs.argmax(axis=1), calibrator.confidence(row_probs.max(axis=1))
        tier_labels = {int(i): (self.names[int(row_label[i])], float(row_conf[i]), "") for i in self.open_rows if int(i) not in self.reserved}
        return tier_labels, calibrator.confidence(seed_conf_raw), seed_pred == self.seed_gold, self.seed_open

    def _model_tier(self, tier: Tier, last: bool, st: TierStats) -> tuple[dict[int, tuple[Any, float, str]], np.ndarray, np.ndarray, np.ndarray]:
        """A model labels a sample of the seed rows that reach it (its Platt calibration and threshold rows),
        then the open rows: all of them, or under a cap the ones the tiers below were least sure of."""
        from labelmill.core import Job

        names, n_seed, n = self.names, len(self.seed_frame), len(self.frame)
        own_seed = tier.name == self.seeding  # its labels are the seed: nothing to calibrate them on
        calib = np.sort(self.rng.permutation(self.seed_open)[: self.opts.calibration_rows]) if not (last or own_seed) else np.arange(0)
        job = Job(_tier_config(self.cfg, tier), self.backends.get(tier.name))
        seed_conf, seed_correct = np.full(n_seed, np.nan), np.zeros(n_seed, dtype=bool)
        calibrator = None
        try:
            if len(calib):
                self.on_event(Notice(f"cascade: {tier.name} labels {len(calib)} seed rows to set its threshold"))
                got = _label(job, self.store, self.seed_frame, calib, names, self.on_event)
                raw = np.array([got[i][1] if got.get(i) and got[i][0] is not None else 0.0 for i in range(len(calib))])
                ok = np.array([got.get(i) is not None and got[i][0] == names[self.seed_gold[r]] for i, r in enumerate(calib)])
                calibrator = _platt(raw, ok, names)
                seed_conf[calib], seed_correct[calib] = calibrator.confidence(raw), ok
            asked = self.open_rows
            if tier.budget is not None and len(self.open_rows) > int(tier.budget * n):
                # a cost cap: this model labels only the rows the tiers below were least sure of (and its own
                # seed sample, which counts against the cap)
                mine = np.array([int(i) in self.reserved for i in self.open_rows], dtype=bool) if own_seed else np.zeros(len(self.open_rows), dtype=bool)
                others = self.open_rows[~mine]
                surest = np.array([self.best_below.get(int(i), (None, -1.0, ""))[1] for i in others])
                room = max(0, int(tier.budget * n) - int(mine.sum()))
                asked = np.sort(np.concatenate([self.open_rows[mine], others[np.argsort(surest, kind="stable")[:room]]]).astype(int))
                st.capped = True
            self.asked = {int(i) for i in asked}
            self.on_event(Notice(f"cascade: {tier.name} labels {len(asked)} rows"))
            got = _label(job, self.store, self.frame, asked, names, self.on_event) if len(asked) else {}
        finally:
            if self.backends.get(tier.name) is None:
                job.backend.close()
        tier_labels = {}
        for j, i in enumerate(asked):
            a = got.get(j)
            if a is None or a[0] is None:
                self.errors[int(i)] = (a[2] if a else "") or "no label"
                continue
            c = float(calibrator.confidence(np.array([a[1]]))[0]) if calibrator is not None else float(a[1])
            tier_labels[int(i)] = (a[0], c, "")
        return tier_labels, seed_conf, seed_correct, calib

    def _threshold(self, position: int, tier: Tier, st: TierStats, tier_labels: dict[int, tuple[Any, float, str]], sc: np.ndarray,
                   seed_correct: np.ndarray, calib: np.ndarray) -> list[int]:
        """The rows this tier keeps: its threshold set on the seed rows that reach it (for a model: the
        calibration sample of them), for the target with the bound; with compare_next, all rows when the
        next model is no better on the seed rows this tier would pass up."""
        from labelmill.numeric.calibration import threshold_with_bound

        o, chosen, ok = self.opts, tier.threshold, seed_correct[calib]
        st.seed_rows = int(len(calib))
        if chosen is None:
            found = threshold_with_bound(sc, ok, o.target, o.delta)
            chosen = found["threshold"] if found else float("inf")  # nothing passes the bound: pass every row up
            if found:
                st.seed_accuracy_accepted = round(found["seed_accuracy"], 4)
        st.threshold = chosen if np.isfinite(chosen) else None
        if not np.isfinite(chosen):
            st.note = f"no threshold reaches {o.target} (with the bound) on {len(calib)} seed rows: every row goes up"
        passed = calib[~(sc >= chosen)]  # (for a model: the sample of them that it saw)
        nxt = self.tiers[position + 1]
        if o.compare_next and len(passed) and nxt.kind == "model" and not self._next_is_better(tier, nxt, st, passed, seed_correct):
            chosen, st.threshold, passed = -np.inf, None, calib[:0]
        self.seed_open = passed
        return [i for i, v in tier_labels.items() if v[1] >= chosen]

    def _next_is_better(self, tier: Tier, nxt: Tier, st: TierStats, passed: np.ndarray, seed_correct: np.ndarray) -> bool:
        """Is the next tier more accurate on (a sample of) the seed rows this one would pass up?"""
        from labelmill.core import Job

        names = self.names
        probe = np.sort(self.rng.permutation(passed)[: self.opts.calibration_rows])
        job_next = Job(_tier_config(self.cfg, nxt), self.backends.get(nxt.name))
        try:
            self.on_event(Notice(f"cascade: {nxt.name} labels {len(probe)} seed rows {tier.name} would pass up, to compare"))
            got_next = _label(job_next, self.store, self.seed_frame, probe, names, self.on_event)
        finally:
            if self.backends.get(nxt.name) is None:
                job_next.backend.close()
        acc_next = float(np.mean([got_next.get(j) is not None and got_next[j][0] == names[self.seed_gold[r]] for j, r in enumerate(probe)]))
        acc_here = float(np.mean(seed_correct[probe]))
        st.compared = {"rows": int(len(probe)), "this_tier_accuracy": round(acc_here, 4), "next_tier_accuracy": round(acc_next, 4)}
        if acc_next <= acc_here:
            st.note = (f"{nxt.name} is not better on the seed rows this tier would pass up ({acc_next:.3f} vs {acc_here:.3f} "
                       f"on {len(probe)}): this tier keeps every row")
            return False
        return True

    def _accept(self, tier: Tier, st: TierStats, tier_labels: dict[int, tuple[Any, float, str]], accept: list[int]) -> None:
        """Record what the tier said and keep the accepted rows; a student keeps at most its share, its surest rows."""
        n = len(self.frame)
        if tier.budget is not None and tier.kind == "student":
            cap = int(tier.budget * n)
            if len(accept) > cap:
                accept = sorted(accept, key=lambda i: -tier_labels[i][1])[:cap]
                st.capped = True
        seen_labels, seen_conf = [None] * n, np.full(n, np.nan)
        for i, v in tier_labels.items():
            seen_labels[i], seen_conf[i] = v[0], v[1]
        self.routing[tier.name] = (seen_labels, seen_conf)
        accepted = set(accept)
        for i in accept:
            self.labels[i], self.confidence[i], self.source[i] = tier_labels[i][0], tier_labels[i][1], tier.name
            self.errors[i] = ""
        for i, v in tier_labels.items():
            if i not in accepted and (i not in self.best_below or v[1] > self.best_below[i][1]):
                self.best_below[i] = (v[0], v[1], tier.name)
        self.open_rows = np.array([i for i in self.open_rows if int(i) not in accepted], dtype=int)
        st.rows, st.share = len(accept), round(len(accept) / max(1, n), 4)

    def _settle(self, skip: set[int], why: str | None) -> None:
        """The open rows but `skip` take the surest label below them, marked why (by default: the top tier
        failed where it left an error, else over budget), and leave the open rows."""
        settled = set()
        for i in self.open_rows:
            if int(i) in self.best_below and int(i) not in skip:
                lab, conf, name = self.best_below[int(i)]
                reason = why or ("top tier failed" if self.errors[int(i)] else "over budget")  # the error column keeps what the top tier said
                self.labels[i], self.confidence[i], self.source[i] = lab, conf, f"{name} ({reason})"
                settled.add(int(i))
        self.open_rows = np.array([i for i in self.open_rows if int(i) not in settled], dtype=int)

    def result(self, output: str | Path | None, wall_s: float) -> TieredResult:
        """Rows over a cap (or failed at the top) get the surest label below, marked; the output and its figures."""
        from labelmill.core.output import labeled_frame

        self._settle(set(), None)
        out, columns = labeled_frame(self.frame, self.cfg, self.labels, [None if np.isnan(c) else float(c) for c in self.confidence], self.errors,
                                     {"source": ("llm_label_source", self.source)})
        figures: dict[str, Any] = {"rows": len(self.frame), "seed_rows": len(self.seed_frame), "seeded_by": self.seeding, "target": self.opts.target, "delta": self.opts.delta,
                                   "wall_s": round(wall_s, 2), "tier_shares": {s.name: s.share for s in self.stats}}
        if self.cfg.gold_column and self.cfg.gold_column in self.frame.columns:
            gold = self.frame[self.cfg.gold_column].astype(str).to_numpy()
            lab = np.array([str(x) if x is not None else "" for x in self.labels])
            figures["accuracy"] = round(float(np.mean(gold == lab)), 4)
            for st in self.stats:
                mine = np.array([s == st.name for s in self.source])
                st.accuracy = round(float(np.mean(gold[mine] == lab[mine])), 4) if mine.any() else None
        figures["tiers"] = [asdict(s) for s in self.stats]
        path = write_rows(out, output) if output else None
        if path is not None:
            Path(str(path) + ".cascade.json").write_text(json.dumps(figures, indent=1, default=float))
        return TieredResult(out, self.stats, figures, path, self.routing)


def _seeding_tier(tiers: list[Tier]) -> str:
    """With no labeled seed rows: the model after the student labels the seed; every model below the last
    needs a fixed threshold on its own confidence (no gold rows to set one on)."""
    if len(tiers) < 2 or tiers[0].kind != "student":
        raise ConfigError("a cascade with no labeled seed rows starts with a student and a model", fix="give --tiers-seed, or --tiers student,MODEL[,STRONGER]")
    unset = [t.name for t in tiers[1:-1] if t.threshold is None]
    if unset:
        raise ConfigError(f"with no labeled seed rows, {', '.join(unset)} needs a fixed threshold", fix="give --tiers-seed (labeled rows), or use --cascade")
    return tiers[1].name


def _sample(X: np.ndarray, k: int, sampling: str, seed: int) -> np.ndarray:
    """Row indices of a sample: k-means medoids of the embeddings ("diverse"), or a random draw."""
    if sampling == "random" or k >= len(X):
        return np.sort(np.random.default_rng(seed).permutation(len(X))[:k])
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X)
    picked = set()
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members):
            picked.add(int(members[np.argmin(((X[members] - km.cluster_centers_[c]) ** 2).sum(axis=1))]))
    return np.array(sorted(picked))


def llm_cascade(config: str | Path | dict | Config, data: Any, *, sample: int = 200, llm_share: float = 0.2, target: float = 0.9,
                strong: str | dict | None = None, strong_threshold: float = 0.6, **kwargs: Any) -> TieredResult:
    """`labelmill run --cascade`, a preset of the tiered cascade for a user with no labeled rows: the config's
    model labels a diverse sample (`sample` rows) that the student learns; the student keeps the rows where
    it agrees with that model at least `target` of the time (with the bound); the model labels the others,
    at most `llm_share` of all rows counting the sample (the ones the student was least sure of; the student
    keeps the rest, marked over budget); with `strong`, the rows the model's own confidence puts below
    `strong_threshold` go to that stronger model (and no other row). The output's llm_label_source says student, llm or strong."""
    tiers = [Tier("student", "student"), Tier("llm", "model", None, budget=llm_share, threshold=strong_threshold if strong else None, keep_over_cap=True)]
    if strong is not None:
        tiers.append(Tier("strong", "model", strong))
    return tiered_cascade(config, data, tiers=tiers, seed=None, seed_sample=sample, target=target, **kwargs)


def _tier_config(cfg: Config, tier: Tier) -> Config:
    if tier.model is None:  # the config's own model
        return cfg
    spec = tier.model if isinstance(tier.model, dict) else {"name": tier.model}
    return derive_config(cfg, model=spec)


def _platt(raw: np.ndarray, ok: np.ndarray, names: list[str]):
    from labelmill.numeric import calibration as cal_mod

    return cal_mod.fit("platt", None, None, raw.astype(float), ok.astype(bool), names)


def _student(cfg: Config, tier: Tier, texts: tuple[list[str], list[str]], seed_gold: np.ndarray, store: Any, random_seed: int,
             on_event: EventHandler, features: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Train on the seed rows (`texts`: the rows', the seed rows'; `features`: the task's own for each, set beside
    the embeddings); (row probabilities, seed out-of-fold max probability, seed out-of-fold label, calibrator)."""
    from labelmill.selectors.embeddings import embed
    from labelmill.strategies.students.models import LinearStudent, out_of_fold

    encoder = tier.model or cfg.examples.embedding_model
    k = len(cfg.label_names)
    row_texts, seed_texts = texts
    on_event(Notice(f"cascade: embedding {len(seed_texts)} seed rows and {len(row_texts)} rows with {encoder}"))
    X_seed = embed(seed_texts, encoder, store)
    X = embed(row_texts, encoder, store)
    if features is not None:
        X, X_seed = np.hstack([X, features[0]]), np.hstack([X_seed, features[1]])
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
