"""The pages' one cached call each: the page's view for a ``ViewContext`` (and the page's own
choices), and the drilldowns behind a click.

Keyed by primitives and frozen values only: the database URL, the latest DataCut id (a new import
invalidates every answer in every session), the context (study, sites, period, compared cut,
whether the viewer sees arms, the viewer's sites) and the choices. Two viewers with different
rights never share an answer; sessions are never cached.
"""

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard.ui.loaders import MAX_ENTRIES, TTL_SECONDS, session_for
from dashboard.views import (
    adverse_events,
    baseline,
    enrollment,
    labs,
    labs_display,
    overview,
    review,
    screen_failures,
    site_risk,
    subject,
    visits,
)
from dashboard.views.context import ViewContext

cached = st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)


@cached
def overview_view(db_url: str, cut_id: int | None, ctx: ViewContext) -> overview.OverviewView:
    with session_for(db_url) as session:
        return overview.build_overview(session, ctx)


@cached
def enrollment_view(db_url: str, cut_id: int | None, ctx: ViewContext) -> enrollment.EnrollmentView:
    with session_for(db_url) as session:
        return enrollment.build_enrollment(session, ctx)


@cached
def what_if(
    db_url: str, cut_id: int | None, ctx: ViewContext, extra_sites: int, opening_on: dt.date
) -> tuple[dt.date, dt.date, dt.date] | None:
    """The multicentre forecast's dates with ``extra_sites`` more sites opening on
    ``opening_on`` (None: the page's view has no multicentre forecast)."""
    model = enrollment_view(db_url, cut_id, ctx).site_forecast
    return None if model is None else model.what_if(extra_sites, opening_on)


@cached
def site_subjects(db_url: str, cut_id: int | None, ctx: ViewContext, site_id: str) -> pd.DataFrame:
    with session_for(db_url) as session:
        return enrollment.site_subjects(session, ctx, site_id)


@cached
def screen_failures_view(
    db_url: str, cut_id: int | None, ctx: ViewContext
) -> screen_failures.ScreenFailuresView:
    with session_for(db_url) as session:
        return screen_failures.build_screen_failures(session, ctx)


@cached
def failed_subjects(
    db_url: str, cut_id: int | None, ctx: ViewContext, code: str, protocol_version: str
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return screen_failures.failed_subjects(session, ctx, code, protocol_version)


@cached
def baseline_view(
    db_url: str, cut_id: int | None, ctx: ViewContext, options: baseline.TableOneOptions
) -> baseline.BaselineView:
    with session_for(db_url) as session:
        return baseline.build_baseline(session, ctx, options)


@cached
def subjects_with_value(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    population: str,
    by: str,
    key: str,
    column: str,
    value: str | None,
) -> tuple[pd.DataFrame, int]:
    with session_for(db_url) as session:
        return baseline.subjects_with_value(
            session, ctx, population=population, by=by, key=key, column=column, value=value
        )


@cached
def adverse_events_view(
    db_url: str, cut_id: int | None, ctx: ViewContext, options: adverse_events.AdverseEventsOptions
) -> adverse_events.AdverseEventsView:
    with session_for(db_url) as session:
        return adverse_events.build_adverse_events(session, ctx, options)


@cached
def events(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    treatment_emergent: bool,
    *,
    in_population: bool = True,
    arm: str | None = None,
    category: str | None = None,
    soc: str | None = None,
    pt: str | None = None,
    dimension: str | None = None,
    rank: int | None = None,
    usubjids: tuple[str, ...] | None = None,
    serious_only: bool = False,
    value: str | None = None,
    new_first_since: int | None = None,
    limit: int = adverse_events.LISTING_LIMIT,
) -> tuple[pd.DataFrame, int]:
    """An AE listing (at most ``limit`` rows) and how many events match; with
    ``new_first_since``, the events new since that cut first."""
    with session_for(db_url) as session:
        return adverse_events.events(
            session,
            ctx,
            limit=limit,
            treatment_emergent=treatment_emergent,
            in_population=in_population,
            arm=arm,
            category=category,
            soc=soc,
            pt=pt,
            dimension=dimension,
            rank=rank,
            usubjids=usubjids,
            serious_only=serious_only,
            value=value,
            new_first_since=new_first_since,
        )


@cached
def ds_discontinuations(
    db_url: str, cut_id: int | None, ctx: ViewContext, arm: str | None
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return adverse_events.ds_discontinuations(session, ctx, arm)


@cached
def subjects_with_events(db_url: str, cut_id: int | None, ctx: ViewContext) -> pd.DataFrame:
    with session_for(db_url) as session:
        return adverse_events.subjects_with_events(session, ctx)


@cached
def site_risk_view(
    db_url: str, cut_id: int | None, ctx: ViewContext, options: site_risk.SiteRiskOptions
) -> site_risk.SiteRiskView:
    with session_for(db_url) as session:
        return site_risk.build_site_risk(session, ctx, options)


@cached
def labs_view(
    db_url: str, cut_id: int | None, ctx: ViewContext, options: labs.LabsOptions
) -> labs.LabsView:
    with session_for(db_url) as session:
        return labs.build_labs(session, ctx, options)


@cached
def labs_page_display(
    db_url: str, cut_id: int | None, ctx: ViewContext, options: labs.LabsOptions
) -> labs_display.LabsDisplay:
    """The Labs view's tables as shown and its charts' specs, kept with the view: a rerun (a
    click on a count, a toggle) sends them as they are."""
    return labs_display.labs_display(labs_view(db_url, cut_id, ctx, options))


@cached
def lab_incidence_subjects(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    domain: str,
    measurement: str,
    arm: str | None,
    flag: str | None,
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return labs.incidence_subjects(
            session, ctx, domain=domain, measurement=measurement, arm=arm, flag=flag
        )


@cached
def lab_shift_subjects(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    domain: str,
    measurement: str,
    term: str | None,
    cell: tuple[str | None, str | None, str | None],
) -> pd.DataFrame:
    arm, baseline, worst = cell
    with session_for(db_url) as session:
        return labs.shift_subjects(
            session,
            ctx,
            domain=domain,
            measurement=measurement,
            term=term,
            arm=arm,
            baseline=baseline,
            worst=worst,
        )


@cached
def subject_record(
    db_url: str, cut_id: int | None, ctx: ViewContext, usubjid: str
) -> subject.SubjectRecord | None:
    with session_for(db_url) as session:
        return subject.record(session, ctx, usubjid)


@cached
def subject_codes(
    db_url: str, cut_id: int | None, ctx: ViewContext, contains: str
) -> tuple[list[str], int]:
    with session_for(db_url) as session:
        return subject.codes(session, ctx, contains)


@cached
def planned_schedule(db_url: str, cut_id: int | None, ctx: ViewContext) -> pd.DataFrame:
    with session_for(db_url) as session:
        return visits.planned(session, ctx)


@cached
def subject_schedule(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    usubjid: str,
    as_of: dt.date,
    window_days: int,
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return visits.subject_schedule(session, ctx, usubjid, as_of=as_of, window_days=window_days)


@cached
def visits_by_site(
    db_url: str, cut_id: int | None, ctx: ViewContext, as_of: dt.date, window_days: int
) -> tuple[pd.DataFrame, int]:
    with session_for(db_url) as session:
        return visits.by_site(session, ctx, as_of=as_of, window_days=window_days)


@cached
def schedule_grid(
    db_url: str,
    cut_id: int | None,
    ctx: ViewContext,
    as_of: dt.date,
    window_days: int,
    needing_action: bool,
) -> tuple[pd.DataFrame, int]:
    with session_for(db_url) as session:
        return visits.grid(
            session, ctx, as_of=as_of, window_days=window_days, needing_action=needing_action
        )


# Review states: keyed by the review log's version too (``views.review.log_version``, the latest
# log row's id), so a mark written in any session is read afresh by every other at its next run.
@cached
def review_states(
    db_url: str,
    cut_id: int | None,
    log_version: int,
    ctx: ViewContext,
    entity: str,
    role: str,
    keys: tuple[str, ...] | None = None,
    serious_only: bool = False,
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return review.states(
            session,
            ctx,
            entity=entity,
            role=role,
            keys=None if keys is None else list(keys),
            serious_only=serious_only,
        )


@cached
def review_sae_counts(
    db_url: str, cut_id: int | None, log_version: int, ctx: ViewContext, role: str
) -> review.ReviewCounts:
    with session_for(db_url) as session:
        return review.sae_counts(session, ctx, role=role)


@cached
def subject_labs(
    db_url: str, cut_id: int | None, ctx: ViewContext, usubjid: str
) -> subject.SubjectLabs:
    with session_for(db_url) as session:
        return subject.lab_values(session, ctx, usubjid)
