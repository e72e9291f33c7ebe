"""Laboratory and vital-sign findings (issue #21): the tests a study measured, and the records of
some tests as the lab metrics take them (``dashboard.metrics.labs``: one row per finding, the
subject's site, actual arm and first dose beside it).

The records are the safety population's (treated subjects by actual arm, as the AE tables count
them; enrolled subjects by planned arm where nobody is recorded as treated): a lab shift is a
safety figure. The values are the standard ones (--STRESN, --STRESU, --STNRLO, --STNRHI).
"""

from typing import Any

import pandas as pd
from sqlalchemy import String, case, cast, func, select
from sqlmodel import Session, col

from dashboard.metrics.labs import (
    BOX_COLUMNS,
    INCIDENCE_COUNTS,
    MEASUREMENT_KEY,
    PEAK_COLUMNS,
    SHIFT_SUBJECT_COLUMNS,
)
from dashboard.models import (
    Finding,
    LabBoxStats,
    LabCount,
    LabGradeSummary,
    LabSubjectSummary,
    LiverSummary,
    Site,
    Subject,
)
from dashboard.queries.adverse_events import _population
from dashboard.queries.baseline import qualifier_sql
from dashboard.queries.scope import SiteScope, driver_rows, subject_in_scope

# The domains the Labs page reads: laboratory tests and vital signs.
LAB_DOMAINS = ("LB", "VS")

# A measurement as the queries take it: the values of ``MEASUREMENT_KEY`` (None for a missing
# part), a tuple so that cached loaders can key on it.
MeasurementKey = tuple[str | None, ...]

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


def _in_population(
    table: Any, population: Any, *, study_id: str, scope: SiteScope, own_study: bool = True
) -> list[Any]:
    """The WHERE clause of a query of ``table`` (a finding or a load-time summary, joined to its
    Subject): the study's safety population in ``scope``. A site scope also names its subjects'
    keys on ``table`` itself: the planner then keeps or drops each row by the index it reads,
    rather than looking up the row's subject for each of a test's records at every site (at
    200 sites, 0.45 s against 0.05 s for one site's values of a test on SQLite). ``own_study``:
    ``table`` has a ``study_id`` of its own (the summaries; a Finding has its subject's)."""
    where: list[Any] = [subject_in_scope(study_id=study_id, scope=scope), population.members]
    if own_study:
        where.insert(0, col(table.study_id) == study_id)
    if scope is not None:
        in_scope = select(col(Subject.id)).where(subject_in_scope(study_id=study_id, scope=scope))
        where.append(col(table.subject_pk).in_(in_scope))
    return where


def lab_records(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    domain: str = "LB",
    test_codes: tuple[str, ...] | None = None,
    usubjid: str | None = None,
    subject_pks: tuple[int, int] | None = None,
    key: MeasurementKey | None = None,
    ordered: bool = True,
) -> pd.DataFrame:
    """The ``domain``'s findings of the safety population in scope (``RECORD_COLUMNS``; only
    ``test_codes`` where given, one subject's where ``usubjid`` is, the subjects whose key is
    within ``subject_pks`` (first, last) where given: the load's batches; one measurement's
    where ``key`` is), with each subject's
    site, arm (actual, as the safety tables) and first dose date. Dates as datetimes (NaT where
    unknown), in subject, test and date order (in no order where not ``ordered``: sorting a
    test's records of a large study in SQL cost a second, and a box plot needs none)."""
    population = _population(session, study_id=study_id)
    where = _in_population(Finding, population, study_id=study_id, scope=scope, own_study=False)
    where.append(col(Finding.domain) == domain)
    if test_codes is not None:
        where.append(col(Finding.test_code).in_(sorted(test_codes)))
    if usubjid is not None:
        where.append(col(Subject.usubjid) == usubjid)
    if subject_pks is not None:
        where.append(col(Finding.subject_pk).between(*subject_pks))
    if key is not None:
        where.extend(_key_where(Finding, key))
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
    )
    if ordered:
        stmt = stmt.order_by(
            col(Subject.usubjid), col(Finding.test_code), col(Finding.date), col(Finding.id)
        )
    names, found = driver_rows(session, stmt)
    records = pd.DataFrame.from_records(found, columns=names)
    for name in ("value", "low", "high", "study_day", "visit_number"):
        records[name] = pd.to_numeric(records[name], errors="coerce").astype(float)
    records["is_baseline"] = records["is_baseline"].astype(bool)
    for name in ("date", "first_dose"):
        records[name] = pd.to_datetime(records[name], errors="coerce")
    return records.reindex(columns=RECORD_COLUMNS)


# What a box plot by visit needs of a measurement's records (``lab_values``).
VALUE_SOURCE_COLUMNS = ["arm", "visit", "visit_number", "value"]


def lab_values(
    session: Session, *, study_id: str, scope: SiteScope, key: MeasurementKey
) -> pd.DataFrame:
    """One measurement's values of the safety population in scope, with only what the boxes by
    visit and arm need (``VALUE_SOURCE_COLUMNS``), in no order: at a large study's size a test
    has a couple of hundred thousand values, and each column read through the driver costs."""
    population = _population(session, study_id=study_id)
    stmt: Any = (
        select(
            population.arm.label("arm"),
            col(Finding.visit),
            col(Finding.visit_number),
            col(Finding.value_num).label("value"),
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(
            *_in_population(Finding, population, study_id=study_id, scope=scope, own_study=False),
            col(Finding.value_num).is_not(None),
            *_key_where(Finding, key),
        )
    )
    names, found = driver_rows(session, stmt)
    values = pd.DataFrame.from_records(found, columns=names)
    for name in ("value", "visit_number"):
        values[name] = pd.to_numeric(values[name], errors="coerce").astype(float)
    return values.reindex(columns=VALUE_SOURCE_COLUMNS)


def stored_boxes(
    session: Session, *, study_id: str, key: MeasurementKey, pooled: bool
) -> pd.DataFrame:
    """The all-sites boxes of one measurement the load counted (``models.LabBoxStats``): per arm,
    or all arms pooled (``pooled``): ``BOX_COLUMNS`` and ``unscheduled``, in visit number and arm
    order. Empty where the load counted none (a study stored before they were)."""
    table = LabBoxStats
    arm = col(table.arm)
    stmt: Any = (
        select(
            arm,
            col(table.visit),
            col(table.visit_number),
            col(table.n),
            col(table.lowest),
            col(table.q1),
            col(table.median),
            col(table.q3),
            col(table.highest),
            col(table.unscheduled),
        )
        .where(
            col(table.study_id) == study_id,
            arm.is_(None) if pooled else arm.is_not(None),
            *_key_where(table, key),
        )
        .order_by(col(table.visit_number), arm)
    )
    names, found = driver_rows(session, stmt)
    boxes = pd.DataFrame.from_records(found, columns=names)
    return boxes.reindex(columns=[*BOX_COLUMNS, "unscheduled"])


# -- the load-time summary (models.LabSubjectSummary, LabGradeSummary, LiverSummary) ---------------


MEASUREMENT_COLUMNS = [*MEASUREMENT_KEY, "test", "category", "records", "subjects", "with_range"]


def _key_where(table: Any, key: MeasurementKey) -> list[Any]:
    """The rows of one measurement: each key part equal, a missing part missing."""
    where = []
    for name, value in zip(MEASUREMENT_KEY, key, strict=True):
        column = getattr(table, name)
        where.append(column.is_(None) if value is None else column == value)
    return where


# ``lab_counts``: per measurement and arm, the records and subjects, and the abnormal-values
# table's counts.
COUNT_COLUMNS = [*MEASUREMENT_KEY, "test", "category", "arm", "records", "subjects", "with_range"]
COUNT_COLUMNS += INCIDENCE_COUNTS
COUNTS = ["records", "subjects", "with_range", *INCIDENCE_COUNTS]


def lab_counts(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """The LB and VS measurements of the safety population in scope per arm (``COUNT_COLUMNS``):
    records, subjects, records with a normal range, and the abnormal-values table's counts (N
    subjects with a post-baseline value; of them with a low, a high, a grade 3 or more, a graded
    value). Read from the load's counts (``models.LabCount``): the all-sites rows unscoped, the
    sites' rows summed otherwise."""
    keys = [col(getattr(LabCount, name)) for name in MEASUREMENT_KEY]
    where: list[Any] = [col(LabCount.study_id) == study_id]
    if scope is None:
        where.append(col(LabCount.all_sites))
    else:
        where += [~col(LabCount.all_sites), col(LabCount.site_pk).in_(_site_pks(study_id, scope))]
    stmt = (
        select(
            *keys,
            func.max(col(LabCount.test)).label("test"),
            func.max(col(LabCount.category)).label("category"),
            col(LabCount.arm),
            *[func.sum(getattr(LabCount, name)).label(name) for name in COUNTS],
        )
        .where(*where)
        .group_by(*keys, col(LabCount.arm))
        .order_by(*keys, col(LabCount.arm))
    )
    names, found = driver_rows(session, stmt)
    counts = pd.DataFrame.from_records(found, columns=names).reindex(columns=COUNT_COLUMNS)
    for name in COUNTS:
        counts[name] = pd.to_numeric(counts[name]).fillna(0).astype(int)
    return counts


def _site_pks(study_id: str, scope: tuple[str, ...]) -> Any:
    return select(col(Site.id)).where(col(Site.study_id) == study_id, col(Site.site_id).in_(scope))


def site_lab_counts(session: Session, *, study_id: str) -> pd.DataFrame:
    """``lab_counts`` per site (``site_pk``, then ``COUNT_COLUMNS``), summed from the load-time
    summary: what ``dashboard.precomputed`` stores as ``models.LabCount``."""
    population = _population(session, study_id=study_id)
    table = LabSubjectSummary
    keys = [col(getattr(table, name)) for name in MEASUREMENT_KEY]

    def counted(flag: Any) -> Any:
        return func.sum(case((flag, 1), else_=0))

    stmt = (
        select(
            col(Subject.site_pk),
            *keys,
            func.max(col(table.test)).label("test"),
            func.max(col(table.category)).label("category"),
            population.arm.label("arm"),
            func.sum(col(table.records)).label("records"),
            # A row per subject and measurement: its rows are its subjects.
            func.count().label("subjects"),
            func.sum(col(table.with_range)).label("with_range"),
            counted(col(table.post_value)).label("N"),
            counted(col(table.post_value) & col(table.post_low)).label("low_n"),
            counted(col(table.post_value) & col(table.post_high)).label("high_n"),
            counted(col(table.post_value) & col(table.post_grade3)).label("grade3_n"),
            counted(col(table.post_value) & col(table.post_gradable)).label("gradable_n"),
        )
        .join(Subject, col(Subject.id) == col(table.subject_pk))
        .where(*_in_population(table, population, study_id=study_id, scope=None))
        .group_by(col(Subject.site_pk), *keys, population.arm)
    )
    names, found = driver_rows(session, stmt)
    counts = pd.DataFrame.from_records(found, columns=names)
    counts = counts.reindex(columns=["site_pk", *COUNT_COLUMNS])
    counts["site_pk"] = pd.to_numeric(counts["site_pk"]).astype("Int64")
    for name in COUNTS:
        counts[name] = pd.to_numeric(counts[name]).fillna(0).astype(int)
    return counts


def lab_subject_count(session: Session, *, study_id: str, scope: SiteScope, domain: str) -> int:
    """Subjects of the safety population in scope with a record of ``domain``."""
    population = _population(session, study_id=study_id)
    # Subjects counted among the summary's subjects, not distinct summary rows counted: no
    # sort of a row per subject and test (0.09 s against 0.18 s at 50,000 subjects).
    measured = select(col(LabSubjectSummary.subject_pk)).where(
        col(LabSubjectSummary.study_id) == study_id, col(LabSubjectSummary.domain) == domain
    )
    stmt = (
        select(func.count())
        .select_from(Subject)
        .where(
            subject_in_scope(study_id=study_id, scope=scope),
            population.members,
            col(Subject.id).in_(measured),
        )
    )
    return int(session.execute(stmt).scalar_one())


def _subject_columns(population: Any) -> list[Any]:
    return [col(Subject.usubjid), col(Site.site_id), population.arm.label("arm")]


def _shift_source(term: str | None) -> tuple[Any, dict[str, Any], list[Any]]:
    """Where a shift table's subjects are kept: the range shift (``term`` None) in
    LabSubjectSummary, a CTCAE term's grade shift in LabGradeSummary; the columns by
    ``SHIFT_SUBJECT_COLUMNS`` name, and the rows' condition."""
    if term is None:
        table: Any = LabSubjectSummary
        columns = {
            "baseline": col(table.range_baseline),
            "worst": col(table.range_worst),
            "baseline_value": col(table.range_baseline_value),
            "worst_value": col(table.range_worst_value),
            "worst_date": col(table.range_worst_date),
        }
        return table, columns, [col(table.range_worst).is_not(None)]
    table = LabGradeSummary
    columns = {
        name: col(getattr(table, name))
        for name in ("baseline", "worst", "baseline_value", "worst_value", "worst_date")
    }
    return table, columns, [col(table.term) == term]


def shift_counts(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    key: MeasurementKey,
    term: str | None = None,
) -> pd.DataFrame:
    """A shift table's counts for one measurement (the range shift; with ``term``, that CTCAE
    term's grade shift): subjects per arm, baseline and worst category (arm, baseline, worst,
    n), counted in SQL over the load-time summary."""
    population = _population(session, study_id=study_id)
    table, columns, where = _shift_source(term)
    arm = population.arm.label("arm")
    stmt: Any = (
        select(
            arm,
            columns["baseline"].label("baseline"),
            columns["worst"].label("worst"),
            func.count().label("n"),
        )
        .join(Subject, col(Subject.id) == col(table.subject_pk))
        .where(
            *_in_population(table, population, study_id=study_id, scope=scope),
            *where,
            *_key_where(table, key),
        )
        .group_by(population.arm, columns["baseline"], columns["worst"])
    )
    names, found = driver_rows(session, stmt)
    counts = pd.DataFrame.from_records(found, columns=names)
    counts = counts.reindex(columns=["arm", "baseline", "worst", "n"])
    counts["n"] = pd.to_numeric(counts["n"]).fillna(0).astype(int)
    return counts


def shift_subjects(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    key: MeasurementKey,
    term: str | None = None,
    arm: str | None = None,
    baseline: str | None = None,
    worst: str | None = None,
) -> pd.DataFrame:
    """The subjects of a shift table of one measurement (``shift_counts``'s table), of one cell
    where ``arm``, ``baseline`` or ``worst`` are given (None: any): ``SHIFT_SUBJECT_COLUMNS``, in
    arm and subject order."""
    population = _population(session, study_id=study_id)
    table, columns, where = _shift_source(term)
    if arm is not None:
        where.append(population.arm == arm)
    if baseline is not None:
        where.append(columns["baseline"] == baseline)
    if worst is not None:
        where.append(columns["worst"] == worst)
    stmt: Any = (
        select(
            *_subject_columns(population),
            columns["baseline"].label("baseline"),
            columns["worst"].label("worst"),
            columns["baseline_value"].label("baseline_value"),
            columns["worst_value"].label("worst_value"),
            cast(columns["worst_date"], String).label("worst_date"),
        )
        .join(Subject, col(Subject.id) == col(table.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            *_in_population(table, population, study_id=study_id, scope=scope),
            *where,
            *_key_where(table, key),
        )
        .order_by(population.arm, col(Subject.usubjid))
    )
    names, found = driver_rows(session, stmt)
    return pd.DataFrame.from_records(found, columns=names).reindex(columns=SHIFT_SUBJECT_COLUMNS)


def graded_terms(
    session: Session, *, study_id: str, scope: SiteScope, key: MeasurementKey
) -> list[str]:
    """The CTCAE terms that grade a post-baseline value of one measurement in scope, sorted."""
    population = _population(session, study_id=study_id)
    stmt = (
        select(col(LabGradeSummary.term))
        .distinct()
        .join(Subject, col(Subject.id) == col(LabGradeSummary.subject_pk))
        .where(
            *_in_population(LabGradeSummary, population, study_id=study_id, scope=scope),
            *_key_where(LabGradeSummary, key),
        )
        .order_by(col(LabGradeSummary.term))
    )
    return [str(term) for term in session.execute(stmt).scalars()]


def liver_peaks(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """The eDISH peaks of the safety population in scope (``PEAK_COLUMNS``), a row per subject
    with an on-treatment ALT, AST or bilirubin record, in subject order."""
    population = _population(session, study_id=study_id)
    table = LiverSummary
    stmt = (
        select(
            *_subject_columns(population),
            col(table.peak_alt_uln),
            cast(col(table.peak_alt_date), String).label("peak_alt_date"),
            col(table.peak_ast_uln),
            cast(col(table.peak_ast_date), String).label("peak_ast_date"),
            col(table.peak_bili_uln),
            cast(col(table.peak_bili_date), String).label("peak_bili_date"),
            col(table.pair_gap_days),
        )
        .join(Subject, col(Subject.id) == col(table.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            *_in_population(table, population, study_id=study_id, scope=scope),
        )
        .order_by(col(Subject.usubjid))
    )
    names, found = driver_rows(session, stmt)
    peaks = pd.DataFrame.from_records(found, columns=names).reindex(columns=PEAK_COLUMNS)
    for name in ("peak_alt_date", "peak_ast_date", "peak_bili_date"):
        peaks[name] = pd.to_datetime(peaks[name], errors="coerce")
    return peaks


def summary_missing(session: Session, *, study_id: str) -> bool:
    """True where the study has LB or VS findings and no load-time summary of them: a study
    loaded before the summary existed (migration 0007), whose Labs figures wait for its next
    import."""
    has_summary = session.execute(
        select(col(LabSubjectSummary.id))
        .where(col(LabSubjectSummary.study_id) == study_id)
        .limit(1)
    ).first()
    if has_summary is not None:
        return False
    has_findings = session.execute(
        select(col(Finding.id))
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(col(Subject.study_id) == study_id, col(Finding.domain).in_(LAB_DOMAINS))
        .limit(1)
    ).first()
    return has_findings is not None
