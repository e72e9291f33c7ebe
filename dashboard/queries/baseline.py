"""Baseline characteristics of enrolled subjects, aggregated in SQL."""

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.models import ENROLLED, Finding, Subject
from dashboard.queries.scope import SiteScope, rows, subject_in_scope


def numeric_baseline_sums(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Sums of each baseline numeric finding over enrolled subjects, for mean and SD.

    One row per test and location (a K-L grade per knee is two rows).
    Columns: domain, test_code, test, location, unit, n, total, total_sq, minimum, maximum.
    ``metrics.baseline.summarise_sums`` turns them into mean (SD); summing in SQL keeps the sums
    additive across sites, so a scoped view stays exact.
    """
    value = col(Finding.value_num)
    stmt = (
        select(
            col(Finding.domain),
            col(Finding.test_code),
            func.max(col(Finding.test)).label("test"),
            col(Finding.location),
            func.max(col(Finding.unit)).label("unit"),
            func.count(value).label("n"),
            func.sum(value).label("total"),
            func.sum(value * value).label("total_sq"),
            func.min(value).label("minimum"),
            func.max(value).label("maximum"),
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope),
            col(Subject.population) == ENROLLED,
            col(Finding.is_baseline),
            value.is_not(None),
        )
        .group_by(col(Finding.domain), col(Finding.test_code), col(Finding.location))
        .order_by(col(Finding.domain), col(Finding.test_code), col(Finding.location))
    )
    columns = [
        "domain",
        "test_code",
        "test",
        "location",
        "unit",
        "n",
        "total",
        "total_sq",
        "minimum",
        "maximum",
    ]
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)


def demographic_counts(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Enrolled subjects by sex and age (DM), for Table 1 and the age distribution.

    Columns: sex, age, subjects. Grouped by exact age: few distinct values, so this stays small.
    """
    stmt = (
        select(col(Subject.sex), col(Subject.age), func.count().label("subjects"))
        .where(
            subject_in_scope(study_id=study_id, scope=scope), col(Subject.population) == ENROLLED
        )
        .group_by(col(Subject.sex), col(Subject.age))
        .order_by(col(Subject.age))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["sex", "age", "subjects"])
