"""Seeded synthetic demo studies. SYNTHETIC DATA: no real patient is behind any row.

- ``NCT06466850``: the registry facts of the real study (``studies/NCT06466850.json``, loaded
  through the ClinicalTrials.gov importer) with invented subjects: 36 screened, 16 screen failures
  over 9 criteria (3 subjects fail two), 20 enrolled, baseline findings, disposition and adverse
  events of an intra-articular injection, a planned visit schedule (``DEMO_SCHEDULE``) and the
  visits held, a few of them late or missed (``SEED_VISIT_DEVIATIONS``).
- ``DEMO-MULTI``: a 10-site, 3-arm randomized study with per-site targets and two data cuts, on the
  same visit schedule (one site lags: its overdue visits stand out).
- ``DEMO-SCALE``: the same generator at 200 sites and a chosen number of subjects.

Laboratory data (issue #21): a small LB panel (ALT, AST, BILI, CREAT, HGB) with normal ranges and
indicators at screening and at weeks 4, 12 and 24; in DEMO-MULTI flagged baseline for the whole
panel and one planted potential Hy's law case (``MULTI_HYS_LAW_CASE``) and one Temple's corollary
case (``MULTI_TEMPLE_CASE``); in the seed mostly normal values, every test flagged at screening.

Every build is seeded, so the same command gives the same figures, and each study gets two DataCuts
(an interim and the current cut) so "new since the previous cut" has something to show.
NCT06466850 and DEMO-MULTI also carry a review log (``_write_reviews``): synthetic reviewers'
marks made at the interim cut (some records since changed by the current cut: "changed since
review") and at the current cut, and queries open, answered and closed.
"""

import datetime as dt
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from dashboard import demo_scale
from dashboard.db import delete_study, fill_natural_keys
from dashboard.importers.ctgov import import_ctgov_record
from dashboard.metrics.population import DispositionEvent, classify_subject, subject_status
from dashboard.models import (
    AdverseEvent,
    Arm,
    Criterion,
    CutChange,
    DataCut,
    Disposition,
    EligibilityFinding,
    Exposure,
    Finding,
    PlannedVisit,
    ProtocolDeviation,
    ReviewEvent,
    Site,
    Study,
    Subject,
    Visit,
)
from dashboard.precomputed import rebuild_precomputed_counts
from dashboard.results.population import ENROLLED

SEED_STUDY_ID = "NCT06466850"
MULTISITE_STUDY_ID = "DEMO-MULTI"
SCALE_STUDY_ID = "DEMO-SCALE"

# ---------------------------------------------------------------------------------------------
# Deleting a study (a demo refresh replaces it whole)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# A small in-memory plan of a study, written to the database in one go
# ---------------------------------------------------------------------------------------------


@dataclass
class PlannedSubject:
    usubjid: str
    site_id: str
    screening_date: dt.date
    sex: str
    age: int
    failed: list[str] = field(default_factory=list)  # criterion codes not met
    arm_code: str | None = None
    arm: str | None = None
    enrollment_date: dt.date | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    adverse_events: list[dict[str, Any]] = field(default_factory=list)
    dispositions: list[dict[str, Any]] = field(default_factory=list)
    visits: list[tuple[float, str, int, dt.date]] = field(default_factory=list)
    deviations: list[dict[str, Any]] = field(default_factory=list)  # DV: term, category, date


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _write_study(
    session: Session,
    *,
    study: Study,
    sites: Sequence[Site],
    arms: Sequence[Arm],
    criteria: Sequence[Criterion],
    subjects: Sequence[PlannedSubject],
    treatment: str,
    dose_unit: str,
    route: str,
    interim_cutoff: dt.date,
    cutoff: dt.date,
    schedule: Sequence[tuple[float, str, int]] = (),
    ships_dv: bool = False,
) -> None:
    """Write a planned study with two DataCuts: rows dated after ``interim_cutoff`` are new in cut 2.

    The study, sites, arms and criteria may be new or already in the session (the seed study's come
    from the registry importer); the caller removes any earlier copy of the study first.
    ``schedule``: the planned visits (VISITNUM, VISIT, planned study day), every arm.
    ``ships_dv``: the cuts hold a DV domain (row_counts has "DV", 0 included), as an SDTM package
    with dv.xpt would: a study without one has no protocol-deviation KRIs, not zero deviations.
    """
    # No ORM relationships are declared, so parents are flushed before their children.
    session.add(study)
    session.flush()
    session.add_all([*sites, *arms, *criteria])
    session.add_all(
        PlannedVisit(study_id=study.study_id, visit_num=number, visit=name, planned_day=day)
        for number, name, day in schedule
    )
    loaded = dt.datetime.combine(cutoff, dt.time(9, 0), tzinfo=dt.UTC)
    interim = DataCut(
        study_id=study.study_id,
        loaded_at=dt.datetime.combine(interim_cutoff, dt.time(9, 0), tzinfo=dt.UTC)
        + dt.timedelta(days=7),
        cutoff_date=interim_cutoff,
        label="Interim cut (synthetic demo)",
        source=[{"file": "dashboard/demo.py", "sha256": None}],
    )
    current = DataCut(
        study_id=study.study_id,
        loaded_at=loaded + dt.timedelta(days=7),
        cutoff_date=cutoff,
        label="Current cut (synthetic demo)",
        source=[{"file": "dashboard/demo.py", "sha256": None}],
    )
    session.add_all([interim, current])
    session.flush()
    assert interim.id is not None and current.id is not None
    site_pk = {s.site_id: s.id for s in sites}
    criterion_pk = {c.code: c.id for c in criteria if c.id is not None}

    def cut_for(day: dt.date | None) -> int:
        return interim.id if day is not None and day <= interim_cutoff else current.id  # type: ignore[return-value]

    changes: list[CutChange] = []
    counts = {"DM": 0, "IE": 0, "DS": 0, "AE": 0, "EX": 0, "SV": 0, "FINDINGS": 0}
    interim_counts = {"DM": 0, "AE": 0}  # the demo tracks subjects and AEs across cuts
    if ships_dv:
        counts["DV"] = interim_counts["DV"] = 0
    for planned in subjects:
        ds_events = [
            DispositionEvent(d["category"], d["term"], d["epoch"], d["date"])
            for d in planned.dispositions
        ]
        population = classify_subject(
            arm_code=planned.arm_code,
            arm=planned.arm,
            arm_not_assigned_reason="SCREEN FAILURE" if planned.failed else None,
            has_screen_failure_disposition=bool(planned.failed),
            enrollment_dtc=_iso(planned.enrollment_date),
        )
        # The latest date anything happened to this subject decides when its row last changed.
        last_event = max(
            [planned.screening_date]
            + [d for d in (planned.enrollment_date,) if d]
            + [d["date"] for d in planned.dispositions if d["date"] <= cutoff]
        )
        first_cut = cut_for(planned.screening_date)
        subject = Subject(
            study_id=study.study_id,
            site_pk=site_pk[planned.site_id],
            usubjid=planned.usubjid,
            subjid=planned.usubjid.rsplit("-", 1)[-1],
            screening_dtc=_iso(planned.screening_date),
            screening_date=planned.screening_date,
            consent_dtc=_iso(planned.screening_date),
            enrollment_dtc=_iso(planned.enrollment_date),
            enrollment_date=planned.enrollment_date,
            first_dose_dtc=_iso(planned.enrollment_date),
            first_dose_date=planned.enrollment_date,
            arm_code=planned.arm_code,
            arm=planned.arm,
            actual_arm_code=planned.arm_code,
            actual_arm=planned.arm,
            arm_not_assigned_reason="SCREEN FAILURE" if planned.failed else None,
            population=population,
            status=subject_status(
                population, [e for e in ds_events if e.date and e.date <= cutoff]
            ),
            sex=planned.sex,
            age=planned.age,
            age_unit="YEARS",
            country=next(s.country for s in sites if s.site_id == planned.site_id),
            first_cut_id=first_cut,
            updated_cut_id=cut_for(last_event),
        )
        session.add(subject)
        session.flush()
        assert subject.id is not None
        counts["DM"] += 1
        if first_cut == interim.id:
            interim_counts["DM"] += 1
            if subject.updated_cut_id == current.id:
                changes.append(
                    CutChange(
                        cut_id=current.id,
                        entity="subject",
                        natural_key=planned.usubjid,
                        change="changed",
                        fields={"last_event": [None, last_event.isoformat()]},
                    )
                )
        else:
            changes.append(
                CutChange(
                    cut_id=current.id, entity="subject", natural_key=planned.usubjid, change="added"
                )
            )
        for code in planned.failed:
            session.add(
                EligibilityFinding(
                    subject_pk=subject.id,
                    criterion_pk=criterion_pk[code],
                    result="N" if code.startswith("IN") else "Y",
                    assessed_dtc=_iso(planned.screening_date),
                    assessed_date=planned.screening_date,
                    first_cut_id=first_cut,
                    updated_cut_id=first_cut,
                )
            )
            counts["IE"] += 1
        for seq, d in enumerate(planned.dispositions, start=1):
            if d["date"] > cutoff:
                continue
            session.add(
                Disposition(
                    subject_pk=subject.id,
                    seq=seq,
                    category=d["category"],
                    term=d["term"],
                    verbatim=d.get("verbatim", d["term"]),
                    epoch=d["epoch"],
                    dtc=_iso(d["date"]),
                    date=d["date"],
                    first_cut_id=cut_for(d["date"]),
                    updated_cut_id=cut_for(d["date"]),
                )
            )
            counts["DS"] += 1
        for finding in planned.findings:
            session.add(Finding(subject_pk=subject.id, **finding))
            counts["FINDINGS"] += 1
        if planned.enrollment_date and population == ENROLLED:
            session.add(
                Exposure(
                    subject_pk=subject.id,
                    treatment=treatment,
                    dose=2.0 if planned.arm_code != "PBO" else 0.0,
                    unit=dose_unit,
                    route=route,
                    start_dtc=_iso(planned.enrollment_date),
                    start_date=planned.enrollment_date,
                    end_dtc=_iso(planned.enrollment_date),
                    end_date=planned.enrollment_date,
                )
            )
            counts["EX"] += 1
        for visit_num, visit_name, planned_day, visit_date in planned.visits:
            if visit_date > cutoff:
                continue
            session.add(
                Visit(
                    subject_pk=subject.id,
                    visit_num=visit_num,
                    visit=visit_name,
                    planned_day=planned_day,
                    dtc=_iso(visit_date),
                    date=visit_date,
                )
            )
            counts["SV"] += 1
        for seq, ae in enumerate(planned.adverse_events, start=1):
            start = ae["start_date"]
            if start > cutoff:
                continue
            end = ae.get("end_date")
            if end is not None and end > cutoff:
                end = None  # still ongoing at the cut-off
            ae_cut = cut_for(start)
            session.add(
                AdverseEvent(
                    subject_pk=subject.id,
                    seq=seq,
                    term=ae["term"],
                    decoded_term=ae["decoded_term"],
                    body_system=ae["body_system"],
                    severity=ae["severity"],
                    grade=ae["grade"],
                    serious=ae["serious"],
                    serious_hospitalisation="Y" if ae["serious"] == "Y" else "N",
                    relationship=ae["relationship"],
                    outcome=ae["outcome"] if end else "NOT RECOVERED/NOT RESOLVED",
                    action=ae.get("action", "NOT APPLICABLE"),
                    start_dtc=_iso(start),
                    start_date=start,
                    end_dtc=_iso(end),
                    end_date=end,
                    start_day=(start - planned.enrollment_date).days + 1
                    if planned.enrollment_date and start >= planned.enrollment_date
                    else None,
                    first_cut_id=ae_cut,
                    updated_cut_id=ae_cut,
                )
            )
            counts["AE"] += 1
            if ae_cut == interim.id:
                interim_counts["AE"] += 1
            else:
                changes.append(
                    CutChange(
                        cut_id=current.id,
                        entity="ae",
                        natural_key=f"{planned.usubjid}/{seq}",
                        change="added",
                    )
                )
        for seq, deviation in enumerate(planned.deviations, start=1):
            if deviation["date"] > cutoff:
                continue
            session.add(
                ProtocolDeviation(
                    subject_pk=subject.id,
                    seq=seq,
                    term=deviation["term"],
                    decoded_term=deviation["term"],
                    category=deviation["category"],
                    important=deviation["category"] == "MAJOR",
                    start_dtc=_iso(deviation["date"]),
                    start_date=deviation["date"],
                )
            )
            counts["DV"] += 1
            if deviation["date"] <= interim_cutoff:
                interim_counts["DV"] += 1
    interim.row_counts = interim_counts
    current.row_counts = counts
    session.add_all(changes)
    session.add_all([interim, current])
    session.flush()
    # The natural keys an SDTM import would give AE, IE and DS (review marks are keyed to them).
    fill_natural_keys(session.connection())
    rebuild_precomputed_counts(session, study.study_id)
    _write_reviews(session, study_id=study.study_id, interim=interim, current=current)


# Review (issue #20): synthetic reviewers, so a first visit shows marks and queries.
DEMO_MEDICAL_MONITOR = "mm@demo.example"
DEMO_CRA = "cra@demo.example"
DEMO_DATA_MANAGER = "dm@demo.example"
DEMO_SITE_USER = "site@demo.example"
DEMO_MARKS = 3  # records of each kind marked (below)


def _review_records(session: Session, study_id: str, entity: str) -> list[dict[str, Any]]:
    """natural_key, site_id, first and updated cut, serious of the study's ``entity`` records,
    by natural key (the demo's choice of records to review is then seeded by the data alone)."""
    table: Any = {"ae": AdverseEvent, "ie": EligibilityFinding}.get(entity)
    if table is None:
        key, first, updated = (
            col(Subject.usubjid),
            col(Subject.first_cut_id),
            col(Subject.updated_cut_id),
        )
        serious: Any = col(Subject.usubjid).is_(None)  # subjects: never serious
        stmt = select(key, col(Site.site_id), first, updated, serious)
    else:
        key, first, updated = (
            col(table.natural_key),
            col(table.first_cut_id),
            col(table.updated_cut_id),
        )
        serious = col(AdverseEvent.serious) == "Y" if entity == "ae" else col(table.id).is_(None)
        stmt = select(key, col(Site.site_id), first, updated, serious).join(
            Subject, col(Subject.id) == col(table.subject_pk)
        )
    stmt = (
        stmt.outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(col(Subject.study_id) == study_id)
        .order_by(key)
    )
    return [
        {"key": k, "site_id": site, "first": f, "updated": u or f, "serious": bool(sae)}
        for k, site, f, u, sae in session.execute(stmt).all()
    ]


def _spread(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``DEMO_MARKS`` of ``records``, from as many sites as there are (the first record of each
    site in turn), so each site's users find some of the demo's reviews."""
    by_site: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        by_site.setdefault(record["site_id"], []).append(record)
    rounds = max((len(kept) for kept in by_site.values()), default=0)
    spread = [kept[i] for i in range(rounds) for kept in by_site.values() if i < len(kept)]
    return spread[:DEMO_MARKS]


def _write_reviews(session: Session, *, study_id: str, interim: DataCut, current: DataCut) -> None:
    """Review marks and queries of synthetic reviewers (``ReviewEvent`` rows, as
    ``dashboard.review`` writes them): subjects a CRA reviewed at the interim cut, of which the
    current cut changed some (now "changed since review") and not others (still reviewed); AEs
    the medical monitor reviewed at either cut (the SAEs of the current cut left unreviewed, so
    the pack lists some); and queries open, answered and closed."""
    assert interim.id is not None and current.id is not None
    after_interim = interim.loaded_at + dt.timedelta(days=2)
    after_current = current.loaded_at + dt.timedelta(days=1)
    subjects = _review_records(session, study_id, "subject")
    aes = _review_records(session, study_id, "ae")
    findings = _review_records(session, study_id, "ie")
    at_interim = [s for s in subjects if s["first"] == interim.id]
    changed = _spread([s for s in at_interim if s["updated"] == current.id])
    unchanged = _spread([s for s in at_interim if s["updated"] == interim.id])
    old_aes = _spread([a for a in aes if a["updated"] == interim.id])
    new_aes = _spread([a for a in aes if a["updated"] == current.id and not a["serious"]])

    def marked(record: dict[str, Any], *, entity: str, email: str, role: str, at: dt.datetime,
               cut: int) -> ReviewEvent:  # fmt: skip
        return ReviewEvent(
            at=at, email=email, role=role, study_id=study_id, site_id=record["site_id"],
            entity=entity, natural_key=record["key"], kind="reviewed", record_cut_id=cut,
        )  # fmt: skip

    session.add_all(
        [
            *(
                marked(
                    s,
                    entity="subject",
                    email=DEMO_CRA,
                    role="cra",
                    at=after_interim,
                    cut=interim.id,
                )
                for s in [*changed, *unchanged]
            ),
            *(
                marked(
                    a,
                    entity="ae",
                    email=DEMO_MEDICAL_MONITOR,
                    role="medical-monitor",
                    at=after_interim,
                    cut=interim.id,
                )
                for a in old_aes
            ),
            *(
                marked(
                    a,
                    entity="ae",
                    email=DEMO_MEDICAL_MONITOR,
                    role="medical-monitor",
                    at=after_current,
                    cut=current.id,
                )
                for a in new_aes
            ),
        ]
    )
    session.flush()
    # Queries: (record, entity, audience, asker, asker's role, question, replies), each reply
    # (kind, e-mail, role, text) a day after the one before.
    saes = [a for a in aes if a["serious"]]
    on_sae = (saes or aes or subjects)[0]
    on_subject = (changed or subjects)[-1]
    on_finding = (findings or subjects)[len(findings) // 2]
    on_ae = (aes or subjects)[-1]
    threads: list[tuple[dict[str, Any], str, str, str, str, str, list[tuple[str, str, str, str]]]]
    threads = [
        (
            on_sae, "ae" if saes or aes else "subject", "site", DEMO_MEDICAL_MONITOR,
            "medical-monitor",
            "Please confirm the onset date and the hospitalisation dates against the source "
            "(synthetic demo query).",
            [],
        ),
        (
            on_subject, "subject", "site", DEMO_CRA, "cra",
            "The consent date changed since the interim cut: please confirm it against the "
            "signed consent form (synthetic demo query).",
            [("answer", DEMO_SITE_USER, "site",
              "Confirmed: the earlier entry was a transcription error (synthetic demo answer).")],
        ),
        (
            on_finding, "ie" if findings else "subject", "data-management", DEMO_CRA, "cra",
            "The result of this eligibility finding is blank in the listing: please check the "
            "export (synthetic demo query).",
            [],
        ),
        (
            on_ae, "ae" if aes else "subject", "medical-monitor", DEMO_DATA_MANAGER, "data-manager",
            "Is the coded term right for this verbatim term? (synthetic demo query)",
            [
                ("answer", DEMO_MEDICAL_MONITOR, "medical-monitor",
                 "Yes, the coding is right (synthetic demo answer)."),
                ("close", DEMO_DATA_MANAGER, "data-manager", "Thank you: closed."),
            ],
        ),
    ]  # fmt: skip
    for number, (record, entity, audience, email, role, text, replies) in enumerate(threads):
        opened_at = after_current + dt.timedelta(hours=number)
        query = ReviewEvent(
            at=opened_at, email=email, role=role, study_id=study_id,
            site_id=record["site_id"], entity=entity, natural_key=record["key"], kind="query",
            record_cut_id=record["updated"], audience=audience, text=text,
        )  # fmt: skip
        session.add(query)
        session.flush()
        for step, (kind, by, by_role, reply) in enumerate(replies, start=1):
            session.add(
                ReviewEvent(
                    at=opened_at + dt.timedelta(days=step),
                    email=by,
                    role=by_role,
                    study_id=study_id,
                    site_id=record["site_id"],
                    entity=entity,
                    natural_key=record["key"],
                    kind=kind,
                    thread_id=query.id,
                    text=reply,
                )
            )
    session.flush()


# ---------------------------------------------------------------------------------------------
# NCT06466850: MSC-derived exosomes in knee osteoarthritis (single site, single group, open label)
# ---------------------------------------------------------------------------------------------

# The registry gives no dates: these are assumed for the demo and stated on the Overview page.
SEED_PLANNED_START = dt.date(2024, 10, 1)
SEED_PLANNED_END = dt.date(2025, 9, 30)
SEED_INTERIM_CUTOFF = dt.date(2025, 4, 30)
SEED_CUTOFF = dt.date(2025, 11, 30)

# Machine-checkable rules of the criteria whose values the demo records (used by #5's checks).
SEED_RULES = {
    "INCL01": "PAINDUR >= 3 months",
    "INCL02": "BMI between 21.5 and 29.5 kg/m2",
    "INCL03": "KLGRADE between 1 and 3 (each knee)",
    "EXCL07": "HGB < 10 g/dL",
}

# Which criteria each of the 16 screen failures did not meet (3 subjects fail two). EXCL03 is failed
# by nobody on purpose: the Screen failures page must list a zero too.
SEED_FAILURES: tuple[tuple[str, ...], ...] = (
    ("INCL02",),
    ("INCL02",),
    ("INCL02", "EXCL06"),
    ("INCL02",),
    ("INCL02",),
    ("INCL03",),
    ("INCL03", "EXCL02"),
    ("INCL03",),
    ("EXCL01",),
    ("EXCL01", "EXCL05"),
    ("EXCL02",),
    ("EXCL06",),
    ("EXCL06",),
    ("EXCL07",),
    ("INCL01",),
    ("EXCL04",),
)
SEED_ENROLLED = 20
# One enrolled subject whose screening BMI (30.1) is above the protocol's 29.5: a protocol deviation
# the eligibility checks of the Screen failures page must catch (and nobody else).
SEED_BMI_DEVIATION_INDEX = 5  # the sixth enrolled subject
SEED_DEVIATION_BMI = 30.1

# Adverse events of an intra-articular injection: (enrolled subject index, days after injection,
# duration in days or None if ongoing, PT, SOC, severity, CTCAE grade, serious, relationship, outcome)
_GEN = "General disorders and administration site conditions"
_MSK = "Musculoskeletal and connective tissue disorders"
_NERV = "Nervous system disorders"
_INF = "Infections and infestations"
SEED_ADVERSE_EVENTS: tuple[tuple[int, int, int | None, str, str, str, str, str, str], ...] = (
    (0, 0, 2, "Injection site pain", _GEN, "MILD", "1", "N", "RELATED"),
    (0, 1, 5, "Joint swelling", _MSK, "MILD", "1", "N", "PROBABLY RELATED"),
    (1, 0, 3, "Injection site pain", _GEN, "MODERATE", "2", "N", "RELATED"),
    (2, 1, 4, "Arthralgia", _MSK, "MODERATE", "2", "N", "POSSIBLY RELATED"),
    (3, 0, 1, "Injection site erythema", _GEN, "MILD", "1", "N", "RELATED"),
    (4, 1, 7, "Joint effusion", _MSK, "MODERATE", "2", "N", "POSSIBLY RELATED"),
    (4, 2, 1, "Pyrexia", _GEN, "MILD", "1", "N", "POSSIBLY RELATED"),
    (6, 12, 2, "Headache", _NERV, "MILD", "1", "N", "UNLIKELY RELATED"),
    (7, 0, 2, "Injection site pain", _GEN, "MILD", "1", "N", "RELATED"),
    (9, 40, 6, "Nasopharyngitis", _INF, "MILD", "1", "N", "NOT RELATED"),
    (10, 1, 3, "Arthralgia", _MSK, "MILD", "1", "N", "POSSIBLY RELATED"),
    (12, 75, 9, "Appendicitis", _INF, "SEVERE", "3", "Y", "NOT RELATED"),
    (13, 0, 2, "Injection site pain", _GEN, "MILD", "1", "N", "RELATED"),
    (13, 30, None, "Back pain", _MSK, "MILD", "1", "N", "NOT RELATED"),
    (15, 1, 4, "Joint swelling", _MSK, "MODERATE", "2", "N", "PROBABLY RELATED"),
    (17, 0, 1, "Injection site pain", _GEN, "MILD", "1", "N", "RELATED"),
    (18, 20, 3, "Headache", _NERV, "MILD", "1", "N", "NOT RELATED"),
)

# The planned visits of both demos (PlannedVisit rows; exported as TV): VISITNUM, VISIT, planned
# study day (day 1 = the injection, no day 0). Screening falls 7 to 21 days before the injection,
# so day -14 with the default window of ±7 days. The schedule gives no windows: the user's setting
# applies.
DEMO_SCHEDULE: tuple[tuple[float, str, int], ...] = (
    (1.0, "SCREENING", -14),
    (2.0, "DAY 1 (INJECTION)", 1),
    (3.0, "WEEK 1", 8),
    (4.0, "WEEK 4", 29),
    (5.0, "WEEK 12", 85),
    (6.0, "WEEK 24 (FOLLOW-UP)", 169),
)
SEED_COMPLETION_DAY = 181  # end of study: the month-6 closing contact, after the week-24 visit
# Visits the seed study's sites did not keep (enrolled subject index, VISIT, days late or None for
# not held), so the visit schedule has something to flag at the cut-off: two ongoing subjects
# overdue for week 12, one week-4 visit held two weeks late, one completer who missed week 4.
SEED_VISIT_DEVIATIONS: tuple[tuple[int, str, int | None], ...] = (
    (14, "WEEK 12", None),
    (18, "WEEK 12", None),
    (19, "WEEK 4", 14),
    (9, "WEEK 4", None),
)


def _held_visits(
    schedule: Sequence[tuple[float, str, int]],
    *,
    screened_on: dt.date,
    day_one: dt.date,
    left_on: dt.date | None,
    shift: dict[str, int | None],
) -> list[tuple[float, str, int, dt.date]]:
    """The SV rows of one enrolled subject: every planned visit on its day (screening on the
    screening date) moved by ``shift`` days or left out where ``shift`` says None, and none on or
    after the day the subject left the study."""
    held = []
    for number, name, day in schedule:
        on = screened_on if day < 1 else day_one + dt.timedelta(days=day - 1)
        if name in shift:
            late = shift[name]
            if late is None:
                continue
            on += dt.timedelta(days=late)
        if left_on is not None and on >= left_on:
            continue
        held.append((number, name, day, on))
    return held


# ---------------------------------------------------------------------------------------------
# Laboratory values (issue #21): a small panel with normal ranges, so the Labs page has shifts,
# abnormal values and an eDISH plot to show. SYNTHETIC, like everything here.
# ---------------------------------------------------------------------------------------------


# test code: (name, category, SI unit, decimals, typical value, spread (lognormal sigma) and the
# normal range (LLN, ULN) for women and for men). Reference ranges as commonly printed by adult
# laboratories; the demo's own, not any laboratory's.
# No specimen: it would enter the measurement's name, and the seed's baseline haemoglobin has none.
class _LabTest(NamedTuple):
    name: str
    category: str
    unit: str
    decimals: int
    typical: float  # the population's (women's; men's creatinine and haemoglobin are higher)
    spread: float  # lognormal sigma
    female: tuple[float, float]  # (LLN, ULN)
    male: tuple[float, float]

    def limits(self, sex: str) -> tuple[float, float]:
        return self.female if sex == "F" else self.male


_LAB_PANEL: dict[str, _LabTest] = {
    "ALT": _LabTest("Alanine Aminotransferase", "CHEMISTRY", "U/L", 0, 21, 0.30, (7, 40), (7, 40)),
    "AST": _LabTest(
        "Aspartate Aminotransferase", "CHEMISTRY", "U/L", 0, 23, 0.25, (10, 40), (10, 40)
    ),
    "BILI": _LabTest("Bilirubin", "CHEMISTRY", "umol/L", 0, 9, 0.35, (3, 21), (3, 21)),
    "CREAT": _LabTest("Creatinine", "CHEMISTRY", "umol/L", 0, 72, 0.15, (45, 90), (60, 110)),
    "HGB": _LabTest("Hemoglobin", "HEMATOLOGY", "g/L", 0, 138, 0.07, (120, 160), (135, 175)),
}
# Hemoglobin in the seed study's own unit (its screening criterion reads g/dL): baseline and later
# values of one measurement must share a unit.
_SEED_LAB_PANEL: dict[str, _LabTest] = {
    **_LAB_PANEL,
    "HGB": _LabTest("Hemoglobin", "HEMATOLOGY", "g/dL", 1, 13.8, 0.07, (12.0, 16.0), (13.5, 17.5)),
}
# The chemistry's natural values stay below these multiples of the ULN, so that the liver cases
# of the eDISH plot are exactly the planted ones (HYS_LAW_RULE: ALT or AST >= 3 x ULN, bilirubin
# >= 2 x ULN).
_NATURAL_CAP_ULN = {"ALT": 2.4, "AST": 2.4, "BILI": 1.6}
# Laboratory draws at these visits after the injection (and at screening where baseline is kept).
_LAB_VISITS = ("WEEK 4", "WEEK 12", "WEEK 24 (FOLLOW-UP)")
_SEED_LAB_VISITS = ("WEEK 4", "WEEK 12")
# DEMO-MULTI's planted liver cases (the subject must be treated and have the visit held by the
# cut-off; with other build parameters a case that does not fit is left out): usubjid, visit,
# ALT, AST and bilirubin as multiples of the ULN.
MULTI_HYS_LAW_CASE = "DEMO-MULTI-102-0007"  # high dose, at week 12
MULTI_TEMPLE_CASE = "DEMO-MULTI-109-0003"  # low dose, at week 4
_MULTI_LIVER_CASES = (
    (MULTI_HYS_LAW_CASE, "WEEK 12", 5.2, 4.1, 2.8),
    (MULTI_TEMPLE_CASE, "WEEK 4", 3.6, 2.2, 1.1),
)


def _range_indicator(value: float, low: float | None, high: float | None) -> str:
    """LBNRIND of a value against its normal range."""
    if low is not None and value < low:
        return "LOW"
    if high is not None and value > high:
        return "HIGH"
    return "NORMAL"


def _lab_row(
    panel: Mapping[str, _LabTest],
    code: str,
    value: float,
    *,
    sex: str,
    day: dt.date,
    day_one: dt.date,
    visit: str,
    visit_number: float,
    baseline: bool,
) -> dict[str, Any]:
    """One LB finding of the panel with its range, indicator, visit and study day."""
    test = panel[code]
    low, high = test.limits(sex)
    return {
        "domain": "LB",
        "test_code": code,
        "test": test.name,
        "category": test.category,
        "value_num": value,
        "value_text": f"{value:g}",
        "unit": test.unit,
        "normal_low": float(low),
        "normal_high": float(high),
        "normal_indicator": _range_indicator(value, low, high),
        "visit": visit,
        "visit_number": visit_number,
        "dtc": day.isoformat(),
        "date": day,
        "study_day": _study_day(day, day_one),
        "is_baseline": baseline,
    }


def _study_day(day: dt.date, day_one: dt.date) -> int:
    """--DY: day 1 is the first dose, the day before it day -1 (no day 0)."""
    offset = (day - day_one).days
    return offset + 1 if offset >= 0 else offset


def _natural_value(
    rng: random.Random,
    panel: Mapping[str, _LabTest],
    code: str,
    sex: str,
    typical: float | None = None,
) -> float:
    """A value of the panel around the subject's own ``typical`` (else the population's), kept
    below ``_NATURAL_CAP_ULN``: a few above the ULN, none a liver case."""
    test = panel[code]
    centre = test.typical
    if code == "CREAT" and sex == "M":
        centre *= 1.2
    if code == "HGB" and sex == "M":
        centre *= 1.08
    # At a visit, the subject's own level varied by about 8%; else a draw from the population.
    value = (
        typical * rng.gauss(1.0, 0.08)
        if typical is not None
        else rng.lognormvariate(np.log(centre), test.spread)
    )
    value = min(value, _NATURAL_CAP_ULN.get(code, np.inf) * test.limits(sex)[1])
    return round(max(value, 10.0**-test.decimals), test.decimals)


def _lab_findings(
    rng: random.Random,
    planned: PlannedSubject,
    *,
    panel: Mapping[str, _LabTest],
    cutoff: dt.date,
    tests: Sequence[str],
    baseline_tests: Sequence[str],
    visits: Sequence[str],
    liver_case: tuple[str, float, float, float] | None = None,
    typical: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """An enrolled subject's LB panel: ``baseline_tests`` at screening (flagged baseline), every
    test at each of ``visits`` held by the cut-off, each near the subject's own level. A
    ``liver_case`` (visit, ALT, AST, bilirubin x ULN) replaces the liver values at that visit.
    ``typical``: levels already recorded (the seed's screening haemoglobin)."""
    day_one = planned.enrollment_date
    if day_one is None:
        return []
    rows: list[dict[str, Any]] = []
    level = {code: _natural_value(rng, panel, code, planned.sex) for code in tests}
    level.update(typical or {})
    for code in baseline_tests:
        rows.append(
            _lab_row(
                panel,
                code,
                level[code],
                sex=planned.sex,
                day=planned.screening_date,
                day_one=day_one,
                visit="SCREENING",
                visit_number=1.0,
                baseline=True,
            )
        )
    for number, name, _, held_on in planned.visits:
        if name not in visits or held_on > cutoff:
            continue
        for code in tests:
            value = _natural_value(rng, panel, code, planned.sex, level[code])
            if liver_case is not None and liver_case[0] == name and code in ("ALT", "AST", "BILI"):
                ratio = dict(zip(("ALT", "AST", "BILI"), liver_case[1:], strict=True))[code]
                high = panel[code].limits(planned.sex)[1]
                value = round(ratio * high, panel[code].decimals)
            rows.append(
                _lab_row(
                    panel,
                    code,
                    value,
                    sex=planned.sex,
                    day=held_on,
                    day_one=day_one,
                    visit=name,
                    visit_number=number,
                    baseline=False,
                )
            )
    return rows


def _label_seed_haemoglobin(planned: PlannedSubject) -> float:
    """Give the seed's screening haemoglobin (g/dL, read by EXCL07) its normal range, indicator,
    VISITNUM and study day; returns the value (the subject's level for the later draws)."""
    row = next(f for f in planned.findings if f["test_code"] == "HGB")
    low, high = _SEED_LAB_PANEL["HGB"].limits(planned.sex)
    row.update(
        category="HEMATOLOGY",
        normal_low=low,
        normal_high=high,
        normal_indicator=_range_indicator(row["value_num"], low, high),
        visit_number=1.0,
        study_day=_study_day(row["date"], planned.enrollment_date)
        if planned.enrollment_date
        else None,
    )
    return float(row["value_num"])


def seed_record() -> dict[str, Any]:
    """The NCT06466850 registry record shipped as package data."""
    text = resources.files("dashboard.studies").joinpath("NCT06466850.json").read_text("utf-8")
    record: dict[str, Any] = json.loads(text)
    return record


def _import_seed_study(session: Session) -> tuple[Study, Site, list[Criterion]]:
    """The NCT06466850 study, its site and criteria as the registry importer writes them, with the
    demo's own facts on top: synthetic, assumed dates, readable design and intervention, rules."""
    record = seed_record()
    import_ctgov_record(session, record, source="dashboard/studies/NCT06466850.json")
    study = session.get(Study, SEED_STUDY_ID)
    assert study is not None  # the record's NCT id is the seed study's id
    study.is_synthetic = True
    study.planned_start = SEED_PLANNED_START
    study.planned_end = SEED_PLANNED_END
    study.design = "Single group assignment, open label"
    study.intervention = "Biological: MSC-derived exosomes (intra-articular)"
    criteria = list(
        session.scalars(
            select(Criterion)
            .where(col(Criterion.study_id) == SEED_STUDY_ID)
            .order_by(col(Criterion.seq))
        )
    )
    for criterion in criteria:
        criterion.rule = SEED_RULES.get(criterion.code)
    site = session.scalars(
        select(Site).where(col(Site.study_id) == SEED_STUDY_ID, col(Site.site_id) == "01")
    ).one()
    # The registry names the country in words; the demo uses ISO 3166 alpha-3 codes like DM.COUNTRY.
    site.country = "IRN"
    site.activated_on = SEED_PLANNED_START
    site.planned_enrollment = study.planned_enrollment
    session.add_all([study, site, *criteria])
    return study, site, criteria


def _screening_findings(
    rng: random.Random,
    failed: Sequence[str],
    enrolled: bool,
    day: dt.date,
    *,
    bmi_override: float | None = None,
) -> list[dict[str, Any]]:
    """Screening values consistent with the criteria the subject failed (or met), unless
    ``bmi_override`` plants a protocol deviation."""
    # BMI inside 21.5-29.5 unless INCL02 failed; then clearly outside, mostly above (obesity is the
    # usual reason in knee OA).
    if "INCL02" in failed:
        bmi = round(rng.choice([rng.uniform(30.2, 34.5), rng.uniform(30.0, 32.0), 20.6]), 1)
    else:
        bmi = round(rng.uniform(22.0, 29.3), 1)
    if bmi_override is not None:
        bmi = bmi_override  # drawn first all the same, so every other value stays as it was
    height = round(rng.uniform(152, 182), 0)
    weight = round(bmi * (height / 100) ** 2, 1)
    # K-L grade: the criterion allows 1-3, the arm description says enrolled patients have grade 2-3
    # in both knees. Eligibility follows the criterion; enrolled subjects are made grade 2-3, as the
    # arm says, and INCL03 failures have a grade-4 knee.
    if "INCL03" in failed:
        kl = {"LEFT KNEE": 4, "RIGHT KNEE": rng.choice([3, 4])}
    elif enrolled:
        kl = {"LEFT KNEE": rng.choice([2, 3]), "RIGHT KNEE": rng.choice([2, 3])}
    else:
        kl = {"LEFT KNEE": rng.choice([1, 2, 3]), "RIGHT KNEE": rng.choice([1, 2, 3])}
    pain_months = 2 if "INCL01" in failed else rng.choice([4, 6, 8, 12, 18, 24, 36, 60])
    hgb = (
        round(rng.uniform(8.6, 9.7), 1) if "EXCL07" in failed else round(rng.uniform(11.2, 15.8), 1)
    )
    common = {"visit": "SCREENING", "dtc": day.isoformat(), "date": day, "is_baseline": enrolled}
    rows: list[dict[str, Any]] = [
        {
            "domain": "VS",
            "test_code": "HEIGHT",
            "test": "Height",
            "value_num": height,
            "unit": "cm",
        },
        {
            "domain": "VS",
            "test_code": "WEIGHT",
            "test": "Weight",
            "value_num": weight,
            "unit": "kg",
        },
        {
            "domain": "VS",
            "test_code": "BMI",
            "test": "Body Mass Index",
            "value_num": bmi,
            "unit": "kg/m2",
        },
        {
            "domain": "LB",
            "test_code": "HGB",
            "test": "Hemoglobin",
            "value_num": hgb,
            "unit": "g/dL",
        },
        {
            "domain": "SC",
            "test_code": "PAINDUR",
            "test": "Duration of Knee Pain",
            "value_num": float(pain_months),
            "unit": "months",
        },
        {
            "domain": "QS",
            "test_code": "VASPAIN",
            "test": "Pain VAS (0-100)",
            "value_num": float(rng.randint(35, 80)),
            "unit": "mm",
        },
        {
            "domain": "QS",
            "test_code": "WOMACTOT",
            "test": "WOMAC Total Score (0-96)",
            "value_num": float(rng.randint(28, 68)),
            "unit": None,
        },
    ]
    for knee, grade in kl.items():
        rows.append(
            {
                "domain": "MK",
                "test_code": "KLGRADE",
                "test": "Kellgren-Lawrence Grade",
                "location": knee,
                "value_num": float(grade),
                "unit": None,
            }
        )
    for row in rows:
        row.update(common)
        row["value_text"] = f"{row['value_num']:g}"
    return rows


def build_seed_study(session: Session, *, seed: int = 6466850) -> None:
    """(Re)create the NCT06466850 demo study: registry facts plus synthetic subjects."""
    rng = random.Random(seed)
    delete_study(session, SEED_STUDY_ID)
    study, site, criteria = _import_seed_study(session)
    arm = Arm(
        study_id=SEED_STUDY_ID,
        arm_code="EXO",
        arm="Exosome",
        description="Intra-articular MSC-derived exosomes; K-L grade 2-3 in both knees",
        planned_n=study.planned_enrollment,
    )
    # Interleave failures and enrollments over a ~10-month recruitment period.
    total = len(SEED_FAILURES) + SEED_ENROLLED
    outcomes: list[tuple[str, ...] | None] = [*SEED_FAILURES, *([None] * SEED_ENROLLED)]
    rng.shuffle(outcomes)
    span = (dt.date(2025, 7, 25) - dt.date(2024, 10, 8)).days
    days = sorted(rng.sample(range(span), total))
    subjects: list[PlannedSubject] = []
    enrolled_index = 0
    for number, (failed, offset) in enumerate(zip(outcomes, days, strict=True), start=1):
        screened_on = dt.date(2024, 10, 8) + dt.timedelta(days=offset)
        planned = PlannedSubject(
            usubjid=f"{SEED_STUDY_ID}-01-{number:03d}",
            site_id="01",
            screening_date=screened_on,
            sex=rng.choice(["F", "F", "F", "M", "M"]),  # knee OA is commoner in women
            age=rng.randint(47, 74),
            failed=list(failed or ()),
        )
        planned.dispositions.append(
            {
                "category": "PROTOCOL MILESTONE",
                "term": "INFORMED CONSENT OBTAINED",
                "epoch": "SCREENING",
                "date": screened_on,
            }
        )
        if failed:
            planned.dispositions.append(
                {
                    "category": "DISPOSITION EVENT",
                    "term": "SCREEN FAILURE",
                    "epoch": "SCREENING",
                    "date": screened_on + dt.timedelta(days=rng.randint(3, 10)),
                }
            )
        else:
            injected = screened_on + dt.timedelta(days=rng.randint(7, 21))
            planned.arm_code, planned.arm, planned.enrollment_date = "EXO", "Exosome", injected
            # Two early discontinuations; everyone else completes at month 6 if the cut allows.
            if enrolled_index == 8:
                planned.dispositions.append(
                    {
                        "category": "DISPOSITION EVENT",
                        "term": "LOST TO FOLLOW-UP",
                        "epoch": "FOLLOW-UP",
                        "date": injected + dt.timedelta(days=62),
                    }
                )
            elif enrolled_index == 16:
                planned.dispositions.append(
                    {
                        "category": "DISPOSITION EVENT",
                        "term": "WITHDRAWAL BY SUBJECT",
                        "epoch": "FOLLOW-UP",
                        "date": injected + dt.timedelta(days=35),
                    }
                )
            else:
                end = injected + dt.timedelta(days=SEED_COMPLETION_DAY - 1)
                planned.dispositions.append(
                    {
                        "category": "DISPOSITION EVENT",
                        "term": "COMPLETED",
                        "epoch": "FOLLOW-UP",
                        "date": end,
                    }
                )
            planned.visits = _held_visits(
                DEMO_SCHEDULE,
                screened_on=screened_on,
                day_one=injected,
                left_on=planned.dispositions[-1]["date"],  # completion or discontinuation
                shift={
                    name: late for i, name, late in SEED_VISIT_DEVIATIONS if i == enrolled_index
                },
            )
            for ae in SEED_ADVERSE_EVENTS:
                if ae[0] != enrolled_index:
                    continue
                _, after, duration, pt, soc, severity, grade, serious, relationship = ae
                start = injected + dt.timedelta(days=after)
                planned.adverse_events.append(
                    {
                        "term": pt.upper() if pt != "Appendicitis" else "ACUTE APPENDICITIS",
                        "decoded_term": pt,
                        "body_system": soc,
                        "severity": severity,
                        "grade": grade,
                        "serious": serious,
                        "relationship": relationship,
                        "outcome": "RECOVERED/RESOLVED",
                        "start_date": start,
                        "end_date": start + dt.timedelta(days=duration) if duration else None,
                    }
                )
            enrolled_index += 1
        deviation = failed is None and enrolled_index - 1 == SEED_BMI_DEVIATION_INDEX
        planned.findings = _screening_findings(
            rng,
            planned.failed,
            failed is None,
            screened_on,
            bmi_override=SEED_DEVIATION_BMI if deviation else None,
        )
        subjects.append(planned)
    # Laboratory values (issue #21) from a generator of their own: every earlier figure stays. The
    # chemistry has a flagged baseline at screening, so its shift tables read from it; Table 1 still
    # opens on the list (it takes a lab test only where an eligibility rule reads it:
    # haemoglobin, EXCL07).
    lab_rng = random.Random(seed + 21)
    for planned in subjects:
        hgb = _label_seed_haemoglobin(planned)
        planned.findings += _lab_findings(
            lab_rng,
            planned,
            panel=_SEED_LAB_PANEL,
            cutoff=SEED_CUTOFF,
            tests=tuple(_SEED_LAB_PANEL),
            # Haemoglobin's baseline is the screening value already recorded.
            baseline_tests=tuple(code for code in _SEED_LAB_PANEL if code != "HGB"),
            visits=_SEED_LAB_VISITS,
            typical={"HGB": hgb},
        )
    _write_study(
        session,
        study=study,
        sites=[site],
        arms=[arm],
        criteria=criteria,
        subjects=subjects,
        treatment="MSC-DERIVED EXOSOMES",
        dose_unit="mL",
        route="INTRA-ARTICULAR",
        interim_cutoff=SEED_INTERIM_CUTOFF,
        cutoff=SEED_CUTOFF,
        schedule=DEMO_SCHEDULE,
    )


# ---------------------------------------------------------------------------------------------
# DEMO-MULTI and DEMO-SCALE: a randomized multi-site study from one generator
# ---------------------------------------------------------------------------------------------

_COUNTRIES = ("DEU", "FRA", "ESP", "ITA", "POL", "NLD", "GBR", "USA", "CAN", "AUS", "BRA", "JPN")
_MULTI_CRITERIA = (
    ("INCL01", "INCLUSION", "Age 40 to 80 years at screening", "AGE between 40 and 80"),
    (
        "INCL02",
        "INCLUSION",
        "Knee osteoarthritis, Kellgren-Lawrence grade 2 or 3",
        "KLGRADE between 2 and 3",
    ),
    ("INCL03", "INCLUSION", "Pain VAS of at least 40 mm in the index knee", "VASPAIN >= 40 mm"),
    ("INCL04", "INCLUSION", "Body mass index 18 to 35 kg/m2", "BMI between 18 and 35 kg/m2"),
    ("EXCL01", "EXCLUSION", "Inflammatory arthritis", None),
    ("EXCL02", "EXCLUSION", "Intra-articular injection in the index knee within 6 months", None),
    ("EXCL03", "EXCLUSION", "Knee surgery within 12 months", None),
    ("EXCL04", "EXCLUSION", "eGFR below 45 mL/min/1.73 m2", "EGFR < 45"),
    ("EXCL05", "EXCLUSION", "Active malignancy", None),
)
# Relative frequency of each criterion among failures: some fail far more than others.
_MULTI_FAILURE_WEIGHTS = (2, 10, 14, 6, 3, 7, 2, 4, 1)
_MULTI_ARMS = (("PBO", "Placebo"), ("LOW", "Low dose"), ("HIGH", "High dose"))
_MULTI_AE_POOL = (
    ("Injection site pain", _GEN, 0.25),
    ("Arthralgia", _MSK, 0.20),
    ("Joint swelling", _MSK, 0.12),
    ("Headache", _NERV, 0.12),
    ("Nasopharyngitis", _INF, 0.15),
    ("Back pain", _MSK, 0.08),
    ("Nausea", "Gastrointestinal disorders", 0.06),
    ("Hypertension", "Vascular disorders", 0.04),
    ("Pneumonia", _INF, 0.01),
)


# How well sites keep the schedule: (chance a visit is not held, chance it is held outside the
# window), for most sites and for the one lagging site, whose overdue visits must stand out.
_MULTI_VISIT_KEEPING = ((0.03, 0.04), (0.20, 0.10))
_MULTI_LAGGING_SITE = 3  # the fourth site (104)


def _multi_visits(
    visit_rng: random.Random,
    *,
    screened_on: dt.date,
    day_one: dt.date,
    left_on: dt.date | None,
    keeps_visits: tuple[float, float],
) -> list[tuple[float, str, int, dt.date]]:
    """DEMO-MULTI's SV rows of one enrolled subject: the schedule's visits a few days either side
    of the due day; a visit after day 1 now and then not held, or held 9 to 15 days late."""
    not_held, late = keeps_visits
    shift: dict[str, int | None] = {}
    for _, name, day in DEMO_SCHEDULE:
        draw = visit_rng.random()
        if day <= 1:
            continue  # screening and the injection itself always happen
        if draw < not_held:
            shift[name] = None
        elif draw < not_held + late:
            shift[name] = visit_rng.randint(9, 15)
        else:
            shift[name] = visit_rng.randint(-3, 3)
    return _held_visits(
        DEMO_SCHEDULE, screened_on=screened_on, day_one=day_one, left_on=left_on, shift=shift
    )


def _multi_findings(rng: random.Random, planned: PlannedSubject) -> list[dict[str, Any]]:
    """A DEMO-MULTI subject's screening BMI and pain VAS (below 40 mm where INCL03 failed)."""
    findings: list[dict[str, Any]] = [
        {
            "domain": "VS",
            "test_code": "BMI",
            "test": "Body Mass Index",
            "value_num": round(rng.uniform(19, 34), 1),
            "unit": "kg/m2",
        },
        {
            "domain": "QS",
            "test_code": "VASPAIN",
            "test": "Pain VAS (0-100)",
            "value_num": float(rng.randint(25 if "INCL03" in planned.failed else 40, 85)),
            "unit": "mm",
        },
    ]
    for finding in findings:
        finding.update(
            {
                "visit": "SCREENING",
                "dtc": planned.screening_date.isoformat(),
                "date": planned.screening_date,
                "is_baseline": planned.enrollment_date is not None,
                "value_text": f"{finding['value_num']:g}",
            }
        )
    return findings


# Site risk (issue #16): one site of DEMO-MULTI planted as an outlier of each key risk indicator,
# three different sites among those with most subjects, so that a flag rests on enough data. Every
# other site is drawn alike for these KRIs. With 10 sites, an over-dispersion adjusted z (gsm) of
# a single outlier cannot exceed sqrt(10) (the outlier itself inflates the dispersion): about 2.5
# to 3 is the most any site here can reach; DEMO-SCALE's 200 sites go far beyond.
PLANTED_KRI_SITES = {
    "ae_under_reporting": "108",  # reports a quarter of its non-serious AEs
    "screen_failures": "101",  # the site that fails INCL03 more: about 60% of its screened fail
    "deviations": "110",  # four times the deviations per subject-day of the others
}
_DEVIATION_RATE = 1 / 120  # protocol deviations per subject-day on study
_DEVIATION_FACTOR = 4.0  # at the deviations site
_AE_REPORTED_SHARE = 0.25  # of its non-serious AEs the under-reporting site reports (SAEs all)
_EXTRA_SCREEN_FAILURES = 30  # screened at the screen-failures site after the others, all failing


def _deviations(
    rng: np.random.Generator, day_one: dt.date, last_day: dt.date, rate: float
) -> list[dict[str, Any]]:
    """A subject's protocol deviations: Poisson many at ``rate`` per day on study, each on a day
    from ``day_one`` to ``last_day``."""
    days = (last_day - day_one).days + 1
    if days <= 0:
        return []
    weights = np.array([w for _, _, w in demo_scale.DEVIATION_TERMS], dtype=float)
    n = int(rng.poisson(rate * days))
    kinds = rng.choice(len(demo_scale.DEVIATION_TERMS), size=n, p=weights / weights.sum())
    offsets = np.sort(rng.integers(0, days, n))
    return [
        {
            "term": demo_scale.DEVIATION_TERMS[kind][0],
            "category": demo_scale.DEVIATION_TERMS[kind][1],
            "date": day_one + dt.timedelta(days=int(offset)),
        }
        for kind, offset in zip(kinds, offsets, strict=True)
    ]


def _plant_kri_outliers(
    rng: np.random.Generator,
    subjects: list[PlannedSubject],
    sites: Sequence[Site],
    codes: Sequence[str],
    cutoff: dt.date,
) -> None:
    """Deviations for every enrolled subject, and the three PLANTED_KRI_SITES, from a generator of
    their own: every figure the demo had before site risk stays as it was, but for the AEs the
    under-reporting site leaves out and the screen failures added at the screen-failures site."""
    for planned in subjects:
        if planned.enrollment_date is None:
            continue
        left = min(d["date"] for d in planned.dispositions if d["category"] == "DISPOSITION EVENT")
        factor = _DEVIATION_FACTOR if planned.site_id == PLANTED_KRI_SITES["deviations"] else 1.0
        planned.deviations = _deviations(
            rng, planned.enrollment_date, min(left, cutoff), _DEVIATION_RATE * factor
        )
        if planned.site_id == PLANTED_KRI_SITES["ae_under_reporting"]:
            planned.adverse_events = [
                ae
                for ae in planned.adverse_events
                if ae["serious"] == "Y" or rng.random() < _AE_REPORTED_SHARE
            ]
    site = next((s for s in sites if s.site_id == PLANTED_KRI_SITES["screen_failures"]), None)
    if site is None or site.activated_on is None:
        return
    weights = np.array(_MULTI_FAILURE_WEIGHTS, dtype=float)
    weights[codes.index("INCL03")] *= 4  # as the site fails already
    finding_rng = random.Random(int(rng.integers(1 << 31)))
    window = (cutoff - site.activated_on).days
    for number in range(len(subjects) + 1, len(subjects) + _EXTRA_SCREEN_FAILURES + 1):
        screened_on = site.activated_on + dt.timedelta(days=int(rng.integers(0, window - 14)))
        failed = {codes[int(i)] for i in rng.choice(len(codes), size=1, p=weights / weights.sum())}
        planned = PlannedSubject(
            usubjid=f"{MULTISITE_STUDY_ID}-{site.site_id}-{number:04d}",
            site_id=site.site_id,
            screening_date=screened_on,
            sex=str(rng.choice(["F", "F", "M"])),
            age=int(rng.integers(41, 80)),
            failed=sorted(failed),
        )
        planned.dispositions = [
            {
                "category": "PROTOCOL MILESTONE",
                "term": "INFORMED CONSENT OBTAINED",
                "epoch": "SCREENING",
                "date": screened_on,
            },
            {
                "category": "DISPOSITION EVENT",
                "term": "SCREEN FAILURE",
                "epoch": "SCREENING",
                "date": screened_on + dt.timedelta(days=int(rng.integers(2, 15))),
            },
        ]
        planned.findings = _multi_findings(finding_rng, planned)
        subjects.append(planned)


def build_multisite_study(
    session: Session,
    *,
    study_id: str = MULTISITE_STUDY_ID,
    n_sites: int = 10,
    n_subjects: int = 320,
    seed: int = 2024,
) -> None:
    """(Re)create a randomized 3-arm multi-site demo study (synthetic) with two data cuts."""
    rng = random.Random(seed)
    # Visits draw from their own generator, so every other figure stays what it was before the
    # demo had a visit schedule.
    visit_rng = random.Random(seed + 1)
    start, end = dt.date(2024, 3, 1), dt.date(2026, 6, 30)
    interim_cutoff, cutoff = dt.date(2025, 9, 30), dt.date(2025, 12, 31)
    # A target the current cut has not reached yet, so the forecast has something to say.
    target = round(n_subjects * 0.95)
    study = Study(
        study_id=study_id,
        registry_id=None,
        title=f"Synthetic randomized study in knee osteoarthritis ({n_sites} sites)",
        sponsor="Demo sponsor (synthetic)",
        phase="Phase 2",
        design="Randomized, parallel, 3 arms, open label",
        allocation="RANDOMIZED",
        masking="NONE",
        is_blinded=False,
        status="RECRUITING",
        condition="Osteoarthritis, Knee",
        intervention="Drug: demo compound (intra-articular)",
        planned_enrollment=target,
        min_age=40,
        max_age=80,
        sex="ALL",
        planned_start=start,
        planned_end=end,
        is_synthetic=True,
    )
    sites = []
    for number in range(1, n_sites + 1):
        sites.append(
            Site(
                study_id=study_id,
                site_id=f"{100 + number}",
                name=f"Demo site {100 + number}",
                country=_COUNTRIES[(number - 1) % len(_COUNTRIES)],
                activated_on=start + dt.timedelta(days=rng.randint(0, 240)),
                planned_enrollment=max(1, round(target / n_sites)),
            )
        )
    arms = [
        Arm(study_id=study_id, arm_code=code, arm=name, planned_n=round(target / 3))
        for code, name in _MULTI_ARMS
    ]
    criteria = [
        Criterion(study_id=study_id, code=code, category=cat, text=text, seq=i + 1, rule=rule)
        for i, (code, cat, text, rule) in enumerate(_MULTI_CRITERIA)
    ]
    codes = [c[0] for c in _MULTI_CRITERIA]
    # Site productivity varies a lot in real trials; one site fails INCL03 far more often than others.
    productivity = [rng.uniform(0.3, 1.8) for _ in sites]
    subjects: list[PlannedSubject] = []
    for number in range(1, n_subjects + 1):
        site_index = rng.choices(range(n_sites), weights=productivity)[0]
        site = sites[site_index]
        assert site.activated_on is not None
        window = max(1, (cutoff - site.activated_on).days)
        screened_on = site.activated_on + dt.timedelta(days=int(window * rng.random() ** 0.8))
        planned = PlannedSubject(
            usubjid=f"{study_id}-{site.site_id}-{number:04d}",
            site_id=site.site_id,
            screening_date=screened_on,
            sex=rng.choice(["F", "F", "M"]),
            age=rng.randint(41, 79),
        )
        planned.dispositions.append(
            {
                "category": "PROTOCOL MILESTONE",
                "term": "INFORMED CONSENT OBTAINED",
                "epoch": "SCREENING",
                "date": screened_on,
            }
        )
        fail_probability = 0.45 if site_index == 0 else 0.24
        if rng.random() < fail_probability:
            weights = list(_MULTI_FAILURE_WEIGHTS)
            if site_index == 0:
                weights[2] *= 4
            failed = {rng.choices(codes, weights=weights)[0]}
            if rng.random() < 0.2:
                failed.add(rng.choices(codes, weights=weights)[0])
            planned.failed = sorted(failed)
            planned.dispositions.append(
                {
                    "category": "DISPOSITION EVENT",
                    "term": "SCREEN FAILURE",
                    "epoch": "SCREENING",
                    "date": screened_on + dt.timedelta(days=rng.randint(2, 14)),
                }
            )
        elif screened_on + dt.timedelta(days=14) <= cutoff:
            code, name = _MULTI_ARMS[rng.randrange(3)]
            injected = screened_on + dt.timedelta(days=rng.randint(5, 14))
            planned.arm_code, planned.arm, planned.enrollment_date = code, name, injected
            roll = rng.random()
            if roll < 0.08:
                planned.dispositions.append(
                    {
                        "category": "DISPOSITION EVENT",
                        "term": rng.choice(
                            ["ADVERSE EVENT", "WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP"]
                        ),
                        "epoch": "TREATMENT",
                        "date": injected + dt.timedelta(days=rng.randint(10, 90)),
                    }
                )
            else:
                planned.dispositions.append(
                    {
                        "category": "DISPOSITION EVENT",
                        "term": "COMPLETED",
                        "epoch": "FOLLOW-UP",
                        "date": injected + dt.timedelta(days=SEED_COMPLETION_DAY - 1),
                    }
                )
            planned.visits = _multi_visits(
                visit_rng,
                screened_on=screened_on,
                day_one=injected,
                left_on=planned.dispositions[-1]["date"],
                keeps_visits=_MULTI_VISIT_KEEPING[1 if site_index == _MULTI_LAGGING_SITE else 0],
            )
            for pt, soc, probability in _MULTI_AE_POOL:
                if rng.random() < probability * (1.4 if code == "HIGH" else 1.0):
                    serious = "Y" if pt == "Pneumonia" or rng.random() < 0.02 else "N"
                    severity = (
                        "SEVERE" if serious == "Y" else rng.choice(["MILD", "MILD", "MODERATE"])
                    )
                    first = injected + dt.timedelta(days=rng.randint(0, 150))
                    planned.adverse_events.append(
                        {
                            "term": pt.upper(),
                            "decoded_term": pt,
                            "body_system": soc,
                            "severity": severity,
                            "grade": {"MILD": "1", "MODERATE": "2", "SEVERE": "3"}[severity],
                            "serious": serious,
                            "relationship": rng.choice(
                                ["RELATED", "POSSIBLY RELATED", "NOT RELATED", "UNLIKELY RELATED"]
                            ),
                            "outcome": "RECOVERED/RESOLVED",
                            "start_date": first,
                            "end_date": first + dt.timedelta(days=rng.randint(1, 20)),
                        }
                    )
        planned.findings = _multi_findings(rng, planned)
        subjects.append(planned)
    _plant_kri_outliers(np.random.default_rng(seed + 2), subjects, sites, codes, cutoff)
    # Laboratory values (issue #21) from a generator of their own, after every other draw: every
    # earlier figure stays. Two planted liver cases for the eDISH plot.
    lab_rng = random.Random(seed + 21)
    liver_cases = {case[0]: case[1:] for case in _MULTI_LIVER_CASES}
    for planned in subjects:
        planned.findings += _lab_findings(
            lab_rng,
            planned,
            panel=_LAB_PANEL,
            cutoff=cutoff,
            tests=tuple(_LAB_PANEL),
            baseline_tests=tuple(_LAB_PANEL),
            visits=_LAB_VISITS,
            liver_case=liver_cases.get(planned.usubjid),
        )
    delete_study(session, study_id)
    _write_study(
        session,
        study=study,
        sites=sites,
        arms=arms,
        criteria=criteria,
        subjects=subjects,
        treatment="DEMO COMPOUND",
        dose_unit="mL",
        route="INTRA-ARTICULAR",
        interim_cutoff=interim_cutoff,
        cutoff=cutoff,
        schedule=DEMO_SCHEDULE,
        ships_dv=True,
    )


def build_scale_study(session: Session, *, n_subjects: int = 50_000, seed: int = 8) -> None:
    """(Re)create DEMO-SCALE: 200 sites, bulk-inserted (``dashboard.demo_scale``)."""
    demo_scale.build_scale_study(session, n_subjects=n_subjects, seed=seed)
