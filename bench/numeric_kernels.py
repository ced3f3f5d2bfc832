"""`python bench/numeric_kernels.py [--json]`: the numeric core on scipy / scikit-learn against the
hand-written kernels it replaced (kept below as the reference), on seeded synthetic data.

Reports the largest difference per kernel: Clopper-Pearson lower bound (scipy.stats.beta.ppf), isotonic
calibration (scipy.optimize.isotonic_regression), Platt / fused logistic fits (scipy Newton-CG),
temperature and bias scaling (scipy L-BFGS), FreeAL's two-component loss mixture (sklearn GaussianMixture).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

from labelmill.numeric import calibration as C
from labelmill.strategies.freeal import loop as F



def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))

# ---------------------------------------------------------------------------------------------
# the reference: the hand-written kernels as they were before the numeric core moved to scipy

def ref_fit_scaling(probs: np.ndarray, gold: np.ndarray, *, bias: bool, l2: float = 0.01, steps: int = 500) -> tuple[float, np.ndarray]:
    """T (and per-label offsets b when `bias`) minimising the log loss of softmax(log p / T + b) on the seed rows.

    Plain gradient descent with a line search on a small convex-in-b problem; `l2` keeps offsets of labels
    the seed rows rarely show near 0.
    """
    logp = _log(probs)
    n, k = logp.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), gold] = 1.0
    a = 0.0  # log(1/T)
    b = np.zeros(k)

    def loss_grad(a: float, b: np.ndarray) -> tuple[float, float, np.ndarray]:
        s = math.exp(a)
        q = _softmax(logp * s + b)
        loss = -np.mean(np.sum(onehot * _log(q), axis=1)) + l2 * float(b @ b)
        diff = (q - onehot) / n
        grad_a = float(np.sum(diff * logp) * s)
        grad_b = diff.sum(axis=0) + 2 * l2 * b if bias else np.zeros(k)
        return loss, grad_a, grad_b

    loss, ga, gb = loss_grad(a, b)
    step = 1.0
    for _ in range(steps):
        while step > 1e-6:
            na, nb = a - step * ga, b - step * gb
            nloss, nga, ngb = loss_grad(na, nb)
            if nloss <= loss - 1e-4 * step * (ga * ga + float(gb @ gb)):
                a, b, loss, ga, gb = na, nb, nloss, nga, ngb
                step *= 1.5
                break
            step /= 2
        if step <= 1e-6 or abs(ga) + float(np.abs(gb).sum()) < 1e-6:
            break
    return 1.0 / math.exp(a), b


def ref_fit_isotonic(confidence: np.ndarray, correct: np.ndarray) -> tuple[list[float], list[float]]:
    """Pool adjacent violators: breakpoints (x, y) of a non-decreasing step function from confidence to P(correct)."""
    order = np.argsort(confidence, kind="stable")
    x, y = confidence[order].astype(float), correct[order].astype(float)
    blocks: list[list[float]] = []  # [sum_y, count, x_min, x_max]
    for xi, yi in zip(x, y):
        blocks.append([yi, 1.0, xi, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, c, lo, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][3] = hi
    xs, ys = [], []
    for s, c, lo, hi in blocks:
        # shrink each block's rate a little toward 1/2 so a block of 3 perfect rows does not say 1.0
        rate = (s + 0.5) / (c + 1.0)
        xs += [lo, hi]
        ys += [rate, rate]
    return xs, ys


def ref_fit_logistic(design: np.ndarray, correct: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Weights w of P(correct) = sigmoid(design @ w), by Newton's method on the L2-penalised log loss."""
    y = np.asarray(correct, dtype=float)
    w = np.zeros(design.shape[1])
    w[0] = 1.0

    def loss(w: np.ndarray) -> float:
        z = np.clip(design @ w, -30, 30)
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w)

    current = loss(w)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (p - y) / len(y) + l2 * w
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(y) + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        scale = 1.0  # backtracking: a full Newton step can overshoot when a feature separates the rows
        while scale > 1e-4 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        new = loss(w)
        if np.abs(scale * step).max() < 1e-8 or current - new < 1e-12:
            break
        current = new
    return w


def ref_clopper_pearson_lower(successes: int, n: int, delta: float) -> float:
    """One-sided lower confidence bound (level 1 - delta) of a binomial proportion."""
    if n == 0 or successes == 0:
        return 0.0
    if successes == n:
        return delta ** (1.0 / n)

    i = np.arange(successes, n + 1)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(k + 1) + math.lgamma(n - k + 1) for k in i])

    def tail(p: float) -> float:  # P(X >= successes | n, p)
        logs = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
        top = logs.max()
        return float(math.exp(top) * np.exp(logs - top).sum())

    lo, hi = 0.0, successes / n
    for _ in range(60):  # tail(p) rises with p: find p with tail(p) = delta
        mid = (lo + hi) / 2
        if tail(mid) < delta:
            lo = mid
        else:
            hi = mid
    return lo


def ref_clean_posterior(losses: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Posterior of the low-mean component of a two-component 1-D Gaussian mixture fitted to `losses` by EM."""
    x = np.asarray(losses, dtype=float)
    if len(x) < 4 or np.ptp(x) < 1e-9:
        return np.ones(len(x))
    lo, hi = np.quantile(x, 0.25), np.quantile(x, 0.75)
    mu = np.array([lo, hi])
    var = np.full(2, max(x.var(), 1e-6))
    weight = np.array([0.5, 0.5])
    for _ in range(iterations):
        dens = weight / np.sqrt(2 * np.pi * var) * np.exp(-((x[:, None] - mu) ** 2) / (2 * var))
        resp = dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        nk = resp.sum(axis=0) + 1e-9
        new_mu = (resp * x[:, None]).sum(axis=0) / nk
        var = np.maximum((resp * (x[:, None] - new_mu) ** 2).sum(axis=0) / nk, 1e-6)
        weight = nk / len(x)
        if np.allclose(new_mu, mu, atol=1e-7):
            mu = new_mu
            break
        mu = new_mu
    dens = weight / np.sqrt(2 * np.pi * var) * np.exp(-((x[:, None] - mu) ** 2) / (2 * var))
    resp = dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
    post = resp[:, int(np.argmin(mu))]
    # a Gaussian's tail can make very small losses "noisy" when the noisy component is wide: keep it monotone
    order = np.argsort(x, kind="stable")
    post[order] = np.minimum.accumulate(post[order])
    return post


def main() -> dict:
    out = {}
    rng = np.random.default_rng(0)
    # Clopper-Pearson
    worst = 0
    for n in range(1, 400, 7):
        for s in range(0, n + 1, max(1, n // 9)):
            for d in (0.01, 0.05, 0.2):
                worst = max(worst, abs(ref_clopper_pearson_lower(s, n, d) - C.clopper_pearson_lower(s, n, d)))
    out["clopper_pearson_max_abs_diff"] = worst
    # isotonic
    worst = 0; same = 0
    for t in range(200):
        n = rng.integers(1, 300)
        conf = np.round(rng.random(n), 2)
        ok = rng.random(n) < conf
        a = ref_fit_isotonic(conf, ok); b = C.fit_isotonic(conf, ok)
        same += a == b
        if len(a[0]) == len(b[0]):
            worst = max(worst, max(abs(np.array(a[1]) - np.array(b[1]))) if a[1] else 0)
    out["isotonic_identical_fits"] = f"{same} of 200"
    # logistic / platt
    worst = 0
    for t in range(100):
        n = rng.integers(20, 400)
        conf = rng.random(n); ok = rng.random(n) < conf ** 2
        X = np.stack([_logit(conf), _logit(rng.random(n)), np.ones(n)], axis=1)
        worst = max(worst, np.abs(ref_fit_logistic(X, ok) - C.fit_logistic(X, ok)).max())
    X = np.stack([_logit(rng.random(50)), np.ones(50)], axis=1)
    out["logistic_max_abs_weight_diff"] = worst
    out["logistic_all_rows_right_max_abs_weight_diff"] = float(np.abs(ref_fit_logistic(X, np.ones(50)) - C.fit_logistic(X, np.ones(50))).max())
    # scaling
    worst_t = worst_b = worst_loss = 0
    for t in range(60):
        n, k = rng.integers(30, 300), rng.integers(2, 6)
        logits = rng.normal(size=(n, k)) * 2 + np.eye(k)[rng.integers(0, k, n)] * 1.5
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        gold = np.where(rng.random(n) < 0.7, probs.argmax(1), rng.integers(0, k, n))
        for bias in (False, True):
            T0, b0 = ref_fit_scaling(probs, gold, bias=bias); T1, b1 = C.fit_scaling(probs, gold, bias=bias)
            def loss(T, b):
                q = _softmax(_log(probs) / T + b); return -np.mean(np.log(q[np.arange(n), gold])) + 0.01 * float(b @ b)
            worst_t = max(worst_t, abs(T0 - T1)); worst_b = max(worst_b, np.abs(b0 - b1).max()); worst_loss = max(worst_loss, loss(T1, b1) - loss(T0, b0))
    out.update(scaling_max_abs_T_diff=worst_t, scaling_max_abs_bias_diff=worst_b, scaling_max_loss_increase=worst_loss)
    # freeal mixture
    worst = 0; flips = 0; total = 0
    for t in range(100):
        n = rng.integers(20, 500)
        losses = np.concatenate([rng.exponential(0.2, int(n * 0.8)), rng.normal(2, 0.7, n - int(n * 0.8)).clip(0)])
        a = ref_clean_posterior(losses); b = F.clean_posterior(losses)
        worst = max(worst, np.abs(a - b).max()); flips += ((a > 0.5) != (b > 0.5)).sum(); total += n
    out.update(mixture_max_abs_posterior_diff=worst, mixture_rows_changing_side_of_half=int(flips), mixture_rows=int(total))
    return {k: float(v) if isinstance(v, (np.floating, float)) else v for k, v in out.items()}


if __name__ == "__main__":
    found = main()
    if "--json" in sys.argv:
        print(json.dumps(found, indent=1))
    else:
        for key, value in found.items():
            print(f"{key:45} {value}")
