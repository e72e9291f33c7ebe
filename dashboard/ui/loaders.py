"""Cached loaders: the only way pages reach the query layer.

Every loader is keyed by primitives only: the database URL, the study, the latest DataCut id (so a
new import invalidates every cached answer in every session) and the site scope. Engines are cached
once per URL; sessions and ORM objects are never cached.
"""

import datetime as dt

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.charts.consort import svg_to_png
from dashboard.db import SchemaError, ensure_schema, make_engine
from dashboard.metrics.blinding import drop_arm_columns, pool_numeric, pool_reasons
from dashboard.metrics.eligibility import checked_criteria
from dashboard.metrics.enrollment import cumulative_accrual
from dashboard.queries import (
    baseline,
    changes,
    enrollment,
    safety_counts,
    screen_failures,
    studies,
)
from dashboard.queries.scope import Period, SiteScope
from dashboard.results.adverse_events import AdverseEventCounts
from dashboard.results.changes import AdverseEventChanges, ChangesSince, SubjectChanges
from dashboard.results.enrollment import FunnelCounts, PopulationCounts
from dashboard.results.studies import CutInfo, StudyInfo

TTL_SECONDS = 600
MAX_ENTRIES = 256


@st.cache_resource(show_spinner=False)
def _engine_with_schema(db_url: str) -> Engine:
    engine = make_engine(db_url)
    ensure_schema(engine)
    return engine


def engine_for(db_url: str) -> Engine:
    """The engine of ``db_url``, cached per process, its schema made sure of on first use: an empty
    database is created. A database whose schema is behind ends the run with the message naming
    ``study-monitor db upgrade``, whichever part of the app asked first (sign-in, a page, the
    Import page); as the refusal is not cached, the app works after the upgrade without a restart.
    """
    try:
        return _engine_with_schema(db_url)
    except SchemaError as error:
        st.error(str(error))
        st.stop()


def session_for(db_url: str) -> Session:
    """A new session on the cached engine of ``db_url`` (sessions are never cached)."""
    return Session(engine_for(db_url))


# Not cached: the list of studies and cuts is what tells the other caches that data changed.
def load_study_ids(db_url: str) -> list[str]:
    with session_for(db_url) as session:
        return [str(s) for s in studies.list_studies(session)["study_id"]]


def load_cuts(db_url: str, study_id: str) -> list[CutInfo]:
    with session_for(db_url) as session:
        return studies.data_cuts(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_study(db_url: str, study_id: str, cut_id: int | None) -> StudyInfo | None:
    with session_for(db_url) as session:
        return studies.study_info(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_sites(db_url: str, study_id: str, cut_id: int | None) -> pd.DataFrame:
    with session_for(db_url) as session:
        return studies.sites(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_population(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, period: Period = None
) -> PopulationCounts:
    with session_for(db_url) as session:
        return enrollment.population_counts(session, study_id=study_id, scope=scope, period=period)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_any_subjects(db_url: str, study_id: str, cut_id: int | None, scope: SiteScope) -> bool:
    with session_for(db_url) as session:
        return enrollment.any_subjects(session, study_id=study_id, scope=scope)


# The one loader that counts every site whatever the user's scope: study-wide totals a site user
# may see only as aggregates (counts, never rows), marked so on the page.
@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_study_wide_counts(db_url: str, study_id: str, cut_id: int | None) -> PopulationCounts:
    with session_for(db_url) as session:
        return enrollment.population_counts(session, study_id=study_id, scope=None)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_accrual(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    until: dt.date | None,
    period: Period = None,
) -> tuple[pd.DataFrame, dict[str, int], pd.DataFrame]:
    """Cumulative accrual per period up to ``until`` (the cut-off), the subjects it cannot date,
    and the daily counts behind it (for rates and the forecast)."""
    with session_for(db_url) as session:
        daily = enrollment.daily_accrual(session, study_id=study_id, scope=scope, period=period)
        undated = enrollment.undated_subjects(
            session, study_id=study_id, scope=scope, period=period
        )
    return cumulative_accrual(daily, until=until), undated, daily


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_demographics(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> pd.DataFrame:
    """Enrolled subjects by sex and age (the Baseline page's headline figures)."""
    with session_for(db_url) as session:
        return baseline.demographic_counts(session, study_id=study_id, scope=scope)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_adverse_events(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[AdverseEventCounts, pd.DataFrame]:
    with session_for(db_url) as session:
        counts = safety_counts.stored_adverse_event_counts(session, study_id=study_id, scope=scope)
        by_soc = safety_counts.incidence_by_soc(session, study_id=study_id, scope=scope)
    return counts, by_soc


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_changes_since(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    since_cut_id: int,
    period: Period = None,
) -> ChangesSince:
    with session_for(db_url) as session:
        return safety_counts.changes_since(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id, period=period
        )


# The two halves of ``load_changes_since``, for the pages that show only one (see
# ``safety_counts.changes_since``).
@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subject_changes_since(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    since_cut_id: int,
    period: Period = None,
) -> SubjectChanges:
    with session_for(db_url) as session:
        return changes.subject_changes_since(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id, period=period
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_adverse_event_changes_since(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    since_cut_id: int,
    period: Period = None,
) -> AdverseEventChanges:
    with session_for(db_url) as session:
        return safety_counts.adverse_event_changes_since(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id, period=period
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_screening_span(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[dt.date, dt.date] | None:
    with session_for(db_url) as session:
        return enrollment.screening_span(session, study_id=study_id, scope=scope)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_funnel(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    *,
    pooled: bool,
) -> tuple[FunnelCounts, pd.DataFrame, pd.DataFrame]:
    """(funnel counts, discontinuation reasons by arm, outcome by arm); pooled: one arm,
    ``metrics.blinding.POOLED`` (a blinded user of a blinded study)."""
    with session_for(db_url) as session:
        counts = enrollment.funnel(session, study_id=study_id, scope=scope, period=period)
        reasons = enrollment.discontinuation_reasons(
            session, study_id=study_id, scope=scope, period=period
        )
        by_arm = enrollment.outcome_by_arm(session, study_id=study_id, scope=scope, period=period)
    if pooled:
        return counts, pool_reasons(reasons), pool_numeric(by_arm)
    return counts, reasons, by_arm


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_sites_accrual(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, period: Period
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return enrollment.enrollment_by_site(session, study_id=study_id, scope=scope, period=period)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_site_subjects(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    site_id: str,
    *,
    pooled: bool,
) -> pd.DataFrame:
    with session_for(db_url) as session:
        found = enrollment.site_subjects(
            session, study_id=study_id, site_id=site_id, scope=scope, period=period
        )
    return drop_arm_columns(found) if pooled else found


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_failures_for_period(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, period: Period
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Failures per criterion and subjects with one / several reasons, in a screening period."""
    with session_for(db_url) as session:
        by_criterion = screen_failures.failures_by_criterion(
            session, study_id=study_id, scope=scope, period=period
        )
        counts = screen_failures.failed_subject_counts(
            session, study_id=study_id, scope=scope, period=period
        )
    return by_criterion, counts


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_failure_details(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, period: Period
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(criteria co-occurrence, daily screening, site x criterion counts, DS screen-failure
    reasons)."""
    with session_for(db_url) as session:
        kwargs = {"study_id": study_id, "scope": scope, "period": period}
        return (
            screen_failures.failure_cooccurrence(session, **kwargs),  # type: ignore[arg-type]
            screen_failures.daily_screening(session, **kwargs),  # type: ignore[arg-type]
            screen_failures.site_criterion_counts(session, **kwargs),  # type: ignore[arg-type]
            screen_failures.screen_failure_dispositions(session, **kwargs),  # type: ignore[arg-type]
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_failed_subjects(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    code: str,
    protocol_version: str,
) -> pd.DataFrame:
    """The drilldown: subjects who failed one criterion, with their screening values of the
    variables the study's rules name."""
    with session_for(db_url) as session:
        rules = screen_failures.criteria_with_rules(session, study_id=study_id)
        variables, _ = checked_criteria(rules, min_age=None, max_age=None)
        return screen_failures.failed_subjects(
            session,
            study_id=study_id,
            scope=scope,
            period=period,
            code=code,
            protocol_version=protocol_version,
            value_codes=tuple(sorted({c.rule.variable for c in variables})),
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_eligibility_checks(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    min_age: float | None,
    max_age: float | None,
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(possible deviations, rules checked, rules unreadable, variables with no data)."""
    with session_for(db_url) as session:
        rules = screen_failures.criteria_with_rules(session, study_id=study_id)
        criteria, unreadable = checked_criteria(rules, min_age=min_age, max_age=max_age)
        variables = tuple(sorted({c.rule.variable for c in criteria}))
        violations = screen_failures.eligibility_violations(
            session, study_id=study_id, scope=scope, criteria=criteria, period=period
        )
        no_data = screen_failures.variables_without_data(
            session, study_id=study_id, scope=scope, variables=variables
        )
    return (
        violations,
        tuple(f"{c.code}: {c.rule.text}" for c in criteria),
        tuple(unreadable),
        no_data,
    )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_baseline_catalogue(db_url: str, study_id: str, cut_id: int | None) -> pd.DataFrame:
    with session_for(db_url) as session:
        return baseline.baseline_catalogue(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_table_one_counts(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    population: str,
    by: str,
    keys: tuple[str, ...],
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return baseline.table_one_counts(
            session, study_id=study_id, scope=scope, population=population, by=by, keys=keys
        )


# A click lists a few hundred subjects at most; the total is counted and said.
SUBJECT_LIST_LIMIT = 500


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subjects_with_value(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    population: str,
    by: str,
    key: str,
    column: str,
    value: str | None,
) -> tuple[pd.DataFrame, int]:
    with session_for(db_url) as session:
        return baseline.subjects_with_value(
            session,
            study_id=study_id,
            scope=scope,
            population=population,
            by=by,
            key=key,
            column=column,
            value=value,
            limit=SUBJECT_LIST_LIMIT,
        )


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def png_of(svg: str) -> bytes:
    """A diagram's PNG (rendering takes a few hundred milliseconds: once per diagram)."""
    return svg_to_png(svg)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_new_failures_by_criterion(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    since_cut_id: int,
) -> pd.DataFrame:
    """New screen failures since the compared cut, per criterion (code, protocol_version,
    new_subjects)."""
    with session_for(db_url) as session:
        return changes.new_failures_by_criterion(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id, period=period
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_new_by_column(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    since_cut_id: int,
    population: str,
    by: str,
) -> pd.DataFrame:
    """Subjects new since the compared cut per Table 1 column (column, new_subjects)."""
    with session_for(db_url) as session:
        return changes.new_subjects_by_column(
            session,
            study_id=study_id,
            scope=scope,
            since_cut_id=since_cut_id,
            population=population,
            by=by,
        )
