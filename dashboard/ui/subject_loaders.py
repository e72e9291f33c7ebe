"""Cached loaders of the Subject page and the visit schedule (the pattern of ``dashboard.ui.loaders``).

Keyed by primitives only: the database URL, the study, the latest DataCut id (a new import
invalidates every answer), the site scope, and the subject, reference date and window asked for.
Sessions and ORM objects are never cached; what comes back is DataFrames and frozen dataclasses.
"""

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard.metrics.blinding import blind_subject_record, drop_arm_columns
from dashboard.metrics.visits import derive_visit_status, schedule_grid
from dashboard.queries import subject, visits
from dashboard.queries.scope import Period, SiteScope
from dashboard.results.subject import SubjectRecord
from dashboard.ui.loaders import MAX_ENTRIES, TTL_SECONDS, session_for

# The subject picker lists at most this many codes (type part of a code to narrow it).
PICKER_LIMIT = 200
# The per-subject visit table lists at most this many subjects.
SCHEDULE_SUBJECTS = 500


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subject(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, usubjid: str, *, pooled: bool
) -> SubjectRecord | None:
    """The subject's record; pooled (a blinded user of a blinded study): its arms read "blinded"."""
    with session_for(db_url) as session:
        record = subject.subject_record(session, study_id=study_id, usubjid=usubjid, scope=scope)
    return blind_subject_record(record) if pooled and record is not None else record


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subject_codes(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, contains: str
) -> tuple[list[str], int]:
    """(codes containing ``contains``, at most ``PICKER_LIMIT``; how many match in all)."""
    with session_for(db_url) as session:
        return subject.subject_codes(
            session, study_id=study_id, scope=scope, contains=contains, limit=PICKER_LIMIT
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_planned_schedule(db_url: str, study_id: str, cut_id: int | None) -> pd.DataFrame:
    with session_for(db_url) as session:
        return visits.planned_schedule(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subject_schedule(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    usubjid: str,
    as_of: dt.date,
    window_days: int,
    *,
    pooled: bool,
) -> pd.DataFrame:
    """One subject's planned visits with their status on ``as_of`` (``derive_visit_status``);
    pooled (a blinded user of a blinded study): without the subject's arm."""
    with session_for(db_url) as session:
        schedule = visits.subject_visit_schedule(
            session,
            study_id=study_id,
            usubjid=usubjid,
            scope=scope,
            as_of=as_of,
            window_days=window_days,
        )
    derived = derive_visit_status(schedule, as_of=as_of, window_days=window_days)
    return drop_arm_columns(derived) if pooled else derived


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_visits_by_site(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    as_of: dt.date,
    window_days: int,
) -> tuple[pd.DataFrame, int]:
    """(planned visits by site and status on ``as_of``; enrolled subjects without a day 1)."""
    with session_for(db_url) as session:
        by_site = visits.visits_by_site(
            session,
            study_id=study_id,
            scope=scope,
            as_of=as_of,
            window_days=window_days,
            period=period,
        )
        no_day_one = visits.enrolled_without_day_one(
            session, study_id=study_id, scope=scope, period=period
        )
    return by_site, no_day_one


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_schedule_grid(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    period: Period,
    as_of: dt.date,
    window_days: int,
    needing_action: bool,
    *,
    pooled: bool,
) -> tuple[pd.DataFrame, int]:
    """(one row per subject, one column per planned visit, at most ``SCHEDULE_SUBJECTS`` rows;
    how many subjects matched in all); pooled: without the Arm column."""
    with session_for(db_url) as session:
        schedules, total = visits.subject_schedules(
            session,
            study_id=study_id,
            scope=scope,
            as_of=as_of,
            window_days=window_days,
            needing_action=needing_action,
            limit=SCHEDULE_SUBJECTS,
            period=period,
        )
    derived = derive_visit_status(schedules, as_of=as_of, window_days=window_days)
    grid = schedule_grid(derived)
    return (drop_arm_columns(grid) if pooled else grid), total
