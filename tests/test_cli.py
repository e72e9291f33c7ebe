"""The `study-monitor` command: the DESIGN.md contract, run as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard.cli import app
from tests.conftest import PROJECT_ROOT
from tests.databases import new_database_url

runner = CliRunner()
CONTRACT_KEYS = [
    "study_id",
    "registry_id",
    "planned_enrollment",
    "sites",
    "screened",
    "screen_failures",
    "enrolled",
    "enrolled_by_arm",
    "screen_failures_by_criterion",
    "ae_events",
    "ae_subjects",
    "sae_events",
    "sae_subjects",
    "data_cut",
    "hys_law_candidates",  # issue #21: after the DESIGN.md contract's keys, which are kept
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "study-monitor"
    return subprocess.run([str(script), *args], capture_output=True, text=True, cwd=PROJECT_ROOT)


def test_demo_then_summary_json(tmp_path: Path) -> None:
    db = new_database_url(tmp_path, "cli")
    made = _cli("demo", "--db", db)
    assert made.returncode == 0, made.stderr
    assert "synthetic" in made.stdout
    result = _cli("summary", "--json", "--db", db)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert list(summary) == CONTRACT_KEYS
    assert summary["registry_id"] == "NCT06466850"
    assert summary["planned_enrollment"] == 20
    assert summary["sites"] == 1
    assert summary["enrolled"] == 20
    assert summary["screened"] == 36
    assert summary["screen_failures"] == 16
    assert summary["enrolled_by_arm"] == {"Exosome": 20}
    # Only criteria with a failure, EXCL03 (nobody) left out.
    assert summary["screen_failures_by_criterion"] == {
        "INCL01": 1,
        "INCL02": 5,
        "INCL03": 3,
        "EXCL01": 2,
        "EXCL02": 2,
        "EXCL04": 1,
        "EXCL05": 1,
        "EXCL06": 3,
        "EXCL07": 1,
    }
    assert (summary["ae_events"], summary["ae_subjects"]) == (17, 14)
    assert (summary["sae_events"], summary["sae_subjects"]) == (1, 1)
    # The contract's keys, and the study's own count of its cuts beside the id.
    assert set(summary["data_cut"]) == {"id", "number", "loaded_at"}
    assert summary["hys_law_candidates"] == []  # the demo's LB is haemoglobin only


def test_demo_refresh_is_idempotent(tmp_path: Path) -> None:
    db = new_database_url(tmp_path, "twice")
    first = runner.invoke(app, ["demo", "--db", db])
    second = runner.invoke(app, ["demo", "--db", db])
    assert first.exit_code == second.exit_code == 0
    summary = json.loads(runner.invoke(app, ["summary", "--json", "--db", db]).stdout)
    assert (summary["screened"], summary["enrolled"], summary["ae_events"]) == (36, 20, 17)


def test_multisite_demo_and_study_choice(tmp_path: Path) -> None:
    db = new_database_url(tmp_path, "multi")
    assert runner.invoke(app, ["demo", "--db", db]).exit_code == 0
    assert runner.invoke(app, ["demo", "--study", "multisite", "--db", db]).exit_code == 0
    ambiguous = runner.invoke(app, ["summary", "--json", "--db", db])
    assert ambiguous.exit_code == 2
    assert "--study is needed" in ambiguous.stderr
    summary = json.loads(
        runner.invoke(app, ["summary", "--study", "DEMO-MULTI", "--json", "--db", db]).stdout
    )
    assert summary["sites"] == 10
    assert set(summary["enrolled_by_arm"]) == {"Placebo", "Low dose", "High dose"}
    assert sum(summary["enrolled_by_arm"].values()) == summary["enrolled"]


def test_summary_matches_environment_database(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    result = runner.invoke(app, ["summary", "--study", "NCT06466850", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["enrolled"] == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "--study", "NOPE", "--json"], "no study 'NOPE'"),
        (["summary", "--json", "--db", "sqlite:///{tmp}/missing.db"], "does not exist"),
        (["summary", "--json", "--db", "sqlite:///{tmp}/bare.db"], "holds no study data"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    db = new_database_url(tmp_path, "demo")
    runner.invoke(app, ["demo", "--db", db])
    (tmp_path / "bare.db").touch()
    args = [a.format(tmp=tmp_path) for a in args]
    result = _cli(*args, *([] if "--db" in args else ["--db", db]))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_of_a_study_without_subjects_prints_zeros(empty_db_url: str) -> None:
    from dashboard.db import make_engine, session_scope
    from dashboard.models import Study

    engine = make_engine(empty_db_url)
    with session_scope(engine) as session:
        session.add(Study(study_id="REG-ONLY", title="Registry record only", planned_enrollment=0))
    result = runner.invoke(app, ["summary", "--json", "--db", empty_db_url])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["screened"] == summary["enrolled"] == summary["ae_events"] == 0
    assert summary["planned_enrollment"] == 0  # registry figures taken as given
    assert summary["data_cut"] is None
    assert summary["enrolled_by_arm"] == {} and summary["screen_failures_by_criterion"] == {}
