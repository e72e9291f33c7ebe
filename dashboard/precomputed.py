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

import pandas as pd
from sqlalchemy import Table, delete, func, insert, select
from sqlmodel import Session, col

from dashboard.metrics.ae_rules import WORST_DIMENSIONS
from dashboard.metrics.kri import qtl_by_cut
from dashboard.metrics.kri_catalogue import QTLS
from dashboard.metrics.table_one import Variable, counts_from_values
from dashboard.models import (
    AdverseEventCount,
    BaselineCount,
    BaselineVariable,
    DataCut,
    QtlExcursion,
    SiteKriCount,
    StudyFlag,
)
from dashboard.models import AdverseEventMeasure as Measure
from dashboard.queries import adverse_events as ae
from dashboard.queries import changes, site_risk
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
    out = pd.DataFrame({field: frame[source] for field, source in columns.items()})
    out["site_pk"] = frame["site_pk"]
    out["measure"], out["emergent"] = str(measure), emergent
    return out.reindex(columns=AE_COLUMNS)


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


def build_adverse_event_counts(session: Session, *, study_id: str) -> pd.DataFrame:
    """Every safety table of the Adverse events and Overview pages, per site, from the same SQL
    the pages would run (``queries.adverse_events`` with ``per_site``); then the all-sites sums.
    Treatment-emergent variants only where they can be told: first-dose dates or the sponsor's
    AETRTEM (else no switch)."""
    frames = []
    dated = ae.safety_population(session, study_id=study_id, scope=None).tells_emergent
    for emergent in (False, True) if dated else (False,):
        headline = ae.count_adverse_events_by_site(
            session, study_id=study_id, treatment_emergent=emergent
        )
        frames += [
            _ae_rows(
                headline.assign(key1="any"),
                Measure.HEADLINE,
                emergent,
                key1="key1",
                subjects="subjects",
                events="events",
            ),
            _ae_rows(
                headline.assign(key1="serious"),
                Measure.HEADLINE,
                emergent,
                key1="key1",
                subjects="serious_subjects",
                events="serious_events",
            ),
        ]
        summary = ae.safety_summary(
            session, study_id=study_id, scope=None, treatment_emergent=emergent, per_site=True
        )
        frames.append(
            _ae_rows(
                summary.counts,
                Measure.CATEGORY,
                emergent,
                arm="arm",
                key1="category",
                subjects="subjects",
                events="events",
            )
        )
        outside = summary.outside_by_site
        assert outside is not None
        for key1, subjects, events in (
            ("outside", "outside_subjects", "outside_events"),
            ("graded", None, "graded"),
            ("uncoded", None, "uncoded"),
        ):
            found = outside.assign(key1=key1, none=0)
            frames.append(
                _ae_rows(
                    found,
                    Measure.OUTSIDE,
                    emergent,
                    key1="key1",
                    subjects=subjects or "none",
                    events=events,
                )
            )
        if not emergent:
            # Study-wide, not per site: whether discontinuation is read from DS.
            frames.append(
                pd.DataFrame(
                    [
                        {
                            "site_pk": None,
                            "emergent": False,
                            "measure": str(Measure.STUDY),
                            "key1": str(StudyFlag.DISCONTINUATION_FROM_DS),
                            "subjects": int(summary.discontinuation_from_ds),
                        }
                    ]
                ).reindex(columns=AE_COLUMNS)
            )
        terms = ae.incidence_by_term(
            session, study_id=study_id, scope=None, treatment_emergent=emergent, per_site=True
        )
        frames += [
            _ae_rows(
                terms.by_pt,
                Measure.PT,
                emergent,
                arm="arm",
                key1="soc",
                key2="pt",
                subjects="subjects",
                events="events",
            ),
            _ae_rows(
                terms.by_soc,
                Measure.SOC,
                emergent,
                arm="arm",
                key1="soc",
                subjects="subjects",
                events="events",
            ),
        ]
        for dimension in WORST_DIMENSIONS:
            worst = ae.subjects_by_worst_level(
                session,
                study_id=study_id,
                scope=None,
                dimension=dimension,
                treatment_emergent=emergent,
                per_site=True,
            )
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
            values = ae.events_by_source_value(
                session,
                study_id=study_id,
                scope=None,
                dimension=dimension,
                treatment_emergent=emergent,
                per_site=True,
            )
            frames.append(
                _ae_rows(
                    values,
                    Measure.VALUE.of(dimension),
                    emergent,
                    arm="arm",
                    key1="value",
                    subjects="subjects",
                    events="events",
                )
            )
    frames += _change_rows(session, study_id=study_id)
    by_soc = ae.incidence_by_soc(session, study_id=study_id, scope=None, per_site=True)
    frames.append(
        _ae_rows(
            by_soc, Measure.SOC_ALL, False, key1="body_system", subjects="subjects", events="events"
        )
    )
    per_site = pd.concat(frames, ignore_index=True).assign(all_sites=False)
    study_wide = per_site["measure"] == str(Measure.STUDY)
    per_site.loc[study_wide, "all_sites"] = True
    summed = (
        per_site[~study_wide]
        .groupby(["emergent", "measure", "arm", "key1", "key2"], dropna=False)
        .agg(subjects=("subjects", "sum"), events=("events", lambda e: e.sum(min_count=1)))
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
    columns = [
        frame[name].astype(object).where(frame[name].notna(), None).tolist()
        for name in frame.columns
    ]
    rows = zip(*columns, [study_id] * len(frame), strict=True)
    insert_rows(session, model.__table__, [*map(str, frame.columns), "study_id"], rows)
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
    connection = session.connection()
    dialect = connection.dialect
    missing = [c for c in table.columns if c.name not in columns and c.default is not None]
    scalar_defaults = all(getattr(c.default, "is_scalar", False) for c in missing)
    iterator = iter(rows)
    chunks = iter(lambda: list(islice(iterator, CHUNK_ROWS)), [])
    if dialect.name != "sqlite" or not scalar_defaults:
        statement = insert(table)
        for chunk in chunks:
            connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in chunk])
        return
    names = [*columns, *(c.name for c in missing)]
    constants = tuple(getattr(c.default, "arg", None) for c in missing)
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) VALUES ({', '.join('?' * len(names))})"
    )
    for chunk in chunks:
        values: list[Sequence[Any]] = [*zip(*chunk, strict=True)]
        values += [[constant] * len(chunk) for constant in constants]
        for index, process in enumerate(processors):
            if process is not None:
                values[index] = _processed(process, values[index])
        connection.exec_driver_sql(sql, list(zip(*values, strict=True)))


def _processed(process: Any, values: Sequence[Any]) -> list[Any]:
    """``process`` of every value, computed once per distinct value where the values can be
    told apart by a dict (dates repeat: a million findings hold a few thousand days)."""
    try:
        once = {value: process(value) for value in set(values)}
    except TypeError:  # values a dict cannot hold (JSON's dicts and lists)
        return [process(value) for value in values]
    return [once[value] for value in values]
