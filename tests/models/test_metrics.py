import math

import numpy as np
import pytest

from retail_clv.models import metrics as M

Y = [0.0, 0.0, 10.0, 5.0]
P = [1.0, 2.0, 3.0, 4.0]


def test_r2_mae_rmse_by_hand():
    # mean(Y) = 3.75; SS_tot = 14.0625*2 + 39.0625 + 1.5625 = 68.75
    # residuals: -1, -2, 7, 1 -> SS_res = 55
    assert M.r2(Y, P) == pytest.approx(1 - 55 / 68.75)
    assert M.mae(Y, P) == pytest.approx((1 + 2 + 7 + 1) / 4)
    assert M.rmse(Y, P) == pytest.approx(math.sqrt(55 / 4))


def test_r2_constant_truth_is_nan_and_perfect_is_one():
    assert math.isnan(M.r2([1, 1, 1], [1, 2, 3]))
    assert M.r2([1, 2, 3], [1, 2, 3]) == 1.0


def test_spearman_by_hand():
    # ranks of Y: 1.5, 1.5, 4, 3 ; ranks of P: 1, 2, 3, 4
    ry = np.array([1.5, 1.5, 4, 3])
    rp = np.array([1, 2, 3, 4])
    expected = np.corrcoef(ry, rp)[0, 1]
    assert M.spearman(Y, P) == pytest.approx(expected)
    assert math.isnan(M.spearman(Y, [1, 1, 1, 1]))


def test_normalized_gini_by_hand():
    # ranked by P desc: 5, 10, 0, 0 -> gains 0, 1/3, 1, 1, 1
    # area = .25*(0+1/3)/2 + .25*(1/3+1)/2 + .25 + .25 = 0.708333 ; minus .5 = 0.208333
    # perfect: 10, 5, 0, 0 -> gains 0, 2/3, 1, 1, 1 -> area .791667 ; minus .5 = 0.291667
    assert M.normalized_gini(Y, P) == pytest.approx(0.2083333 / 0.2916667, rel=1e-5)
    assert M.normalized_gini(Y, Y) == pytest.approx(1.0)


def test_ties_are_averaged_constant_prediction_scores_zero():
    assert M.normalized_gini(Y, [1, 1, 1, 1]) == pytest.approx(0.0)
    # top 25% with all predictions tied: expected share = mean spend / total = 1/4
    assert M.top_capture(Y, [1, 1, 1, 1], 0.25) == pytest.approx(0.25)
    # ties inside the top group only: {10, 5} tied first, then the zeros
    assert M.normalized_gini(Y, [0, 0, 2, 2]) == pytest.approx(
        ((0.25 * 0.5 / 2 + 0.25 * 1.5 / 2 + 0.5) - 0.5) / 0.2916667, rel=1e-5
    )


def test_top_capture_is_undefined_when_the_top_fraction_is_less_than_one_customer():
    assert math.isnan(M.top_capture([5.0], [1.0]))  # one customer: everyone would "capture" all
    assert math.isnan(M.top_capture([5.0] * 9, range(9)))
    assert M.top_capture([5.0] * 10, range(10)) == pytest.approx(0.1)
    assert M.top_capture([5.0] * 4, range(4), 0.25) == pytest.approx(0.25)


def test_bootstrap_intervals_are_not_computed_for_a_handful_of_customers():
    rng = np.random.default_rng(0)
    y = rng.gamma(1.0, 50.0, size=M.MIN_BOOTSTRAP_CUSTOMERS)
    models, baselines = {"model1": y * 0.9}, {"run_rate": y * 0.5}
    assert set(M.compare_to_baselines(y, models, baselines, n_resamples=50)) == {"model1"}
    two = y[:2]
    assert M.compare_to_baselines(two, {"model1": two * 0.9}, {"run_rate": two * 0.5}) == {}


def test_top_capture_by_hand():
    y = np.array([100.0, 0, 0, 0, 0, 0, 0, 0, 0, 50.0])
    p = np.arange(10.0)  # highest prediction on the last customer (50 of 150)
    assert M.top_capture(y, p, 0.1) == pytest.approx(50 / 150)
    assert M.top_capture(y, p, 0.2) == pytest.approx(50 / 150)  # 9th customer bought 0
    assert M.top_capture(y, y, 0.1) == pytest.approx(100 / 150)
    with pytest.raises(ValueError, match="fraction"):
        M.top_capture(y, p, 0.0)


def test_decile_calibration_groups():
    y = np.arange(20.0)
    p = np.arange(20.0) * 2
    table = M.decile_calibration(y, p)
    assert [row["decile"] for row in table] == list(range(1, 11))
    assert all(row["n"] == 2 for row in table)
    # decile 1 = the two highest predictions (38, 36) whose actuals are 19, 18
    assert table[0]["mean_predicted"] == pytest.approx(37.0)
    assert table[0]["mean_actual"] == pytest.approx(18.5)
    assert table[-1]["mean_actual"] == pytest.approx(0.5)


def test_decile_calibration_does_not_depend_on_the_order_of_tied_rows():
    y = np.array([0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0])
    p = np.array([0.0] * 6 + [9.0, 8.0, 7.0, 6.0])  # six customers tied at 0
    table = M.decile_calibration(y, p, bins=5)
    rev = M.decile_calibration(y[::-1], p[::-1], bins=5)
    assert table == rev
    # deciles 3-5 hold the six tied customers: each counts with the tie group's mean 50 / 6
    assert [row["mean_actual"] for row in table] == pytest.approx(
        [50.0, 0.0, 50 / 6, 50 / 6, 50 / 6]
    )


def test_decile_calibration_with_fewer_customers_than_groups_has_no_empty_group():
    table = M.decile_calibration([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert [row["n"] for row in table] == [1, 1, 1]
    assert [row["mean_actual"] for row in table] == [1.0, 2.0, 3.0]


def test_gain_curve_points():
    curve = M.gain_curve(Y, P, points=5)
    assert [pt["fraction_spend"] for pt in curve] == pytest.approx([0, 1 / 3, 1, 1, 1])
    assert curve[0]["fraction_customers"] == 0.0 and curve[-1]["fraction_customers"] == 1.0


def test_evaluate_keys_and_length_check():
    out = M.evaluate(Y, P)
    assert set(out) == {"r2", "mae", "rmse", "spearman", "gini", "top10_capture"}
    with pytest.raises(ValueError, match="differ in length"):
        M.evaluate([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        M.r2([], [])


def _noisy(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.gamma(0.3, 100.0, n)
    return y, y + rng.normal(0.0, 20.0, n), y + rng.normal(0.0, 60.0, n)


def test_bootstrap_difference_observed_delta_is_the_mean_of_the_cutoffs():
    cells = [_noisy(1), _noisy(2, 300)]
    out = M.bootstrap_difference(cells, n_resamples=300)
    by_hand = np.mean([M.r2(y, a) - M.r2(y, b) for y, a, b in cells])
    assert out["delta"] == pytest.approx(by_hand)
    assert out["low"] < out["delta"] < out["high"]


def test_bootstrap_difference_identical_predictions_give_zero():
    y, a, _ = _noisy(3)
    out = M.bootstrap_difference([(y, a, a)], n_resamples=200)
    assert out == {"delta": 0.0, "low": 0.0, "high": 0.0, "share_above_zero": 0.0}


def test_bootstrap_difference_separates_a_clearly_better_prediction():
    y, good, bad = _noisy(4)
    better = M.bootstrap_difference([(y, good, bad)], n_resamples=500)
    assert better["low"] > 0 and better["share_above_zero"] == 1.0
    # the same resamples read the other way round give the mirrored interval
    worse = M.bootstrap_difference([(y, bad, good)], n_resamples=500)
    assert worse["delta"] == pytest.approx(-better["delta"])
    assert worse["low"] == pytest.approx(-better["high"])
    assert worse["high"] == pytest.approx(-better["low"])


def test_bootstrap_difference_interval_covers_zero_for_exchangeable_predictions():
    rng = np.random.default_rng(5)
    y = rng.gamma(0.3, 100.0, 500)
    a, b = y + rng.normal(0.0, 40.0, 500), y + rng.normal(0.0, 40.0, 500)
    out = M.bootstrap_difference([(y, a, b)], n_resamples=1000)
    assert out["low"] < 0.0 < out["high"]


def test_bootstrap_difference_is_reproducible_and_refuses_bad_input():
    cells = [_noisy(6)]
    assert M.bootstrap_difference(cells, n_resamples=100, seed=1) == (
        M.bootstrap_difference(cells, n_resamples=100, seed=1)
    )
    y, a, b = _noisy(7)
    with pytest.raises(ValueError, match="at least one cutoff"):
        M.bootstrap_difference([])
    with pytest.raises(ValueError, match="differ in length"):
        M.bootstrap_difference([(y, a[:-1], b)])
    with pytest.raises(ValueError, match="constant"):
        M.bootstrap_difference([(np.ones(5), np.ones(5), np.zeros(5))])
    with pytest.raises(ValueError, match="confidence"):
        M.bootstrap_difference([(y, a, b)], confidence=1.0)
    with pytest.raises(ValueError, match="metric must be one of"):
        M.bootstrap_difference([(y, a, b)], metric="mae")


def test_gini_without_an_ordering_to_find_is_nan_without_a_numpy_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a tiny shop printed "invalid value encountered"
        assert math.isnan(M.normalized_gini([5.0], [3.0]))
        assert math.isnan(M.normalized_gini([2.0, 2.0], [1.0, 3.0]))
        # equal spends whose perfect area is rounding residue, not exactly 0: read inf and 1.0
        assert math.isnan(M.normalized_gini([0.1] * 10, np.arange(10.0)))
        rng = np.random.default_rng(0)
        for n in range(2, 40):
            assert math.isnan(M.normalized_gini([0.1] * n, rng.random(n))), n


def test_rank_based_gini_matches_the_gain_curve_with_ties():
    rng = np.random.default_rng(8)
    y = np.round(rng.gamma(0.3, 50.0, 200))
    p = np.round(np.clip(y + rng.normal(0.0, 30.0, 200), 0, None) / 20.0)  # many ties
    # the trapezoid area of the tie-averaged gain curve, computed directly
    ranked = M._ranked_spend(y, p)
    gains = np.concatenate([[0.0], np.cumsum(ranked) / ranked.sum()])
    area = np.sum((gains[1:] + gains[:-1]) / 2.0) / y.size - 0.5
    assert M._weighted_gain_area(np.ones((1, y.size)), y, p)[0] == pytest.approx(area)


def test_resample_weights_give_the_metrics_of_the_explicit_resamples():
    rng = np.random.default_rng(10)
    y = np.round(rng.gamma(0.3, 50.0, 150))
    p = np.round(np.clip(y + rng.normal(0.0, 30.0, 150), 0, None) / 20.0)  # ties, zeros
    picks = rng.integers(0, y.size, size=(6, y.size))
    w = np.stack([np.bincount(i, minlength=y.size) for i in picks]).astype(float)
    assert M._weighted_r2(w, y, p) == pytest.approx([M.r2(y[i], p[i]) for i in picks])
    assert M._weighted_gini(w, y, p) == pytest.approx(
        [M.normalized_gini(y[i], p[i]) for i in picks]
    )
    counts = M._resample_counts(np.random.default_rng(0), 40, 7)
    assert counts.shape == (7, 40) and (counts.sum(axis=1) == 40).all()


def test_bootstrap_gini_difference():
    y, good, bad = _noisy(9)
    out = M.bootstrap_difference([(y, good, bad)], metric="gini", n_resamples=300)
    assert out["delta"] == pytest.approx(M.normalized_gini(y, good) - M.normalized_gini(y, bad))
    assert 0 < out["low"] <= out["delta"] <= out["high"]


def test_compare_to_baselines_gives_each_model_against_each_baseline():
    rng = np.random.default_rng(1)
    y = rng.gamma(0.5, 40.0, 300)
    models = {"model1": y + rng.normal(0, 5, 300), "model2": y + rng.normal(0, 1, 300)}
    baselines = {"run_rate": y + rng.normal(0, 20, 300), "bgnbd_gg": y + 3.0}
    out = M.compare_to_baselines(y, models, baselines, n_resamples=200)
    assert set(out) == set(models)
    for model, by_baseline in out.items():
        assert set(by_baseline) == set(baselines)
        for baseline, gaps in by_baseline.items():
            for metric, fn in (("r2", M.r2), ("gini", M.normalized_gini)):
                by_hand = fn(y, models[model]) - fn(y, baselines[baseline])
                assert gaps[metric]["delta"] == pytest.approx(by_hand)
                assert gaps[metric]["low"] <= gaps[metric]["delta"] <= gaps[metric]["high"]
    # Model 2 is much closer to the truth than the noisy run-rate: clearly ahead on R²
    assert out["model2"]["run_rate"]["r2"]["low"] > 0


def test_compare_to_baselines_without_spend_to_compare_is_empty():
    zeros = np.zeros(6)
    assert M.compare_to_baselines(zeros, {"model1": zeros + 1}, {"run_rate": zeros}) == {}
    assert M.compare_to_baselines([], {"model1": []}, {"run_rate": []}) == {}


def test_the_gini_of_a_constant_prediction_is_exactly_zero():
    rng = np.random.default_rng(3)
    for _ in range(50):  # the averaged ranks used to leave float residue of either sign
        y = rng.gamma(0.5, 40.0, size=int(rng.integers(3, 400)))
        assert M.normalized_gini(y, np.full(y.size, rng.uniform(0, 100))) == 0.0
