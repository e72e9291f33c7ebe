"""Cells that a spreadsheet must not run: text from the data (an AE term, a site name, a file's
value) that starts like a formula. Shared by every CSV download and the Excel writer, so both treat
the same cells as text.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with "=", "+", "-" or "@" (and one
whose tab or carriage return is dropped before such a character), which runs ``=HYPERLINK(...)``
or worse when someone opens a downloaded CSV. OWASP's advice for CSV injection: prefix such a
cell with a single quote, which the spreadsheet shows as text.
"""

import re
from typing import TypeGuard

import pandas as pd

# Formula-leading characters (OWASP: =, +, -, @, tab, carriage return) and their full-width forms,
# which some spreadsheets read as the same.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# A number written as text ("-1.5", "+3", "-2e-3") is no formula: it stays as it is.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_formula_text(value: object) -> TypeGuard[str]:
    """Whether ``value`` is text a spreadsheet would take for a formula."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and _NUMBER.fullmatch(value) is None
    )


def text_cell(value: object) -> object:
    """``value`` as a CSV cell: formula-like text with a leading single quote; anything else (a
    number, however negative; a date; a missing value; ordinary text) unchanged."""
    return f"'{value}" if is_formula_text(value) else value


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV (no index), its formula-like text cells and headers made text."""
    safe = frame.rename(columns=lambda name: text_cell(name))
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype):
            safe.isetitem(position, series.astype(object).map(text_cell).to_numpy(dtype=object))
    return safe.to_csv(index=False)
