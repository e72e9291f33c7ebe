"""Write a study held in the database as an SDTM package (CSV) as it stood at a cut-off date.

Made for the synthetic demo studies: their rows carry every date, so the package at an earlier
cut-off can be rebuilt (subjects screened by then, records dated by then, arms assigned by then,
adverse events still ongoing then). Importing the package of each cut in turn exercises the
importer's history with data whose changes are known. SYNTHETIC DATA in, synthetic data out.
"""

import datetime as dt
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyreadstat
from numpy.typing import NDArray
from sqlalchemy import Select, Table, select
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


def export_sdtm(
    session: Session,
    *,
    study_id: str,
    cutoff: dt.date,
    folder: Path,
    file_format: str = "csv",
) -> Path:
    """Write DM, TS, TI, TV, IE, DS, AE, DV, EX, SV and findings (VS/LB/QS/SC/MK) of ``study_id`` as
    they stood at ``cutoff`` into ``folder`` as CSV files (``file_format="xpt"``: SAS transport
    files). Returns the folder."""
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
    # A subquery, not a list: 50,000 bound ids exceed what SQLite takes in one statement.
    ids = select(col(Subject.id)).where(
        col(Subject.study_id) == study_id, col(Subject.screening_date) <= cutoff
    )

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
        _write(dv, folder / "dv", file_format)
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
    for name, rows in tables.items():
        if rows:
            _write(pd.DataFrame(rows), folder / name, file_format)
    for domain, frame in _findings(session, ids, usubjid, study_id=study_id, cutoff=cutoff):
        _write(frame, folder / domain.lower(), file_format)
    return folder


def _findings(
    session: Session,
    ids: Select[Any],
    usubjid: dict[int, str],
    *,
    study_id: str,
    cutoff: dt.date,
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each findings domain's records by the cut-off as an SDTM frame, one domain at a time: read
    as columns in SQL, not as a million ORM objects (the scale study's LB has 1,400,000)."""
    table = cast(Table, Finding.__table__)  # type: ignore[attr-defined]
    columns = [
        "subject_pk",
        "test_code",
        "test",
        "location",
        "value_num",
        "value_text",
        "unit",
        "visit",
        "dtc",
        "is_baseline",
        "toxicity_grade",
    ]
    domains = session.execute(
        select(table.c.domain).where(table.c.subject_pk.in_(ids)).distinct()
    ).scalars()
    for d in sorted(domains):
        statement = (
            select(*(table.c[c] for c in columns))
            .where(table.c.subject_pk.in_(ids), table.c.domain == d, table.c.date <= cutoff)
            .order_by(table.c.id)
        )
        rows = pd.DataFrame(session.execute(statement).all(), columns=columns)
        if rows.empty:
            continue
        yield (
            d,
            pd.DataFrame(
                {
                    "STUDYID": study_id,
                    "USUBJID": rows["subject_pk"].map(usubjid),
                    f"{d}TESTCD": rows["test_code"],
                    f"{d}TEST": rows["test"],
                    f"{d}LOC": rows["location"].fillna(""),
                    f"{d}STRESN": rows["value_num"].astype(float),
                    f"{d}STRESC": rows["value_text"].fillna(""),
                    f"{d}STRESU": rows["unit"].fillna(""),
                    "VISIT": rows["visit"].fillna(""),
                    f"{d}DTC": rows["dtc"].fillna(""),
                    f"{d}BLFL": np.where(rows["is_baseline"].astype(bool), "Y", ""),
                    f"{d}TOXGR": rows["toxicity_grade"].fillna(""),
                }
            ),
        )


def _write(frame: pd.DataFrame, stem: Path, file_format: str) -> None:
    """Write one dataset as ``stem.csv`` or ``stem.xpt`` (SAS transport version 5, the format
    SDTM packages are submitted in: names of 8 characters, text of at most 200)."""
    if file_format == "csv":
        frame.to_csv(stem.with_suffix(".csv"), index=False)
        return
    if file_format != "xpt":
        raise ValueError(f"unknown format {file_format!r}: csv or xpt")
    out = pd.DataFrame(index=frame.index)
    for name, values in frame.items():
        if values.dtype.kind in "fiu":
            out[name] = values.astype(float)
            continue
        if isinstance(values.dtype, pd.StringDtype):
            out[name] = values.fillna("")
            continue
        present = values[values.map(lambda v: v is not None and v == v and v != "")]
        # A column of numbers and blanks is numeric (SAS missing for the blanks); else text.
        if len(present) and present.map(lambda v: isinstance(v, int | float)).all():
            out[name] = pd.to_numeric(values.replace("", None), errors="coerce").astype(float)
        else:
            out[name] = values.map(lambda v: "" if v is None or v != v else str(v))
    _write_xport(out, stem.with_suffix(".xpt"), stem.name.upper())


# SAS transport version 5 (SAS technical note TS-140): 80-byte header lines, one 140-byte
# description per variable, then the records at fixed widths. Written here with numpy because
# pyreadstat.write_xport converts every record in Python: minutes for the scale study's LB.
_XPT_LINE = 80
_XPT_STAMP = b"01JAN25:00:00:00"  # created / modified: a fixed stamp keeps exports reproducible


def _xpt_header(kind: bytes, numbers: bytes = b"0" * 30) -> bytes:
    return b"HEADER RECORD*******" + kind.ljust(8) + b"HEADER RECORD!!!!!!!" + numbers + b"  "


def _ibm_floats(values: NDArray[np.float64]) -> NDArray[np.uint8]:
    """IEEE doubles as IBM System/360 8-byte floats (n x 8 bytes); NaN as SAS missing ``.``."""
    out = np.zeros((len(values), 8), dtype=np.uint8)
    missing = np.isnan(values)
    out[missing, 0] = ord(".")
    number = ~missing & (values != 0)
    x = np.abs(values[number])
    # x = f * 16**e with f in [1/16, 1): dividing by powers of 2 is exact, so is f * 2**56.
    exponent = np.floor(np.log2(x) / 4).astype(np.int64) + 1
    fraction = x / np.exp2(4.0 * exponent)
    over = fraction >= 1.0
    exponent[over] += 1
    fraction[over] /= 16.0
    under = fraction < 1.0 / 16
    exponent[under] -= 1
    fraction[under] *= 16.0
    mantissa = (fraction * 2.0**56).astype(np.uint64)
    rows = out[number]
    rows[:, 0] = ((values[number] < 0).astype(np.uint8) << 7) | (exponent + 64).astype(np.uint8)
    for byte in range(1, 8):
        rows[:, byte] = (mantissa >> np.uint64(8 * (7 - byte))) & np.uint64(0xFF)
    out[number] = rows
    return out


def _write_xport(frame: pd.DataFrame, path: Path, name: str) -> None:
    """Write ``frame`` (float columns and text columns) as a version 5 transport file."""
    columns: list[tuple[str, bool, NDArray[np.uint8]]] = []  # name, is number, n x width bytes
    for column, values in frame.items():
        if values.dtype.kind == "f":
            columns.append((str(column), True, _ibm_floats(values.to_numpy(dtype=float))))
            continue
        encoded = values.map({v: str(v).encode() for v in pd.unique(values)})
        width = max(1, int(encoded.map(len).max() if len(encoded) else 1))
        text = np.array(encoded.tolist(), dtype=f"S{width}").view(np.uint8)
        text = text.reshape(len(values), width).copy()
        text[text == 0] = ord(" ")  # blank-padded, as SAS pads text
        columns.append((str(column), False, text))
    descriptions = b""
    position = 0
    for number, (column, is_number, data) in enumerate(columns, start=1):
        width = data.shape[1]
        descriptions += (
            struct.pack(">hhhh", 1 if is_number else 2, 0, width, number)
            + column.encode().ljust(8)[:8]
            + b" " * 40  # label
            + b" " * 8  # format
            + struct.pack(">hhh", 0, 0, 0)
            + b"\0\0"
            + b" " * 8  # informat
            + struct.pack(">hhi", 0, 0, position)
            + b"\0" * 52
        )
        position += width
    descriptions += b" " * (-len(descriptions) % _XPT_LINE)
    records = (
        np.concatenate([data for _, _, data in columns], axis=1).tobytes()
        if columns and len(frame)
        else b""
    )
    records += b" " * (-len(records) % _XPT_LINE)
    header = (
        _xpt_header(b"LIBRARY")
        + b"SAS     SAS     SASLIB  9.4     Linux   ".ljust(64)
        + _XPT_STAMP
        + _XPT_STAMP.ljust(_XPT_LINE)
        + _xpt_header(b"MEMBER", b"0" * 17 + b"16" + b"0" * 8 + b"140")
        + _xpt_header(b"DSCRPTR")
        + (b"SAS     " + name.encode().ljust(8)[:8] + b"SASDATA 9.4     Linux   ").ljust(64)
        + _XPT_STAMP
        + _XPT_STAMP.ljust(_XPT_LINE)
        + _xpt_header(b"NAMESTR", b"000000" + f"{len(columns):04d}".encode() + b"0" * 20)
    )
    path.write_bytes(header + descriptions + _xpt_header(b"OBS") + records)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".xpt":
        frame, _meta = pyreadstat.read_xport(str(path), encoding="utf-8")
        return frame
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_changed_cut(
    source: Path, target: Path, *, share: float = 0.01, seed: int = 19
) -> dict[str, dict[str, int]]:
    """Write ``source``'s package (as ``export_sdtm`` wrote it, CSV or xpt) into ``target`` as a
    later cut of the same study with about ``share`` of its records changed: that share of the LB
    and VS values (numbers moved by about 10%), that share of the AEs (ongoing ones now resolved on
    the cut-off date) and a few new subjects (screened on the cut-off date, in screening). Every
    other file is copied. The test and the benchmark both use it, so they import the same changes.

    Returns what was changed: ``{"subject": {"added": n}, "ae": {"changed": n}, "LB": {"changed":
    n}, "VS": {"changed": n}}`` (the history's entity names for subjects and AEs; findings keep no
    history, so those are record counts)."""
    rng = np.random.default_rng(seed)
    target.mkdir(parents=True, exist_ok=True)
    files = {p.stem.upper(): p for p in sorted(source.iterdir()) if p.suffix in (".csv", ".xpt")}
    changed: dict[str, dict[str, int]] = {}
    for domain, path in files.items():
        if domain not in ("DM", "AE", "LB", "VS"):
            shutil.copyfile(path, target / path.name)
            continue
        frame = _read(path)
        if domain == "DM":
            ts = _read(files["TS"])
            cutoff = str(ts.loc[ts["TSPARMCD"] == "DCUTDTC", "TSVAL"].iloc[0])
            added = max(1, len(frame) // 1_000)
            new = frame.iloc[np.arange(added) % len(frame)].copy()
            for column in new.columns:
                if column not in ("STUDYID", "DOMAIN", "SITEID", "COUNTRY"):
                    new[column] = np.nan if frame[column].dtype.kind == "f" else ""
            new["USUBJID"] = [f"{u}-N{i}" for i, u in enumerate(frame["USUBJID"][:added], 1)]
            new["SUBJID"] = [f"N{i}" for i in range(1, added + 1)]
            new["RFICDTC"] = cutoff
            frame = pd.concat([frame, new], ignore_index=True)
            changed["subject"] = {"added": added}
        elif domain == "AE":
            ts = _read(files["TS"])
            cutoff = str(ts.loc[ts["TSPARMCD"] == "DCUTDTC", "TSVAL"].iloc[0])
            ongoing = np.flatnonzero((frame["AEENDTC"].fillna("") == "").to_numpy())
            picked = rng.choice(ongoing, min(len(ongoing), round(share * len(frame))), False)
            frame.loc[picked, "AEENDTC"] = cutoff
            frame.loc[picked, "AEOUT"] = "RECOVERED/RESOLVED"
            changed["ae"] = {"changed": len(picked)}
        else:
            numbers = pd.to_numeric(frame[f"{domain}STRESN"], errors="coerce")
            known = np.flatnonzero(numbers.notna().to_numpy())
            picked = rng.choice(known, round(share * len(frame)), replace=False)
            moved = (numbers.iloc[picked] * 1.1 + 1).round(1).to_numpy()
            stresn = frame[f"{domain}STRESN"].astype(object)
            stresn.iloc[picked] = (
                moved if frame[f"{domain}STRESN"].dtype.kind == "f" else [f"{v:g}" for v in moved]
            )
            frame[f"{domain}STRESN"] = stresn
            frame.loc[picked, f"{domain}STRESC"] = [f"{v:g}" for v in moved]
            changed[domain] = {"changed": len(picked)}
        _write(frame, target / path.stem, path.suffix.lstrip("."))
    return changed
