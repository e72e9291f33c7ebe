"""Screen failures: reasons by criterion, the drilldown to the subjects, over time and by site, and
eligibility checks of the enrolled subjects."""

import streamlit as st

from dashboard.charts.screen_failures import (
    SELECTION,
    criteria_chart,
    monthly_rate_chart,
    site_criterion_heatmap,
)
from dashboard.metrics.screen_failures import (
    criterion_label,
    mark_new_subjects,
    monthly_failure_rate,
    site_criterion_grid,
    with_new_failures,
)
from dashboard.ui import loaders
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import drilldown, forget_stale, widget_key
from dashboard.ui.shell import no_subjects_message, page_context, page_header, period_filter
from dashboard.views.format import percent

DRILLDOWN_KEY = "screen_failures_criterion"
CHART_KEY = "screen_failures_chart"  # the bases of the widgets' keys: see selection.widget_key
TABLE_KEY = "screen_failures_table"

ctx = page_context()
page_header("Screen failures", ctx)
period = period_filter(ctx)  # "who failed the BMI criterion this month?"

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period)
by_criterion, reasons = loaders.load_failures_for_period(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period
)
deviations, checked, unreadable, no_data = loaders.load_eligibility_checks(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period, ctx.study.min_age, ctx.study.max_age
)
compare = ctx.compare_cut_id  # "new since" this earlier cut (None: one cut only)
changes = (
    loaders.load_subject_changes_since(
        ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, compare, period
    )
    if compare is not None
    else None
)
failures, rate, several, flagged = st.columns(4)
failures.metric(
    "Screen failures",
    counts.screen_failures,
    delta=f"+{changes.new_screen_failures} new since cut {compare}" if changes else None,
    delta_color="off",
    delta_arrow="off",
)
rate.metric("Screen-failure rate", percent(counts.screen_failures, counts.screened))
several.metric("Failed more than one criterion", reasons["more_than_one"])
flagged.metric("Enrolled despite a rule", deviations["usubjid"].nunique())

if counts.screened == 0:
    if period is not None:
        st.info("Nobody was screened in this period: widen the dates to see the study.")
    else:
        no_subjects_message(ctx)
    st.stop()

cooccurrence, daily, site_counts, ds_reasons = loaders.load_failure_details(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period
)
latest = ctx.latest_cut
ie_missing = latest is not None and "IE" not in latest.domains

st.subheader("Failures by criterion")
if ie_missing:
    st.warning(
        f"No IE domain in data cut {latest.id if latest else ''}: failures by criterion are unknown "
        f"({counts.screen_failures} screen failures without a recorded reason). Shown instead: what "
        "DS says about them, and screen failures over time and by site."
    )
    if not ds_reasons.empty:
        st.dataframe(
            ds_reasons.rename(
                columns={
                    "term": "DS reason (DSDECOD)",
                    "verbatim": "Verbatim (DSTERM)",
                    "subjects": "Subjects",
                }
            ),
            hide_index=True,
        )
    if not by_criterion.empty:
        with st.expander(f"The protocol's {len(by_criterion)} criteria (TI)"):
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
    codes = list(zip(by_criterion["code"], by_criterion["protocol_version"], strict=True))
    # The chart and the table name a criterion by bar and by row: new ones for every study and
    # list of criteria, so a row picked in one study never opens a criterion of another.
    chart_key = widget_key(CHART_KEY, study_id=ctx.study_id, codes=codes)
    table_key = widget_key(TABLE_KEY, study_id=ctx.study_id, codes=codes)
    forget_stale(DRILLDOWN_KEY, study_id=ctx.study_id, widgets=table_key)
    chart_event = st.altair_chart(
        criteria_chart(by_criterion, screened=counts.screened),
        width="stretch",
        on_select="rerun",
        selection_mode=[SELECTION],
        key=chart_key,
    )
    unexplained = counts.screen_failures - reasons["with_reason"]
    st.caption(
        "Bars count distinct screen-failed subjects per criterion; click a bar (or tick a row "
        "below) to list them. A subject can fail several criteria, so the bars do not add up to "
        f"the {counts.screen_failures} screen failures: {reasons['more_than_one']} failed more "
        "than one."
        + (f" {unexplained} screen failure(s) have no criterion recorded." if unexplained else "")
    )
    new_failures = (
        loaders.load_new_failures_by_criterion(
            ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period, compare
        )
        if compare is not None
        else None
    )
    table = with_new_failures(by_criterion, new_failures).assign(
        share=lambda f: f["subjects"].map(lambda n: percent(n, counts.screened, 1))
    )[
        ["code", "protocol_version", "category", "text", "subjects", "share"]
        + (["new_subjects"] if new_failures is not None else [])
    ]
    if not table["protocol_version"].astype(bool).any():
        table = table.drop(columns="protocol_version")  # one protocol version: nothing to show
    table_event = st.dataframe(
        table.rename(
            columns={
                "code": "Code",
                "protocol_version": "Version",
                "category": "Category",
                "text": "Criterion (protocol wording)",
                "subjects": "Subjects",
                "share": "% of screened",
                "new_subjects": f"New since cut {compare}",
            }
        ),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=table_key,
    )
    # A criterion no longer in the list (the protocol was re-imported) is dropped.
    picked = drilldown(DRILLDOWN_KEY, chart_event, table_event, codes)

    if not cooccurrence.empty:
        st.markdown("**Criteria failed together** (subjects failing both)")
        st.dataframe(
            cooccurrence.rename(
                columns={"first": "Criterion", "second": "with", "subjects": "Subjects"}
            ),
            hide_index=True,
        )

    if picked is not None:
        code, version = picked
        wording = by_criterion.set_index(["code", "protocol_version"]).loc[picked, "text"]
        st.subheader(f"Who failed {criterion_label(code, version)}")
        st.caption(str(wording))
        subjects = loaders.load_failed_subjects(
            ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period, code, version
        )
        if subjects.empty:
            st.info("Nobody failed this criterion in the current selection.")
        else:
            listed = mark_new_subjects(subjects, compare_cut_id=compare)
            shown, links = subject_links(listed, study_id=ctx.study_id)
            st.dataframe(
                shown,
                hide_index=True,
                width="stretch",
                column_config={
                    **links,
                    "new": st.column_config.CheckboxColumn(
                        "New", help=f"First seen in a data cut after cut {compare}"
                    ),
                    "site_id": "Site",
                    "screening_date": st.column_config.DateColumn("Screened"),
                    "failed_criteria": "Criteria failed",
                },
            )
            download_buttons(listed, name=f"{ctx.study_id}-{code}-screen-failures", sheet=code)

st.subheader("Over time")
monthly = monthly_failure_rate(daily)
if monthly.empty:
    st.info("No screening dates in the data: the rate over time cannot be drawn.")
else:
    st.altair_chart(monthly_rate_chart(monthly), width="stretch")
    st.caption("Subjects by month of screening; the line is the share of them who failed.")

if ctx.site_count > 1:
    st.subheader("By site")
    sites = loaders.load_sites_accrual(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period)
    if ie_missing or by_criterion.empty:
        st.dataframe(
            sites[["site_id", "screened", "screen_failures"]]
            .assign(
                rate=lambda f: [
                    percent(a, b) for a, b in zip(f["screen_failures"], f["screened"], strict=True)
                ]
            )
            .rename(
                columns={
                    "site_id": "Site",
                    "screened": "Screened",
                    "screen_failures": "Screen failures",
                    "rate": "Rate",
                }
            ),
            hide_index=True,
        )
    else:
        grid = site_criterion_grid(site_counts, sites=sites, criteria=by_criterion)
        st.altair_chart(site_criterion_heatmap(grid), width="stretch")
        st.caption(
            "Screen-failed subjects per site and criterion; the colour is the share of the site's "
            "screened subjects, so a site that fails one criterion far more often stands out."
        )

st.subheader("Eligibility checks of enrolled subjects")
if deviations.empty:
    st.success(
        f"No enrolled subject breaks a checked rule ({len(checked)} rule(s) checked)."
        if checked
        else "No machine-checkable rule is recorded for this study's criteria."
    )
else:
    st.error(
        f"{deviations['usubjid'].nunique()} enrolled subject(s) have screening values that break "
        "an eligibility rule: possible protocol deviations to review."
    )
    shown, links = subject_links(deviations, study_id=ctx.study_id)
    st.dataframe(
        shown.rename(
            columns={
                "code": "Criterion",
                "category": "Category",
                "criterion": "Wording",
                "rule": "Rule",
                "variable": "Variable",
                "location": "Location",
                "value": "Value",
            }
        ),
        hide_index=True,
        width="stretch",
        column_config=links,
    )
notes = [f"Checked: {'; '.join(checked)}."] if checked else []
if no_data:
    notes.append(f"No screening data for {', '.join(no_data)}: not checked.")
if unreadable:
    notes.append(f"Rules not read: {'; '.join(unreadable)}.")
if notes:
    st.caption(" ".join(notes))
