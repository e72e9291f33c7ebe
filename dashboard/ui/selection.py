"""Which criterion the Screen failures drilldown shows: a bar click or a table row, whichever
changed last, kept in session state across reruns and filter changes."""

from typing import Any

import streamlit as st

from dashboard.charts.screen_failures import SELECTION
from dashboard.metrics.picks import latest_pick

Pick = tuple[str, str] | None  # (criterion code, protocol version)


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


def drilldown(key: str, chart_event: Any, table_event: Any, codes: list[tuple[str, str]]) -> Pick:
    """Update and return the drilldown criterion kept under ``key`` in session state."""
    chart, row = chart_pick(chart_event), row_pick(table_event, codes)
    state = st.session_state
    picked = resolve(
        current=state.get(key),
        chart=chart,
        last_chart=state.get(f"{key}_last_chart"),
        row=row,
        last_row=state.get(f"{key}_last_row"),
    )
    state[f"{key}_last_chart"], state[f"{key}_last_row"] = chart, row
    state[key] = picked
    return picked
