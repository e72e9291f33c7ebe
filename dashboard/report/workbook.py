"""Excel workbooks: the monitoring pack's listings, and any single table a page offers for download.

Every sheet is written the same way: the header on row 1, frozen, with filters on; dates as Excel
dates (``datetime.date`` cells with a date format), numbers as numbers, text as text (a text that
starts like a formula stays text: data never becomes a formula; ``report.cells`` decides, for the
CSV downloads too).
"""

import datetime as dt
import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from dashboard.report.cells import is_formula_text
from dashboard.report.pack import MonitoringPack

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_MAX_ROWS = 1_048_576  # Excel's limit, header included
DATE_FORMAT = "yyyy-mm-dd"
SITE_RISK_SHEET = "Site risk"  # each site in view and computed KRI: counts, metric, score, flag
SAE_SHEET = "SAEs"  # contract: a sheet of this name, header on row 1, one row per serious AE
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F3B5A")
_WIDTH_SAMPLE = 500  # rows read to size the columns
_INVALID_TITLE = str.maketrans({c: " " for c in "[]:*?/\\"})


def sheet_title(name: str) -> str:
    """A valid sheet name: Excel's forbidden characters replaced, at most 31 characters."""
    return name.translate(_INVALID_TITLE).strip()[:31] or "Sheet"


def excel_value(value: object) -> object:
    """A pandas/numpy/SQL value as openpyxl stores it: None for every kind of missing, plain
    numbers, ``datetime.date`` for a date (a midnight Timestamp is a date), text without the
    control characters XML cannot hold."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)  # Excel has no time zones
        return value.date() if value.time() == dt.time(0) else value
    if isinstance(value, bool | int | float | dt.date):
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def _cell(sheet: Any, value: object) -> object:
    value = excel_value(value)
    if is_formula_text(value):  # the CSV downloads' rule (report.cells)
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # text, not a formula
        return cell
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    if isinstance(value, dt.date):
        # Excel stores a date as a day number either way; a midnight datetime in a date format is
        # what openpyxl reads back as a date.
        cell = WriteOnlyCell(sheet, value=dt.datetime.combine(value, dt.time(0)))
        cell.number_format = DATE_FORMAT
        return cell
    return value


def _width(values: Iterable[object]) -> float:
    longest = max((len(str(v)) for v in values if v is not None), default=0)
    return float(min(max(longest + 2, 8), 60))


def add_sheet(workbook: Workbook, frame: pd.DataFrame, *, title: str) -> None:
    """``frame`` as a new sheet of a write-only ``workbook``: header on row 1, frozen, filters on;
    rows beyond Excel's limit are left out and a last row says how many."""
    # A write-only sheet (rows streamed to the file): its type stubs lack the column widths and
    # filters it has at run time.
    sheet: Any = workbook.create_sheet(title=sheet_title(title))
    columns = [str(c) for c in frame.columns]
    room = EXCEL_MAX_ROWS - 2  # the header and the note row
    shown = frame if len(frame) <= room else frame.head(room)
    sample = shown.head(_WIDTH_SAMPLE)
    for j, name in enumerate(columns, start=1):
        width = max(_width([name]), _width(excel_value(v) for v in sample.iloc[:, j - 1]))
        sheet.column_dimensions[get_column_letter(j)].width = width  # before any row is written
    sheet.freeze_panes = "A2"
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(shown) + 1}"
    header = []
    for name in columns:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="top")
        header.append(cell)
    sheet.append(header)
    for row in shown.itertuples(index=False, name=None):
        sheet.append([_cell(sheet, v) for v in row])
    if len(shown) < len(frame):
        sheet.append([f"{len(frame) - len(shown)} more rows not listed: Excel's row limit"])


def _new_workbook() -> Workbook:
    workbook = Workbook(write_only=True)
    workbook.properties.creator = "study-monitor"
    return workbook


def _saved(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def excel_bytes(frame: pd.DataFrame, *, sheet: str) -> bytes:
    """One table as an .xlsx file (a page's "Download Excel")."""
    workbook = _new_workbook()
    add_sheet(workbook, frame, title=sheet)
    return _saved(workbook)


def pack_workbook(pack: MonitoringPack) -> bytes:
    """The pack's workbook: the headline figures, then one sheet per listing and table (the SAE
    sheet named ``SAE_SHEET``)."""
    workbook = _new_workbook()
    workbook.properties.title = f"Monitoring pack: {pack.study.study_id}, data {pack.cut_label}"
    sheets: list[tuple[str, pd.DataFrame]] = [
        ("Summary", pack.headline),
        ("Subjects", pack.subjects),
        ("Sites", pack.sites),  # the Enrollment page's table (none for a one-site viewer)
        ("Screen failures", pack.screen_failures),
        ("Failures by criterion", pack.failures_table),
        ("Table 1", pack.table_one),
        ("AE summary", pack.ae_summary),
        ("AEs by SOC and PT", pack.ae_terms.rename(columns={"level": "Level"})),
        ("AEs", pack.adverse_events),
        (SAE_SHEET, pack.saes),
        (SITE_RISK_SHEET, pack.site_risk_scores),
    ]
    for title, frame in sheets:
        add_sheet(workbook, frame, title=title)
    return _saved(workbook)
