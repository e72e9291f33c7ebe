"""Headline baseline figures from grouped counts: pure functions, no database, no streamlit."""

import math

import pandas as pd


def mean_sd_from_sums(n: float, total: float, total_sq: float) -> tuple[float | None, float | None]:
    """Mean and sample SD (n - 1 denominator, as R's sd() and pandas' std()) from n, sum, sum of
    squares. SD is None for fewer than two values."""
    if n <= 0:
        return None, None
    mean = total / n
    if n < 2:
        return mean, None
    # Clamp tiny negative values that floating point leaves when every value is equal.
    variance = max((total_sq - total * total / n) / (n - 1), 0.0)
    return mean, math.sqrt(variance)


def weighted_mean_sd(values: pd.Series, weights: pd.Series) -> tuple[float | None, float | None]:
    """Mean and sample SD of ``values`` each repeated ``weights`` times (grouped counts from SQL)."""
    mask = values.notna()
    values, weights = values[mask].astype(float), weights[mask].astype(float)
    n = float(weights.sum())
    return mean_sd_from_sums(n, float((values * weights).sum()), float((values**2 * weights).sum()))


def format_mean_sd(mean: float | None, sd: float | None, digits: int = 1) -> str:
    """``"62.3 (7.1)"``; a dash where nothing is known."""
    if mean is None:
        return "–"
    if sd is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({sd:.{digits}f})"
