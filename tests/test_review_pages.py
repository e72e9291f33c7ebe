"""Review in the pages (issue #20), through AppTest on a copy of the demo database: the AE page's
unreviewed count against the review log counted in plain SQL, tick-to-mark writing the log, the
"only unreviewed" filter, the other pages' review listings, and a user without a review role
seeing states but no tick boxes."""

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.db import make_engine, session_scope
from dashboard.results.review import MEDICAL_MONITOR
from dashboard.review import mark
from dashboard.ui import review as review_ui
from tests.access_support import INVESTIGATOR, INVESTIGATOR_SITE, MULTI, add_demo_users
from tests.conftest import APP, open_study_page
from tests.databases import copy_database
from tests.test_access_pages import open_as

AE_PAGE = "adverse_events.py"
COUNT_LINE = re.compile(r"(\d+) unreviewed(?: \((\d+) changed since review\))?")


@pytest.fixture
def review_db(demo_db_url: str, tmp_path: Path) -> str:
    """A copy of the demo database in which the medical monitor reviewed three of DEMO-MULTI's
    SAEs, and a later cut then changed one of them."""
    url = copy_database(demo_db_url, tmp_path, "review-pages")
    engine = make_engine(url)
    keys = _sae_keys(engine)[:3]
    with session_scope(engine) as session:
        mark(
            session,
            user=access.LOCAL_USER,
            study_id=MULTI,
            entity="ae",
            keys=keys,
            role=MEDICAL_MONITOR,
        )
    with engine.begin() as connection:  # as a re-import that changes the record would leave it
        connection.execute(
            text(
                "UPDATE adverseevent SET updated_cut_id = "
                "(SELECT MAX(id) FROM datacut WHERE study_id = :study) WHERE natural_key = :key"
            ),
            {"study": MULTI, "key": keys[0]},
        )
    engine.dispose()
    return url


@pytest.fixture
def engine(review_db: str) -> Iterator[Engine]:
    engine = make_engine(review_db)
    yield engine
    engine.dispose()


def _sae_keys(engine: Engine) -> list[str]:
    found = pd.read_sql_query(
        text(
            "SELECT a.natural_key FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
            "WHERE s.study_id = :study AND upper(a.serious) = 'Y' ORDER BY a.natural_key"
        ),
        engine,
        params={"study": MULTI},
    )
    return [str(k) for k in found["natural_key"]]


def _sae_states(engine: Engine, role: str = MEDICAL_MONITOR) -> pd.Series:
    """Each DEMO-MULTI SAE's review state for ``role``, from the tables in SQL and pandas: the
    role's latest mark (the highest id) against the cut the record last changed in."""
    records = pd.read_sql_query(
        text(
            "SELECT a.natural_key, COALESCE(a.updated_cut_id, a.first_cut_id) AS version "
            "FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
            "WHERE s.study_id = :study AND upper(a.serious) = 'Y'"
        ),
        engine,
        params={"study": MULTI},
    ).set_index("natural_key")
    marks = pd.read_sql_query(
        text(
            "SELECT natural_key, kind, record_cut_id FROM reviewevent WHERE id IN ("
            "SELECT MAX(id) FROM reviewevent WHERE study_id = :study AND entity = 'ae' "
            "AND role = :role AND kind IN ('reviewed', 'unreviewed') GROUP BY natural_key)"
        ),
        engine,
        params={"study": MULTI, "role": role},
    ).set_index("natural_key")
    kinds = marks["kind"].to_dict()
    marked_in = marks["record_cut_id"].to_dict()
    states = {}
    for key, version in records["version"].items():
        if kinds.get(key) != "reviewed":
            states[key] = "unreviewed"
        elif version > marked_in[key]:
            states[key] = "changed since review"
        else:
            states[key] = "reviewed"
    return pd.Series(states)


def _count_line(at: AppTest) -> tuple[int, int]:
    lines = [m.value for m in at.markdown if "unreviewed" in m.value]
    assert len(lines) == 1, lines
    found = COUNT_LINE.search(lines[0])
    assert found is not None, lines[0]
    return int(found[1]), int(found[2] or 0)


def _listing(at: AppTest) -> pd.DataFrame:
    (editor,) = [d for d in at.data_editor if d.key and d.key.startswith("review_editor_saes")]
    return editor.value


def test_ae_page_counts_unreviewed_saes_as_the_log_says(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_study_page(review_db, MULTI, AE_PAGE, monkeypatch, timeout=60)
    states = _sae_states(engine)
    assert sorted(states.value_counts().to_dict().items()) == [
        ("changed since review", 1),
        ("reviewed", 2),
        ("unreviewed", len(states) - 3),
    ]
    needs, changed = _count_line(at)
    assert needs == int((states != "reviewed").sum())
    assert changed == int((states == "changed since review").sum())
    listed = _listing(at)
    assert len(listed) == len(states)
    assert listed["Review"].value_counts().to_dict() == states.value_counts().to_dict()
    assert int(listed["Reviewed"].sum()) == 2
    assert set(listed.loc[listed["Reviewed"], "Reviewed by"]) == {access.LOCAL_USER.email}


def test_overview_shows_the_unreviewed_saes(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", review_db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = MULTI
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    states = _sae_states(engine)
    lines = [c.value for c in at.caption if "unreviewed" in c.value]
    assert len(lines) == 1, lines
    found = COUNT_LINE.search(lines[0])
    assert found is not None
    assert int(found[1]) == int((states != "reviewed").sum())
    assert int(found[2] or 0) == int((states == "changed since review").sum())


def test_ticking_a_row_writes_the_mark(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_study_page(review_db, MULTI, AE_PAGE, monkeypatch, timeout=60)
    listed = _listing(at)
    row = int(listed.index[listed["Review"] == "unreviewed"][0])
    before = pd.read_sql_query("SELECT COUNT(*) AS n FROM reviewevent", engine)["n"][0]
    unreviewed = set(_sae_states(engine).loc[lambda s: s == "unreviewed"].index)
    at.session_state[f"{review_ui.EDITOR_PREFIX}_saes_0"] = {
        "edited_rows": {row: {"Reviewed": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    log = pd.read_sql_query("SELECT * FROM reviewevent ORDER BY id", engine)
    assert len(log) == before + 1
    written = log.iloc[-1]
    assert written["kind"] == "reviewed" and written["role"] == MEDICAL_MONITOR
    assert written["entity"] == "ae" and written["natural_key"] in unreviewed
    assert written["email"] == access.LOCAL_USER.email
    after = _sae_states(engine)
    assert after[written["natural_key"]] == "reviewed"
    assert [s.value for s in at.success if "marked reviewed" in s.value]
    needs, _ = _count_line(at)
    assert needs == int((after != "reviewed").sum())
    listed = _listing(at)  # a new editor: the mark is its data now
    assert int(listed["Reviewed"].sum()) == int((after == "reviewed").sum())


def test_mark_all_shown_with_the_filter(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_study_page(review_db, MULTI, AE_PAGE, monkeypatch, timeout=60)
    at.toggle(key=f"{review_ui.FILTER_PREFIX}_saes").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    states = _sae_states(engine)
    listed = _listing(at)
    assert len(listed) == int((states != "reviewed").sum())
    assert "reviewed" not in set(listed["Review"])
    at.button(key="review_all_saes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(_sae_states(engine)) == {"reviewed"}
    assert [s.value for s in at.success if "Every record here is reviewed" in s.value]
    needs, changed = _count_line(at)
    assert (needs, changed) == (0, 0)


def test_screen_failure_drilldown_marks_the_finding(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_study_page(review_db, MULTI, "screen_failures.py", monkeypatch, timeout=60)
    table = next(d for d in at.dataframe if d.key and "screen_failures_table" in d.key)
    assert isinstance(table.key, str)
    at.session_state[table.key] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    (editor,) = at.data_editor
    assert isinstance(editor.key, str)
    listed = editor.value
    code = str(table.value["Code"].iloc[0])
    at.session_state[editor.key] = {
        "edited_rows": {0: {"Reviewed": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    written = pd.read_sql_query("SELECT * FROM reviewevent ORDER BY id DESC LIMIT 1", engine)
    key = str(written["natural_key"][0])
    assert written["entity"][0] == "ie"
    subject = re.search(r"subject=([^&]+)$", str(listed["usubjid"].iloc[0]))
    assert subject is not None
    finding = pd.read_sql_query(
        text(
            "SELECT f.natural_key FROM eligibilityfinding f JOIN subject s ON s.id = f.subject_pk "
            "JOIN criterion c ON c.id = f.criterion_pk WHERE s.usubjid = :u AND c.code = :c"
        ),
        engine,
        params={"u": subject[1], "c": code},
    )
    assert key in set(finding["natural_key"])
    assert at.data_editor[0].value["Review"].iloc[0] == "reviewed"


def test_subject_page_shows_and_marks_each_record(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = _sae_keys(engine)[1]  # reviewed, unchanged
    usubjid = key.rsplit("/", 1)[0]
    monkeypatch.setenv("DATABASE_URL", review_db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = MULTI
    at.query_params["subject"] = usubjid
    at.run()
    at.switch_page("../pages/subject.py").run()
    assert not at.exception, [e.value for e in at.exception]
    keys = {d.key for d in at.data_editor}
    assert {"review_editor_subject_ae_0", "review_editor_subject_ds_0"} <= keys
    aes = next(d for d in at.data_editor if d.key == "review_editor_subject_ae_0").value
    seq = int(key.rsplit("/", 1)[1])
    assert aes.set_index("AESEQ").loc[seq, "Review"] == "reviewed"
    badge = [m.value for m in at.markdown if "Subject review" in m.value]
    assert badge and "unreviewed" in badge[0]
    at.button(key="review_subject_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    written = pd.read_sql_query("SELECT * FROM reviewevent ORDER BY id DESC LIMIT 1", engine)
    assert (written["entity"][0], written["natural_key"][0]) == ("subject", usubjid)
    badge = [m.value for m in at.markdown if "Subject review" in m.value]
    assert badge and "): reviewed" in badge[0]


def test_a_user_without_a_review_role_sees_states_without_tick_boxes(
    review_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_database(review_db, tmp_path, "review-investigator")
    add_demo_users(url)
    at = open_as(url, monkeypatch, INVESTIGATOR, f"../pages/{AE_PAGE}")
    assert not at.data_editor
    assert "Review as" not in [s.label for s in at.sidebar.selectbox]
    assert not [b for b in at.button if b.key and b.key.startswith("review_all")]
    listing = next(d.value for d in at.dataframe if "Review" in d.value.columns)
    assert "Reviewed" not in listing.columns
    engine = make_engine(url)
    states = _sae_states(engine)
    engine.dispose()
    mine = [k for k in states.index if k.startswith(f"{MULTI}-{INVESTIGATOR_SITE}-")]
    assert len(listing) == len(mine)
    assert sorted(listing["Review"]) == sorted(states[mine])


def test_a_refused_mark_is_said_in_words(
    review_db: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record removed while the page was open (as a later import removes one): its tick is
    refused with the writer's message, and nothing is written."""
    at = open_study_page(review_db, MULTI, AE_PAGE, monkeypatch, timeout=60)
    listed = _listing(at)
    row = int(listed.index[listed["Review"] == "unreviewed"][0])
    usubjid = str(listed["USUBJID"].iloc[row]).rsplit("subject=", 1)[1]
    with engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM adverseevent WHERE upper(serious) = 'Y' AND subject_pk = "
                "(SELECT id FROM subject WHERE usubjid = :u)"
            ),
            {"u": usubjid},
        )
    before = pd.read_sql_query("SELECT COUNT(*) AS n FROM reviewevent", engine)["n"][0]
    at.session_state[f"{review_ui.EDITOR_PREFIX}_saes_0"] = {
        "edited_rows": {row: {"Reviewed": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "not found in DEMO-MULTI" in errors[0], errors
    assert usubjid in errors[0]
    after = pd.read_sql_query("SELECT COUNT(*) AS n FROM reviewevent", engine)["n"][0]
    assert after == before
