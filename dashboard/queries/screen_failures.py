"""Screen failures by eligibility criterion."""

import pandas as pd
from sqlalchemy import case, func, select
from sqlmodel import Session, col

from dashboard.models import SCREEN_FAILURE, Criterion, EligibilityFinding, Subject
from dashboard.queries.scope import Period, SiteScope, rows, subject_in_scope


def _failed_findings(*, study_id: str, scope: SiteScope, period: Period = None):  # type: ignore[no-untyped-def]
    """Findings of screen-failed subjects in scope (a subquery: subject_pk, criterion_pk)."""
    return (
        select(col(EligibilityFinding.subject_pk), col(EligibilityFinding.criterion_pk))
        .join(Subject, col(Subject.id) == col(EligibilityFinding.subject_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.population) == SCREEN_FAILURE,
        )
        .subquery()
    )


def failures_by_criterion(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Distinct screen-failed subjects per criterion, every criterion listed (zeros included).

    Columns: code, protocol_version, category, text, seq, subjects. Sorted by protocol order.
    """
    failed = _failed_findings(study_id=study_id, scope=scope, period=period)
    stmt = (
        select(
            col(Criterion.code),
            col(Criterion.protocol_version),
            col(Criterion.category),
            col(Criterion.text),
            col(Criterion.seq),
            func.count(func.distinct(failed.c.subject_pk)).label("subjects"),
        )
        .select_from(Criterion)
        .outerjoin(failed, failed.c.criterion_pk == col(Criterion.id))
        .where(col(Criterion.study_id) == study_id)
        .group_by(
            col(Criterion.id),
            col(Criterion.code),
            col(Criterion.protocol_version),
            col(Criterion.category),
            col(Criterion.text),
            col(Criterion.seq),
        )
        .order_by(col(Criterion.seq), col(Criterion.code), col(Criterion.protocol_version))
    )
    columns = ["code", "protocol_version", "category", "text", "seq", "subjects"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)


def failed_subject_counts(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> dict[str, int]:
    """{"with_reason": screen failures with at least one criterion recorded,
    "more_than_one": those with two or more}."""
    failed = _failed_findings(study_id=study_id, scope=scope, period=period)
    per_subject = (
        select(failed.c.subject_pk, func.count(func.distinct(failed.c.criterion_pk)).label("n"))
        .group_by(failed.c.subject_pk)
        .subquery()
    )
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((per_subject.c.n > 1, 1), else_=0)), 0),
    ).select_from(per_subject)
    with_reason, more_than_one = session.execute(stmt).one()
    return {"with_reason": int(with_reason), "more_than_one": int(more_than_one)}
