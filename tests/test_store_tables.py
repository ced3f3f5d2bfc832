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
