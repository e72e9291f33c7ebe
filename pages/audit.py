"""Audit trail (admins only): sign-ins, imports, downloads and user changes, newest first, with
filters. Read only: nothing in the app edits or deletes an audit event."""

import datetime as dt
import json

import streamlit as st

from dashboard.access import AUDIT_PAGE
from dashboard.config import database_url
from dashboard.results.audit import AuditFilter
from dashboard.ui.auth import load_audit, load_audit_choices, require_page
from dashboard.ui.shell import optional_context
from dashboard.views.format import plural

LIMIT = 1000  # rows shown; narrow the filters for older events

require_page(AUDIT_PAGE)  # admins only, whatever the navigation shows
st.title("Audit trail")
st.caption(
    "Who signed in, imported data, downloaded a file or changed a user, and when (UTC). Sites: "
    "the site scope in force (blank: every site). The trail is append-only."
)
context = optional_context()
db_url = context.db_url if context else database_url()
emails, actions, studies = load_audit_choices(db_url)

who, what, which, since, until = st.columns([3, 3, 2, 1, 1])
wanted = AuditFilter(
    emails=tuple(who.multiselect("Who", emails, placeholder="Everyone", key="audit_who")),
    actions=tuple(what.multiselect("What", actions, placeholder="Every action", key="audit_what")),
    study_id=which.selectbox(
        "Study", studies, index=None, placeholder="Every study", key="audit_study"
    ),
    since=since.date_input("From", value=None, key="audit_since", help="UTC day, included."),
    until=until.date_input("To", value=None, key="audit_until", help="UTC day, included."),
)

events, total = load_audit(db_url, wanted, LIMIT)
if events.empty:
    st.info("No audit event matches these filters.")
    st.stop()
shown = events.assign(
    at=events["at"].map(lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if isinstance(t, dt.datetime) else t),
    sites=events["sites"].map(lambda s: ", ".join(s) if s else ""),
    detail=events["detail"].map(lambda d: json.dumps(d, sort_keys=True) if d else ""),
)
st.dataframe(
    shown.drop(columns="id"),
    hide_index=True,
    width="stretch",
    column_config={
        "at": "When (UTC)",
        "email": "Who",
        "action": "What",
        "study_id": "Study",
        "sites": "Sites",
        "detail": st.column_config.TextColumn("Detail", width="large"),
    },
)
st.caption(
    f"{plural(total, 'event')} {'matches' if total == 1 else 'match'}"
    + (f"; the newest {LIMIT} are listed." if total > LIMIT else ".")
)
