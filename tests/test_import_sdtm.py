"""The SDTM importer on the real public packages in ../shared/data, against their known figures
(shared/data/README.md, computed there with pandas from the same files)."""

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.importers.errors import ImportFailure
from dashboard.importers.run import import_sdtm
from dashboard.models import CutChange, DataCut, Finding, Subject
from tests.conftest import PROJECT_ROOT, SHARED_DATA, reference_absent
from tests.databases import new_database_url

runner = CliRunner()


def _summary(db_url: str, study: str) -> dict[str, object]:
    result = runner.invoke(app, ["summary", "--study", study, "--json", "--db", db_url])
    assert result.exit_code == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


@pytest.fixture(scope="module")
def pilot_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = SHARED_DATA / "sdtm"
    if not (folder / "cdiscpilot01").is_dir():
        reference_absent(f"reference data folder {folder} is absent")
    url = new_database_url(tmp_path_factory.mktemp("pilot"), "pilot")
    result = runner.invoke(app, ["import", "sdtm", str(folder / "cdiscpilot01"), "--db", url])
    assert result.exit_code == 0, result.stderr
    assert "no IE domain: failures by criterion unknown" in result.stdout
    return url


def test_cdisc_pilot_known_figures(pilot_db: str) -> None:
    summary = _summary(pilot_db, "CDISCPILOT01")
    assert summary["registry_id"] == "NCT00987090"  # TS REGID
    assert summary["planned_enrollment"] == 300  # TS PLANSUB
    assert summary["screened"] == 306
    assert summary["screen_failures"] == 52
    assert summary["enrolled"] == 254
    assert summary["enrolled_by_arm"] == {
        "Placebo": 86,
        "Xanomeline High Dose": 84,
        "Xanomeline Low Dose": 84,
    }
    assert summary["sites"] == 17
    assert (summary["ae_events"], summary["ae_subjects"]) == (961, 225)
    assert (summary["sae_events"], summary["sae_subjects"]) == (3, 3)
    assert summary["screen_failures_by_criterion"] == {}


def test_cdisc_pilot_model_details(pilot_db: str, shared_data: Path) -> None:
    engine = make_engine(pilot_db)
    folder = shared_data / "sdtm" / "cdiscpilot01"
    dm, _ = pyreadstat.read_xport(str(folder / "dm.xpt"), encoding="cp1252")
    vs, _ = pyreadstat.read_xport(str(folder / "vs.xpt"), encoding="cp1252")
    with Session(engine) as session:
        subjects = pd.read_sql_query("SELECT * FROM subject", engine)
        # Planned vs actual arm kept apart: 12 subjects planned High dose were treated Low dose.
        mismatch = subjects[
            (subjects["arm"] == "Xanomeline High Dose")
            & (subjects["actual_arm"] == "Xanomeline Low Dose")
        ]
        assert len(mismatch) == 12
        # Age as given in DM.
        randomized = dm[dm["ARMCD"].str.upper() != "SCRNFAIL"]
        assert subjects["age"].sum() == pytest.approx(dm["AGE"].sum())
        assert len(randomized) == 254
        baseline_vs = session.execute(
            select(func.count())
            .select_from(Finding)
            .where(col(Finding.is_baseline), col(Finding.domain) == "VS")
        ).scalar_one()
        assert baseline_vs == (vs["VSBLFL"] == "Y").sum()
        cut = session.execute(select(DataCut)).scalars().one()
        assert cut.cutoff_date is not None and cut.cutoff_date.isoformat() == "2015-03-31"
        assert {s["file"] for s in cut.source} >= {"dm.xpt", "ae.xpt", "ts.xpt"}
        assert all(len(s["sha256"]) == 64 for s in cut.source)
        assert cut.row_counts["AE"] == 961 and cut.row_counts["DM"] == 306
        assert "no IE domain: failures by criterion unknown" in cut.warnings
        # Screening date: RFICDTC where present.
        first = session.execute(
            select(Subject).where(col(Subject.usubjid) == dm.loc[0, "USUBJID"])
        ).scalar_one()
        assert first.screening_dtc == (dm.loc[0, "RFICDTC"] or first.screening_dtc)


def test_same_package_twice_adds_a_cut_without_changes(pilot_db: str, shared_data: Path) -> None:
    engine = make_engine(pilot_db)
    report = import_sdtm(engine, shared_data / "sdtm" / "cdiscpilot01")
    assert all(n == 0 for numbers in report.result.changes.values() for n in numbers.values())
    with Session(engine) as session:
        cuts = session.execute(select(func.count()).select_from(DataCut)).scalar_one()
        changes = session.execute(
            select(func.count())
            .select_from(CutChange)
            .where(col(CutChange.cut_id) == report.result.cut_id)
        ).scalar_one()
        first_cuts = set(session.execute(select(col(Subject.first_cut_id))).scalars())
    assert cuts == 2
    assert changes == 0
    assert first_cuts == {1}  # unchanged rows keep the cut that first held them
    assert _summary(pilot_db, "CDISCPILOT01")["enrolled"] == 254


def test_another_study_under_the_same_id_is_refused(pilot_db: str, shared_data: Path) -> None:
    # The SDTM-MSG sample uses STUDYID CDISCPILOT01 too, with other subjects.
    result = runner.invoke(
        app, ["import", "sdtm", str(shared_data / "sdtm" / "cdisc_msg_v2"), "--db", pilot_db]
    )
    assert result.exit_code == 2
    assert "not a later cut of the same study" in result.stderr
    assert "nothing was written" in result.stderr
    assert _summary(pilot_db, "CDISCPILOT01")["screened"] == 306


@pytest.mark.parametrize("subfolder", ["cdisc_msg_v2", "cdisc_msg_v2/datasetjson"])
def test_sdtm_msg_known_figures(tmp_path: Path, shared_data: Path, subfolder: str) -> None:
    url = new_database_url(tmp_path, "msg")
    result = runner.invoke(
        app,
        ["import", "sdtm", str(shared_data / "sdtm" / subfolder), "--study-id", "MSG", "--db", url],
    )
    assert result.exit_code == 0, result.stderr
    summary = _summary(url, "MSG")
    assert summary["screened"] == 18
    assert summary["screen_failures"] == 1
    assert summary["screen_failures_by_criterion"] == {"INCL03": 1}
    assert summary["ae_events"] == 74
    assert summary["sae_events"] == 4
    engine = make_engine(url)
    criteria = pd.read_sql_query("SELECT code, protocol_version FROM criterion", engine)
    assert len(criteria) == 62  # 31 criteria in two protocol versions, kept apart
    assert set(criteria["protocol_version"]) == {"ORIGINAL", "AMENDMENT 1"}
    assert criteria["code"].nunique() == 33
    subjects = pd.read_sql_query("SELECT usubjid, birth_year FROM subject", engine)
    assert subjects["birth_year"].notna().all()  # BRTHDTC cut to the year, never stored whole
    assert "brthdtc" not in {c.lower() for c in subjects.columns}


def test_replace_loads_another_package_over_a_study(
    pilot_db: str, shared_data: Path, tmp_path: Path
) -> None:
    url = new_database_url(tmp_path, "replace")
    first = runner.invoke(
        app,
        [
            "import",
            "sdtm",
            str(shared_data / "sdtm" / "cdisc_msg_v2"),
            "--study-id",
            "X",
            "--db",
            url,
        ],
    )
    assert first.exit_code == 0
    second = runner.invoke(
        app,
        [
            "import",
            "sdtm",
            str(shared_data / "sdtm" / "cdiscpilot01"),
            "--study-id",
            "X",
            "--replace",
            "--db",
            url,
        ],
    )
    assert second.exit_code == 0, second.stderr
    assert _summary(url, "X")["screened"] == 306


def test_screen_failures_page_says_ie_is_missing(
    pilot_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pilot_db)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params["study"] = "CDISCPILOT01"
    at.run()
    at.switch_page("../pages/screen_failures.py").run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "No IE domain" in warning and "failures by criterion are unknown" in warning
    assert "52 screen failures" in warning
    # No bars of zeros: the one chart is the screen-failure rate over time.
    (chart,) = at.get("vega_lite_chart")
    assert "screen_failure_rate" in chart.proto.spec
    ds_reasons = at.dataframe[0].value
    assert ds_reasons["Subjects"].tolist() == [52]  # what DS says: SCREEN FAILURE, for all 52
    assert len(at.dataframe[1].value) == 31  # the protocol's criteria, for reference
    sites = at.dataframe[2].value
    assert sites["Screen failures"].sum() == 52 and len(sites) == 17


def test_import_failure_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(ImportFailure, match="DM is required"):
        import_sdtm(make_engine(new_database_url(tmp_path, "x")), tmp_path)


def test_sdtm_msg_baseline_is_its_lobxfl_flag(tmp_path: Path, shared_data: Path) -> None:
    # SDTMIG 3.3 flags the baseline as VSLOBXFL (SDTM-MSG has no VSBLFL): 59 records.
    folder = shared_data / "sdtm" / "cdisc_msg_v2"
    vs, _ = pyreadstat.read_xport(str(folder / "vs.xpt"), encoding="cp1252")
    assert "VSBLFL" not in vs.columns
    flagged = vs[vs["VSLOBXFL"] == "Y"]
    assert len(flagged) == 59
    url = new_database_url(tmp_path, "msg-baseline")
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--study-id", "MSG", "--db", url])
    assert result.exit_code == 0, result.stderr
    baseline = pd.read_sql_query(
        "SELECT s.usubjid, f.test_code, f.dtc FROM finding f JOIN subject s ON s.id = f.subject_pk "
        "WHERE f.is_baseline AND f.domain = 'VS'",
        make_engine(url),
    )
    assert len(baseline) == 59
    key = ["USUBJID", "VSTESTCD", "VSDTC"]
    assert sorted(baseline.itertuples(index=False, name=None)) == sorted(
        flagged[key].itertuples(index=False, name=None)
    )
