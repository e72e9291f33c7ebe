"""The app fails closed (issue #17): a secrets file that exists but does not parse, and local mode
with users in the user table, stop the app with a plain message and draw nothing else.

AppTest reads secrets the way the served app does (``st.secrets``, the files of Streamlit's
``secrets.files`` option); the tests point that option at a temporary file, never at the project's
own ``.streamlit/``.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config
from streamlit.runtime.secrets import Secrets
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.markdown import shown
from tests.access_support import MULTI, add_demo_users
from tests.conftest import APP
from tests.databases import copy_database

BROKEN = '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback\nclient_id = "x"\n'


# -- the decision ----------------------------------------------------------------------------------


def test_refusal_decides_each_case() -> None:
    def decide(
        problem: str | None = None,
        configured: bool = False,
        required: bool = False,
        users: int | None = 0,
    ) -> str | None:
        return access.refusal(
            secrets_problem=problem,
            auth_configured=configured,
            sign_in_required=required,
            users=users,
        )

    # Runs: sign-in configured (whatever the user table holds), or local mode on an empty table.
    assert decide(configured=True, users=3) is None
    assert decide(configured=True, required=True, users=None) is None
    assert decide() is None
    # Refused: a broken file, even beside a readable [auth] or an empty user table.
    broken = decide(problem="/x/.streamlit/secrets.toml does not parse (line 2)")
    assert broken is not None and "/x/.streamlit/secrets.toml does not parse (line 2)" in broken
    assert decide(problem="p", configured=True) is not None
    # Refused: local mode where users exist, where nobody can count them, where sign-in is required.
    with_users = decide(users=2)
    assert with_users is not None
    assert "2 users" in with_users and "study-monitor user remove" in with_users
    assert "[auth]" in with_users
    assert "1 user:" in str(decide(users=1))
    assert "cannot be read" in str(decide(users=None))
    assert "STUDY_MONITOR_REQUIRE_SIGN_IN" in str(decide(required=True))


# -- the app -----------------------------------------------------------------------------------------


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Streamlit's secrets read from ``tmp_path/.streamlit/secrets.toml`` only (a new store, so
    nothing parsed before is kept); written by the test."""
    path = tmp_path / ".streamlit" / "secrets.toml"
    path.parent.mkdir()
    saved = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    monkeypatch.setattr(st, "secrets", Secrets())
    try:
        yield path
    finally:
        config.set_option("secrets.files", saved)


def _run(db_url: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = MULTI
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _drew_nothing_else(at: AppTest) -> None:
    assert not at.metric and not at.dataframe and not at.get("file_uploader")
    assert not at.sidebar.selectbox  # no study picker, no filters
    assert "_page_context" not in at.session_state


def test_a_secrets_file_that_does_not_parse_stops_the_app(
    secrets_file: Path, demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_file.write_text(BROKEN, encoding="utf-8")
    for page in (None, "../pages/data_import.py"):
        at = _run(demo_db_url, monkeypatch, page)
        assert len(at.error) == 1
        message = shown(at.error[0].value)  # the path is shown as text (its '_' escaped)
        assert "The secrets file cannot be read" in message
        assert str(secrets_file) in message and "does not parse" in message
        assert "line 2" in message  # the parse problem, as tomllib says it
        assert "Traceback" not in message
        _drew_nothing_else(at)
        assert not any("Local mode" in c.value for c in at.sidebar.caption)

    # Corrected (here: without [auth]), the next run opens in local mode: nothing was cached.
    secrets_file.write_text('[other]\nkey = "value"\n', encoding="utf-8")
    at = _run(demo_db_url, monkeypatch)
    assert not at.error
    assert any("Local mode" in c.value for c in at.sidebar.caption)


def test_an_absent_secrets_file_is_local_mode(
    secrets_file: Path, demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not secrets_file.exists()
    at = _run(demo_db_url, monkeypatch)
    assert not at.error
    assert any("Local mode" in c.value for c in at.sidebar.caption)
    assert at.metric


@pytest.fixture(scope="module")
def users_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("fail-closed"), "fail-closed")
    add_demo_users(url)
    return url


@pytest.mark.parametrize("page", [None, "../pages/data_import.py", "../pages/audit.py"])
def test_local_mode_is_refused_while_the_user_table_has_users(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    at = _run(users_db_url, monkeypatch, page)
    assert [t.value for t in at.title] == ["Study monitor"]
    assert len(at.error) == 1
    message = at.error[0].value
    assert "the user table has 4 users" in message
    assert "study-monitor user remove" in message and "[auth]" in message
    _drew_nothing_else(at)
    assert "_current_user" not in at.session_state  # nobody acts as the local admin
