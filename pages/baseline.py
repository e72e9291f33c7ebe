"""Baseline: characteristics of the enrolled subjects."""

import streamlit as st

from dashboard.charts.baseline import age_chart
from dashboard.metrics.baseline import baseline_table, format_mean_sd, weighted_mean_sd
from dashboard.ui import loaders
from dashboard.ui.format import percent
from dashboard.ui.shell import no_subjects_message, page_context, page_header

ctx = page_context()
page_header("Baseline characteristics", ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
numeric, demographics, bands = loaders.load_baseline(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope
)
age_mean, age_sd = weighted_mean_sd(demographics["age"], demographics["subjects"])
female = int(demographics.loc[demographics["sex"] == "F", "subjects"].sum())

enrolled, age, women = st.columns(3)
enrolled.metric("Enrolled", counts.enrolled)
age.metric("Age, mean (SD)", format_mean_sd(age_mean, age_sd))
women.metric("Female", f"{female} ({percent(female, counts.enrolled)})")

if counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()
if counts.enrolled == 0:
    st.info(
        "Nobody is enrolled yet: baseline characteristics appear with the first enrolled subject."
    )
    st.stop()

left, right = st.columns([3, 2])
with left:
    st.subheader("Baseline measurements")
    if numeric.empty:
        st.info("No baseline findings (VS, LB, QS, SC) in the data.")
    else:
        st.dataframe(baseline_table(numeric), hide_index=True, width="stretch")
with right:
    st.subheader("Age")
    st.altair_chart(age_chart(bands), width="stretch")
