"""Write a study held in the database as an SDTM package (CSV) as it stood at a cut-off date.

Made for the synthetic demo studies: their rows carry every date, so the package at an earlier
cut-off can be rebuilt (subjects screened by then, records dated by then, arms assigned by then,
adverse events still ongoing then). Importing the package of each cut in turn exercises the
importer's history with data whose changes are known. SYNTHETIC DATA in, synthetic data out.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session, col

from dashboard.models import (
    AdverseEvent,
    Criterion,
    Disposition,
    EligibilityFinding,
    Exposure,
    Finding,
    PlannedVisit,
    ProtocolDeviation,
    Site,
    Study,
    Subject,
    Visit,
)
from dashboard.results.population import SCREEN_FAILURE


def _on_or_before(day: dt.date | None, cutoff: dt.date) -> bool:
    return day is not None and day <= cutoff


def _iso(day: dt.date | None) -> str:
    return day.isoformat() if day else ""


def export_sdtm(session: Session, *, study_id: str, cutoff: dt.date, folder: Path) -> Path:
    """Write DM, TS, TI, TV, IE, DS, AE, DV, EX, SV and findings (VS/LB/QS/SC/MK) of ``study_id`` as they
    stood at ``cutoff`` into ``folder`` as CSV files. Returns the folder."""
    study = session.get(Study, study_id)
    if study is None:
        raise LookupError(f"no study {study_id!r}")
    folder.mkdir(parents=True, exist_ok=True)
    subjects = session.execute(
        select(Subject, col(Site.site_id))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(col(Subject.study_id) == study_id, col(Subject.screening_date) <= cutoff)
        .order_by(col(Subject.usubjid))
    ).all()
    usubjid = {s.id: s.usubjid for s, _ in subjects}
    ids = list(usubjid)

    def children(table: Any) -> list[Any]:
        return list(
            session.execute(
                select(table).where(col(table.subject_pk).in_(ids)).order_by(col(table.id))
            ).scalars()
        )

    dispositions = [d for d in children(Disposition) if _on_or_before(d.date, cutoff)]
    failed_by = {d.subject_pk for d in dispositions if (d.term or "").upper() == "SCREEN FAILURE"}
    dm = []
    for subject, site_id in subjects:
        enrolled = _on_or_before(subject.enrollment_date, cutoff)
        dosed = _on_or_before(subject.first_dose_date, cutoff)
        failed = subject.population == SCREEN_FAILURE and subject.id in failed_by
        dm.append(
            {
                "STUDYID": study_id,
                "DOMAIN": "DM",
                "USUBJID": subject.usubjid,
                "SUBJID": subject.subjid or "",
                "SITEID": site_id or "",
                "RFICDTC": subject.consent_dtc or "",
                "RFSTDTC": subject.enrollment_dtc if enrolled else "",
                "RFXSTDTC": subject.first_dose_dtc if dosed else "",
                "AGE": subject.age,
                "AGEU": subject.age_unit or "",
                "SEX": subject.sex or "",
                "ARMCD": subject.arm_code if enrolled else "",
                "ARM": subject.arm if enrolled else "",
                "ACTARMCD": subject.actual_arm_code if dosed else "",
                "ACTARM": subject.actual_arm if dosed else "",
                "ARMNRS": "SCREEN FAILURE" if failed else "",
                "COUNTRY": subject.country or "",
            }
        )
    ts = [
        {"STUDYID": study_id, "TSPARMCD": code, "TSVAL": value}
        for code, value in (
            ("TITLE", study.title),
            ("SPONSOR", study.sponsor),
            ("REGID", study.registry_id),
            ("PLANSUB", study.planned_enrollment),
            ("DCUTDTC", cutoff.isoformat()),
        )
        if value is not None
    ]
    criteria = list(
        session.execute(
            select(Criterion)
            .where(col(Criterion.study_id) == study_id)
            .order_by(col(Criterion.seq))
        ).scalars()
    )
    code_of = {c.id: c for c in criteria}
    ti = [
        {
            "STUDYID": study_id,
            "IETESTCD": c.code,
            "IETEST": c.text,
            "IECAT": c.category,
            "TIVERS": c.protocol_version,
        }
        for c in criteria
    ]
    tv = [
        {
            "STUDYID": study_id,
            "VISITNUM": v.visit_num,
            "VISIT": v.visit,
            "VISITDY": v.planned_day,
            "ARMCD": v.arm_code,
            "TVSTRL": v.start_rule or "",
        }
        for v in session.execute(
            select(PlannedVisit)
            .where(col(PlannedVisit.study_id) == study_id)
            .order_by(col(PlannedVisit.arm_code), col(PlannedVisit.visit_num))
        ).scalars()
    ]
    ie = [
        {
            "STUDYID": study_id,
            "USUBJID": usubjid[f.subject_pk],
            "IESEQ": n,
            "IETESTCD": code_of[f.criterion_pk].code,
            "IETEST": code_of[f.criterion_pk].text,
            "IECAT": code_of[f.criterion_pk].category,
            "IEORRES": f.result or "",
            "IEDTC": f.assessed_dtc or "",
        }
        for n, f in enumerate(children(EligibilityFinding), start=1)
        if _on_or_before(f.assessed_date, cutoff)
    ]
    ds = [
        {
            "STUDYID": study_id,
            "USUBJID": usubjid[d.subject_pk],
            "DSSEQ": d.seq,
            "DSTERM": d.verbatim or d.term or "",
            "DSDECOD": d.term or "",
            "DSCAT": d.category or "",
            "EPOCH": d.epoch or "",
            "DSSTDTC": d.dtc or "",
        }
        for d in dispositions
    ]
    ae = []
    for event in children(AdverseEvent):
        if not _on_or_before(event.start_date, cutoff):
            continue
        ended = _on_or_before(event.end_date, cutoff)
        ae.append(
            {
                "STUDYID": study_id,
                "USUBJID": usubjid[event.subject_pk],
                "AESEQ": event.seq,
                "AETERM": event.term,
                "AEDECOD": event.decoded_term or "",
                "AEBODSYS": event.body_system or "",
                "AESEV": event.severity or "",
                "AETOXGR": event.grade or "",
                "AESER": event.serious or "",
                "AEREL": event.relationship or "",
                "AEOUT": event.outcome if ended else "NOT RECOVERED/NOT RESOLVED",
                "AEACN": event.action or "",
                "AESTDTC": event.start_dtc or "",
                "AEENDTC": event.end_dtc if ended else "",
                "AESTDY": event.start_day,
            }
        )
    ex = [
        {
            "STUDYID": study_id,
            "USUBJID": usubjid[e.subject_pk],
            "EXTRT": e.treatment,
            "EXDOSE": e.dose,
            "EXDOSU": e.unit or "",
            "EXROUTE": e.route or "",
            "EXSTDTC": e.start_dtc or "",
            "EXENDTC": e.end_dtc or "",
        }
        for e in children(Exposure)
        if _on_or_before(e.start_date, cutoff)
    ]
    sv = [
        {
            "STUDYID": study_id,
            "USUBJID": usubjid[v.subject_pk],
            "VISITNUM": v.visit_num,
            "VISIT": v.visit,
            "VISITDY": v.planned_day,
            "SVSTDTC": v.dtc or "",
        }
        for v in children(Visit)
        if _on_or_before(v.date, cutoff)
    ]
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in children(Finding):
        if not _on_or_before(f.date, cutoff):
            continue
        d = f.domain
        findings.setdefault(d, []).append(
            {
                "STUDYID": study_id,
                "USUBJID": usubjid[f.subject_pk],
                f"{d}TESTCD": f.test_code,
                f"{d}TEST": f.test,
                f"{d}LOC": f.location or "",
                f"{d}STRESN": f.value_num,
                f"{d}STRESC": f.value_text or "",
                f"{d}STRESU": f.unit or "",
                "VISIT": f.visit or "",
                f"{d}DTC": f.dtc or "",
                f"{d}BLFL": "Y" if f.is_baseline else "",
                f"{d}TOXGR": f.toxicity_grade or "",
            }
        )
    deviations = children(ProtocolDeviation)
    dv = pd.DataFrame(
        [
            {
                "STUDYID": study_id,
                "USUBJID": usubjid[d.subject_pk],
                "DVSEQ": d.seq,
                "DVTERM": d.term,
                "DVDECOD": d.decoded_term or "",
                "DVCAT": d.category or "",
                "DVSCAT": d.subcategory or "",
                "DVSTDTC": d.start_dtc or "",
            }
            for d in deviations
            if _on_or_before(d.start_date, cutoff)
        ],
        columns=["STUDYID", "USUBJID", "DVSEQ", "DVTERM", "DVDECOD", "DVCAT", "DVSCAT", "DVSTDTC"],
    )
    # A study that records deviations ships DV at every cut, none by then included: an empty DV
    # is "no deviation yet", where a missing one would be "deviations unknown".
    if deviations:
        dv.to_csv(folder / "dv.csv", index=False)
    tables = {
        "dm": dm,
        "ts": ts,
        "ti": ti,
        "tv": tv,
        "ie": ie,
        "ds": ds,
        "ae": ae,
        "ex": ex,
        "sv": sv,
    }
    tables.update({d.lower(): rows for d, rows in findings.items()})
    for name, rows in tables.items():
        if rows:
            pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder
