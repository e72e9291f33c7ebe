"""Table 1 statistics from SQL sums: pure functions, no database, no streamlit."""

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


def summarise_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """Add ``mean`` and ``sd`` columns to the output of ``queries.baseline.numeric_baseline_sums``."""
    out = sums.copy()
    stats = [
        mean_sd_from_sums(float(r["n"]), float(r["total"]), float(r["total_sq"]))
        for r in out.to_dict("records")
    ]
    out["mean"] = [m for m, _ in stats]
    out["sd"] = [s for _, s in stats]
    return out


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


def age_bands(demographics: pd.DataFrame, width: int = 5) -> pd.DataFrame:
    """Enrolled subjects per age band of ``width`` years, by sex.

    Input: the columns of ``queries.baseline.demographic_counts`` (sex, age, subjects).
    Columns: band_start, band (label "45-49"), sex, subjects.
    """
    known = demographics.dropna(subset=["age"])
    if known.empty:
        return pd.DataFrame(columns=["band_start", "band", "sex", "subjects"])
    band_start = (known["age"].astype(float) // width * width).astype(int)
    grouped = (
        known.assign(band_start=band_start, sex=known["sex"].fillna("Unknown"))
        .groupby(["band_start", "sex"])["subjects"]
        .sum()
        .reset_index()
    )
    grouped["band"] = grouped["band_start"].map(lambda s: f"{s}-{s + width - 1}")
    return grouped[["band_start", "band", "sex", "subjects"]]


def characteristic_label(test: str, location: str | None, unit: str | None) -> str:
    """``"Kellgren-Lawrence Grade, left knee"``, ``"Body Mass Index (kg/m2)"``."""
    label = test
    if isinstance(location, str) and location:
        label += f", {location.lower()}"
    if isinstance(unit, str) and unit:
        label += f" ({unit})"
    return label


def baseline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The display table of numeric baseline findings (output of ``summarise_sums``).

    Columns: Characteristic, n, Mean (SD), Min–max.
    """
    records = summary.to_dict("records")
    return pd.DataFrame(
        {
            "Characteristic": [
                characteristic_label(r["test"], r["location"], r["unit"]) for r in records
            ],
            "n": summary["n"].astype(int),
            "Mean (SD)": [format_mean_sd(r["mean"], r["sd"]) for r in records],
            "Min–max": [f"{r['minimum']:g}–{r['maximum']:g}" for r in records],
        }
    )
