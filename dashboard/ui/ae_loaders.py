"""Cached loaders of the Adverse events page (the pattern of ``dashboard.ui.loaders``).

Keyed by primitives only: the database URL, the study, the latest DataCut id (a new import
invalidates every answer), the site scope and the page's filters. Every loader whose answer names
arms takes ``pooled`` (``not ctx.shows_arms``): a blinded user's answer is pooled before it is
cached, so it is another cache entry and no page of theirs ever holds the arms. Sessions and ORM objects are
never cached; what comes back is DataFrames and frozen dataclasses.
"""

import pandas as pd
import streamlit as st

from dashboard.metrics.blinding import (
    drop_arm_columns,
    pool_arms,
    pool_safety_population,
    pool_safety_summary,
    pool_term_incidence,
)
from dashboard.queries import adverse_events, safety_counts
from dashboard.queries.scope import SiteScope
from dashboard.results.adverse_events import (
    AdverseEventCounts,
    SafetyPopulation,
    SafetySummary,
    TermIncidence,
)
from dashboard.ui.loaders import MAX_ENTRIES, TTL_SECONDS, session_for

# Listings are limited: a drilldown of more events than this says how many it left out.
LISTING_LIMIT = 2000
# The SAE listing opens every view of the page: a shorter first page keeps reruns quick (new SAEs
# come first; all of them are in the meeting pack's SAEs sheet).
SAE_LISTING_LIMIT = 500
# The timeline draws at most this many subjects (a clicked cell can hold hundreds).
TIMELINE_SUBJECTS = 10
# The timeline's subject picker offers at most this many (serious first): a longer list is no use
# in a select box, and every subject's AEs are on their Subject page.
TIMELINE_CHOICES = 1000


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_headline(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, treatment_emergent: bool
) -> AdverseEventCounts:
    with session_for(db_url) as session:
        return safety_counts.stored_adverse_event_counts(
            session, study_id=study_id, scope=scope, treatment_emergent=treatment_emergent
        )


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_safety_population(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope, *, pooled: bool
) -> SafetyPopulation:
    with session_for(db_url) as session:
        found = adverse_events.safety_population(session, study_id=study_id, scope=scope)
    return pool_safety_population(found) if pooled else found


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_summary(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    treatment_emergent: bool,
    *,
    pooled: bool,
) -> SafetySummary:
    with session_for(db_url) as session:
        found = safety_counts.safety_summary(
            session, study_id=study_id, scope=scope, treatment_emergent=treatment_emergent
        )
    return pool_safety_summary(found) if pooled else found


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_term_incidence(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    treatment_emergent: bool,
    *,
    pooled: bool,
) -> TermIncidence:
    with session_for(db_url) as session:
        found = safety_counts.incidence_by_term(
            session, study_id=study_id, scope=scope, treatment_emergent=treatment_emergent
        )
    return pool_term_incidence(found) if pooled else found


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_worst_levels(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    treatment_emergent: bool,
    dimension: str,
    *,
    pooled: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(subjects by arm and highest rank, events by arm and source value) of one dimension."""
    kwargs = {
        "study_id": study_id,
        "scope": scope,
        "treatment_emergent": treatment_emergent,
        "dimension": dimension,
    }
    with session_for(db_url) as session:
        worst = safety_counts.subjects_by_worst_level(session, **kwargs)  # type: ignore[arg-type]
        values = safety_counts.events_by_source_value(session, **kwargs)  # type: ignore[arg-type]
    if pooled:
        return (
            pool_arms(worst, counts=["subjects"]),
            pool_arms(values, counts=["events", "subjects"]),
        )
    return worst, values


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_events(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    treatment_emergent: bool,
    *,
    pooled: bool,
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
    limit: int = LISTING_LIMIT,
) -> tuple[pd.DataFrame, int]:
    """An AE listing (at most ``limit`` rows) and how many events match; with
    ``new_first_since``, the events new since that cut first. Pooled: without the arm column (a
    pooled listing is never filtered by ``arm`` either: the caller passes None)."""
    with session_for(db_url) as session:
        listing, total = adverse_events.adverse_event_listing(
            session,
            study_id=study_id,
            scope=scope,
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
            limit=limit,
            new_first_since=new_first_since,
        )
    return (drop_arm_columns(listing) if pooled else listing), total


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_ds_discontinuations(
    db_url: str,
    study_id: str,
    cut_id: int | None,
    scope: SiteScope,
    arm: str | None,
    *,
    pooled: bool,
) -> pd.DataFrame:
    with session_for(db_url) as session:
        found = adverse_events.discontinuations_from_ds(
            session, study_id=study_id, scope=scope, arm=arm
        )
    return drop_arm_columns(found) if pooled else found


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_subjects_with_events(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> pd.DataFrame:
    with session_for(db_url) as session:
        return adverse_events.subjects_with_adverse_events(
            session, study_id=study_id, scope=scope, limit=TIMELINE_CHOICES
        )
