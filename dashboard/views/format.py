"""Number and date wording shared by the views (and so by the pages, the pack and the CLI)."""

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # only named in annotations: the forecast module loads scipy, and the importers
    # (plurals for their messages) and the command line must start without it.
    from dashboard.metrics.forecast import AccrualForecast


def percent(part: int, whole: int, digits: int = 0) -> str:
    """``"44%"``; a dash where the whole is zero."""
    return f"{100 * part / whole:.{digits}f}%" if whole else "–"


def count_of(part: int, whole: int | None) -> str:
    """``"20 / 20"`` against a target, or just the count where there is none."""
    return f"{part} / {whole}" if whole else f"{part}"


def projected_completion_label(forecast: "AccrualForecast | None", *, filtered: bool) -> str:
    """The headline value for the forecast: a date, "reached <date>", or a dash."""
    if forecast is None or filtered:
        return "–"
    if forecast.status == "target_reached" and forecast.reached_on:
        return f"{forecast.reached_on:%d %b %Y}"
    if forecast.status == "ok" and forecast.median_date:
        return f"{forecast.median_date:%d %b %Y}"
    return "–"


def projected_completion_title(forecast: "AccrualForecast | None", *, filtered: bool) -> str:
    """The forecast metric's label: "Target reached" once it is (its date is history, not a
    projection), else "Projected completion"."""
    if forecast is not None and not filtered and forecast.status == "target_reached":
        return "Target reached"
    return "Projected completion"


def projected_interval_label(
    forecast: "AccrualForecast | None", *, filtered: bool, today: dt.date | None = None
) -> str | None:
    """The 80% interval under the headline date, or why there is no forecast; a projected date
    before ``today`` says it has passed (the data cut is older than the projection)."""
    if forecast is None or filtered:
        return "whole study only" if filtered else None
    if forecast.status == "ok" and forecast.lower_date and forecast.upper_date:
        interval = f"80% interval {forecast.lower_date:%b %Y} – {forecast.upper_date:%b %Y}"
        if today is not None and forecast.median_date and forecast.median_date < today:
            # A projection from an old cut-off: the date is not a promise about the future.
            return f"projected date passed · {interval}"
        return interval
    if forecast.status == "target_reached":
        return f"{forecast.enrolled} enrolled, target {forecast.target}"
    if forecast.status == "stalled":
        return "recruitment stalled"
    if forecast.status in ("too_few", "no_target"):
        return "not enough data" if forecast.status == "too_few" else "no target"
    return None


ACTUAL = "ACTUAL"  # ClinicalTrials.gov enrollmentInfo.type: the final count, not a target


def is_actual_enrollment(enrollment_type: str | None) -> bool:
    """The registry's enrollment is the final count (ACTUAL), not a target (ESTIMATED, or TS
    PLANSUB, which is planned)."""
    return (enrollment_type or "").strip().upper() == ACTUAL


def registry_enrollment(count: int | None, enrollment_type: str | None) -> tuple[str, str]:
    """The registry's enrollment as a label and a value: ``("Enrollment", "0 (actual)")`` for an
    ACTUAL count (a withdrawn study's 0 is 0), ``("Target enrollment", "20 (estimated)")`` for an
    ESTIMATED one, ``("Target enrollment", "300")`` where the type is not given (TS PLANSUB)."""
    kind = (enrollment_type or "").strip().lower()
    label = "Enrollment" if is_actual_enrollment(enrollment_type) else "Target enrollment"
    if count is None:
        return label, "–"
    return label, f"{count} ({kind})" if kind else str(count)


def target_word(enrollment_type: str | None) -> str:
    """What the registry's count is called beside the enrolled count: "target", or, for an ACTUAL
    count, "registry actual" (a final count is not a target)."""
    return "registry actual" if is_actual_enrollment(enrollment_type) else "target"


def ages_label(min_age: float | None, max_age: float | None) -> str:
    """Age limits in years: "18 to 65 years", "18 years or older", "up to 65 years", or a dash
    where neither is given."""
    if min_age is not None and max_age is not None:
        return f"{min_age:g} to {max_age:g} years"
    if min_age is not None:
        return f"{min_age:g} years or older"
    if max_age is not None:
        return f"up to {max_age:g} years"
    return "–"


# Nouns whose plural is not the singular with an "s" (the ones the app counts).
IRREGULAR_PLURALS = {"criterion": "criteria", "key": "keys", "analysis": "analyses"}


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 subject"``, ``"3 subjects"``, ``"0 subjects"``: the count with its noun agreed, never
    "subject(s)". The last word takes the plural ("screen failure" -> "screen failures")."""
    if count == 1:
        return f"{count} {singular}"
    if plural_form is None:
        head, _, last = singular.rpartition(" ")
        last = IRREGULAR_PLURALS.get(last, f"{last}s")
        plural_form = f"{head} {last}" if head else last
    return f"{count} {plural_form}"


def verb(count: int, singular: str, plural_form: str) -> str:
    """The verb agreed with ``count``: ``verb(1, "has", "have")`` is "has"."""
    return singular if count == 1 else plural_form


# A share drawn by ``st.column_config.NumberColumn`` from ``percent_points``: whole percent, as
# every other percentage on the pages ("38%", never "29.63%" beside "12.5%").
WHOLE_PERCENT = "%.0f%%"


def percent_points(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with its 0-1 shares in ``columns`` as percentage points (0-100), for a table
    column formatted ``WHOLE_PERCENT`` (Streamlit's "percent" format prints up to two decimals)."""
    present = [c for c in columns if c in frame.columns]
    return frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce") * 100 for c in present})


def period_words(period: tuple[dt.date, dt.date]) -> str:
    """``"between 20 Oct 2024 and 25 Oct 2024"``: the "Screened between" filter in words."""
    return f"between {period[0]:%d %b %Y} and {period[1]:%d %b %Y}"


def nobody_screened(period: tuple[dt.date, dt.date]) -> str:
    """The plain message for a screening period that matches nobody (no empty chart)."""
    return f"No subjects screened {period_words(period)}: widen the dates to see the study."
