"""``study-monitor summary --json`` lists the potential Hy's law cases (issue #21): the CDISC
pilot's against the SDTM files read with pandas, at some sites only with --as, and none for a
study without liver tests."""

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from dashboard import access
from dashboard.cli import app
from dashboard.db import make_engine, session_scope
from dashboard.demo import MULTI_HYS_LAW_CASE
from tests.databases import copy_database

PILOT = "CDISCPILOT01"
SEED, MULTI = "NCT06466850", "DEMO-MULTI"
AT_705 = "investigator.705@site.example"
AT_701 = "investigator.701@site.example"
runner = CliRunner()


def _summary(db: str, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["summary", "--json", "--db", db, *args])
    assert result.exit_code == 0, result.stderr
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def _xpt(folder: Path, name: str) -> pd.DataFrame:
    frame, _meta = pyreadstat.read_xport(str(folder / f"{name}.xpt"))
    return frame


def expected_hys_law(folder: Path) -> list[str]:
    """The potential Hy's law cases from lbch.xpt and dm.xpt: per subject, the peak of ALT or AST
    over LBSTNRHI at or above 3 and the peak of BILI over LBSTNRHI at or above 2, on the records
    not flagged LBBLFL=Y dated on or after the first dose (RFXSTDTC)."""
    lb = _xpt(folder, "lbch")
    dm = _xpt(folder, "dm")
    first_dose = pd.to_datetime(dm.set_index("USUBJID")["RFXSTDTC"].str[:10], errors="coerce")
    liver = lb[lb["LBTESTCD"].isin(["ALT", "AST", "BILI"])].copy()
    liver["date"] = pd.to_datetime(liver["LBDTC"].str[:10], errors="coerce")
    liver["dose"] = liver["USUBJID"].map(first_dose)
    on_treatment = liver[(liver["LBBLFL"] != "Y") & (liver["date"] >= liver["dose"])].copy()
    on_treatment["ratio"] = on_treatment["LBSTRESN"] / on_treatment["LBSTNRHI"]
    peaks = on_treatment.pivot_table(
        index="USUBJID", columns="LBTESTCD", values="ratio", aggfunc="max"
    )
    transaminase = peaks[["ALT", "AST"]].max(axis=1)
    found = peaks.index[(transaminase >= 3) & (peaks["BILI"] >= 2)]
    return sorted(str(s) for s in found)


def test_summary_lists_the_pilots_potential_hys_law_cases(
    pilot_db_url: str, shared_data: Path
) -> None:
    figures = _summary(pilot_db_url, "--study", PILOT)
    expected = expected_hys_law(shared_data / "sdtm" / "cdiscpilot01")
    assert expected == ["01-705-1186"]  # the reference itself: one case, at site 705
    assert figures["hys_law_candidates"] == expected
    # The contract's keys first, unchanged, the new one after them.
    assert list(figures)[-2:] == ["data_cut", "hys_law_candidates"]


@pytest.fixture(scope="module")
def pilot_users_url(pilot_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pilot with an investigator at site 705 and one at site 701 (a copy: users are
    written to it)."""
    url = copy_database(pilot_db_url, tmp_path_factory.mktemp("labs-cli"), "labs_cli")
    engine = make_engine(url)
    with session_scope(engine) as session:
        for email, site in ((AT_705, "705"), (AT_701, "701")):
            access.add_user(
                session,
                email=email,
                role=access.INVESTIGATOR,
                study_id=PILOT,
                sites=(site,),
                unblinded=True,
                actor="tests",
            )
    engine.dispose()
    return url


def test_summary_for_some_sites_lists_their_cases_only(pilot_users_url: str) -> None:
    at_705 = _summary(pilot_users_url, "--study", PILOT, "--as", AT_705)
    at_701 = _summary(pilot_users_url, "--study", PILOT, "--as", AT_701)
    assert at_705["hys_law_candidates"] == ["01-705-1186"]
    assert at_701["hys_law_candidates"] == []
    # The scope is the one the other figures follow: 701's screened are not 705's.
    assert at_701["screened"] != at_705["screened"]


def test_summary_lists_the_demos_cases(demo_db_url: str) -> None:
    # DEMO-MULTI carries one planted synthetic case; the seed demo's labs have none.
    assert _summary(demo_db_url, "--study", MULTI)["hys_law_candidates"] == [MULTI_HYS_LAW_CASE]
    assert _summary(demo_db_url, "--study", SEED)["hys_law_candidates"] == []
    # The plain listing prints it too.
    result = runner.invoke(app, ["summary", "--study", SEED, "--db", demo_db_url])
    assert result.exit_code == 0, result.stderr
    assert any(
        line.split()[:2] == ["hys_law_candidates", "[]"] for line in result.stdout.splitlines()
    )
