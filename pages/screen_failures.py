"""Screen failures: reasons by eligibility criterion."""

import streamlit as st

from dashboard.charts.screen_failures import criteria_chart
from dashboard.ui import loaders
from dashboard.ui.format import percent
from dashboard.ui.shell import no_subjects_message, page_context, page_header

ctx = page_context()
page_header("Screen failures", ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
by_criterion, reasons = loaders.load_failures_by_criterion(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope
)
failures, rate, several = st.columns(3)
failures.metric("Screen failures", counts.screen_failures)
rate.metric("Screen-failure rate", percent(counts.screen_failures, counts.screened))
several.metric("Failed more than one criterion", reasons["more_than_one"])

if counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()

st.subheader("Failures by criterion")
latest = ctx.latest_cut
if latest is not None and "IE" not in latest.domains:
    st.warning(
        f"No IE domain in data cut {latest.id}: failures by criterion are unknown "
        f"({counts.screen_failures} screen failures without a recorded reason). Import a package "
        "with an IE dataset to see them."
    )
    if not by_criterion.empty:
        st.caption(f"The protocol's {len(by_criterion)} criteria (TI), for reference:")
        st.dataframe(
            by_criterion[["code", "protocol_version", "category", "text"]].rename(
                columns={
                    "code": "Code",
                    "protocol_version": "Version",
                    "category": "Category",
                    "text": "Criterion (protocol wording)",
                }
            ),
            hide_index=True,
            width="stretch",
        )
elif by_criterion.empty:
    st.info(
        "No eligibility criteria are recorded for this study (no TI domain or registry criteria): "
        "failures by criterion are unknown."
    )
else:
    st.altair_chart(criteria_chart(by_criterion, screened=counts.screened), width="stretch")
    unexplained = counts.screen_failures - reasons["with_reason"]
    st.caption(
        "Bars count distinct screen-failed subjects per criterion. A subject can fail several "
        f"criteria, so the bars do not add up to the {counts.screen_failures} screen failures: "
        f"{reasons['more_than_one']} failed more than one."
        + (f" {unexplained} screen failure(s) have no criterion recorded." if unexplained else "")
    )
    table = by_criterion.assign(
        share=lambda f: f["subjects"].map(lambda n: percent(n, counts.screened, 1))
    )[["code", "protocol_version", "category", "text", "subjects", "share"]]
    if not table["protocol_version"].astype(bool).any():
        table = table.drop(columns="protocol_version")  # one protocol version: nothing to show
    st.dataframe(
        table.rename(
            columns={
                "code": "Code",
                "protocol_version": "Version",
                "category": "Category",
                "text": "Criterion (protocol wording)",
                "subjects": "Subjects",
                "share": "% of screened",
            }
        ),
        hide_index=True,
        width="stretch",
    )
