"""Laboratory data however it is shipped (issue #21): the CDISC pilot's LB split in lbch, lbhe and
lbur is read as one LB domain, each file's records counted against pyreadstat; what tells two
measurements apart (position, time point) and the normal ranges are kept; a file merely named like
part of a split domain, or named like no dataset at all, is never read silently."""

import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.models import DataCut, Finding
from tests.databases import new_database_url

runner = CliRunner()
LB_FILES = ("lbch.xpt", "lbhe.xpt", "lbur.xpt")


def _read(folder: Path, name: str) -> pd.DataFrame:
    frame: pd.DataFrame = pyreadstat.read_xport(str(folder / name), encoding="cp1252")[0]
    return frame


def test_split_lb_records_per_file_and_kept_fields(pilot_db_url: str, shared_data: Path) -> None:
    folder = shared_data / "sdtm" / "cdiscpilot01"
    engine = make_engine(pilot_db_url)
    files = {name: _read(folder, name) for name in LB_FILES}
    # The reference's own figures first (shared/data/README.md), so that a changed file is seen.
    assert {n: len(f) for n, f in files.items()} == {
        "lbch.xpt": 32740,
        "lbhe.xpt": 21927,
        "lbur.xpt": 4913,
    }
    with Session(engine) as session:
        cut = session.exec(select(DataCut)).one()
        per_file = {s["file"]: s["records"] for s in cut.source if s["domain"] == "LB"}
        assert per_file == {n: len(f) for n, f in files.items()}
        assert all(len(s["sha256"]) == 64 for s in cut.source if s["domain"] == "LB")
        assert cut.row_counts["LB"] == sum(len(f) for f in files.values())
        assert not [w for w in cut.warnings if "lbch" in w.lower() or "not read" in w]
        stored = pd.read_sql_query(
            "SELECT test_code, category, normal_low, normal_high, normal_indicator, "
            "visit_number, study_day, is_baseline FROM finding WHERE domain = 'LB'",
            engine,
        )
    everything = pd.concat(files.values(), ignore_index=True)
    assert len(stored) == len(everything)
    assert stored["category"].fillna("").value_counts().to_dict() == (
        everything["LBCAT"].fillna("").value_counts().to_dict()
    )
    # The normal ranges and the lab's reading of each value, as given.
    assert stored["normal_high"].sum() == pytest.approx(everything["LBSTNRHI"].sum())
    assert stored["normal_low"].notna().sum() == everything["LBSTNRLO"].notna().sum()
    chemistry = stored[stored["category"] == "CHEMISTRY"]
    assert chemistry["normal_indicator"].fillna("").value_counts().to_dict() == {
        "NORMAL": 31425,
        "HIGH": 985,
        "LOW": 325,
        "": 5,
    }
    # Baseline records per file 4,527 / 2,987 / 1,719 (README); per category as the files say.
    assert {n: int((f["LBBLFL"] == "Y").sum()) for n, f in files.items()} == {
        "lbch.xpt": 4527,
        "lbhe.xpt": 2987,
        "lbur.xpt": 1719,
    }
    flagged = everything.assign(flag=everything["LBBLFL"] == "Y", cat=everything["LBCAT"])
    assert stored.groupby(stored["category"].fillna(""))["is_baseline"].sum().to_dict() == (
        flagged.groupby(flagged["cat"].fillna(""))["flag"].sum().to_dict()
    )
    assert stored["study_day"].sum() == everything["LBDY"].sum()
    assert stored["visit_number"].sum() == pytest.approx(everything["VISITNUM"].sum())


def test_vital_signs_keep_position_and_time_point(pilot_db_url: str, shared_data: Path) -> None:
    vs = _read(shared_data / "sdtm" / "cdiscpilot01", "vs.xpt")
    with Session(make_engine(pilot_db_url)) as session:
        stored = pd.DataFrame(
            session.exec(
                select(Finding.position, Finding.timepoint).where(Finding.domain == "VS")
            ).all(),
            columns=["position", "timepoint"],
        ).fillna("")
    expected = vs[["VSPOS", "VSTPT"]].fillna("").value_counts().to_dict()
    assert stored.value_counts().to_dict() == expected
    # Three baseline blood pressures a subject (supine, standing 1 and 3 minutes), none merged.
    assert expected[("SUPINE", "AFTER LYING DOWN FOR 5 MINUTES")] == 8208


def _small_package(shared_data: Path, folder: Path) -> Path:
    """The pilot's DM, TS and one split LB file, copied: enough for the importer's checks."""
    source = shared_data / "sdtm" / "cdiscpilot01"
    folder.mkdir()
    for name in ("dm.xpt", "ts.xpt", "lbur.xpt"):
        shutil.copy(source / name, folder / name)
    return folder


def test_stray_data_file_is_named_not_skipped(shared_data: Path, tmp_path: Path) -> None:
    folder = _small_package(shared_data, tmp_path / "package")
    (folder / "adsl.csv").write_text("USUBJID\n01-701-1015\n")
    url = new_database_url(tmp_path, "stray")
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", url])
    assert result.exit_code == 0, result.stderr
    assert "adsl.csv: not an SDTM dataset's name, not read" in result.stdout
    with Session(make_engine(url)) as session:
        cut = session.exec(select(DataCut)).one()
        assert cut.row_counts["LB"] == 4913
        assert "adsl.csv: not an SDTM dataset's name, not read" in cut.warnings


def test_file_named_as_split_lb_holding_other_records_is_refused(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = _small_package(shared_data, tmp_path / "package")
    vs = _read(shared_data / "sdtm" / "cdiscpilot01", "vs.xpt").head(50)
    # A VS dataset saved as "lbvs": named like a split LB file, but its DOMAIN says VS.
    vs.to_csv(folder / "lbvs.csv", index=False)
    url = new_database_url(tmp_path, "refused")
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", url])
    assert result.exit_code == 2
    message = result.stdout + result.stderr
    assert "lbvs.csv" in message and "DOMAIN is 'VS', not LB" in message
    assert "Traceback" not in message
    with Session(make_engine(url)) as session:  # nothing half-written
        assert session.exec(select(DataCut)).all() == []
        assert session.exec(select(Finding)).all() == []
