"""Enrollment over time: pure functions over the daily counts of ``queries.enrollment``."""

import datetime as dt

import pandas as pd

WEEKLY_UP_TO_DAYS = 366  # a recruitment period up to a year reads best in weeks, longer in months


def choose_bin(first: dt.date, last: dt.date) -> str:
    """``"W"`` (weekly) for a period up to a year, else ``"M"`` (monthly)."""
    return "W" if (last - first).days <= WEEKLY_UP_TO_DAYS else "M"


def cumulative_accrual(
    daily: pd.DataFrame, *, freq: str | None = None, until: dt.date | None = None
) -> pd.DataFrame:
    """Screened and enrolled per period and cumulatively.

    Input columns: date, screened, enrolled (one row per day with any count).
    Columns: period_start (Timestamp), screened, enrolled, cumulative_screened,
    cumulative_enrolled. Periods with no one are kept (a flat stretch is information), and the
    periods run on to ``until`` (the data cut-off) so a stall before the cut-off shows.
    """
    columns = ["period_start", "screened", "enrolled", "cumulative_screened", "cumulative_enrolled"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    dates = pd.to_datetime(daily["date"])
    freq = freq or choose_bin(dates.min().date(), dates.max().date())
    # Weeks start on Monday, months on the 1st.
    period = dates.dt.to_period("W-SUN" if freq == "W" else "M").dt.start_time
    per_period = (
        daily.assign(period_start=period).groupby("period_start")[["screened", "enrolled"]].sum()
    )
    last = per_period.index.max()
    if until is not None:
        last = max(last, pd.Timestamp(until).to_period("W-SUN" if freq == "W" else "M").start_time)
    full = pd.date_range(per_period.index.min(), last, freq="W-MON" if freq == "W" else "MS")
    per_period = per_period.reindex(full, fill_value=0).rename_axis("period_start").reset_index()
    per_period["cumulative_screened"] = per_period["screened"].cumsum()
    per_period["cumulative_enrolled"] = per_period["enrolled"].cumsum()
    return per_period[columns]
