"""Laboratory and vital-sign findings (issue #21): the tests a study measured, and the records of
some tests as the lab metrics take them (``dashboard.metrics.labs``: one row per finding, the
subject's site, actual arm and first dose beside it).

The records are the safety population's (treated subjects by actual arm, as the AE tables count
them; enrolled subjects by planned arm where nobody is recorded as treated): a lab shift is a
safety figure. The values are the standard ones (--STRESN, --STRESU, --STNRLO, --STNRHI).
"""

from typing import Any

import pandas as pd
from sqlalchemy import String, cast, func, select
from sqlmodel import Session, col

from dashboard.models import Finding, Site, Subject
from dashboard.queries.adverse_events import _population
from dashboard.queries.baseline import qualifier_sql
from dashboard.queries.scope import SiteScope, driver_rows, subject_in_scope

# The domains the Labs page reads: laboratory tests and vital signs.
LAB_DOMAINS = ("LB", "VS")

TEST_COLUMNS = [
    "domain",
    "test_code",
    "test",
    "unit",
    "qualifier",
    "category",
    "records",
    "subjects",
    "with_range",
]

RECORD_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "domain",
    "test_code",
    "test",
    "unit",
    "qualifier",
    "category",
    "specimen",
    "location",
    "position",
    "timepoint",
    "value",
    "low",
    "high",
    "indicator",
    "grade_given",
    "is_baseline",
    "date",
    "study_day",
    "visit",
    "visit_number",
    "first_dose",
]


def lab_tests(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """The LB and VS measurements of the safety population in scope, one row per (domain, test,
    unit, measurement: ``qualifier``): records, subjects, and records with a normal range
    (``TEST_COLUMNS``), in domain and test order. Aggregated in SQL: a million findings are a few
    hundred rows here."""
    population = _population(session, study_id=study_id)
    named = qualifier_sql().label("qualifier")
    with_range = func.count(func.coalesce(col(Finding.normal_low), col(Finding.normal_high))).label(
        "with_range"
    )
    stmt = (
        select(
            col(Finding.domain),
            col(Finding.test_code),
            func.max(col(Finding.test)).label("test"),
            col(Finding.unit),
            named,
            func.max(col(Finding.category)).label("category"),
            func.count().label("records"),
            func.count(func.distinct(col(Finding.subject_pk))).label("subjects"),
            with_range,
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope),
            population.members,
            col(Finding.domain).in_(LAB_DOMAINS),
        )
        .group_by(col(Finding.domain), col(Finding.test_code), col(Finding.unit), named)
        .order_by(col(Finding.domain), col(Finding.test_code), col(Finding.unit), named)
    )
    names, found = driver_rows(session, stmt)
    return pd.DataFrame.from_records(found, columns=names).reindex(columns=TEST_COLUMNS)


def lab_records(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    domain: str = "LB",
    test_codes: tuple[str, ...] | None = None,
    usubjid: str | None = None,
) -> pd.DataFrame:
    """The ``domain``'s findings of the safety population in scope (``RECORD_COLUMNS``; only
    ``test_codes`` where given, one subject's where ``usubjid`` is), with each subject's site,
    arm (actual, as the safety tables) and first dose date. Dates as datetimes (NaT where
    unknown), in subject, test and date order."""
    population = _population(session, study_id=study_id)
    where: list[Any] = [
        subject_in_scope(study_id=study_id, scope=scope),
        population.members,
        col(Finding.domain) == domain,
    ]
    if test_codes is not None:
        where.append(col(Finding.test_code).in_(sorted(test_codes)))
    if usubjid is not None:
        where.append(col(Subject.usubjid) == usubjid)
    stmt = (
        select(
            col(Subject.usubjid),
            col(Site.site_id),
            population.arm.label("arm"),
            col(Finding.domain),
            col(Finding.test_code),
            col(Finding.test),
            col(Finding.unit),
            qualifier_sql().label("qualifier"),
            col(Finding.category),
            col(Finding.specimen),
            col(Finding.location),
            col(Finding.position),
            col(Finding.timepoint),
            col(Finding.value_num).label("value"),
            col(Finding.normal_low).label("low"),
            col(Finding.normal_high).label("high"),
            col(Finding.normal_indicator).label("indicator"),
            col(Finding.toxicity_grade).label("grade_given"),
            col(Finding.is_baseline),
            # As ISO text through the driver (SQLite gives dates as text anyway): parsed below.
            cast(col(Finding.date), String).label("date"),
            col(Finding.study_day),
            col(Finding.visit),
            col(Finding.visit_number),
            cast(col(Subject.first_dose_date), String).label("first_dose"),
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .order_by(col(Subject.usubjid), col(Finding.test_code), col(Finding.date), col(Finding.id))
    )
    names, found = driver_rows(session, stmt)
    records = pd.DataFrame.from_records(found, columns=names)
    for name in ("value", "low", "high", "study_day", "visit_number"):
        records[name] = pd.to_numeric(records[name], errors="coerce").astype(float)
    records["is_baseline"] = records["is_baseline"].astype(bool)
    for name in ("date", "first_dose"):
        records[name] = pd.to_datetime(records[name], errors="coerce")
    return records.reindex(columns=RECORD_COLUMNS)
