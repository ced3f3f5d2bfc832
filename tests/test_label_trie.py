"""Scoring a large closed label set (opt-in `model.params.skip_mass`): label subtrees are decoded in order of
their first token's probability and the rest left once they cannot matter (`labelmill.backends.llama`; no
model: the decoding is a stand-in that adds known continuation probabilities, the rest is the engine's own code)."""

from __future__ import annotations

import math

import numpy as np
import pytest

llama = pytest.importorskip("labelmill.backends.llama")

FIRST = {1: 0.5, 2: 0.3, 3: 0.15, 4: 1e-7}  # P(first token) after the prompt
ROOT2 = [0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02]  # P(second token | first) of the 8 labels starting with token 2
ROOT3 = [0.4, 0.3, 0.1, 0.1, 0.05, 0.03, 0.02]
ROOT4 = [0.6, 0.3, 0.1]


def _labels() -> tuple[list[list[int]], dict[int, float]]:
    """Token lists of 19 labels (one of one token) and each label's continuation probability."""
    candidates, cont = [[1]], {}
    for first, probs in ((2, ROOT2), (3, ROOT3), (4, ROOT4)):
        for i, p in enumerate(probs):
            cont[len(candidates)] = p
            candidates.append([first, 100 * first + i])
    return candidates, cont


def _engine(decoded: list[tuple[int, int]], cont: dict[int, float]):
    engine = object.__new__(llama._Engine)  # no model: only the pruning logic runs

    def decode_units(units, cands, free):
        for row, pos, roots, scores in units:
            for node in roots:
                decoded.append((row.slot, node.token))
                for c in node.candidates:
                    scores[c] += math.log(cont[c])

    engine._decode_units = decode_units
    return engine


def _row(slot: int, first: dict[int, float]):
    logprobs = np.full(1000, -50.0)
    for token, p in first.items():
        logprobs[token] = math.log(p)
    row = llama._Row(tokens=[7], slot=slot)
    row.logprobs = logprobs
    return row


def _score_rows(skip_mass: float, firsts: list[dict[int, float]]) -> tuple[list[list[float]], list[tuple[int, int]]]:
    """Scores of every row of one group, and the (row slot, subtree root) pairs decoded, in order."""
    candidates, cont = _labels()
    decoded: list[tuple[int, int]] = []
    rows = [_row(slot, first) for slot, first in enumerate(firsts, start=1)]
    scores = [[float(row.logprobs[c[0]]) for c in candidates] for row in rows]
    _engine(decoded, cont)._score_continuations(rows, [1] * len(rows), llama._build_trie(candidates), candidates, scores, list(range(10, 20)), skip_mass)
    return scores, decoded


def _score(skip_mass: float) -> tuple[list[float], list[int]]:
    scores, decoded = _score_rows(skip_mass, [FIRST])
    return scores[0], [token for _, token in decoded]


def test_label_subtrees_are_decoded_likeliest_first_and_the_negligible_ones_left_with_their_bound():
    scores, decoded = _score(1e-3)
    assert decoded == [2, 3]  # 8 labels at a time at most: token 2's subtree, then 3's; token 4's 1e-7 is under 1e-3 of 0.95
    assert scores[0] == pytest.approx(math.log(0.5))
    assert [math.exp(s) for s in scores[1:9]] == pytest.approx([0.3 * p for p in ROOT2])
    assert [math.exp(s) for s in scores[9:16]] == pytest.approx([0.15 * p for p in ROOT3])
    assert [math.exp(s) for s in scores[16:]] == pytest.approx([1e-7 / 3] * 3)  # each keeps a third of its first token's bound
    exact, _ = _score(0.0)
    assert [math.exp(s) for s in exact[16:]] == pytest.approx([1e-7 * p for p in ROOT4])
    probs = np.exp(scores) / np.exp(scores).sum()
    truth = np.exp(exact) / np.exp(exact).sum()
    assert np.abs(probs - truth).sum() < 1e-3  # the distribution within the skipped share of exact


def test_every_subtree_is_decoded_when_the_rest_still_matters(monkeypatch):
    monkeypatch.setitem(FIRST, 4, 0.01)  # now over 1e-3 of the mass scored: decoded
    assert _score(1e-3)[1] == [2, 3, 4]


def test_the_one_token_labels_count_in_the_mass_already_scored(monkeypatch):
    """6e-4 is under 1e-3 of all the mass scored (0.95, the one-token label's 0.5 in it), not of the rest's 0.45."""
    monkeypatch.setitem(FIRST, 4, 6e-4)
    assert _score(1e-3)[1] == [2, 3]


def test_each_row_of_a_group_stops_when_its_own_rest_cannot_matter():
    """Two rows scored together: the first leaves token 4's subtree (1e-7) and decodes 2's and 3's; the second, whose
    first tokens favour 4 and leave 2 and 3 at 1e-7, decodes 4's alone; each row's scores are what it gets alone."""
    second = {1: 0.15, 2: 1e-7, 3: 1e-7, 4: 0.85}
    scores, decoded = _score_rows(1e-3, [FIRST, second])
    assert sorted(decoded) == [(1, 2), (1, 3), (2, 4)]
    assert scores[0] == _score_rows(1e-3, [FIRST])[0][0]
    assert scores[1] == _score_rows(1e-3, [second])[0][0]
    assert [math.exp(s) for s in scores[1][16:]] == pytest.approx([0.85 * p for p in ROOT4])
    assert [math.exp(s) for s in scores[1][1:9]] == pytest.approx([1e-7 / 8] * 8)  # left: each an eighth of its first token
