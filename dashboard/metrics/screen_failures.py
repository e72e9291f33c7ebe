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


def mark_new_subjects(subjects: pd.DataFrame, *, compare_cut_id: int | None) -> pd.DataFrame:
    """A subject list with first_cut_id (``queries.screen_failures.failed_subjects``) as shown:
    a "new" column after the subject code (first held by a cut after ``compare_cut_id``; left out
    where there is nothing to compare with), first_cut_id dropped."""
    shown = subjects.drop(columns="first_cut_id")
    if compare_cut_id is not None:
        shown.insert(1, "new", subjects["first_cut_id"].fillna(0).astype(int) > compare_cut_id)
    return shown


def with_new_failures(
    by_criterion: pd.DataFrame, new_failures: pd.DataFrame | None
) -> pd.DataFrame:
    """``failures_by_criterion`` with a new_subjects column (the new screen failures of
    ``queries.changes.new_failures_by_criterion``; 0 where a criterion has none). Without a cut
    to compare with (``new_failures`` None) the frame is returned as it is."""
    if new_failures is None:
        return by_criterion
    merged = by_criterion.merge(new_failures, on=["code", "protocol_version"], how="left")
    merged["new_subjects"] = merged["new_subjects"].fillna(0).astype(int)
    return merged
