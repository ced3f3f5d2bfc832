"""Calibration on a labeled seed set, and thresholds with a stated bound.

A model's label distribution is biased (a 0.5B model may never say "Sci/Tech") and over- or
under-confident. Fitted on seed rows whose gold labels are known:

  temperature   q = softmax(log p / T)                  one number; fixes over/under-confidence
  bias          q = softmax(log p / T + b)              T and one offset per label (contextual calibration
                                                         fitted on labeled rows); fixes label bias too, so
                                                         it can change the predicted label
  isotonic      confidence -> P(correct), a monotone step function (pool adjacent violators) of any
                confidence, including ones without a distribution (generated answers)
  platt         P(correct) = sigmoid(a * logit(confidence) + c): two numbers, smoother than isotonic on
                a few hundred rows
  bias_platt    bias first (it fixes the labels), then platt on its confidence (it fixes the confidence
                where label bias distorts the log-loss-optimal temperature)
  fused         P(correct) = sigmoid(w . [logit(confidence), logit(signal), ..., 1]): a logistic regression
                over the confidence and the signals every seed row has (`reasoning`: p_true, verbalized,
                agreement, answer_confidence); chosen with --method fused

`auto` picks the method with the lowest cross-validated log loss on the seed rows. A threshold for a
target accuracy is chosen on the seed rows so that the one-sided Clopper-Pearson lower bound of the
accuracy of the rows above it reaches the target: "95%" then holds on new rows with probability
1 - delta (for rows like the seed rows).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("temperature", "bias", "isotonic", "platt", "bias_platt")
FUSED_SIGNALS = ("p_true", "verbalized", "agreement", "answer_confidence")
_EPS = 1e-12


# ----------------------------------------------------------------------------------------------
# fitting


def log_probs(p: np.ndarray, floor: float = _EPS) -> np.ndarray:
    """log p, with p clipped to at least `floor` (a larger floor keeps one overconfident source from swamping others)."""
    return np.log(np.clip(p, floor, 1.0))


_log = log_probs


def fit_scaling(probs: np.ndarray, gold: np.ndarray, *, bias: bool, l2: float = 0.01, steps: int = 500) -> tuple[float, np.ndarray]:
    """T (and per-label offsets b when `bias`) minimising the log loss of softmax(log p / T + b) on the seed rows.

    scipy's L-BFGS over (log 1/T, b) with the exact gradient; `l2` keeps offsets of labels the seed rows
    rarely show near 0.
    """
    from scipy.optimize import minimize
    from scipy.special import softmax

    logp = _log(probs)
    n, k = logp.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), gold] = 1.0

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta[0], theta[1:] if bias else np.zeros(k)
        s = math.exp(a)
        q = softmax(logp * s + b, axis=1)
        loss = -np.mean(np.sum(onehot * _log(q), axis=1)) + l2 * float(b @ b)
        diff = (q - onehot) / n
        grad_a = float(np.sum(diff * logp) * s)
        grad = [grad_a, *(diff.sum(axis=0) + 2 * l2 * b)] if bias else [grad_a]
        return loss, np.array(grad)

    start = np.zeros(1 + (k if bias else 0))
    found = minimize(loss_grad, start, jac=True, method="L-BFGS-B", bounds=[(-20.0, 20.0)] + [(None, None)] * (len(start) - 1),
                     options={"maxiter": steps, "gtol": 1e-9, "ftol": 1e-14})
    a = float(found.x[0])
    return 1.0 / math.exp(a), (found.x[1:] if bias else np.zeros(k))

def fit_isotonic(confidence: np.ndarray, correct: np.ndarray) -> tuple[list[float], list[float]]:
    """Breakpoints (x, y) of a non-decreasing step function from confidence to P(correct): scipy's pool
    adjacent violators over the rows in confidence order (ties kept in input order), each block's rate
    shrunk a little toward 1/2 so a block of 3 perfect rows does not say 1.0."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(confidence, kind="stable")
    x, y = confidence[order].astype(float), correct[order].astype(float)
    if not len(x):
        return [], []
    fit = isotonic_regression(y)
    # one block per distinct level: adjacent blocks scipy left apart at the same mean are one step
    starts = [int(b) for b in fit.blocks[:-1] if b == 0 or not math.isclose(fit.x[b], fit.x[b - 1], rel_tol=1e-12, abs_tol=1e-12)]
    xs, ys = [], []
    for lo, hi in zip(starts, [*starts[1:], len(y)]):
        rate = (y[lo:hi].sum() + 0.5) / (hi - lo + 1.0)
        xs += [float(x[lo]), float(x[hi - 1])]
        ys += [float(rate), float(rate)]
    return xs, ys

def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_logistic(design: np.ndarray, correct: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Weights w of P(correct) = sigmoid(design @ w), minimising the L2-penalised mean log loss with scipy's
    Newton-CG (exact gradient and Hessian); works when every row is right, or every row wrong."""
    from scipy.optimize import minimize

    y = np.asarray(correct, dtype=float)
    n, d = design.shape

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.clip(design @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w), design.T @ (p - y) / n + l2 * w

    def hessian(w: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        return (design * (p * (1 - p))[:, None]).T @ design / n + l2 * np.eye(d)

    start = np.zeros(d)
    start[0] = 1.0
    return minimize(loss_grad, start, jac=True, hess=hessian, method="Newton-CG", options={"xtol": 1e-10, "maxiter": 200}).x

def fit_platt(confidence: np.ndarray, correct: np.ndarray, l2: float = 1e-3) -> list[float]:
    """[a, c] of P(correct) = sigmoid(a * logit(confidence) + c)."""
    x = _logit(np.asarray(confidence, dtype=float))
    return [float(v) for v in fit_logistic(np.stack([x, np.ones_like(x)], axis=1), correct, l2)]


def fused_design(confidence: np.ndarray, signals: Sequence[dict | None], names: Sequence[str]) -> np.ndarray:
    """Rows [logit(confidence), logit(signal) for each name, 1]; a missing value reads 1/2 (logit 0)."""
    columns = [_logit(np.nan_to_num(np.asarray(confidence, dtype=float), nan=0.5))]
    for name in names:
        columns.append(_logit(np.array([float((s or {}).get(name, 0.5)) for s in signals])))
    columns.append(np.ones(len(columns[0])))
    return np.stack(columns, axis=1)


@dataclass
class Calibrator:
    """A fitted calibration; JSON-serialisable (`save`/`load`) and applied to new rows' outputs."""

    method: str
    labels: list[str] = field(default_factory=list)
    temperature: float = 1.0
    bias: list[float] = field(default_factory=list)
    iso_x: list[float] = field(default_factory=list)
    iso_y: list[float] = field(default_factory=list)
    platt: list[float] = field(default_factory=list)  # [a, c]
    fused: dict[str, float] = field(default_factory=dict)  # fused: weight per feature (confidence, signals..., bias)
    threshold: float | None = None  # for the target below, on calibrated confidence
    target: float | None = None
    delta: float | None = None
    seed_report: dict[str, Any] = field(default_factory=dict)

    # applying ------------------------------------------------------------------------------------
    def distribution(self, probs: np.ndarray) -> np.ndarray:
        """Label distributions (n, k) after temperature and bias; isotonic leaves them as they are."""
        from scipy.special import softmax

        if self.method in ("isotonic", "platt"):
            return probs
        z = _log(probs) / self.temperature
        if self.bias:
            z = z + np.asarray(self.bias)
        return softmax(z, axis=1)

    def confidence(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated confidence from a raw confidence (isotonic); other methods work on distributions."""
        raw = np.asarray(raw, dtype=float)
        if self.method in ("platt", "bias_platt") and self.platt:
            a, c = self.platt
            out = 1.0 / (1.0 + np.exp(-np.clip(a * _logit(np.nan_to_num(raw, nan=0.5)) + c, -30, 30)))
        elif self.method == "isotonic" and self.iso_x:
            out = np.interp(np.nan_to_num(raw, nan=0.0), self.iso_x, self.iso_y)
        else:
            return raw
        return np.where(np.isnan(raw), np.nan, out)

    def fused_confidence(self, raw: np.ndarray, signals: Sequence[dict | None]) -> np.ndarray:
        names = [k for k in self.fused if k not in ("confidence", "bias")]
        weights = np.array([self.fused["confidence"], *(self.fused[n] for n in names), self.fused["bias"]])
        out = 1.0 / (1.0 + np.exp(-np.clip(fused_design(raw, signals, names) @ weights, -30, 30)))
        return np.where(np.isnan(np.asarray(raw, dtype=float)), np.nan, out)

    def apply(self, probs: np.ndarray | None, raw_confidence: np.ndarray, signals: Sequence[dict | None] | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(predicted label index or None, calibrated confidence) for each row (`signals`: each row's, for fused)."""
        if self.method == "fused":
            return None, self.fused_confidence(raw_confidence, signals if signals is not None else [None] * len(raw_confidence))
        if self.method in ("isotonic", "platt") or probs is None:
            return None, self.confidence(raw_confidence)
        q = self.distribution(probs)
        return q.argmax(axis=1), self.confidence(q.max(axis=1))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def fit(
    method: str, probs: np.ndarray | None, gold: np.ndarray | None, raw_confidence: np.ndarray, correct: np.ndarray, labels: Sequence[str],
    signals: Sequence[dict | None] | None = None,
) -> Calibrator:
    """Fit one method. Distribution methods need `probs` (n, k) and `gold` label indices; fused needs each row's `signals`."""
    if method == "fused":
        signals = list(signals) if signals is not None else [None] * len(raw_confidence)
        names = [n for n in FUSED_SIGNALS if signals and all(s and n in s for s in signals)]
        weights = fit_logistic(fused_design(raw_confidence, signals, names), correct, l2=1e-2)
        return Calibrator(method, list(labels), fused=dict(zip(["confidence", *names, "bias"], (float(w) for w in weights))))
    if method in ("temperature", "bias"):
        if probs is None or gold is None:
            raise ValueError(f"{method} calibration needs label distributions")
        temperature, offsets = fit_scaling(probs, gold, bias=method == "bias")
        return Calibrator(method, list(labels), temperature=temperature, bias=[float(x) for x in offsets] if method == "bias" else [])
    if method == "isotonic":
        ok = ~np.isnan(raw_confidence)
        xs, ys = fit_isotonic(raw_confidence[ok], correct[ok])
        return Calibrator(method, list(labels), iso_x=xs, iso_y=ys)
    if method == "platt":
        ok = ~np.isnan(raw_confidence)
        return Calibrator(method, list(labels), platt=fit_platt(raw_confidence[ok], correct[ok]))
    if method == "bias_platt":
        if probs is None or gold is None:
            raise ValueError("bias_platt calibration needs label distributions")
        first = fit("bias", probs, gold, raw_confidence, correct, labels)
        q = first.distribution(probs)
        return Calibrator(method, list(labels), temperature=first.temperature, bias=first.bias, platt=fit_platt(q.max(axis=1), q.argmax(axis=1) == gold))
    raise ValueError(f"unknown calibration method {method!r}")


def full_distribution(cal: Calibrator, probs: np.ndarray) -> np.ndarray:
    """The calibrated distribution over all labels: the top label gets the calibrated confidence, the
    others share the rest in proportion (so methods that only map the confidence are comparable)."""
    q = cal.distribution(probs)
    top = q.argmax(axis=1)
    rows = np.arange(len(q))
    conf = np.clip(cal.confidence(q[rows, top]), 1e-6, 1 - 1e-6)
    rest = q.copy()
    rest[rows, top] = 0.0
    rest = rest / np.maximum(rest.sum(axis=1, keepdims=True), 1e-12) * (1 - conf)[:, None]
    rest[rows, top] = conf
    return rest


def log_loss_of(cal: Calibrator, probs: np.ndarray | None, gold: np.ndarray | None, raw_confidence: np.ndarray, correct: np.ndarray) -> float:
    """Log loss on held-out rows, comparable across methods: of the gold label under the full calibrated
    distribution when there is one (this rewards a better label as well as a better confidence), else of
    P(the answer is right)."""
    if probs is not None and gold is not None:
        q = full_distribution(cal, probs)
        return float(-np.mean(np.log(np.clip(q[np.arange(len(q)), gold], 1e-6, 1.0))))
    predicted, conf = cal.apply(probs, raw_confidence)
    ok = correct if predicted is None else (predicted == gold)
    conf = np.clip(np.nan_to_num(conf, nan=0.5), 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(ok, np.log(conf), np.log(1 - conf))))


def choose(
    probs: np.ndarray | None, gold: np.ndarray | None, raw_confidence: np.ndarray, correct: np.ndarray, labels: Sequence[str],
    *, folds: int = 5, seed: int = 0, allow_bias: bool = True,
) -> tuple[str, dict[str, float]]:
    """The method with the lowest cross-validated log loss on the seed rows, and every method's loss."""
    methods = [m for m in METHODS if m == "isotonic" or (probs is not None and (allow_bias or not m.startswith("bias")))]
    n = len(raw_confidence)
    order = np.random.default_rng(seed).permutation(n)
    losses = {}
    for method in methods:
        total = 0.0
        for f in range(folds):
            test = order[f::folds]
            train = np.setdiff1d(order, test)
            sub = lambda a, idx: None if a is None else a[idx]
            cal = fit(method, sub(probs, train), sub(gold, train), raw_confidence[train], correct[train], labels)
            total += log_loss_of(cal, sub(probs, test), sub(gold, test), raw_confidence[test], correct[test]) * len(test)
        losses[method] = total / n
    return min(losses, key=losses.get), losses


# ----------------------------------------------------------------------------------------------
# thresholds with a bound


def clopper_pearson_lower(successes: int, n: int, delta: float) -> float:
    """One-sided lower confidence bound (level 1 - delta) of a binomial proportion: the delta quantile of
    Beta(successes, n - successes + 1)."""
    from scipy.stats import beta

    if n == 0 or successes == 0:
        return 0.0
    return float(beta.ppf(delta, successes, n - successes + 1))

def _rows_to_pass(target: float, delta: float, errors: int) -> int:
    """The fewest rows whose Clopper-Pearson lower bound reaches `target` with `errors` of them wrong."""
    n = errors + 1
    while clopper_pearson_lower(n - errors, n, delta) < target:
        n += 1
        if n > 100_000:
            break
    return n


def threshold_with_bound(confidence: np.ndarray, correct: np.ndarray, target: float, delta: float = 0.05, tolerate: int = 2) -> dict[str, float] | None:
    """The lowest threshold that passes, on the seed rows, the test "accuracy above it >= target" at level delta.

    Thresholds are tested in a fixed sequence from high to low and the first failure stops the search
    (fixed-sequence testing keeps the overall error at delta, although many thresholds are looked at).
    Where the sequence starts is fixed before looking at the answers: at the fewest rows that could pass
    with `tolerate` wrong answers among them (124 rows for 0.95 at delta 0.05 with 2), so that one
    confidently wrong answer among the very top rows does not end the search at once; with fewer rows
    than that, at the fewest rows that could pass at all (all right: n = log(delta) / log(target), 59).
    """
    valid = ~np.isnan(confidence)
    conf, ok = confidence[valid], correct[valid].astype(int)
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    start = math.ceil(math.log(delta) / math.log(target)) if 0 < target < 1 else 1
    if 0 < target < 1 and tolerate > 0:
        tolerant = _rows_to_pass(target, delta, tolerate)
        if tolerant <= len(conf):
            start = tolerant
    best = None
    for i in range(start - 1, len(conf)):
        if i + 1 < len(conf) and conf[i + 1] == conf[i]:
            continue  # ties are all in or all out
        bound = clopper_pearson_lower(int(hits[i]), i + 1, delta)
        if bound < target:
            break
        best = {"threshold": float(conf[i]), "seed_rows": i + 1, "seed_accuracy": float(hits[i] / (i + 1)), "lower_bound": bound,
                "seed_share": (i + 1) / len(confidence)}
    return best


def threshold_point(confidence: np.ndarray, correct: np.ndarray, target: float, min_rows: int = 20) -> dict[str, float] | None:
    """The lowest threshold whose seed rows at or above it (at least `min_rows`) reach `target` accuracy, with no
    bound: what a plain threshold table gives. Reported beside the bounded threshold, never used for review."""
    valid = ~np.isnan(confidence)
    conf, ok = confidence[valid], correct[valid].astype(int)
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    best = None
    for i in range(min_rows - 1, len(conf)):
        if i + 1 < len(conf) and conf[i + 1] == conf[i]:
            continue
        if hits[i] / (i + 1) >= target:
            best = {"threshold": float(conf[i]), "seed_rows": i + 1, "seed_accuracy": float(hits[i] / (i + 1)), "seed_share": (i + 1) / len(confidence)}
    return best


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """ECE over equal-width bins, and the bins (for the reliability diagram). Rows without confidence are left out."""
    valid = ~np.isnan(confidence)
    conf, ok = confidence[valid], correct[valid].astype(float)
    if not len(conf):
        return float("nan"), []
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        gap = abs(ok[mask].mean() - conf[mask].mean())
        ece += mask.mean() * gap
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "rows": int(mask.sum()), "confidence": float(conf[mask].mean()), "accuracy": float(ok[mask].mean())})
    return float(ece), table
