"""Pure metric functions against independent computations (statistics module, hand tables)."""

import datetime as dt
import statistics

import pandas as pd
import pytest

from dashboard.metrics.baseline import format_mean_sd, mean_sd_from_sums, weighted_mean_sd
from dashboard.metrics.enrollment import WEEKLY_UP_TO_DAYS, choose_bin, cumulative_accrual


def test_mean_sd_from_sums_matches_statistics() -> None:
    values = [21.7, 24.3, 29.4, 25.0, 22.2, 27.9]
    mean, sd = mean_sd_from_sums(len(values), sum(values), sum(v * v for v in values))
    assert mean == pytest.approx(statistics.mean(values))
    assert sd == pytest.approx(statistics.stdev(values))  # n - 1 denominator, as R's sd()


def test_mean_sd_edge_cases() -> None:
    assert mean_sd_from_sums(0, 0, 0) == (None, None)
    assert mean_sd_from_sums(1, 5.0, 25.0) == (5.0, None)
    # All values equal: floating point must not give a negative variance.
    mean, sd = mean_sd_from_sums(3, 3 * 0.1, 3 * 0.1 * 0.1)
    assert mean == pytest.approx(0.1) and sd == pytest.approx(0.0, abs=1e-9)


def test_weighted_mean_sd_equals_expanded_values() -> None:
    ages = pd.Series([50.0, 61.0, None, 70.0])
    counts = pd.Series([2, 1, 4, 3])
    expanded = [50.0] * 2 + [61.0] + [70.0] * 3
    mean, sd = weighted_mean_sd(ages, counts)
    assert mean == pytest.approx(statistics.mean(expanded))
    assert sd == pytest.approx(statistics.stdev(expanded))


def test_format_mean_sd() -> None:
    assert format_mean_sd(62.345, 7.06) == "62.3 (7.1)"
    assert format_mean_sd(5.0, None) == "5.0"
    assert format_mean_sd(None, None) == "–"


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "W"),
        (WEEKLY_UP_TO_DAYS - 1, "W"),
        (WEEKLY_UP_TO_DAYS, "W"),
        (WEEKLY_UP_TO_DAYS + 1, "M"),
    ],
)
def test_choose_bin_boundary(days: int, expected: str) -> None:
    start = dt.date(2024, 1, 1)
    assert choose_bin(start, start + dt.timedelta(days=days)) == expected


def test_cumulative_accrual_weekly_fills_gaps_and_runs_to_cutoff() -> None:
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-01-06", "2025-01-08", "2025-01-22"]),  # Mon, Wed, Wed
            "screened": [2, 1, 3],
            "enrolled": [0, 1, 2],
        }
    )
    accrual = cumulative_accrual(daily, until=dt.date(2025, 2, 2))
    assert accrual["period_start"].dt.strftime("%Y-%m-%d").tolist() == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
        "2025-01-27",
    ]
    assert accrual["screened"].tolist() == [3, 0, 3, 0]
    assert accrual["cumulative_screened"].tolist() == [3, 3, 6, 6]
    assert accrual["cumulative_enrolled"].tolist() == [1, 1, 3, 3]


def test_cumulative_accrual_monthly() -> None:
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime(["2023-01-31", "2024-03-01"]),
            "screened": [1, 1],
            "enrolled": [1, 0],
        }
    )
    accrual = cumulative_accrual(daily)
    assert len(accrual) == 15  # Jan 2023 .. Mar 2024
    assert accrual.iloc[-1][["cumulative_screened", "cumulative_enrolled"]].tolist() == [2, 1]
    assert cumulative_accrual(daily.iloc[0:0]).empty
