"""`study-monitor review ...` (issue #20): the status counts and the exported log against plain
SQL over the review log and the record tables, and a site user's scope (cannot see, mark or answer
another site's records: exit 2, the log unchanged)."""

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from dashboard.cli import app
from dashboard.db import make_engine
from tests.access_support import (
    INVESTIGATOR,
    INVESTIGATOR_SITE,
    MONITOR,
    MONITOR_SITES,
    MULTI,
    add_demo_users,
)
from tests.databases import copy_database

runner = CliRunner()


@pytest.fixture
def db(demo_db_url: str, tmp_path: Path) -> str:
    url = copy_database(demo_db_url, tmp_path, "review-cli")
    add_demo_users(url)
    return url


def _sql(url: str, query: str, **params: Any) -> pd.DataFrame:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = pd.read_sql(text(query), connection, params=params)
    engine.dispose()
    return found


def _log(url: str) -> pd.DataFrame:
    return _sql(url, "SELECT * FROM reviewevent WHERE study_id = :s ORDER BY id", s=MULTI)


def _invoke(url: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--db", url])


def _expected_ae_states(url: str, sites: tuple[str, ...] | None) -> Counter[tuple[str, str]]:
    """(site, state) of every AE for the medical monitor, from plain SQL: the latest mark (the
    highest id) decides; reviewed when made on the record's present version."""
    aes = _sql(
        url,
        "SELECT a.natural_key, st.site_id, COALESCE(a.updated_cut_id, a.first_cut_id) AS v "
        "FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        "JOIN site st ON st.id = s.site_pk WHERE s.study_id = :s",
        s=MULTI,
    )
    marks = _sql(
        url,
        "SELECT natural_key, kind, record_cut_id FROM reviewevent WHERE id IN (SELECT MAX(id) "
        "FROM reviewevent WHERE study_id = :s AND entity = 'ae' AND role = 'medical-monitor' "
        "AND kind IN ('reviewed', 'unreviewed') GROUP BY natural_key)",
        s=MULTI,
    ).set_index("natural_key")
    found: Counter[tuple[str, str]] = Counter()
    for key, site, version in aes.itertuples(index=False):
        if sites is not None and site not in sites:
            continue
        if key in marks.index and marks.loc[key, "kind"] == "reviewed":
            cut = marks.loc[key, "record_cut_id"]
            state = "reviewed" if version <= cut else "changed since review"
        else:
            state = "unreviewed"
        found[(site, state)] += 1
    return found


def _status_ae_states(figures: dict[str, Any]) -> Counter[tuple[str, str]]:
    by_site = figures["pages"]["adverse-events"]["ae"]
    return Counter(
        {
            (site, state): n
            for site, roles in by_site.items()
            for state, n in roles["medical-monitor"].items()
            if n
        }
    )


def _expected_queries(url: str, sites: tuple[str, ...] | None) -> Counter[tuple[str, str]]:
    log = _log(url)
    queries = log[log["kind"] == "query"]
    found: Counter[tuple[str, str]] = Counter()
    for thread, site in zip(queries["id"], queries["site_id"], strict=True):
        if sites is not None and site not in sites:
            continue
        thread_rows = log[(log["id"] == thread) | (log["thread_id"] == thread)]
        last = thread_rows.sort_values("id")["kind"].iloc[-1]
        state = {"query": "open", "reopen": "open", "answer": "answered", "close": "closed"}[last]
        found[(site, state)] += 1
    return found


@pytest.mark.parametrize("as_email, sites", [(None, None), (MONITOR, MONITOR_SITES)])
def test_status_counts_equal_plain_sql(
    db: str, as_email: str | None, sites: tuple[str, ...] | None
) -> None:
    # A mark made here first, so a reviewed record of the monitor's sites is counted too.
    key = _sql(
        db,
        "SELECT a.natural_key FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        "JOIN site st ON st.id = s.site_pk WHERE s.study_id = :s AND st.site_id = '102' "
        "ORDER BY 1 DESC LIMIT 1",
        s=MULTI,
    )["natural_key"].iloc[0]
    marked = _invoke(
        db, "review", "mark", "--study", MULTI, "--entity", "ae", "--key", key,
        "--role", "medical-monitor",
    )  # fmt: skip
    assert marked.exit_code == 0, marked.output
    args = ["review", "status", "--study", MULTI, "--json"]
    result = _invoke(db, *args, *(["--as", as_email] if as_email else []))
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["study_id"] == MULTI
    expected = _expected_ae_states(db, sites)
    assert _status_ae_states(figures) == expected
    assert expected[("102", "reviewed")] >= 1
    got_queries = Counter(
        {
            (s, state): n
            for s, states in figures["queries"].items()
            for state, n in states.items()
            if n
        }
    )
    assert got_queries == _expected_queries(db, sites)
    if sites is not None:  # no other site's counts at all
        assert set(figures["queries"]) <= set(sites)
        assert set(figures["pages"]["adverse-events"]["ae"]) <= set(sites)


@pytest.mark.parametrize("as_email, sites", [(None, None), (MONITOR, MONITOR_SITES)])
def test_export_rows_equal_the_log_in_scope(
    db: str, tmp_path: Path, as_email: str | None, sites: tuple[str, ...] | None
) -> None:
    out = tmp_path / "log.csv"
    args = ["review", "export", "--study", MULTI, "--out", str(out)]
    result = _invoke(db, *args, *(["--as", as_email] if as_email else []))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    log = _log(db)
    if sites is not None:
        log = log[log["site_id"].isin(sites)]
    assert [int(r["id"]) for r in rows] == log["id"].tolist()
    assert [r["site_id"] for r in rows] == log["site_id"].tolist()
    assert [r["kind"] for r in rows] == log["kind"].tolist()
    assert len(rows) > 0
    audit = _sql(db, "SELECT detail FROM auditevent WHERE action = 'export' ORDER BY id")
    detail = audit["detail"].iloc[-1]
    # SQLite hands the JSON column back as text, PostgreSQL as a dict.
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["kind"] == "review log" and detail["rows"] == len(rows)


def test_a_site_user_cannot_mark_or_answer_another_site(db: str) -> None:
    other_key = _sql(
        db,
        "SELECT a.natural_key FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        "JOIN site st ON st.id = s.site_pk WHERE s.study_id = :s AND st.site_id = '104' LIMIT 1",
        s=MULTI,
    )["natural_key"].iloc[0]
    other_query = _sql(
        db,
        "SELECT id FROM reviewevent WHERE study_id = :s AND kind = 'query' AND audience = 'site' "
        "AND site_id != :site ORDER BY id LIMIT 1",
        s=MULTI,
        site=INVESTIGATOR_SITE,
    )["id"].iloc[0]
    before = _log(db)
    marked = _invoke(
        db, "review", "mark", "--study", MULTI, "--entity", "ae", "--key", other_key,
        "--role", "cra", "--as", MONITOR,
    )  # fmt: skip
    assert marked.exit_code == 2
    assert "not found" in marked.stderr and "Traceback" not in marked.output
    answered = _invoke(
        db, "review", "answer", "--study", MULTI, "--query", str(other_query), "--text", "done",
        "--as", INVESTIGATOR,
    )  # fmt: skip
    assert answered.exit_code == 2
    assert "not found" in answered.stderr
    pd.testing.assert_frame_equal(_log(db), before)
    # Their own site's query they may answer: one row more, the query answered.
    own = _sql(
        db,
        "SELECT id FROM reviewevent WHERE study_id = :s AND kind = 'query' AND audience = 'site' "
        "AND site_id = :site ORDER BY id LIMIT 1",
        s=MULTI,
        site=INVESTIGATOR_SITE,
    )["id"].iloc[0]
    answered = _invoke(
        db, "review", "answer", "--study", MULTI, "--query", str(own), "--text", "Checked.",
        "--as", INVESTIGATOR,
    )  # fmt: skip
    assert answered.exit_code == 0, answered.output
    after = _log(db)
    assert len(after) == len(before) + 1
    assert after["kind"].iloc[-1] == "answer" and after["thread_id"].iloc[-1] == own
    # The investigator's status names no other site.
    status = _invoke(db, "review", "status", "--study", MULTI, "--json", "--as", INVESTIGATOR)
    assert status.exit_code == 0, status.output
    figures = json.loads(status.stdout)
    assert set(figures["queries"]) == {INVESTIGATOR_SITE}
