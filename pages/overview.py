"""Overview: the study's identity, headline numbers and what changed since the previous cut."""

import streamlit as st

from dashboard.charts.enrollment import accrual_chart
from dashboard.markdown import plain
from dashboard.ui import review, views
from dashboard.ui.links import page_url
from dashboard.ui.report import pack_downloads
from dashboard.ui.shell import metric_row, no_subjects_message, page_context, page_header
from dashboard.views.format import plural
from dashboard.views.site_risk import SiteRiskOptions

# The url_paths of the pages "Where to look" links to (dashboard/app.py).
SITE_RISK_PAGE = "site-risk"
ENROLLMENT_PAGE = "enrollment"
ADVERSE_EVENTS_PAGE = "adverse-events"

ctx = page_context()
view = views.overview_view(ctx.db_url, ctx.cut_id, ctx.view)
study = view.frame.study
page_header(study.title or study.study_id, ctx)
who = review.review_as(ctx)

# The page leads with what changed since the compared cut (the monitoring meeting's question).
if view.changes_sentence:
    st.info(view.changes_sentence, icon=":material/update:")
metric_row(view.metrics)
if view.study_wide_sentence:
    # A site user may know how the whole study is doing, but only as totals: no site's figures.
    st.info(plain(view.study_wide_sentence), icon=":material/public:")  # names site ids

if view.counts.screened:
    # Where to look: enrollment against plan, the sites the key risk indicators flag with the
    # quality tolerance limits (as the Site risk page scores them by default), and the new serious
    # AEs, each linking to its page.
    st.subheader("Where to look")
    accrual_column, risk_column = st.columns([3, 2])
    safety_column = risk_column
    with accrual_column:
        st.markdown(f"[Enrollment against plan]({page_url(ENROLLMENT_PAGE, ctx.url_params)})")
        if not view.accrual_chart.accrual.empty:
            st.altair_chart(
                accrual_chart(**view.accrual_chart.inputs).properties(height=180),
                width="stretch",
            )
    with risk_column:
        risk = views.site_risk_view(ctx.db_url, ctx.cut_id, ctx.view, SiteRiskOptions())
        link = page_url(SITE_RISK_PAGE, ctx.url_params)
        figures = {m.label: m for m in risk.metrics}
        red = figures["Red-flag sites"]
        amber = figures["Amber-only sites"]
        new = figures["Newly flagged"]
        qtl = figures["QTLs crossed"]
        if not risk.comparable:
            sites_line = "One site: key risk indicators have no other site to compare it with."
        else:
            sites_line = (
                f"{plural(int(red.value), 'site')} with a red flag, {amber.value} with an amber "
                "flag only" + (f"; {new.delta}" if new.delta else "") + "."
            )
        qtl_line = f"Quality tolerance limits crossed: {qtl.value}" + (
            f" ({qtl.delta})." if qtl.delta else "."
        )
        st.markdown(f"[{sites_line}]({link})")
        if risk.comparable and (red.delta or amber.delta):
            # Site ids come from the data: shown as plain text, never as markdown.
            st.text(
                "\n".join(
                    part
                    for part in (
                        f"Red: {red.delta}" if red.delta else "",
                        f"Amber: {amber.delta}" if amber.delta else "",
                    )
                    if part
                )
            )
        st.markdown(f"[{qtl_line}]({link})")
    with safety_column:
        serious = view.adverse_events.serious_events
        new_serious = (
            f"{view.changes.new_serious_adverse_events} new since cut {view.frame.since_cut.number}"
            if view.changes is not None and view.frame.since_cut is not None
            else None
        )
        st.markdown(
            f"[Serious adverse events: {serious}]({page_url(ADVERSE_EVENTS_PAGE, ctx.url_params)})"
        )
        # Beside "new": how many the chosen role has still to review (dashboard/ui/review.py).
        unreviewed = review.sae_counts(ctx, who.role)
        to_review = f"{unreviewed.needs_review:,} unreviewed" + (
            f" ({unreviewed.changed:,} changed since review)" if unreviewed.changed else ""
        )
        st.caption(
            f"{new_serious}, {to_review}" if new_serious else to_review,
            help=f"Unreviewed: serious AEs in view not reviewed by the {who.name.lower()} in the "
            "version they have now.",
        )

# Equal halves: at 1024 px beside the sidebar two fifths left the changes table too narrow for
# its counts.
study_column, changes_column = st.columns(2)
with study_column:
    st.subheader("Study")
    # Title, sponsor, status: text from the imported files, shown as text.
    st.markdown("  \n".join(f"**{label}:** {plain(value)}" for label, value in view.identity))
    if view.planned_recruitment:
        st.caption(plain(view.planned_recruitment))
with changes_column:
    if view.counts.screened == 0:
        no_subjects_message(ctx)
    elif view.changes is not None and view.frame.since_cut is not None:
        st.subheader(f"Since cut {view.frame.since_cut.number}")
        st.dataframe(
            view.changes_table,
            hide_index=True,
            width="stretch",
            # A narrow count column, so the two fit in this column beside the sidebar at 1024 px.
            column_config={"Count": st.column_config.NumberColumn(width="small")},
        )
    else:
        st.caption("Only one data cut is loaded: nothing to compare with yet.")

with changes_column:
    st.subheader("Monitoring-meeting pack")
    st.caption(
        "Everything above and on the other pages in one PDF and one workbook, for the sites in "
        "view, new rows marked against the “compare with” cut."
    )
    pack_downloads(ctx)
