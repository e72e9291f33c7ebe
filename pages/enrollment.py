"""Enrollment: progress against the target over time."""

import streamlit as st

from dashboard.charts.enrollment import accrual_chart
from dashboard.ui import loaders
from dashboard.ui.format import count_of, percent
from dashboard.ui.shell import no_subjects_message, page_context, page_header

ctx = page_context()
study = ctx.study
page_header("Enrollment", ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
target = study.planned_enrollment
screened, enrolled, share, failure_rate = st.columns(4)
screened.metric("Screened", counts.screened)
enrolled.metric("Enrolled / target", count_of(counts.enrolled, target))
share.metric("Share of target", percent(counts.enrolled, target or 0))
failure_rate.metric("Screen-failure rate", percent(counts.screen_failures, counts.screened))

if counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()

cutoff = ctx.latest_cut.cutoff_date if ctx.latest_cut else None
accrual, undated = loaders.load_accrual(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, cutoff)
st.subheader("Cumulative enrollment against the target")
if accrual.empty:
    st.info("No screening or enrollment dates in the data: enrollment over time cannot be drawn.")
else:
    st.altair_chart(
        accrual_chart(
            accrual,
            target=target if not ctx.scope else None,  # the study target is not a site's target
            cutoff=cutoff,
            planned_start=study.planned_start,
            planned_end=study.planned_end,
        ),
        width="stretch",
    )
    st.caption(
        "Screened by screening date, enrolled by enrollment date; the dashed grey line is the planned "
        "recruitment (linear from the planned start to the planned end)."
        + (" The study target is hidden while a site filter is on." if ctx.scope else "")
    )
if undated["screened"] or undated["enrolled"]:
    st.warning(
        f"Not on the chart: {undated['screened']} subject(s) without a screening date, "
        f"{undated['enrolled']} enrolled subject(s) without an enrollment date."
    )

by_arm = loaders.load_enrolled_by_arm(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
if len(by_arm) > 1:
    st.subheader("Enrolled by planned arm")
    st.dataframe(
        by_arm.rename(columns={"arm_code": "Arm code", "arm": "Arm", "enrolled": "Enrolled"}),
        hide_index=True,
    )
