"""The one coercion of a query's dates (``results.dates.as_date``), checked on each form a query or
pandas gives a date in."""

import datetime as dt

import numpy as np
import pandas as pd

from dashboard.results.dates import as_date, date_series, known_date

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
