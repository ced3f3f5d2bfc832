"""The store read back as types: a run's labels as arrays and the label matrix L[n, m] (-1 = abstain)."""

import numpy as np
import pytest

import labelmill
from labelmill.store import ABSTAIN, Store, label_matrix

from conftest import ROWS, fake_config


def test_label_table_and_matrix_from_real_runs(tmp_path):
    """Two real runs on the fake backend: one scored (distributions), one whose keywords leave rows unlabeled."""
    project = tmp_path / "p.db"
    scored = labelmill.label(fake_config(), ROWS, project=project)
    narrow = fake_config(name="narrow", labels=["neutral", "positive", "negative"])
    narrow["model"]["params"] = {"keywords": {"positive": ["great"], "negative": ["boring"]}}
    other = labelmill.label(narrow, ROWS, project=project)
    names = ["positive", "negative"]
    with Store(project) as store:
        table = store.labels(scored.run_id, len(ROWS), names)
        assert table.labels == scored.frame.llm_label.tolist()
        assert np.allclose(table.confidence, scored.frame.llm_confidence.astype(float))
        assert table.probs.shape == (len(ROWS), 2) and np.allclose(table.probs.sum(axis=1), 1.0)
        assert (table.probs.argmax(axis=1) == table.label_ids).all()
        first = table.get(0)
        assert first.model_id == "fake-keywords" and first.cache_key and first.source == "llm"
        L = store.label_matrix([scored.run_id, other.run_id], len(ROWS), names)
    assert L.shape == (len(ROWS), 2)
    assert list(L[:, 0]) == [names.index(x) for x in scored.frame.llm_label]
    third = other.frame.llm_label.tolist()
    # a label outside the names (here "neutral", for rows without a keyword) is an abstain
    assert list(L[:, 1]) == [names.index(x) if x in names else ABSTAIN for x in third]
    assert (L[:, 1] == ABSTAIN).any() and (L[:, 1] != ABSTAIN).any()


def test_rows_without_an_annotation_are_empty_and_tables_must_agree(tmp_path):
    project = tmp_path / "p.db"
    result = labelmill.label(fake_config(), ROWS, project=project, limit=3)
    with Store(project) as store:
        table = store.labels(result.run_id, 5, ["positive", "negative"])
        short = store.labels(result.run_id, 3, ["positive", "negative"])
    assert table.labels[3:] == [None, None] and np.isnan(table.confidence[3:]).all()
    assert list(table.label_ids[3:]) == [ABSTAIN, ABSTAIN] and not table.has_distribution[3:].any()
    with pytest.raises(ValueError):
        label_matrix([table, short])


def _stored(i: int, label, distribution=None, confidence=0.9) -> "StoredLabel":
    from labelmill.store.tables import StoredLabel

    return StoredLabel(row_index=i, row_hash=f"h{i}", label=label, error=None if label is not None else "parse", error_detail=None,
                       confidence=confidence, distribution=distribution, signals={"s": 1.0} if label else None, raw_answer=str(label),
                       method="score", backend="fake", model_id="m", model_sha256=None, prompt_hash="p", guidelines_hash="g",
                       cache_key=f"k{i}", cached=False)


def test_a_table_reads_edges_by_hand():
    """Rows written out by hand: a partial distribution, a list label, a failure, a row past the end."""
    from labelmill.store.tables import StoredLabel, label_table

    names = ["a", "b"]
    items = [_stored(0, "a", {"a": 0.7, "b": 0.3}), _stored(1, "b", {"b": 1.0}), _stored(2, ["a", "b"], {"a": 0.5, "b": 0.5}),
             _stored(3, None, {"a": 0.5, "b": 0.5}, confidence=None), _stored(5, "b", {"a": 0.1, "b": 0.9}), _stored(-1, "a")]
    table = label_table(items, names=names)
    assert len(table) == 6  # up to the last row stored; a negative row index is dropped
    assert table.labels == ["a", "b", ["a", "b"], None, None, "b"]
    assert list(table.label_ids) == [0, 1, ABSTAIN, ABSTAIN, ABSTAIN, 1]  # a list label and a failure abstain
    assert np.array_equal(np.isnan(table.confidence), [False, False, False, True, True, False])
    probs = table.probs
    assert probs[0].tolist() == [0.7, 0.3] and np.isnan(probs[1]).all()  # a distribution missing "a" is no distribution
    assert np.isnan(probs[3]).all()  # a failed row's distribution is not read
    assert table.has_distribution.tolist() == [True, False, True, False, False, True]
    assert table.get(5).label == "b" and table.get(6) is None and table.get(-1) is None and table.get(4) is None
    assert table.errors[3] == "parse" and table.errors[0] is None and table.signals[0] == {"s": 1.0} and table.signals[4] is None
    assert label_table(items, n_rows=2, names=names).labels == ["a", "b"]
    assert not label_table(items).has_distribution.any()  # no names: nothing covers them
    row = {**_stored(7, "a").__dict__, "cached": 1, "id": 3, "not_a_field": "x"}
    back = StoredLabel.from_row(row)
    assert back.cached is True and back.row_index == 7 and back.id == 3 and back.has_label
    empty = label_matrix([])
    assert empty.shape == (0, 0) and empty.dtype.kind == "i"
    assert label_matrix([table]).tolist() == [[0], [1], [ABSTAIN], [ABSTAIN], [ABSTAIN], [1]]  # one table is one column
    assert len(label_table([])) == 0
    other = label_table(items, names=["b", "a"])
    with pytest.raises(ValueError, match="same label names"):
        label_matrix([table, other])
