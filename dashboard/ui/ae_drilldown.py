"""The Adverse events drilldown: which cell or bar was clicked last (kept in session state), and
the listing of the events behind it, drawn in the slot beside the control that was clicked, with
CSV and Excel downloads."""

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.markdown import plain
from dashboard.metrics.ae_listing import LISTING_HEADERS, derive_listing, listing_table
from dashboard.metrics.blinding import POOLED
from dashboard.ui import views
from dashboard.ui.ae_picks import EventPick
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import chart_points, latest_pick
from dashboard.ui.shell import PageContext
from dashboard.ui.tables import dashed
from dashboard.views.format import plural


def soc_expander_key(soc: str) -> str:
    """The widget key of a system organ class's expander on the Adverse events page: its state
    (open or not) in session state, the same whatever the filters (tests open a class by it)."""
    return f"ae_soc_{hashlib.sha1(soc.encode()).hexdigest()[:10]}"


PICK_KEY = "ae_pick"  # the current EventPick (tests may set it, as a click leaves it)
_CONTROLS_KEY = "_ae_pick_controls"  # what each control selected at the last run
_STUDY_KEY = "_ae_pick_study"
# Every AE listing's headers in words, the SDTM variable behind each header's help icon
# (``LISTING_HEADERS``); long SOC names and terms kept medium, or they push the onset, severity
# and relationship out of view. The data (and so the downloads) keep the SDTM names.
LISTING_COLUMNS = {
    column: st.column_config.Column(
        header, help=code, width="medium" if column in ("AEBODSYS", "Term") else None
    )
    for column, (header, code) in LISTING_HEADERS.items()
}
# The subject column: a link to the subject's page, headed in words.
SUBJECT_HEADER = LISTING_HEADERS["USUBJID"][0]
# The DS records behind "discontinued for an AE" where AEACN is blank, headed the same way.
DS_HEADERS = {
    "USUBJID": ("Subject", "USUBJID"),
    "SITEID": ("Site", "SITEID"),
    "DSDECOD": ("Disposition", "DSDECOD: the standardized disposition term"),
    "DSTERM": ("Reported reason", "DSTERM: the reported term"),
    "EPOCH": ("Epoch", "EPOCH"),
    "DSSTDTC": ("Date", "DSSTDTC: the start date of the disposition event"),
}


# What the listings' two day columns count from (the caption of every AE listing says it).
STUDY_DAY_NOTE = (
    "Study day: counted from the subject's first dose (day 1; the day before is day -1, no day "
    "0), as on the timeline; AESTDY: as given in the data, counted from the reference start "
    "date (RFSTDTC)."
)


def chart_point(event: Any, selection: str) -> dict[str, Any] | None:
    """The point a click on a chart selected, from ``st.altair_chart``'s event."""
    points = chart_points(event, selection)
    return dict(points[0]) if points else None


def table_cell(event: Any) -> tuple[int, str] | None:
    """The cell selected in a dataframe, from ``st.dataframe``'s event: (row position, column)."""
    try:
        cells = event["selection"]["cells"]
    except (KeyError, TypeError):
        return None
    if not cells:
        return None
    row, column = cells[0]
    return int(row), str(column)


def resolve_pick(study_id: str, controls: dict[str, EventPick | None]) -> EventPick | None:
    """The drilldown of this run from what every control selects now: the one that changed since
    the last run wins, else the drilldown is kept. A pick belongs to its study."""
    state = st.session_state
    if state.get(_STUDY_KEY) != study_id:
        state[_STUDY_KEY] = study_id
        state[_CONTROLS_KEY] = {}
        state.pop(PICK_KEY, None)
    before: dict[str, EventPick | None] = state.get(_CONTROLS_KEY, {})
    current = state.get(PICK_KEY)
    pick = latest_pick(controls, before, current if isinstance(current, EventPick) else None)
    state[_CONTROLS_KEY] = {**before, **controls}
    state[PICK_KEY] = pick
    return pick


def listing_filters(pick: EventPick) -> dict[str, Any]:
    """The filters of ``queries.adverse_events.adverse_event_listing`` that list the events
    behind ``pick`` (the pooled column names no arm; for a viewer who sees no arms the reader
    drops any arm, ``views.reader``)."""
    return {
        "arm": pick.arm if pick.arm != POOLED else None,
        "category": pick.category,
        "soc": pick.soc,
        "pt": pick.pt,
        "dimension": pick.dimension,
        "rank": pick.rank,
        "value": pick.value,
    }


def _file_stem(ctx: PageContext, pick: EventPick, listed: pd.DataFrame) -> str:
    # The arm is named only where the listing itself names it (a viewer who sees no arms gets
    # listings without arm columns).
    arm = pick.arm if "arm" in listed.columns and pick.arm != POOLED else None
    parts = [ctx.study_id, "ae", arm or "all", pick.category or pick.pt or pick.soc or ""]
    if pick.dimension is not None:
        parts.append(f"{pick.dimension}-{pick.rank if pick.value is None else pick.value}")
    text = "-".join(p for p in parts if p)
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:120]


def pick_events(
    ctx: PageContext, pick: EventPick, *, treatment_emergent: bool
) -> tuple[pd.DataFrame, int]:
    """The events behind a pick (at most ``views.adverse_events.LISTING_LIMIT``) and how many
    there are."""
    return views.events(
        ctx.db_url, ctx.cut_id, ctx.view, treatment_emergent, **listing_filters(pick)
    )


def show_events(
    ctx: PageContext,
    pick: EventPick,
    *,
    treatment_emergent: bool,
    discontinuation_from_ds: bool,
) -> None:
    """The listing of the events behind ``pick``, with its downloads."""
    st.markdown(f"**Events behind: {plain(pick.title)}**")  # terms and arms from the data
    if pick.category == "discontinuation" and discontinuation_from_ds:
        records = views.ds_discontinuations(
            ctx.db_url, ctx.cut_id, ctx.view, listing_filters(pick)["arm"]
        )
        st.caption(
            "AEACN is blank for every AE here, so these are the subjects whose disposition "
            "reason (DSDECOD) is ADVERSE EVENT, with their DS record."
        )
        if records.empty:
            st.info("No subject left the study for an adverse event in this selection.")
            return
        table = records.rename(
            columns={
                "usubjid": "USUBJID",
                "site_id": "SITEID",
                "arm": "Arm",
                "term": "DSDECOD",
                "verbatim": "DSTERM",
                "epoch": "EPOCH",
                "dtc": "DSSTDTC",
            }
        )
        linked, links = subject_links(
            table, study_id=ctx.study_id, column="USUBJID", label=SUBJECT_HEADER
        )
        headers = {
            column: st.column_config.Column(header, help=code)
            for column, (header, code) in DS_HEADERS.items()
        }
        st.dataframe(linked, hide_index=True, width="stretch", column_config={**headers, **links})
        download_buttons(table, name=_file_stem(ctx, pick, records), sheet="DS")
        return
    if pick.rank == -1:
        st.info("These subjects had no AE in the current selection: there are no events to list.")
        return
    events, total = pick_events(ctx, pick, treatment_emergent=treatment_emergent)
    if events.empty:
        st.info("No events behind this figure in the current selection.")
        return
    table = listing_table(
        derive_listing(events, compare_cut_id=ctx.compare_cut_id),
        show_new=ctx.compare_cut_id is not None,
    )
    subjects = events["usubjid"].nunique()
    shown = f"the first {len(events)} of {total}" if total > len(events) else f"{total}"
    events_word = "event" if total == 1 else "events"
    st.caption(f"{shown} {events_word} in {plural(subjects, 'subject')}.", help=STUDY_DAY_NOTE)
    linked, links = subject_links(
        table, study_id=ctx.study_id, column="USUBJID", label=SUBJECT_HEADER
    )
    st.dataframe(
        dashed(linked),
        hide_index=True,
        width="stretch",
        column_config={**LISTING_COLUMNS, **links},
    )
    download_buttons(table, name=_file_stem(ctx, pick, events), sheet="AE")
