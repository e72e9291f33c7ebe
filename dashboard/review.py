"""Writing the review log (issue #20): review marks and query messages, with who may write what.

Every write appends rows to ``ReviewEvent`` (never changes one) and an audit event in the same
transaction, so two reviewers marking one record at once both land and the audit trail holds each
mark and message. The page and the command line call these; they share the rules:

- Marks are made in a review role (``results.review.REVIEW_ROLES``) the user's access role allows
  (``review_roles``): sponsors as medical monitor or data manager, monitors as CRA, admins in any.
  Investigators make no marks.
- A user may mark, raise, answer or close only at the sites they may see (``access.allowed_sites``);
  a record outside them is "not found", as a record that does not exist.
- A query is raised by a reviewer, addressed to the site, data management or the medical monitor.
  An investigator answers the queries addressed to the site; a reviewer answers the others and
  closes or reopens any.
- A message written by an unblinded viewer of a blinded study is stored as such and shown only to
  unblinded viewers (``metrics.review.shown_text``).
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard import access
from dashboard.access import CurrentUser
from dashboard.models import ReviewEvent
from dashboard.queries.review import record_versions, thread_of
from dashboard.queries.scope import SiteScope
from dashboard.queries.studies import study_info
from dashboard.results.review import (
    ANSWER,
    AUDIENCES,
    CLOSE,
    CRA,
    DATA_MANAGER,
    ENTITIES,
    MEDICAL_MONITOR,
    QUERY,
    REOPEN,
    REVIEW_ROLES,
    REVIEWED,
    ROLE_NAMES,
    SITE,
    UNREVIEWED,
)

_ROLES_OF = {
    access.ADMIN: REVIEW_ROLES,
    access.SPONSOR: (MEDICAL_MONITOR, DATA_MANAGER),
    access.MONITOR: (CRA,),
    access.INVESTIGATOR: (),
}
# Audit actions, one per kind of row written.
AUDIT_ACTIONS = {  # the values are access.REVIEW_ACTIONS
    REVIEWED: "review-mark",
    UNREVIEWED: "review-unmark",
    QUERY: "query-open",
    ANSWER: "query-answer",
    CLOSE: "query-close",
    REOPEN: "query-reopen",
}
MAX_TEXT = 4000  # characters in one message


class ReviewRefused(Exception):
    """A write the rules refuse, in words the user reads (the page shows it, the CLI exits 2)."""


def review_roles(role: str) -> tuple[str, ...]:
    """The review roles a user with access ``role`` may mark in."""
    return _ROLES_OF.get(role, ())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _by_unblinded(session: Session, user: CurrentUser, study_id: str) -> bool:
    info = study_info(session, study_id=study_id)
    if info is None:
        raise ReviewRefused(f"study {study_id} not found")
    return info.counts_as_blinded and user.unblinded


def _scope(user: CurrentUser, study_id: str) -> SiteScope:
    if not access.may_see_study(user, study_id):
        raise ReviewRefused(f"study {study_id} not found")
    return access.allowed_sites(user, study_id)


def _records(
    session: Session, user: CurrentUser, study_id: str, entity: str, keys: list[str]
) -> tuple[SiteScope, pd.DataFrame]:
    """The user's scope and the records of ``entity`` named by ``keys`` in it (``record_versions``);
    ReviewRefused where one is not found there (a record at another site is "not found", as one
    that does not exist)."""
    if entity not in ENTITIES:
        raise ReviewRefused(f"no such record type: {entity} (one of {', '.join(ENTITIES)})")
    scope = _scope(user, study_id)
    found = record_versions(session, study_id=study_id, scope=scope, entity=entity, keys=keys)
    missing = sorted(set(keys) - set(found["natural_key"]))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ReviewRefused(
            f"{ENTITIES[entity]} {', '.join(missing[:3])}{more} not found in {study_id}"
            + (" at your sites" if scope is not None else "")
        )
    return scope, found


def _audit(
    session: Session,
    user: CurrentUser,
    kind: str,
    study_id: str,
    scope: SiteScope,
    detail: dict[str, Any],
) -> None:
    access.record(
        session,
        email=user.email,
        action=AUDIT_ACTIONS[kind],
        study_id=study_id,
        sites=scope,
        detail=detail,
    )


def mark(
    session: Session,
    *,
    user: CurrentUser,
    study_id: str,
    entity: str,
    keys: Sequence[str],
    role: str,
    reviewed: bool = True,
) -> int:
    """Mark the records of ``entity`` named by ``keys`` reviewed in ``role`` (or withdraw the
    marks, ``reviewed`` False), each with the cut it was last changed in. Returns how many rows
    were written; raises ReviewRefused, writing nothing, for a role the user may not mark in or a
    record not found at the user's sites."""
    if role not in review_roles(user.role):
        allowed = ", ".join(ROLE_NAMES[r] for r in review_roles(user.role)) or "none"
        raise ReviewRefused(
            f"{user.email} ({user.role}) may not mark records as {ROLE_NAMES.get(role, role)}"
            f" (may as: {allowed})"
        )
    wanted = list(dict.fromkeys(keys))
    scope, found = _records(session, user, study_id, entity, wanted)
    at = _now()
    kind = REVIEWED if reviewed else UNREVIEWED
    session.add_all(
        ReviewEvent(
            at=at,
            email=user.email,
            role=role,
            study_id=study_id,
            site_id=site,
            entity=entity,
            natural_key=key,
            kind=kind,
            record_cut_id=int(cut),
        )
        for key, site, cut in zip(
            found["natural_key"], found["site_id"], found["version_cut"], strict=True
        )
    )
    detail = {"entity": entity, "role": role, "records": len(found), "keys": wanted[:100]}
    _audit(session, user, kind, study_id, scope, detail)
    return len(found)


def _text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ReviewRefused("the message is empty")
    if len(cleaned) > MAX_TEXT:
        raise ReviewRefused(f"the message is {len(cleaned):,} characters: at most {MAX_TEXT:,}")
    return cleaned


def open_query(
    session: Session,
    *,
    user: CurrentUser,
    study_id: str,
    entity: str,
    key: str,
    audience: str,
    text: str,
) -> int:
    """Raise a query on one record, addressed to ``audience``; returns its id (the thread)."""
    if audience not in AUDIENCES:
        raise ReviewRefused(f"no such audience: {audience} (one of {', '.join(AUDIENCES)})")
    roles = review_roles(user.role)
    if not roles:
        raise ReviewRefused(f"{user.email} ({user.role}) may answer queries, not raise them")
    scope, found = _records(session, user, study_id, entity, [key])
    row = ReviewEvent(
        at=_now(),
        email=user.email,
        role=roles[0],
        study_id=study_id,
        site_id=found["site_id"].iloc[0],
        entity=entity,
        natural_key=key,
        kind=QUERY,
        record_cut_id=int(found["version_cut"].iloc[0]),
        audience=audience,
        text=_text(text),
        by_unblinded=_by_unblinded(session, user, study_id),
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    detail = {"entity": entity, "key": key, "audience": audience, "query": row.id}
    _audit(session, user, QUERY, study_id, scope, detail)
    return row.id


def post(
    session: Session, *, user: CurrentUser, study_id: str, thread_id: int, kind: str, text: str
) -> None:
    """Answer, close or reopen query ``thread_id`` with a message."""
    if kind not in (ANSWER, CLOSE, REOPEN):
        raise ReviewRefused(f"no such step: {kind} (answer, close or reopen)")
    scope = _scope(user, study_id)
    thread = thread_of(session, study_id=study_id, thread_id=thread_id)
    if thread is None or (scope is not None and thread["site_id"] not in scope):
        raise ReviewRefused(
            f"query {thread_id} not found in {study_id}"
            + (" at your sites" if scope is not None else "")
        )
    roles = review_roles(user.role)
    if not roles and (kind != ANSWER or thread["audience"] != SITE):
        raise ReviewRefused(
            f"{user.email} ({user.role}) may answer only the queries addressed to the site"
        )
    session.add(
        ReviewEvent(
            at=_now(),
            email=user.email,
            role=roles[0] if roles else SITE,
            study_id=study_id,
            site_id=thread["site_id"],
            entity=thread["entity"],
            natural_key=thread["natural_key"],
            kind=kind,
            thread_id=thread_id,
            text=_text(text),
            by_unblinded=_by_unblinded(session, user, study_id),
        )
    )
    detail = {"query": thread_id, "entity": thread["entity"], "key": thread["natural_key"]}
    _audit(session, user, kind, study_id, scope, detail)
