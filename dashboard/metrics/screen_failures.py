"""Screen-failure figures from the query layer's aggregates: pure pandas, no database."""

import pandas as pd


def monthly_failure_rate(daily: pd.DataFrame) -> pd.DataFrame:
    """Screened, screen failures and the screen-failure rate per calendar month of screening.

    Input: ``queries.screen_failures.daily_screening`` (date, screened, screen_failures).
    Columns: month (first day, Timestamp), screened, screen_failures, screen_failure_rate (0-1).
    Months without screening inside the span are kept with zeros and no rate.
    """
    columns = ["month", "screened", "screen_failures", "screen_failure_rate"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    month = pd.to_datetime(daily["date"]).dt.to_period("M").dt.start_time
    monthly = daily.assign(month=month).groupby("month")[["screened", "screen_failures"]].sum()
    full = pd.date_range(monthly.index.min(), monthly.index.max(), freq="MS")
    monthly = monthly.reindex(full, fill_value=0).rename_axis("month").reset_index()
    monthly["screen_failure_rate"] = [
        f / s if s else None
        for f, s in zip(monthly["screen_failures"], monthly["screened"], strict=True)
    ]
    return monthly[columns]


def criterion_label(code: str, protocol_version: str) -> str:
    """``"EXCL12A (AMENDMENT 1)"``; the code alone for a single-version protocol."""
    return f"{code} ({protocol_version})" if protocol_version else code


def site_criterion_grid(
    counts: pd.DataFrame, *, sites: pd.DataFrame, criteria: pd.DataFrame
) -> pd.DataFrame:
    """Every site x every criterion that anyone failed, zeros filled in.

    Inputs: ``queries.screen_failures.site_criterion_counts``, the per-site table of
    ``queries.enrollment.enrollment_by_site`` (site_id, screened) and
    ``queries.screen_failures.failures_by_criterion`` (for the protocol order).
    Columns: site_id, criterion, subjects, screened (the site's), share_of_screened (0-1).
    """
    failed = criteria[criteria["subjects"] > 0]
    labels = [
        criterion_label(c, v)
        for c, v in zip(failed["code"], failed["protocol_version"], strict=True)
    ]
    cells = pd.MultiIndex.from_product(
        [sites["site_id"].astype(str), labels], names=["site_id", "criterion"]
    )
    observed = counts.assign(
        criterion=[
            criterion_label(c, v)
            for c, v in zip(counts["code"], counts["protocol_version"], strict=True)
        ],
        site_id=counts["site_id"].astype(str),
    ).set_index(["site_id", "criterion"])["subjects"]
    grid = observed.reindex(cells, fill_value=0).rename("subjects").reset_index()
    screened = sites.assign(site_id=sites["site_id"].astype(str)).set_index("site_id")["screened"]
    grid["screened"] = grid["site_id"].map(screened).fillna(0).astype(int)
    grid["share_of_screened"] = [
        n / s if s else 0.0 for n, s in zip(grid["subjects"], grid["screened"], strict=True)
    ]
    return grid
