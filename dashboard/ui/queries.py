"""The Queries page's reads and forms (issue #20): the queries in the viewer's scope, one
query's thread, and the forms that answer, close, reopen and raise queries through
``dashboard.review`` (its refusals shown as a plain message).

Not cached: the review log changes with every message, not with a data cut, and one study's
queries are few."""

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from dashboard.db import session_scope
from dashboard.results.review import (
    ANSWER,
    AUDIENCES,
    CLOSE,
    ENTITIES,
    REOPEN,
    REVIEW_ROLES,
    ROLE_NAMES,
    SITE,
)
from dashboard.review import ReviewRefused, open_query, post, review_roles
from dashboard.ui.loaders import engine_for, session_for
from dashboard.ui.shell import PageContext
from dashboard.views import review

FLASH_KEY = "queries_flash"  # the message a write leaves for the run after it
STEP_WORDS = {ANSWER: "Answer", CLOSE: "Close", REOPEN: "Reopen"}


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def load_queries(context: PageContext) -> pd.DataFrame:
    """Every query in the viewer's scope (``views.review.queries``)."""
    with session_for(context.db_url) as session:
        return review.queries(session, context.view, today=today())


def load_thread(context: PageContext, thread_id: int) -> pd.DataFrame:
    """One query's messages as the viewer may read them."""
    with session_for(context.db_url) as session:
        return review.messages(session, context.view, thread_id=thread_id)


def record_subject(context: PageContext, entity: str, key: str) -> str | None:
    """The USUBJID of the record a query is on; None where a later cut removed the record."""
    with session_for(context.db_url) as session:
        found = review.states(
            session, context.view, entity=entity, role=REVIEW_ROLES[0], keys=[key]
        )
    return str(found["usubjid"].iloc[0]) if len(found) else None


def flash() -> None:
    """The outcome of the write the last run made, once."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message)


def _write(context: PageContext, done: str, write: Callable[[Session], object]) -> None:
    """Run ``write`` in one transaction; a refusal is shown, success is said on the next run."""
    try:
        with session_scope(engine_for(context.db_url)) as session:
            write(session)
    except ReviewRefused as refused:
        st.error(str(refused))
        return
    st.session_state[FLASH_KEY] = done
    st.rerun()


def step_form(context: PageContext, thread: pd.Series) -> None:
    """Answer, close or reopen ``thread`` (a row of ``load_queries``), as the user may."""
    user = context.user
    reviewer = bool(review_roles(user.role))
    if reviewer:
        steps = [REOPEN] if thread["state"] == "closed" else [ANSWER, CLOSE]
    elif thread["audience"] == SITE and thread["state"] != "closed":
        steps = [ANSWER]
    else:
        st.caption("You may answer only open queries addressed to the site.")
        return
    thread_id = int(thread["thread_id"])
    with st.form(f"queries_step_{thread_id}", clear_on_submit=True):
        kind = st.radio(
            "Step", steps, format_func=STEP_WORDS.__getitem__, horizontal=True, key="queries_step"
        )
        text = st.text_area("Message", key="queries_message", max_chars=4000)
        sent = st.form_submit_button("Send")
    if sent:
        _write(
            context,
            f"Query {thread_id}: {STEP_WORDS[kind].lower()} sent.",
            lambda session: post(
                session,
                user=user,
                study_id=context.study_id,
                thread_id=thread_id,
                kind=kind,
                text=text,
            ),
        )


def subject_records(context: PageContext, entity: str, usubjid: str) -> list[str]:
    """The keys of ``usubjid``'s records of ``entity`` in the viewer's scope."""
    with session_for(context.db_url) as session:
        found = review.states(
            session, context.view, entity=entity, role=REVIEW_ROLES[0], usubjid=usubjid
        )
    return sorted(found["natural_key"].astype(str))


def raise_form(context: PageContext) -> None:
    """Raise a query on one record, addressed to the site, data management or the medical
    monitor (reviewers only: site users answer queries). The record is picked from a subject's
    records, or its key typed."""
    user = context.user
    if not review_roles(user.role):
        return
    st.subheader("Raise a query")
    kind, subject, pick = st.columns([1, 1, 2])
    entity = kind.selectbox(
        "Record type", list(ENTITIES), format_func=ENTITIES.__getitem__, key="queries_entity"
    )
    usubjid = subject.text_input("Subject (USUBJID)", key="queries_subject").strip()
    keys = subject_records(context, entity, usubjid) if usubjid else []
    picked = pick.selectbox(
        "Record",
        keys,
        index=0 if keys else None,
        placeholder="Name a subject to list its records" if not usubjid else "None found",
        key="queries_record",
    )
    typed = st.text_input(
        "Or the record's key",
        key="queries_key",
        help="The key as the listings give it: a subject's USUBJID; an AE's USUBJID/AESEQ; an "
        "eligibility finding's USUBJID/IETESTCD/version; a disposition's USUBJID/DSSEQ. Used "
        "instead of the record picked above.",
    ).strip()
    key = typed or (picked or "")
    with st.form("queries_raise", clear_on_submit=True):
        audience = st.selectbox(
            "To", list(AUDIENCES), format_func=AUDIENCES.__getitem__, key="queries_audience"
        )
        text = st.text_area("Question", key="queries_question", max_chars=4000)
        sent = st.form_submit_button("Raise the query")
    if sent:
        if not key:
            st.error("Pick a record, or type its key.")
            return
        _write(
            context,
            f"Query raised on {ENTITIES[entity]} {key}.",
            lambda session: open_query(
                session,
                user=user,
                study_id=context.study_id,
                entity=entity,
                key=key,
                audience=audience,
                text=text,
            ),
        )


def filtered(
    found: pd.DataFrame, *, states: list[str], sites: list[str], audiences: list[str]
) -> pd.DataFrame:
    """The queries of the states, sites and audiences chosen (none chosen: every one)."""
    keep = pd.Series(True, index=found.index)
    for column, chosen in (("state", states), ("site_id", sites), ("audience", audiences)):
        if chosen:
            keep &= found[column].isin(chosen)
    return found[keep]


def listing(shown: pd.DataFrame) -> pd.DataFrame:
    """The list as drawn: the record as "<type> <key>", the audience in words."""
    return shown.assign(
        record=[
            f"{ENTITIES.get(e, e)} {k}"
            for e, k in zip(shown["entity"], shown["natural_key"], strict=True)
        ],
        audience=shown["audience"].map(lambda a: AUDIENCES.get(a, a)),
    )[["thread_id", "site_id", "age_days", "state", "audience", "record", "question", "last_by"]]


def role_words(role: str) -> str:
    return ROLE_NAMES.get(role, role)
