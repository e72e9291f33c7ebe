"""Site scope: which subjects a query may count. Applied here, in the query layer, never only in the UI."""

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlmodel import col

from dashboard.models import Site, Subject

# The site ids (SITEID) a view may see; None means every site of the study. A tuple, so cached
# loaders can key on it.
SiteScope = tuple[str, ...] | None
# A screening period (first day, last day), both included; None means any date. Subjects without a
# screening date fall outside every period.
Period = tuple[dt.date, dt.date] | None


def subject_in_scope(
    *, study_id: str, scope: SiteScope, period: Period = None
) -> ColumnElement[bool]:
    """A WHERE clause on Subject: the study's subjects at the sites in scope, screened in the
    period."""
    clause: ColumnElement[bool] = col(Subject.study_id) == study_id
    if scope is not None:
        sites = select(col(Site.id)).where(
            col(Site.study_id) == study_id, col(Site.site_id).in_(scope)
        )
        clause = and_(clause, col(Subject.site_pk).in_(sites))
    if period is not None:
        clause = and_(clause, col(Subject.screening_date).between(period[0], period[1]))
    return clause


def site_in_scope(*, study_id: str, scope: SiteScope) -> ColumnElement[bool]:
    """A WHERE clause on Site: the study's sites in scope."""
    clause: ColumnElement[bool] = col(Site.study_id) == study_id
    if scope is not None:
        clause = and_(clause, col(Site.site_id).in_(scope))
    return clause


def rows(result: Any) -> list[dict[str, Any]]:
    """Result rows as plain dicts (no ORM objects leave a session)."""
    return [dict(row._mapping) for row in result]


def driver_rows(session: Any, stmt: Any) -> tuple[list[str], list[Any]]:
    """The column names and the rows of ``stmt`` as the driver returns them (tuples): no
    SQLAlchemy Row per row and no result processing, which cost seconds at half a million rows.
    Only for statements whose columns the driver already gives as they are wanted (integers,
    floats, text): a date or a boolean would come back raw from SQLite."""
    # Core execution on the session's connection (its transaction): a CursorResult, whose
    # DBAPI cursor is read directly.
    result = session.connection().execute(stmt)
    try:
        return list(result.keys()), list(result.cursor.fetchall())
    finally:
        result.close()
