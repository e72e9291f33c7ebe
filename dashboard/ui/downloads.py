"""CSV and Excel downloads of a table, the files built only when the user clicks (writing an Excel
file of thousands of rows takes seconds: it must not slow every rerun of the page)."""

import io

import pandas as pd
import streamlit as st

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def excel_bytes(frame: pd.DataFrame, *, sheet: str) -> bytes:
    """``frame`` as an .xlsx file (sheet names are cut to Excel's 31 characters)."""
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()


def download_buttons(frame: pd.DataFrame, *, name: str, sheet: str) -> None:
    """ "Download CSV" and "Download Excel" side by side for ``frame``."""
    csv_button, excel_button = st.columns(2)
    csv_button.download_button(
        "Download CSV",
        lambda: frame.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
    )
    excel_button.download_button(
        "Download Excel",
        lambda: excel_bytes(frame, sheet=sheet),
        file_name=f"{name}.xlsx",
        mime=EXCEL_MIME,
    )
