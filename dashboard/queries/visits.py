"""The visit schedule in SQL: planned visits (TV or the study's own schedule) against the visits held
(SV), per subject and per site.

The statuses are those of ``metrics.visits`` (the rule is written there, and the tests hold this SQL
to it). The database gets the arithmetic without dialect-specific date functions: for each planned
visit the due date is day 1 plus a constant, so "the window opened by ``as_of``" is "day 1 on or
before a date worked out in Python per planned visit", one comparison of two dates.
"""

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Date, and_, case, exists, func, literal, or_, select
from sqlmodel import Session, col

from dashboard.metrics.study_days import date_of_study_day
from dashboard.metrics.visits import DEFAULT_WINDOW_DAYS, DONE, DUE, NOT_RECORDED, OVERDUE, UPCOMING
from dashboard.models import Disposition, PlannedVisit, Site, Subject, Visit
from dashboard.queries.scope import Period, SiteScope, rows, subject_in_scope
from dashboard.results.dates import date_series
from dashboard.results.population import ENROLLED

# A planned visit not held by a subject who completed or discontinued by ``as_of``: what
# ``metrics.visits`` splits into missed and not expected (the split needs day arithmetic per row;
# the per-site counts leave it to the per-subject view).
LEFT = "left the study"
ENDED_STATUSES = ("COMPLETED", "DISCONTINUED")

SCHEDULE_COLUMNS = [
    "visit_num",
    "visit",
    "arm_code",
    "planned_day",
    "window_before",
    "window_after",
    "start_rule",
    "is_conditional",
]


def planned_schedule(session: Session, *, study_id: str) -> pd.DataFrame:
    """The study's planned visits, arm-specific ones after the common ones, in VISITNUM order.
    Columns: ``SCHEDULE_COLUMNS`` (arm_code "" for every arm; planned_day None for a visit without
    a planned day, e.g. an unscheduled one)."""
    stmt = (
        select(*(col(getattr(PlannedVisit, name)) for name in SCHEDULE_COLUMNS))
        .where(col(PlannedVisit.study_id) == study_id)
        .order_by(col(PlannedVisit.arm_code), col(PlannedVisit.visit_num))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=SCHEDULE_COLUMNS)


def left_on() -> Any:
    """The date the subject left the study (its latest disposition event outside screening), for
    subjects whose status is completed or discontinued; day 1 where the record has no date."""
    latest = (
        select(func.max(col(Disposition.date)))
        .where(
            col(Disposition.subject_pk) == col(Subject.id),
            func.upper(col(Disposition.category)) == "DISPOSITION EVENT",
            func.upper(func.coalesce(col(Disposition.epoch), "")) != "SCREENING",
            func.upper(col(Disposition.term)) != "SCREEN FAILURE",
        )
        .correlate(Subject)
        .scalar_subquery()
    )
    return case(
        (
            col(Subject.status).in_(ENDED_STATUSES),
            func.coalesce(latest, col(Subject.enrollment_date)),
        ),
        else_=None,
    )


def _is_this_visit() -> Any:
    """An SV row of the planned visit: the same VISITNUM, or the same VISIT where SV has none."""
    return or_(
        col(Visit.visit_num) == col(PlannedVisit.visit_num),
        and_(
            col(Visit.visit_num).is_(None),
            func.upper(col(Visit.visit)) == func.upper(col(PlannedVisit.visit)),
        ),
    )


def _schedule_pairs(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    as_of: dt.date,
    window_days: int,
    period: Period = None,
    usubjid: str | None = None,
) -> Any | None:
    """One row per enrolled subject in scope (screened in ``period``, with a day 1) and planned
    visit that applies to the subject's planned arm, with the visit's status on ``as_of`` worked
    out in SQL. None where the study has no planned visit with a planned day."""
    planned = session.execute(
        select(
            col(PlannedVisit.id),
            col(PlannedVisit.planned_day),
            col(PlannedVisit.window_before),
            col(PlannedVisit.window_after),
        ).where(
            col(PlannedVisit.study_id) == study_id,
            col(PlannedVisit.planned_day).is_not(None),
            col(PlannedVisit.is_conditional).is_(False),
        )
    ).all()
    if not planned:
        return None
    opens_by: dict[Any, Any] = {}
    closes_before: dict[Any, Any] = {}
    for pk, planned_day, before, after in planned:
        # Day 1 on or before ``opens_by``: the window has opened by as_of; day 1 before
        # ``closes_before``: it closed before as_of. (due = day 1 + offset, window = due - before
        # to due + after; offset from the no-day-0 rule.)
        offset = (date_of_study_day(planned_day, as_of) - as_of).days  # day 1 to the due day
        before = window_days if before is None else before
        after = window_days if after is None else after
        opens_by[pk] = literal(as_of - dt.timedelta(days=offset - before), Date)
        closes_before[pk] = literal(as_of - dt.timedelta(days=offset + after), Date)
    visit_pk = col(PlannedVisit.id)
    day_one = col(Subject.enrollment_date)
    held_rows = and_(
        col(Visit.subject_pk) == col(Subject.id),
        _is_this_visit(),
        or_(col(Visit.date).is_(None), col(Visit.date) <= as_of),
    )
    held = exists(select(col(Visit.id)).where(held_rows))
    held_on = select(func.min(col(Visit.date))).where(held_rows).scalar_subquery()
    left = left_on()
    status = case(
        (held, DONE),
        (and_(col(PlannedVisit.planned_day) < 1, day_one <= as_of), NOT_RECORDED),
        (and_(left.is_not(None), left <= as_of), LEFT),
        (day_one > case(opens_by, value=visit_pk), UPCOMING),
        (day_one >= case(closes_before, value=visit_pk), DUE),
        else_=OVERDUE,
    )
    where = [
        subject_in_scope(study_id=study_id, scope=scope, period=period),
        col(Subject.population) == ENROLLED,
        day_one.is_not(None),
    ]
    if usubjid is not None:
        where.append(col(Subject.usubjid) == usubjid)
    return (
        select(
            col(Subject.id).label("subject_pk"),
            col(Subject.usubjid),
            col(Site.site_id),
            func.coalesce(col(Subject.arm), col(Subject.arm_code)).label("arm"),
            day_one.label("day_one"),
            left.label("left_on"),
            col(PlannedVisit.visit_num),
            col(PlannedVisit.visit),
            col(PlannedVisit.planned_day),
            col(PlannedVisit.window_before),
            col(PlannedVisit.window_after),
            held.label("held"),
            held_on.label("held_on"),
            status.label("sql_status"),
        )
        .select_from(Subject)
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .join(
            PlannedVisit,
            and_(
                col(PlannedVisit.study_id) == study_id,
                col(PlannedVisit.planned_day).is_not(None),
                col(PlannedVisit.is_conditional).is_(False),
                or_(
                    col(PlannedVisit.arm_code) == "",
                    col(PlannedVisit.arm_code) == col(Subject.arm_code),
                ),
            ),
        )
        .where(*where)
        .subquery()
    )


SITE_COLUMNS = [
    "site_id",
    "subjects",
    "on_study",
    "done",
    "due",
    "overdue",
    "subjects_overdue",
    "upcoming",
]


def visits_by_site(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    as_of: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    period: Period = None,
) -> pd.DataFrame:
    """Planned visits of the enrolled subjects (screened in ``period``) by site and status on
    ``as_of``; sites with no enrolled subject on the schedule left out. Empty where the study has
    no planned schedule.

    Columns: site_id, subjects (enrolled, with a day 1), on_study (not completed or discontinued by
    ``as_of``), done (held, in the window or not), due (window open, not held), overdue (window
    closed, not held, still on study), subjects_overdue (subjects with at least one overdue
    visit), upcoming.
    """
    pairs = _schedule_pairs(
        session,
        study_id=study_id,
        scope=scope,
        as_of=as_of,
        window_days=window_days,
        period=period,
    )
    if pairs is None:
        return pd.DataFrame(columns=SITE_COLUMNS)

    def count_of(status: str) -> Any:
        return func.coalesce(func.sum(case((pairs.c.sql_status == status, 1), else_=0)), 0)

    on_study = or_(pairs.c.left_on.is_(None), pairs.c.left_on > as_of)
    # One expression object for SELECT, GROUP BY and ORDER BY: PostgreSQL matches them only when
    # they are the same text, bound parameter included.
    site_id = func.coalesce(pairs.c.site_id, "")
    stmt = (
        select(
            site_id.label("site_id"),
            func.count(func.distinct(pairs.c.subject_pk)).label("subjects"),
            func.count(func.distinct(case((on_study, pairs.c.subject_pk)))).label("on_study"),
            count_of(DONE).label("done"),
            count_of(DUE).label("due"),
            count_of(OVERDUE).label("overdue"),
            func.count(
                func.distinct(case((pairs.c.sql_status == OVERDUE, pairs.c.subject_pk)))
            ).label("subjects_overdue"),
            count_of(UPCOMING).label("upcoming"),
        )
        .group_by(site_id)
        .order_by(site_id)
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=SITE_COLUMNS)


def enrolled_without_day_one(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> int:
    """Enrolled subjects in scope without an enrollment date: no day 1, so no visit can be due."""
    stmt = select(func.count()).where(
        subject_in_scope(study_id=study_id, scope=scope, period=period),
        col(Subject.population) == ENROLLED,
        col(Subject.enrollment_date).is_(None),
    )
    return int(session.execute(stmt).scalar_one())


PAIR_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "day_one",
    "left_on",
    "visit_num",
    "visit",
    "planned_day",
    "window_before",
    "window_after",
    "held",
    "held_on",
    "sql_status",
]


def _dates(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        # Plain dates or None (SQLite returns text from a subquery; NaT would not compare).
        frame[column] = date_series(frame[column])
    return frame


def subject_schedules(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    as_of: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    needing_action: bool = True,
    limit: int = 500,
    period: Period = None,
) -> tuple[pd.DataFrame, int]:
    """The planned visits of up to ``limit`` enrolled subjects in scope, one row per subject and
    visit, and how many subjects matched. ``needing_action``: only subjects with a visit due or
    overdue on ``as_of`` (those with most overdue visits first); else every enrolled subject on the
    schedule, by code.

    Columns: ``PAIR_COLUMNS`` (held: an SV record on or before ``as_of``, held_on its earliest
    date; sql_status: the SQL's status, which ``metrics.visits.derive_visit_status`` refines).
    """
    pairs = _schedule_pairs(
        session,
        study_id=study_id,
        scope=scope,
        as_of=as_of,
        window_days=window_days,
        period=period,
    )
    if pairs is None:
        return pd.DataFrame(columns=PAIR_COLUMNS), 0
    overdue = func.sum(case((pairs.c.sql_status == OVERDUE, 1), else_=0))
    chosen: Any = select(pairs.c.subject_pk).group_by(pairs.c.subject_pk, pairs.c.usubjid)
    if needing_action:
        chosen = chosen.having(
            func.sum(case((pairs.c.sql_status.in_((OVERDUE, DUE)), 1), else_=0)) > 0
        ).order_by(overdue.desc(), pairs.c.usubjid)
    else:
        chosen = chosen.order_by(pairs.c.usubjid)
    total = int(session.execute(select(func.count()).select_from(chosen.subquery())).scalar_one())
    picked = [pk for (pk,) in session.execute(chosen.limit(limit)).all()]
    if not picked:
        return pd.DataFrame(columns=PAIR_COLUMNS), total
    stmt = (
        select(*(pairs.c[name] for name in PAIR_COLUMNS))
        .where(pairs.c.subject_pk.in_(picked))
        .order_by(pairs.c.usubjid, pairs.c.visit_num)
    )
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=PAIR_COLUMNS)
    frame["held"] = frame["held"].astype(bool)
    return _dates(frame, ["day_one", "left_on", "held_on"]), total


def subject_visit_schedule(
    session: Session,
    *,
    study_id: str,
    usubjid: str,
    scope: SiteScope,
    as_of: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> pd.DataFrame:
    """One subject's planned visits (``PAIR_COLUMNS``); empty for a subject out of scope, not
    enrolled, without a day 1, or in a study without a planned schedule."""
    pairs = _schedule_pairs(
        session,
        study_id=study_id,
        scope=scope,
        as_of=as_of,
        window_days=window_days,
        usubjid=usubjid,
    )
    if pairs is None:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    stmt = select(*(pairs.c[name] for name in PAIR_COLUMNS)).order_by(pairs.c.visit_num)
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=PAIR_COLUMNS)
    frame["held"] = frame["held"].astype(bool)
    return _dates(frame, ["day_one", "left_on", "held_on"])
