"""Enrollment: progress against the target, the screening funnel, sites, the forecast, the flow."""

import streamlit as st

from dashboard.charts.consort import consort_svg
from dashboard.charts.enrollment import accrual_chart, funnel_chart
from dashboard.metrics.consort import consort_flow
from dashboard.metrics.enrollment import (
    funnel_steps,
    reasons_text,
    recent_and_overall_rate,
    site_table,
    study_forecast,
    target_in_scope,
)
from dashboard.metrics.visits import (
    schedule_text,
    scheduled_visits,
    site_visit_table,
    visit_totals,
)
from dashboard.ui import loaders, subject_loaders
from dashboard.ui.auth import audited
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.shell import (
    domain_missing,
    no_subjects_message,
    page_context,
    page_header,
    period_filter,
)
from dashboard.ui.visits import visits_as_of, window_days_setting
from dashboard.views.format import (
    count_of,
    percent,
    projected_completion_label,
    projected_interval_label,
)

SITE_ROWS_KEY = "enrollment_site_rows"
NEEDING_ACTION_KEY = "enrollment_visits_needing_action"

ctx = page_context()
study = ctx.study
page_header("Enrollment", ctx)
cutoff = ctx.latest_cut.cutoff_date if ctx.latest_cut else None
target = study.planned_enrollment

period = period_filter(ctx)
filtered = bool(ctx.scope) or period is not None

# Pooled for a blinded user of a blinded study: the reasons, the outcome and the flow diagram's
# arm boxes then show one arm, metrics.blinding.POOLED. The funnel's counts are also the
# headline's (one query fewer than reading the populations again).
funnel, reasons, by_arm = loaders.load_funnel(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period, pooled=not ctx.shows_arms
)
counts = funnel
accrual, undated, daily = loaders.load_accrual(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, cutoff, period
)
recent_rate, overall_rate = (
    recent_and_overall_rate(daily, cutoff=cutoff, start=study.planned_start)
    if cutoff
    else (None, None)
)
forecast = study_forecast(
    daily,
    target=target,
    cutoff=cutoff,
    planned_start=study.planned_start,
    planned_end=study.planned_end,
)
changes = (
    loaders.load_subject_changes_since(
        ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, ctx.compare_cut_id, period
    )
    if ctx.compare_cut_id is not None
    else None
)

enrolled, failure_rate, rate, projected = st.columns(4)
enrolled.metric(
    "Enrolled / target",
    # A site filter compares with those sites' own targets (none where a site has none).
    count_of(
        counts.enrolled,
        target_in_scope(
            target, loaders.load_sites(ctx.db_url, ctx.study_id, ctx.cut_id), ctx.scope
        ),
    ),
    delta=f"+{changes.new_enrolled} since cut {changes.since_cut_id}" if changes else None,
    delta_color="off",
    delta_arrow="off",
)
failure_rate.metric(
    "Screen-failure rate",
    percent(counts.screen_failures, counts.screened),
    delta=f"{counts.screen_failures} of {counts.screened} screened"
    + (f" (+{changes.new_subjects} new)" if changes else ""),
    delta_color="off",
    delta_arrow="off",
)
rate.metric(
    "Enrolled per month, last 30 days",
    f"{recent_rate:.1f}" if recent_rate is not None else "–",
    delta=f"overall {overall_rate:.1f} per month" if overall_rate is not None else None,
    delta_color="off",
    delta_arrow="off",
)
projected.metric(
    "Projected completion",
    projected_completion_label(forecast, filtered=filtered),
    delta=projected_interval_label(forecast, filtered=filtered),
    delta_color="off",
    delta_arrow="off",
)

if counts.screened == 0:
    if period is not None:
        st.info("Nobody was screened in this period: widen the dates to see the study.")
    else:
        no_subjects_message(ctx)
    st.stop()

st.subheader("Cumulative enrollment against the target")
if accrual.empty:
    st.info("No screening or enrollment dates in the data: enrollment over time cannot be drawn.")
else:
    st.altair_chart(
        accrual_chart(
            accrual,
            target=target if not filtered else None,  # the study target is not a site's target
            cutoff=cutoff,
            planned_start=study.planned_start,
            planned_end=study.planned_end,
        ),
        width="stretch",
    )
    # The chart draws the planned line only with a target and both planned dates (and no filter).
    planned_drawn = bool(not filtered and target and study.planned_start and study.planned_end)
    st.caption(
        "Screened by screening date, enrolled by enrollment date, in weekly bins for a recruitment "
        "period up to a year, monthly beyond"
        + (
            "; the dashed grey line is the planned recruitment (linear from the planned start to "
            "the planned end)."
            if planned_drawn
            else "."
        )
        + (" The study target is hidden while a filter is on." if filtered else "")
    )
if undated["screened"] or undated["enrolled"]:
    st.warning(
        f"Not on the chart: {undated['screened']} subject(s) without a screening date, "
        f"{undated['enrolled']} enrolled subject(s) without an enrollment date."
    )

st.subheader("Forecast")
if filtered:
    st.info("The forecast is for the whole study: clear the site and date filters to see it.")
elif forecast is None:
    st.info("No data cut-off date: nothing to forecast from.")
elif forecast.status == "ok":
    st.markdown(
        f"At the fitted rate of **{forecast.rate_per_month:.1f} enrollments a month**, the target "
        f"of {target} is projected for **{forecast.median_date:%d %b %Y}** (80% interval "
        f"{forecast.lower_date:%d %b %Y} to {forecast.upper_date:%d %b %Y})."
        + (
            f" Finishing by the planned end ({study.planned_end:%d %b %Y}) needs "
            f"**{forecast.required_rate_per_month:.1f} a month** from the cut-off."
            if forecast.required_rate_per_month is not None and study.planned_end
            else ""
        )
    )
    st.caption(
        "Poisson accrual with a gamma-distributed rate fitted to the observed enrollments "
        "(Gajewski, Simon and Carlson 2008, without prior weight on the planned schedule)."
    )
else:
    st.info(forecast.message)
    # Even without a projected date, the pace the plan needs is known and worth saying.
    if forecast.required_rate_per_month is not None and study.planned_end:
        st.markdown(
            f"Finishing by the planned end ({study.planned_end:%d %b %Y}) needs "
            f"**{forecast.required_rate_per_month:.1f} enrollments a month** from the cut-off "
            f"({target - forecast.enrolled if target else 0} to go)."
        )

st.subheader("Screening funnel")
left, right = st.columns([3, 2])
with left:
    st.altair_chart(
        funnel_chart(
            funnel_steps(
                screened=funnel.screened,
                screen_failures=funnel.screen_failures,
                in_screening=funnel.in_screening,
                not_assigned=funnel.not_assigned,
                enrolled=funnel.enrolled,
                treated=funnel.treated,
                completed=funnel.completed,
                discontinued=funnel.discontinued,
                ongoing=funnel.ongoing,
                discontinuation_reasons=reasons_text(reasons),
            )
        ),
        width="stretch",
    )
    if funnel.treated is None:
        st.caption("No exposure data: who was treated is unknown, so that step is left out.")
with right:
    st.markdown("**Discontinuation reasons**")
    if reasons.empty:
        st.caption("No discontinuations.")
    else:
        st.dataframe(
            reasons.rename(columns={"arm": "Arm", "reason": "Reason", "subjects": "Subjects"}),
            hide_index=True,
            width="stretch",
        )

if ctx.site_count > 1:
    st.subheader("Sites")
    sites = site_table(
        loaders.load_sites_accrual(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period),
        cutoff=cutoff,
    ).dropna(axis="columns", how="all")  # e.g. SDTM gives no site names or site targets
    selection = st.dataframe(
        sites,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=SITE_ROWS_KEY,
        column_config={
            "site_id": "Site",
            "name": "Name",
            "country": "Country",
            "active_since": st.column_config.DateColumn("Active since"),
            "screened": "Screened",
            "screen_failures": "Screen failures",
            "screen_failure_rate": st.column_config.NumberColumn("SF rate", format="percent"),
            "enrolled": "Enrolled",
            "enrolled_per_month": st.column_config.NumberColumn("Enrolled / month", format="%.2f"),
            "days_since_last_enrollment": "Days since last enrollment",
            "planned_enrollment": "Site target",
            "share_of_target": st.column_config.NumberColumn("Of target", format="percent"),
        },
    )
    st.caption(
        "Active since: the activation date, else the first screening. Rates run to the cut-off. "
        "Select a row to list the site's subjects."
    )
    picked = selection.selection.rows if selection else []
    if picked:
        site_id = str(sites.iloc[picked[0]]["site_id"])
        st.markdown(f"**Subjects of site {site_id}**")
        shown, links = subject_links(
            loaders.load_site_subjects(
                ctx.db_url,
                ctx.study_id,
                ctx.cut_id,
                ctx.scope,
                period,
                site_id,
                pooled=not ctx.shows_arms,
            ),
            study_id=ctx.study_id,
        )
        st.dataframe(shown, hide_index=True, width="stretch", column_config=links)

st.subheader("Visit schedule")
planned = scheduled_visits(
    subject_loaders.load_planned_schedule(ctx.db_url, ctx.study_id, ctx.cut_id)
)
if planned.empty:
    st.info(
        "No planned visit schedule for this study (no TV domain with planned study days, and the "
        "study defines none): which visits are due or overdue cannot be worked out."
    )
elif not domain_missing(ctx, "SV", "no visit is known to be held, so none is counted"):
    as_of, as_of_label = visits_as_of(ctx)
    with st.columns([1, 3])[0]:
        window_days = window_days_setting()
    by_site, no_day_one = subject_loaders.load_visits_by_site(
        ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period, as_of, window_days
    )
    totals = visit_totals(by_site)
    st.markdown(
        f"On {as_of_label}: **{totals['overdue']} visit(s) overdue** for "
        f"{totals['subjects_overdue']} subject(s) still on study, {totals['due']} due now "
        "(window open)."
    )
    st.dataframe(site_visit_table(by_site), hide_index=True, width="stretch")
    needing_action = st.toggle(
        "Only subjects with a visit due or overdue", value=True, key=NEEDING_ACTION_KEY
    )
    grid, listed = subject_loaders.load_schedule_grid(
        ctx.db_url,
        ctx.study_id,
        ctx.cut_id,
        ctx.scope,
        period,
        as_of,
        window_days,
        needing_action,
        pooled=not ctx.shows_arms,
    )
    if grid.empty:
        st.success(
            "No visit is due or overdue." if needing_action else "No subject on the schedule."
        )
    else:
        shown, links = subject_links(grid, study_id=ctx.study_id)
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            column_config={**links, "Day 1": st.column_config.DateColumn("Day 1")},
        )
        if listed > len(grid):
            st.caption(f"The first {len(grid)} of {listed} subjects, most overdue first.")
        download_buttons(grid, name=f"{ctx.study_id}-visit-schedule", sheet="Visits")
    st.caption(
        f"Planned: {schedule_text(planned)}. Due dates count from each subject's day 1 (RFSTDTC; "
        "no day 0). ✓ done; ✓ out of window: held outside the window; OVERDUE: the window closed "
        "without the visit and the subject is still on study; DUE: the window is open; missed: not "
        "held before the subject left the study; –: planned after the subject left."
        + (
            f" {no_day_one} enrolled subject(s) without day 1 are not on the schedule."
            if no_day_one
            else ""
        )
    )

st.subheader("Flow of subjects")
by_criterion, failed_counts = loaders.load_failures_for_period(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, period
)
svg = consort_svg(
    consort_flow(
        funnel=funnel,
        by_criterion=by_criterion,
        failures_with_reason=failed_counts["with_reason"],
        reasons=reasons,
        by_arm=by_arm,
    ),
    title=study.registry_id or study.study_id,
)
st.image(svg)
svg_button, png_button = st.columns(2)
svg_button.download_button(
    "Download SVG",
    audited(lambda: svg, file_name=f"{ctx.study_id}-flow.svg"),
    file_name=f"{ctx.study_id}-flow.svg",
    mime="image/svg+xml",
    on_click="ignore",  # no rerun on click (dashboard/ui/downloads.py DOWNLOAD_NOTE)
)
png_button.download_button(
    # Rendered on click: drawing the PNG costs a fifth of a second on every rerun otherwise.
    "Download PNG",
    audited(lambda: loaders.png_of(svg), file_name=f"{ctx.study_id}-flow.png"),
    file_name=f"{ctx.study_id}-flow.png",
    mime="image/png",
    on_click="ignore",
)
