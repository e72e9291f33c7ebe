"""What changed since an earlier data cut (DESIGN.md "History" contract)."""

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from dashboard.models import ENROLLED, SCREEN_FAILURE, AdverseEvent, Subject
from dashboard.queries.adverse_events import is_serious
from dashboard.queries.scope import Period, SiteScope, subject_in_scope


@dataclass(frozen=True)
class ChangesSince:
    since_cut_id: int
    new_subjects: int
    new_screen_failures: int
    new_enrolled: int
    changed_subjects: int
    new_adverse_events: int
    new_serious_adverse_events: int


def changes_since(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> ChangesSince:
    """Rows first seen, or changed, in a cut later than ``since_cut_id``.

    A subject screened before that cut and enrolled after it is "changed", not "new"; "new enrolled"
    counts subjects first seen later who are enrolled now.
    """
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    is_new = col(Subject.first_cut_id) > since_cut_id
    subjects_stmt = select(
        func.coalesce(func.sum(case((is_new, 1), else_=0)), 0),
        func.coalesce(
            func.sum(case((is_new & (col(Subject.population) == SCREEN_FAILURE), 1), else_=0)), 0
        ),
        func.coalesce(
            func.sum(case((is_new & (col(Subject.population) == ENROLLED), 1), else_=0)), 0
        ),
        func.coalesce(
            func.sum(case((~is_new & (col(Subject.updated_cut_id) > since_cut_id), 1), else_=0)),
            0,
        ),
    ).where(where)
    new_subjects, new_failures, new_enrolled, changed = session.execute(subjects_stmt).one()
    new_ae = col(AdverseEvent.first_cut_id) > since_cut_id
    serious = is_serious()
    # Only the new AEs are read (the index on first_cut_id), the scope as a subquery.
    ae_stmt = select(
        func.count(),
        func.coalesce(func.sum(case((serious, 1), else_=0)), 0),
    ).where(new_ae, col(AdverseEvent.subject_pk).in_(select(col(Subject.id)).where(where)))
    new_events, new_serious = session.execute(ae_stmt).one()
    return ChangesSince(
        since_cut_id=since_cut_id,
        new_subjects=int(new_subjects),
        new_screen_failures=int(new_failures),
        new_enrolled=int(new_enrolled),
        changed_subjects=int(changed),
        new_adverse_events=int(new_events),
        new_serious_adverse_events=int(new_serious),
    )
