"""How the Site risk page writes its tables: flags as "+1", "0", "–" in coloured cells (text: a
grid writes a missing number as "None"), and the QTL excursions with plain headers."""

from collections.abc import Hashable
from typing import Any

import pandas as pd

from dashboard.charts.colours import FLAG_CELL_COLOURS
from dashboard.views.excursions import EXCURSION_HEADERS, excursion_table

# The excursions' table is the views' (the pack prints the same one): named here for the page.
__all__ = ["EXCURSION_HEADERS", "excursion_table", "flag_cell", "flag_styler", "flag_text"]

NOT_SCORED = "–"


def flag_text(value: Any) -> str:
    """A flag as the table writes it: "+1", "-2", "0", or "–" for a KRI not scored."""
    if value is None or pd.isna(value):
        return NOT_SCORED
    return f"{int(value):+d}" if value else "0"


def flag_cell(text: Any) -> str:
    """The background of one written flag: red, amber or green; none if not scored."""
    try:
        level = abs(int(str(text)))
    except ValueError:
        return ""
    colour = FLAG_CELL_COLOURS.get(min(level, 2))
    return f"background-color: {colour}" if colour else ""


def flag_styler(table: pd.DataFrame, flag_columns: list[Hashable]) -> Any:
    """The flag table with its flags written and coloured; the Risk score stays a number (one
    decimal), so a click on its header sorts it."""
    shown = table.copy()
    for column in flag_columns:
        shown[column] = [flag_text(v) for v in table[column]]
    styler = shown.style.map(flag_cell, subset=flag_columns)
    if "Risk score" in shown.columns:
        styler = styler.format({"Risk score": "{:.1f}"})
    return styler
