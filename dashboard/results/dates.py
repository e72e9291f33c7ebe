"""Dates, typed once: ISO 8601 text as SDTM writes it (read by the importers), and the dates the
queries return (read by the queries themselves, the metrics and the pack).

SDTM dates are text: complete (``2013-04-05``), partial (``2013``, ``2013-04``) or datetimes
(``2014-07-02T11:45``). The text is kept as given; the parsed date is the first day of the period,
for sorting and filtering only.

A query's date comes back as a ``datetime.date`` from a column, but as text from an SQLite
subquery, and pandas turns a missing one into NaT or NaN: ``as_date`` makes each a plain date or
None, so nothing downstream compares a date with text or NaT.
"""

import datetime as dt
import math
import re

import pandas as pd

# The time after "T" is required ("2014-03-05T" is not a date), and the pattern is matched whole
# (``fullmatch``: no trailing text, no trailing newline). ASCII digits only: ``\d`` would take
# Arabic-Indic digits, which int() reads.
_TIME = (
    r"(?:T(?P<time>[0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?)"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_DTC = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)?" + _TIME)
# SDTM writes an unknown month with a day as "2013---05": the year is all that can be used.
_YEAR_ONLY_WITH_GAPS = re.compile(r"(?P<year>[0-9]{4})-{2,3}[0-9]{2}" + _TIME)
# The years a study date can plausibly have. Before 1900: no participant was born then, and a
# year like 0001 or 1066 is a placeholder or a typing slip (year 1 also overflows date arithmetic
# on the Subject page and stretches the accrual chart over two millennia). After this year plus a
# century: planned ends, expiry dates and births lie decades ahead at most; 9999 is a placeholder.
# A year outside is "not a plausible date": kept as text, the date unknown, like any unreadable one.
EARLIEST_YEAR = 1900
YEARS_AHEAD = 100


def latest_year() -> int:
    """The last plausible year of a study date: this year plus ``YEARS_AHEAD``."""
    return dt.date.today().year + YEARS_AHEAD


_DURATION = re.compile(
    r"^P(?:(?P<Y>\d+(?:\.\d+)?)Y)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<W>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<D>\d+(?:\.\d+)?)D)?$"
)


class InvalidDateError(ValueError):
    """A --DTC value that is not an ISO 8601 date, or names a day that does not exist."""


def parse_dtc(text: str | None) -> dt.date | None:
    """The first day of the period an ISO 8601 date or datetime names; None for a blank.

    Raises InvalidDateError for text that is not ISO 8601 (trailing text included: ``2014-03-05T``,
    ``2014--05junk``), for an impossible date (``2013-02-30``, month 13, hour 25) and for a year
    outside ``EARLIEST_YEAR`` .. ``latest_year()`` (``0001-01-01``).
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    match = _YEAR_ONLY_WITH_GAPS.fullmatch(value) or _DTC.fullmatch(value)
    if not match:
        raise InvalidDateError(f"{value!r} is not an ISO 8601 date")
    year = int(match.group("year"))
    if not EARLIEST_YEAR <= year <= latest_year():
        raise InvalidDateError(
            f"{value!r} is not a plausible date (year outside {EARLIEST_YEAR}-{latest_year()})"
        )
    groups = match.groupdict()
    month = int(groups.get("month") or 1)
    day = int(groups.get("day") or 1)
    try:
        parsed = dt.date(year, month, day)
    except ValueError as error:
        raise InvalidDateError(f"{value!r} is not a real date ({error})") from None
    time = match.group("time")
    if time:
        parts = [int(float(p)) for p in time.split(":")]
        limits = (23, 59, 59)
        if any(p > limit for p, limit in zip(parts, limits, strict=False)):
            raise InvalidDateError(f"{value!r} is not a real time of day")
    return parsed


def duration_in_years(text: str | None) -> float | None:
    """``P50Y`` -> 50.0, ``P18M`` -> 1.5, ``P26W`` -> 0.498...; None for a blank.

    Raises ValueError for anything that is not an ISO 8601 duration (e.g. "No maximum").
    """
    if text is None or not text.strip():
        return None
    match = _DURATION.match(text.strip().upper())
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    per_year = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}
    return sum(float(v) / per_year[k] for k, v in match.groupdict().items() if v)


def known_date(text: object) -> dt.date | None:
    """``parse_dtc`` for data already read: None for a blank, for a missing value (None, NaN) and
    for text that is not a date.

    The reader kept such text as given and warned about it (DESIGN.md: an unparseable optional
    value is a warning, kept as text); its date is unknown, so it sorts and counts as missing.
    """
    if not isinstance(text, str):
        return None
    try:
        return parse_dtc(text)
    except InvalidDateError:
        return None


def is_missing(value: object) -> bool:
    """None, NaN, NaT or pd.NA: what pandas and the databases give for a missing value."""
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


def as_date(value: object) -> dt.date | None:
    """A plain date from what a query or pandas gives: a date, a datetime or Timestamp (its day),
    ISO text (``2013-04-05``, ``2013-04-05 00:00:00``: SQLite's text for a date from a subquery),
    or a missing value (None). Text shorter than a full date (a partial ``2013-04``) is None: a
    query's dates are whole; partial SDTM dates are ``parse_dtc``'s."""
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else None


def date_series(values: pd.Series) -> pd.Series:
    """A query frame's date column as plain dates or None (object dtype, the same index): dates
    compare with dates, where NaT or SQLite's text would not."""
    return pd.Series([as_date(v) for v in values], index=values.index, dtype=object)
