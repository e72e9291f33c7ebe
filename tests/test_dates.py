"""The one coercion of a query's dates (``results.dates.as_date``), checked on each form a query or
pandas gives a date in."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from dashboard.results.dates import (
    EARLIEST_YEAR,
    YEARS_AHEAD,
    InvalidDateError,
    as_date,
    date_series,
    known_date,
    latest_year,
    parse_dtc,
)

DAY = dt.date(2013, 4, 5)


def test_as_date_reads_every_form_a_query_gives() -> None:
    assert as_date(DAY) == DAY
    assert as_date(dt.datetime(2013, 4, 5, 14, 30)) == DAY
    assert as_date(pd.Timestamp("2013-04-05 14:30")) == DAY
    assert as_date("2013-04-05") == DAY
    assert as_date("2013-04-05 00:00:00.000000") == DAY  # SQLite's text from a subquery
    assert as_date(np.datetime64("2013-04-05")) == DAY


def test_as_date_is_none_for_missing_and_partial_values() -> None:
    for missing in (None, pd.NaT, pd.NA, float("nan"), "", "2013-04"):
        assert as_date(missing) is None


def test_date_series_keeps_the_index_and_gives_plain_dates() -> None:
    values = pd.Series(["2013-04-05", None, pd.NaT], index=[3, 5, 7])
    found = date_series(values)
    assert found.dtype == object and list(found.index) == [3, 5, 7]
    assert found.tolist() == [DAY, None, None]


def test_known_date_is_none_for_what_is_not_a_date() -> None:
    assert known_date("2013-04") == dt.date(2013, 4, 1)
    assert known_date("not a date") is None and known_date(None) is None
    assert known_date(float("nan")) is None


# -- the ISO 8601 pattern and the plausible years (#17) ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2013", dt.date(2013, 1, 1)),
        ("2013-04", dt.date(2013, 4, 1)),
        ("2013-04-05", DAY),
        ("2013-04-05T14", DAY),
        ("2013-04-05T14:30", DAY),
        ("2013-04-05T14:30:15.25+01:00", DAY),
        ("2013-04-05T14:30Z", DAY),
        ("2013---05", dt.date(2013, 1, 1)),  # month unknown, day known: the year
        (" 2013-04-05 ", DAY),
        ("", None),
    ],
)
def test_parse_dtc_reads_iso_8601(text: str, expected: dt.date | None) -> None:
    assert parse_dtc(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2014--05junk",  # the gap pattern once had no end anchor
        "2014-03-05T",  # a T with no time
        "2014-03-05junk",
        "2014-03-05 14:30",  # a space is not ISO 8601's T
        "2014-3-5",
        "20140305",
        "\u0662\u0660\u0661\u0664-01-01",  # Arabic-Indic digits, which int() would read
        "2014-03-05T14:30junk",
    ],
)
def test_parse_dtc_refuses_text_around_a_date(text: str) -> None:
    with pytest.raises(InvalidDateError, match="is not an ISO 8601 date"):
        parse_dtc(text)


def test_plausible_years_are_pinned_at_both_ends() -> None:
    last = latest_year()
    assert last == dt.date.today().year + YEARS_AHEAD
    assert parse_dtc(f"{EARLIEST_YEAR}-01-01") == dt.date(EARLIEST_YEAR, 1, 1)
    assert parse_dtc(f"{last}-12-31") == dt.date(last, 12, 31)
    for text in (
        "0001-01-01",
        f"{EARLIEST_YEAR - 1}-12-31",
        f"{last + 1}-01-01",
        "9999",
        "0001---05",
    ):
        with pytest.raises(InvalidDateError, match="is not a plausible date"):
            parse_dtc(text)
    assert known_date("0001-01-01") is None  # kept as text by the reader, the date unknown
