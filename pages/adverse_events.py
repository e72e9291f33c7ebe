"""Adverse events: incidence by system organ class."""

import streamlit as st

from dashboard.charts.adverse_events import soc_chart
from dashboard.ui import loaders
from dashboard.ui.format import percent
from dashboard.ui.shell import domain_missing, no_subjects_message, page_context, page_header

ctx = page_context()
page_header("Adverse events", ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
ae, by_soc = loaders.load_adverse_events(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
subjects, events, serious, serious_events = st.columns(4)
subjects.metric("Subjects with an AE", f"{ae.subjects} ({percent(ae.subjects, counts.enrolled)})")
events.metric("AE events", ae.events)
serious.metric(
    "Subjects with an SAE",
    f"{ae.serious_subjects} ({percent(ae.serious_subjects, counts.enrolled)})",
)
serious_events.metric("SAE events", ae.serious_events)

if counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()
if domain_missing(ctx, "AE", "adverse events are unknown, not zero"):
    st.stop()
if ae.events == 0:
    st.info("No adverse events in the data for this selection.")
    st.stop()

st.subheader("Incidence by system organ class")
st.altair_chart(soc_chart(by_soc, denominator=counts.enrolled), width="stretch")
st.caption(
    f"Subjects with at least one event over the {counts.enrolled} enrolled subjects; "
    "events are in the tooltip. Every AE in the data is counted."
)
