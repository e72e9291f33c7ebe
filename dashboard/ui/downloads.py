"""CSV and Excel downloads of a table, the files built only when the user clicks (writing an Excel
file of thousands of rows takes seconds: it must not slow every rerun of the page). Every download
writes an "export" audit event when its file is built (``dashboard.ui.auth.audited``). A text cell
that starts like a formula is written as text in both (``dashboard.report.cells``)."""

import pandas as pd
import streamlit as st

from dashboard.report import workbook
from dashboard.report.cells import csv_text
from dashboard.ui.auth import audited

EXCEL_MIME = workbook.EXCEL_MIME
# DOWNLOAD_NOTE: download buttons do not rerun the page (on_click="ignore"). A rerun would draw the
# buttons again with new file ids, and a second button clicked before it ended found no file.


def excel_bytes(frame: pd.DataFrame, *, sheet: str) -> bytes:
    """``frame`` as an .xlsx file, written as the monitoring pack's sheets are (header frozen,
    filters on, dates as dates, sheet name cut to Excel's 31 characters)."""
    return workbook.excel_bytes(frame, sheet=sheet)


def download_buttons(frame: pd.DataFrame, *, name: str, sheet: str) -> None:
    """ "Download CSV" and "Download Excel" side by side for ``frame``."""
    csv_button, excel_button = st.columns(2)
    csv_button.download_button(
        "Download CSV",
        audited(lambda: csv_text(frame), file_name=f"{name}.csv", rows=len(frame)),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",  # see DOWNLOAD_NOTE
    )
    excel_button.download_button(
        "Download Excel",
        audited(lambda: excel_bytes(frame, sheet=sheet), file_name=f"{name}.xlsx", rows=len(frame)),
        file_name=f"{name}.xlsx",
        mime=EXCEL_MIME,
        on_click="ignore",
    )
