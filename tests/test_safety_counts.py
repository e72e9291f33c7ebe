"""The safety tables read from the load-time AE counts equal the same tables computed from the raw
AEs, for every study, scope, treatment-emergent switch and dimension; without counts (a database
loaded before they existed) the raw answer is given."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from dashboard.db import make_engine
from dashboard.metrics.ae_rules import WORST_DIMENSIONS
from dashboard.models import AdverseEvent, AdverseEventCount, Subject
from dashboard.precomputed import _tally, _worst, rebuild_adverse_event_counts
from dashboard.queries import adverse_events, changes, safety_counts, studies
from dashboard.results.changes import AdverseEventChanges
from tests.databases import new_database_url

SCOPES: list[tuple[str, ...] | None] = [None, ("101",), ("102", "104")]


def _same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal as tables: same rows whatever their order, counts compared as numbers."""
    key = [c for c in left.columns if c not in ("subjects", "events")]
    ordered = [
        frame.sort_values(key, kind="stable").reset_index(drop=True).astype({"subjects": int})
        for frame in (left, right)
    ]
    pd.testing.assert_frame_equal(ordered[0], ordered[1], check_dtype=False)


def _compare(session: Session, study_id: str, scope: tuple[str, ...] | None, emergent: bool) -> int:
    """Every table both ways; returns how many subjects the unscoped summary counted (so a test
    knows it compared something)."""
    kwargs: dict[str, Any] = {
        "study_id": study_id,
        "scope": scope,
        "treatment_emergent": emergent,
    }
    assert safety_counts.stored_adverse_event_counts(
        session, **kwargs
    ) == adverse_events.count_adverse_events(session, **kwargs)
    summarised = safety_counts.safety_summary(session, **kwargs)
    computed = adverse_events.safety_summary(session, **kwargs)
    _same(summarised.counts, computed.counts)
    for figure in (
        "discontinuation_from_ds",
        "outside_events",
        "outside_subjects",
        "graded_events",
        "uncoded_events",
    ):
        assert getattr(summarised, figure) == getattr(computed, figure), figure
    terms = safety_counts.incidence_by_term(session, **kwargs)
    reference = adverse_events.incidence_by_term(session, **kwargs)
    _same(terms.by_pt, reference.by_pt)
    _same(terms.by_soc, reference.by_soc)
    for dimension in WORST_DIMENSIONS:
        readers: list[Callable[..., pd.DataFrame]] = [
            safety_counts.subjects_by_worst_level,
            adverse_events.subjects_by_worst_level,
        ]
        _same(*(read(session, **kwargs, dimension=dimension) for read in readers))
        readers = [safety_counts.events_by_source_value, adverse_events.events_by_source_value]
        _same(*(read(session, **kwargs, dimension=dimension) for read in readers))
    if not emergent:
        pd.testing.assert_frame_equal(
            safety_counts.incidence_by_soc(session, study_id=study_id, scope=scope),
            adverse_events.incidence_by_soc(session, study_id=study_id, scope=scope),
            check_dtype=False,
        )
    return int(summarised.counts["subjects"].sum())


@pytest.mark.parametrize("study_id", ["NCT06466850", "DEMO-MULTI"])
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("emergent", [False, True])
def test_demo_counts_equal_the_raw_tables(
    session: Session, study_id: str, scope: tuple[str, ...] | None, emergent: bool
) -> None:
    counted = _compare(session, study_id, scope, emergent)
    if scope is None:
        assert counted > 0


@pytest.mark.parametrize("emergent", [False, True])
def test_cdisc_pilot_counts_equal_the_raw_tables(pilot_db_url: str, emergent: bool) -> None:
    with Session(make_engine(pilot_db_url)) as session:
        assert _compare(session, "CDISCPILOT01", None, emergent) > 0
        assert _compare(session, "CDISCPILOT01", ("701", "710"), emergent) > 0


def test_without_counts_the_raw_rows_answer(tmp_path: Any) -> None:
    from dashboard.db import ensure_schema
    from dashboard.demo import build_multisite_study

    engine = make_engine(new_database_url(tmp_path, "old"))
    ensure_schema(engine)
    with Session(engine) as session:
        build_multisite_study(session)
        session.commit()
        with_counts = safety_counts.safety_summary(session, study_id="DEMO-MULTI", scope=None)
        session.execute(
            delete(AdverseEventCount).where(col(AdverseEventCount.study_id) == "DEMO-MULTI")
        )
        session.commit()
        without = safety_counts.safety_summary(session, study_id="DEMO-MULTI", scope=None)
    _same(with_counts.counts, without.counts)
    assert with_counts.counts["subjects"].sum() > 0


@pytest.mark.parametrize("scope", SCOPES)
def test_changes_since_each_cut_equal_the_raw_tables(
    session: Session, scope: tuple[str, ...] | None
) -> None:
    """The "new since" AE figures from the load-time counts equal those from the raw AEs, and
    both equal a pandas count of the AE rows' cut columns, for every cut compared with."""
    connection = session.connection()
    ae = pd.read_sql(
        "SELECT adverseevent.first_cut_id, adverseevent.updated_cut_id, adverseevent.serious, "
        "site.site_id FROM adverseevent JOIN subject ON subject.id = adverseevent.subject_pk "
        "JOIN site ON site.id = subject.site_pk WHERE subject.study_id = 'DEMO-MULTI'",
        connection,
    )
    cuts = pd.read_sql("SELECT id FROM datacut WHERE study_id = 'DEMO-MULTI'", connection)["id"]
    assert len(cuts) == 2
    if scope is not None:
        ae = ae[ae["site_id"].isin(scope)]
    for cut_id in cuts:
        new = ae["first_cut_id"] > cut_id
        expected = AdverseEventChanges(
            since_cut_id=int(cut_id),
            new_adverse_events=int(new.sum()),
            new_serious_adverse_events=int((new & (ae["serious"].str.upper() == "Y")).sum()),
            changed_adverse_events=int((~new & (ae["updated_cut_id"] > cut_id)).sum()),
        )
        kwargs: dict[str, Any] = {"study_id": "DEMO-MULTI", "scope": scope}
        kwargs["since_cut_id"] = int(cut_id)
        assert safety_counts.adverse_event_changes_since(session, **kwargs) == expected
        assert changes.adverse_event_changes_since(session, **kwargs) == expected
    first = changes.adverse_event_changes_since(
        session, study_id="DEMO-MULTI", scope=None, since_cut_id=int(cuts.min())
    )
    assert first.new_adverse_events > 0


def test_changes_without_their_counts_come_from_the_raw_rows(tmp_path: Any) -> None:
    from dashboard.db import ensure_schema
    from dashboard.demo import build_multisite_study

    engine = make_engine(new_database_url(tmp_path, "old-changes"))
    ensure_schema(engine)
    with Session(engine) as session:
        build_multisite_study(session)
        session.commit()
        first_cut = min(c.id for c in studies.data_cuts(session, study_id="DEMO-MULTI"))
        kwargs: dict[str, Any] = {
            "study_id": "DEMO-MULTI",
            "scope": None,
            "since_cut_id": first_cut,
        }
        counted = safety_counts.adverse_event_changes_since(session, **kwargs)
        # A study counted before the change counts existed: no marker, no rows.
        session.execute(
            delete(AdverseEventCount).where(
                col(AdverseEventCount.study_id) == "DEMO-MULTI",
                col(AdverseEventCount.measure).in_(("changes", "study")),
                col(AdverseEventCount.key1) != "discontinuation_from_ds",
            )
        )
        session.commit()
        assert safety_counts.adverse_event_changes_since(session, **kwargs) == counted
        # A screening period is answered from the raw rows too (the counts are per site).
        period = (dt.date(2000, 1, 1), dt.date(2100, 1, 1))
        with_period = safety_counts.adverse_event_changes_since(session, **kwargs, period=period)
        assert with_period == counted and counted.new_adverse_events > 0


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.astype(object).to_dict("records")]


def _key(site_pk: Any) -> int | None:
    return None if pd.isna(site_pk) else int(site_pk)


def test_tally_counts_as_sql_group_by() -> None:
    """``_tally`` and ``_worst`` give what GROUP BY with COUNT(*) and COUNT(DISTINCT subject)
    gives: NULL keys a group of their own, a subject once per group, a flag's subjects those
    with a flagged event. Figures counted by hand from the rows below."""
    events = pd.DataFrame(
        {
            "site_pk": pd.array([1, 1, 1, 2, None, None], dtype="Int64"),
            "arm": ["A", "A", "B", "A", "A", "A"],
            "subject_pk": [10, 10, 11, 20, 30, 31],
            "serious": [1, 0, 0, 1, 0, 0],
            "rank": [2, 3, 1, 0, 1, 1],
        }
    )
    found = _tally(events, ["site_pk", "arm"], ["serious"])
    columns = ["events", "subjects", "serious_events", "serious_subjects"]
    by_key = {(_key(r["site_pk"]), r["arm"]): tuple(r[c] for c in columns) for r in _records(found)}
    assert by_key == {
        (1, "A"): (2, 1, 1, 1),
        (1, "B"): (1, 1, 0, 0),
        (2, "A"): (1, 1, 1, 1),
        (None, "A"): (2, 2, 0, 0),
    }
    worst = _worst(events, "rank")
    counted = {
        (_key(r["site_pk"]), r["arm"], int(r["rank"])): r["subjects"] for r in _records(worst)
    }
    # Subject 10 counts once, at rank 3 (its highest); the two site-less subjects at rank 1.
    assert counted == {(1, "A", 3): 1, (1, "B", 1): 1, (2, "A", 0): 1, (None, "A", 1): 2}
    assert _tally(events.iloc[0:0], ["site_pk", "arm"], ["serious"]).empty


@pytest.mark.parametrize("emergent", [False, True])
def test_counts_with_blank_codes_and_a_subject_without_site(tmp_path: Any, emergent: bool) -> None:
    """NULL keys (a subject without a site, AEs without a PT or SOC) are counted as the raw
    queries' GROUP BY counts them, in the per-site rows and the all-sites sums alike."""
    from dashboard.db import ensure_schema
    from dashboard.demo import build_multisite_study

    engine = make_engine(new_database_url(tmp_path, "blanks"))
    ensure_schema(engine)
    with Session(engine) as session:
        build_multisite_study(session)
        with_ae = select(col(AdverseEvent.subject_pk)).join(
            Subject, col(Subject.id) == col(AdverseEvent.subject_pk)
        )
        subject = session.execute(
            with_ae.where(col(Subject.study_id) == "DEMO-MULTI").limit(1)
        ).scalar_one()
        session.execute(update(Subject).where(col(Subject.id) == subject).values(site_pk=None))
        events = select(col(AdverseEvent.id)).where(col(AdverseEvent.subject_pk) == subject)
        session.execute(
            update(AdverseEvent)
            .where(col(AdverseEvent.id).in_(events))
            .values(decoded_term=None, body_system=" ", grade=None)
        )
        rebuild_adverse_event_counts(session, "DEMO-MULTI")
        session.commit()
        assert _compare(session, "DEMO-MULTI", None, emergent) > 0
        assert _compare(session, "DEMO-MULTI", ("101",), emergent) >= 0
