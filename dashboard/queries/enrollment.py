"""Screened, screen-failed, enrolled: the headline counts and their course over time."""

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlmodel import Session, col

from dashboard.models import Disposition, Exposure, Site, Subject
from dashboard.queries.scope import Period, SiteScope, rows, site_in_scope, subject_in_scope
from dashboard.results.dates import date_series
from dashboard.results.enrollment import FunnelCounts, PopulationCounts
from dashboard.results.population import ENROLLED, IN_SCREENING, NOT_ASSIGNED, SCREEN_FAILURE


def population_counts(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> PopulationCounts:
    """Counts of the study's subjects in scope by population, in one GROUP BY."""
    stmt = (
        select(col(Subject.population), func.count())
        .where(subject_in_scope(study_id=study_id, scope=scope, period=period))
        .group_by(col(Subject.population))
    )
    by_population = {population: int(n) for population, n in session.execute(stmt).all()}
    return PopulationCounts(
        screened=sum(by_population.values()),
        screen_failures=by_population.get(SCREEN_FAILURE, 0),
        enrolled=by_population.get(ENROLLED, 0),
        not_assigned=by_population.get(NOT_ASSIGNED, 0),
        in_screening=by_population.get(IN_SCREENING, 0),
    )


def any_subjects(session: Session, *, study_id: str, scope: SiteScope) -> bool:
    """Whether the study has a subject in scope (the first one found answers it)."""
    stmt = select(col(Subject.id)).where(subject_in_scope(study_id=study_id, scope=scope))
    return session.execute(stmt.limit(1)).first() is not None


def enrolled_by_arm(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Enrolled subjects by planned arm (ARM). Columns: arm_code, arm, enrolled."""
    stmt = (
        select(col(Subject.arm_code), col(Subject.arm), func.count().label("enrolled"))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.population) == ENROLLED,
        )
        .group_by(col(Subject.arm_code), col(Subject.arm))
        .order_by(col(Subject.arm))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["arm_code", "arm", "enrolled"])


def daily_accrual(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Subjects screened and enrolled per calendar day.

    Columns: date, screened, enrolled. Screened is dated by the screening date, enrolled by the
    enrollment date; subjects without the date are left out (and counted by ``undated_subjects``).
    """
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    screened: Any = (
        select(col(Subject.screening_date).label("date"), func.count().label("n"))
        .where(where, col(Subject.screening_date).is_not(None))
        .group_by(col(Subject.screening_date))
    )
    enrolled: Any = (
        select(col(Subject.enrollment_date).label("date"), func.count().label("n"))
        .where(
            where, col(Subject.population) == ENROLLED, col(Subject.enrollment_date).is_not(None)
        )
        .group_by(col(Subject.enrollment_date))
    )
    frames = []
    for name, stmt in (("screened", screened), ("enrolled", enrolled)):
        frame = pd.DataFrame(rows(session.execute(stmt)), columns=["date", "n"])
        frames.append(frame.set_index("date")["n"].rename(name))
    daily = pd.concat(frames, axis=1).fillna(0).astype(int).sort_index()
    daily.index = pd.to_datetime(daily.index)
    return daily.rename_axis("date").reset_index()


def site_enrollment_days(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Enrolled subjects per site and enrollment day (the multicentre forecast's records).

    Columns: site_id, date, enrolled. Subjects without an enrollment date are left out."""
    stmt: Any = (
        select(
            col(Site.site_id),
            col(Subject.enrollment_date).label("date"),
            func.count().label("enrolled"),
        )
        .join(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope),
            col(Subject.population) == ENROLLED,
            col(Subject.enrollment_date).is_not(None),
        )
        .group_by(col(Site.site_id), col(Subject.enrollment_date))
        .order_by(col(Site.site_id), col(Subject.enrollment_date))
    )
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=["site_id", "date", "enrolled"])
    frame["date"] = date_series(frame["date"])
    return frame


def undated_subjects(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> dict[str, int]:
    """Subjects the accrual chart cannot place: {"screened": no screening date, "enrolled": ...}."""
    no_screening = col(Subject.screening_date).is_(None)
    no_enrollment = (col(Subject.population) == ENROLLED) & col(Subject.enrollment_date).is_(None)
    # Both in one pass over the subjects.
    stmt = select(
        func.coalesce(func.sum(case((no_screening, 1), else_=0)), 0),
        func.coalesce(func.sum(case((no_enrollment, 1), else_=0)), 0),
    ).where(subject_in_scope(study_id=study_id, scope=scope, period=period))
    screened, enrolled = session.execute(stmt).one()
    return {"screened": int(screened), "enrolled": int(enrolled)}


def funnel(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> FunnelCounts:
    """Counts for each step of the funnel, in one GROUP BY over population and status."""
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    dosed = col(Subject.first_dose_date).is_not(None) | col(Subject.id).in_(
        select(col(Exposure.subject_pk))
    )
    stmt = (
        select(
            col(Subject.population),
            col(Subject.status),
            func.count(),
            func.coalesce(func.sum(case((dosed, 1), else_=0)), 0),
        )
        .where(where)
        .group_by(col(Subject.population), col(Subject.status))
    )
    counts: dict[tuple[str, str | None], tuple[int, int]] = {
        (population, status): (int(n), int(treated))
        for population, status, n, treated in session.execute(stmt).all()
    }

    def total(population: str, status: str | None = None, *, treated: bool = False) -> int:
        return sum(
            pair[1 if treated else 0]
            for (p, s), pair in counts.items()
            if p == population and (status is None or s == status)
        )

    # Whether the study holds any exposure at all: the first dosed subject answers it.
    any_exposure = (
        session.execute(
            select(col(Subject.id)).where(col(Subject.study_id) == study_id, dosed).limit(1)
        ).first()
        is not None
    )
    return FunnelCounts(
        screened=sum(n for n, _ in counts.values()),
        screen_failures=total(SCREEN_FAILURE),
        in_screening=total(IN_SCREENING),
        not_assigned=total(NOT_ASSIGNED),
        enrolled=total(ENROLLED),
        treated=total(ENROLLED, treated=True) if any_exposure else None,
        completed=total(ENROLLED, "COMPLETED"),
        discontinued=total(ENROLLED, "DISCONTINUED"),
        ongoing=total(ENROLLED, "ONGOING"),
    )


def _is_disposition_event() -> ColumnElement[bool]:
    # The records that decide a subject's status (metrics.population.subject_status): disposition
    # events outside screening, neither a completion nor a screen failure for a discontinuation.
    return and_(
        func.upper(col(Disposition.category)) == "DISPOSITION EVENT",
        func.upper(func.coalesce(col(Disposition.epoch), "")) != "SCREENING",
        func.upper(col(Disposition.term)).not_in(("COMPLETED", "SCREEN FAILURE")),
    )


def discontinuation_reasons(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Discontinued subjects by planned arm and reason (the DSDECOD of their latest disposition
    event). Columns: arm, reason, subjects. Most frequent first."""
    latest = (
        select(func.max(col(Disposition.date)))
        .where(col(Disposition.subject_pk) == col(Subject.id), _is_disposition_event())
        .correlate(Subject)
        .scalar_subquery()
    )
    # One expression object for SELECT and GROUP BY: PostgreSQL matches them only when they are
    # the same text, bound parameter included (and a bare "arm" there would be subject.arm).
    arm = func.coalesce(col(Subject.arm), col(Subject.arm_code), "(no arm)")
    stmt: Any = (
        select(
            arm.label("arm"),
            col(Disposition.term).label("reason"),
            func.count(func.distinct(col(Subject.id))).label("subjects"),
        )
        .join(Disposition, col(Disposition.subject_pk) == col(Subject.id))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.status) == "DISCONTINUED",
            _is_disposition_event(),
            or_(col(Disposition.date) == latest, latest.is_(None)),
        )
        .group_by(arm, col(Disposition.term))
        .order_by(func.count(func.distinct(col(Subject.id))).desc(), col(Disposition.term))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["arm", "reason", "subjects"])


def enrollment_by_site(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Screening and enrollment per site, every site in scope listed (zeros included).

    Columns: site_id, name, country, activated_on, planned_activation_on, planned_enrollment,
    first_screening, screened, screen_failures, enrolled, last_enrollment.
    """
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    per_site = (
        select(
            col(Subject.site_pk).label("site_pk"),
            func.min(col(Subject.screening_date)).label("first_screening"),
            func.count().label("screened"),
            func.sum(case((col(Subject.population) == SCREEN_FAILURE, 1), else_=0)).label(
                "screen_failures"
            ),
            func.sum(case((col(Subject.population) == ENROLLED, 1), else_=0)).label("enrolled"),
            func.max(
                case((col(Subject.population) == ENROLLED, col(Subject.enrollment_date)))
            ).label("last_enrollment"),
        )
        .where(where)
        .group_by(col(Subject.site_pk))
        .subquery()
    )
    stmt = (
        select(
            col(Site.site_id),
            col(Site.name),
            col(Site.country),
            col(Site.activated_on),
            col(Site.planned_activation_on),
            col(Site.planned_enrollment),
            per_site.c.first_screening,
            func.coalesce(per_site.c.screened, 0).label("screened"),
            func.coalesce(per_site.c.screen_failures, 0).label("screen_failures"),
            func.coalesce(per_site.c.enrolled, 0).label("enrolled"),
            per_site.c.last_enrollment,
        )
        .outerjoin(per_site, per_site.c.site_pk == col(Site.id))
        .where(site_in_scope(study_id=study_id, scope=scope))
        .order_by(col(Site.site_id))
    )
    columns = [
        "site_id",
        "name",
        "country",
        "activated_on",
        "planned_activation_on",
        "planned_enrollment",
        "first_screening",
        "screened",
        "screen_failures",
        "enrolled",
        "last_enrollment",
    ]
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=columns)
    for column in ("activated_on", "planned_activation_on", "first_screening", "last_enrollment"):
        # Plain dates or None (SQLite returns text; NaT would not compare with a date).
        frame[column] = date_series(frame[column])
    return frame


def site_subjects(
    session: Session, *, study_id: str, site_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """The subjects of one site (in scope), a row each. Columns: usubjid, screening_date,
    population, arm, enrollment_date, status."""
    stmt = (
        select(
            col(Subject.usubjid),
            col(Subject.screening_date),
            col(Subject.population),
            col(Subject.arm),
            col(Subject.enrollment_date),
            col(Subject.status),
        )
        .join(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Site.site_id) == site_id,
        )
        # Undated subjects last on every database (PostgreSQL and SQLite differ by default).
        .order_by(col(Subject.screening_date).nulls_last(), col(Subject.usubjid))
    )
    columns = ["usubjid", "screening_date", "population", "arm", "enrollment_date", "status"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)


def screening_span(
    session: Session, *, study_id: str, scope: SiteScope
) -> tuple[dt.date, dt.date] | None:
    """The first and last screening dates of the study's subjects in scope (the date filter's
    bounds); None where nobody has a screening date."""
    where = subject_in_scope(study_id=study_id, scope=scope)
    # Two statements: a lone min() or max() reads one end of the date index; together they scan.
    first = session.execute(select(func.min(col(Subject.screening_date))).where(where)).scalar()
    last = session.execute(select(func.max(col(Subject.screening_date))).where(where)).scalar()
    return (first, last) if first and last else None


def outcome_by_arm(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Enrolled subjects by planned arm and how they stand. Columns: arm, allocated, treated,
    completed, discontinued, ongoing. In arm order (ARM)."""
    dosed = col(Subject.first_dose_date).is_not(None) | col(Subject.id).in_(
        select(col(Exposure.subject_pk))
    )

    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    arm = func.coalesce(col(Subject.arm), col(Subject.arm_code), "(no arm)")
    stmt = (
        select(
            arm.label("arm"),
            func.count().label("allocated"),
            count_if(dosed).label("treated"),
            count_if(col(Subject.status) == "COMPLETED").label("completed"),
            count_if(col(Subject.status) == "DISCONTINUED").label("discontinued"),
            count_if(col(Subject.status) == "ONGOING").label("ongoing"),
        )
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.population) == ENROLLED,
        )
        .group_by(arm)
        .order_by(arm)
    )
    columns = ["arm", "allocated", "treated", "completed", "discontinued", "ongoing"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)
