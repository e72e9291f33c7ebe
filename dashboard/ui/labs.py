"""The Labs page's parts that are more than a call: the page's choices as its widgets hold them,
and what a click on a table cell lists."""

import pandas as pd
import streamlit as st

from dashboard.metrics.labs import TOTAL
from dashboard.ui import views
from dashboard.ui.ae_drilldown import table_cell
from dashboard.ui.links import subject_links
from dashboard.ui.shell import PageContext
from dashboard.views.format import plural
from dashboard.views.labs import ALL_ARMS, LabsOptions

DOMAIN_KEY, MEASUREMENT_KEY, TERM_KEY = "labs_domain", "labs_measurement", "labs_term"
WINDOW_KEY, WINDOW_DAYS_KEY = "labs_window", "labs_window_days"
DEFAULT_WINDOW_DAYS = 30


def options() -> LabsOptions:
    """The page's choices from its widgets' state (the view resolves the defaults)."""
    state = st.session_state
    window = int(state.get(WINDOW_DAYS_KEY, DEFAULT_WINDOW_DAYS))
    return LabsOptions(
        domain=str(state.get(DOMAIN_KEY, "LB")),
        measurement=state.get(MEASUREMENT_KEY),
        term=state.get(TERM_KEY),
        window_days=window if state.get(WINDOW_KEY, False) else None,
    )


ROW_PIXELS, MAX_TABLE_PIXELS = 35, 760


def table_height(frame: pd.DataFrame) -> int:
    """A height that shows every row of a shift table (a few arms of five rows) without an inner
    scroll bar, up to a limit."""
    return min(ROW_PIXELS * (len(frame) + 1) + 3, MAX_TABLE_PIXELS)


def forget_choices(*keys: str) -> None:
    """Drop choices that belong to the one changed (a measurement of another domain, the term of
    another measurement): the view picks their defaults again."""
    for key in keys:
        st.session_state.pop(key, None)


def shift_cell(
    event: object, shown: pd.DataFrame
) -> tuple[str | None, str | None, str | None] | None:
    """The clicked cell of a shift table as ``views.labs.shift_display`` shows it: (arm,
    baseline, worst), None for "All arms" or a Total; None where no count cell was clicked."""
    cell = table_cell(event)
    if cell is None or cell[1] in ("Arm", "Baseline") or cell[0] >= len(shown):
        return None
    row = shown.iloc[cell[0]]
    arm = None if row["Arm"] == ALL_ARMS else str(row["Arm"])
    baseline = None if row["Baseline"] == TOTAL else str(row["Baseline"])
    worst = None if cell[1] == TOTAL else cell[1]
    return arm, baseline, worst


def shift_table(
    context: PageContext,
    shown: pd.DataFrame,
    *,
    domain: str,
    measurement: str,
    term: str | None,
    key: str,
    caption: str,
) -> None:
    """A shift table as ``views.labs.shift_display`` lays it out (``shown``), every row in view,
    and under it the subjects of the count clicked (read for that cell:
    ``views.labs.shift_subjects``; ``term`` None for the range shift, else the CTCAE term of the
    grade shift)."""
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=table_height(shown),
        on_select="rerun",
        selection_mode="single-cell",
        key=key,
        column_config={"Arm": st.column_config.Column(pinned=True)},
    )
    st.caption(caption)
    cell = shift_cell(event, shown)
    if cell is not None:
        picked = views.lab_shift_subjects(
            context.db_url, context.cut_id, context.view, domain, measurement, term, cell
        )
        list_subjects(context, picked, "Subjects in the cell")


def list_subjects(context: PageContext, subjects: pd.DataFrame, what: str) -> None:
    """A drilldown's subjects, each a link to the Subject page."""
    st.markdown(f"**{what}**: {plural(len(subjects), 'subject')}")
    if subjects.empty:
        return
    shown, config = subject_links(subjects, study_id=context.study_id)
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)
