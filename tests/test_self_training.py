"""Self-training (`students.self_trained`): a student that also learns from its own surest labels on unlabeled
rows moves its boundary into the gap between them, where the few labeled rows alone leave it crooked."""

import numpy as np

from labelmill.strategies.students import LinearStudent, self_trained, surest_rows


def _two_clusters():
    rng = np.random.default_rng(0)
    unlabeled = np.vstack([rng.normal([-2, 0], 0.4, (200, 2)), rng.normal([2, 0], 0.4, (200, 2))])
    truth = np.array([0] * 200 + [1] * 200)
    # four labeled rows, off the clusters' axis: the line between them alone is tilted through both clusters
    labeled = np.array([[-0.5, 2.0], [-0.3, 2.5], [2.5, -2.0], [2.8, -2.5]])
    return labeled, np.array([0, 0, 1, 1]), unlabeled, truth


def test_its_own_surest_labels_straighten_a_boundary_the_few_labeled_rows_tilt():
    X, y, U, truth = _two_clusters()
    plain = LinearStudent(2).fit(X, y).predict_proba(U).argmax(axis=1)
    trained = self_trained(X, y, U, 2).predict_proba(U).argmax(axis=1)
    assert np.mean(plain == truth) < 0.96  # 0.945: 22 rows across the tilted line
    assert np.mean(trained == truth) == 1.0


def test_no_round_is_the_plain_student():
    X, y, U, _ = _two_clusters()
    plain = LinearStudent(2).fit(X, y).predict_proba(U)
    assert np.allclose(self_trained(X, y, U, 2, rounds=0).predict_proba(U), plain)


def test_surest_rows_keeps_per_label_the_surer_share():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55]])
    # label 0 said by rows 0-3 (0.9, 0.6, 0.8, 0.7): its surer half is rows 0 and 2; label 1 by rows 4-5: row 4
    assert surest_rows(probs).tolist() == [0, 2, 4]
    assert surest_rows(probs, share=1.0, most=1).tolist() == [0, 4]
