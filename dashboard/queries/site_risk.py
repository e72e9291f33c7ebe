"""Key risk indicator counts per site (metrics.kri_catalogue says what each counts), and the counts
each data cut kept (models.SiteKriCount).

The counts are study-wide on purpose: a site's score compares it with every other site, so the
view scores all of them and then shows a viewer only the sites in their scope (views.site_risk).
Each load counts them once (dashboard.precomputed) and keeps them with its cut: the rows the
counts come from are replaced by the next load, and a flag's history can only be read from what
each load counted.
"""

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlmodel import Session, col

from dashboard.metrics import kri_catalogue as k
from dashboard.metrics.eligibility import checked_criteria
from dashboard.models import (
    AdverseEvent,
    DataCut,
    Disposition,
    Finding,
    ProtocolDeviation,
    QtlExcursion,
    QualityToleranceLimit,
    Site,
    SiteKriCount,
    Subject,
)
from dashboard.queries import enrollment, screen_failures, studies, visits
from dashboard.queries.adverse_events import is_serious
from dashboard.queries.scope import rows
from dashboard.results.population import ENROLLED

COUNT_COLUMNS = ["site_id", "kri", "numerator", "denominator"]
GRADE_3_OR_MORE = ("3", "4", "5")


def _site_id() -> Any:
    # The bare column in SELECT and GROUP BY alike (PostgreSQL matches a grouped expression only
    # when it is the same text, bound parameters included). A subject without a site has None
    # here, and no row in the per-site tables (they list the study's sites).
    return col(Site.site_id)


def _per_site(session: Session, stmt: Any) -> pd.Series:
    """A (site_id, n) query as a Series by site id."""
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=["site_id", "n"])
    return frame.set_index("site_id")["n"].astype(float)


def _enrolled(study_id: str) -> list[Any]:
    return [col(Subject.study_id) == study_id, col(Subject.population) == ENROLLED]


def days_on_study(session: Session, *, study_id: str, cutoff: dt.date) -> pd.Series:
    """Days on study per site: each enrolled subject from enrollment (day 1) to the day they left
    (their latest disposition event, for a subject who completed or discontinued) or the cut-off,
    both days counted. Subjects without an enrollment date add nothing."""
    stmt = (
        select(
            _site_id().label("site_id"),
            col(Subject.enrollment_date),
            visits.left_on().label("left_on"),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*_enrolled(study_id), col(Subject.enrollment_date).is_not(None))
    )
    frame = pd.DataFrame(
        rows(session.execute(stmt)), columns=["site_id", "enrollment_date", "left_on"]
    )
    start = pd.to_datetime(frame["enrollment_date"])
    last_day = pd.Timestamp(cutoff)
    left = pd.to_datetime(frame["left_on"]).fillna(last_day)
    end = left.where(left <= last_day, last_day)
    frame["days"] = ((end - start).dt.days + 1).clip(lower=0)
    return frame.groupby("site_id")["days"].sum().astype(float)


def _adverse_events(session: Session, study_id: str, *, serious: bool) -> pd.Series:
    where = [*_enrolled(study_id), is_serious()] if serious else _enrolled(study_id)
    stmt = (
        select(_site_id().label("site_id"), func.count().label("n"))
        .select_from(AdverseEvent)
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*where)
        .group_by(_site_id())
    )
    return _per_site(session, stmt)


def _deviations(session: Session, study_id: str, *, important: bool) -> pd.Series:
    # Unclassified deviations (important None) count as not important, as the importer warns.
    is_important = col(ProtocolDeviation.important).is_(True)
    stmt = (
        select(_site_id().label("site_id"), func.count().label("n"))
        .select_from(ProtocolDeviation)
        .join(Subject, col(Subject.id) == col(ProtocolDeviation.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(col(Subject.study_id) == study_id, is_important if important else ~is_important)
        .group_by(_site_id())
    )
    return _per_site(session, stmt)


def _graded_labs(session: Session, study_id: str) -> tuple[pd.Series, pd.Series]:
    """(grade 3 or more, graded) LB results per site."""
    grade = func.trim(col(Finding.toxicity_grade))
    stmt = (
        select(
            _site_id().label("site_id"),
            func.sum(case((grade.in_(GRADE_3_OR_MORE), 1), else_=0)).label("high"),
            func.count().label("graded"),
        )
        .select_from(Finding)
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            col(Subject.study_id) == study_id,
            col(Finding.domain) == "LB",
            grade.is_not(None),
            grade != "",
        )
        .group_by(_site_id())
    )
    frame = pd.DataFrame(rows(session.execute(stmt)), columns=["site_id", "high", "graded"])
    frame = frame.set_index("site_id").astype(float)
    return frame["high"], frame["graded"]


def _treatment_discontinuations(session: Session, study_id: str) -> pd.Series | None:
    """Enrolled subjects with a disposition event in the TREATMENT epoch other than a completion;
    None where no disposition event names the TREATMENT epoch (the source is absent)."""
    in_treatment = [
        func.upper(col(Disposition.category)) == "DISPOSITION EVENT",
        func.upper(col(Disposition.epoch)) == "TREATMENT",
    ]
    any_epoch = session.execute(
        select(func.count())
        .select_from(Disposition)
        .join(Subject, col(Subject.id) == col(Disposition.subject_pk))
        .where(col(Subject.study_id) == study_id, *in_treatment)
    ).scalar_one()
    if not any_epoch:
        return None
    stmt = (
        select(
            _site_id().label("site_id"),
            func.count(func.distinct(col(Subject.id))).label("n"),
        )
        .select_from(Disposition)
        .join(Subject, col(Subject.id) == col(Disposition.subject_pk))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(
            *_enrolled(study_id), *in_treatment, func.upper(col(Disposition.term)) != "COMPLETED"
        )
        .group_by(_site_id())
    )
    return _per_site(session, stmt)


def _eligibility(session: Session, study_id: str) -> pd.Series | None:
    """Enrolled subjects breaking a machine-checkable criterion, per site; None where the study
    has no criterion that can be checked."""
    study = studies.study_info(session, study_id=study_id)
    criteria, _ = checked_criteria(
        screen_failures.criteria_with_rules(session, study_id=study_id),
        min_age=study.min_age if study else None,
        max_age=study.max_age if study else None,
    )
    if not criteria:
        return None
    found = screen_failures.eligibility_violations(
        session, study_id=study_id, scope=None, criteria=criteria
    )
    subjects = pd.DataFrame(
        rows(
            session.execute(
                select(col(Subject.usubjid), _site_id().label("site_id"))
                .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
                .where(*_enrolled(study_id))
            )
        ),
        columns=["usubjid", "site_id"],
    )
    breaking = subjects[subjects["usubjid"].isin(found["usubjid"])]
    return breaking.groupby("site_id").size().astype(float)


def kri_counts(
    session: Session, *, study_id: str, cutoff: dt.date | None, domains: tuple[str, ...]
) -> pd.DataFrame:
    """Every KRI's numerator and denominator for every site of the study, as of ``cutoff`` (the
    cut's cut-off date; today where the cut has none). ``domains``: the SDTM domains the cut
    shipped (DV is known absent only from them). A KRI whose source is absent has its rows with
    numerator and denominator None, never zero.

    Columns: ``COUNT_COLUMNS``, one row per site and KRI, sites in SITEID order.
    """
    as_of = cutoff or dt.date.today()
    by_site = enrollment.enrollment_by_site(session, study_id=study_id, scope=None)
    sites = by_site["site_id"].astype(str).tolist()
    enrolled = by_site.set_index("site_id")["enrolled"].astype(float)
    days = days_on_study(session, study_id=study_id, cutoff=as_of)
    schedule = visits.visits_by_site(session, study_id=study_id, scope=None, as_of=as_of)
    high_labs, graded_labs = _graded_labs(session, study_id)
    has_deviations = "DV" in domains
    treatment = _treatment_discontinuations(session, study_id)
    eligibility = _eligibility(session, study_id)
    discontinued = _per_site(
        session,
        select(_site_id().label("site_id"), func.count().label("n"))
        .select_from(Subject)
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(*_enrolled(study_id), col(Subject.status) == "DISCONTINUED")
        .group_by(_site_id()),
    )
    by_visit = schedule.set_index("site_id") if not schedule.empty else None
    pairs: dict[str, tuple[pd.Series, pd.Series] | None] = {
        k.AE: (_adverse_events(session, study_id, serious=False), days),
        k.SAE: (_adverse_events(session, study_id, serious=True), days),
        k.DEVIATIONS: (_deviations(session, study_id, important=False), days)
        if has_deviations
        else None,
        k.IMPORTANT_DEVIATIONS: (_deviations(session, study_id, important=True), days)
        if has_deviations
        else None,
        k.LAB_GRADE_3: (high_labs, graded_labs) if not graded_labs.empty else None,
        k.STUDY_DISCONTINUATION: (discontinued, enrolled),
        k.TREATMENT_DISCONTINUATION: (treatment, enrolled) if treatment is not None else None,
        k.SCREEN_FAILURE: (
            by_site.set_index("site_id")["screen_failures"].astype(float),
            by_site.set_index("site_id")["screened"].astype(float),
        ),
        k.OVERDUE_VISITS: (
            by_visit["overdue"].astype(float),
            (by_visit["done"] + by_visit["overdue"]).astype(float),
        )
        if by_visit is not None
        else None,
        k.ELIGIBILITY: (eligibility, enrolled) if eligibility is not None else None,
    }
    frames = []
    for kri in k.KRIS:
        pair = pairs[kri.id]
        frame = pd.DataFrame({"site_id": sites, "kri": kri.id})
        if pair is None:
            frame["numerator"] = None
            frame["denominator"] = None
        else:
            numerator, denominator = pair
            frame["numerator"] = numerator.reindex(sites).fillna(0.0).to_numpy()
            frame["denominator"] = denominator.reindex(sites).fillna(0.0).to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[COUNT_COLUMNS]


def stored_kri_counts(session: Session, *, study_id: str) -> pd.DataFrame:
    """The KRI counts every cut of the study kept. Columns: cut_id, ``COUNT_COLUMNS``; oldest cut
    first."""
    stmt = (
        select(
            col(SiteKriCount.cut_id),
            col(SiteKriCount.site_id),
            col(SiteKriCount.kri),
            col(SiteKriCount.numerator),
            col(SiteKriCount.denominator),
        )
        .where(col(SiteKriCount.study_id) == study_id)
        .order_by(col(SiteKriCount.cut_id), col(SiteKriCount.site_id))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["cut_id", *COUNT_COLUMNS])


def cut_domains(session: Session, *, cut_id: int) -> tuple[str, ...]:
    """The domains a cut shipped (its row counts' keys)."""
    counts = session.execute(
        select(col(DataCut.row_counts)).where(col(DataCut.id) == cut_id)
    ).scalar_one_or_none()
    return tuple(sorted(str(d).upper() for d in (counts or {})))


def qtl_settings(session: Session, *, study_id: str) -> dict[str, tuple[float, float]]:
    """Each QTL parameter's (p0, z) as last set for the study, the catalogue's default where never
    set."""
    found = {qtl.id: (qtl.p0, qtl.z) for qtl in k.QTLS}
    stmt = (
        select(
            col(QualityToleranceLimit.parameter),
            col(QualityToleranceLimit.p0),
            col(QualityToleranceLimit.z),
        )
        .where(col(QualityToleranceLimit.study_id) == study_id)
        .order_by(col(QualityToleranceLimit.id))
    )
    for parameter, p0, z in session.execute(stmt).all():
        found[str(parameter)] = (float(p0), float(z))
    return found


EXCURSION_COLUMNS = [
    "id",
    "parameter",
    "cut_id",
    "value",
    "limit",
    "opened_at",
    "evaluation",
    "action",
    "evaluated_by",
    "evaluated_at",
    "closed",
]


def qtl_excursions(session: Session, *, study_id: str) -> pd.DataFrame:
    """The study's QTL excursions, open ones first, newest first. Columns: ``EXCURSION_COLUMNS``."""
    stmt = (
        select(*(col(getattr(QtlExcursion, name)) for name in EXCURSION_COLUMNS))
        .where(col(QtlExcursion.study_id) == study_id)
        .order_by(col(QtlExcursion.closed), col(QtlExcursion.id).desc())
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=EXCURSION_COLUMNS)
