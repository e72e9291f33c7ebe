"""What changed since an earlier data cut (DESIGN.md "History" contract).

"New" is a row first held by a cut later than the one compared with (``first_cut_id``); "changed"
is an older row that a later cut altered (``updated_cut_id``). The Overview, the "new since"
markers of the other pages and the monitoring pack all read these functions.
"""

from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlmodel import Session, col

from dashboard.models import AdverseEvent, Criterion, EligibilityFinding, Exposure, Site, Subject
from dashboard.queries.adverse_events import is_serious
from dashboard.queries.scope import Period, SiteScope, rows, subject_in_scope
from dashboard.results.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
from dashboard.results.changes import AdverseEventChanges, SubjectChanges
from dashboard.results.population import ENROLLED, SCREEN_FAILURE


def subject_changes_since(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> SubjectChanges:
    """Subjects first seen, or changed, in a cut later than ``since_cut_id``.

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
    return SubjectChanges(
        since_cut_id=since_cut_id,
        new_subjects=int(new_subjects),
        new_screen_failures=int(new_failures),
        new_enrolled=int(new_enrolled),
        changed_subjects=int(changed),
    )


def _adverse_event_changes(since_cut_id: int) -> dict[str, Any]:
    """The three AE change counts as SQL sums: AEs first held by a later cut (new), those of them
    serious, and AEs of that cut or earlier that a later one changed."""
    new_ae = col(AdverseEvent.first_cut_id) > since_cut_id
    changed = ~new_ae & (col(AdverseEvent.updated_cut_id) > since_cut_id)

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return {
        "new_adverse_events": count_if(new_ae),
        "new_serious_adverse_events": count_if(new_ae & is_serious()),
        "changed_adverse_events": count_if(changed),
    }


def _touched_since(since_cut_id: int) -> ColumnElement[bool]:
    # Only the AEs a later cut added or changed are read (the indexes on both cut columns).
    return or_(
        col(AdverseEvent.first_cut_id) > since_cut_id,
        col(AdverseEvent.updated_cut_id) > since_cut_id,
    )


def adverse_event_changes_since(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> AdverseEventChanges:
    """AEs first seen in a cut later than ``since_cut_id`` (and how many of them are serious), and
    AEs of an earlier cut that a later one changed; of the subjects in scope."""
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    in_scope = col(AdverseEvent.subject_pk).in_(select(col(Subject.id)).where(where))
    sums = _adverse_event_changes(since_cut_id)
    stmt = select(*sums.values()).where(_touched_since(since_cut_id), in_scope)
    found = dict(zip(sums, session.execute(stmt).one(), strict=True))
    return AdverseEventChanges(
        since_cut_id=since_cut_id, **{name: int(n) for name, n in found.items()}
    )


def adverse_event_changes_by_site(
    session: Session, *, study_id: str, since_cut_id: int
) -> pd.DataFrame:
    """``adverse_event_changes_since`` per site, for the load-time counts: columns site_pk and the
    three counts (new_adverse_events, new_serious_adverse_events, changed_adverse_events)."""
    sums = _adverse_event_changes(since_cut_id)
    stmt = (
        select(col(Subject.site_pk), *(total.label(name) for name, total in sums.items()))
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(col(Subject.study_id) == study_id, _touched_since(since_cut_id))
        .group_by(col(Subject.site_pk))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["site_pk", *sums])


def new_failures_by_criterion(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> pd.DataFrame:
    """The new screen failures (screen-failed subjects first seen after ``since_cut_id``, as
    ``ChangesSince.new_screen_failures`` counts them) per criterion they failed.

    Columns: code, protocol_version, new_subjects; only criteria with a new failure.
    """
    stmt = (
        select(
            col(Criterion.code),
            col(Criterion.protocol_version),
            func.count(func.distinct(col(Subject.id))).label("new_subjects"),
        )
        .select_from(EligibilityFinding)
        .join(Subject, col(Subject.id) == col(EligibilityFinding.subject_pk))
        .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.population) == SCREEN_FAILURE,
            col(Subject.first_cut_id) > since_cut_id,
        )
        .group_by(col(Criterion.code), col(Criterion.protocol_version))
    )
    return pd.DataFrame(
        rows(session.execute(stmt)), columns=["code", "protocol_version", "new_subjects"]
    )


def new_subjects_by_column(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    since_cut_id: int,
    population: str,
    by: str,
) -> pd.DataFrame:
    """Subjects first seen after ``since_cut_id`` per Table 1 column: the planned arm (screen
    failures and subjects not allocated in columns of their own, as ``queries.baseline`` names
    them) or the site (``by`` "site"). ``population``: enrolled, treated or screened.

    Columns: column, new_subjects.
    """
    treated = col(Subject.first_dose_date).is_not(None) | col(Subject.id).in_(
        select(col(Exposure.subject_pk))
    )
    where = [
        subject_in_scope(study_id=study_id, scope=scope),
        col(Subject.first_cut_id) > since_cut_id,
    ]
    if population in ("enrolled", "treated"):
        where.append(col(Subject.population) == ENROLLED)
    if population == "treated":
        where.append(treated)
    # Grouped on the raw columns and named in pandas (a handful of groups): the same naming as
    # ``queries.baseline.baseline_values``, written once there for the Table 1 columns.
    stmt = (
        select(
            col(Subject.population),
            col(Subject.arm),
            col(Subject.arm_code),
            col(Site.site_id),
            func.count().label("n"),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .group_by(
            col(Subject.population), col(Subject.arm), col(Subject.arm_code), col(Site.site_id)
        )
    )
    found = pd.DataFrame(
        rows(session.execute(stmt)), columns=["population", "arm", "arm_code", "site_id", "n"]
    )
    if by == "site":
        names = [str(s) if s else "(no site)" for s in found["site_id"]]
    else:
        names = [
            (arm or code or "(no arm)")
            if pop == ENROLLED
            else (SCREEN_FAILURE_COLUMN if pop == SCREEN_FAILURE else NOT_ALLOCATED_COLUMN)
            for pop, arm, code in zip(
                found["population"], found["arm"], found["arm_code"], strict=True
            )
        ]
    counted = found.assign(column=names).groupby("column", sort=True)["n"].sum()
    return pd.DataFrame(
        {"column": counted.index.astype(str), "new_subjects": counted.to_numpy(dtype=int)}
    )
