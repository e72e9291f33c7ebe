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

from dashboard.db import make_engine
from dashboard.metrics.baseline import age_bands, summarise_sums
from dashboard.metrics.enrollment import cumulative_accrual
from dashboard.queries import (
    adverse_events,
    baseline,
    enrollment,
    overview,
    screen_failures,
    studies,
)
from dashboard.queries.scope import SiteScope

TTL_SECONDS = 600
MAX_ENTRIES = 256


@st.cache_resource(show_spinner=False)
def engine_for(db_url: str) -> Engine:
    return make_engine(db_url)


def _session(db_url: str) -> Session:
    return Session(engine_for(db_url))


# Not cached: the list of studies and cuts is what tells the other caches that data changed.
def load_study_ids(db_url: str) -> list[str]:
    with _session(db_url) as session:
        return [str(s) for s in studies.list_studies(session)["study_id"]]


def load_cuts(db_url: str, study_id: str) -> list[studies.CutInfo]:
    with _session(db_url) as session:
        return studies.data_cuts(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_study(db_url: str, study_id: str, cut_id: int | None) -> studies.StudyInfo | None:
    with _session(db_url) as session:
        return studies.study_info(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_sites(db_url: str, study_id: str, cut_id: int | None) -> pd.DataFrame:
    with _session(db_url) as session:
        return studies.sites(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_population(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> enrollment.PopulationCounts:
    with _session(db_url) as session:
        return enrollment.population_counts(session, study_id=study_id, scope=scope)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_site_count(db_url: str, study_id: str, cut_id: int | None, scope: SiteScope) -> int:
    with _session(db_url) as session:
        return studies.site_count(session, study_id=study_id, scope=scope)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_enrolled_by_arm(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> pd.DataFrame:
    with _session(db_url) as session:
        return enrollment.enrolled_by_arm(session, study_id=study_id, scope=scope)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_accrual(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, until: dt.date | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cumulative accrual per period up to ``until`` (the cut-off), and the subjects it cannot date."""
    with _session(db_url) as session:
        daily = enrollment.daily_accrual(session, study_id=study_id, scope=scope)
        undated = enrollment.undated_subjects(session, study_id=study_id, scope=scope)
    return cumulative_accrual(daily, until=until), undated


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_failures_by_criterion(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Failures per criterion (zeros included) and how many subjects have one / several reasons."""
    with _session(db_url) as session:
        by_criterion = screen_failures.failures_by_criterion(
            session, study_id=study_id, scope=scope
        )
        counts = screen_failures.failed_subject_counts(session, study_id=study_id, scope=scope)
    return by_criterion, counts


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_baseline(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(numeric baseline summary, demographics by sex and age, age bands)."""
    with _session(db_url) as session:
        sums = baseline.numeric_baseline_sums(session, study_id=study_id, scope=scope)
        demographics = baseline.demographic_counts(session, study_id=study_id, scope=scope)
    return summarise_sums(sums), demographics, age_bands(demographics)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_adverse_events(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[adverse_events.AdverseEventCounts, pd.DataFrame]:
    with _session(db_url) as session:
        counts = adverse_events.adverse_event_counts(session, study_id=study_id, scope=scope)
        by_soc = adverse_events.incidence_by_soc(session, study_id=study_id, scope=scope)
    return counts, by_soc


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_changes_since(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, since_cut_id: int
) -> overview.ChangesSince:
    with _session(db_url) as session:
        return overview.changes_since(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id
        )
