"""Details of reading an SDTM package: transport-file encodings, numbers written as text, the
columns that identify people, the baseline flag of SDTMIG 3.3 and the data cut-off date.

Expected values come from the raw files (pandas, pyreadstat) or are written out by hand.
"""

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.importers.readers import read_dataset
from tests.databases import new_database_url, read_sql
from tests.sdtm_builders import copy_of_base, write_package

runner = CliRunner()
Tables = dict[str, list[dict[str, object]]]


def _import(folder: Path, url: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", url, *extra])
    return result.exit_code, result.stdout, result.stderr


def _load(tmp_path: Path, tables: Tables, *extra: str, **kwargs: dict[str, str]) -> tuple[str, str]:
    url = new_database_url(tmp_path, "formats")
    code, out, err = _import(write_package(tmp_path / "package", tables, **kwargs), url, *extra)
    assert code == 0, err
    return url, out


def _cut(url: str) -> pd.Series:
    cuts = read_sql("SELECT cutoff_date, warnings FROM datacut ORDER BY id DESC", make_engine(url))
    return cuts.iloc[0]


# -- encodings of transport files --------------------------------------------------------------

TERM = "CÉPHALÉE – “sévère”"  # letters cp1252 and UTF-8 both hold, in different bytes


def _ae_xpt(folder: Path) -> Path:
    tables = copy_of_base()
    tables["AE"][0]["AETERM"] = TERM
    for row in tables["AE"]:
        row["AESTDY"] = row["AESTDY"] or None  # a numeric column in the transport file
    return write_package(folder, tables, formats={"AE": "xpt"})


def test_utf8_transport_file(tmp_path: Path) -> None:
    folder = _ae_xpt(tmp_path / "utf8")
    raw = (folder / "ae.xpt").read_bytes()
    assert TERM.encode("utf-8") in raw  # pyreadstat.write_xport writes UTF-8
    url = new_database_url(tmp_path, "utf8")
    code, _out, err = _import(folder, url)
    assert code == 0, err
    terms = read_sql("SELECT term FROM adverseevent ORDER BY id", make_engine(url))["term"]
    assert terms.tolist()[0] == TERM  # not "CÃ‰PHALÃ‰E": UTF-8 read as UTF-8


def test_cp1252_transport_file(tmp_path: Path) -> None:
    folder = _ae_xpt(tmp_path / "cp1252")
    raw = (folder / "ae.xpt").read_bytes()
    utf8, cp1252 = TERM.encode("utf-8"), TERM.encode("cp1252")
    # The same text in cp1252 bytes, padded with blanks to the same width (fixed-width records).
    (folder / "ae.xpt").write_bytes(raw.replace(utf8, cp1252.ljust(len(utf8))))
    with pytest.raises(UnicodeDecodeError):
        (folder / "ae.xpt").read_bytes().decode("utf-8")
    expected, _meta = pyreadstat.read_xport(str(folder / "ae.xpt"), encoding="cp1252")
    assert expected["AETERM"].str.strip().tolist()[0] == TERM
    url = new_database_url(tmp_path, "cp")
    code, _out, err = _import(folder, url)
    assert code == 0, err
    terms = read_sql("SELECT term FROM adverseevent ORDER BY id", make_engine(url))["term"]
    assert terms.tolist()[0] == TERM


def test_cdisc_pilot_ts_with_its_cp1252_byte(shared_data: Path) -> None:
    path = shared_data / "sdtm" / "cdiscpilot01" / "ts.xpt"
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the README's quirk: a cp1252 byte
    expected, _meta = pyreadstat.read_xport(str(path), encoding="cp1252")
    dataset = read_dataset("TS", path)
    values = [v.strip() or None for v in expected["TSVAL"]]
    assert dataset.frame["TSVAL"].tolist() == values
    assert any(v and not v.isascii() for v in values)


# -- numbers written as text --------------------------------------------------------------------


def test_whole_numbers_are_written_as_integers(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row, (subjid, site) in zip(
        tables["DM"], [(1_000_000, 701), (1_234_567, 701), (98_765_432, 1_000_001)], strict=True
    ):
        row["SUBJID"], row["SITEID"] = subjid, site  # numeric columns in the transport file
    tables["TS"].append({"STUDYID": "TINY", "TSPARMCD": "TITLE", "TSVAL": "second title"})
    url, _out = _load(tmp_path, tables, formats={"DM": "xpt"})
    subjects = read_sql(
        "SELECT subjid, site_id FROM subject s JOIN site t ON t.id = s.site_pk ORDER BY usubjid",
        make_engine(url),
    )
    assert subjects["subjid"].tolist() == ["1000000", "1234567", "98765432"]
    assert subjects["site_id"].tolist() == ["701", "701", "1000001"]


def test_text_of_a_number() -> None:
    from dashboard.importers.sdtm import _text

    assert [_text(v) for v in (1e6, 1234567.0, 701.0, -3.0, 0.0)] == [
        "1000000",
        "1234567",
        "701",
        "-3",
        "0",
    ]
    assert [_text(v) for v in (70.5, 0.1234567, 1234567.5)] == ["70.5", "0.1234567", "1234567.5"]
    assert _text(None) is None and _text("A") == "A"


# -- columns that identify people ---------------------------------------------------------------


def test_identifying_variants_are_dropped_and_sdtm_variables_kept(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row in tables["DM"]:
        row.update(FULLNAME="Ann Smith", SUBJINITIALS="AS", PATIENT_NAME="Ann", INVNAM="Dr X")
    tables["SUPPDM"] = [
        {
            "STUDYID": "TINY",
            "RDOMAIN": "DM",
            "USUBJID": "TINY-01-001",
            "IDVAR": "",
            "IDVARVAL": "",
            "QNAM": "COMPLT16",
            "QLABEL": "Completers of Week 16 Population Flag",
            "QVAL": "Y",
            "QORIG": "DERIVED",
        }
    ]
    tables["LB"] = [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "LBSEQ": 1,
            "LBTESTCD": "ALT",
            "LBTEST": "Alanine Aminotransferase",
            "LBNAM": "Central Lab",  # the laboratory's name, not a person's
            "LBSTRESN": 20,
        }
    ]
    url, out = _load(tmp_path, tables)
    for column in ("FULLNAME", "SUBJINITIALS", "PATIENT_NAME", "INVNAM"):
        assert f"warning: dm.csv: column {column} identifies people and was not loaded" in out
    assert len([line for line in out.splitlines() if "identifies people" in line]) == 4
    supp = read_dataset("SUPPDM", tmp_path / "package" / "suppdm.csv")
    assert list(supp.frame.columns) == list(tables["SUPPDM"][0])
    assert supp.warnings == []
    lb = read_dataset("LB", tmp_path / "package" / "lb.csv")
    assert "LBNAM" in lb.frame.columns and lb.warnings == []
    subjects = read_sql("SELECT * FROM subject", make_engine(url))
    stored = " ".join(map(str, subjects.to_numpy().ravel()))
    assert "Smith" not in stored and "Ann" not in stored


# -- the baseline flag of SDTMIG 3.3 -----------------------------------------------------------


@pytest.mark.parametrize("flag", ["VSBLFL", "VSLOBXFL"])
def test_either_baseline_flag_marks_the_baseline(tmp_path: Path, flag: str) -> None:
    tables = copy_of_base()
    tables["VS"] = [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "VSSEQ": n,
            "VSTESTCD": "WEIGHT",
            "VSSTRESN": weight,
            "VISIT": visit,
            "VSDTC": dtc,
            flag: marked,
        }
        # The flagged value is not the last one before first dose (2024-01-20): the flag decides.
        for n, (weight, visit, dtc, marked) in enumerate(
            [
                (71.0, "SCREENING", "2024-01-10", "Y"),
                (70.5, "DAY 1", "2024-01-19", ""),
                (69.0, "WEEK 2", "2024-02-03", ""),
            ],
            start=1,
        )
    ]
    url, _out = _load(tmp_path, tables)
    findings = read_sql(
        "SELECT value_num, is_baseline FROM finding ORDER BY date", make_engine(url)
    )
    assert findings["is_baseline"].tolist() == [1, 0, 0]


# -- the cut-off date: TS DCUTDTC, else --cutoff, else the latest date in the data ------------


def _without_dcutdtc() -> Tables:
    tables = copy_of_base()
    tables["TS"] = [row for row in tables["TS"] if row["TSPARMCD"] != "DCUTDTC"]
    return tables


def test_cutoff_option_where_ts_has_none(tmp_path: Path) -> None:
    url, out = _load(tmp_path, _without_dcutdtc(), "--cutoff", "2024-07-15")
    cut = _cut(url)
    assert str(cut["cutoff_date"]) == "2024-07-15"
    assert "cut-off 2024-07-15" in out
    assert not any("cut-off" in w for w in json.loads(cut["warnings"]))


def test_latest_date_in_the_data_without_ts_or_option(tmp_path: Path) -> None:
    tables = _without_dcutdtc()
    tables["AE"][1]["AEENDTC"] = "ONGOING"  # text that is no date is no cut-off either
    tables["DS"][0]["DSSTDTC"] = "2099-02-30"  # nor is a date that does not exist
    url, _out = _load(tmp_path, tables)
    # Independently: the latest full date in any --DTC column of the files written (TS aside).
    latest = max(
        day
        for domain, rows in tables.items()
        if domain != "TS"
        for column in pd.DataFrame(rows).columns
        if column.endswith("DTC")
        for day in pd.to_datetime(
            pd.DataFrame(rows)[column].astype(str).str[:10], format="%Y-%m-%d", errors="coerce"
        ).dropna()
    )
    assert str(_cut(url)["cutoff_date"]) == latest.date().isoformat() == "2024-05-20"


def test_ts_dcutdtc_wins_over_a_disagreeing_option_with_a_warning(tmp_path: Path) -> None:
    url, out = _load(tmp_path, copy_of_base(), "--cutoff", "2024-07-15")
    warning = "TS DCUTDTC 2024-06-30 is used as the cut-off, not --cutoff 2024-07-15"
    assert f"warning: {warning}" in out
    cut = _cut(url)
    assert str(cut["cutoff_date"]) == "2024-06-30"
    assert warning in json.loads(cut["warnings"])


def test_ts_dcutdtc_and_an_agreeing_option_give_no_warning(tmp_path: Path) -> None:
    url, out = _load(tmp_path, copy_of_base(), "--cutoff", "2024-06-30")
    assert "is used as the cut-off" not in out
    assert str(_cut(url)["cutoff_date"]) == "2024-06-30"


# -- start-up ------------------------------------------------------------------------------------


def test_the_command_line_starts_without_charts_or_statistics() -> None:
    # The pack's charts (altair) and the demo's and importers' statistics (scipy) load in the
    # commands that use them: `study-monitor import sdtm` does not wait for the PDF's modules.
    import subprocess
    import sys

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dashboard.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'altair', 'scipy', "
            "'reportlab', 'vl_convert', 'openpyxl'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
