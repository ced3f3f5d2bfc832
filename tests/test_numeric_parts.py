"""The review page's estimate (numeric/estimate.py) on small cases worked out by hand: the difference
estimator's point, the audit rows that stand for the rows left, the spread's floor, Student's t, the clips."""

from __future__ import annotations

import numpy as np
import pytest

from labelmill.numeric.estimate import accuracy_interval


def test_an_interior_interval_worked_out_by_hand():
    # 100 rows left at 0.7, none reviewed; 20 audit rows at 0.7, 14 right: mean error 0, so the point is 0.7.
    # error variance (14 * 0.3^2 + 6 * 0.7^2) / 19 = 0.221053 (above the promised 0.7 * 0.3 = 0.21);
    # sd = sqrt(100^2 * 0.221053 / 20 + 100 * 0.21) / 100 = 0.114685; t(0.975, 19) = 2.093024
    out = accuracy_interval(np.full(100, 0.7), 0, np.full(20, 0.7), np.array([1] * 14 + [0] * 6))
    assert out["estimated_accuracy"] == pytest.approx(0.7)
    assert out["low"] == pytest.approx(0.7 - 2.093024 * 0.114685, abs=1e-5) and out["high"] == pytest.approx(0.7 + 2.093024 * 0.114685, abs=1e-5)
    assert out["interval_width"] == pytest.approx(2 * 2.093024 * 0.114685, abs=1e-5) and out["interval_level"] == 0.95
    assert (out["audit_rows"], out["audit_rows_used"]) == (20, 20)
    assert out["audit_accuracy"] == pytest.approx(0.7) and out["audit_mean_confidence"] == pytest.approx(0.7) and out["correction"] == pytest.approx(0.0)
    narrower = accuracy_interval(np.full(100, 0.7), 0, np.full(20, 0.7), np.array([1] * 14 + [0] * 6), level=0.8)
    # t(0.9, 19) = 1.327728
    assert narrower["low"] == pytest.approx(0.7 - 1.327728 * 0.114685, abs=1e-5) and narrower["interval_level"] == 0.8


def test_the_correction_moves_the_point_and_the_reviewed_rows_count_as_right():
    # 10 rows left at 0.5, 90 reviewed; audit errors 0.5, -0.6, 0.3, -0.55: mean -0.0875
    # point (90 + 5 + 10 * -0.0875) / 100 = 0.94125; variance 0.323958 (promised 0.236875);
    # sd = sqrt(100 * 0.323958 / 4 + 10 * 0.25) / 100 = 0.032556; t(0.975, 3) = 3.182446
    out = accuracy_interval(np.full(10, 0.5), 90, np.array([0.5, 0.6, 0.7, 0.55]), np.array([1, 0, 1, 0]))
    assert out["estimated_accuracy"] == pytest.approx(0.94125) and out["correction"] == pytest.approx(-0.0875)
    assert out["low"] == pytest.approx(0.94125 - 3.182446 * 0.032556, abs=1e-5) and out["high"] == 1.0
    assert out["audit_accuracy"] == 0.5 and out["audit_mean_confidence"] == pytest.approx(0.5875)


def test_audit_rows_as_sure_as_the_rows_left_stand_for_them_once_there_are_enough():
    c = np.array([0.95, 0.9, 0.85, 0.8])
    ac = np.array([0.99, 0.97, 0.95, 0.9, 0.6, 0.5, 0.4, 0.93, 0.96, 0.98])
    ok = np.array([1, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    # 7 audit rows at or above the frontier 0.8: fewer than min_like 8, so all 10 stand (mean error -0.118)
    every = accuracy_interval(c, 6, ac, ok, frontier=0.8)
    assert every["audit_rows_used"] == 10 and every["correction"] == pytest.approx(-0.118)
    assert every["estimated_accuracy"] == pytest.approx(0.9028) and every["low"] == pytest.approx(0.720780, abs=1e-5)
    # min_like 5: the 7 sure ones only (mean error -0.097143), t(0.975, 6) = 2.446912
    sure = accuracy_interval(c, 6, ac, ok, frontier=0.8, min_like=5)
    assert sure["audit_rows_used"] == 7 and sure["audit_rows"] == 10 and sure["correction"] == pytest.approx(-0.0971429)
    assert sure["estimated_accuracy"] == pytest.approx(0.9111429) and sure["low"] == pytest.approx(0.7046188, abs=1e-5)
    at_edge = accuracy_interval(c, 6, ac, ok, frontier=0.9, min_like=7)  # 0.9 itself counts: exactly 7 rows
    assert at_edge["audit_rows_used"] == 7
    # one more sure audit row (0.91, wrong): 8 at or above 0.8, as many as the default min_like, so those 8 stand
    eight = accuracy_interval(c, 6, np.append(ac, 0.91), np.append(ok, 0), frontier=0.8)
    assert eight["audit_rows_used"] == 8 and eight["correction"] == pytest.approx(-0.19875) and eight["low"] == pytest.approx(0.6582480, abs=1e-5)


def test_one_or_two_audit_rows_standing_use_a_quarter_or_their_variance_and_t_with_one_degree():
    # min_like 1, one audit row at or above 0.9 (0.95, right): no variance from one row, the spread is 0.25;
    # point (1000 + 9 + 10 * 0.05) / 1010; sd = sqrt(100 * 0.25 + 10 * 0.09) / 1010; t(0.975, 1) = 12.706205
    one = accuracy_interval(np.full(10, 0.9), 1000, np.array([0.95, 0.5, 0.5]), np.array([1, 0, 1]), frontier=0.9, min_like=1)
    assert one["audit_rows_used"] == 1 and one["estimated_accuracy"] == pytest.approx(0.9995050) and one["low"] == pytest.approx(0.9354807, abs=1e-6)
    # min_like 2, two standing (0.95 right, 0.9 wrong): errors 0.05 and -0.9, variance 0.45125, one degree of freedom
    two = accuracy_interval(np.full(10, 0.9), 1000, np.array([0.95, 0.9, 0.5]), np.array([1, 0, 1]), frontier=0.9, min_like=2)
    assert two["audit_rows_used"] == 2 and two["estimated_accuracy"] == pytest.approx(0.9948020) and two["low"] == pytest.approx(0.9338649, abs=1e-6)


def test_sure_audit_rows_that_were_all_right_still_leave_the_spread_their_confidence_promises():
    # 3 audit rows at 0.9, all right: variance 0, so the spread is the promised 0.09; point (80 + 19 + 20 * 0.1) / 100
    # = 1.01, shown as 1.0; sd = sqrt(400 * 0.09 / 3 + 20 * 0.0475) / 100 = 0.0359861; t(0.975, 2) = 4.302653
    out = accuracy_interval(np.full(20, 0.95), 80, np.full(3, 0.9), np.ones(3))
    assert out["estimated_accuracy"] == 1.0 and out["high"] == 1.0
    assert out["low"] == pytest.approx(1.01 - 4.302653 * 0.0359861, abs=1e-5)


def test_a_far_too_sure_model_is_corrected_down_and_the_low_end_stops_at_zero():
    ac = np.array([0.9, 0.8, 0.9, 0.7, 0.95, 0.85, 0.9, 0.8, 0.75, 0.9])
    out = accuracy_interval(np.full(40, 0.6), 0, ac, np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0]))
    assert out["estimated_accuracy"] == pytest.approx(0.155) and out["low"] == 0.0
    assert out["high"] == pytest.approx(0.155 + 2.262157 * 0.1931393, abs=1e-5)


def test_missing_and_out_of_range_confidences_are_read_as_zero_and_clipped():
    plain = accuracy_interval(np.array([0.0, 1.0, 0.0]), 2, np.array([0.0, 1.0, 0.5, 0.0]), np.array([0, 1, 1, 0]))
    odd = accuracy_interval(np.array([np.nan, 1.7, -0.4]), 2, np.array([-0.3, 4.0, 0.5, np.nan]), np.array([0, 1, 1, 0]))
    assert odd == plain
    assert plain["estimated_accuracy"] == pytest.approx((2 + 1 + 3 * (0.5 / 4)) / 5)


def test_no_rows_or_fewer_than_two_audit_rows_is_an_error():
    with pytest.raises(ValueError, match="at least two audit rows"):
        accuracy_interval(np.full(5, 0.5), 0, np.array([0.5]), np.array([1]))
    with pytest.raises(ValueError, match="needs rows"):
        accuracy_interval(np.array([]), 0, np.array([0.5, 0.5]), np.array([1, 0]))
    assert accuracy_interval(np.array([]), 3, np.array([0.5, 0.5]), np.array([1, 0]))["estimated_accuracy"] == 1.0  # every row reviewed



def test_weighted_audit_rows_give_the_weighted_mean_error_its_spread_and_kish_s_count():
    """Audit rows drawn with unequal chances: four rows (confidence, right, weight) (0.5, 0, 1), (0.5, 1, 1),
    (0.9, 1, 2), (0.9, 1, 2). Mean error (1(-0.5) + 1(0.5) + 2(0.1) + 2(0.1)) / 6 = 1/15 (unweighted: 0.05);
    the spread of that mean: the shares squared times c(1 - c), (0.25 + 0.25) / 36 + 2 x 0.09 / 9, above the
    rows' own spread; effective count 6^2 / (1 + 1 + 4 + 4) = 3.6."""
    from scipy.stats import t as student_t

    ac, ok = np.array([0.5, 0.5, 0.9, 0.9]), np.array([0, 1, 1, 1])
    out = accuracy_interval(np.array([0.8, 0.6]), 8, ac, ok, audit_weight=np.array([1.0, 1.0, 2.0, 2.0]))
    assert out["correction"] == pytest.approx(1 / 15, abs=1e-12)
    assert out["audit_rows_effective"] == pytest.approx(3.6, abs=1e-12)
    point = (8 + 0.8 + 0.6 + 2 / 15) / 10
    promised = 0.5 / 36 + 2 * 0.09 / 9
    sd = (4 * promised + 0.8 * 0.2 + 0.6 * 0.4) ** 0.5 / 10
    q = student_t.ppf(0.975, 2.6)
    assert out["estimated_accuracy"] == pytest.approx(point, abs=1e-12)
    assert out["low"] == pytest.approx(point - q * sd, abs=1e-9) and out["high"] == 1.0  # (point + q sd is above 1)
    # where the rows' own spread is the larger: errors (-0.9, 0.9, 0.1, 0.1) weighted 1, 1, 2, 2 about 1/15
    wide = accuracy_interval(np.array([0.8, 0.6]), 8, np.array([0.9, 0.1, 0.9, 0.9]), np.array([0, 1, 1, 1]), audit_weight=np.array([1.0, 1.0, 2.0, 2.0]))
    own = ((-0.9 - 1 / 15) ** 2 / 36 + (0.9 - 1 / 15) ** 2 / 36 + 2 * (0.1 - 1 / 15) ** 2 / 9) * 4 / 3
    sd = (4 * own + 0.8 * 0.2 + 0.6 * 0.4) ** 0.5 / 10
    assert wide["correction"] == pytest.approx(1 / 15, abs=1e-12) and wide["low"] == pytest.approx(point - q * sd, abs=1e-9)
    # equal weights are the plain figures, whatever their size; one weight per audit row
    plain = accuracy_interval(np.array([0.8, 0.6]), 8, ac, ok)
    assert accuracy_interval(np.array([0.8, 0.6]), 8, ac, ok, audit_weight=np.full(4, 3.0)) == pytest.approx(plain, abs=1e-12)
    assert plain["correction"] == pytest.approx(0.05, abs=1e-12) and plain["audit_rows_effective"] == 4
    with pytest.raises(ValueError, match="one weight per audit row"):
        accuracy_interval(np.array([0.8, 0.6]), 8, ac, ok, audit_weight=np.ones(3))

# calibration.py: the plain threshold table's point, the held-out log loss, the method choice -----------------
from labelmill.numeric.calibration import Calibrator, choose, log_loss_of, threshold_point  # noqa: E402


def test_threshold_point_takes_the_lowest_threshold_whose_rows_reach_the_target():
    conf = np.array([0.9, 0.8, 0.8, 0.7, np.nan, 0.6, 0.5])
    ok = np.array([1, 1, 0, 1, 1, 0, 0])
    # sorted, NaN left out: 0.9 right, 0.8 right, 0.8 wrong, 0.7 right, 0.6 wrong, 0.5 wrong; at 0.7: 3 of 4 right
    assert threshold_point(conf, ok, 0.75, min_rows=2) == {"threshold": 0.7, "seed_rows": 4, "seed_accuracy": 0.75, "seed_share": 4 / 7}
    assert threshold_point(conf, ok, 0.75, min_rows=4) == {"threshold": 0.7, "seed_rows": 4, "seed_accuracy": 0.75, "seed_share": 4 / 7}
    assert threshold_point(conf, ok, 0.75, min_rows=5) is None  # 5 rows or more: 3 of 5 at best
    assert threshold_point(conf, ok, 0.76, min_rows=2) is None
    # target 1.0: 0.9 alone; not 0.8, where both 0.8 rows (one wrong) come in together
    assert threshold_point(conf, ok, 1.0, min_rows=1) == {"threshold": 0.9, "seed_rows": 1, "seed_accuracy": 1.0, "seed_share": 1 / 7}
    # a tie at the end: 0.6 takes in both 0.6 rows
    assert threshold_point(np.array([0.9, 0.6, 0.6]), np.array([1, 1, 0]), 1.0, min_rows=1)["threshold"] == 0.9
    assert threshold_point(np.array([0.9, 0.6, 0.6]), np.array([1, 1, 1]), 1.0, min_rows=1)["seed_rows"] == 3
    assert threshold_point(np.array([0.9, 0.6, 0.6]), np.array([True, True, True]), 1.0)  is None  # fewer than the default 20 rows


def test_the_held_out_log_loss_of_the_gold_label_or_of_being_right():
    same = Calibrator("temperature", ["a", "b", "c"])  # temperature 1: the distributions as they are
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]])
    # the gold label's probability: -(ln 0.7 + ln 0.4) / 2
    assert log_loss_of(same, probs, np.array([0, 0]), probs.max(axis=1), np.array([1, 0])) == pytest.approx(0.6364828, abs=1e-6)
    # a gold label given no probability at all costs -ln(1e-6), not infinity
    sure = np.array([[1.0, 0.0, 0.0]])
    assert log_loss_of(same, sure, np.array([1]), np.array([1.0]), np.array([0])) == pytest.approx(13.815511, abs=1e-5)
    mapped = Calibrator("isotonic", ["a", "b"], iso_x=[0.0, 1.0], iso_y=[0.0, 1.0])  # the identity map on the confidence
    raw, right = np.array([0.8, 0.6, np.nan]), np.array([1, 0, 1])
    # P(right): -(ln 0.8 + ln (1 - 0.6) + ln 0.5 (no confidence: a coin)) / 3, whatever labels are given beside it
    assert log_loss_of(mapped, None, None, raw, right) == pytest.approx(0.6108606, abs=1e-6)
    assert log_loss_of(mapped, None, np.array([0, 1, 0]), raw, right) == pytest.approx(0.6108606, abs=1e-6)
    assert log_loss_of(mapped, None, None, np.array([1.0, 0.0]), np.array([0, 1])) == pytest.approx(13.815511, abs=1e-5)
    # distributions without gold labels: right is the predicted label equal to gold, which nothing is
    scaled = Calibrator("bias", ["a", "b"], bias=[0.0, 0.0])
    two = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert log_loss_of(scaled, two, None, two.max(axis=1), np.array([1, 1])) == pytest.approx(-(np.log(0.2) + np.log(0.3)) / 2, abs=1e-6)


def test_choose_gives_each_method_its_cross_validated_loss():
    # 10 rows all right at 0.9: every fold's isotonic fit on 8 rows says (8 + 0.5) / (8 + 1), so each held-out
    # row costs -ln(8.5 / 9)
    best, losses = choose(None, None, np.full(10, 0.9), np.ones(10), ["a", "b"])
    assert best == "isotonic" and set(losses) == {"isotonic"} and losses["isotonic"] == pytest.approx(0.0571584, abs=1e-6)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.45, 0.55], [0.7, 0.3], [0.1, 0.9], [0.65, 0.35], [0.4, 0.6]])
    gold = np.array([0, 1, 1, 1, 0, 0, 0, 1, 0, 1])
    right = probs.argmax(axis=1) == gold
    best, losses = choose(probs, gold, probs.max(axis=1), right, ["a", "b"])
    assert set(losses) == {"temperature", "bias", "isotonic", "platt", "bias_platt"} and best == min(losses, key=losses.get)
    assert all(0 < v < 5 for v in losses.values())
    _, unbiased = choose(probs, gold, probs.max(axis=1), right, ["a", "b"], allow_bias=False)
    assert set(unbiased) == {"temperature", "isotonic", "platt"} and unbiased["temperature"] == pytest.approx(losses["temperature"])


def test_platt_and_isotonic_map_a_confidence_and_other_methods_leave_it():
    from labelmill.numeric.calibration import full_distribution

    platt = Calibrator("platt", platt=[2.0, -1.0])
    out = platt.confidence(np.array([0.5, 0.8, np.nan]))
    # sigmoid(2 * logit(p) - 1): logit 0.5 = 0 -> sigmoid(-1); logit 0.8 = ln 4 -> sigmoid(2 ln 4 - 1)
    assert out[0] == pytest.approx(0.2689414) and out[1] == pytest.approx(0.8547793) and np.isnan(out[2])
    assert Calibrator("bias_platt", platt=[2.0, -1.0]).confidence(np.array([0.8]))[0] == pytest.approx(0.8547793)
    steep = Calibrator("platt", platt=[3.0, 1.0])  # 3 * logit(1e-6) + 1 = -40.4: held at -30, and +42.4 at +30
    assert steep.confidence(np.array([0.0]))[0] == pytest.approx(9.357623e-14, rel=1e-6, abs=0)
    assert 1 - steep.confidence(np.array([1.0]))[0] == pytest.approx(9.357623e-14, rel=1e-2, abs=0)
    iso = Calibrator("isotonic", iso_x=[0.2, 0.8], iso_y=[0.1, 0.7])
    assert iso.confidence(np.array([0.5, 0.1, 0.9, np.nan])).tolist()[:3] == pytest.approx([0.4, 0.1, 0.7]) and np.isnan(iso.confidence(np.array([np.nan]))[0])
    raw = np.array([0.3, 0.9])
    for left_alone in (Calibrator("platt"), Calibrator("isotonic"), Calibrator("temperature", platt=[2.0, -1.0], iso_x=[0.0, 1.0], iso_y=[1.0, 1.0])):
        assert left_alone.confidence(raw).tolist() == [0.3, 0.9]
    # the full distribution: the top label at the calibrated confidence (kept off 0 and 1), the rest in proportion, row by row
    zero = Calibrator("isotonic", iso_x=[0.0, 1.0], iso_y=[0.0, 0.0])
    q = full_distribution(zero, np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]))
    assert q[0].tolist() == pytest.approx([1e-6, 0.75 * (1 - 1e-6), 0.25 * (1 - 1e-6)], abs=1e-12)
    assert q[1].tolist() == pytest.approx([2 / 3 * (1 - 1e-6), 1e-6, 1 / 3 * (1 - 1e-6)], abs=1e-12)
    one = Calibrator("isotonic", iso_x=[0.0, 1.0], iso_y=[1.0, 1.0])
    assert full_distribution(one, np.array([[0.6, 0.3, 0.1]]))[0].tolist() == pytest.approx([1 - 1e-6, 0.75e-6, 0.25e-6], abs=1e-12)


def test_token_text_scores_the_tokens_under_a_part_of_the_text():
    from labelmill.numeric.confidence import TokenText, mean_token_prob

    text = TokenText(["Hel", "lo", " world"], [np.log(0.5), np.log(0.25), 0.0])
    assert text.ok and text.raw == "Hello world"
    assert text.mean_prob(0, 5) == pytest.approx(0.375) and text.mean_prob(3, 4) == pytest.approx(0.25)
    assert text.mean_prob(5, 11) == pytest.approx(1.0) and text.mean_prob(2, 4) == pytest.approx(0.375) and text.mean_prob(11, 12) is None
    for tokens, logprobs in (([], []), (["a", "b"], [-0.1])):  # no tokens, or texts that do not match the log-probabilities
        broken = TokenText(tokens, logprobs)
        assert not broken.ok and broken.raw == "" and broken.mean_prob(0, 2) is None and broken.mean_prob(-1, 2) is None
    assert mean_token_prob([np.log(0.5), np.log(0.25)]) == pytest.approx(0.375) and mean_token_prob([]) is None


def _powell(objective, start):
    from scipy.optimize import minimize

    return minimize(objective, np.asarray(start, dtype=float), method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 20000}).x


def test_fit_logistic_finds_the_optimum_of_its_stated_objective():
    from labelmill.numeric.calibration import fit_logistic, fit_platt

    rng = np.random.default_rng(3)
    design = np.column_stack([rng.normal(size=60), rng.normal(size=60), np.ones(60)])
    y = (rng.random(60) < 1 / (1 + np.exp(-(1.5 * design[:, 0] - design[:, 1] + 0.3)))).astype(float)
    for l2 in (1e-3, 0.5):
        def objective(w, l2=l2):  # the mean log loss of sigmoid(design @ w), plus l2 / 2 |w|^2, written out
            z = design @ w
            return float(np.mean(np.log1p(np.exp(z)) - y * z) + 0.5 * l2 * w @ w)

        assert fit_logistic(design, y, l2=l2) == pytest.approx(_powell(objective, np.zeros(3)), abs=2e-4)
    conf = 1 / (1 + np.exp(-design[:, 0]))
    x = np.log(conf / (1 - conf))
    a, c = fit_platt(conf, y)
    assert [a, c] == pytest.approx(_powell(lambda w: float(np.mean(np.log1p(np.exp(w[0] * x + w[1])) - y * (w[0] * x + w[1])) + 0.5e-3 * w @ w),
                                           [0.0, 0.0]), abs=2e-4)


def test_fit_scaling_finds_the_optimum_of_its_stated_objective():
    from labelmill.numeric.calibration import fit_scaling

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(80, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(3, p=np.exp(r / 2) / np.exp(r / 2).sum()) for r in logits])  # the model too sure: T above 1
    logp = np.log(probs)

    def loss(s, b, l2=0.01):  # -mean log softmax(log p * s + b)[gold] + l2 |b|^2, written out
        z = logp * s + b
        z = z - z.max(axis=1, keepdims=True)
        return float(-np.mean(z[np.arange(len(z)), gold] - np.log(np.exp(z).sum(axis=1))) + l2 * b @ b)

    t, offsets = fit_scaling(probs, gold, bias=False)
    (log_s,) = _powell(lambda v: loss(np.exp(v[0]), np.zeros(3)), [0.0])
    assert t == pytest.approx(np.exp(-log_s), abs=1e-4) and t > 1.2 and offsets.tolist() == [0.0, 0.0, 0.0]
    t, offsets = fit_scaling(probs, gold, bias=True)
    found = _powell(lambda v: loss(np.exp(v[0]), v[1:]), np.zeros(4))
    assert t == pytest.approx(np.exp(-found[0]), abs=1e-3) and offsets == pytest.approx(found[1:], abs=1e-3)
    t, _ = fit_scaling(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]), bias=False)  # always right: far sharper
    assert t < 0.1


def test_fit_isotonic_pools_violators_and_shrinks_each_block_toward_one_half():
    from labelmill.numeric.calibration import fit_isotonic

    conf = np.array([0.5, 0.1, 0.3, 0.2, 0.6, 0.4])
    right = np.array([1, 0, 0, 1, 1, 1])
    # in confidence order 0.1 wrong | 0.2 right, 0.3 wrong (pooled: 1/2) | 0.4, 0.5, 0.6 right (one block, not three);
    # each block's rate (right + 1/2) / (rows + 1): 1/4, 1/2, 7/8
    xs, ys = fit_isotonic(conf, right)
    assert xs == [0.1, 0.1, 0.2, 0.3, 0.4, 0.6] and ys == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.875, 0.875])
    assert fit_isotonic(np.array([]), np.array([])) == ([], [])
    # ties keep the input order: at 0.5 right then wrong pool into one block; the other way round they would not
    xs, ys = fit_isotonic(np.array([0.5, 0.5, 0.9]), np.array([1, 0, 1]))
    assert xs == [0.5, 0.5, 0.9, 0.9] and ys == pytest.approx([0.5, 0.5, 0.75, 0.75])
    xs, ys = fit_isotonic(np.array([0.5, 0.5, 0.9]), np.array([0, 1, 1]))
    assert xs == [0.5, 0.5, 0.5, 0.9] and ys == pytest.approx([0.25, 0.25, 2.5 / 3, 2.5 / 3])


def test_distribution_signals_by_hand():
    from labelmill.numeric.confidence import distribution_signals, label_distribution

    # entropy -(0.5 ln 0.5 + 0.3 ln 0.3 + 0.2 ln 0.2) = 1.029653, over ln 3
    out = distribution_signals(np.array([0.3, 0.5, 0.2]))
    assert out["top_prob"] == 0.5 and out["margin"] == pytest.approx(0.2) and out["entropy"] == pytest.approx(1.0296530 / np.log(3))
    assert distribution_signals(np.array([1.0])) == {"top_prob": 1.0, "margin": 1.0, "entropy": 0.0}  # one label: certain
    assert distribution_signals(np.array([0.5, 0.5]))["entropy"] == pytest.approx(1.0)
    assert label_distribution([np.log(0.2), np.log(0.6)]).tolist() == pytest.approx([0.25, 0.75])


# agreement.py: kappas and alpha on small tables worked out by hand ---------------------------------------------
from labelmill.numeric.agreement import agreement, cohen_kappa, fleiss_kappa, krippendorff_alpha  # noqa: E402


def test_cohen_kappa_by_hand():
    # observed 3/4; expected (2 * 1 + 2 * 3) / 16 = 1/2; (3/4 - 1/2) / (1 - 1/2)
    assert cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"]) == pytest.approx(0.5)
    assert cohen_kappa(["x", "x"], ["y", "y"]) == 0.0  # never agree, no chance agreement either
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0  # one and the same label throughout
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa(["x"], ["x", "y"])


def test_fleiss_kappa_by_hand():
    # 2 raters per item: P_i 1, 0, 1, 1 (mean 3/4); p = 5/8, 3/8, P_e = 34/64; (3/4 - 34/64) / (1 - 34/64) = 7/15
    items = [["a", "a"], ["a", "b"], ["b", "b"], ["a", "a"]]
    assert fleiss_kappa(items) == pytest.approx(7 / 15)
    assert fleiss_kappa([*items, ["a"], ["a", "b", "b"]]) == pytest.approx(7 / 15)  # other counts than the most common: left out
    assert fleiss_kappa([["a", "a"], ["a", "a", "a"], ["a", "a"]]) == 1.0  # one label only
    assert fleiss_kappa([]) is None and fleiss_kappa([["a"], ["b"]]) is None


def test_krippendorff_alpha_by_hand():
    # coincidences: o_aa 4, o_bb 2, o_ab = o_ba = 1; n_a 5, n_b 3, n 8; alpha = 1 - 7 * 2 / (5 * 3 * 2) = 8/15
    assert krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["a", "a"], ["b"]]) == pytest.approx(8 / 15)
    # a unit of three ratings weighs its pairs 1/2: o_aa 1, o_ab = o_ba = 1, o_bb 2; 1 - 4 * 2 / (2 * 3 * 2) = 1/3
    assert krippendorff_alpha([["a", "a", "b"], ["b", "b"]]) == pytest.approx(1 / 3)
    assert krippendorff_alpha([["a", "a"], ["a", "a", "a"]]) == 1.0
    # three labels, nominal (no label is nearer another): o_ab = o_ba = o_ac = o_ca = 1, o_bb = o_cc = 2; n 2, 3, 3;
    # 1 - 7 * 4 / (2 * (2 * 3 + 2 * 3 + 3 * 3)) = 1/3
    assert krippendorff_alpha([["a", "b"], ["a", "c"], ["c", "c"], ["b", "b"]]) == pytest.approx(1 / 3)
    # labels of mixed types (a missing answer beside text) are ordered by their repr, never compared
    assert krippendorff_alpha([[None, "a"], ["a", "a"]]) == krippendorff_alpha([["b", "a"], ["a", "a"]])
    assert fleiss_kappa([[None, "a"], ["a", "a"]]) == fleiss_kappa([["b", "a"], ["a", "a"]])
    assert krippendorff_alpha([["a"], ["b"]]) is None and krippendorff_alpha([]) is None


def test_agreement_gathers_the_figures_over_items_rated_twice_or_more():
    ratings = {1: {"ann": "a", "bob": "a"}, 2: {"ann": "a", "bob": "b"}, 3: {"ann": "b", "bob": "b", "cy": "b"}, 4: {"ann": "a"}}
    out = agreement(ratings)
    assert out["items_with_overlap"] == 3 and out["full_agreement"] == pytest.approx(2 / 3)
    # ann and bob on items 1-3: observed 2/3, expected (2 * 1 + 1 * 2) / 9; (6/9 - 4/9) / (5/9) = 2/5
    assert out["cohen"] == [{"annotators": ["ann", "bob"], "items": 3, "cohen_kappa": pytest.approx(0.4)},
                            {"annotators": ["ann", "cy"], "items": 1, "cohen_kappa": 1.0},
                            {"annotators": ["bob", "cy"], "items": 1, "cohen_kappa": 1.0}]
    # Fleiss on the two items with two ratings: P 1 and 0, p 3/4 and 1/4, P_e 10/16: (1/2 - 5/8) / (3/8) = -1/3
    assert out["fleiss_kappa"] == pytest.approx(-1 / 3)
    # alpha: o_aa 2, o_ab = o_ba = 1, o_bb 3 (six ordered pairs at 1/2); 1 - 6 * 2 / (3 * 4 * 2) = 1/2
    assert out["krippendorff_alpha"] == pytest.approx(0.5)
    assert agreement({1: {"ann": "a"}}) == {"items_with_overlap": 0, "full_agreement": None, "cohen": [], "fleiss_kappa": None, "krippendorff_alpha": None}


# calibration.fit: each method's calibrator holds its own parts ----------------------------------------
def test_fit_names_the_method_and_labels_and_holds_what_its_parts_fit():
    """`fit` only dispatches: each method's calibrator must carry the method, the labels and exactly what the
    part it names fits (each part is checked against its objective elsewhere in this file)."""
    from labelmill.numeric.calibration import FUSED_SIGNALS, fit, fit_isotonic, fit_logistic, fit_platt, fit_scaling, fused_design

    rng = np.random.default_rng(0)
    probs = rng.dirichlet([3.0, 1.0, 1.0], size=80)
    gold = np.where(rng.random(80) < 0.7, probs.argmax(axis=1), rng.integers(0, 3, size=80))
    raw = probs.max(axis=1)
    raw[[3, 40]] = np.nan  # rows with no confidence are left out of the confidence fits
    correct = probs.argmax(axis=1) == gold
    ok = ~np.isnan(raw)
    labels = ("a", "b", "c")
    for method in ("temperature", "bias", "isotonic", "platt", "bias_platt", "fused"):
        cal = fit(method, probs, gold, raw, correct, labels)
        assert cal.method == method and cal.labels == ["a", "b", "c"]
    platt = fit("platt", None, None, raw, correct, labels)
    assert platt.platt == fit_platt(raw[ok], correct[ok]) and not platt.bias
    iso = fit("isotonic", None, None, raw, correct, labels)
    assert (iso.iso_x, iso.iso_y) == fit_isotonic(raw[ok], correct[ok])
    t, _ = fit_scaling(probs, gold, bias=False)
    temperature = fit("temperature", probs, gold, raw, correct, labels)
    assert temperature.temperature == t and temperature.bias == []
    bias = fit("bias", probs, gold, raw, correct, labels)
    t, offsets = fit_scaling(probs, gold, bias=True)
    assert bias.temperature == t and bias.bias == [float(x) for x in offsets]
    both = fit("bias_platt", probs, gold, raw, correct, labels)
    q = bias.distribution(probs)
    assert (both.temperature, both.bias) == (bias.temperature, bias.bias)
    assert both.platt == fit_platt(q.max(axis=1), q.argmax(axis=1) == gold)
    signals = [{n: float(v) for n in FUSED_SIGNALS} for v in rng.random(80)]
    fused = fit("fused", None, None, raw, correct, labels, signals)
    weights = fit_logistic(fused_design(raw, signals, list(FUSED_SIGNALS)), correct, l2=1e-2)
    assert list(fused.fused) == ["confidence", *FUSED_SIGNALS, "bias"] and list(fused.fused.values()) == [float(w) for w in weights]
    no_signals = fit("fused", None, None, raw, correct, labels)  # no signals: the confidence and a bias alone
    assert list(no_signals.fused) == ["confidence", "bias"]
    for method in ("temperature", "bias", "bias_platt"):
        with pytest.raises(ValueError, match="needs label distributions"):
            fit(method, None, gold, raw, correct, labels)
        with pytest.raises(ValueError, match="needs label distributions"):
            fit(method, probs, None, raw, correct, labels)


def test_threshold_with_bound_counts_rows_without_confidence_in_its_share_and_tolerates_a_wrong_top_row():
    from labelmill.numeric.calibration import threshold_with_bound

    confidence = np.concatenate([np.linspace(0.99, 0.60, 200), [np.nan] * 10])
    correct = np.ones(210, dtype=bool)
    correct[0] = False  # the surest row is wrong
    # tolerating one wrong row, the search starts where 1 error can pass (93 rows at 0.95, delta 0.05) and passes
    # down to the last row: 199 of 200 right, Clopper-Pearson lower bound 0.9765 >= 0.95
    got = threshold_with_bound(confidence, correct, 0.95, tolerate=1)
    assert got["seed_rows"] == 200 and got["seed_share"] == 200 / 210 and got["seed_accuracy"] == 199 / 200
    assert got["threshold"] == pytest.approx(0.60)
    # tolerating none, it starts at 59 rows, one of them wrong (bound 0.9221 < 0.95): the first test fails, no threshold
    assert threshold_with_bound(confidence, correct, 0.95, tolerate=0) is None
