"""Tables as drawn: a missing value is a dash, not the grey "None" Streamlit writes in an empty
cell. Only the display changes (a pandas Styler's display text, or for a long table a copy with the
dash in its text columns): the data, their sorting and what a download reads stay as they are."""

import datetime as dt
import math
from collections.abc import Hashable
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

MISSING = "–"
# A Styler costs about a second per thousand rows at every rerun on a quiet machine, and 3.4 s per
# thousand on a busy one (the scale study's 500-row SAE listing: 1.7 s of a 2.1 s rerun). Longer
# tables get the dash written into their text columns instead (a copy, in milliseconds), and keep
# Streamlit's own empty cells elsewhere (a number or a date must stay one, to sort as one).
STYLED_ROWS = 200


def _text(value: Any) -> str:
    """A present value as Streamlit would show it: whole numbers without ".0", dates as ISO."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else f"{value:.4g}"
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()[:10] if isinstance(value, dt.date) else str(value.date())
    return str(value)


def _dashed_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the gaps of its text columns (every value present a ``str``) written "–"."""
    columns = [frame.iloc[:, position] for position in range(frame.shape[1])]
    text_gaps = [
        position
        for position, column in enumerate(columns)
        if pd.api.types.is_string_dtype(column.dtype)
        and column.isna().any()
        and all(isinstance(value, str) for value in column.dropna())
    ]
    if not text_gaps:
        return frame
    shown = frame.copy()
    for position in text_gaps:
        shown.isetitem(position, columns[position].fillna(MISSING).to_numpy())
    return shown


def dashed(table: pd.DataFrame | Styler) -> pd.DataFrame | Styler:
    """``table`` (a frame, or a Styler already colouring it) with every missing cell shown as
    "–"; the columns without a missing value keep Streamlit's own formatting."""
    styler = table if isinstance(table, Styler) else None
    frame: pd.DataFrame = styler.data if styler is not None else table  # type: ignore[attr-defined,assignment]
    if len(frame) > STYLED_ROWS:
        return table if styler is not None else _dashed_text(frame)
    gaps: list[Hashable] = [c for c in frame.columns if frame[c].isna().any()]
    if not gaps:
        return table
    return (styler if styler is not None else frame.style).format(
        _text, subset=gaps, na_rep=MISSING
    )
