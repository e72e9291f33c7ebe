"""`study-monitor summary --json` and the Overview page agree (issue #2: "screened/screen-failure
counts equal to the Overview page's"): the installed command, run as a user runs it, and the page in
an AppTest, on the same demo database."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, func, select
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.models import Subject
from tests.conftest import PROJECT_ROOT

APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def summary_json(db_url: str, study: str) -> dict[str, Any]:
    script = Path(sys.executable).parent / "study-monitor"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [str(script), "summary", "--study", study, "--json", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def overview_metrics(db_url: str, study: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = study
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["study"] == study
    return {m.label: str(m.value) for m in at.metric}


def subject_rows(db_url: str, study: str) -> int:
    """Screened is every subject of the study (DESIGN.md): counted from the rows themselves."""
    engine = make_engine(db_url)
    with Session(engine) as session:
        count = session.exec(
            select(func.count(col(Subject.id))).where(col(Subject.study_id) == study)
        ).one()
    engine.dispose()
    return count


@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI"])
def test_summary_json_and_overview_agree(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch, study: str
) -> None:
    cli = summary_json(demo_db_url, study)
    page = overview_metrics(demo_db_url, study, monkeypatch)
    assert cli["study_id"] == study
    assert page["Screened"] == str(cli["screened"])
    assert page["Screen failures"] == str(cli["screen_failures"])
    enrolled, _, target = page["Enrolled / target"].partition(" / ")
    assert enrolled == str(cli["enrolled"])
    assert target == str(cli["planned_enrollment"])
    assert page["Subjects with an AE"] == str(cli["ae_subjects"])
    # Neither side is trivially zero, and both count the study's subject rows.
    assert cli["screened"] == subject_rows(demo_db_url, study) > 0
    assert 0 < cli["screen_failures"] < cli["screened"]
    assert 0 < cli["enrolled"] <= cli["screened"] - cli["screen_failures"]
