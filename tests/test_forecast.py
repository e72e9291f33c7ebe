"""The accrual forecast against known answers: closed forms, numeric integration, simulation, the pilot."""

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyreadstat
import pytest
from scipy import integrate, stats  # type: ignore[import-untyped]

from dashboard.metrics.forecast import (
    DAYS_PER_MONTH,
    forecast_completion,
    waiting_time_quantile,
)
from tests.conftest import reference_absent

START = dt.date(2024, 1, 1)
CUTOFF = dt.date(2024, 4, 9)  # (CUTOFF - START).days == 99: 100 days observed, start day included


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def ten_enrollments() -> list[dt.date]:
    """Ten enrollments between START and CUTOFF, two on one day."""
    return [START + days(d) for d in (3, 10, 10, 25, 40, 52, 61, 77, 90, 99)]


# --- calibration on simulated studies ----------------------------------------------------------


def simulate_studies(
    count: int, seed: int
) -> list[tuple[list[dt.date], int, dt.date, bool, dt.date]]:
    """Constant-rate Poisson studies: (enrollment dates, target, cut-off, start known, true date).

    Rates log-uniform in 0.05-2 a day, targets 40-300, the cut-off on the day of the enrollment
    that brings 20-70% of the target; every other study gives the start, the rest leave it out.
    The true completion date is the day of the simulated target-th arrival.
    """
    rng = np.random.default_rng(seed)
    studies = []
    for index in range(count):
        rate = float(np.exp(rng.uniform(math.log(0.05), math.log(2.0))))
        target = int(rng.integers(40, 301))
        share = float(rng.uniform(0.2, 0.7))
        arrival_times = np.cumsum(rng.exponential(1.0 / rate, size=target))
        dates = [
            START + days(int(t)) for t in arrival_times
        ]  # arrival at time t falls on day floor(t)
        cutoff = dates[round(share * target) - 1]
        studies.append((dates, target, cutoff, index % 2 == 0, dates[target - 1]))
    return studies


def test_interval_is_calibrated_on_simulated_constant_rate_studies() -> None:
    covered = above_median = 0
    studies = simulate_studies(200, seed=20240604)
    for dates, target, cutoff, start_known, true_date in studies:
        forecast = forecast_completion(
            dates, target=target, cutoff=cutoff, start=START if start_known else None
        )
        assert forecast.status == "ok"
        assert forecast.lower_date is not None and forecast.upper_date is not None
        assert forecast.median_date is not None
        covered += forecast.lower_date <= true_date <= forecast.upper_date
        above_median += true_date > forecast.median_date
    # Measured with this seed: 167 of 200 covered, 90 above the median (over seeds 0-29: 148-171,
    # mean 159.8, i.e. 79.9%).
    assert 144 <= covered <= 176  # 72-88%
    assert 70 <= above_median <= 130  # 35-65%


# --- known answers -----------------------------------------------------------------------------


def test_single_remaining_enrollment_matches_the_lomax_closed_form() -> None:
    # 10 enrollments in 100 days, prior weight 0: rate ~ Gamma(10, 100). With one enrollment left
    # W | λ ~ Exp(λ), so P(W > w) = (β / (β + w))^α (Lomax) and the q-quantile is
    # β((1 - q)^(-1/α) - 1): median 100(2^0.1 - 1) = 7.18 days, 10th percentile 1.06, 90th 25.89.
    # The date is the cut-off plus the ceiling of those: +8, +2, +26 days.
    forecast = forecast_completion(ten_enrollments(), target=11, cutoff=CUTOFF, start=START)
    assert forecast.status == "ok"
    assert forecast.enrolled == 10
    assert forecast.observed_days == 100.0
    assert forecast.rate_per_month == pytest.approx(10 / 100 * 30.4375)
    for q, expected_days in ((0.5, 7.177346), (0.1, 1.059175), (0.9, 25.892541)):
        assert waiting_time_quantile(q, remaining=1, alpha=10, beta=100) == pytest.approx(
            100 * ((1 - q) ** (-1 / 10) - 1)
        )
        assert 100 * ((1 - q) ** (-1 / 10) - 1) == pytest.approx(expected_days, abs=1e-6)
    assert forecast.median_date == dt.date(2024, 4, 17)
    assert forecast.lower_date == dt.date(2024, 4, 11)
    assert forecast.upper_date == dt.date(2024, 5, 5)


@pytest.mark.parametrize(("remaining", "alpha", "beta"), [(30, 10.0, 100.0), (69, 131.0, 360.0)])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_waiting_time_quantile_matches_numeric_integration(
    remaining: int, alpha: float, beta: float, q: float
) -> None:
    # Independently of the Beta transform: P(W <= w) = ∫ GammaCDF(w; m, λ) GammaPDF(λ; α, β) dλ,
    # integrated numerically; at the function's q-quantile it must equal q.
    w = waiting_time_quantile(q, remaining=remaining, alpha=alpha, beta=beta)

    def integrand(rate: float) -> float:
        return float(
            stats.gamma.cdf(w, remaining, scale=1 / rate)
            * stats.gamma.pdf(rate, alpha, scale=1 / beta)
        )

    upper_rate = float(stats.gamma.ppf(1 - 1e-12, alpha, scale=1 / beta))
    probability, _ = integrate.quad(integrand, 0.0, upper_rate, limit=200)
    assert probability == pytest.approx(q, abs=1e-6)


def test_forecast_dates_are_the_waiting_time_quantiles_after_the_cutoff() -> None:
    # 10 enrollments in 100 days, target 40: the date is the cut-off plus the ceiling of the
    # quantile of W = β·B/(1 - B), B ~ Beta(30, 10), taken from scipy directly.
    forecast = forecast_completion(ten_enrollments(), target=40, cutoff=CUTOFF, start=START)
    for q, date in (
        (0.5, forecast.median_date),
        (0.1, forecast.lower_date),
        (0.9, forecast.upper_date),
    ):
        b = stats.beta.ppf(q, 30, 10)
        assert date == CUTOFF + days(math.ceil(100 * b / (1 - b)))


def test_without_start_the_first_enrollment_opens_the_window() -> None:
    # 6 enrollments, the first on START: 5 arrivals after it in (CUTOFF - START).days + 0.5 = 99.5
    # days (the first taken at mid-day), so the posterior mean rate is 5 / 99.5 a day.
    dates = [START + days(d) for d in (0, 20, 40, 60, 80, 99)]
    forecast = forecast_completion(dates, target=20, cutoff=CUTOFF)
    assert forecast.status == "ok"
    assert forecast.observed_days == 99.5
    assert forecast.rate_per_month == pytest.approx(5 / 99.5 * DAYS_PER_MONTH)
    b = stats.beta.ppf(0.5, 14, 5)
    assert forecast.median_date == CUTOFF + days(math.ceil(99.5 * b / (1 - b)))


def test_prior_weight_adds_the_planned_schedule_as_pseudo_data() -> None:
    # Gajewski's prior Gamma(nP, TP): target n = 40 planned at 0.2 a day, so T = 200 days; with
    # P = 0.5 the posterior after 10 in 100 days is Gamma(10 + 20, 100 + 100), mean 0.15 a day.
    forecast = forecast_completion(
        ten_enrollments(),
        target=40,
        cutoff=CUTOFF,
        start=START,
        prior_rate_per_day=0.2,
        prior_weight=0.5,
    )
    assert forecast.rate_per_month == pytest.approx(30 / 200 * DAYS_PER_MONTH)
    b = stats.beta.ppf(0.5, 30, 30)
    assert forecast.median_date == CUTOFF + days(math.ceil(200 * b / (1 - b)))
    # Without prior_rate_per_day the plan is the target over start..planned_end inclusive:
    # 40 over 200 days is again 0.2 a day.
    from_planned_end = forecast_completion(
        ten_enrollments(),
        target=40,
        cutoff=CUTOFF,
        start=START,
        planned_end=START + days(199),
        prior_weight=0.5,
    )
    assert from_planned_end.rate_per_month == pytest.approx(forecast.rate_per_month)
    assert from_planned_end.median_date == forecast.median_date


def test_wider_interval_contains_the_narrower() -> None:
    narrow = forecast_completion(ten_enrollments(), target=40, cutoff=CUTOFF, start=START)
    wide = forecast_completion(
        ten_enrollments(), target=40, cutoff=CUTOFF, start=START, interval=0.95
    )
    assert narrow.lower_date and narrow.median_date and narrow.upper_date
    assert wide.lower_date and wide.upper_date
    assert wide.lower_date <= narrow.lower_date < narrow.median_date < narrow.upper_date
    assert narrow.upper_date <= wide.upper_date
    assert wide.interval == 0.95


# --- boundaries --------------------------------------------------------------------------------


def test_min_enrolled_boundary() -> None:
    dates = ten_enrollments()
    statuses = [
        forecast_completion(dates[:n], target=40, cutoff=CUTOFF, start=START, min_enrolled=5).status
        for n in (4, 5, 6)
    ]
    assert statuses == ["too_few", "ok", "ok"]
    too_few = forecast_completion(dates[:4], target=40, cutoff=CUTOFF, start=START)
    assert too_few.message == "Too few enrollments to forecast (4; at least 5 are needed)."
    assert too_few.enrolled == 4
    assert too_few.rate_per_month is None
    assert too_few.median_date is too_few.lower_date is too_few.upper_date is None
    empty = forecast_completion([], target=40, cutoff=CUTOFF)
    assert (empty.status, empty.enrolled, empty.observed_days) == ("too_few", 0, 0.0)


def test_target_reached_exactly_and_exceeded() -> None:
    dates = ten_enrollments()
    exact = forecast_completion(dates, target=10, cutoff=CUTOFF, start=START)
    assert exact.status == "target_reached"
    assert exact.reached_on == START + days(99)
    assert exact.message == "The target of 10 was reached on 2024-04-09."
    # Unsorted, with a repeated day: the 3rd enrollment is the second of the two on day 10.
    exceeded = forecast_completion(list(reversed(dates)), target=3, cutoff=CUTOFF)
    assert exceeded.status == "target_reached"
    assert exceeded.reached_on == START + days(10)
    assert exceeded.enrolled == 10
    assert exceeded.median_date is None and exceeded.required_rate_per_month is None
    one_short = forecast_completion(dates, target=11, cutoff=CUTOFF, start=START)
    assert one_short.status == "ok" and one_short.reached_on is None


def test_no_target() -> None:
    forecast = forecast_completion(ten_enrollments(), target=None, cutoff=CUTOFF, start=START)
    assert forecast.status == "no_target"
    assert forecast.message == "No enrollment target is set, so there is nothing to forecast."
    assert forecast.enrolled == 10
    assert forecast.median_date is None and forecast.required_rate_per_month is None


@pytest.mark.parametrize(
    ("planned_end", "expected"),
    [
        (CUTOFF - days(1), None),  # past: no time left
        (CUTOFF, None),  # on the cut-off: no day left after it
        (CUTOFF + days(1), 30 / (1 / 30.4375)),  # one day left
        (CUTOFF + days(90), 30 / (90 / 30.4375)),  # 30 remaining over 90 days = 10.15 a month
    ],
)
def test_required_rate_by_planned_end(planned_end: dt.date, expected: float | None) -> None:
    forecast = forecast_completion(
        ten_enrollments(), target=40, cutoff=CUTOFF, start=START, planned_end=planned_end
    )
    assert forecast.status == "ok"
    if expected is None:
        assert forecast.required_rate_per_month is None
    else:
        assert forecast.required_rate_per_month == pytest.approx(expected)


def test_required_rate_is_given_even_when_too_few_to_forecast() -> None:
    forecast = forecast_completion(
        ten_enrollments()[:3], target=40, cutoff=CUTOFF, start=START, planned_end=CUTOFF + days(90)
    )
    assert forecast.status == "too_few"
    assert forecast.required_rate_per_month == pytest.approx(37 / (90 / 30.4375))


def test_enrollments_after_the_cutoff_are_ignored() -> None:
    dates = ten_enrollments()
    later = [CUTOFF + days(1), CUTOFF + days(1), CUTOFF + days(30)]
    assert forecast_completion(
        dates + later, target=40, cutoff=CUTOFF, start=START
    ) == forecast_completion(dates, target=40, cutoff=CUTOFF, start=START)
    # They do not reach the target either.
    assert forecast_completion(dates + later, target=12, cutoff=CUTOFF).status == "ok"


def test_single_day_of_enrollments() -> None:
    same_day = [CUTOFF] * 6
    forecast = forecast_completion(same_day, target=40, cutoff=CUTOFF)
    assert forecast.status == "too_few"
    assert forecast.message == (
        "All 6 enrollments fall on one day (2024-04-09); a rate cannot be estimated from a single day."
    )
    assert forecast_completion(same_day, target=40, cutoff=CUTOFF, start=CUTOFF).status == "too_few"
    # The same burst followed by 30 quiet days is data: 5 arrivals in 30.5 days.
    later = forecast_completion(same_day, target=40, cutoff=CUTOFF + days(30))
    assert later.status == "ok"
    assert later.rate_per_month == pytest.approx(5 / 30.5 * DAYS_PER_MONTH)


def test_start_only_with_min_enrolled_one_needs_a_second_enrollment() -> None:
    forecast = forecast_completion([START], target=10, cutoff=CUTOFF, min_enrolled=1)
    assert forecast.status == "too_few"
    assert forecast.message == "Too few enrollments to forecast (1; at least 2 are needed)."
    with_start = forecast_completion([START], target=10, cutoff=CUTOFF, start=START, min_enrolled=1)
    assert with_start.status == "ok"


@pytest.mark.parametrize(
    "arguments",
    [
        {"target": 0},
        {"interval": 1.0},
        {"interval": 0.0},
        {"prior_weight": 1.5},
        {"prior_weight": 0.5},  # no prior rate and no planned end to derive one from
        {"min_enrolled": 0},
        {"start": CUTOFF + days(1)},
        {"start": START + days(4)},  # after the first enrollment
    ],
)
def test_arguments_no_caller_should_pass(arguments: dict[str, object]) -> None:
    keywords: dict[str, object] = {"target": 40, "cutoff": CUTOFF, "start": START} | arguments
    with pytest.raises(ValueError):
        forecast_completion(ten_enrollments(), **keywords)  # type: ignore[arg-type]


# --- the CDISC pilot ---------------------------------------------------------------------------


def test_cdisc_pilot_forecast_at_mid_2013(shared_data: Path) -> None:
    path = shared_data / "sdtm" / "cdiscpilot01" / "dm.xpt"
    if not path.is_file():
        reference_absent(f"{path} is absent")
    dm, _ = pyreadstat.read_xport(str(path), encoding="cp1252")
    randomized = dm[(dm["ARMCD"] != "Scrnfail") & (dm["RFSTDTC"].str.strip() != "")]
    cutoff = dt.date(2013, 6, 30)
    all_dates = sorted(dt.date.fromisoformat(v) for v in randomized["RFSTDTC"])
    actual_200th = all_dates[199]
    assert actual_200th == dt.date(2013, 12, 9)
    dates = [d for d in all_dates if d <= cutoff]
    assert len(dates) == 131
    forecast = forecast_completion(
        dates,
        target=200,
        cutoff=cutoff,
        start=dt.date(2012, 7, 6),  # TS SSTDTC
    )
    assert forecast.status == "ok"
    # 131 in 360 days (2012-07-06 to 2013-06-30): 11.1 a month. The model gives the 200th
    # enrollment a median of 2014-01-06 and an 80% interval 2013-12-03 to 2014-02-14; the actual
    # 200th enrollment, 2013-12-09, lies inside it, near the lower end (accrual sped up).
    assert forecast.rate_per_month == pytest.approx(131 / 360 * DAYS_PER_MONTH)
    assert forecast.median_date == dt.date(2014, 1, 6)
    assert (forecast.lower_date, forecast.upper_date) == (
        dt.date(2013, 12, 3),
        dt.date(2014, 2, 14),
    )
    assert forecast.lower_date is not None and forecast.upper_date is not None
    assert forecast.lower_date <= actual_200th <= forecast.upper_date
