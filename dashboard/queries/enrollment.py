"""Screened, screen-failed, enrolled: the headline counts and their course over time."""

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.models import ENROLLED, IN_SCREENING, NOT_ASSIGNED, SCREEN_FAILURE, Subject
from dashboard.queries.scope import SiteScope, rows, subject_in_scope


@dataclass(frozen=True)
class PopulationCounts:
    """Subjects by population (DESIGN.md definitions); screened is every subject."""

    screened: int
    screen_failures: int
    enrolled: int
    not_assigned: int
    in_screening: int

    @property
    def screen_failure_rate(self) -> float | None:
        """Screen failures / screened; None for a study with nobody screened."""
        return self.screen_failures / self.screened if self.screened else None


def population_counts(session: Session, *, study_id: str, scope: SiteScope) -> PopulationCounts:
    """Counts of the study's subjects in scope by population, in one GROUP BY."""
    stmt = (
        select(col(Subject.population), func.count())
        .where(subject_in_scope(study_id=study_id, scope=scope))
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


def enrolled_by_arm(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Enrolled subjects by planned arm (ARM). Columns: arm_code, arm, enrolled."""
    stmt = (
        select(col(Subject.arm_code), col(Subject.arm), func.count().label("enrolled"))
        .where(
            subject_in_scope(study_id=study_id, scope=scope), col(Subject.population) == ENROLLED
        )
        .group_by(col(Subject.arm_code), col(Subject.arm))
        .order_by(col(Subject.arm))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["arm_code", "arm", "enrolled"])


def daily_accrual(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Subjects screened and enrolled per calendar day.

    Columns: date, screened, enrolled. Screened is dated by the screening date, enrolled by the
    enrollment date; subjects without the date are left out (and counted by ``undated_subjects``).
    """
    where = subject_in_scope(study_id=study_id, scope=scope)
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


def undated_subjects(session: Session, *, study_id: str, scope: SiteScope) -> dict[str, int]:
    """Subjects the accrual chart cannot place: {"screened": no screening date, "enrolled": ...}."""
    where = subject_in_scope(study_id=study_id, scope=scope)
    no_screening = select(func.count()).where(where, col(Subject.screening_date).is_(None))
    no_enrollment = select(func.count()).where(
        where, col(Subject.population) == ENROLLED, col(Subject.enrollment_date).is_(None)
    )
    return {
        "screened": int(session.execute(no_screening).scalar_one()),
        "enrolled": int(session.execute(no_enrollment).scalar_one()),
    }
