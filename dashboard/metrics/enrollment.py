"""Enrollment over time: pure functions over the daily counts of ``queries.enrollment``."""

import datetime as dt
from dataclasses import replace

import pandas as pd

from dashboard.metrics.forecast import AccrualForecast, forecast_completion

WEEKLY_UP_TO_DAYS = 366  # a recruitment period up to a year reads best in weeks, longer in months
# The periods must stay few whatever the dates (a chart of more than 5,000 rows is refused by
# altair): weeks only while the chart, run on to the cut-off, spans at most ten years (520 weeks),
# months up to twenty years (240), years beyond (the plausible years of results.dates: about 230).
WEEKS_AT_MOST_DAYS = 3653
MONTHLY_UP_TO_DAYS = 7305


def choose_bin(first: dt.date, last: dt.date, *, until: dt.date | None = None) -> str:
    """``"W"`` (weekly) for a recruitment period up to a year, ``"M"`` (monthly) for longer ones,
    ``"Y"`` (yearly) where the chart (from ``first`` to ``last`` or ``until``, the cut-off) spans
    more than twenty years; weeks give way to months where the chart spans more than ten."""
    span = (max(last, until or last) - first).days
    if span > MONTHLY_UP_TO_DAYS:
        return "Y"
    if (last - first).days <= WEEKLY_UP_TO_DAYS and span <= WEEKS_AT_MOST_DAYS:
        return "W"
    return "M"


# Each bin's period (what a date falls in) and the start of every period in a range.
_PERIODS = {"W": ("W-SUN", "W-MON"), "M": ("M", "MS"), "Y": ("Y", "YS")}


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
    freq = freq or choose_bin(dates.min().date(), dates.max().date(), until=until)
    # Weeks start on Monday, months on the 1st, years on 1 January.
    period_of, starts = _PERIODS[freq]
    period = dates.dt.to_period(period_of).dt.start_time
    per_period = (
        daily.assign(period_start=period).groupby("period_start")[["screened", "enrolled"]].sum()
    )
    last = per_period.index.max()
    if until is not None:
        last = max(last, pd.Timestamp(until).to_period(period_of).start_time)
    full = pd.date_range(per_period.index.min(), last, freq=starts)
    per_period = per_period.reindex(full, fill_value=0).rename_axis("period_start").reset_index()
    per_period["cumulative_screened"] = per_period["screened"].cumsum()
    per_period["cumulative_enrolled"] = per_period["enrolled"].cumsum()
    return per_period[columns]


DAYS_PER_MONTH = 30.4375  # 365.25 / 12: a month as rates use it
# Three months without an enrollment: long past the gaps of a slow but running study.
STALLED_AFTER_DAYS = 90


def per_month(count: float, days: float) -> float | None:
    """A count over ``days`` as a rate per month; None over no time."""
    return count / days * DAYS_PER_MONTH if days > 0 else None


def recent_and_overall_rate(
    daily: pd.DataFrame, *, cutoff: dt.date, start: dt.date | None, window_days: int = 30
) -> tuple[float | None, float | None]:
    """Enrollments per month in the last ``window_days`` up to the cut-off, and overall.

    ``daily``: the output of ``queries.enrollment.daily_accrual``. Overall runs from ``start``
    (the planned start where known) or else the first enrollment, to the cut-off.
    """
    enrolled = daily[daily["enrolled"] > 0]
    if enrolled.empty:
        return None, None
    dates = pd.to_datetime(enrolled["date"]).dt.date
    in_window = enrolled[dates > cutoff - dt.timedelta(days=window_days)]
    in_window = in_window[pd.to_datetime(in_window["date"]).dt.date <= cutoff]
    first = start or dates.min()
    overall_days = (cutoff - first).days + 1
    total = int(enrolled.loc[dates <= cutoff, "enrolled"].sum())
    return (
        per_month(int(in_window["enrolled"].sum()), window_days),
        per_month(total, overall_days),
    )


def target_in_scope(
    study_target: int | None, sites: pd.DataFrame, scope: tuple[str, ...] | None
) -> int | None:
    """The enrollment target of what is in view: the study's for the whole study; for some sites,
    the sum of their own targets (``sites``: site_id, planned_enrollment) where every one of them
    has one, else none (the study's target is no site's)."""
    if scope is None:
        return study_target
    chosen = sites[sites["site_id"].astype(str).isin(scope)]["planned_enrollment"]
    if chosen.empty or chosen.isna().any():
        return None
    return int(chosen.sum())


def site_table(by_site: pd.DataFrame, *, cutoff: dt.date | None) -> pd.DataFrame:
    """The per-site accrual table from ``queries.enrollment.enrollment_by_site``.

    Columns: site_id, name, country, active_since (activation date, else first screening),
    screened, screen_failures, screen_failure_rate (0-1), enrolled, enrolled_per_month (since
    active_since to the cut-off), days_since_last_enrollment (to the cut-off), planned_enrollment,
    share_of_target (0-1; None without a site target).
    """
    out = by_site.copy()
    out["active_since"] = [
        a if isinstance(a, dt.date) else f if isinstance(f, dt.date) else None
        for a, f in zip(out["activated_on"], out["first_screening"], strict=True)
    ]
    out["screen_failure_rate"] = [
        f / s if s else None for f, s in zip(out["screen_failures"], out["screened"], strict=True)
    ]
    out["enrolled_per_month"] = [
        per_month(n, (cutoff - since).days + 1) if cutoff and since and since <= cutoff else None
        for n, since in zip(out["enrolled"], out["active_since"], strict=True)
    ]
    out["days_since_last_enrollment"] = [
        (cutoff - last).days if cutoff and isinstance(last, dt.date) else None
        for last in out["last_enrollment"]
    ]
    out["share_of_target"] = [
        n / t if t and t == t else None  # t == t is False for NaN
        for n, t in zip(out["enrolled"], out["planned_enrollment"], strict=True)
    ]
    return out[
        [
            "site_id",
            "name",
            "country",
            "active_since",
            "screened",
            "screen_failures",
            "screen_failure_rate",
            "enrolled",
            "enrolled_per_month",
            "days_since_last_enrollment",
            "planned_enrollment",
            "share_of_target",
        ]
    ]


def funnel_steps(
    *,
    screened: int,
    screen_failures: int,
    in_screening: int,
    not_assigned: int,
    enrolled: int,
    treated: int | None,
    completed: int,
    discontinued: int,
    ongoing: int,
    discontinuation_reasons: str = "",
) -> pd.DataFrame:
    """The funnel as rows: step, subjects, of_previous (share of the step it comes from, 0-1),
    previous (that step's name), detail (discontinuation reasons on the Discontinued row).

    Eligible is everyone who passed screening (enrolled or eligible but not assigned); treated is
    left out where exposure is unknown; completed, discontinued and ongoing are shares of the
    treated (else the enrolled).
    """
    eligible = enrolled + not_assigned
    base_name, base = ("Treated", treated) if treated is not None else ("Enrolled", enrolled)
    rows: list[tuple[str, int, str | None, int | None, str]] = [
        ("Screened", screened, None, None, ""),
        ("Screen failed", screen_failures, "Screened", screened, ""),
        ("In screening", in_screening, "Screened", screened, ""),
        ("Eligible", eligible, "Screened", screened, ""),
        ("Enrolled", enrolled, "Eligible", eligible, ""),
    ]
    if treated is not None:
        rows.append(("Treated", treated, "Enrolled", enrolled, ""))
    rows += [
        ("Completed", completed, base_name, base, ""),
        ("Discontinued", discontinued, base_name, base, discontinuation_reasons),
        ("Ongoing", ongoing, base_name, base, ""),
    ]
    return pd.DataFrame(
        [
            {
                "step": step,
                "subjects": n,
                "of_previous": (n / previous_n) if previous_n else None,
                "previous": previous or "",
                "detail": detail,
            }
            for step, n, previous, previous_n, detail in rows
        ]
    )


def enrollment_dates(daily: pd.DataFrame) -> list[dt.date]:
    """One date per enrollment, from the daily counts of ``queries.enrollment.daily_accrual``."""
    return [
        day.date() if isinstance(day, pd.Timestamp) else day
        for day, n in zip(daily["date"], daily["enrolled"], strict=True)
        for _ in range(int(n))
    ]


def reasons_text(reasons: pd.DataFrame) -> str:
    """``"ADVERSE EVENT 84, WITHDRAWAL BY SUBJECT 27"``: discontinuation reasons over all arms."""
    if reasons.empty:
        return ""
    totals = reasons.groupby("reason")["subjects"].sum().sort_values(ascending=False)
    return ", ".join(f"{reason} {int(n)}" for reason, n in totals.items())


def study_forecast(
    daily: pd.DataFrame,
    *,
    target: int | None,
    cutoff: dt.date | None,
    planned_start: dt.date | None,
    planned_end: dt.date | None,
) -> AccrualForecast | None:
    """The completion forecast of a study from its daily accrual; None without a cut-off.

    Accrual is counted from the planned start where it is known and precedes every enrollment
    (a planned start after the first enrollment is a registry estimate the data contradict: the
    first enrollment is used then).
    """
    if cutoff is None:
        return None
    dates = [d for d in enrollment_dates(daily) if d <= cutoff]
    start = planned_start if planned_start and dates and planned_start <= min(dates) else None
    if start is not None and start > cutoff:
        start = None
    forecast = forecast_completion(
        dates, target=target, cutoff=cutoff, start=start, planned_end=planned_end
    )
    # A constant-rate model cannot see that recruitment has stopped: after a long silence the
    # projected date would be an artefact, so the page says what the data show instead.
    if forecast.status == "ok" and (cutoff - max(dates)).days > STALLED_AFTER_DAYS:
        last = max(dates)
        return replace(
            forecast,
            status="stalled",
            message=(
                f"No enrollment since {last:%d %b %Y}, {(cutoff - last).days} days before the "
                f"cut-off: recruitment looks closed or stalled, so no completion date is "
                f"projected ({forecast.enrolled} of {target} enrolled)."
            ),
            median_date=None,
            lower_date=None,
            upper_date=None,
        )
    return forecast
