"""The QTL excursions as the Site risk page and the monitoring pack list them: plain headers, the
QTL's name, proportions in per cent, times to the minute."""

from collections.abc import Sequence

import pandas as pd

from dashboard.results.studies import CutInfo

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
