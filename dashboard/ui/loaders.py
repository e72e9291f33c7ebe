"""Cached loaders of what the app shell needs before any page's view: the engine per database
URL, the studies, a study's cuts, identity and sites, and the screening span the period filter
offers. Everything a page shows comes from its view (``dashboard.ui.views``).

Keyed by primitives only: the database URL, the study and the latest DataCut id (so a new import
invalidates every cached answer in every session); an import that makes no cut (a registry
record, a site table) clears the caches (``forget_if_imported``). Engines are cached once per
URL; sessions and ORM objects are never cached.
"""

import datetime as dt

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.charts.consort import svg_to_png
from dashboard.db import SchemaError, ensure_schema, make_engine
from dashboard.queries import enrollment, studies
from dashboard.queries.scope import SiteScope
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


@st.cache_resource(show_spinner=False)
def _imports_seen() -> dict[tuple[str, str], int | None]:
    """The latest import of each (database, study) this process has served: shared by sessions."""
    return {}


def forget_if_imported(db_url: str, study_id: str) -> None:
    """Clear every cached answer when the study was imported into since this process last looked.
    A data cut changes the cut id every cache key holds, but a registry record or a site table
    (from the command line, say) changes a study without one: without this the app would show
    the old sites or facts until the cache expired. Not cached: one indexed query a run."""
    with session_for(db_url) as session:
        latest = studies.latest_import(session, study_id=study_id)
    seen = _imports_seen()
    key = (db_url, study_id)
    if key in seen and seen[key] != latest:
        st.cache_data.clear()  # every study's: imports are rare, a stale answer is wrong
    seen[key] = latest


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_study(db_url: str, study_id: str, cut_id: int | None) -> StudyInfo | None:
    with session_for(db_url) as session:
        return studies.study_info(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_sites(db_url: str, study_id: str, cut_id: int | None) -> pd.DataFrame:
    with session_for(db_url) as session:
        return studies.sites(session, study_id=study_id)


@st.cache_data(ttl=TTL_SECONDS, max_entries=MAX_ENTRIES, show_spinner=False)
def load_screening_span(
    db_url: str, study_id: str, cut_id: int | None, scope: SiteScope
) -> tuple[dt.date, dt.date] | None:
    with session_for(db_url) as session:
        return enrollment.screening_span(session, study_id=study_id, scope=scope)


@st.cache_data(max_entries=MAX_ENTRIES, show_spinner=False)
def png_of(svg: str) -> bytes:
    """A diagram's PNG (rendering takes a few hundred milliseconds: once per diagram)."""
    return svg_to_png(svg)
