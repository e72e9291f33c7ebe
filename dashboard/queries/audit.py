"""The audit trail, read for the admin page: filtered in SQL, newest first, limited."""

import datetime as dt

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlmodel import Session, col

from dashboard.models import AuditEvent
from dashboard.queries.scope import rows
from dashboard.results.audit import AuditFilter

AUDIT_COLUMNS = ["id", "at", "email", "action", "study_id", "sites", "detail"]


def _where(wanted: AuditFilter) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if wanted.emails:
        clauses.append(col(AuditEvent.email).in_(wanted.emails))
    if wanted.actions:
        clauses.append(col(AuditEvent.action).in_(wanted.actions))
    if wanted.study_id:
        clauses.append(col(AuditEvent.study_id) == wanted.study_id)
    if wanted.since:
        clauses.append(col(AuditEvent.at) >= dt.datetime.combine(wanted.since, dt.time()))
    if wanted.until:
        next_day = dt.datetime.combine(wanted.until + dt.timedelta(days=1), dt.time())
        clauses.append(col(AuditEvent.at) < next_day)
    return and_(true(), *clauses)


def audit_events(session: Session, *, wanted: AuditFilter, limit: int) -> tuple[pd.DataFrame, int]:
    """(the newest ``limit`` events that match, how many match in all). Columns: id, at (UTC),
    email, action, study_id, sites (None: every site), detail."""
    where = _where(wanted)
    total = int(
        session.execute(select(func.count()).select_from(AuditEvent).where(where)).scalar_one()
    )
    stmt = (
        select(*(col(getattr(AuditEvent, c)) for c in AUDIT_COLUMNS))
        .where(where)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=AUDIT_COLUMNS), total


def audit_choices(session: Session) -> tuple[list[str], list[str], list[str]]:
    """The values the filters offer: (e-mails, actions, studies) that occur in the trail."""

    def values(field: str) -> list[str]:
        column = col(getattr(AuditEvent, field))
        found = session.execute(select(column).distinct().order_by(column)).scalars().all()
        return [str(v) for v in found if v is not None]

    return values("email"), values("action"), values("study_id")
