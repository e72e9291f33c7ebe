"""Broken and odd-but-valid SDTM inputs.

Broken: each gives its plain message naming what is wrong and where, exit status 2, and no study data
changes. Odd but valid: each loads, with its warning printed and stored on the DataCut.
"""

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from tests.databases import new_database_url, read_sql
from tests.sdtm_builders import copy_of_base, write_package

runner = CliRunner()
Tables = dict[str, list[dict[str, object]]]
TABLES = (
    "study",
    "site",
    "arm",
    "criterion",
    "subject",
    "eligibilityfinding",
    "disposition",
    "finding",
    "adverseevent",
    "exposure",
    "visit",
    "datacut",
    "cutchange",
)


def _import(folder: Path, db_url: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", db_url, *extra])
    return result.exit_code, result.stdout, result.stderr


def _snapshot(engine: Engine) -> dict[str, pd.DataFrame]:
    return {
        t: read_sql(
            f"SELECT * FROM {t} ORDER BY id" if t != "study" else "SELECT * FROM study", engine
        )
        for t in TABLES
    }


@pytest.fixture
def loaded_db(tmp_path: Path) -> str:
    """A database already holding the base package as study TINY."""
    url = new_database_url(tmp_path, "corpus")
    code, _out, err = _import(write_package(tmp_path / "base"), url)
    assert code == 0, err
    return url


# -- broken inputs ----------------------------------------------------------------------------


def _rows(domain: str, change: Callable[[list[dict[str, object]]], None]) -> Callable[[Path], Path]:
    """A case that changes the base package's rows of one domain, then writes it as CSV."""

    def build(folder: Path) -> Path:
        tables = copy_of_base()
        change(tables[domain])
        return write_package(folder, tables)

    return build


def _set(record: int, column: str, value: object) -> Callable[[list[dict[str, object]]], None]:
    def change(rows: list[dict[str, object]]) -> None:
        rows[record - 1][column] = value

    return change


def _drop_column(column: str) -> Callable[[list[dict[str, object]]], None]:
    def change(rows: list[dict[str, object]]) -> None:
        for row in rows:
            row.pop(column, None)

    return change


def _append_copy(record: int, **changes: object) -> Callable[[list[dict[str, object]]], None]:
    def change(rows: list[dict[str, object]]) -> None:
        rows.append({**rows[record - 1], **changes})

    return change


def _with_file(name: str, content: bytes) -> Callable[[Path], Path]:
    """The base package with one file replaced by raw bytes."""

    def build(folder: Path) -> Path:
        write_package(folder)
        for existing in folder.glob(f"{Path(name).stem}.*"):
            existing.unlink()
        (folder / name).write_bytes(content)
        return folder

    return build


def _without(domain: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        tables = copy_of_base()
        del tables[domain]
        return write_package(folder, tables)

    return build


def _truncated_xpt(folder: Path) -> Path:
    write_package(folder, formats={"DM": "xpt"})
    data = (folder / "dm.xpt").read_bytes()
    (folder / "dm.xpt").write_bytes(data[: len(data) // 2 + 7])
    return folder


def _json_with_short_row(folder: Path) -> Path:
    write_package(folder, formats={"AE": "json"})
    document = json.loads((folder / "ae.json").read_text())
    document["rows"][1] = document["rows"][1][:-3]
    (folder / "ae.json").write_text(json.dumps(document))
    return folder


def _two_study_ids(rows: list[dict[str, object]]) -> None:
    rows[2]["STUDYID"] = "OTHER"


def _cp1252_csv(folder: Path) -> Path:
    write_package(folder)
    text = (folder / "ae.csv").read_text(encoding="utf-8").replace("HEADACHE", "CÉPHALÉE")
    (folder / "ae.csv").write_bytes(text.encode("cp1252"))
    return folder


def _ragged_csv(folder: Path) -> Path:
    write_package(folder)
    lines = (folder / "ds.csv").read_text(encoding="utf-8").splitlines()
    lines[2] += ",EXTRA,VALUES"
    (folder / "ds.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


BROKEN: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "no DM": (_without("DM"), ["no DM dataset", "DM is required"]),
    "DM without USUBJID": (
        _rows("DM", _drop_column("USUBJID")),
        ["dm.csv", "column USUBJID", "required column"],
    ),
    "AE without USUBJID": (_rows("AE", _drop_column("USUBJID")), ["ae.csv", "column USUBJID"]),
    "AE without AETERM": (_rows("AE", _drop_column("AETERM")), ["ae.csv", "column AETERM"]),
    "IE without IETESTCD": (_rows("IE", _drop_column("IETESTCD")), ["ie.csv", "IETESTCD"]),
    "TI without IECAT": (_rows("TI", _drop_column("IECAT")), ["ti.csv", "IECAT"]),
    "AE subject not in DM": (
        _rows("AE", _set(2, "USUBJID", "TINY-09-999")),
        ["ae.csv", "record 2", "column USUBJID", "TINY-09-999 is not in DM"],
    ),
    "DS subject not in DM": (
        _rows("DS", _set(1, "USUBJID", "NOBODY")),
        ["ds.csv", "record 1", "NOBODY is not in DM"],
    ),
    "duplicate USUBJID in DM": (
        _rows("DM", _append_copy(1, AGE=62)),
        ["dm.csv", "record 4", "duplicate USUBJID TINY-01-001"],
    ),
    "duplicate AESEQ in AE": (
        _rows("AE", _append_copy(1, AETERM="NAUSEA")),
        ["ae.csv", "record 3", "column AESEQ", "duplicate AESEQ 1"],
    ),
    "blank USUBJID in DM": (
        _rows("DM", _set(2, "USUBJID", "")),
        ["dm.csv", "record 2", "USUBJID is blank"],
    ),
    "impossible day": (
        _rows("DM", _set(1, "RFSTDTC", "2024-02-30")),
        ["dm.csv", "record 1", "column RFSTDTC", "not a real date"],
    ),
    "month 13": (
        _rows("AE", _set(1, "AESTDTC", "2024-13-01")),
        ["ae.csv", "record 1", "column AESTDTC", "not a real date"],
    ),
    "hour 25": (
        _rows("AE", _set(1, "AESTDTC", "2024-01-22T25:00")),
        ["ae.csv", "column AESTDTC", "not a real time"],
    ),
    "US date format": (
        _rows("DS", _set(2, "DSSTDTC", "05/20/2024")),
        ["ds.csv", "record 2", "column DSSTDTC", "not an ISO 8601 date"],
    ),
    "text in AGE": (
        _rows("DM", _set(3, "AGE", "fifty-five")),
        ["dm.csv", "record 3", "column AGE", "is not a number"],
    ),
    "text in AESEQ": (
        _rows("AE", _set(1, "AESEQ", "one")),
        ["ae.csv", "column AESEQ", "is not a number"],
    ),
    "text in VSSTRESN": (
        _rows("VS", _set(1, "VSSTRESN", "70,5 kg")),
        ["vs.csv", "column VSSTRESN", "is not a number"],
    ),
    "empty DM file": (_with_file("dm.csv", b""), ["dm.csv", "is empty"]),
    "empty AE file": (_with_file("ae.csv", b""), ["ae.csv", "is empty"]),
    "blank lines only": (_with_file("ds.csv", b"\n\n  \n"), ["ds.csv", "is empty"]),
    "CSV in cp1252": (_cp1252_csv, ["ae.csv", "is not UTF-8", "line 2"]),
    "ragged CSV": (_ragged_csv, ["ds.csv", "cannot be read as CSV"]),
    "truncated xpt": (_truncated_xpt, ["dm.xpt", "cannot be read as SAS transport"]),
    "xpt that is text": (
        _with_file("dm.xpt", b"USUBJID,AGE\n1,2\n"),
        ["dm.xpt", "cannot be read as SAS transport"],
    ),
    "JSON that is not JSON": (
        _with_file("ae.json", b'{"columns": [ broken'),
        ["ae.json", "is not JSON"],
    ),
    "JSON without columns": (
        _with_file("ae.json", b'{"rows": []}'),
        ["ae.json", "not CDISC Dataset-JSON"],
    ),
    "Dataset-JSON row too short": (_json_with_short_row, ["ae.json", "record 2"]),
    "two study ids in DM": (_rows("DM", _two_study_ids), ["dm.csv", "2 study ids", "--study-id"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_input_changes_nothing(case: str, tmp_path: Path, loaded_db: str) -> None:
    build, expected = BROKEN[case]
    engine = make_engine(loaded_db)
    before = _snapshot(engine)
    code, out, err = _import(build(tmp_path / "broken"), loaded_db)
    assert code == 2, (out, err)
    assert err.startswith("error: ")
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert "nothing was written" in err
    assert "Traceback" not in err + out
    after = _snapshot(engine)
    for table in TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 20


def test_not_a_folder(tmp_path: Path) -> None:
    code, _out, err = _import(tmp_path / "missing", new_database_url(tmp_path, "x"))
    assert code == 2 and "is not a folder of SDTM datasets" in err


def test_no_study_id_anywhere(tmp_path: Path) -> None:
    tables = copy_of_base()
    for rows in tables.values():
        for row in rows:
            row.pop("STUDYID", None)
    folder = write_package(tmp_path / "nostudy", tables)
    url = new_database_url(tmp_path, "x")
    code, _out, err = _import(folder, url)
    assert code == 2 and "name the study with --study-id" in err
    code, _out, err = _import(folder, url, "--study-id", "NAMED")
    assert code == 0, err


# -- odd but valid ----------------------------------------------------------------------------


def _load(
    tmp_path: Path, tables: Tables | None = None, **kwargs: dict[str, str]
) -> tuple[str, str]:
    url = new_database_url(tmp_path, "odd")
    code, out, err = _import(write_package(tmp_path / "odd", tables, **kwargs), url)
    assert code == 0, err
    return url, out


def _warnings(url: str) -> list[str]:
    cuts = read_sql("SELECT warnings FROM datacut ORDER BY id DESC", make_engine(url))
    return list(json.loads(cuts.iloc[0]["warnings"]))


def test_partial_dates_are_kept_as_text_and_sorted_by_their_first_day(tmp_path: Path) -> None:
    url, _out = _load(tmp_path)
    engine = make_engine(url)
    subject = read_sql(
        "SELECT screening_dtc, screening_date FROM subject WHERE usubjid = 'TINY-02-003'", engine
    ).iloc[0]
    assert subject["screening_dtc"] == "2024-03"
    assert subject["screening_date"] == "2024-03-01"
    ae = read_sql(
        "SELECT start_dtc, start_date, end_dtc, start_day FROM adverseevent "
        "WHERE term = 'PNEUMONIA'",
        engine,
    ).iloc[0]
    assert (ae["start_dtc"], ae["start_date"]) == ("2024-04", "2024-04-01")
    assert ae["end_dtc"] is None and ae["start_day"] is None  # blanks are nulls, not ""


def test_free_text_ts_value_is_a_warning(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["TS"].append({"STUDYID": "TINY", "TSPARMCD": "AGEMAX", "TSVAL": "No maximum"})
    tables["TS"].append({"STUDYID": "TINY", "TSPARMCD": "PLANSUB", "TSVAL": "about forty"})
    tables["TS"][1]["TSVAL"] = "about forty"
    url, out = _load(tmp_path, tables)
    assert "warning: TS AGEMAX 'No maximum' is not an ISO 8601 duration" in out
    assert any("PLANSUB 'about forty'" in w for w in _warnings(url))
    study = read_sql(
        "SELECT min_age, max_age, planned_enrollment FROM study", make_engine(url)
    ).iloc[0]
    assert study["min_age"] == 18 and study["max_age"] is None
    assert study["planned_enrollment"] is None


def test_exact_duplicate_records_are_counted_and_kept_once(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["AE"].append(dict(tables["AE"][0]))
    tables["VS"].append(dict(tables["VS"][0]))
    url, out = _load(tmp_path, tables)
    assert "ae.csv: 1 exact duplicate record(s) kept once (records 3)" in out
    assert "vs.csv: 1 exact duplicate record(s) kept once (records 2)" in out
    counts = read_sql("SELECT count(*) AS n FROM adverseevent", make_engine(url))
    assert counts.iloc[0]["n"] == 2


def test_extra_columns_and_upper_case_names_and_mixed_formats(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row in tables["DM"]:
        row["MYVAR"] = "x"  # an extra, sponsor-defined column
    folder = write_package(tmp_path / "mixed", tables, formats={"DM": "xpt", "AE": "json"})
    (folder / "ds.csv").rename(folder / "DS.CSV")
    url = new_database_url(tmp_path, "mixed")
    code, _out, err = _import(folder, url)
    assert code == 0, err
    summary = json.loads(runner.invoke(app, ["summary", "--json", "--db", url]).stdout)
    assert (summary["screened"], summary["screen_failures"], summary["enrolled"]) == (3, 1, 2)
    assert (summary["ae_events"], summary["sae_events"]) == (2, 1)
    assert summary["screen_failures_by_criterion"] == {"EXCL01": 1}


def test_csv_with_a_row_number_column(tmp_path: Path) -> None:
    folder = write_package(tmp_path / "rownum")
    frame = pd.read_csv(folder / "dm.csv", dtype=str, keep_default_na=False)
    frame.to_csv(folder / "dm.csv", index=True)  # pandas' unnamed index column
    url = new_database_url(tmp_path, "rownum")
    code, out, err = _import(folder, url)
    assert code == 0, err
    assert "dm.csv: column UNNAMED: 0 of row numbers dropped" in out


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    folder = write_package(tmp_path / "bom")
    text = (folder / "dm.csv").read_text(encoding="utf-8")
    (folder / "dm.csv").write_bytes(text.encode("utf-8-sig"))
    code, _out, err = _import(folder, new_database_url(tmp_path, "bom"))
    assert code == 0, err


def test_identifying_columns_are_dropped_and_birth_date_cut(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row in tables["DM"]:
        row["INVNAM"] = "Dr Someone"
        row["SUBJINIT"] = "ABC"
        row["BRTHDTC"] = "1960-05-17"
    url, out = _load(tmp_path, tables)
    assert "dm.csv: column INVNAM identifies people and was not loaded" in out
    assert "dm.csv: column SUBJINIT identifies people and was not loaded" in out
    engine = make_engine(url)
    subjects = read_sql("SELECT * FROM subject", engine)
    assert set(subjects["birth_year"]) == {1960}
    stored = " ".join(map(str, subjects.to_numpy().ravel()))
    assert "Someone" not in stored and "ABC" not in stored and "1960-05-17" not in stored


def test_duplicate_visit_and_disposition_keys_are_warnings(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["SV"] = [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "VISITNUM": 1,
            "VISIT": "BASELINE",
            "SVSTDTC": "2024-01-20",
        },
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "VISITNUM": 1,
            "VISIT": "BASELINE",
            "SVSTDTC": "2024-01-21",
        },
    ]
    tables["DS"].append({**tables["DS"][1], "DSDECOD": "ADVERSE EVENT", "DSSTDTC": "2024-05-21"})
    url, out = _load(tmp_path, tables)
    assert "sv.csv: 1 visit(s) recorded more than once" in out
    assert "ds.csv: 1 key(s) repeated (TINY-01-001/1)" in out
    visits = read_sql("SELECT count(*) AS n FROM visit", make_engine(url))
    assert visits.iloc[0]["n"] == 2


def test_ie_record_of_a_criterion_met_is_not_counted(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["IE"].append(
        {**tables["IE"][0], "IETESTCD": "INCL01", "IECAT": "INCLUSION", "IEORRES": "Y", "IESEQ": 2}
    )
    url, out = _load(tmp_path, tables)
    assert "INCL01 is recorded as met (Y)" in out
    summary = json.loads(runner.invoke(app, ["summary", "--json", "--db", url]).stdout)
    assert summary["screen_failures_by_criterion"] == {"EXCL01": 1}


def test_sas_missing_values_become_nulls(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["DM"][1]["AGE"] = None  # written to xpt as a SAS missing numeric
    url, _out = _load(tmp_path, tables, formats={"DM": "xpt"})
    ages = read_sql("SELECT usubjid, age, arm FROM subject ORDER BY usubjid", make_engine(url))
    assert ages["age"].isna().tolist() == [False, True, False]
    assert pd.isna(ages["arm"].tolist()[1])  # a blank text is a null (NULL in SQL) too


def test_missing_optional_domains_are_named(tmp_path: Path) -> None:
    tables = copy_of_base()
    del tables["IE"], tables["AE"]
    url, out = _load(tmp_path, tables)
    assert "no IE domain: failures by criterion unknown" in out
    assert "no AE domain: adverse events unknown" in out
    assert "no IE domain: failures by criterion unknown" in _warnings(url)


def test_uploaded_files_import_like_a_folder(tmp_path: Path) -> None:
    from dashboard.importers.errors import ImportFailure
    from dashboard.importers.run import import_sdtm_files

    folder = write_package(tmp_path / "upload")
    files = [(f"../../{p.name}", p.read_bytes()) for p in sorted(folder.iterdir())]
    engine = make_engine(new_database_url(tmp_path, "upload"))
    report = import_sdtm_files(engine, files, study_id="UPLOADED")
    assert report.result.study_id == "UPLOADED"
    assert report.row_counts["DM"] == 3
    assert not (tmp_path.parent / "dm.csv").exists()  # names cannot climb out of the temp folder
    with pytest.raises(ImportFailure, match="no files were uploaded"):
        import_sdtm_files(engine, [])
    with pytest.raises(ImportFailure, match="DM is required"):
        import_sdtm_files(engine, [("ae.csv", (folder / "ae.csv").read_bytes())])


def test_pages_name_a_missing_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import PROJECT_ROOT

    tables = copy_of_base()
    del tables["AE"], tables["IE"]
    url, _out = _load(tmp_path, tables)
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    at.switch_page("../pages/adverse_events.py").run()
    assert not at.exception
    assert "No AE domain in data cut 1: adverse events are unknown, not zero." in [
        w.value for w in at.warning
    ]
    at.switch_page("../pages/screen_failures.py").run()
    assert any("No IE domain" in w.value for w in at.warning)


def test_baseline_without_a_flag_is_the_last_value_before_first_dose(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["VS"] = [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "VSSEQ": n,
            "VSTESTCD": "WEIGHT",
            "VSTEST": "Weight",
            "VSSTRESN": weight,
            "VSSTRESU": "kg",
            "VISIT": visit,
            "VSDTC": dtc,
        }
        for n, (weight, visit, dtc) in enumerate(
            [
                (71.0, "SCREENING", "2024-01-10"),
                (70.5, "DAY 1", "2024-01-20T08:30"),
                (69.0, "WEEK 2", "2024-02-03"),
            ],
            start=1,
        )
    ]
    url, _out = _load(tmp_path, tables)
    findings = read_sql(
        "SELECT value_num, dtc, date, is_baseline FROM finding ORDER BY date", make_engine(url)
    )
    # First dose (RFXSTDTC) is 2024-01-20: the same-day value before dosing is the baseline.
    assert findings["is_baseline"].tolist() == [0, 1, 0]
    assert findings.loc[1, "dtc"] == "2024-01-20T08:30"  # a datetime kept as given
    assert findings.loc[1, "date"] == "2024-01-20"
