"""Screen failures by eligibility criterion."""

from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlmodel import Session, col

from dashboard.models import Criterion, Disposition, EligibilityFinding, Finding, Site, Subject
from dashboard.queries.scope import Period, SiteScope, rows, subject_in_scope
from dashboard.results.eligibility import AGE, CheckedCriterion, Rule
from dashboard.results.population import ENROLLED, SCREEN_FAILURE


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


def _screening_finding() -> ColumnElement[bool]:
    # The values eligibility was judged on: screening-visit records, or those flagged baseline.
    return or_(
        col(Finding.is_baseline),
        func.upper(func.coalesce(col(Finding.visit), "")).like("%SCREEN%"),
    )


def failed_subjects(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    code: str,
    protocol_version: str = "",
    period: Period = None,
    value_codes: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The screen-failed subjects who failed one criterion: the drilldown list.

    Columns: usubjid, site_id, screening_date, failed_criteria (every criterion the subject
    failed, comma-separated; each with its protocol version where the study has several),
    first_cut_id (the cut that first held the subject: what "new since"
    compares), natural_key (the subject's finding of this criterion, as the review log names
    it), then one column per screening value in ``value_codes`` that the data hold (a
    per-knee finding gives one column per location, e.g. "KLGRADE LEFT KNEE").
    """
    failed = _failed_findings(study_id=study_id, scope=scope, period=period)
    # The finding of this criterion: its key in the review log (the first, where IE repeats it).
    finding_key = (
        select(func.min(col(EligibilityFinding.natural_key)))
        .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
        .where(
            col(EligibilityFinding.subject_pk) == col(Subject.id),
            col(Criterion.code) == code,
            col(Criterion.protocol_version) == protocol_version,
        )
        .correlate(Subject)
        .scalar_subquery()
    )
    stmt = (
        select(
            col(Subject.id),
            col(Subject.usubjid),
            col(Site.site_id),
            col(Subject.screening_date),
            col(Subject.first_cut_id),
            finding_key.label("natural_key"),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            col(Subject.id).in_(
                select(failed.c.subject_pk)
                .join(Criterion, col(Criterion.id) == failed.c.criterion_pk)
                .where(
                    col(Criterion.code) == code,
                    col(Criterion.protocol_version) == protocol_version,
                )
            )
        )
        # Undated subjects last on every database (PostgreSQL and SQLite differ by default).
        .order_by(col(Subject.screening_date).nulls_last(), col(Subject.usubjid))
    )
    subjects = pd.DataFrame(
        rows(session.execute(stmt)),
        columns=["id", "usubjid", "site_id", "screening_date", "first_cut_id", "natural_key"],
    )
    columns = [
        "usubjid", "site_id", "screening_date", "failed_criteria", "first_cut_id", "natural_key",
    ]  # fmt: skip
    if subjects.empty:
        return pd.DataFrame(columns=columns)
    ids = subjects["id"].tolist()
    codes = pd.DataFrame(
        rows(
            session.execute(
                select(
                    col(EligibilityFinding.subject_pk),
                    col(Criterion.code),
                    col(Criterion.protocol_version),
                )
                .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
                .where(col(EligibilityFinding.subject_pk).in_(ids))
                .order_by(col(Criterion.seq), col(Criterion.code))
            )
        ),
        columns=["subject_pk", "code", "protocol_version"],
    )
    # An amended protocol: each criterion with its version ("INCL03 (AMENDMENT 1)").
    versions = session.execute(
        select(func.count(func.distinct(col(Criterion.protocol_version)))).where(
            col(Criterion.study_id) == study_id
        )
    ).scalar_one()
    if versions > 1:
        codes["code"] += codes["protocol_version"].map(lambda v: f" ({v})" if v else "")
    listed = codes.groupby("subject_pk", sort=False)["code"].agg(", ".join)
    subjects.insert(4, "failed_criteria", subjects["id"].map(listed))
    if value_codes:
        values = pd.DataFrame(
            rows(
                session.execute(
                    select(
                        col(Finding.subject_pk),
                        col(Finding.test_code),
                        col(Finding.location),
                        col(Finding.value_num),
                    ).where(
                        col(Finding.subject_pk).in_(ids),
                        col(Finding.test_code).in_(value_codes),
                        _screening_finding(),
                    )
                )
            ),
            columns=["subject_pk", "test_code", "location", "value_num"],
        )
        if not values.empty:
            values["column"] = values["test_code"] + values["location"].map(
                lambda loc: f" {loc}" if isinstance(loc, str) and loc else ""
            )
            wide = values.pivot_table(
                index="subject_pk", columns="column", values="value_num", aggfunc="first"
            )
            subjects = subjects.join(wide, on="id")
    return subjects.drop(columns="id").reset_index(drop=True)


def failure_cooccurrence(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Pairs of criteria failed by the same screen-failed subjects, most frequent first.

    Columns: first, second (criterion labels: code, with the protocol version where there is one),
    subjects. Pairs nobody shares are left out.
    """
    failed = _failed_findings(study_id=study_id, scope=scope, period=period)
    other = failed.alias("other")
    table = Criterion.__table__  # type: ignore[attr-defined]
    first, second = table.alias("first"), table.alias("second")
    stmt = (
        select(
            first.c.code.label("first_code"),
            first.c.protocol_version.label("first_version"),
            second.c.code.label("second_code"),
            second.c.protocol_version.label("second_version"),
            func.count(func.distinct(failed.c.subject_pk)).label("subjects"),
        )
        .select_from(failed)
        .join(other, other.c.subject_pk == failed.c.subject_pk)
        .join(first, first.c.id == failed.c.criterion_pk)
        .join(second, second.c.id == other.c.criterion_pk)
        .where(failed.c.criterion_pk < other.c.criterion_pk)
        .group_by(first.c.code, first.c.protocol_version, second.c.code, second.c.protocol_version)
        .order_by(func.count(func.distinct(failed.c.subject_pk)).desc(), first.c.code)
    )
    frame = pd.DataFrame(
        rows(session.execute(stmt)),
        columns=["first_code", "first_version", "second_code", "second_version", "subjects"],
    )

    def label(code: pd.Series, version: pd.Series) -> pd.Series:
        return code + version.map(lambda v: f" ({v})" if v else "")

    return pd.DataFrame(
        {
            "first": label(frame["first_code"], frame["first_version"]),
            "second": label(frame["second_code"], frame["second_version"]),
            "subjects": frame["subjects"],
        }
    )


def daily_screening(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Subjects screened and screen-failed per screening date. Columns: date, screened,
    screen_failures."""
    stmt: Any = (
        select(
            col(Subject.screening_date).label("date"),
            func.count().label("screened"),
            func.sum(case((col(Subject.population) == SCREEN_FAILURE, 1), else_=0)).label(
                "screen_failures"
            ),
        )
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.screening_date).is_not(None),
        )
        .group_by(col(Subject.screening_date))
        .order_by(col(Subject.screening_date))
    )
    frame = pd.DataFrame(
        rows(session.execute(stmt)), columns=["date", "screened", "screen_failures"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def site_criterion_counts(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """Screen-failed subjects per site and criterion (only pairs with failures).
    Columns: site_id, code, protocol_version, subjects."""
    failed = _failed_findings(study_id=study_id, scope=scope, period=period)
    stmt: Any = (
        select(
            col(Site.site_id),
            col(Criterion.code),
            col(Criterion.protocol_version),
            func.count(func.distinct(failed.c.subject_pk)).label("subjects"),
        )
        .select_from(failed)
        .join(Subject, col(Subject.id) == failed.c.subject_pk)
        .join(Site, col(Site.id) == col(Subject.site_pk))
        .join(Criterion, col(Criterion.id) == failed.c.criterion_pk)
        .group_by(col(Site.site_id), col(Criterion.code), col(Criterion.protocol_version))
        .order_by(col(Site.site_id), col(Criterion.code))
    )
    return pd.DataFrame(
        rows(session.execute(stmt)), columns=["site_id", "code", "protocol_version", "subjects"]
    )


def screen_failure_dispositions(
    session: Session, *, study_id: str, scope: SiteScope, period: Period = None
) -> pd.DataFrame:
    """What DS says about the screen failures (the reasons where there is no IE): disposition
    records of screen-failed subjects in the screening epoch or coded SCREEN FAILURE.
    Columns: term (DSDECOD), verbatim (DSTERM), subjects."""
    stmt = (
        select(
            col(Disposition.term),
            col(Disposition.verbatim),
            func.count(func.distinct(col(Subject.id))).label("subjects"),
        )
        .join(Subject, col(Subject.id) == col(Disposition.subject_pk))
        .where(
            subject_in_scope(study_id=study_id, scope=scope, period=period),
            col(Subject.population) == SCREEN_FAILURE,
            func.upper(func.coalesce(col(Disposition.category), "")) == "DISPOSITION EVENT",
        )
        .group_by(col(Disposition.term), col(Disposition.verbatim))
        .order_by(func.count(func.distinct(col(Subject.id))).desc())
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["term", "verbatim", "subjects"])


def criteria_with_rules(session: Session, *, study_id: str) -> pd.DataFrame:
    """Criteria that carry a machine-checkable rule. Columns: code, protocol_version, category,
    text, rule."""
    stmt = (
        select(
            col(Criterion.code),
            col(Criterion.protocol_version),
            col(Criterion.category),
            col(Criterion.text),
            col(Criterion.rule),
        )
        .where(col(Criterion.study_id) == study_id, col(Criterion.rule).is_not(None))
        .order_by(col(Criterion.seq), col(Criterion.code))
    )
    return pd.DataFrame(
        rows(session.execute(stmt)),
        columns=["code", "protocol_version", "category", "text", "rule"],
    )


def enrolled_screening_values(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    variables: tuple[str, ...],
    period: Period = None,
) -> pd.DataFrame:
    """The enrolled subjects' screening values of ``variables`` (test codes, and AGE from DM).
    Columns: usubjid, variable, location, value_num."""
    where = subject_in_scope(study_id=study_id, scope=scope, period=period)
    columns = ["usubjid", "variable", "location", "value_num"]
    findings = pd.DataFrame(
        rows(
            session.execute(
                select(
                    col(Subject.usubjid),
                    col(Finding.test_code).label("variable"),
                    col(Finding.location),
                    col(Finding.value_num),
                )
                .join(Subject, col(Subject.id) == col(Finding.subject_pk))
                .where(
                    where,
                    col(Subject.population) == ENROLLED,
                    col(Finding.test_code).in_(variables),
                    _screening_finding(),
                )
            )
        ),
        columns=columns,
    )
    if "AGE" not in variables:
        return findings
    ages = pd.DataFrame(
        rows(
            session.execute(
                select(col(Subject.usubjid), col(Subject.age).label("value_num")).where(
                    where, col(Subject.population) == ENROLLED
                )
            )
        ),
        columns=["usubjid", "value_num"],
    ).assign(variable="AGE", location=None)
    return pd.concat([findings, ages[columns]], ignore_index=True)


def _rule_holds(rule: Rule, value: Any) -> ColumnElement[bool]:
    """The SQL twin of ``Rule.holds`` (both bounds of "between" included)."""
    if rule.op == "between":
        return and_(value >= rule.low, value <= rule.high)
    compare = {
        "<": value < rule.low,
        "<=": value <= rule.low,
        ">": value > rule.low,
        ">=": value >= rule.low,
        "=": value == rule.low,
        "!=": value != rule.low,
    }
    return compare[rule.op]  # type: ignore[no-any-return]


def eligibility_violations(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    criteria: list[CheckedCriterion],
    period: Period = None,
) -> pd.DataFrame:
    """Enrolled subjects' screening values that break a checked criterion, found in SQL so only
    the violations leave the database. The same semantics as ``metrics.eligibility
    .check_enrolled`` (inclusion: the value breaks the rule; exclusion: the value meets it).

    Columns: usubjid, code, category, criterion, rule, variable, location, value.
    """
    where = [
        subject_in_scope(study_id=study_id, scope=scope, period=period),
        col(Subject.population) == ENROLLED,
    ]
    found: list[dict[str, Any]] = []
    for criterion in criteria:
        rule = criterion.rule
        if rule.variable == AGE:
            value: Any = col(Subject.age)
            stmt = select(col(Subject.usubjid), value.label("value"), literal(None).label("loc"))
            stmt = stmt.where(*where, value.is_not(None))
        else:
            value = col(Finding.value_num)
            stmt = (
                select(
                    col(Subject.usubjid), value.label("value"), col(Finding.location).label("loc")
                )
                .join(Subject, col(Subject.id) == col(Finding.subject_pk))
                .where(
                    *where,
                    col(Finding.test_code) == rule.variable,
                    value.is_not(None),
                    _screening_finding(),
                )
            )
        holds = _rule_holds(rule, value)
        broken = holds if criterion.category.upper() == "EXCLUSION" else ~holds
        for usubjid, number, location in session.execute(stmt.where(broken)).all():
            found.append(
                {
                    "usubjid": usubjid,
                    "code": criterion.code,
                    "category": criterion.category,
                    "criterion": criterion.text,
                    "rule": rule.text,
                    "variable": rule.variable,
                    "location": location,
                    "value": float(number),
                }
            )
    columns = ["usubjid", "code", "category", "criterion", "rule", "variable", "location", "value"]
    return (
        pd.DataFrame(found, columns=columns)
        .sort_values(["usubjid", "code", "location"], na_position="first")
        .reset_index(drop=True)
    )


def variables_without_data(
    session: Session, *, study_id: str, scope: SiteScope, variables: tuple[str, ...]
) -> tuple[str, ...]:
    """The rule variables no enrolled subject has a screening value for (they cannot be checked),
    in alphabetical order so the page's note reads the same on every run."""
    where = [subject_in_scope(study_id=study_id, scope=scope), col(Subject.population) == ENROLLED]
    missing = []
    for variable in variables:
        if variable == AGE:
            stmt = select(col(Subject.id)).where(*where, col(Subject.age).is_not(None)).limit(1)
        else:
            stmt = (
                select(col(Finding.id))
                .join(Subject, col(Subject.id) == col(Finding.subject_pk))
                .where(
                    *where,
                    col(Finding.test_code) == variable,
                    col(Finding.value_num).is_not(None),
                    _screening_finding(),
                )
                .limit(1)
            )
        if session.execute(stmt).first() is None:
            missing.append(variable)
    return tuple(sorted(missing))
