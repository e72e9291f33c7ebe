"""Clicks and selections as filters: which drilldown a page shows after a rerun (``latest_pick``:
whichever control changed last), and for the Screen failures page which criterion, a bar click or
a table row, kept in session state across reruns and filter changes."""

import hashlib
from typing import Any, TypeVar

import streamlit as st

from dashboard.charts.screen_failures import SELECTION

Pick = tuple[str, str] | None  # (criterion code, protocol version)
AnyPick = TypeVar("AnyPick")


def latest_pick(
    now: dict[str, AnyPick | None], before: dict[str, AnyPick | None], current: AnyPick | None
) -> AnyPick | None:
    """The control whose selection changed since the last run wins (a selection cleared clears
    the drilldown; controls are looked at in the order given); nothing changed keeps ``current``."""
    for control, pick in now.items():
        if before.get(control) != pick:
            return pick
    return current


def chart_points(event: Any, name: str) -> list[dict[str, Any]]:
    """The points a click selected on a chart drawn with ``on_select``; [] where there are none."""
    try:
        points = event["selection"][name]
    except (KeyError, TypeError):
        return []
    return list(points) if points else []


def chart_pick(event: Any) -> Pick:
    """The criterion a click on the criteria chart selected, from ``st.altair_chart``'s event."""
    points = chart_points(event, SELECTION)
    if not points:
        return None
    point = points[0]
    return (str(point.get("code")), str(point.get("protocol_version") or ""))


def row_pick(event: Any, codes: list[tuple[str, str]]) -> Pick:
    """The criterion of the table row selected, from ``st.dataframe``'s event."""
    try:
        rows = event["selection"]["rows"]
    except (KeyError, TypeError):
        return None
    return codes[rows[0]] if rows and rows[0] < len(codes) else None


def resolve(*, current: Pick, chart: Pick, last_chart: Pick, row: Pick, last_row: Pick) -> Pick:
    """The new drilldown criterion: whichever control changed since the last run wins (the row
    first); a control cleared (click on empty space, row unticked) clears the drilldown; nothing
    changed keeps it."""
    return latest_pick(
        {"row": row, "chart": chart}, {"row": last_row, "chart": last_chart}, current
    )


def widget_key(base: str, *, study_id: str, codes: list[tuple[str, str]]) -> str:
    """The key of a chart or table whose selection names a criterion by its place in ``codes``.

    It changes with the study and with its list of criteria, so a new study (or a re-imported
    protocol) gets a new, empty widget: a row index or a bar ticked on one list is never read
    against another (Streamlit keeps a keyed widget's selection while its key stays the same).
    """
    digest = hashlib.sha256(repr((study_id, codes)).encode()).hexdigest()[:12]
    return f"{base}_{digest}"


def forget_stale(key: str, *, study_id: str, widgets: str) -> None:
    """Drop what the drilldown under ``key`` remembers that no longer applies: the pick itself
    when the study changed, and the memory of the last bar and row whenever the widgets are new
    (``widgets``: their key, from ``widget_key``)."""
    state = st.session_state
    if state.get(f"{key}_study", study_id) != study_id:
        state.pop(key, None)
    if state.get(f"{key}_widgets") != widgets:
        state.pop(f"{key}_last_chart", None)
        state.pop(f"{key}_last_row", None)
    state[f"{key}_study"], state[f"{key}_widgets"] = study_id, widgets


def drilldown(key: str, chart_event: Any, table_event: Any, codes: list[tuple[str, str]]) -> Pick:
    """Update and return the drilldown criterion kept under ``key`` in session state; a pick that
    is not one of ``codes`` (the criteria are no longer those it was made on) is dropped."""
    chart, row = chart_pick(chart_event), row_pick(table_event, codes)
    state = st.session_state
    picked = resolve(
        current=state.get(key),
        chart=chart,
        last_chart=state.get(f"{key}_last_chart"),
        row=row,
        last_row=state.get(f"{key}_last_row"),
    )
    if picked is not None and picked not in codes:
        picked = None
    state[f"{key}_last_chart"], state[f"{key}_last_row"] = chart, row
    state[key] = picked
    return picked
