"""Combining label distributions from several sources (the LLM and a student): a weighted sum of their
log-probabilities plus a bias per label, fitted by penalised maximum likelihood on rows with a gold label.

The review loop refits it after every batch of reviews (`strategies/review/routing.py`); arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelmill.numeric.calibration import log_probs

EPS = 1e-6  # the floor of each source's probabilities: one overconfident source cannot swamp the other


def _log(p: np.ndarray) -> np.ndarray:
    return log_probs(p, floor=EPS)  # clipped at 1e-6: one overconfident source cannot swamp the other


def fit_combination(parts: Sequence[np.ndarray], gold: np.ndarray, l2: float = 1.0, weight: np.ndarray | None = None,
                    start: np.ndarray | None = None) -> np.ndarray:
    """Weights (one per part) and a bias per label for softmax(sum_j w_j log p_j + b), by penalised
    maximum likelihood on rows with a gold label index (the weights are pulled towards 1, the biases to 0).
    `weight`: how much each row counts (default 1 each). `start`: a fit on similar rows to begin from (the
    held-out fits of the review loop): the same optimum, the problem being convex, in fewer steps."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    k = parts[0].shape[1]
    logs = [_log(p) for p in parts]
    m = len(logs)
    rows = np.arange(len(gold))
    r = np.ones(len(gold)) if weight is None else np.asarray(weight, dtype=float)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:m], theta[m:]
        z = sum(w[j] * logs[j] for j in range(m)) + b
        q = softmax(z, axis=1)
        loss = -(r * np.log(np.clip(q[rows, gold], 1e-12, 1.0))).sum() + 0.5 * l2 * (((w - 1) ** 2).sum() + (b**2).sum())
        diff = q.copy()
        diff[rows, gold] -= 1.0
        diff *= r[:, None]
        gw = np.array([(diff * logs[j]).sum() for j in range(m)]) + l2 * (w - 1)
        gb = diff.sum(axis=0) + l2 * b
        return float(loss), np.concatenate([gw, gb])

    theta0 = np.concatenate([np.ones(m), np.zeros(k)]) if start is None else np.clip(np.asarray(start, dtype=float), -10.0, 10.0)
    result = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B", bounds=[(0.0, 10.0)] * m + [(-10.0, 10.0)] * k)
    return result.x


def combine(parts: Sequence[np.ndarray], theta: np.ndarray) -> np.ndarray:
    """The combined distributions (n, k) of `parts` under the fitted weights and biases."""
    from scipy.special import softmax

    m = len(parts)
    return softmax(sum(theta[j] * _log(parts[j]) for j in range(m)) + theta[m:], axis=1)
