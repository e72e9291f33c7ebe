"""Reading the review log (issue #20): the records that can be reviewed with the cut each was
last changed in, each role's latest mark, the log itself and the query messages; all within a
site scope. The log keeps each row's SITEID, so the scope holds for records a later cut removed.
"""

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func, literal, select
from sqlmodel import Session, col

from dashboard.models import (
    AdverseEvent,
    Disposition,
    EligibilityFinding,
    ReviewEvent,
    Site,
    Subject,
)
from dashboard.queries.adverse_events import is_serious
from dashboard.queries.scope import SiteScope, rows, subject_in_scope
from dashboard.results.review import MARK_KINDS, MESSAGE_KINDS

_TABLES: dict[str, Any] = {"ae": AdverseEvent, "ie": EligibilityFinding, "ds": Disposition}
RECORD_COLUMNS = ["natural_key", "usubjid", "site_id", "version_cut"]
LOG_COLUMNS = [
    "id", "at", "email", "role", "site_id", "entity", "natural_key", "kind", "record_cut_id",
    "thread_id", "audience", "text", "by_unblinded",
]  # fmt: skip


def record_versions(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    entity: str,
    keys: Sequence[str] | None = None,
    serious_only: bool = False,
    usubjid: str | None = None,
) -> pd.DataFrame:
    """The study's current records of ``entity`` (subject, ae, ie, ds) at the sites in scope:
    natural_key, usubjid, site_id and version_cut, the cut the record was last changed in
    (``updated_cut_id``, else ``first_cut_id``). ``keys``: only these; ``serious_only``: SAEs;
    ``usubjid``: one subject's."""
    table = _TABLES.get(entity)
    if entity == "subject":
        key: Any = col(Subject.usubjid)
        version: Any = func.coalesce(col(Subject.updated_cut_id), col(Subject.first_cut_id))
        stmt = select(key.label("natural_key"), col(Subject.usubjid))
    elif table is not None:
        key = col(table.natural_key)
        version = func.coalesce(col(table.updated_cut_id), col(table.first_cut_id))
        stmt = select(key.label("natural_key"), col(Subject.usubjid)).join(
            Subject, col(Subject.id) == col(table.subject_pk)
        )
    else:
        raise ValueError(f"no such record type: {entity}")
    stmt = (
        stmt.add_columns(col(Site.site_id), version.label("version_cut"))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope))
    )
    if keys is not None:
        stmt = stmt.where(key.in_(list(keys)))
    if usubjid is not None:
        stmt = stmt.where(col(Subject.usubjid) == usubjid)
    if serious_only and entity == "ae":
        stmt = stmt.where(is_serious())
    return pd.DataFrame(rows(session.execute(stmt)), columns=RECORD_COLUMNS)


def _in_log_scope(study_id: str, scope: SiteScope) -> list[Any]:
    where = [col(ReviewEvent.study_id) == study_id]
    if scope is not None:
        where.append(col(ReviewEvent.site_id).in_(scope))
    return where


def latest_marks(
    session: Session, *, study_id: str, scope: SiteScope, entity: str, role: str
) -> pd.DataFrame:
    """Each record's latest mark (reviewed or withdrawn) in ``role``, as the log holds it:
    natural_key, kind, email, at, record_cut_id. The latest is the last written (the highest
    id): two marks at the same moment are both kept, and the later row decides."""
    where = [
        *_in_log_scope(study_id, scope),
        col(ReviewEvent.entity) == entity,
        col(ReviewEvent.role) == role,
        col(ReviewEvent.kind).in_(MARK_KINDS),
    ]
    last = (
        select(func.max(col(ReviewEvent.id)))
        .where(*where)
        .group_by(col(ReviewEvent.natural_key))
        .scalar_subquery()
    )
    stmt = select(
        col(ReviewEvent.natural_key),
        col(ReviewEvent.kind),
        col(ReviewEvent.email),
        col(ReviewEvent.at),
        col(ReviewEvent.record_cut_id),
    ).where(col(ReviewEvent.id).in_(last))
    return pd.DataFrame(
        rows(session.execute(stmt)),
        columns=["natural_key", "kind", "email", "at", "record_cut_id"],
    )


def last_event_id(session: Session, *, study_id: str) -> int:
    """The id of the study's latest log row (0 for none): what tells a cached review state that
    a mark was written since, in any session."""
    stmt = select(func.max(col(ReviewEvent.id))).where(col(ReviewEvent.study_id) == study_id)
    return int(session.execute(stmt).scalar_one() or 0)


def review_log(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    kinds: Sequence[str] | None = None,
    thread_id: int | None = None,
) -> pd.DataFrame:
    """The log's rows at the sites in scope, in the order written (``LOG_COLUMNS``); ``kinds``:
    only these (marks, messages); ``thread_id``: one query's messages."""
    where = _in_log_scope(study_id, scope)
    if kinds is not None:
        where.append(col(ReviewEvent.kind).in_(list(kinds)))
    if thread_id is not None:
        where.append((col(ReviewEvent.id) == thread_id) | (col(ReviewEvent.thread_id) == thread_id))
    stmt = (
        select(*(getattr(ReviewEvent, name) for name in LOG_COLUMNS))
        .where(*where)
        .order_by(col(ReviewEvent.id))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=LOG_COLUMNS)


def query_messages(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Every query message at the sites in scope (``review_log`` of the message kinds)."""
    return review_log(session, study_id=study_id, scope=scope, kinds=MESSAGE_KINDS)


def thread_of(session: Session, *, study_id: str, thread_id: int) -> dict[str, Any] | None:
    """A query's opening row (site_id, entity, natural_key, audience), wherever it is; None where
    the study has no such query. The writer checks the asker's scope against its site."""
    stmt = select(
        col(ReviewEvent.site_id),
        col(ReviewEvent.entity),
        col(ReviewEvent.natural_key),
        col(ReviewEvent.audience),
    ).where(
        col(ReviewEvent.study_id) == study_id,
        col(ReviewEvent.id) == thread_id,
        col(ReviewEvent.kind) == literal("query"),
    )
    found = rows(session.execute(stmt))
    return found[0] if found else None
