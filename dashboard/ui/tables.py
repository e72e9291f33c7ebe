"""Tables as drawn: a missing value is a dash, not the grey "None" Streamlit writes in an empty
cell. Only the display changes (a pandas Styler's display text): the data, their sorting and what
a test or a download reads stay as they are."""

import datetime as dt
import math
from collections.abc import Hashable
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

MISSING = "–"
# A Styler costs about a second per thousand rows at every rerun: longer tables keep Streamlit's
# own empty cells.
STYLED_ROWS = 1000


def _text(value: Any) -> str:
    """A present value as Streamlit would show it: whole numbers without ".0", dates as ISO."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else f"{value:.4g}"
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()[:10] if isinstance(value, dt.date) else str(value.date())
    return str(value)


def dashed(table: pd.DataFrame | Styler) -> pd.DataFrame | Styler:
    """``table`` (a frame, or a Styler already colouring it) with every missing cell shown as
    "–"; the columns without a missing value keep Streamlit's own formatting."""
    styler = table if isinstance(table, Styler) else None
    frame: pd.DataFrame = styler.data if styler is not None else table  # type: ignore[attr-defined,assignment]
    if len(frame) > STYLED_ROWS:
        return table
    gaps: list[Hashable] = [c for c in frame.columns if frame[c].isna().any()]
    if not gaps:
        return table
    return (styler if styler is not None else frame.style).format(
        _text, subset=gaps, na_rep=MISSING
    )
