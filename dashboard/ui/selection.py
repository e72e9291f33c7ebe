"""Clicks and selections as filters: which drilldown a page shows after a rerun (``latest_pick``:
whichever control changed last), and for the Screen failures page which criterion, a bar click or
a table row, kept in session state across reruns and filter changes."""

import hashlib
import json
from dataclasses import dataclass
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


def widget_event(key: str) -> Any:
    """What a keyed chart or table last sent from the browser (its selection), read from session
    state before it is drawn in this run; None before any."""
    return st.session_state.get(key)


@dataclass(frozen=True)
class CriterionDrilldown:
    """The criterion picked on the Screen failures page and the keys to draw its chart and table
    with (the table's selection already set to the picked row)."""

    picked: Pick
    chart_key: str
    table_key: str


def criterion_drilldown(
    key: str, *, study_id: str, codes: list[tuple[str, str]], chart_base: str, table_base: str
) -> CriterionDrilldown:
    """The criterion the chart or the table picks, kept under ``key`` in session state, with the
    two made to agree: both are read before either is drawn, so the chart can be drawn with the
    picked bar highlighted and the table with the picked row ticked.

    A row ticked sets the table's selection in session state only where it differs (Streamlit
    lets a table's selection be set, not a chart's). A chart still holding another bar than the
    pick (a row was ticked since) is drawn anew under a new key, empty, so a click on that bar
    counts again. The memory of the last bar and row is updated to what is shown, so only a
    user's own click or tick counts as a change on the next run.
    """
    state = st.session_state
    table_key = widget_key(table_base, study_id=study_id, codes=codes)
    forget_stale(key, study_id=study_id, widgets=table_key)
    round_key = f"{key}_chart_round"
    # The chart's key: its base for this study and criteria, and the round (a new one draws the
    # chart anew, empty).
    chart_base_key = widget_key(chart_base, study_id=study_id, codes=codes)
    chart_key = f"{chart_base_key}_{state.get(round_key, 0)}"
    chart = chart_pick(widget_event(chart_key))
    row = row_pick(widget_event(table_key), codes)
    current = state.get(key)
    picked = resolve(
        current=current,
        chart=chart,
        last_chart=state.get(f"{key}_last_chart"),
        row=row,
        last_row=state.get(f"{key}_last_row"),
    )
    if picked is not None and picked not in codes:
        picked = None
    if chart is not None and chart != picked:
        state[round_key] = state.get(round_key, 0) + 1
        chart_key = f"{chart_base_key}_{state[round_key]}"
        chart = None
    if row != picked:
        rows = [codes.index(picked)] if picked is not None else []
        state[table_key] = {"selection": {"rows": rows, "columns": []}}
    state[f"{key}_last_chart"], state[f"{key}_last_row"] = chart, picked
    state[key] = picked
    return CriterionDrilldown(picked, chart_key, table_key)


def failed_heading(subjects: int, criterion: str) -> str:
    """The drilldown list's heading, naming what was picked: "5 subjects failed INCL02"."""
    return f"{subjects} subject{'' if subjects == 1 else 's'} failed {criterion}"


def bring_into_view(key: str, pick: object) -> None:
    """Scroll the page to the container drawn with ``st.container(key=key)`` (a drilldown's list)
    on the run where ``pick``, what it lists, changed: a list opened by a click far up the page is
    otherwise drawn below the fold. Call it inside the container, after what it shows.

    Streamlit has no call for it, so a few lines of script do it (``key`` is the page's own
    constant, never data). A new number each time makes the element new, so the script runs again
    for each pick.
    """
    memory = f"_in_view_{key}"
    if st.session_state.get(memory) == pick:
        return
    st.session_state[memory] = pick
    if pick is None:
        return
    st.session_state["_in_view"] = st.session_state.get("_in_view", 0) + 1
    selector = json.dumps(f".st-key-{key}")
    st.html(
        f"""<script data-run="{st.session_state["_in_view"]}">
(() => {{
  const go = (tries) => {{
    const target = document.querySelector({selector});
    if (target) {{
      target.style.scrollMarginTop = "4.5rem";  // below Streamlit's fixed header
      target.scrollIntoView({{block: "start"}});
    }} else if (tries > 0) {{
      setTimeout(() => go(tries - 1), 100);
    }}
  }};
  go(50);
}})();
</script>""",
        unsafe_allow_javascript=True,
    )
