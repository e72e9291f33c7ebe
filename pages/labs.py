"""Labs (issue #21): laboratory tests and vital signs of the safety population. For one
measurement, the shift from baseline to the worst post-baseline value (low / normal / high, and
the CTCAE v5 grade) by arm; abnormal values by arm for every measurement; the eDISH plot of peak
transaminase against peak bilirubin with the potential Hy's law cases; the values by visit. A
click on any count lists its subjects, each a link to the Subject page."""

import streamlit as st

from dashboard.charts.labs import EDISH_DOT_LIMIT
from dashboard.metrics.labs import HYS_LAW
from dashboard.ui import labs, views
from dashboard.ui.ae_drilldown import table_cell
from dashboard.ui.shell import metric_row, no_subjects_message, page_context, page_header
from dashboard.views.format import plural
from dashboard.views.labs import DOMAIN_NAMES, INCIDENCE_FLAGS, incidence_display

ctx = page_context()
page_header("Labs", ctx)

choices = labs.options()
view = views.labs_view(ctx.db_url, ctx.cut_id, ctx.view, choices)
if view.frame.cut is None:  # a registry record only: no data to show yet
    no_subjects_message(ctx)
    st.stop()
if view.summary_missing:
    st.warning(
        "This study's laboratory and vital-sign figures are counted when a data cut is imported, "
        "and its current cut was stored before they were: import the study again to fill in "
        "this page."
    )
    st.stop()
if not view.domains:
    st.info(
        "No laboratory or vital-sign records for the treated subjects in this selection: the "
        "page fills in once a data cut with LB or VS records is imported."
    )
    st.stop()

# The choices: the domain (where the study has both), the measurement, and, below, the term.
if len(view.domains) > 1:
    st.segmented_control(
        "Domain",
        list(view.domains),
        format_func=DOMAIN_NAMES.__getitem__,
        default=view.options.domain,
        key=labs.DOMAIN_KEY,
        on_change=labs.forget_choices,
        args=(labs.MEASUREMENT_KEY, labs.TERM_KEY),
    )
labels = view.measurements["label"].tolist()
st.selectbox(
    "Measurement",
    labels,
    index=labels.index(view.options.measurement) if view.options.measurement in labels else 0,
    key=labs.MEASUREMENT_KEY,
    on_change=labs.forget_choices,
    args=(labs.TERM_KEY,),
    help="A test with several positions, time points or specimens is several measurements.",
)
measurement = view.options.measurement or ""
metric_row(view.metrics)
# The tables as shown and the charts' specs, composed once per view (not on every rerun).
shown = views.labs_page_display(ctx.db_url, ctx.cut_id, ctx.view, choices)

st.caption(
    "Treated subjects by actual arm (as the safety tables count them); values in standard units."
    + (f" {view.blinding_note}" if view.blinding_note else "")
)
with st.expander("How these figures are counted"):
    for rule in view.rules:
        st.markdown(f"- {rule}")

# -- 1. shift from baseline ------------------------------------------------------------------------
st.subheader("Shift from baseline")
range_tab, grade_tab = st.tabs(["Low / normal / high", "CTCAE grade"])
with range_tab:
    if shown.range_shift is None:
        st.info(f"No subject has both a post-baseline value and a range class for {measurement}.")
    else:
        labs.shift_table(
            ctx,
            shown.range_shift,
            domain=view.options.domain,
            measurement=measurement,
            term=None,
            key=f"labs_range_shift_{measurement}",
            caption=f"{measurement}: subjects n (% of the arm's subjects with a post-baseline "
            "value) by baseline class (rows) and worst post-baseline class (columns). Click a "
            "count to list its subjects.",
        )
with grade_tab:
    if not view.terms:
        st.info(
            f"{measurement} has no NCI CTCAE v5 laboratory criterion this dashboard derives "
            "(docs/lab-grading.md lists them): see its low / normal / high shift."
        )
    else:
        if len(view.terms) > 1:
            st.radio("CTCAE term", list(view.terms), key=labs.TERM_KEY, horizontal=True)
        if shown.grade_shift is None:
            st.info(f"No subject has a graded post-baseline value of {measurement}.")
        else:
            labs.shift_table(
                ctx,
                shown.grade_shift,
                domain=view.options.domain,
                measurement=measurement,
                term=view.options.term,
                key=f"labs_grade_shift_{measurement}_{view.options.term}",
                caption=f"{view.options.term}: baseline grade (rows) against the worst "
                "post-baseline grade (columns), as LBTOXGR gives it or derived from the value, the "
                "normal range and the baseline after NCI CTCAE v5. Click a count to list its "
                "subjects.",
            )

# -- 2. abnormal values by arm ---------------------------------------------------------------------
st.subheader("Abnormal post-baseline values by arm")
flag = st.segmented_control(
    "Subjects with at least one value",
    list(INCIDENCE_FLAGS),
    format_func=INCIDENCE_FLAGS.__getitem__,
    default="high",
    key="labs_incidence_flag",
)
flag = flag or "high"
incidence = incidence_display(view.incidence, flag)
incidence_event = st.dataframe(
    incidence,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-cell",
    key=f"labs_incidence_{view.options.domain}_{flag}",
    column_config={"Measurement": st.column_config.Column(pinned=True)},
)
st.caption(
    "n/N (%): subjects with at least one such post-baseline value, of the arm's subjects with a "
    "post-baseline value of the measurement; '-' where the measurement has no CTCAE grade. Click "
    "a count to list its subjects."
)
cell = table_cell(incidence_event)
if cell is not None and cell[1] != "Measurement" and cell[0] < len(incidence):
    chosen = str(incidence["Measurement"].iloc[cell[0]])
    arm = None if cell[1] == "All" else cell[1]
    found = views.lab_incidence_subjects(
        ctx.db_url, ctx.cut_id, ctx.view, view.options.domain, chosen, arm, flag
    )
    labs.list_subjects(ctx, found, f"{chosen}, {cell[1]}: {INCIDENCE_FLAGS[flag].lower()}")

# -- 3. liver: eDISH -----------------------------------------------------------------------------------
if view.options.domain == "LB":
    st.subheader("Liver: eDISH and potential Hy's law")
    window_pick, days_pick = st.columns([2, 1])
    window_pick.toggle("Bilirubin within a window after the transaminase", key=labs.WINDOW_KEY)
    if st.session_state.get(labs.WINDOW_KEY):
        days_pick.number_input(
            "Days", min_value=0, max_value=365, step=1, key=labs.WINDOW_DAYS_KEY,
            value=labs.DEFAULT_WINDOW_DAYS,
        )  # fmt: skip
    if shown.edish is None:
        st.info(
            "No treated subject has an on-treatment ALT or AST and a total bilirubin with a ULN."
        )
    else:
        st.vega_lite_chart(shown.edish, width="stretch")
        shaded = (
            f" With more than {EDISH_DOT_LIMIT:,} subjects, those in the normal range are shaded "
            "cells (darker: more subjects; hover for the count) and the others are points."
            if shown.edish_shaded
            else ""
        )
        st.caption(view.rules[-1] + " A click on a point opens the subject's page." + shaded)
        cases = view.edish[view.edish["quadrant"] == HYS_LAW]
        if cases.empty:
            st.markdown("**Potential Hy's law**: no subject.")
        else:
            listing = cases[
                ["usubjid", "site_id", "arm", "peak_transaminase_uln", "peak_bili_uln"]
            ].rename(
                columns={
                    "site_id": "Site",
                    "arm": "Arm",
                    "peak_transaminase_uln": "Peak ALT or AST (x ULN)",
                    "peak_bili_uln": "Peak bilirubin (x ULN)",
                }
            )
            labs.list_subjects(ctx, listing.round(2), "Potential Hy's law")

# -- 4. values over time -------------------------------------------------------------------------------
st.subheader("Values by visit")
if shown.boxes is None:
    st.info(f"No values of {measurement} at a scheduled visit in this selection.")
else:
    st.vega_lite_chart(shown.boxes, width="stretch")
    left_out = view.unscheduled
    st.caption(
        f"{measurement}: the values at each scheduled visit by arm (box: quartiles, whiskers: "
        "lowest and highest)"
        + (
            f"; {plural(left_out, 'value')} of unscheduled visits (VISITNUM not a whole number) "
            "left out"
            if left_out
            else ""
        )
        + ". A subject's own values over time are on the Subject page."
    )
