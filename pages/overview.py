"""Overview: the study's identity, headline numbers and what changed since the previous cut."""

import streamlit as st

from dashboard.ui import views
from dashboard.ui.report import pack_downloads
from dashboard.ui.shell import metric_row, no_subjects_message, page_context, page_header

ctx = page_context()
view = views.overview_view(ctx.db_url, ctx.cut_id, ctx.view)
study = view.frame.study
page_header(study.title or study.study_id, ctx)

# The page leads with what changed since the compared cut (the monitoring meeting's question).
if view.changes_sentence:
    st.info(view.changes_sentence, icon=":material/update:")
metric_row(view.metrics)
if view.study_wide_sentence:
    # A site user may know how the whole study is doing, but only as totals: no site's figures.
    st.info(view.study_wide_sentence, icon=":material/public:")

study_column, changes_column = st.columns([3, 2])
with study_column:
    st.subheader("Study")
    st.markdown("  \n".join(f"**{label}:** {value}" for label, value in view.identity))
    if view.planned_recruitment:
        st.caption(view.planned_recruitment)
with changes_column:
    if view.counts.screened == 0:
        no_subjects_message(ctx)
    elif view.changes is not None and view.frame.since_cut is not None:
        st.subheader(f"Since cut {view.frame.since_cut.id}")
        st.dataframe(view.changes_table, hide_index=True, width="stretch")
    else:
        st.caption("Only one data cut is loaded: nothing to compare with yet.")

with changes_column:
    st.subheader("Monitoring-meeting pack")
    st.caption(
        "Everything above and on the other pages in one PDF and one workbook, for the sites in "
        "view, new rows marked against the “compare with” cut."
    )
    pack_downloads(ctx)
