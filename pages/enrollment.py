"""Enrollment: progress against the target, the screening funnel, sites, the forecast, the flow."""

import datetime as dt

import streamlit as st

from dashboard.charts.enrollment import accrual_chart, forecast_bands_chart, funnel_chart
from dashboard.markdown import plain
from dashboard.metrics.site_forecast import BELOW_EXPECTED
from dashboard.metrics.visits import (
    schedule_text,
    scheduled_visits,
    site_visit_table,
    visit_totals,
)
from dashboard.ui import loaders, views
from dashboard.ui.auth import audited
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import bring_into_view
from dashboard.ui.shell import (
    domain_missing,
    metric_row,
    no_subjects_message,
    page_context,
    page_header,
    period_filter,
)
from dashboard.ui.tables import dashed
from dashboard.ui.visits import visits_as_of, window_days_setting
from dashboard.views.enrollment import what_if_sentence
from dashboard.views.format import (
    WHOLE_PERCENT,
    nobody_screened,
    percent_points,
    plural,
    verb,
)

SITE_ROWS_KEY = "enrollment_site_rows"
SITE_LIST_KEY = "enrollment_site_subjects"  # the picked site's list, scrolled to
NEEDING_ACTION_KEY = "enrollment_visits_needing_action"
WHAT_IF_SITES_KEY = "enrollment_what_if_sites"
WHAT_IF_DATE_KEY = "enrollment_what_if_date"

ctx = page_context()
page_header("Enrollment", ctx)
period = period_filter(ctx)
view = views.enrollment_view(ctx.db_url, ctx.cut_id, ctx.view_for(period))
study = view.frame.study
metric_row(view.metrics)

if view.counts.screened == 0:
    if period is not None:
        st.info(nobody_screened(period))
    else:
        no_subjects_message(ctx)
    st.stop()

st.subheader("Cumulative enrollment against the target")
if view.accrual.empty:
    st.info("No screening or enrollment dates in the data: enrollment over time cannot be drawn.")
else:
    st.altair_chart(
        accrual_chart(**view.accrual_chart_inputs),
        width="stretch",
    )
    st.caption(view.accrual_chart.sentence, help=view.accrual_chart.rule)
if view.undated_sentence:
    st.warning(view.undated_sentence)

st.subheader("Forecast")
if view.filtered or view.forecast is None:
    st.info(view.forecast_sentence)
elif view.forecast_method:
    st.markdown(view.forecast_sentence)
    st.caption(view.model_note or "", help=view.forecast_method)
else:
    message, _, needed = view.forecast_sentence.partition("\n\n")
    st.info(message)
    if needed:
        st.markdown(needed)
site_model = view.site_forecast
if site_model is not None:
    st.altair_chart(
        forecast_bands_chart(
            view.accrual, site_model.bands, target=site_model.target, cutoff=site_model.cutoff
        ),
        width="stretch",
    )
    st.caption(
        "After the cut-off: the median of the predicted enrollment (dashed) with its 50% and 80% "
        "bands, planned sites included from their dates."
    )
    st.markdown("**What if more sites open?**")
    sites_column, date_column = st.columns([1, 1, 2])[:2]
    extra_sites = sites_column.number_input(
        "More sites", min_value=1, max_value=1000, value=5, step=1, key=WHAT_IF_SITES_KEY
    )
    opening_on = date_column.date_input(
        "Opening on",
        value=site_model.cutoff + dt.timedelta(days=30),
        min_value=site_model.cutoff + dt.timedelta(days=1),
        key=WHAT_IF_DATE_KEY,
    )
    dates = views.what_if(
        ctx.db_url, ctx.cut_id, ctx.view_for(period), int(extra_sites), opening_on
    )
    if dates is not None:
        st.markdown(what_if_sentence(site_model, int(extra_sites), opening_on, dates))
    if view.calibration_shown is not None and not view.calibration_shown.empty:
        st.markdown("**How the forecast did at earlier cuts**")
        st.dataframe(view.calibration_shown, hide_index=True, width="stretch")
        if view.calibration_sentence:
            st.caption(
                view.calibration_sentence,
                help="Each row cuts the data at an earlier month-end, fits the model on what was "
                "known then (sites that opened later count as planned for the day they opened) "
                "and forecasts: the 80% interval of the subjects enrolled by today's cut-off, "
                "and of the target date where the target has been reached.",
            )

st.subheader("Screening funnel")
left, right = st.columns([3, 2])
with left:
    st.altair_chart(funnel_chart(view.funnel), width="stretch")
    if not view.treated_known:
        st.caption("No exposure data: who was treated is unknown, so that step is left out.")
with right:
    st.markdown("**Discontinuation reasons**")
    if view.reasons.empty:
        st.caption("No discontinuations.")
    else:
        st.dataframe(
            view.reasons.rename(columns={"arm": "Arm", "reason": "Reason", "subjects": "Subjects"}),
            hide_index=True,
            width="stretch",
        )

if view.sites is not None:
    st.subheader("Sites")
    sites = view.sites
    selection = st.dataframe(
        percent_points(sites, ("screen_failure_rate", "share_of_target")),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=SITE_ROWS_KEY,
        column_config={
            # The key column stays in view where the table scrolls sideways (a laptop's width).
            "site_id": st.column_config.Column("Site", pinned=True),
            "name": "Name",
            "country": "Country",
            "active_since": st.column_config.DateColumn("Active since"),
            "screened": "Screened",
            "screen_failures": "Screen failures",
            "screen_failure_rate": st.column_config.NumberColumn("SF rate", format=WHOLE_PERCENT),
            "enrolled": "Enrolled",
            "enrolled_per_month": st.column_config.NumberColumn("Enrolled / month", format="%.2f"),
            "days_since_last_enrollment": "Days since last enrollment",
            "planned_enrollment": "Site target",
            "share_of_target": st.column_config.NumberColumn("Of target", format=WHOLE_PERCENT),
            "expected": st.column_config.NumberColumn("Expected", format="%.1f"),
            "p_at_most": st.column_config.NumberColumn("P(≤ enrolled)", format="%.2f"),
        },
    )
    st.caption(
        "Select a row to list the site's subjects.",
        help="Active since: the activation date, else the first screening. Rates run to the "
        "cut-off. Expected: the subjects a site of this study recruits on average in the time "
        "the site has been open (the multicentre model); P(≤ enrolled): the probability of a "
        f"site recruiting this few or fewer: under {BELOW_EXPECTED} the site recruits below "
        "what the model expects.",
    )
    picked = selection.selection.rows if selection else []
    site_id = str(sites.iloc[picked[0]]["site_id"]) if picked else None
    if site_id is not None:
        # Scrolled to when a row is picked: below a ten-row table it opens out of view.
        with st.container(key=SITE_LIST_KEY):
            st.markdown(f"**Subjects of site {plain(site_id)}**")
            shown, links = subject_links(
                views.site_subjects(ctx.db_url, ctx.cut_id, ctx.view_for(period), site_id),
                study_id=ctx.study_id,
            )
            st.dataframe(dashed(shown), hide_index=True, width="stretch", column_config=links)
            bring_into_view(SITE_LIST_KEY, site_id)
    else:
        bring_into_view(SITE_LIST_KEY, None)

st.subheader("Visit schedule")
planned = scheduled_visits(view.planned_schedule)
if planned.empty:
    st.info(
        "No planned visit schedule for this study (no TV domain with planned study days, and the "
        "study defines none): which visits are due or overdue cannot be worked out."
    )
elif not domain_missing(ctx, "SV", "no visit is known to be held, so none is counted"):
    as_of, as_of_label = visits_as_of(ctx)
    with st.columns([1, 3])[0]:
        window_days = window_days_setting()
    by_site, no_day_one = views.visits_by_site(
        ctx.db_url, ctx.cut_id, ctx.view_for(period), as_of, window_days
    )
    totals = visit_totals(by_site)
    st.markdown(
        f"On {as_of_label}: **{plural(totals['overdue'], 'visit')} overdue** for "
        f"{plural(totals['subjects_overdue'], 'subject')} still on study, {totals['due']} due now "
        "(window open)."
    )
    st.dataframe(
        site_visit_table(by_site),
        hide_index=True,
        width="stretch",
        column_config={"Site": st.column_config.Column(pinned=True)},
    )
    needing_action = st.toggle(
        "Only subjects with a visit due or overdue", value=True, key=NEEDING_ACTION_KEY
    )
    grid, listed = views.schedule_grid(
        ctx.db_url, ctx.cut_id, ctx.view_for(period), as_of, window_days, needing_action
    )
    if grid.empty:
        st.success(
            "No visit is due or overdue." if needing_action else "No subject on the schedule."
        )
    else:
        shown, links = subject_links(grid, study_id=ctx.study_id)
        st.dataframe(
            dashed(shown),
            hide_index=True,
            width="stretch",
            column_config={**links, "Day 1": st.column_config.DateColumn("Day 1")},
        )
        if listed > len(grid):
            st.caption(f"The first {len(grid)} of {listed} subjects, most overdue first.")
        download_buttons(grid, name=f"{ctx.study_id}-visit-schedule", sheet="Visits")
    st.caption(
        f"Planned: {schedule_text(planned)}."
        + (
            f" {plural(no_day_one, 'enrolled subject')} without day 1 "
            f"{verb(no_day_one, 'is', 'are')} not on the schedule."
            if no_day_one
            else ""
        ),
        help="Due dates count from each subject's day 1 (RFSTDTC; no day 0). ✓ done; ✓ out of "
        "window: held outside the window; OVERDUE: the window closed without the visit and the "
        "subject is still on study; DUE: the window is open; missed: not held before the subject "
        "left the study; –: planned after the subject left.",
    )

st.subheader("Flow of subjects")
svg = view.flow_svg
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
