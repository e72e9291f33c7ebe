"""The Queries page (issue #20, AppTest): the list's order (open first, oldest first) against
the review log read with plain SQL, a site user sees only their sites' queries, and answering a
query changes its state."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from tests.access_support import ADMIN, INVESTIGATOR, INVESTIGATOR_SITE, MULTI, add_demo_users
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database
from tests.test_access_pages import AUTH_SECRETS

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PAGE = "../pages/queries.py"
STATE_AFTER = {"query": "open", "reopen": "open", "answer": "answered", "close": "closed"}


@pytest.fixture
def db(demo_db_url: str, tmp_path: Path) -> str:
    url = copy_database(demo_db_url, tmp_path, "queries-page")
    add_demo_users(url)
    return url


def _threads(url: str) -> pd.DataFrame:
    """id, site_id, at, state of every DEMO-MULTI query, from plain SQL."""
    engine = make_engine(url)
    with engine.connect() as connection:
        log = pd.read_sql(
            text("SELECT * FROM reviewevent WHERE study_id = :s ORDER BY id"),
            connection,
            params={"s": MULTI},
        )
    engine.dispose()
    queries = log[log["kind"] == "query"].copy()
    queries["state"] = [
        STATE_AFTER[log[(log["id"] == q) | (log["thread_id"] == q)]["kind"].iloc[-1]]
        for q in queries["id"]
    ]
    return queries


def _open(url: str, monkeypatch: pytest.MonkeyPatch, email: str | None = None) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    if email is not None:
        at.secrets = AUTH_SECRETS
        at.user = {"is_logged_in": True, "email": email}
    at.query_params["study"] = MULTI
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _listed(at: AppTest) -> pd.DataFrame:
    assert len(at.dataframe) == 1, ([i.value for i in at.info], [t.value for t in at.title])
    return at.dataframe[0].value


def test_open_queries_first_then_oldest_first(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(db, monkeypatch, ADMIN)
    threads = _threads(db)
    threads["closed"] = threads["state"] == "closed"
    expected = threads.sort_values(["closed", "at", "id"], kind="stable")
    listed = _listed(at)
    assert listed["thread_id"].tolist() == expected["id"].tolist()
    assert listed["state"].tolist() == expected["state"].tolist()
    assert "closed" in listed["state"].tolist()  # the demo has every state to order


def test_a_site_user_sees_and_answers_only_their_sites_queries(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(db, monkeypatch, INVESTIGATOR)
    threads = _threads(db)
    own = threads[threads["site_id"] == INVESTIGATOR_SITE]
    assert len(own) < len(threads)  # the demo has queries at other sites
    listed = _listed(at)
    assert sorted(listed["thread_id"]) == sorted(own["id"])
    assert set(listed["site_id"]) == {INVESTIGATOR_SITE}
    # No form to raise a query: site users answer.
    assert not [b for b in at.button if b.label == "Raise the query"]
    chosen = int(str(at.selectbox(key="queries_chosen").value))
    assert threads.set_index("id").loc[chosen, "state"] == "open"
    at.text_area(key="queries_message").input("Source checked: dates confirmed.")
    [send] = [b for b in at.button if b.label == "Send"]
    send.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    after = _threads(db).set_index("id")
    assert after.loc[chosen, "state"] == "answered"
    listed = _listed(at).set_index("thread_id")
    assert listed.loc[chosen, "state"] == "answered"


def test_a_refused_write_is_a_plain_message(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(db, monkeypatch, ADMIN)
    before = len(_threads(db))
    at.text_input(key="queries_key").input("NO-SUCH-SUBJECT")
    at.text_area(key="queries_question").input("Is this right?")
    [raise_button] = [b for b in at.button if b.label == "Raise the query"]
    raise_button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("not found" in e.value for e in at.error)
    assert len(_threads(db)) == before


def test_raising_a_query_on_a_subject_s_record(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(db, monkeypatch, ADMIN)
    before = _threads(db)
    at.selectbox(key="queries_entity").set_value("ae").run()
    at.text_input(key="queries_subject").input("DEMO-MULTI-101-0040").run()
    picks = at.selectbox(key="queries_record").options
    engine = make_engine(db)
    with engine.connect() as connection:
        aes = pd.read_sql(
            text(
                "SELECT a.natural_key FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
                "WHERE s.usubjid = 'DEMO-MULTI-101-0040' ORDER BY 1"
            ),
            connection,
        )["natural_key"].tolist()
    engine.dispose()
    assert picks == aes and len(aes) >= 2  # the subject's AEs
    at.selectbox(key="queries_record").set_value("DEMO-MULTI-101-0040/2")
    at.selectbox(key="queries_audience").set_value("data-management")
    at.text_area(key="queries_question").input("Please check the end date.")
    [raise_button] = [b for b in at.button if b.label == "Raise the query"]
    raise_button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    after = _threads(db)
    assert len(after) == len(before) + 1
    new = after.iloc[-1]
    assert (new["entity"], new["natural_key"], new["audience"], new["state"]) == (
        "ae",
        "DEMO-MULTI-101-0040/2",
        "data-management",
        "open",
    )
    assert new["id"] in _listed(at)["thread_id"].tolist()
