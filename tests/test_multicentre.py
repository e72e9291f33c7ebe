"""The multicentre Poisson-gamma recruitment model (issue #22) on studies simulated from known
parameters with staggered site openings: the fit recovers the parameters within their standard
errors, and the 80% interval of the completion day covers the truth in 72-88% of 200 studies."""

import math

import numpy as np
import pytest

from dashboard.metrics.multicentre import (
    Prediction,
    below_expected,
    calibrate,
    calibration_summary,
    fit_rates,
    predict,
    recruitment_bands,
)

SHAPE, MEAN_RATE = 2.0, 0.05  # subjects per site-day: 1.5 a month
RATE = SHAPE / MEAN_RATE


def _study(
    rng: np.random.Generator, *, sites: int = 40, target: int = 400, cut: float = 250.0
) -> dict[str, np.ndarray | float | int]:
    """A study simulated from the model: sites opening over the first 300 days, each with a rate
    from Gamma(SHAPE, RATE); the records up to ``cut`` and the true day, after it, that the
    ``target``-th subject is recruited."""
    opening = np.sort(rng.uniform(0, 300, size=sites))
    rates = rng.gamma(SHAPE, 1 / RATE, size=sites)
    is_open = opening < cut
    open_days = cut - opening[is_open]
    enrolled = rng.poisson(rates[is_open] * open_days)
    remaining = target - int(enrolled.sum())
    # The rest of the same Poisson processes: the remaining-th arrival of a unit-rate process,
    # through the true cumulative intensity after the cut.
    later = opening[~is_open] - cut
    knots = np.concatenate([[0.0], later])
    slopes = rates[is_open].sum() + np.concatenate([[0.0], np.cumsum(rates[~is_open])])
    cumulative = np.concatenate([[0.0], np.cumsum(slopes[:-1] * np.diff(knots))])
    needed = rng.gamma(remaining, 1.0)
    piece = int((cumulative < needed).sum()) - 1
    truth = knots[piece] + (needed - cumulative[piece]) / slopes[piece]
    return {
        "enrolled": enrolled,
        "open_days": open_days,
        "openings": later,
        "remaining": remaining,
        "truth": float(truth),
    }


def _open_sites(seed: int, sites: int, days: float) -> tuple[np.ndarray, np.ndarray]:
    """``sites`` sites open ``days`` each at the cut-off: their days open and subjects."""
    rng = np.random.default_rng(seed)
    open_days = np.full(sites, days)
    return rng.poisson(rng.gamma(SHAPE, 1 / RATE, size=sites) * open_days), open_days


def test_the_fit_recovers_the_parameters_within_their_standard_errors() -> None:
    # 60 studies of 300 sites: the fitted log shape and log rate, in standard errors from the
    # truth, centre on 0 with a spread of about 1, and 95% of them fall within 2.
    rng = np.random.default_rng(2007)
    scores = []
    for _ in range(60):
        open_days = rng.uniform(100, 500, size=300)
        enrolled = rng.poisson(rng.gamma(SHAPE, 1 / RATE, size=300) * open_days)
        fit = fit_rates(enrolled, open_days)
        shape_se, rate_se = fit.standard_errors()
        assert not fit.common_rate and 0 < shape_se < 0.5 and 0 < rate_se < 0.5
        scores.append(
            (
                (math.log(fit.shape) - math.log(SHAPE)) / shape_se,
                (math.log(fit.rate) - math.log(RATE)) / rate_se,
            )
        )
        assert fit.mean_rate == pytest.approx(MEAN_RATE, rel=0.15)
    z = np.array(scores)
    assert np.all(np.abs(z.mean(axis=0)) < 0.4)
    assert np.all((z.std(axis=0) > 0.7) & (z.std(axis=0) < 1.3))
    assert np.mean(np.abs(z) < 2) >= 0.9


def test_sites_recruiting_alike_are_fitted_as_one_rate() -> None:
    # Counts spread less than Poisson counts would (each site at its expected count): no
    # between-site variation to fit, so one rate, the pooled one.
    open_days = np.linspace(100, 500, 50)
    enrolled = np.round(MEAN_RATE * open_days)
    fit = fit_rates(enrolled, open_days)
    assert fit.common_rate
    assert fit.mean_rate == pytest.approx(enrolled.sum() / open_days.sum(), rel=1e-3)
    assert fit.covariance[0, 0] == 0 and fit.covariance[1, 1] > 0


def test_the_80_percent_interval_covers_the_truth_in_72_to_88_percent() -> None:
    rng = np.random.default_rng(22)
    covered, errors = 0, []
    for seed in range(200):
        study = _study(rng)
        fit = fit_rates(study["enrolled"], study["open_days"])
        prediction = predict(
            fit,
            study["enrolled"],
            study["open_days"],
            int(study["remaining"]),
            opening_days=study["openings"],
            draws=2_000,
            seed=seed,
        )
        low, median, high = prediction.completion_quantiles((0.1, 0.5, 0.9))
        covered += low <= float(study["truth"]) <= high
        errors.append(median - float(study["truth"]))
    assert 0.72 * 200 <= covered <= 0.88 * 200, covered
    assert abs(float(np.median(errors))) < 10  # days: no systematic lead or lag


def test_a_site_far_below_the_others_has_a_small_probability() -> None:
    enrolled, open_days = _open_sites(3, 60, 365.0)
    fit = fit_rates(enrolled, open_days)
    assert below_expected(fit, 0, 365.0) < 0.05
    assert below_expected(fit, int(np.median(enrolled)), 365.0) == pytest.approx(0.5, abs=0.1)


def test_too_little_to_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="two open sites"):
        fit_rates([3], [100])
    with pytest.raises(ValueError, match="no site has recruited"):
        fit_rates([0, 0], [10, 20])


def test_the_intensity_is_piecewise_linear_between_openings() -> None:
    # One draw: 1 subject a day from the cut-off, 3 a day once a site opens on day 10.
    prediction = Prediction(
        completion_days=np.array([20.0]),
        knots=np.array([0.0, 10.0]),
        cumulative=np.array([[0.0, 10.0]]),
        slopes=np.array([[1.0, 3.0]]),
    )
    assert prediction.expected_by(5.0).tolist() == [5.0]
    assert prediction.expected_by(15.0).tolist() == [25.0]


def test_the_prediction_follows_the_sites_and_the_openings() -> None:
    enrolled, open_days = _open_sites(5, 20, 200.0)
    fit = fit_rates(enrolled, open_days)
    alone = predict(fit, enrolled, open_days, 100, seed=1)
    helped = predict(fit, enrolled, open_days, 100, opening_days=[0.0] * 20, seed=1)
    # Twenty more sites from the cut-off: about twice the pace, so about half the time.
    ratio = np.median(helped.completion_days) / np.median(alone.completion_days)
    assert 0.4 < ratio < 0.65
    # The median pace of the open sites is what they did: 100 subjects at their summed rate.
    pace = enrolled.sum() / 200.0
    assert np.median(alone.completion_days) == pytest.approx(100 / pace, rel=0.1)


def test_the_bands_widen_with_time_and_centre_on_the_median_completion() -> None:
    enrolled, open_days = _open_sites(11, 30, 300.0)
    fit = fit_rates(enrolled, open_days)
    prediction = predict(fit, enrolled, open_days, 200, seed=2)
    median_day = float(np.median(prediction.completion_days))
    bands = recruitment_bands(prediction, [30.0, 90.0, median_day])
    assert list(bands.columns) == ["day", "q10", "q25", "q50", "q75", "q90"]
    quantiles = bands[["q10", "q25", "q50", "q75", "q90"]].to_numpy()
    assert np.all(np.diff(quantiles, axis=1) >= 0)  # in order at each day
    widths = quantiles[:, -1] - quantiles[:, 0]
    assert np.all(np.diff(widths) > 0)  # wider further out
    # On the median completion day, the median count is about the subjects still needed.
    assert quantiles[-1, 2] == pytest.approx(200, rel=0.05)


def _site_history(rng: np.random.Generator, sites: int = 30) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sites opening over the first 200 days, each recruiting as a Poisson process of its own
    rate until day 900: the opening days and each site's enrollment days."""
    openings = np.sort(rng.uniform(0, 200, size=sites))
    enrollments = []
    for opened, rate in zip(openings, rng.gamma(SHAPE, 1 / RATE, size=sites), strict=True):
        count = rng.poisson(rate * (900 - opened))
        enrollments.append(np.sort(rng.uniform(opened, 900, size=count)))
    return openings, enrollments


def test_the_calibration_table_equals_a_forecast_at_each_cut() -> None:
    rng = np.random.default_rng(13)
    openings, enrollments = _site_history(rng)
    every = np.sort(np.concatenate(enrollments))
    target = 600
    truth = every[target - 1]
    cuts = [100.0, 250.0, 400.0, float(truth) + 1]
    horizon = float(truth) + 30
    table = calibrate(openings, enrollments, target, cuts, horizon=horizon, draws=1_000, seed=5)
    assert list(table["cut"]) == cuts and set(table["truth"]) == {truth}
    by_horizon = min(sum(int(np.sum(e <= horizon)) for e in enrollments), target)
    for index, row in table.iterrows():
        cut = float(row["cut"])
        is_open = openings <= cut
        enrolled = np.array(
            [np.sum(e <= cut) for e, o in zip(enrollments, is_open, strict=True) if o]
        )
        assert row["sites_open"] == is_open.sum() and row["enrolled"] == enrolled.sum()
        if enrolled.sum() >= target:  # the last cut: the target was reached, no forecast
            assert np.isnan(row["median"]) and np.isnan(row["covered"])
            continue
        fit = fit_rates(enrolled, cut - openings[is_open])
        again = predict(
            fit,
            enrolled,
            cut - openings[is_open],
            target - int(enrolled.sum()),
            opening_days=openings[~is_open] - cut,
            draws=1_000,
            seed=5 + int(index),  # type: ignore[call-overload]
        )
        low, median, high = (cut + q for q in again.completion_quantiles((0.1, 0.5, 0.9)))
        assert (row["low"], row["median"], row["high"]) == pytest.approx((low, median, high))
        assert row["covered"] == float(low <= truth <= high)
        assert row["error_days"] == pytest.approx(median - truth)
        # Enrolled by the horizon: the draws' Poisson counts from the cut on, with the cut's seed.
        counts = np.random.default_rng(5 + int(index)).poisson(  # type: ignore[call-overload]
            np.maximum(again.expected_by(horizon - cut), 0.0)
        )
        low_n, median_n, high_n = (
            min(enrolled.sum() + np.quantile(counts, q), target) for q in (0.1, 0.5, 0.9)
        )
        assert (
            row["by_horizon_low"],
            row["by_horizon_median"],
            row["by_horizon_high"],
        ) == pytest.approx((low_n, median_n, high_n))
        assert row["by_horizon_truth"] == by_horizon
        assert row["by_horizon_covered"] == float(low_n <= by_horizon <= high_n)
    assessed, coverage, error = calibration_summary(table)
    forecasts = table[table["covered"].notna()]
    assert assessed == 3 == len(forecasts)
    assert coverage == pytest.approx(forecasts["covered"].mean())
    assert error == pytest.approx(float(np.median(np.abs(forecasts["error_days"]))))
