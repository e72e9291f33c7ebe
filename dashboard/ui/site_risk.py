"""How the Site risk page writes its tables: flags as "+1", "0", "–" in coloured cells (text: a
grid writes a missing number as "None"), and the QTL excursions with plain headers."""

from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from dashboard.charts.colours import FLAG_CELL_COLOURS
from dashboard.results.studies import CutInfo

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


EXCURSION_HEADERS = {
    "id": "Excursion",
    "parameter": "QTL",
    "cut_id": "First cut over",
    "value": "Proportion",
    "limit": "Limit",
    "opened_at": "Opened (UTC)",
    "evaluation": "What was found",
    "action": "What was done",
    "evaluated_by": "By",
    "evaluated_at": "When (UTC)",
}


def excursion_table(
    excursions: pd.DataFrame, names: dict[str, str], cuts: Sequence[CutInfo] = ()
) -> pd.DataFrame:
    """Excursions as the page lists them: the QTL's name, the cut by the study's own number,
    proportions in per cent, times to the minute, blanks where nothing is recorded yet."""
    shown = excursions.drop(columns=["closed"]).rename(columns=EXCURSION_HEADERS)
    numbers = {c.id: c.number for c in cuts}
    shown["First cut over"] = [numbers.get(int(c), int(c)) for c in shown["First cut over"]]
    shown["QTL"] = shown["QTL"].map(names).fillna(shown["QTL"])
    for column in ("Proportion", "Limit"):
        shown[column] = [f"{v:.1%}" for v in shown[column]]
    for column in ("Opened (UTC)", "When (UTC)"):
        shown[column] = [
            "" if pd.isna(v) else pd.Timestamp(v).strftime("%d %b %Y %H:%M") for v in shown[column]
        ]
    return shown.astype(object).where(shown.notna(), "")
