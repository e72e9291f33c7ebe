"""Counts precomputed at load time (DESIGN.md performance rules): what cannot be fast from raw rows
at scale is counted once per load, here, in the same transaction as the load. The queries read
them back (``queries.baseline``, ``queries.safety_counts``).

Table 1's medians and quartiles need every value; a million findings cannot be read per page view.
So each load counts subjects per (site, cohort, planned arm, variable, value), plus each group's
size: any site scope and any population is then an exact sum of these rows, and the all-sites rows
(the same counts summed over sites) serve the unscoped view in a few thousand rows.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, delete, func, insert, select
from sqlmodel import Session, col

from dashboard.metrics import labs
from dashboard.metrics.ae_rules import SUMMARY_CATEGORIES, WORST_DIMENSIONS
from dashboard.metrics.kri import qtl_by_cut
from dashboard.metrics.kri_catalogue import QTLS
from dashboard.metrics.lab_grades import grade_records
from dashboard.metrics.table_one import Variable, counts_from_values
from dashboard.models import (
    AdverseEventCount,
    BaselineCount,
    BaselineVariable,
    DataCut,
    Finding,
    LabBoxStats,
    LabCount,
    LabGradeSummary,
    LabSubjectSummary,
    LiverSummary,
    QtlExcursion,
    SiteKriCount,
    StudyFlag,
    Subject,
)
from dashboard.models import AdverseEventMeasure as Measure
from dashboard.queries import adverse_events as ae
from dashboard.queries import changes, site_risk
from dashboard.queries import labs as lab_queries
from dashboard.queries.baseline import (
    FAILED,
    NOT_ALLOCATED,
    baseline_values,
    catalogue_from_findings,
)
from dashboard.results.dates import as_date

GROUP = ["site_pk", "cohort", "arm"]
CHUNK_ROWS = 50_000  # rows per executemany


def build_baseline_counts(
    session: Session, *, study_id: str, catalogue: pd.DataFrame
) -> pd.DataFrame:
    """Subjects per (site_pk, cohort, arm, key, value_num, value_text) for every variable of the
    catalogue, with each (site_pk, cohort, arm) group's size under ``SUBJECTS_KEY``; the
    all-sites sums follow with ``all_sites`` True."""
    keys = tuple(catalogue["key"])
    values = baseline_values(
        session, study_id=study_id, scope=None, population="screened", by="arm", keys=keys
    )
    # The planned arm only names an enrolled cohort's column; the others are columns of their own.
    values["arm"] = values["column"].where(~values["cohort"].isin([FAILED, NOT_ALLOCATED]), None)
    values["site_pk"] = values["site_pk"].astype("Int64")
    variables = [
        Variable(key=key, label=key, unit=None, categorical=bool(categorical))
        for key, categorical in zip(catalogue["key"], catalogue["categorical"], strict=True)
    ]
    per_site = counts_from_values(values, variables, by=GROUP).assign(all_sites=False)
    all_sites = (
        per_site.groupby(["cohort", "arm", "key", "value_num", "value_text"], dropna=False)[
            "subjects"
        ]
        .sum()
        .reset_index()
        .assign(all_sites=True, site_pk=None)
    )
    return pd.concat([per_site, all_sites], ignore_index=True)


def rebuild_baseline_counts(session: Session, study_id: str) -> int:
    """Replace the study's baseline counts with counts of its current rows; returns the number
    of count rows. Runs inside the caller's transaction: a failed load leaves the old counts."""
    session.execute(delete(BaselineCount).where(col(BaselineCount.study_id) == study_id))
    session.execute(delete(BaselineVariable).where(col(BaselineVariable.study_id) == study_id))
    catalogue = catalogue_from_findings(session, study_id=study_id)
    session.execute(
        insert(BaselineVariable),
        [
            {
                "study_id": study_id,
                "key": row["key"],
                "label": row["label"],
                "unit": row["unit"] if isinstance(row["unit"], str) else None,
                "categorical": bool(row["categorical"]),
                "subjects": int(row["subjects"]),
                "position": position,
            }
            for position, row in enumerate(catalogue.to_dict("records"))
        ],
    )
    counts = build_baseline_counts(session, study_id=study_id, catalogue=catalogue)
    return _insert(session, BaselineCount, counts, study_id)


AE_COLUMNS = ["site_pk", "emergent", "measure", "arm", "key1", "key2", "subjects", "events"]


def _ae_rows(frame: pd.DataFrame, measure: str, emergent: bool, **columns: str) -> pd.DataFrame:
    """A per-site query frame as AdverseEventCount rows: ``columns`` maps a row field (arm, key1,
    key2, subjects, events) to the frame's column."""
    given = {"site_pk": "site_pk", **columns}
    # One construction from arrays and constants (a column per assignment cost milliseconds a
    # table, forty tables a load).
    data: dict[str, Any] = {
        field: frame[given[field]].array if field in given else None for field in AE_COLUMNS
    }
    data["measure"], data["emergent"] = str(measure), emergent
    return pd.DataFrame(data, index=pd.RangeIndex(len(frame)))


def _change_rows(session: Session, *, study_id: str) -> list[pd.DataFrame]:
    """The AEs new and changed since each cut of the study (the "new since" figures), per site:
    measure ``changes``, key1 the cut compared with, key2 the figure, the count under ``events``
    (``subjects`` 0: these are event counts). A study-wide marker says they were counted."""
    frames = [
        pd.DataFrame(
            [
                {
                    "emergent": False,
                    "measure": str(Measure.STUDY),
                    "key1": str(StudyFlag.CHANGES_COUNTED),
                    "subjects": 1,
                }
            ]
        ).reindex(columns=AE_COLUMNS)
    ]
    cuts = session.execute(
        select(col(DataCut.id)).where(col(DataCut.study_id) == study_id)
    ).scalars()
    for cut_id in cuts:
        by_site = changes.adverse_event_changes_by_site(
            session, study_id=study_id, since_cut_id=cut_id
        )
        found = by_site.melt(id_vars="site_pk", var_name="key2", value_name="events")
        frames.append(
            _ae_rows(
                found.assign(key1=str(cut_id), subjects=0),
                Measure.CHANGES,
                False,
                key1="key1",
                key2="key2",
                subjects="subjects",
                events="events",
            )
        )
    return frames


CODE = ":code"  # suffix of a key column's codes, worked out once per load (``_with_codes``)
# Combined group ids stay below this (int64), renumbered before they would not.
ID_BOUND = 2**62


def _codes(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, int]:
    """Each value's code in column ``name`` and a bound on the codes (NULL a value of its own,
    as in SQL's GROUP BY): the column's codes from ``_with_codes`` where it has them."""
    if name + CODE in frame.columns:
        codes = frame[name + CODE].to_numpy()
        return codes, int(codes.max()) + 1 if len(codes) else 0
    found, uniques = pd.factorize(frame[name], use_na_sentinel=False)
    return found.astype(np.int64), len(uniques)


def _with_codes(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the codes of its key columns ``names``, once for every tally of it (each
    tally factorising its keys again was a second at 250,000 AEs)."""
    return frame.assign(**{name + CODE: _codes(frame, name)[0] for name in names})


def _dense(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids renumbered 0 .. n-1 in order of first appearance, and the first position of
    each (hashed, not sorted: a sort per group-by key was a second at 250,000 AEs)."""
    codes, _ = pd.factorize(ids)
    codes = codes.astype(np.int64)
    if not len(codes):
        return codes, codes
    # A code appears first where it exceeds every code before it.
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], codes[1:] > seen[:-1])))
    return codes, first


def _groups(frame: pd.DataFrame, by: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group of the ``by`` columns (0 .. n-1; NULL keys a group of their own, as in
    SQL's GROUP BY) and the first row of each group."""
    group, bound = np.zeros(len(frame), dtype=np.int64), 1
    for name in by:
        codes, distinct = _codes(frame, name)
        if bound * max(distinct, 1) >= ID_BOUND:
            group, first = _dense(group)
            bound = len(first)
        group, bound = group * distinct + codes, bound * max(distinct, 1)
    return _dense(group)


def _tally(events: pd.DataFrame, by: list[str], flags: Sequence[str] = ()) -> pd.DataFrame:
    """Per group of ``by`` (NULL keys a group, as SQL's GROUP BY): ``events`` (rows) and
    ``subjects`` (distinct subject_pk); for each of ``flags`` (1 or 0), ``<flag>_events`` and
    ``<flag>_subjects`` counted among the rows where the flag is 1. Only groups with a row.

    Counted with integer codes and bincounts: a pandas group-by per table cost more than the
    table's SQL on a small study (twenty of them per load)."""
    group, first = _groups(events, by)
    size = len(first)
    subject, subjects = _codes(events, "subject_pk")
    # A (group, subject) pair once: a subject counts once in a group (subject_pk is never NULL).
    pair, pair_first = _dense(group * subjects + subject)
    pair_group = group[pair_first]
    columns: dict[str, Any] = {name: events[name].array.take(first) for name in by}
    columns["events"] = np.bincount(group, minlength=size)
    columns["subjects"] = np.bincount(pair_group, minlength=size)
    for flag in flags:
        flagged = events[flag].to_numpy() == 1
        columns[f"{flag}_events"] = np.bincount(group[flagged], minlength=size)
        columns[f"{flag}_subjects"] = np.bincount(
            pair_group[np.unique(pair[flagged])], minlength=size
        )
    return pd.DataFrame(columns)


def _worst(events: pd.DataFrame, rank: str) -> pd.DataFrame:
    """Subjects per site_pk, arm and their highest ``rank`` over their events (a subject counts
    once, at that rank): site_pk, arm, rank, subjects."""
    group, first = _groups(events, ["subject_pk", "site_pk", "arm"])
    highest = np.full(len(first), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(highest, group, events[rank].to_numpy(dtype=np.int64))
    per_subject = pd.DataFrame(
        {name: events[name].array.take(first) for name in ("subject_pk", "site_pk", "arm")}
    )
    counted = _tally(per_subject.assign(rank=highest), ["site_pk", "arm", "rank"])
    return counted[["site_pk", "arm", "rank", "subjects"]]


def _safety_frames(
    facts: pd.DataFrame, *, emergent: bool, from_ds: pd.DataFrame | None
) -> list[pd.DataFrame]:
    """The per-site safety tables of ``queries.adverse_events`` (their ``per_site`` forms) counted
    from the AEs' facts (``adverse_event_facts``) as AdverseEventCount rows: the same filters and
    groups as those queries, in pandas over one read. ``from_ds``: discontinuation read from DS
    (``discontinued_from_ds_by_site``), else None."""
    counted = facts[facts["emergent"] == 1] if emergent else facts
    members = counted[counted["member"] == 1]
    headline = _tally(counted, ["site_pk"], ["serious"])
    frames = [
        _ae_rows(
            headline.assign(key1=key),
            Measure.HEADLINE,
            emergent,
            key1="key1",
            subjects=subjects,
            events=events,
        )
        for key, subjects, events in (
            ("any", "subjects", "events"),
            ("serious", "serious_subjects", "serious_events"),
        )
    ]
    keys = [key for key, _label in SUMMARY_CATEGORIES]
    if from_ds is not None:
        keys.remove("discontinuation")
    by_arm = _tally(members, ["site_pk", "arm"], keys)
    frames += [
        _ae_rows(
            by_arm.assign(category=key),
            Measure.CATEGORY,
            emergent,
            arm="arm",
            key1="category",
            subjects=f"{key}_subjects",
            events=f"{key}_events",
        )
        for key in keys
    ]
    if from_ds is not None:
        frames.append(
            _ae_rows(
                from_ds.assign(category="discontinuation", events=None),
                Measure.CATEGORY,
                emergent,
                arm="arm",
                key1="category",
                subjects="subjects",
                events="events",
            )
        )
    outside = _tally(
        counted.assign(outside=1 - counted["member"]), ["site_pk"], ["outside", "graded", "uncoded"]
    )
    for key1, subjects, events in (
        ("outside", "outside_subjects", "outside_events"),
        ("graded", None, "graded_events"),
        ("uncoded", None, "uncoded_events"),
    ):
        frames.append(
            _ae_rows(
                outside.assign(key1=key1, none=0),
                Measure.OUTSIDE,
                emergent,
                key1="key1",
                subjects=subjects or "none",
                events=events,
            )
        )
    frames += [
        _ae_rows(
            _tally(members, ["site_pk", "arm", "soc", "pt"]),
            Measure.PT,
            emergent,
            arm="arm",
            key1="soc",
            key2="pt",
            subjects="subjects",
            events="events",
        ),
        _ae_rows(
            _tally(members, ["site_pk", "arm", "soc"]),
            Measure.SOC,
            emergent,
            arm="arm",
            key1="soc",
            subjects="subjects",
            events="events",
        ),
    ]
    for dimension in WORST_DIMENSIONS:
        worst = _worst(members, f"rank_{dimension}")
        frames.append(
            _ae_rows(
                worst.assign(key1=worst["rank"].astype(str)),
                Measure.WORST.of(dimension),
                emergent,
                arm="arm",
                key1="key1",
                subjects="subjects",
            )
        )
        frames.append(
            _ae_rows(
                _tally(members, ["site_pk", "arm", f"value_{dimension}"]),
                Measure.VALUE.of(dimension),
                emergent,
                arm="arm",
                key1=f"value_{dimension}",
                subjects="subjects",
                events="events",
            )
        )
    return frames


def build_adverse_event_counts(session: Session, *, study_id: str) -> pd.DataFrame:
    """Every safety table of the Adverse events and Overview pages, per site, as the pages' own
    queries (``queries.adverse_events`` with ``per_site``) would count them, counted in pandas
    from one read of the AEs' facts (``adverse_event_facts``: each rule the pages' SQL); then the
    all-sites sums. Treatment-emergent variants only where they can be told: first-dose dates or
    the sponsor's AETRTEM (else no switch)."""
    facts = ae.adverse_event_facts(session, study_id=study_id)
    keys = ["site_pk", "subject_pk", "arm", "soc", "pt"]
    facts = _with_codes(facts, [*keys, *(f"value_{d}" for d in WORST_DIMENSIONS)])
    # Discontinuation is read from DS where no AE of the study gives AEACN (``safety_summary``).
    from_ds = not bool(facts["action_given"].any())
    ds = ae.discontinued_from_ds_by_site(session, study_id=study_id) if from_ds else None
    frames = [
        # Study-wide, not per site: whether discontinuation is read from DS.
        pd.DataFrame(
            [
                {
                    "site_pk": None,
                    "emergent": False,
                    "measure": str(Measure.STUDY),
                    "key1": str(StudyFlag.DISCONTINUATION_FROM_DS),
                    "subjects": int(from_ds),
                }
            ]
        ).reindex(columns=AE_COLUMNS)
    ]
    dated = ae.safety_population(session, study_id=study_id, scope=None).tells_emergent
    for emergent in (False, True) if dated else (False,):
        frames += _safety_frames(facts, emergent=emergent, from_ds=ds)
    frames += _change_rows(session, study_id=study_id)
    frames.append(
        _ae_rows(
            _tally(facts, ["site_pk", "soc"]),
            Measure.SOC_ALL,
            False,
            key1="soc",
            subjects="subjects",
            events="events",
        )
    )
    per_site = pd.concat(frames, ignore_index=True).assign(all_sites=False)
    # Counts as nullable integers: the sums below stay vectorised (no per-group Python) and an
    # events figure no table gives stays NULL.
    per_site = per_site.astype({"subjects": "Int64", "events": "Int64"})
    study_wide = per_site["measure"] == str(Measure.STUDY)
    per_site.loc[study_wide, "all_sites"] = True
    grouped = per_site[~study_wide].groupby(
        ["emergent", "measure", "arm", "key1", "key2"], dropna=False
    )
    summed = (
        grouped["subjects"]
        .sum()
        .to_frame()
        .assign(events=grouped["events"].sum(min_count=1))
        .reset_index()
        .assign(all_sites=True, site_pk=None)
    )
    return pd.concat([per_site, summed], ignore_index=True)


def rebuild_adverse_event_counts(session: Session, study_id: str) -> int:
    """Replace the study's AE counts with counts of its current rows; returns the row count."""
    session.execute(delete(AdverseEventCount).where(col(AdverseEventCount.study_id) == study_id))
    counts = build_adverse_event_counts(session, study_id=study_id)
    return _insert(session, AdverseEventCount, counts, study_id)


def rebuild_precomputed_counts(session: Session, study_id: str) -> None:
    """Every precomputed count of the study, after a load, in the load's transaction."""
    rebuild_baseline_counts(session, study_id)
    rebuild_adverse_event_counts(session, study_id)
    rebuild_kri_counts(session, study_id)
    rebuild_lab_summaries(session, study_id)


# Subjects summarised at a time: their records of a domain are read and counted together (at a
# few dozen records each, tens of thousands of rows: bounded memory whatever the study's size).
LAB_BATCH_SUBJECTS = 2_000
LAB_SUMMARY_TABLES = (LabSubjectSummary, LabGradeSummary, LiverSummary, LabCount, LabBoxStats)


def _subject_batches(session: Session, study_id: str) -> list[tuple[int, int]]:
    """(first, last) subject keys of batches of ``LAB_BATCH_SUBJECTS`` subjects with a lab or
    vital-sign record."""
    found = session.execute(
        select(col(Subject.id))
        .where(
            col(Subject.study_id) == study_id,
            select(col(Finding.id))
            .where(
                col(Finding.subject_pk) == col(Subject.id),
                col(Finding.domain).in_(lab_queries.LAB_DOMAINS),
            )
            .exists(),
        )
        .order_by(col(Subject.id))
    ).scalars()
    keys = [int(k) for k in found]
    return [
        (keys[i], keys[min(i + LAB_BATCH_SUBJECTS, len(keys)) - 1])
        for i in range(0, len(keys), LAB_BATCH_SUBJECTS)
    ]


def rebuild_lab_summaries(session: Session, study_id: str) -> int:
    """Replace the study's lab summaries (``models.LabSubjectSummary`` and its siblings: what
    the Labs page counts, decided per subject by ``metrics.labs.subject_summaries``) with those of
    its current findings; returns the subject-measurement rows written."""
    for table in LAB_SUMMARY_TABLES:
        session.execute(delete(table).where(col(table.study_id) == study_id))
    pks = dict(
        session.execute(
            select(col(Subject.usubjid), col(Subject.id)).where(col(Subject.study_id) == study_id)
        ).all()
    )
    written = 0
    # The values for the boxes by visit, kept compact across batches (a measurement as a number,
    # arm and visit as categories): quartiles need every value of a measurement at once.
    numbers: dict[tuple[Any, ...], int] = {}
    values: list[pd.DataFrame] = []
    for batch in _subject_batches(session, study_id):
        for domain in lab_queries.LAB_DOMAINS:
            records = lab_queries.lab_records(
                session, study_id=study_id, scope=None, domain=domain, subject_pks=batch
            )
            if records.empty:
                continue
            written += _insert_lab_summaries(session, study_id, records, pks)
            values.append(_box_values(records, numbers))
    _insert(session, LabBoxStats, _boxes(values, numbers), study_id)
    per_site = lab_queries.site_lab_counts(session, study_id=study_id)
    keys = [*labs.MEASUREMENT_KEY, "arm"]
    all_sites = per_site.groupby(keys, dropna=False, sort=False).agg(
        test=("test", "max"),
        category=("category", "max"),
        **{name: (name, "sum") for name in lab_queries.COUNTS},
    )
    _insert(session, LabCount, per_site.assign(all_sites=False), study_id)
    _insert(session, LabCount, all_sites.reset_index().assign(all_sites=True), study_id)
    return written


def _box_values(records: pd.DataFrame, numbers: dict[tuple[Any, ...], int]) -> pd.DataFrame:
    """The records' values (those with one) as the boxes need them, every text as a number of
    ``numbers`` (a measurement's key, an arm, a visit: a million values stay a few arrays):
    measurement, arm, visit, visit number, value."""
    known = records[records["value"].notna()]

    def numbered(columns: list[str]) -> np.ndarray:
        groups = known.groupby(columns, dropna=False, sort=False)
        firsts = groups.head(1)[columns].astype(object)
        local = [
            numbers.setdefault((*columns, *key), len(numbers))
            for key in firsts.where(firsts.notna(), None).itertuples(index=False, name=None)
        ]
        return np.asarray(local, dtype=np.int32)[groups.ngroup().to_numpy()]

    return pd.DataFrame(
        {
            "measurement": numbered(labs.MEASUREMENT_KEY),
            "arm": numbered(["arm"]),
            "visit": numbered(["visit"]),
            "visit_number": known["visit_number"].to_numpy(dtype=float),
            "value": known["value"].to_numpy(dtype=float),
        }
    )


def _boxes(values: list[pd.DataFrame], numbers: dict[tuple[Any, ...], int]) -> pd.DataFrame:
    """``labs.box_stats`` of every measurement over all sites, per arm and all arms pooled (arm
    None), with its key and ``unscheduled`` (its values at unscheduled visits)."""
    if not values:
        return pd.DataFrame()
    every = pd.concat(values, ignore_index=True)
    # Each number's text again: the key parts after the column names it was numbered with.
    texts = {number: key[-1] for key, number in numbers.items()}
    keys = {
        number: key[len(labs.MEASUREMENT_KEY) :]
        for key, number in numbers.items()
        if key[: len(labs.MEASUREMENT_KEY)] == tuple(labs.MEASUREMENT_KEY)
    }
    parts = []
    for number, found in every.groupby("measurement", sort=True):
        found = found.assign(
            arm=found["arm"].map(texts).astype(object),
            visit=found["visit"].map(texts).astype(object),
        )
        scheduled = labs.scheduled_values(found)
        per_arm = labs.box_stats(scheduled)
        pooled = labs.box_stats(scheduled.assign(arm="")).assign(arm=None)
        both = pd.concat([per_arm, pooled], ignore_index=True)
        if both.empty:
            continue
        both = both.assign(unscheduled=len(found) - len(scheduled))
        for name, part in zip(labs.MEASUREMENT_KEY, keys[int(str(number))], strict=True):
            both[name] = part
        parts.append(both)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _insert_lab_summaries(
    session: Session, study_id: str, records: pd.DataFrame, pks: dict[str, int]
) -> int:
    key = labs.MEASUREMENT_KEY
    ids = records.groupby(key, dropna=False, sort=False).ngroup()
    records = records.assign(measurement=ids)
    names = records.groupby("measurement").agg(
        **{k: (k, "first") for k in key},
        test=("test", "first"),
        category=("category", "first"),
    )
    lab = records[records["domain"] == "LB"]
    summaries = labs.subject_summaries(records, grade_records(lab))

    def keyed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        out = frame.merge(names[columns], left_on="measurement", right_index=True, how="left")
        return out.assign(subject_pk=out["usubjid"].map(pks)).drop(
            columns=["usubjid", "measurement"]
        )

    table = keyed(summaries.measurements, [*key, "test", "category"])
    grades = keyed(summaries.grades, key)
    liver = summaries.liver.assign(
        subject_pk=summaries.liver["usubjid"].map(pks),
        pair_gap_days=summaries.liver["pair_gap_days"].astype("Int64"),
    ).drop(columns=["usubjid"])
    for frame, columns in (
        (table, ["range_worst_date"]),
        (grades, ["worst_date"]),
        (liver, ["peak_alt_date", "peak_ast_date", "peak_bili_date"]),
    ):
        for name in columns:
            frame[name] = [as_date(v) for v in frame[name]]
    written = _insert(session, LabSubjectSummary, table, study_id)
    _insert(session, LabGradeSummary, grades, study_id)
    _insert(session, LiverSummary, liver, study_id)
    return written


def rebuild_kri_counts(session: Session, study_id: str) -> int | None:
    """The KRI counts of the study's latest cut, kept with that cut (earlier cuts keep theirs: a
    flag's history is read from them). Returns the cut's id (None: the study has no cut)."""
    cut = session.execute(
        select(col(DataCut.id), col(DataCut.cutoff_date), col(DataCut.row_counts))
        .where(col(DataCut.study_id) == study_id)
        .order_by(col(DataCut.id).desc())
        .limit(1)
    ).first()
    if cut is None:
        return None
    cut_id, cutoff, row_counts = cut
    counts = site_risk.kri_counts(
        session,
        study_id=study_id,
        cutoff=as_date(cutoff),
        domains=tuple(str(d).upper() for d in (row_counts or {})),
    )
    session.execute(delete(SiteKriCount).where(col(SiteKriCount.cut_id) == cut_id))
    _insert(session, SiteKriCount, counts.assign(cut_id=cut_id), study_id)
    open_excursions(session, study_id)
    return int(cut_id)


def open_excursions(session: Session, study_id: str) -> list[str]:
    """Open an excursion record for each quality tolerance limit the study's latest cut crosses
    and that has no open record yet (one stays open, across cuts, until someone closes it).
    Returns the parameters opened. Run at every load and when a limit is set."""
    latest = session.execute(
        select(func.max(col(SiteKriCount.cut_id))).where(col(SiteKriCount.study_id) == study_id)
    ).scalar_one_or_none()
    if latest is None:
        return []
    counts = site_risk.stored_kri_counts(session, study_id=study_id)
    counts = counts[counts["cut_id"] == latest]
    settings = site_risk.qtl_settings(session, study_id=study_id)
    already = set(
        session.execute(
            select(col(QtlExcursion.parameter)).where(
                col(QtlExcursion.study_id) == study_id, col(QtlExcursion.closed).is_(False)
            )
        ).scalars()
    )
    opened = []
    for qtl in QTLS:
        rows = counts[counts["kri"] == qtl.kri].dropna(subset=["denominator"])
        totals = pd.DataFrame(
            {
                "cut_id": [latest],
                "numerator": [float(rows["numerator"].sum())],
                "denominator": [float(rows["denominator"].sum())],
            }
        )
        judged = qtl_by_cut(totals, *settings[qtl.id])
        if qtl.id in already or judged.empty:
            continue
        first = judged.iloc[0]
        value, limit = float(first["proportion"]), float(first["limit"])
        if bool(first["over"]):
            session.add(
                QtlExcursion(
                    study_id=study_id,
                    parameter=qtl.id,
                    cut_id=int(latest),
                    value=value,
                    limit=limit,
                    opened_at=dt.datetime.now(dt.UTC),
                )
            )
            opened.append(qtl.id)
    session.flush()
    return opened


def _insert(session: Session, model: Any, frame: pd.DataFrame, study_id: str) -> int:
    """Bulk-insert a frame of counts with the study's id (NaN and pd.NA become NULL)."""
    if frame.empty:
        return 0
    values = [
        frame[name].astype(object).where(frame[name].notna(), None).tolist()
        for name in frame.columns
    ]
    values.append([study_id] * len(frame))
    insert_columns(session, model.__table__, [*map(str, frame.columns), "study_id"], values)
    return len(frame)


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` (value tuples in ``columns`` order) in chunks of ``CHUNK_ROWS``, in the
    session's transaction; a column left out gets its default, as a Core insert gives it.

    On SQLite the rows go to the driver's executemany as tuples, each column's bind processing
    (dates as text, JSON) applied once per value: SQLAlchemy's building of a parameter dict per
    row was a third of a scale import (2.4 M findings). Elsewhere (or where a default is a
    function), a Core executemany."""
    iterator = iter(rows)
    for chunk in iter(lambda: list(islice(iterator, CHUNK_ROWS)), []):
        _insert_chunk(session, table, columns, [*zip(*chunk, strict=True)])


def insert_columns(
    session: Session, table: Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """``insert_rows`` with the values given column by column (one sequence per name of
    ``columns``, all of a length): a frame's columns go in without being turned into rows and
    back (at half a million counts, a second of a load)."""
    total = len(values[0]) if values else 0
    for start in range(0, total, CHUNK_ROWS):
        _insert_chunk(
            session, table, columns, [column[start : start + CHUNK_ROWS] for column in values]
        )


def _insert_chunk(
    session: Session, table: Table, columns: Sequence[str], values: list[Sequence[Any]]
) -> None:
    """One executemany of ``values`` (a sequence per name of ``columns``, all of a length)."""
    connection = session.connection()
    dialect = connection.dialect
    missing = [c for c in table.columns if c.name not in columns and c.default is not None]
    scalar_defaults = all(getattr(c.default, "is_scalar", False) for c in missing)
    if dialect.name != "sqlite" or not scalar_defaults:
        connection.execute(
            insert(table),
            [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)],
        )
        return
    names = [*columns, *(c.name for c in missing)]
    size = len(values[0])
    values = [*values, *([getattr(c.default, "arg", None)] * size for c in missing)]
    for index, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values[index] = _processed(process, values[index])
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) VALUES ({', '.join('?' * len(names))})"
    )
    connection.exec_driver_sql(sql, list(zip(*values, strict=True)))


def _processed(process: Any, values: Sequence[Any]) -> list[Any]:
    """``process`` of every value, computed once per distinct value where the values can be
    told apart by a dict (dates repeat: a million findings hold a few thousand days)."""
    try:
        once = {value: process(value) for value in set(values)}
    except TypeError:  # values a dict cannot hold (JSON's dicts and lists)
        return [process(value) for value in values]
    return [once[value] for value in values]
