"""Screen failures: reasons by criterion, the drilldown to the subjects, over time and by site, and
eligibility checks of the enrolled subjects."""

import streamlit as st

from dashboard.charts.screen_failures import (
    SELECTION,
    criteria_chart,
    monthly_rate_chart,
    site_criterion_heatmap,
)
from dashboard.markdown import plain
from dashboard.metrics.screen_failures import (
    criterion_label,
    mark_new_subjects,
)
from dashboard.ui import review, views
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import bring_into_view, criterion_drilldown, failed_heading
from dashboard.ui.shell import (
    metric_row,
    no_subjects_message,
    page_context,
    page_header,
    period_filter,
)
from dashboard.ui.tables import dashed
from dashboard.views.format import nobody_screened, period_words, plural, verb

DRILLDOWN_KEY = "screen_failures_criterion"
CHART_KEY = "screen_failures_chart"  # the bases of the widgets' keys: see selection.widget_key
TABLE_KEY = "screen_failures_table"
LIST_ANCHOR = "who-failed"  # the drilldown list's heading
LIST_KEY = "screen_failures_list"  # its container, scrolled to when a criterion is picked

ctx = page_context()
page_header("Screen failures", ctx)
who = review.review_as(ctx)
period = period_filter(ctx)  # "who failed the BMI criterion this month?"
view = views.screen_failures_view(ctx.db_url, ctx.cut_id, ctx.view_for(period))
counts = view.counts
by_criterion = view.by_criterion
compare = view.frame.since_cut.id if view.frame.since_cut else None
compare_number = view.frame.since_cut.number if view.frame.since_cut else None  # as users know it
metric_row(view.metrics)

if counts.screened == 0:
    if period is not None:
        st.info(nobody_screened(period))
    else:
        no_subjects_message(ctx)
    st.stop()

latest = view.frame.cut
ie_missing = view.ie_missing

st.subheader("Failures by criterion")
if ie_missing:
    st.warning(
        f"No IE domain in data {latest.name if latest else 'cut'}: failures by criterion are unknown "
        f"({counts.screen_failures} screen failures without a recorded reason). Shown instead: what "
        "DS says about them, and screen failures over time and by site."
    )
    if not view.dispositions.empty:
        st.dataframe(view.dispositions, hide_index=True)
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
elif counts.screen_failures == 0:
    # No bars to draw: all of them would be 0 (and the heat map below empty).
    st.info(
        f"No screen failures among the {plural(counts.screened, 'subject')} screened"
        + (f" {period_words(period)}." if period is not None else ".")
    )
elif by_criterion.empty:
    st.info(
        "No eligibility criteria are recorded for this study (no TI domain or registry criteria): "
        "failures by criterion are unknown."
    )
else:
    codes = list(zip(by_criterion["code"], by_criterion["protocol_version"], strict=True))
    # The chart and the table name a criterion by bar and by row (keys new for every study and
    # list of criteria, so a row picked in one study never opens a criterion of another); both are
    # read before either is drawn, so the bar and the row shown are the criterion picked.
    drill = criterion_drilldown(
        DRILLDOWN_KEY,
        study_id=ctx.study_id,
        codes=codes,
        chart_base=CHART_KEY,
        table_base=TABLE_KEY,
    )
    picked = drill.picked
    st.altair_chart(
        criteria_chart(by_criterion, screened=counts.screened, picked=picked),
        width="stretch",
        on_select="rerun",
        selection_mode=[SELECTION],
        key=drill.chart_key,
    )
    st.caption(view.criteria_caption, help=view.criteria_rule)

    # Who failed it: right under the chart, and scrolled to when picked, so a click on a bar (or
    # a tick in the table below) lands on the list ("who failed BMI this month, at which site?").
    if picked is not None:
        with st.container(key=LIST_KEY):
            code, version = picked
            wording = by_criterion.set_index(["code", "protocol_version"]).loc[picked, "text"]
            subjects = views.failed_subjects(
                ctx.db_url, ctx.cut_id, ctx.view_for(period), code, version
            )
            st.subheader(
                plain(
                    failed_heading(subjects["usubjid"].nunique(), criterion_label(code, version))
                ),
                anchor=LIST_ANCHOR,
            )
            st.caption(plain(wording))  # the protocol's text, from the imported files
            if subjects.empty:
                st.info("Nobody failed this criterion in the current selection.")
            else:
                listed = mark_new_subjects(subjects, compare_cut_id=compare)
                # Each subject's finding of this criterion, its review state and a tick box.
                found = review.states(
                    ctx, who.role, "ie", keys=listed["natural_key"].dropna().tolist()
                )
                shown, links = subject_links(
                    review.with_review(listed, found), study_id=ctx.study_id
                )
                review.review_table(
                    ctx,
                    who,
                    shown,
                    entity="ie",
                    name=f"ie_{code}_{version}",
                    style=dashed,
                    column_config={
                        **links,
                        "new": st.column_config.CheckboxColumn(
                            "New", help=f"First seen in a data cut after cut {compare_number}"
                        ),
                        "site_id": "Site",
                        "screening_date": st.column_config.DateColumn("Screened"),
                        "failed_criteria": "Criteria failed",
                    },
                )
                st.caption(
                    plain(
                        f"Review: each subject's eligibility finding of {code}, "
                        f"as {who.name.lower()}."
                    )
                )
                download_buttons(
                    listed.drop(columns="natural_key"),
                    name=f"{ctx.study_id}-{code}-screen-failures",
                    sheet=code,
                )
            bring_into_view(LIST_KEY, picked)
    else:
        bring_into_view(LIST_KEY, None)  # the same criterion picked again is scrolled to again

    st.dataframe(
        view.criteria_table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=drill.table_key,
        column_config={"Code": st.column_config.Column(pinned=True)},
    )

    if not view.cooccurrence.empty:
        st.markdown("**Criteria failed together** (subjects failing both)")
        st.dataframe(view.cooccurrence, hide_index=True)

st.subheader("Over time")
monthly = view.monthly
if monthly.empty:
    st.info("No screening dates in the data: the rate over time cannot be drawn.")
else:
    st.altair_chart(monthly_rate_chart(monthly), width="stretch")
    st.caption("Subjects by month of screening; the line is the share of them who failed.")

if view.site_rates is not None or view.site_grid is not None:
    st.subheader("By site")
    if view.site_rates is not None:
        st.dataframe(view.site_rates, hide_index=True)
    elif not counts.screen_failures:
        st.info("No screen failures at any site in this selection.")
    elif view.site_grid is not None:
        st.altair_chart(site_criterion_heatmap(view.site_grid), width="stretch")
        st.caption(
            "Screen-failed subjects per site and criterion; the colour is the share of the site's "
            "screened subjects, so a site that fails one criterion far more often stands out."
        )

st.subheader("Eligibility checks of enrolled subjects")
deviations = view.eligibility.deviations
checked = view.eligibility.checked
if deviations.empty:
    st.success(
        f"No enrolled subject breaks a checked rule ({plural(len(checked), 'rule')} checked)."
        if checked
        else "No machine-checkable rule is recorded for this study's criteria."
    )
else:
    st.error(
        f"{plural(breaking := deviations['usubjid'].nunique(), 'enrolled subject')} "
        f"{verb(breaking, 'has', 'have')} screening values that break an eligibility rule: "
        "possible protocol deviations to review."
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
if view.eligibility.no_data:
    notes.append(f"No screening data for {', '.join(view.eligibility.no_data)}: not checked.")
if view.eligibility.unreadable:
    notes.append(f"Rules not read: {'; '.join(view.eligibility.unreadable)}.")
if notes:  # criterion codes, rules and wording from the data: shown as text
    st.caption(" ".join(plain(note) for note in notes))
