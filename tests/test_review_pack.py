"""The pack's Review section (issue #20): exactly the unreviewed SAEs and the open queries, by an
independent count over the tables; a site-scoped pack has none of another site's; the PDF says
"None." for an empty list. And the demo studies carry the workflow: reviewed records, records
changed since review and open queries."""

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.access import CurrentUser
from dashboard.db import make_engine, session_scope
from dashboard.queries.studies import study_info
from dashboard.report.pack import MonitoringPack, build_pack
from dashboard.report.pdf import pack_pdf
from dashboard.results.review import HIDDEN_TEXT
from dashboard.review import open_query
from dashboard.views.context import ViewContext
from dashboard.views.review import states
from tests.databases import copy_database

MULTI = "DEMO-MULTI"
SEED = "NCT06466850"
STATE_AFTER = {"query": "open", "reopen": "open", "answer": "answered", "close": "closed"}


def _pack(session: Session, study: str, scope: tuple[str, ...] | None) -> MonitoringPack:
    info = study_info(session, study_id=study)
    assert info is not None
    ctx = ViewContext.for_viewer(info, unblinded=True, scope=scope, viewer_sites=scope)
    return build_pack(session, ctx, generated_at=dt.datetime(2026, 1, 31, tzinfo=dt.UTC))


def _sql(engine: Engine, query: str, **params: Any) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(text(query), connection, params=params)


def _unreviewed_saes(engine: Engine, study: str) -> pd.DataFrame:
    """natural_key, site_id of the SAEs the medical monitor has not reviewed in their present
    version: no latest mark, a withdrawn one, or one on an earlier version."""
    saes = _sql(
        engine,
        "SELECT a.natural_key, st.site_id, COALESCE(a.updated_cut_id, a.first_cut_id) AS v "
        "FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        "JOIN site st ON st.id = s.site_pk WHERE s.study_id = :s AND a.serious = 'Y'",
        s=study,
    )
    marks = _sql(
        engine,
        "SELECT natural_key, kind, record_cut_id FROM reviewevent WHERE id IN (SELECT MAX(id) "
        "FROM reviewevent WHERE study_id = :s AND entity = 'ae' AND role = 'medical-monitor' "
        "AND kind IN ('reviewed', 'unreviewed') GROUP BY natural_key)",
        s=study,
    ).set_index("natural_key")
    reviewed = [
        key in marks.index
        and marks.loc[key, "kind"] == "reviewed"
        and v <= marks.loc[key, "record_cut_id"]
        for key, v in zip(saes["natural_key"], saes["v"], strict=True)
    ]
    return saes[[not r for r in reviewed]]


def _open_queries(engine: Engine, study: str) -> pd.DataFrame:
    log = _sql(engine, "SELECT * FROM reviewevent WHERE study_id = :s ORDER BY id", s=study)
    queries = log[log["kind"] == "query"].copy()
    queries["state"] = [
        STATE_AFTER[log[(log["id"] == q) | (log["thread_id"] == q)]["kind"].iloc[-1]]
        for q in queries["id"]
    ]
    return queries[queries["state"] != "closed"]


@pytest.mark.parametrize("study", [SEED, MULTI])
def test_the_review_section_lists_exactly_the_unreviewed_saes_and_open_queries(
    session: Session, demo_engine: Engine, study: str
) -> None:
    pack = _pack(session, study, None)
    expected = _unreviewed_saes(demo_engine, study)
    assert sorted(pack.review_saes["Record"]) == sorted(expected["natural_key"])
    assert len(expected) > 0
    queries = _open_queries(demo_engine, study)
    assert sorted(pack.review_queries["Query"]) == sorted(queries["id"])
    assert len(queries) > 0
    # The question as written (an open-label or unblinded viewer reads it whole).
    by_id = queries.set_index("id")["text"]
    for number, question in zip(
        pack.review_queries["Query"], pack.review_queries["Question"], strict=True
    ):
        assert question == by_id[number]
    pdf = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pack_pdf(pack))).pages)
    assert "Unreviewed serious adverse events" in pdf and "Open queries" in pdf


def test_a_site_scoped_pack_has_no_other_site_s_review_rows(
    session: Session, demo_engine: Engine
) -> None:
    scope = ("101",)
    pack = _pack(session, MULTI, scope)
    expected = _unreviewed_saes(demo_engine, MULTI)
    expected = expected[expected["site_id"].isin(scope)]
    assert sorted(pack.review_saes["Record"]) == sorted(expected["natural_key"])
    assert set(pack.review_saes["Site"]) <= set(scope)
    queries = _open_queries(demo_engine, MULTI)
    assert sorted(pack.review_queries["Query"]) == sorted(
        queries[queries["site_id"].isin(scope)]["id"]
    )
    assert set(pack.review_queries["Site"]) <= set(scope)
    # A site with no open query and no unreviewed SAE: the lists say so.
    quiet = [
        s
        for s in _sql(demo_engine, "SELECT site_id FROM site WHERE study_id = :s", s=MULTI)[
            "site_id"
        ]
        if s not in set(_unreviewed_saes(demo_engine, MULTI)["site_id"]) | set(queries["site_id"])
    ]
    pack = _pack(session, MULTI, (quiet[0],))
    assert pack.review_saes.empty and pack.review_queries.empty
    pdf = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pack_pdf(pack))).pages)
    review = pdf[pdf.rindex("Unreviewed serious adverse events") :]
    assert review.count("None.") == 2


@pytest.mark.parametrize("study", [SEED, MULTI])
def test_the_demo_shows_the_workflow(session: Session, demo_engine: Engine, study: str) -> None:
    info = study_info(session, study_id=study)
    assert info is not None
    ctx = ViewContext.for_viewer(info, unblinded=True, scope=None, viewer_sites=None)
    found = pd.concat(
        [
            states(session, ctx, entity=e, role=r)
            for e in ("subject", "ae")
            for r in ("cra", "medical-monitor")
        ]
    )
    assert (found["review_state"] == "reviewed").sum() >= 1
    assert (found["review_state"] == "changed since review").sum() >= 1
    assert len(_open_queries(demo_engine, study).query("state == 'open'")) >= 1
    # Changed since review: marked on the interim cut, changed by the current one (plain SQL).
    changed = _sql(
        demo_engine,
        "SELECT COUNT(*) AS n FROM reviewevent r JOIN subject s ON s.usubjid = r.natural_key "
        "WHERE r.study_id = :s AND r.entity = 'subject' AND r.kind = 'reviewed' "
        "AND s.updated_cut_id > r.record_cut_id",
        s=study,
    )["n"].iloc[0]
    assert (found["review_state"] == "changed since review").sum() == changed


def test_a_blinded_reader_of_the_pack_does_not_read_an_unblinded_reviewer_s_question(
    demo_db_url: str, tmp_path: Path
) -> None:
    url = copy_database(demo_db_url, tmp_path, "review-pack-blinding")
    engine = make_engine(url)
    question = "Is the HIGH dose arm's event rate expected? (test)"
    with session_scope(engine) as session:
        # DEMO-MULTI made blinded, as a study whose TS TBLIND says so.
        session.execute(
            text("UPDATE study SET is_blinded = :b WHERE study_id = :s"), {"b": True, "s": MULTI}
        )
        info = study_info(session, study_id=MULTI)
        assert info is not None and info.counts_as_blinded
        key = _unreviewed_saes(engine, MULTI)["natural_key"].iloc[0]
        thread = open_query(
            session,
            user=CurrentUser(email="unblinded@test.example", role="admin", unblinded=True),
            study_id=MULTI,
            entity="ae",
            key=key,
            audience="medical-monitor",
            text=question,
        )
    with Session(engine) as session:
        info = study_info(session, study_id=MULTI)
        assert info is not None
        for unblinded, shown in ((True, question), (False, HIDDEN_TEXT)):
            ctx = ViewContext.for_viewer(info, unblinded=unblinded, scope=None, viewer_sites=None)
            pack = build_pack(session, ctx)
            listed = pack.review_queries.set_index("Query")["Question"]
            assert listed[thread] == shown
    engine.dispose()
