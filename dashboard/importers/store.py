"""Store a mapped SDTM package as a new DataCut of its study, with history (DESIGN.md contract).

An SDTM package is a full snapshot: the study's current subject-level rows are replaced, and what
differs from the previous cut is recorded as CutChange rows keyed by natural key. Rows that did not
change keep their ``first_cut_id`` and ``updated_cut_id``. Everything happens in the caller's
session, so the caller's transaction makes the import all or nothing.
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

import pandas as pd
from sqlalchemy import Table, delete, func, insert, select, update
from sqlmodel import Session, col

from dashboard.db import cache_for_bulk_writes, delete_subject_rows, lock_study_for_writing
from dashboard.importers.errors import fail
from dashboard.importers.sdtm import Package, stream_findings
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
    Site,
    Study,
    Subject,
    Visit,
)
from dashboard.precomputed import insert_rows, rebuild_precomputed_counts

# A later cut shares most subjects with the current one; less than this is another study.
MIN_SUBJECT_OVERLAP = 0.5
# A later cut keeps most of each domain's records; removing more than this share of one needs
# --replace (a file cut short, or missing, would otherwise record its records as removed).
MAX_REMOVED_SHARE = 0.5
_TRACKED = {
    "subject": Subject,
    "ae": AdverseEvent,
    "ie": EligibilityFinding,
    "ds": Disposition,
}
_BOOKKEEPING = {
    "id",
    "subject_pk",
    "site_pk",
    "criterion_pk",
    "first_cut_id",
    "updated_cut_id",
    "study_id",
    "natural_key",
}


@dataclass(frozen=True)
class StoreResult:
    study_id: str
    cut_id: int
    cut_number: int  # the study's own count of its cuts, this one included (users see this)
    created_study: bool
    changes: dict[str, dict[str, int]]  # entity -> {"added": n, "changed": n, "removed": n}


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, dt.date) else v
        for k, v in row.items()
        if k not in _BOOKKEEPING
    }


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _changed_fields(row: dict[str, Any], old: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields (both rows have, bookkeeping left out) whose ``_comparable`` values differ, as
    [old, new]; a value equal to the old one and of its type is the same without converting it
    (a cut changes 1% of its rows: building two dicts per row was most of the change history)."""
    fields = {}
    for name, value in row.items():
        if name in _BOOKKEEPING or name not in old:
            continue
        before = old[name]
        if type(value) is type(before) and value == before:
            continue
        new_value, old_value = _plain(value), _plain(before)
        if old_value != new_value:
            fields[name] = [old_value, new_value]
    return fields


def _table(model: Any) -> Table:
    """A model's table, for Core statements (plain rows, no ORM objects)."""
    return cast(Table, model.__table__)


def _current_rows(session: Session, study_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The study's current tracked rows by entity and natural key, as comparable dicts plus
    their cut ids. Read as plain rows (no ORM objects: a 200,000-record IE made that the import's
    slowest step)."""
    subject_rows = session.execute(
        select(*_table(Subject).columns, col(Site.site_id).label("siteid"))
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(col(Subject.study_id) == study_id)
    ).mappings()
    usubjid_of: dict[int, str] = {}
    current: dict[str, dict[str, dict[str, Any]]] = {entity: {} for entity in _TRACKED}
    for subject in subject_rows:
        usubjid_of[subject["id"]] = subject["usubjid"]
        current["subject"][subject["usubjid"]] = dict(subject)
    if not usubjid_of:
        return current
    subject_ids = select(col(Subject.id)).where(col(Subject.study_id) == study_id)
    for ae in session.execute(
        select(_table(AdverseEvent)).where(col(AdverseEvent.subject_pk).in_(subject_ids))
    ).mappings():
        usubjid = usubjid_of[ae["subject_pk"]]
        seq = ae["seq"]
        key = f"{usubjid}/{seq}" if seq is not None else f"{usubjid}/{ae['term']}/{ae['start_dtc']}"
        current["ae"][_unique(current["ae"], key)] = {**ae, "usubjid": usubjid}
    for ds in session.execute(
        select(_table(Disposition)).where(col(Disposition.subject_pk).in_(subject_ids))
    ).mappings():
        usubjid = usubjid_of[ds["subject_pk"]]
        seq = ds["seq"]
        key = f"{usubjid}/{seq}" if seq is not None else f"{usubjid}/{ds['term']}/{ds['dtc']}"
        current["ds"][_unique(current["ds"], key)] = {**ds, "usubjid": usubjid}
    for finding in session.execute(
        select(
            *_table(EligibilityFinding).columns,
            col(Criterion.code),
            col(Criterion.protocol_version),
        )
        .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
        .where(col(EligibilityFinding.subject_pk).in_(subject_ids))
    ).mappings():
        usubjid = usubjid_of[finding["subject_pk"]]
        key = f"{usubjid}/{finding['code']}/{finding['protocol_version']}"
        current["ie"][key] = {**finding, "usubjid": usubjid}
    return current


def _unique(existing: dict[str, Any], key: str) -> str:
    """The same de-duplication of repeated natural keys the package applies (``key#2``...)."""
    if key not in existing:
        return key
    n = 2
    while f"{key}#{n}" in existing:
        n += 1
    return f"{key}#{n}"


def _diff(
    entity: str,
    new_rows: Iterable[dict[str, Any]],
    old_rows: dict[str, dict[str, Any]],
    key_of: Any,
    cut_id: int,
    changes: list[dict[str, Any]],
) -> dict[str, int]:
    """Set each new row's first/updated cut ids and record added/changed/removed rows."""
    counts = {"added": 0, "changed": 0, "removed": 0}
    seen: set[str] = set()
    for row in new_rows:
        key = key_of(row)
        seen.add(key)
        old = old_rows.get(key)
        if old is None:
            row["first_cut_id"] = row["updated_cut_id"] = cut_id
            changes.append(_change(cut_id, entity, key, "added", {}))
            counts["added"] += 1
            continue
        row["first_cut_id"] = old["first_cut_id"]
        fields = _changed_fields(row, old)
        if fields:
            row["updated_cut_id"] = cut_id
            changes.append(_change(cut_id, entity, key, "changed", fields))
            counts["changed"] += 1
        else:
            row["updated_cut_id"] = old["updated_cut_id"]
    for key, old in old_rows.items():
        if key not in seen:
            fields = {k: [v, None] for k, v in _comparable(old).items()}
            changes.append(_change(cut_id, entity, key, "removed", fields))
            counts["removed"] += 1
    return counts


def _change(
    cut_id: int, entity: str, key: str, change: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """A CutChange row, as the plain dict ``_insert_rows`` writes."""
    return {
        "cut_id": cut_id,
        "entity": entity,
        "natural_key": key,
        "change": change,
        "fields": fields,
    }


def _refuse_mass_removal(
    session: Session, package: Package, current: dict[str, dict[str, dict[str, Any]]]
) -> None:
    """Raise ImportFailure where the package would remove more than ``MAX_REMOVED_SHARE`` of a
    domain's current records. AE, IE and DS are compared by natural key (IE without its protocol
    version: a new TI version re-keys every finding, it removes none); the findings domains, which
    keep no history, by their number of records once they are read
    (``_refuse_mass_removal_of_findings``). Subjects have their own rule (``MIN_SUBJECT_OVERLAP``).
    DV, EX and SV are left out: a DV shipped with no record says there are no deviations now
    (tests/test_import_dv.py)."""
    study_id = package.study_id
    kept_keys: dict[str, Any] = {
        "AE": (
            {r["natural_key"] for r in package.adverse_events},
            lambda key, row: key,
            current["ae"],
        ),
        "DS": (
            {r["natural_key"] for r in package.dispositions},
            lambda key, row: key,
            current["ds"],
        ),
        "IE": (
            {(r["usubjid"], r["code"]) for r in package.eligibility},
            lambda key, row: (row["usubjid"], row["code"]),
            current["ie"],
        ),
    }
    for domain, (new_keys, key_of, old_rows) in kept_keys.items():
        removed = sum(key_of(key, row) not in new_keys for key, row in old_rows.items())
        _check_removed(study_id, domain, removed, len(old_rows), len(new_keys))


def _finding_counts(session: Session, study_id: str) -> dict[str, int]:
    """The study's current findings by domain."""
    subject_ids = select(col(Subject.id)).where(col(Subject.study_id) == study_id)
    return {
        str(domain): int(count)
        for domain, count in session.execute(
            select(col(Finding.domain), func.count())
            .where(col(Finding.subject_pk).in_(subject_ids))
            .group_by(col(Finding.domain))
        ).all()
    }


def _refuse_mass_removal_of_findings(package: Package, old_counts: dict[str, int]) -> None:
    """``_refuse_mass_removal`` for the findings domains, by their number of records, once the
    package's findings are read (``package.row_counts``)."""
    for domain, old in sorted(old_counts.items()):
        new = package.row_counts.get(domain, 0)
        _check_removed(package.study_id, domain, max(old - new, 0), old, new)


def _check_removed(study_id: str, domain: str, removed: int, old: int, new: int) -> None:
    if old and removed > MAX_REMOVED_SHARE * old:
        raise fail(
            f"this package would remove {removed:,} of study {study_id}'s {old:,} current "
            f"{domain} records ({removed / old:.0%}; the package has {new:,}): a later cut rarely "
            f"removes more than half of a domain, so a {domain} file may be cut short or missing. "
            "Check the package; to replace the study's data with it, give --replace (on the "
            "Import page: Replace the study's data)"
        )


# Rows per INSERT executemany: the parameter lists of a whole 200,000-record domain at once took
# hundreds of MB; batches of this size cost no more time.
_INSERT_BATCH = 20_000


def _bulk_insert(session: Session, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column; other keys are left out) in batches, as value
    tuples (``precomputed.insert_rows``): no ORM bookkeeping, no parameter dict per row."""
    columns = set(_table(table).columns.keys()) - {"id"}
    iterator = iter(rows)
    while batch := list(islice(iterator, _INSERT_BATCH)):
        names = [k for k in batch[0] if k in columns]
        first = batch[0].keys()
        if all(r.keys() == first for r in batch):
            insert_rows(session, _table(table), names, ([r[k] for k in names] for r in batch))
        else:  # rows that set different columns: the ORM's bulk insert groups them
            session.execute(
                insert(table), [{k: v for k, v in r.items() if k in columns} for r in batch]
            )


def _insert_frame(session: Session, frame: pd.DataFrame, subject_pk: dict[str, int]) -> None:
    """Insert the findings frame (``usubjid`` as ``subject_pk``) a batch of columns at a time, as
    value tuples: a million findings as dicts, at once or a batch at a time, cost gigabytes or
    most of the load's time."""
    names = ["subject_pk", *(c for c in frame.columns if c != "usubjid")]
    for start in range(0, len(frame), _INSERT_BATCH):
        batch = frame.iloc[start : start + _INSERT_BATCH]
        columns = [batch["usubjid"].map(subject_pk).astype(int).tolist()] + [
            batch[c].astype(object).where(batch[c].notna(), None).tolist() for c in names[1:]
        ]
        insert_rows(session, _table(Finding), names, zip(*columns, strict=True))


def store_package(session: Session, package: Package, *, replace: bool = False) -> StoreResult:
    """Write ``package`` as a new DataCut of its study. Raises ImportFailure when the package
    looks like another study (subjects overlap less than half) and ``replace`` is not set, or
    when its findings (read here, ``stream_findings``) hold a fatal problem. The package's record
    lists are emptied once they are stored."""
    study_id = package.study_id
    # Before anything is read: a second import of the study waits for the first to commit.
    lock_study_for_writing(session, study_id)
    cache_for_bulk_writes(session)
    study = session.get(Study, study_id)
    created = study is None
    current = _current_rows(session, study_id)
    old_subjects = set(current["subject"])
    new_subjects = {s["usubjid"] for s in package.subjects}
    if old_subjects and not replace:
        overlap = len(old_subjects & new_subjects) / len(old_subjects)
        if overlap < MIN_SUBJECT_OVERLAP:
            raise fail(
                f"only {overlap:.0%} of study {study_id}'s {len(old_subjects)} current subjects are "
                "in this package, so it is not a later cut of the same study: load it under "
                "another --study-id, or give --replace to replace the study's data"
            )
    if not replace:
        _refuse_mass_removal(session, package, current)
    old_findings = {} if replace else _finding_counts(session, study_id)
    if replace:
        current = {entity: {} for entity in _TRACKED}

    if study is None:
        study = Study(study_id=study_id, title=package.study.get("title") or study_id)
    for name, value in package.study.items():
        if value is not None or name in ("min_age", "max_age"):
            setattr(study, name, value)
    session.add(study)
    session.flush()

    cut = DataCut(
        study_id=study_id,
        loaded_at=dt.datetime.now(dt.UTC),
        cutoff_date=package.cutoff_date,
        # Copies: the package's grow as its findings are read, and the cut is updated from them
        # then (a JSON value changed in place would look unchanged and not be written).
        source=list(package.sources),
        row_counts=dict(package.row_counts),
        warnings=list(package.warnings),
    )
    session.add(cut)
    session.flush()
    assert cut.id is not None

    # Each entity's change records are written as soon as they are found (a first import of
    # 250,000 AEs makes as many), so that one entity's are held at a time, not every entity's.
    counts = {}
    for entity, rows, key_of in (
        ("subject", package.subjects, lambda r: r["usubjid"]),
        ("ae", package.adverse_events, lambda r: r["natural_key"]),
        ("ie", package.eligibility, lambda r: r["natural_key"]),
        ("ds", package.dispositions, lambda r: r["natural_key"]),
    ):
        changes: list[dict[str, Any]] = []
        counts[entity] = _diff(entity, rows, current[entity], key_of, cut.id, changes)
        _bulk_insert(session, CutChange, changes)
        del changes
    del current

    delete_subject_rows(session, study_id)
    site_pk = _upsert_sites(session, study_id, package.sites)
    criterion_pk = _replace_criteria(session, study_id, package.criteria)
    if package.arms:
        session.execute(delete(Arm).where(col(Arm.study_id) == study_id))
        _bulk_insert(session, Arm, [{**a, "study_id": study_id} for a in package.arms])
    # TV replaces the planned schedule; a package without TV keeps the one the study has (a
    # schedule the study defined itself, or an earlier cut's TV).
    if package.planned_visits:
        session.execute(delete(PlannedVisit).where(col(PlannedVisit.study_id) == study_id))
        _bulk_insert(
            session, PlannedVisit, [{**v, "study_id": study_id} for v in package.planned_visits]
        )

    _bulk_insert(
        session,
        Subject,
        [
            {**s, "study_id": study_id, "site_pk": site_pk.get(s["siteid"])}
            for s in package.subjects
        ],
    )
    subject_pk = {
        usubjid: pk
        for pk, usubjid in session.execute(
            select(col(Subject.id), col(Subject.usubjid)).where(col(Subject.study_id) == study_id)
        ).all()
    }

    def with_subject(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return ({**r, "subject_pk": subject_pk[r["usubjid"]]} for r in rows)

    _bulk_insert(
        session,
        EligibilityFinding,
        (
            {**r, "criterion_pk": criterion_pk[(r["code"], r["protocol_version"])]}
            for r in with_subject(package.eligibility)
        ),
    )
    for table, rows in (
        (Disposition, package.dispositions),
        (AdverseEvent, package.adverse_events),
        (ProtocolDeviation, package.deviations),
        (Exposure, package.exposures),
        (Visit, package.visits),
    ):
        _bulk_insert(session, table, with_subject(rows))
    # Stored: the package's records are let go before its findings are read, so that a large
    # AE's dicts and the LB chunks are not held at once.
    package.eligibility, package.adverse_events, package.dispositions = [], [], []
    package.deviations, package.exposures, package.visits = [], [], []
    for findings in stream_findings(package):
        _insert_frame(session, findings, subject_pk)
    _refuse_mass_removal_of_findings(package, old_findings)
    _flag_baseline_without_flag(session, study_id, package.unflagged_findings)
    # The findings' warnings, records, files and dates are known now that they are read.
    cut.warnings = list(package.warnings)
    cut.row_counts = dict(package.row_counts)
    cut.source = list(package.sources)
    cut.cutoff_date = package.cutoff_date
    session.flush()
    rebuild_precomputed_counts(session, study_id)
    cut_number = session.execute(
        select(func.count()).select_from(DataCut).where(col(DataCut.study_id) == study_id)
    ).scalar_one()
    return StoreResult(
        study_id=study_id,
        cut_id=cut.id,
        cut_number=int(cut_number),
        created_study=created,
        changes=counts,
    )


def _flag_baseline_without_flag(session: Session, study_id: str, domains: set[str]) -> None:
    """Where a findings domain has no baseline flag (--BLFL or --LOBXFL), the baseline is the last
    value before first dose: per subject, domain, test and measurement (location, specimen,
    position, time point: supine and standing blood pressure each get one), the latest record dated on or
    before the first dose (of records on the same latest day, the last one in the file, which is
    the last stored)."""
    if not domains:
        return
    latest_first = (
        func.row_number()
        .over(
            partition_by=[
                col(Finding.subject_pk),
                col(Finding.domain),
                col(Finding.test_code),
                col(Finding.location),
                col(Finding.specimen),
                col(Finding.position),
                col(Finding.timepoint),
            ],
            order_by=[col(Finding.date).desc(), col(Finding.id).desc()],
        )
        .label("rank")
    )
    ranked = (
        select(col(Finding.id), latest_first)
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(
            col(Subject.study_id) == study_id,
            col(Finding.domain).in_(sorted(domains)),
            col(Finding.date) <= col(Subject.first_dose_date),
        )
        .subquery()
    )
    session.execute(
        update(Finding)
        .where(col(Finding.id).in_(select(ranked.c.id).where(ranked.c.rank == 1)))
        .values(is_baseline=True)
    )


def _upsert_sites(session: Session, study_id: str, sites: list[dict[str, Any]]) -> dict[str, int]:
    """Add the package's sites to the study's (registry sites keep their names); site pk by id."""
    existing = {
        site.site_id: site
        for site in session.execute(select(Site).where(col(Site.study_id) == study_id)).scalars()
    }
    for site in sites:
        known = existing.get(site["site_id"])
        if known is None:
            known = Site(study_id=study_id, site_id=site["site_id"], country=site["country"])
            session.add(known)
            existing[site["site_id"]] = known
        elif known.country is None:
            known.country = site["country"]
    session.flush()
    return {site_id: site.id for site_id, site in existing.items() if site.id is not None}


def _replace_criteria(
    session: Session, study_id: str, criteria: list[dict[str, Any]]
) -> dict[tuple[str, str], int]:
    """The package's criteria replace the study's (IE rows were deleted above); a package without
    TI or IE keeps the criteria the study has (from its registry record)."""
    if criteria:
        session.execute(delete(Criterion).where(col(Criterion.study_id) == study_id))
        _bulk_insert(session, Criterion, [{**c, "study_id": study_id} for c in criteria])
    return {
        (code, version): pk
        for pk, code, version in session.execute(
            select(col(Criterion.id), col(Criterion.code), col(Criterion.protocol_version)).where(
                col(Criterion.study_id) == study_id
            )
        ).all()
    }
