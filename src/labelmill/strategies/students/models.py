"""Student models: small classifiers that learn from the LLM's labels and then label rows thousands at a time.

`LinearStudent` is a logistic regression on sentence embeddings (all-MiniLM-L6-v2 by default, cached in
the store): it trains in about a second. `FinetunedStudent` fine-tunes the sentence encoder itself (torch,
CPU) for more accuracy when time allows. Both give probabilities over the whole label set (labels that
had no training row get a small floor), and `out_of_fold` gives every training row a prediction from a
model that did not see it: what small-loss selection and label-issue ranking need.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelmill.errors import MissingDependencyError

FLOOR = 1e-4  # probability of a label the student never saw in training


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("scikit-learn", "student", "student models (FreeAL, cascade)") from None


def one_blas_thread():
    """BLAS on one thread for the student's small matrices: on 2 cores a second BLAS thread makes a fit
    about 7x slower (measured: 768-dim embeddings, 1,000 rows, 0.21 s against 0.03 s). Held around
    fits that run on threads side by side, so each fit's own hold restores one thread, not the many."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _full(probs: np.ndarray, seen: np.ndarray, n_labels: int) -> np.ndarray:
    """Spread a classifier's columns (the labels it saw) over the whole label set, with a floor for the rest."""
    out = np.full((len(probs), n_labels), FLOOR)
    out[:, seen] = probs
    return out / out.sum(axis=1, keepdims=True)


def surest_rows(probs: np.ndarray, share: float = 0.5, most: int = 200) -> np.ndarray:
    """Rows whose label a student may learn from though no person gave it (the review loop's prior, from the
    LLM's labels; self-training, from the student's own): per label, the more confident `share` of the rows
    `probs` gave it (at most `most`)."""
    said, sure = probs.argmax(axis=1), probs.max(axis=1)
    chosen = []
    for j in range(probs.shape[1]):
        mine = np.flatnonzero(said == j)
        chosen.extend(mine[np.argsort(-sure[mine], kind="stable")][: min(most, int(len(mine) * share))].tolist())
    return np.array(sorted(chosen), dtype=int)


def self_trained(X: np.ndarray, y: np.ndarray, unlabeled: np.ndarray, n_labels: int, rounds: int = 2, weight: float = 0.5) -> LinearStudent:
    """A linear student that also learns from its own surest labels on `unlabeled` rows (self-training): fitted
    on the labeled rows, it labels the unlabeled ones, and is fitted again on the labeled rows (weight 2) and
    its `surest_rows` (weight `weight`, as the review loop's prior), `rounds` times. With few labels and many
    rows it draws the boundary where the rows are not (AG News, 100 labels and 1,000 unlabeled rows: 0.818 ->
    0.854); with many labels and few rows each it can drift, so a caller keeps it only where held-out
    accuracy says so (bench/zero_labels.py)."""
    student = LinearStudent(n_labels).fit(X, y)
    for _ in range(rounds):
        probs = student.predict_proba(unlabeled)
        keep = surest_rows(probs)
        rows = np.vstack([unlabeled[keep], X])
        weights = np.concatenate([np.full(len(keep), weight), np.full(len(y), 2.0)])
        student = LinearStudent(n_labels).fit(rows, np.concatenate([probs[keep].argmax(axis=1), y]), weights, start=student)
    return student


class LinearStudent:
    """Logistic regression on L2-normalised sentence embeddings."""

    def __init__(self, n_labels: int, C: float = 1.0, seed: int = 0):
        _sklearn()
        self.n_labels, self.C, self.seed = n_labels, C, seed
        self._model: Any = None
        self._seen = np.arange(0)

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, start: LinearStudent | None = None) -> LinearStudent:
        """`start`: a student fitted on similar rows (the same labels seen) whose weights the fit starts from:
        the same optimum, reached in fewer steps (the review loop's refits and out-of-fold fits)."""
        from sklearn.linear_model import LogisticRegression

        self._seen = np.unique(y)
        if len(self._seen) < 2:  # one label only: nothing to separate, predict it everywhere
            self._model = None
            return self
        warm = start is not None and start._model is not None and np.array_equal(start._model.classes_, self._seen)
        self._model = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed, warm_start=warm)
        if warm:
            self._model.coef_, self._model.intercept_ = start._model.coef_.copy(), start._model.intercept_.copy()
        with one_blas_thread():
            self._model.fit(X, y, sample_weight=weight)
        self._seen = self._model.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self._model is None:
            probs = np.ones((len(X), max(1, len(self._seen))))
            return _full(probs, self._seen, self.n_labels) if len(self._seen) else np.full((len(X), self.n_labels), 1 / self.n_labels)
        with one_blas_thread():
            return _full(self._model.predict_proba(X), self._seen, self.n_labels)


class FinetunedStudent:
    """The sentence encoder fine-tuned with a linear head on the labels (torch, CPU): slower, stronger."""

    def __init__(self, n_labels: int, texts_model: str, epochs: int = 3, lr: float = 3e-5, batch_size: int = 32, seed: int = 0):
        self.n_labels, self.model_name, self.epochs, self.lr, self.batch_size, self.seed = n_labels, texts_model, epochs, lr, batch_size, seed
        self._net: Any = None

    def _encoder(self):
        import copy

        from labelmill.selectors.embeddings import load_encoder

        import torch

        # each fit starts from the pretrained weights, in float32 (a bfloat16 inference encoder cannot learn at lr 3e-5)
        return copy.deepcopy(load_encoder(self.model_name)).to(torch.float32)

    def fit_texts(self, texts: Sequence[str], y: np.ndarray, weight: np.ndarray | None = None) -> FinetunedStudent:
        import torch

        torch.manual_seed(self.seed)
        encoder = self._encoder()
        encoder.train()
        dim = (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()
        head = torch.nn.Linear(dim, self.n_labels)
        params = list(encoder.parameters()) + list(head.parameters())
        optimizer = torch.optim.AdamW([{"params": list(encoder.parameters()), "lr": self.lr}, {"params": list(head.parameters()), "lr": 1e-3}])
        w = torch.tensor(weight if weight is not None else np.ones(len(y)), dtype=torch.float32)
        target = torch.tensor(y, dtype=torch.long)
        rng = np.random.default_rng(self.seed)
        for _ in range(self.epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), self.batch_size):
                idx = order[start : start + self.batch_size]
                features = _preprocess(encoder, [texts[i] for i in idx])
                out = encoder(features)["sentence_embedding"]
                logits = head(torch.nn.functional.normalize(out, dim=-1) * 10)
                loss = (torch.nn.functional.cross_entropy(logits, target[idx], reduction="none") * w[idx]).mean()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        encoder.eval()
        self._net = (encoder, head)
        return self

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        _, head = self._net
        if not len(texts):
            return np.zeros((0, self.n_labels))
        with torch.no_grad():
            probs = torch.softmax(head(torch.from_numpy(self.encode(texts)) * 10), dim=-1).numpy()
        return np.clip(probs, FLOOR, 1.0) / np.clip(probs, FLOOR, 1.0).sum(axis=1, keepdims=True)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) unit-length sentence embeddings from the fine-tuned encoder (the features its head reads)."""
        import torch

        encoder, _ = self._net
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                features = _preprocess(encoder, list(texts[start : start + 64]))
                out.append(torch.nn.functional.normalize(encoder(features)["sentence_embedding"], dim=-1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), dtype=np.float32)


def _preprocess(encoder: Any, texts: list[str]) -> Any:
    """Tokenised features for the encoder (sentence-transformers renamed tokenize to preprocess)."""
    return (getattr(encoder, "preprocess", None) or encoder.tokenize)(texts)


def out_of_fold(X: np.ndarray, y: np.ndarray, n_labels: int, folds: int = 5, seed: int = 0, C: float = 1.0, weight: np.ndarray | None = None) -> np.ndarray:
    """(n, n_labels) probabilities for every row from a linear student trained on the other folds
    (folds stratified by label, so a rare label is in as many training folds as it can be)."""
    n = len(y)
    probs = np.zeros((n, n_labels))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=int)
    for label in np.unique(y):  # stratified: each label's rows dealt round-robin over the folds
        rows = np.flatnonzero(y == label)
        fold_of[rng.permutation(rows)] = np.arange(len(rows)) % folds
    for f in range(folds):
        test = fold_of == f
        if not test.any():
            continue
        student = LinearStudent(n_labels, C=C, seed=seed).fit(X[~test], y[~test], None if weight is None else weight[~test])
        probs[test] = student.predict_proba(X[test])
    return probs
