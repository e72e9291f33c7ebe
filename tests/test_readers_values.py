"""The reader's number checks (#17): keys that are not finite whole numbers, integers the database
column cannot hold, non-finite numbers, R's and SAS's missing markers, NUL bytes; and the accrual
chart's bins, which keep any plausible span under altair's row limit."""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from dashboard.charts.enrollment import accrual_chart
from dashboard.importers.errors import ImportFailure
from dashboard.importers.readers import INTEGER_RANGE, _number_problem, read_dataset
from dashboard.metrics.enrollment import choose_bin, cumulative_accrual
from dashboard.results.dates import EARLIEST_YEAR, latest_year

LOW, HIGH = INTEGER_RANGE


def test_integer_range_is_postgresql_integer() -> None:
    # PostgreSQL's INTEGER: -2^31 .. 2^31 - 1 (SQLite's INTEGER is 64-bit).
    assert (LOW, HIGH) == (-2_147_483_648, 2_147_483_647)


@pytest.mark.parametrize(
    ("number", "integer", "expected"),
    [
        (2.0, True, None),
        (2.7, True, "not whole"),
        (float(HIGH), True, None),
        (float(HIGH + 1), True, "too big"),
        (float(LOW), True, None),
        (float(LOW - 1), True, "too big"),
        (1e20, True, "too big"),
        (1e20, False, None),  # a float column holds it
        (float("inf"), True, "not finite"),
        (float("-inf"), False, "not finite"),
        (float("nan"), False, "not finite"),
        (2.7, False, None),
    ],
)
def test_number_problem_boundaries(number: float, integer: bool, expected: str | None) -> None:
    assert _number_problem(number, is_integer=integer) == expected


def _csv(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_missing_markers_are_counted_once_per_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "USUBJID": ["S1", "S1", "S1", "S2"],
            "AESEQ": ["1", "2", "NA", "1"],
            "AETERM": ["A", "B", "C", "D"],
            "AESTDY": ["NA", "3", "NA", "NA"],
            "AEENDY": [".", "4", ".", "NA"],
        }
    )
    dataset = read_dataset("AE", _csv(tmp_path, "ae.csv", frame))
    assert dataset.warnings == [
        "ae.csv column AESEQ: 1 value 'NA' read as missing",
        "ae.csv column AESTDY: 3 values 'NA' read as missing",
        "ae.csv column AEENDY: 2 values '.' read as missing",
        "ae.csv column AEENDY: 1 value 'NA' read as missing",
    ]
    assert dataset.frame["AESTDY"].tolist() == [None, 3.0, None, None]
    assert dataset.frame["AESEQ"].tolist() == [1.0, 2.0, None, 1.0]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("AESEQ", "2.7", "'2.7' is not a whole number, and AESEQ is a key of AE"),
        ("AESEQ", "inf", "'inf' is not a finite number"),
        ("AESEQ", "NaN", "'NaN' is not a finite number"),
        ("AESEQ", "3000000000", "3000000000 does not fit the database's integer column"),
        ("AESEQ", "-2147483649", "does not fit"),
        ("AESTDY", "1e20", "1e20 does not fit the database's integer column for AESTDY"),
    ],
)
def test_a_key_or_integer_that_cannot_be_stored_is_fatal(
    tmp_path: Path, column: str, value: str, message: str
) -> None:
    frame = pd.DataFrame({"USUBJID": ["S1"], "AESEQ": ["1"], "AETERM": ["A"], "AESTDY": ["2"]})
    frame[column] = [value]
    with pytest.raises(ImportFailure) as failure:
        read_dataset("AE", _csv(tmp_path, "ae.csv", frame))
    problem = failure.value.problem
    assert (problem.file, problem.record, problem.column) == ("ae.csv", 1, column)
    assert message in problem.message


def test_integers_at_the_column_limits_are_taken(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"USUBJID": ["S1", "S1"], "AESEQ": [str(HIGH), str(LOW)], "AETERM": ["A", "B"]}
    )
    dataset = read_dataset("AE", _csv(tmp_path, "ae.csv", frame))
    assert dataset.frame["AESEQ"].tolist() == [float(HIGH), float(LOW)]


def test_visitnum_may_be_a_fraction_but_not_infinite(tmp_path: Path) -> None:
    # Unscheduled visits are numbered between planned ones (3.1): a key, finite, not whole.
    frame = pd.DataFrame({"USUBJID": ["S1"], "VISITNUM": ["3.1"], "VISIT": ["UNSCHED"]})
    assert read_dataset("SV", _csv(tmp_path, "sv.csv", frame)).frame["VISITNUM"].tolist() == [3.1]
    frame["VISITNUM"] = ["-inf"]
    with pytest.raises(ImportFailure, match="'-inf' is not a finite number"):
        read_dataset("SV", _csv(tmp_path, "sv.csv", frame))


def test_dataset_json_nan_and_infinity_are_named(tmp_path: Path) -> None:
    path = tmp_path / "vs.json"
    document = {
        "columns": [{"name": n} for n in ("USUBJID", "VSSEQ", "VSTESTCD", "VSSTRESN")],
        "rows": [["S1", 1, "HR", float("nan")], ["S1", 2, "HR", float("inf")], ["S1", 3, "HR", 60]],
    }
    path.write_text(json.dumps(document))  # NaN and Infinity, as Python writes them
    dataset = read_dataset("VS", path)
    assert dataset.frame["VSSTRESN"].tolist() == [None, None, 60.0]
    assert dataset.warnings == [
        "vs.json column VSSTRESN: 2 values are not a finite number (first at record 1: 'NaN'); "
        "the number is unknown"
    ]


def test_nul_bytes_are_fatal_in_keys_and_removed_elsewhere(tmp_path: Path) -> None:
    frame = pd.DataFrame({"USUBJID": ["S1", "S2"], "AETERM": ["HEAD\x00ACHE", "\x00"]})
    dataset = read_dataset("AE", _csv(tmp_path, "ae.csv", frame))
    assert dataset.frame["AETERM"].tolist() == ["HEADACHE", None]
    assert dataset.warnings == [
        "ae.csv column AETERM: 2 values with NUL bytes or invalid characters (first at record "
        "1: 'HEAD\\x00ACHE'); those characters were removed"
    ]
    frame["USUBJID"] = ["S1", "S\x002"]
    with pytest.raises(ImportFailure, match="holds a NUL byte") as failure:
        read_dataset("AE", _csv(tmp_path, "ae.csv", frame))
    assert (failure.value.problem.record, failure.value.problem.column) == (2, "USUBJID")


def test_accrual_bins_stay_few_over_any_plausible_span() -> None:
    first, last = dt.date(EARLIEST_YEAR, 1, 10), dt.date(latest_year(), 12, 1)
    assert choose_bin(first, first + dt.timedelta(days=200)) == "W"
    assert choose_bin(first, first + dt.timedelta(days=200), until=last) == "Y"
    assert choose_bin(first, first + dt.timedelta(days=5000)) == "M"
    daily = pd.DataFrame({"date": [first, last], "screened": [1, 1], "enrolled": [0, 1]})
    accrual = cumulative_accrual(daily, until=last)
    assert len(accrual) == last.year - first.year + 1
    assert accrual["cumulative_enrolled"].iloc[-1] == 1
    # altair raises MaxRowsError past 5,000 rows when the chart is turned into its spec.
    accrual_chart(accrual, target=10, cutoff=last).to_dict()
