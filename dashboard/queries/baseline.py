"""Baseline characteristics: Table 1 from the load-time counts, raw values only where one
subject list is asked for."""

from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, literal, select
from sqlmodel import Session, col

from dashboard.metrics.table_one import COUNT_COLUMNS, SUBJECTS_KEY
from dashboard.models import BaselineCount, BaselineVariable, Exposure, Finding, Site, Subject
from dashboard.queries.scope import (
    SiteScope,
    driver_rows,
    rows,
    site_in_scope,
    subject_in_scope,
)
from dashboard.results.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
from dashboard.results.population import ENROLLED, SCREEN_FAILURE


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


# Table 1's populations: who the columns count.
TABLE_POPULATIONS = ("enrolled", "treated", "screened")
# Every subject falls in one cohort; a population is a set of cohorts, so the per-cohort counts of
# BaselineCount add up to any population.
TREATED, NOT_TREATED, FAILED, NOT_ALLOCATED = (
    "treated",
    "enrolled",
    "screen failure",
    "not allocated",
)
POPULATION_COHORTS = {
    "enrolled": (TREATED, NOT_TREATED),
    "treated": (TREATED,),
    "screened": (TREATED, NOT_TREATED, FAILED, NOT_ALLOCATED),
}
# Demographics from DM: key, label, Subject column, categorical.
DEMOGRAPHICS = (
    ("AGE", "Age", "age", False),
    ("SEX", "Sex", "sex", True),
    ("RACE", "Race", "race", True),
    ("ETHNIC", "Ethnicity", "ethnicity", True),
    ("COUNTRY", "Country", "country", True),
)


# What tells two measurements of one test apart (the model's Finding): supine and standing blood
# pressure at one visit are two baseline variables, never one.
QUALIFIERS = ("location", "specimen", "position", "timepoint")


def qualifier(*parts: object) -> str:
    """The measurement's name from its location, specimen, position and time point, those given
    joined by ", ": ``"SUPINE, AFTER LYING DOWN FOR 5 MINUTES"``, ``"LEFT KNEE"``, or ""."""
    # pandas gives a missing text as NaN, which is truthy: only a real text counts.
    return ", ".join(p for p in parts if isinstance(p, str) and p)


def qualifier_sql() -> Any:
    """``qualifier`` in SQL (SQLite and PostgreSQL): each part given as ", part", the first
    ", " cut off."""
    joined: Any = literal("")
    for name in QUALIFIERS:
        column = col(getattr(Finding, name))
        joined = joined + case((and_(column.is_not(None), column != ""), ", " + column), else_="")
    return func.substr(joined, 3)


def finding_key(domain: str, test_code: str, *qualifiers: str | None) -> str:
    """The key of a baseline finding in the values frame: ``VS.BMI``, ``MK.KLGRADE.LEFT KNEE``,
    ``VS.DIABP.SUPINE, AFTER LYING DOWN FOR 5 MINUTES``."""
    named = qualifier(*qualifiers)
    return f"{domain}.{test_code}" + (f".{named}" if named else "")


CATALOGUE_COLUMNS = ["key", "label", "unit", "categorical", "subjects"]


def baseline_catalogue(session: Session, *, study_id: str) -> pd.DataFrame:
    """Every characteristic Table 1 can show for the study (as summarised at load time): DM's
    demographics and each baseline finding (per location). Columns: key, label, unit, categorical,
    subjects (with a value)."""
    stmt = (
        select(*(col(getattr(BaselineVariable, c)) for c in CATALOGUE_COLUMNS))
        .where(col(BaselineVariable.study_id) == study_id)
        .order_by(col(BaselineVariable.position))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=CATALOGUE_COLUMNS)


def catalogue_from_findings(session: Session, *, study_id: str) -> pd.DataFrame:
    """The catalogue computed from the raw rows (what ``dashboard.precomputed`` stores)."""
    demographics = []
    for key, label, column, categorical in DEMOGRAPHICS:
        attribute = col(getattr(Subject, column))
        n, unit = session.execute(
            select(func.count(attribute), func.max(col(Subject.age_unit))).where(
                col(Subject.study_id) == study_id
            )
        ).one()
        demographics.append(
            {
                "key": key,
                "label": label,
                "unit": (str(unit).lower() if unit else "years") if key == "AGE" else None,
                "categorical": categorical,
                "subjects": int(n),
            }
        )
    named = qualifier_sql().label("qualifier")
    stmt = (
        select(
            col(Finding.domain),
            col(Finding.test_code),
            named,
            func.max(col(Finding.test)).label("test"),
            func.max(col(Finding.unit)).label("unit"),
            func.count(col(Finding.value_num)).label("numeric"),
            func.count(func.distinct(col(Finding.subject_pk))).label("subjects"),
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(col(Subject.study_id) == study_id, col(Finding.is_baseline))
        .group_by(col(Finding.domain), col(Finding.test_code), named)
        .order_by(col(Finding.domain), col(Finding.test_code), named)
    )
    findings = [
        {
            "key": finding_key(r["domain"], r["test_code"], r["qualifier"]),
            "label": r["test"] + (f", {r['qualifier'].lower()}" if r["qualifier"] else ""),
            "unit": r["unit"],
            "categorical": r["numeric"] == 0,
            "subjects": int(r["subjects"]),
        }
        for r in rows(session.execute(stmt))
    ]
    return pd.DataFrame(demographics + findings, columns=CATALOGUE_COLUMNS)


def baseline_values(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    population: str,
    by: str,
    keys: tuple[str, ...],
) -> pd.DataFrame:
    """One row per subject of the population: usubjid, site_pk, site_id, cohort, column (the
    Table 1 column the subject belongs to), and one column per key (DM demographics and baseline
    findings). Reads raw rows: ``dashboard.precomputed`` counts them once per load.

    ``population``: enrolled, treated (enrolled with a first dose or exposure) or screened (every
    subject; screen failures and not-allocated subjects get columns of their own when ``by`` is
    "arm"). ``by``: "arm" (the planned arm) or "site".
    """
    if population not in TABLE_POPULATIONS:
        raise ValueError(f"population must be one of {TABLE_POPULATIONS}, not {population!r}")
    where = [subject_in_scope(study_id=study_id, scope=scope)]
    if population in ("enrolled", "treated"):
        where.append(col(Subject.population) == ENROLLED)
    treated = col(Subject.first_dose_date).is_not(None) | col(Subject.id).in_(
        select(col(Exposure.subject_pk))
    )
    if population == "treated":
        where.append(treated)
    demographic_columns = [c for k, _, c, _ in DEMOGRAPHICS if k in keys]
    stmt = (
        select(
            col(Subject.id),
            col(Subject.usubjid),
            col(Subject.site_pk),
            col(Site.site_id),
            col(Subject.population),
            case((treated, True), else_=False).label("treated"),
            col(Subject.arm),
            col(Subject.arm_code),
            *(col(getattr(Subject, c)) for c in demographic_columns),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .order_by(col(Subject.usubjid))
    )
    names = [
        "id",
        "usubjid",
        "site_pk",
        "site_id",
        "population",
        "treated",
        "arm",
        "arm_code",
        *demographic_columns,
    ]
    # Through the driver: no SQLAlchemy Row per subject (treated comes as 1/0 from SQLite).
    subjects = pd.DataFrame.from_records(driver_rows(session, stmt)[1], columns=names)
    if by == "site":
        subjects["column"] = subjects["site_id"].fillna("(no site)").astype(str)
    else:
        subjects["column"] = [
            (arm or code or "(no arm)")
            if pop == ENROLLED
            else (SCREEN_FAILURE_COLUMN if pop == SCREEN_FAILURE else NOT_ALLOCATED_COLUMN)
            for pop, arm, code in zip(
                subjects["population"].tolist(),
                subjects["arm"].tolist(),
                subjects["arm_code"].tolist(),
                strict=True,
            )
        ]
    # Lists, not the columns: iterating a text column yields its values one by one from Arrow.
    subjects["cohort"] = [
        (TREATED if bool(dosed) else NOT_TREATED)
        if pop == ENROLLED
        else (FAILED if pop == SCREEN_FAILURE else NOT_ALLOCATED)
        for pop, dosed in zip(
            subjects["population"].tolist(), subjects["treated"].tolist(), strict=True
        )
    ]
    rename = {c: k for k, _, c, _ in DEMOGRAPHICS if k in keys}
    subjects = subjects.rename(columns=rename)
    finding_keys = [k for k in keys if "." in k]
    if finding_keys and not subjects.empty:
        codes = sorted({k.split(".")[1] for k in finding_keys})
        # Read through the driver into pandas: SQLAlchemy Row objects and a dict per row cost
        # seconds at a million findings. The date only orders the rows: not read (its parsing
        # per row on SQLite was a third of the read). The key (``finding_key``) is put together
        # in SQL: one text column to bring into pandas instead of three.
        named = qualifier_sql()
        joined_key = (
            col(Finding.domain)
            + "."
            + col(Finding.test_code)
            + case((named != "", "." + named), else_="")
        )
        stmt = (
            select(
                col(Finding.subject_pk),
                joined_key.label("key"),
                col(Finding.value_num),
                col(Finding.value_text),
            )
            .join(Subject, col(Subject.id) == col(Finding.subject_pk))
            .where(*where, col(Finding.is_baseline), col(Finding.test_code).in_(codes))
            # Undated records first, so that a dated one is the latest wherever there is one
            # (explicit: PostgreSQL sorts NULLs last, SQLite first).
            .order_by(col(Finding.date).nulls_first(), col(Finding.id))
        )
        names, found_rows = driver_rows(session, stmt)
        found = pd.DataFrame.from_records(found_rows, columns=names)
        if not found.empty:
            found = found[found["key"].isin(finding_keys)]
            # A numeric finding gives its number, a text finding its text; where a subject has
            # several baseline records of one test, the latest counts.
            found["value"] = found["value_num"].where(
                found["value_num"].notna(), found["value_text"]
            )
            wide = found.drop_duplicates(["subject_pk", "key"], keep="last").pivot(
                index="subject_pk", columns="key", values="value"
            )
            subjects = subjects.join(wide, on="id")
    for key in keys:
        if key not in subjects.columns:
            subjects[key] = None
    return subjects.drop(columns=["id", "population", "treated", "arm", "arm_code"]).reset_index(
        drop=True
    )


def table_one_counts(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    population: str,
    by: str,
    keys: tuple[str, ...],
) -> pd.DataFrame:
    """Subjects per (Table 1 column, key, value) from the load-time counts, with each column's
    size on its ``SUBJECTS_KEY`` row (``metrics.table_one.COUNT_COLUMNS``).

    The unscoped table by arm reads the all-sites rows (a few thousand at any study size); a site
    scope or columns by site sum the per-site rows, so every scope is exact.
    """
    if population not in TABLE_POPULATIONS:
        raise ValueError(f"population must be one of {TABLE_POPULATIONS}, not {population!r}")
    counted = BaselineCount
    if by == "site":
        column: Any = func.coalesce(col(Site.site_id), "(no site)")
    else:
        column = case(
            (col(counted.cohort) == FAILED, literal(SCREEN_FAILURE_COLUMN)),
            (col(counted.cohort) == NOT_ALLOCATED, literal(NOT_ALLOCATED_COLUMN)),
            else_=func.coalesce(col(counted.arm), "(no arm)"),
        )
    all_sites = scope is None and by != "site"
    stmt = (
        select(
            column.label("column"),
            col(counted.key),
            col(counted.value_num),
            col(counted.value_text),
            func.sum(col(counted.subjects)).label("subjects"),
        )
        .outerjoin(Site, col(Site.id) == col(counted.site_pk))
        .where(
            col(counted.study_id) == study_id,
            col(counted.all_sites) == all_sites,
            col(counted.key).in_((SUBJECTS_KEY, *keys)),
            col(counted.cohort).in_(POPULATION_COHORTS[population]),
        )
        .group_by(column, col(counted.key), col(counted.value_num), col(counted.value_text))
    )
    if scope is not None:
        stmt = stmt.where(
            col(counted.site_pk).in_(
                select(col(Site.id)).where(site_in_scope(study_id=study_id, scope=scope))
            )
        )
    return pd.DataFrame(rows(session.execute(stmt)), columns=COUNT_COLUMNS)


def subjects_with_value(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    population: str,
    by: str,
    key: str,
    column: str,
    value: str | None,
    limit: int,
) -> tuple[pd.DataFrame, int]:
    """The subjects of one Table 1 column whose ``key`` is ``value`` (None: no value), for the
    distribution drilldown: (usubjid, site_id, column, value; at most ``limit`` rows, total).

    Reads only that one variable's rows; a whole column of a large study is counted, not listed.
    """
    values = baseline_values(
        session, study_id=study_id, scope=scope, population=population, by=by, keys=(key,)
    )
    values = values[values["column"] == column]
    known = values[key].notna()
    # A number is matched as Table 1 names its level ("2" for 2.0: an ordinal grade).
    text = values[key].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    picked = values[~known] if value is None else values[known & (text == value)]
    listed = picked[["usubjid", "site_id", "column", key]].rename(columns={key: "value"})
    return listed.head(limit).reset_index(drop=True), len(picked)
