"""Adverse events: headline counts, the safety tables by arm and the AE listings.

The tables by arm count subjects of the safety population: the treated subjects (a first dose or an
exposure record) by actual arm (ACTARM), or, where the study holds no exposure at all, the enrolled
subjects by planned arm (DESIGN.md "Arm for a figure"). The classification rules (related, severe,
leading to discontinuation, fatal) are the value lists of ``dashboard.metrics.ae_rules``,
turned into SQL here so the counting stays in the database.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlmodel import Session, col

from dashboard.metrics.ae_rules import (
    DISCONTINUATION_ACTION,
    DS_ADVERSE_EVENT,
    FATAL_OUTCOME,
    RANKED_VALUES,
    RELATED_VALUES,
    SEVERE_GRADES,
    SEVERE_SEVERITIES,
    SUMMARY_CATEGORIES,
)
from dashboard.models import AdverseEvent, Disposition, Exposure, Site, Subject
from dashboard.queries.scope import SiteScope, driver_rows, rows, subject_in_scope
from dashboard.results.adverse_events import (
    EMERGENT_DERIVED,
    EMERGENT_FLAGGED,
    ENROLLED_BASIS,
    NO_ARM,
    TREATED,
    UNCODED_SOC,
    AdverseEventCounts,
    SafetyPopulation,
    SafetySummary,
    TermIncidence,
)
from dashboard.results.population import ENROLLED

# The listing's columns, in order (the docstring of ``adverse_event_listing`` names them).
LISTING_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "seq",
    "term",
    "decoded_term",
    "body_system",
    "severity",
    "grade",
    "serious",
    "serious_death",
    "serious_life_threatening",
    "serious_hospitalisation",
    "serious_disability",
    "serious_congenital",
    "serious_other",
    "serious_cancer",
    "serious_overdose",
    "relationship",
    "outcome",
    "action",
    "start_dtc",
    "start_date",
    "end_dtc",
    "end_date",
    "start_day",
    "first_dose_dtc",
    "first_dose_date",
    "first_cut_id",
    "observed_until",
    "updated_cut_id",
    "treatment_emergent_flag",
    "natural_key",  # the record's key in the cuts' history and the review log
]


def _code(column: Any) -> ColumnElement[str]:
    """A coded value as the rules compare it: trimmed, upper case, '' for null."""
    return func.upper(func.trim(func.coalesce(column, "")))


def _blank_as_null(column: Any) -> ColumnElement[str]:
    return func.nullif(func.trim(column), "")


def is_serious() -> ColumnElement[bool]:
    """AESER = Y (any case): the SQL condition every serious-event count uses."""
    # The same as upper(AESER) = 'Y', written so that the index on AESER can be used: a listing
    # of the few serious events then reads those, not every AE of the study.
    return col(AdverseEvent.serious).in_(("Y", "y"))


# The variable of each per-subject view (AESEV, AETOXGR, AESER, AEREL).
_DIMENSION_VARIABLE: dict[str, Any] = {
    "severity": AdverseEvent.severity,
    "grade": AdverseEvent.grade,
    "seriousness": AdverseEvent.serious,
    "relationship": AdverseEvent.relationship,
}


def source_value(dimension: str) -> ColumnElement[str]:
    """A per-subject view's variable as given: trimmed, '' for blank (``events_by_source_value``
    groups by it, a listing filters on it)."""
    return func.coalesce(func.trim(col(_DIMENSION_VARIABLE[dimension])), "")


def is_related() -> ColumnElement[bool]:
    """AEREL in the related values of DESIGN.md."""
    return _code(col(AdverseEvent.relationship)).in_(RELATED_VALUES)


def is_severe() -> ColumnElement[bool]:
    """AESEV SEVERE or AETOXGR 3 or more."""
    return or_(
        _code(col(AdverseEvent.severity)).in_(SEVERE_SEVERITIES),
        _code(col(AdverseEvent.grade)).in_(SEVERE_GRADES),
    )


def is_fatal() -> ColumnElement[bool]:
    """AESDTH = Y or AEOUT = FATAL."""
    return or_(
        _code(col(AdverseEvent.serious_death)) == "Y",
        _code(col(AdverseEvent.outcome)) == FATAL_OUTCOME,
    )


def leads_to_discontinuation() -> ColumnElement[bool]:
    """AEACN = DRUG WITHDRAWN."""
    return _code(col(AdverseEvent.action)) == DISCONTINUATION_ACTION


def is_treatment_emergent() -> ColumnElement[bool]:
    """The sponsor's AETRTEM (Y) where the AE carries it, else onset on or after the first dose
    (``metrics.ae_rules.is_treatment_emergent`` is the same rule in Python): a subject never dosed
    has none; an unknown onset, or a partial one in the period of the first dose, counts (it
    cannot be shown to precede the dose)."""
    flag = col(AdverseEvent.treatment_emergent)
    onset, dose = col(AdverseEvent.start_date), col(Subject.first_dose_date)
    onset_text = func.trim(col(AdverseEvent.start_dtc))
    partial_in_dose_period = and_(
        func.length(onset_text) < 10,
        func.substr(col(Subject.first_dose_dtc), 1, func.length(onset_text)) == onset_text,
    )
    derived = and_(dose.is_not(None), or_(onset.is_(None), onset >= dose, partial_in_dose_period))
    return or_(flag == "Y", and_(flag.is_(None), derived))


def _treated() -> ColumnElement[bool]:
    return or_(
        col(Subject.first_dose_date).is_not(None),
        col(Subject.id).in_(select(col(Exposure.subject_pk))),
    )


def _preferred_term() -> ColumnElement[str]:
    return func.coalesce(_blank_as_null(col(AdverseEvent.decoded_term)), col(AdverseEvent.term))


def _system_organ_class() -> ColumnElement[str]:
    return func.coalesce(_blank_as_null(col(AdverseEvent.body_system)), UNCODED_SOC)


def _rank(dimension: str) -> ColumnElement[int]:
    """The rank of an event in a per-subject view (``metrics.ae_rules.RANKED_VALUES``)."""
    column = {
        "severity": AdverseEvent.severity,
        "grade": AdverseEvent.grade,
        "seriousness": AdverseEvent.serious,
        "relationship": AdverseEvent.relationship,
    }[dimension]
    by_rank: dict[int, list[str]] = {}
    for value, rank in RANKED_VALUES[dimension].items():
        by_rank.setdefault(rank, []).append(value)
    code = _code(col(column))
    return case(*((code.in_(values), rank) for rank, values in sorted(by_rank.items())), else_=0)


@dataclass(frozen=True)
class _Population:
    """The safety population of a study: which subjects, and the arm each is counted in."""

    basis: str
    members: ColumnElement[bool]
    arm: ColumnElement[str]


def _population(session: Session, *, study_id: str) -> _Population:
    # Decided on the whole study, so a site filter never switches the denominator's definition.
    # Whether anyone is treated: the first treated subject answers it (no count needed).
    any_treated = (
        session.execute(
            select(col(Subject.id)).where(col(Subject.study_id) == study_id, _treated()).limit(1)
        ).first()
        is not None
    )
    if any_treated:
        # ACTARM where given (SDTMIG 3.1.2 on), else the planned arm.
        arm = func.coalesce(
            _blank_as_null(col(Subject.actual_arm)), _blank_as_null(col(Subject.arm)), NO_ARM
        )
        return _Population(TREATED, _treated(), arm)
    arm = func.coalesce(
        _blank_as_null(col(Subject.arm)), _blank_as_null(col(Subject.arm_code)), NO_ARM
    )
    return _Population(ENROLLED_BASIS, col(Subject.population) == ENROLLED, arm)


def _by_site(per_site: bool) -> list[Any]:
    """The site key the load-time counts group by as well (``dashboard.precomputed``): distinct
    subjects per site add up over sites, since a subject belongs to one site."""
    return [col(Subject.site_pk).label("site_pk")] if per_site else []


def _event_filter(
    *, study_id: str, scope: SiteScope, treatment_emergent: bool
) -> list[ColumnElement[bool]]:
    where = [subject_in_scope(study_id=study_id, scope=scope)]
    if treatment_emergent:
        where.append(is_treatment_emergent())
    return where


def count_adverse_events(
    session: Session, *, study_id: str, scope: SiteScope, treatment_emergent: bool = False
) -> AdverseEventCounts:
    """Every AE in the data for the study's subjects in scope (treatment-emergent ones only if
    asked): events and distinct subjects, all and serious (AESER = Y)."""
    serious = is_serious()
    stmt = (
        select(
            func.count(col(AdverseEvent.id)),
            func.count(func.distinct(col(AdverseEvent.subject_pk))),
            func.coalesce(func.sum(case((serious, 1), else_=0)), 0),
            func.count(func.distinct(case((serious, col(AdverseEvent.subject_pk)), else_=None))),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(
            *_event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent)
        )
    )
    events, subjects, serious_events, serious_subjects = session.execute(stmt).one()
    return AdverseEventCounts(
        int(events), int(subjects), int(serious_events), int(serious_subjects)
    )


def count_adverse_events_by_site(
    session: Session, *, study_id: str, treatment_emergent: bool
) -> pd.DataFrame:
    """``count_adverse_events`` per site, for the load-time counts. Columns: site_pk, events,
    subjects, serious_events, serious_subjects."""
    serious = is_serious()
    stmt = (
        select(
            col(Subject.site_pk).label("site_pk"),
            func.count(col(AdverseEvent.id)).label("events"),
            func.count(func.distinct(col(AdverseEvent.subject_pk))).label("subjects"),
            func.coalesce(func.sum(case((serious, 1), else_=0)), 0).label("serious_events"),
            func.count(
                func.distinct(case((serious, col(AdverseEvent.subject_pk)), else_=None))
            ).label("serious_subjects"),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(*_event_filter(study_id=study_id, scope=None, treatment_emergent=treatment_emergent))
        .group_by(col(Subject.site_pk))
    )
    names = ["site_pk", "events", "subjects", "serious_events", "serious_subjects"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=names)


def incidence_by_soc(
    session: Session, *, study_id: str, scope: SiteScope, per_site: bool = False
) -> pd.DataFrame:
    """Subjects and events per system organ class (AEBODSYS; blank as ``UNCODED_SOC``).

    Columns: body_system, subjects, events (site_pk first with ``per_site``). Sorted by subjects,
    most first.
    """
    soc = _system_organ_class()
    stmt = (
        select(
            *_by_site(per_site),
            soc.label("body_system"),
            func.count(func.distinct(col(AdverseEvent.subject_pk))).label("subjects"),
            func.count(col(AdverseEvent.id)).label("events"),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope))
        .group_by(*_by_site(per_site), soc)
        .order_by(func.count(func.distinct(col(AdverseEvent.subject_pk))).desc(), soc)
    )
    names = ["site_pk"] * per_site + ["body_system", "subjects", "events"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=names)


def safety_population(session: Session, *, study_id: str, scope: SiteScope) -> SafetyPopulation:
    """The safety population in scope, by arm."""
    population = _population(session, study_id=study_id)
    stmt = (
        select(population.arm.label("arm"), func.count().label("subjects"))
        .where(subject_in_scope(study_id=study_id, scope=scope), population.members)
        .group_by(population.arm)
        .order_by(population.arm)
    )
    dated = (
        session.execute(
            select(col(Subject.id))
            .where(col(Subject.study_id) == study_id, col(Subject.first_dose_date).is_not(None))
            .limit(1)
        ).first()
        is not None
    )
    flagged = _has_event(session, study_id=study_id, flagged=True)
    rule = EMERGENT_DERIVED
    if flagged:
        rule = EMERGENT_FLAGGED
        if _has_event(session, study_id=study_id, flagged=False):
            rule += f"; AEs without the flag {EMERGENT_DERIVED}"
    return SafetyPopulation(
        basis=population.basis,
        by_arm=pd.DataFrame(rows(session.execute(stmt)), columns=["arm", "subjects"]),
        first_dose_dates=dated,
        emergent_flagged=flagged,
        emergent_rule=rule,
    )


def _has_event(session: Session, *, study_id: str, flagged: bool) -> bool:
    """Some AE of the study carries the sponsor's AETRTEM (``flagged``), or some carries none."""
    flag = col(AdverseEvent.treatment_emergent)
    stmt = (
        select(col(AdverseEvent.id))
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(col(Subject.study_id) == study_id, flag.is_not(None) if flagged else flag.is_(None))
        .limit(1)
    )
    return session.execute(stmt).first() is not None


def safety_summary(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    treatment_emergent: bool = False,
    per_site: bool = False,
) -> SafetySummary:
    """Subjects and events per arm for each summary category, in one GROUP BY (and one over DS
    where discontinuation comes from there). ``per_site``: every frame and figure per site
    (``counts`` gains site_pk; ``outside`` holds the per-site figures), for the load-time
    counts."""
    population = _population(session, study_id=study_id)
    subject = col(AdverseEvent.subject_pk)
    conditions = _category_conditions()
    columns: list[Any] = [*_by_site(per_site), population.arm.label("arm")]
    for key, condition in conditions.items():
        columns.append(func.count(func.distinct(case((condition, subject), else_=None))).label(key))
        columns.append(func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(f"{key}_e"))
    where = _event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent)
    stmt = (
        select(*columns)
        .join(Subject, col(Subject.id) == subject)
        .where(*where, population.members)
        .group_by(*_by_site(per_site), population.arm)
    )
    per_arm = rows(session.execute(stmt))

    action_given = session.execute(
        select(func.count())
        .select_from(AdverseEvent)
        .join(Subject, col(Subject.id) == subject)
        .where(
            col(Subject.study_id) == study_id,
            _blank_as_null(col(AdverseEvent.action)).is_not(None),
        )
    ).scalar_one()
    from_ds = not action_given
    site = ["site_pk"] if per_site else []
    records = [
        {
            **{k: row[k] for k in site},
            "arm": row["arm"],
            "category": key,
            "subjects": int(row[key]),
            "events": int(row[f"{key}_e"]),
        }
        for row in per_arm
        for key, _label in SUMMARY_CATEGORIES
        if not (from_ds and key == "discontinuation")
    ]
    if from_ds:
        ds = _discontinued_from_ds(population, study_id=study_id, scope=scope, per_site=per_site)
        records += [
            {
                **dict(zip(site, found[:-2], strict=True)),
                "arm": found[-2],
                "category": "discontinuation",
                "subjects": int(found[-1]),
                "events": None,
            }
            for found in session.execute(ds).all()
        ]

    outside_stmt = (
        select(
            *_by_site(per_site),
            func.coalesce(func.sum(case((population.members, 0), else_=1)), 0).label(
                "outside_events"
            ),
            func.count(func.distinct(case((population.members, None), else_=subject))).label(
                "outside_subjects"
            ),
            func.count(_blank_as_null(col(AdverseEvent.grade))).label("graded"),
            func.coalesce(
                func.sum(case((_blank_as_null(col(AdverseEvent.decoded_term)).is_(None), 1))), 0
            ).label("uncoded"),
        )
        .join(Subject, col(Subject.id) == subject)
        .where(*where)
        .group_by(*_by_site(per_site))
    )
    outside = pd.DataFrame(
        rows(session.execute(outside_stmt)),
        columns=[*site, "outside_events", "outside_subjects", "graded", "uncoded"],
    )
    totals = outside.sum(numeric_only=True) if not per_site else outside.iloc[0:0].sum()
    return SafetySummary(
        counts=pd.DataFrame.from_records(
            records, columns=[*site, "arm", "category", "subjects", "events"]
        ),
        discontinuation_from_ds=from_ds,
        outside_events=int(totals.get("outside_events", 0)),
        outside_subjects=int(totals.get("outside_subjects", 0)),
        graded_events=int(totals.get("graded", 0)),
        uncoded_events=int(totals.get("uncoded", 0)),
        outside_by_site=outside if per_site else None,
    )


def _discontinued_from_ds(
    population: _Population, *, study_id: str, scope: SiteScope, per_site: bool
) -> Any:
    """Subjects of the population per arm (site_pk first with ``per_site``) whose DS says they
    stopped for an adverse event: the summary's discontinuation row where AEACN is blank
    throughout."""
    return (
        select(
            *_by_site(per_site),
            population.arm.label("arm"),
            func.count(func.distinct(col(Subject.id))),
        )
        .join(Disposition, col(Disposition.subject_pk) == col(Subject.id))
        .where(
            subject_in_scope(study_id=study_id, scope=scope),
            population.members,
            _code(col(Disposition.term)) == DS_ADVERSE_EVENT,
            _code(func.coalesce(col(Disposition.category), "DISPOSITION EVENT"))
            == "DISPOSITION EVENT",
        )
        .group_by(*_by_site(per_site), population.arm)
    )


def discontinued_from_ds_by_site(session: Session, *, study_id: str) -> pd.DataFrame:
    """``safety_summary``'s discontinuation subjects read from DS, per site and arm, for the
    load-time counts. Columns: site_pk, arm, subjects."""
    population = _population(session, study_id=study_id)
    stmt = _discontinued_from_ds(population, study_id=study_id, scope=None, per_site=True)
    return pd.DataFrame(
        [tuple(r) for r in session.execute(stmt).all()], columns=["site_pk", "arm", "subjects"]
    )


def _flag(condition: ColumnElement[bool]) -> Any:
    """1 where ``condition`` holds, else 0 (NULL too, as a WHERE or a CASE reads it)."""
    return case((condition, 1), else_=0)


# ``adverse_event_facts``' columns beside the flags and the per-dimension ones.
FACT_KEYS = ["site_pk", "subject_pk", "arm", "soc", "pt"]


def adverse_event_facts(session: Session, *, study_id: str) -> pd.DataFrame:
    """Every AE of the study, a row each, with everything the safety tables group or count it by,
    each rule the same SQL expression as in the tables' own queries: the load-time counts
    (``dashboard.precomputed``) count these in one read instead of a query per table, at a
    quarter of a million AEs twenty scans of them.

    Columns: site_pk, subject_pk, arm (the safety population's), soc, pt (as the incidence table
    names them); flags, 1 or 0: member (of the safety population), emergent, action_given (AEACN
    not blank), graded (AETOXGR not blank), uncoded (AEDECOD blank), one per summary category
    (``any`` ... ``death``); per dimension of ``WORST_DIMENSIONS``, ``rank_<dimension>`` and
    ``value_<dimension>`` (``source_value``)."""
    population = _population(session, study_id=study_id)
    columns: list[Any] = [
        col(Subject.site_pk).label("site_pk"),
        col(AdverseEvent.subject_pk).label("subject_pk"),
        population.arm.label("arm"),
        _system_organ_class().label("soc"),
        _preferred_term().label("pt"),
        _flag(population.members).label("member"),
        _flag(is_treatment_emergent()).label("emergent"),
        _flag(_blank_as_null(col(AdverseEvent.action)).is_not(None)).label("action_given"),
        _flag(_blank_as_null(col(AdverseEvent.grade)).is_not(None)).label("graded"),
        _flag(_blank_as_null(col(AdverseEvent.decoded_term)).is_(None)).label("uncoded"),
        *(_flag(c).label(key) for key, c in _category_conditions().items()),
    ]
    for dimension in _DIMENSION_VARIABLE:
        columns += [
            _rank(dimension).label(f"rank_{dimension}"),
            source_value(dimension).label(f"value_{dimension}"),
        ]
    stmt = (
        select(*columns)
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(subject_in_scope(study_id=study_id, scope=None))
    )
    names, found = driver_rows(session, stmt)
    facts = pd.DataFrame.from_records(found, columns=names)
    # Nullable integers: a subject without a site keeps a NULL site, never a float.
    return facts.astype({"site_pk": "Int64"})


def _category_conditions() -> dict[str, ColumnElement[bool]]:
    """The SQL condition of each summary category, by key."""
    conditions: dict[str, ColumnElement[bool]] = {
        "any": true(),
        "serious": is_serious(),
        "related": is_related(),
        "severe": is_severe(),
        "discontinuation": leads_to_discontinuation(),
        "death": is_fatal(),
    }
    assert list(conditions) == [key for key, _ in SUMMARY_CATEGORIES]
    return conditions


def incidence_by_term(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    treatment_emergent: bool = False,
    per_site: bool = False,
) -> TermIncidence:
    """Distinct subjects and events per arm, SOC and PT (two GROUP BYs: a SOC's subjects are not
    the sum of its PTs')."""
    population = _population(session, study_id=study_id)
    soc, pt = _system_organ_class(), _preferred_term()
    where = [
        *_event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent),
        population.members,
    ]
    subjects = func.count(func.distinct(col(AdverseEvent.subject_pk))).label("subjects")
    events = func.count(col(AdverseEvent.id)).label("events")
    frames = []
    for keys in ((soc.label("soc"), pt.label("pt")), (soc.label("soc"),)):
        stmt = (
            select(*_by_site(per_site), population.arm.label("arm"), *keys, subjects, events)
            .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
            .where(*where)
            .group_by(*_by_site(per_site), population.arm, *(k.element for k in keys))
        )
        names = ["site_pk"] * per_site + ["arm", *(k.name for k in keys), "subjects", "events"]
        frames.append(pd.DataFrame(rows(session.execute(stmt)), columns=names))
    return TermIncidence(by_pt=frames[0], by_soc=frames[1])


def subjects_by_worst_level(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    dimension: str,
    treatment_emergent: bool = False,
    per_site: bool = False,
) -> pd.DataFrame:
    """Subjects with an AE by arm and their highest rank in ``dimension`` (a key of
    ``metrics.ae_rules.WORST_DIMENSIONS``). Columns: arm, rank, subjects (site_pk first
    with ``per_site``)."""
    population = _population(session, study_id=study_id)
    per_subject = (
        select(
            *_by_site(per_site),
            population.arm.label("arm"),
            func.max(_rank(dimension)).label("rank"),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(
            *_event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent),
            population.members,
        )
        .group_by(col(AdverseEvent.subject_pk), *_by_site(per_site), population.arm)
        .subquery()
    )
    site = [per_subject.c.site_pk] if per_site else []
    stmt = (
        select(*site, per_subject.c.arm, per_subject.c.rank, func.count().label("subjects"))
        .group_by(*site, per_subject.c.arm, per_subject.c.rank)
        .order_by(*site, per_subject.c.arm, per_subject.c.rank)
    )
    names = ["site_pk"] * per_site + ["arm", "rank", "subjects"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=names)


def events_by_source_value(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    dimension: str,
    treatment_emergent: bool = False,
    per_site: bool = False,
) -> pd.DataFrame:
    """Events and distinct subjects per arm and value as given of ``dimension``'s variable (AESEV,
    AETOXGR, AESER or AEREL; blank as ''). Columns: arm, value, events, subjects (site_pk first
    with ``per_site``)."""
    population = _population(session, study_id=study_id)
    value = source_value(dimension)
    stmt = (
        select(
            *_by_site(per_site),
            population.arm.label("arm"),
            value.label("value"),
            func.count(col(AdverseEvent.id)).label("events"),
            func.count(func.distinct(col(AdverseEvent.subject_pk))).label("subjects"),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(
            *_event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent),
            population.members,
        )
        .group_by(*_by_site(per_site), population.arm, value)
        .order_by(*_by_site(per_site), population.arm, value)
    )
    names = ["site_pk"] * per_site + ["arm", "value", "events", "subjects"]
    return pd.DataFrame(rows(session.execute(stmt)), columns=names)


def adverse_event_listing(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    treatment_emergent: bool = False,
    in_population: bool = True,
    arm: str | None = None,
    category: str | None = None,
    soc: str | None = None,
    pt: str | None = None,
    dimension: str | None = None,
    rank: int | None = None,
    usubjids: Sequence[str] | None = None,
    serious_only: bool = False,
    value: str | None = None,
    limit: int | None = 1000,
    new_first_since: int | None = None,
) -> tuple[pd.DataFrame, int]:
    """The AEs behind a figure, a row each (at most ``limit``; None: every one), and how many
    there are in all.

    Filters (None: any): the safety population (``in_population``), ``arm``, a summary
    ``category``, ``soc`` and ``pt`` (as the incidence table names them), ``dimension`` with
    ``rank`` (the events at that rank of subjects whose highest rank it is), ``usubjids``,
    ``serious_only``, ``dimension`` with ``value`` (the events whose variable holds that value as
    given, ``source_value``). Ordered by subject, onset, AESEQ; with ``new_first_since``, the
    events first held by a cut after that one come first (so a limited listing never leaves a new
    one out).

    Columns: ``LISTING_COLUMNS``: usubjid, site_id, arm, seq, term (AETERM), decoded_term
    (AEDECOD), body_system (AEBODSYS), severity, grade, serious, the eight seriousness criteria
    (serious_death ... serious_overdose), relationship, outcome, action, start_dtc, start_date,
    end_dtc, end_date, start_day (AESTDY), first_dose_dtc, first_dose_date, first_cut_id,
    observed_until (the subject's latest DS date other than a protocol milestone: where an
    ongoing AE's timeline bar ends), updated_cut_id, treatment_emergent_flag (AETRTEM as kept),
    natural_key (the review log's key).
    """
    population = _population(session, study_id=study_id)
    where = _event_filter(study_id=study_id, scope=scope, treatment_emergent=treatment_emergent)
    if in_population:
        where.append(population.members)
    if arm is not None:
        where.append(population.arm == arm)
    if category is not None:
        where.append(_category_conditions()[category])
    if soc is not None:
        where.append(_system_organ_class() == soc)
    if pt is not None:
        where.append(_preferred_term() == pt)
    if usubjids is not None:
        where.append(col(Subject.usubjid).in_(list(usubjids)))
    if serious_only:
        where.append(is_serious())
    if dimension is not None and value is not None:
        # A row of the source-values table: the value as ``events_by_source_value`` reports it.
        where.append(source_value(dimension) == value)
    if dimension is not None and rank is not None:
        worst = (
            select(
                col(AdverseEvent.subject_pk).label("subject_pk"),
                func.max(_rank(dimension)).label("rank"),
            )
            .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
            .where(*where)
            .group_by(col(AdverseEvent.subject_pk))
            .subquery()
        )
        where += [
            col(AdverseEvent.subject_pk).in_(
                select(worst.c.subject_pk).where(worst.c.rank == rank)
            ),
            _rank(dimension) == rank,
        ]
    base = (
        select(col(AdverseEvent.id))
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(*where)
    )
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    observed_until = (
        select(func.max(col(Disposition.date)))
        .where(
            col(Disposition.subject_pk) == col(Subject.id),
            _code(col(Disposition.category)) != "PROTOCOL MILESTONE",
        )
        .correlate(Subject)
        .scalar_subquery()
    )
    fields: list[Any] = [
        col(Subject.usubjid),
        col(Site.site_id),
        population.arm.label("arm"),
        *(getattr(AdverseEvent, name) for name in LISTING_COLUMNS[3:26]),  # seq ... start_day
        col(Subject.first_dose_dtc),
        col(Subject.first_dose_date),
        col(AdverseEvent.first_cut_id),
        observed_until.label("observed_until"),
        col(AdverseEvent.updated_cut_id),
        col(AdverseEvent.treatment_emergent).label("treatment_emergent_flag"),
        col(AdverseEvent.natural_key),
    ]
    stmt = (
        select(*fields)
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .order_by(
            *(
                [case((col(AdverseEvent.first_cut_id) > new_first_since, 0), else_=1)]
                if new_first_since is not None
                else []
            ),
            col(Subject.usubjid),
            col(AdverseEvent.start_date).is_(None),
            col(AdverseEvent.start_date),
            col(AdverseEvent.seq),
        )
        .limit(limit)
    )
    frame = pd.DataFrame(
        [tuple(row) for row in session.execute(stmt).all()], columns=LISTING_COLUMNS
    )
    return frame, int(total)


def discontinuations_from_ds(
    session: Session, *, study_id: str, scope: SiteScope, arm: str | None = None
) -> pd.DataFrame:
    """Subjects of the safety population whose disposition reason is ADVERSE EVENT (what
    "leading to discontinuation" means where AEACN is blank). Columns: usubjid, site_id, arm,
    term (DSDECOD), verbatim (DSTERM), epoch, dtc."""
    population = _population(session, study_id=study_id)
    where = [
        subject_in_scope(study_id=study_id, scope=scope),
        population.members,
        _code(col(Disposition.term)) == DS_ADVERSE_EVENT,
        _code(func.coalesce(col(Disposition.category), "DISPOSITION EVENT")) == "DISPOSITION EVENT",
    ]
    if arm is not None:
        where.append(population.arm == arm)
    stmt = (
        select(
            col(Subject.usubjid),
            col(Site.site_id),
            population.arm.label("arm"),
            col(Disposition.term),
            col(Disposition.verbatim),
            col(Disposition.epoch),
            col(Disposition.dtc),
        )
        .join(Disposition, col(Disposition.subject_pk) == col(Subject.id))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .order_by(col(Subject.usubjid), col(Disposition.date).nulls_last())
    )
    columns = ["usubjid", "site_id", "arm", "term", "verbatim", "epoch", "dtc"]
    return pd.DataFrame([tuple(r) for r in session.execute(stmt).all()], columns=columns)


def subjects_with_adverse_events(
    session: Session, *, study_id: str, scope: SiteScope, limit: int = 1000
) -> pd.DataFrame:
    """The subjects in scope with at least one AE (the timeline's choices), at most ``limit``:
    those with a serious one first, then the others, each part by code. Columns: usubjid, serious
    (whether one of their AEs is serious)."""
    # Two walks of the subject index in code order that stop at the limit: the few subjects with
    # a serious AE (through the AESER index), then the others with an AE (one probe each).
    # Counting every subject's events instead groups the whole AE table.
    in_scope = subject_in_scope(study_id=study_id, scope=scope)
    with_serious = col(Subject.id).in_(select(col(AdverseEvent.subject_pk)).where(is_serious()))
    has_event = (
        select(col(AdverseEvent.id)).where(col(AdverseEvent.subject_pk) == col(Subject.id)).exists()
    )
    found: list[tuple[str, bool]] = []
    for condition, serious in ((with_serious, True), (has_event & ~with_serious, False)):
        if len(found) < limit:
            stmt = (
                select(col(Subject.usubjid))
                .where(in_scope, condition)
                .order_by(col(Subject.usubjid))
                .limit(limit - len(found))
            )
            found += [(usubjid, serious) for usubjid in session.execute(stmt).scalars()]
    return pd.DataFrame(found, columns=["usubjid", "serious"])
