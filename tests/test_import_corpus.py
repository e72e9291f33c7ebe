"""Broken and odd-but-valid SDTM inputs.

Broken: each gives its plain message naming what is wrong and where, exit status 2, and no study data
changes. Odd but valid: each loads, with its warning printed and stored on the DataCut.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from tests.databases import STUDY_TABLES, new_database_url, read_sql, study_tables
from tests.reference import SHARED_DATA
from tests.sdtm_builders import copy_of_base, write_package

runner = CliRunner()
Tables = dict[str, list[dict[str, object]]]


def _import(folder: Path, db_url: str, *extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", db_url, *extra])
    return result.exit_code, result.stdout, result.stderr


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


def _json_ae_with_text_seq(folder: Path) -> Path:
    write_package(folder, formats={"AE": "json"})
    document = json.loads((folder / "ae.json").read_text())
    document["rows"][1][
        document["columns"].index(next(c for c in document["columns"] if c["name"] == "AESEQ"))
    ] = "#2"
    (folder / "ae.json").write_text(json.dumps(document))
    return folder


def _xpt_ae_with_text_seq(folder: Path) -> Path:
    tables = copy_of_base()
    for number, row in enumerate(tables["AE"], start=1):
        row["AESEQ"] = f"AE-{number}"  # a character column in the transport file
        row["AESTDY"] = row["AESTDY"] or None
    return write_package(folder, tables, formats={"AE": "xpt"})


def _with_visits(*, visitnum: object) -> Callable[[Path], Path]:
    """The base package with an SV domain whose first record has VISITNUM ``visitnum``."""

    def build(folder: Path) -> Path:
        tables = copy_of_base()
        tables["SV"] = [
            {
                "STUDYID": "TINY",
                "USUBJID": "TINY-01-001",
                "VISITNUM": visitnum,
                "VISIT": "BASELINE",
                "SVSTDTC": "2024-01-20",
            },
            {
                "STUDYID": "TINY",
                "USUBJID": "TINY-01-001",
                "VISITNUM": 2,
                "VISIT": "WEEK 2",
                "SVSTDTC": "2024-02-03",
            },
        ]
        return write_package(folder, tables)

    return build


def _ragged_csv(folder: Path) -> Path:
    write_package(folder)
    lines = (folder / "ds.csv").read_text(encoding="utf-8").splitlines()
    lines[2] += ",EXTRA,VALUES"
    (folder / "ds.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


# -- values (#17): dates, keys, numbers: builders ----------------------------------------------


def _json_ae_with(column: str, record: int, value: object) -> Callable[[Path], Path]:
    """The base package with AE as Dataset-JSON, one value set (NaN and Infinity are written as
    Python's json writes them: the constants JSON itself does not have)."""

    def build(folder: Path) -> Path:
        write_package(folder, formats={"AE": "json"})
        document = json.loads((folder / "ae.json").read_text())
        names = [c["name"] for c in document["columns"]]
        document["rows"][record - 1][names.index(column)] = value
        (folder / "ae.json").write_text(json.dumps(document))
        return folder

    return build


def _all_study_ids(value: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        tables = copy_of_base()
        for rows in tables.values():
            for row in rows:
                row["STUDYID"] = value
        return write_package(folder, tables)

    return build


# -- files (#17): truncation, non-regular files, mass removal ----------------------------------

PILOT_AE = SHARED_DATA / "sdtm" / "cdiscpilot01" / "ae.xpt"
PILOT_AE_RECORDS = 961  # the pilot's AE, as pandas.read_sas counts it too


def _pilot_ae_layout() -> tuple[bytes, int, int]:
    """The pilot's ae.xpt, where its records start and their length, read from the file's own
    80-byte header lines (independently of the importer's reader)."""
    data = PILOT_AE.read_bytes()
    start = data.index(b"HEADER RECORD*******OBS     HEADER RECORD") + 80
    record_length = (len(data) - start) // PILOT_AE_RECORDS  # the last line's padding is < 80
    return data, start, record_length


def _pilot_ae_cut(at: Callable[[int, int], int]) -> Callable[[Path], Path]:
    """The base package with the pilot's ae.xpt cut at byte ``at(start, record_length)``; the
    reader fails before it looks at subjects."""

    def build(folder: Path) -> Path:
        data, start, record_length = _pilot_ae_layout()
        return _with_file("ae.xpt", data[: at(start, record_length)])(folder)

    return build


def _pilot(domain: str, change: Callable[[pd.DataFrame], None]) -> Callable[[Path], Path]:
    """The CDISC pilot's DM and ``domain`` (enough to import: measured at 0.4 s), copied from the
    shared data and one of them changed through pandas and written back as SAS transport."""

    def build(folder: Path) -> Path:
        import shutil

        import pyreadstat

        from tests.conftest import reference_absent
        from tests.reference import SHARED_DATA

        source = SHARED_DATA / "sdtm" / "cdiscpilot01"
        if not source.is_dir():
            reference_absent(f"reference data folder {source} is absent")
        folder.mkdir(parents=True)
        for name in {"dm.xpt", f"{domain.lower()}.xpt"}:
            shutil.copy(source / name, folder / name)
        path = folder / f"{domain.lower()}.xpt"
        frame, meta = pyreadstat.read_xport(str(path))
        change(frame)
        pyreadstat.write_xport(
            frame,
            str(path),
            table_name=domain,
            file_format_version=5,
            column_labels=meta.column_labels,
        )
        return folder

    return build


def _ae_xpt_that_is_not_a_file(kind: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        write_package(folder)
        (folder / "ae.csv").unlink()
        target = folder / "ae.xpt"
        if kind == "folder":
            target.mkdir()
            (target / "ae.xpt").write_bytes(PILOT_AE.read_bytes())
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "dangling":
            target.symlink_to(folder / "gone" / "ae.xpt")
        else:
            target.symlink_to(kind)  # a device
        return folder

    return build


def _frame_set(record: int, column: str, value: float) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[record - 1, column] = value

    return change


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
    # A key that cannot be read is as good as missing: text in a numeric key is fatal.
    "text in AESEQ": (
        _rows("AE", _set(1, "AESEQ", "one")),
        ["ae.csv", "record 1", "column AESEQ", "'one' is not a number", "key of AE"],
    ),
    "decimal comma in AESEQ": (
        _rows("AE", _set(2, "AESEQ", "1,0")),
        ["ae.csv", "record 2", "column AESEQ", "'1,0' is not a number"],
    ),
    "text in AESEQ of Dataset-JSON": (
        _json_ae_with_text_seq,
        ["ae.json", "record 2", "column AESEQ", "'#2' is not a number"],
    ),
    "text in AESEQ of xpt": (
        _xpt_ae_with_text_seq,
        ["ae.xpt", "record 1", "column AESEQ", "'AE-1' is not a number"],
    ),
    "text in DSSEQ": (
        _rows("DS", _set(2, "DSSEQ", "first")),
        ["ds.csv", "record 2", "column DSSEQ", "key of DS"],
    ),
    "text in SV VISITNUM": (
        _with_visits(visitnum="V1"),
        ["sv.csv", "record 1", "column VISITNUM", "'V1' is not a number", "key of SV"],
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
    # -- values (#17): dates, keys, numbers --
    "AESEQ 2.7": (
        _rows("AE", _set(2, "AESEQ", 2.7)),
        ["ae.csv", "record 2", "column AESEQ", "'2.7' is not a whole number", "key of AE"],
    ),
    "AESEQ 1e20": (
        _rows("AE", _set(1, "AESEQ", "1e20")),
        ["ae.csv", "record 1", "column AESEQ", "1e20 does not fit the database's integer column"],
    ),
    # PostgreSQL's INTEGER is 32-bit: 3e9 fits SQLite and not PostgreSQL, refused on both.
    "AESEQ 3e9": (
        _rows("AE", _set(2, "AESEQ", 3_000_000_000)),
        ["ae.csv", "record 2", "column AESEQ", "(-2,147,483,648 to 2,147,483,647)"],
    ),
    "AESTDY 1e20": (
        _rows("AE", _set(1, "AESTDY", "1e20")),
        ["ae.csv", "record 1", "column AESTDY", "does not fit the database's integer column"],
    ),
    "AESEQ NaN in Dataset-JSON": (
        _json_ae_with("AESEQ", 2, float("nan")),
        ["ae.json", "record 2", "column AESEQ", "'NaN' is not a finite number", "key of AE"],
    ),
    "AESEQ Infinity in Dataset-JSON": (
        _json_ae_with("AESEQ", 1, float("inf")),
        ["ae.json", "record 1", "column AESEQ", "'Infinity' is not a finite number"],
    ),
    "SV VISITNUM inf": (
        _with_visits(visitnum="inf"),
        ["sv.csv", "record 1", "column VISITNUM", "'inf' is not a finite number", "key of SV"],
    ),
    "USUBJID padded in DM": (
        _rows("DM", _append_copy(1, USUBJID="TINY-01-001 ", AGE=62)),
        [
            "dm.csv",
            "record 4",
            "column USUBJID",
            "duplicate USUBJID TINY-01-001 (first in record 1)",
        ],
    ),
    "USUBJID in lower case in DM": (
        _rows("DM", _append_copy(1, USUBJID="tiny-01-001")),
        [
            "dm.csv",
            "record 4",
            "column USUBJID",
            "duplicate USUBJID 'tiny-01-001': record 1 has 'TINY-01-001'",
            "differs only in case, spaces or invisible characters",
        ],
    ),
    "USUBJID with a zero-width space in DM": (
        _rows("DM", _append_copy(2, USUBJID="TINY-01-002\u200b")),
        [
            "dm.csv",
            "record 4",
            "duplicate USUBJID 'TINY-01-002\\u200b': record 2 has 'TINY-01-002'",
        ],
    ),
    "AE USUBJID near a DM one": (
        _rows("AE", _set(2, "USUBJID", "tiny-01-001")),
        [
            "ae.csv",
            "record 2",
            "column USUBJID",
            "subject tiny-01-001 is not in DM (near match: DM has 'TINY-01-001'",
        ],
    ),
    "AE STUDYID not DM's": (
        _rows("AE", _set(2, "STUDYID", "OTHER")),
        ["ae.csv", "record 2", "column STUDYID", "STUDYID 'OTHER' is not DM's ('TINY')"],
    ),
    "STUDYID NCT123": (
        _all_study_ids("NCT123"),
        ["dm.csv", "column STUDYID", "'NCT123' looks like a ClinicalTrials.gov id"],
    ),
    "NUL byte in USUBJID": (
        _rows("AE", _set(1, "USUBJID", "TINY-01-\x00001")),
        ["ae.csv", "record 1", "column USUBJID", "holds a NUL byte", "identifies a record"],
    ),
    "pilot AE AESEQ 2.7": (
        _pilot("AE", _frame_set(3, "AESEQ", 2.7)),
        ["ae.xpt", "record 3", "column AESEQ", "'2.7' is not a whole number"],
    ),
    "pilot AE AESEQ 1e20": (
        _pilot("AE", _frame_set(5, "AESEQ", 1e20)),
        ["ae.xpt", "record 5", "column AESEQ", "1e+20 does not fit the database's integer column"],
    ),
    "pilot AE AESTDY 3e9": (
        _pilot("AE", _frame_set(7, "AESTDY", 3e9)),
        ["ae.xpt", "record 7", "column AESTDY", "does not fit the database's integer column"],
    ),
    # -- files (#17): truncation, non-regular files, mass removal --
    # pyreadstat reads a truncated transport file's whole records and drops the rest silently.
    "pilot ae.xpt cut after record 312": (
        _pilot_ae_cut(lambda start, length: start + 312 * length),
        ["ae.xpt", "cut short after record 312", "first 312 records"],
    ),
    "pilot ae.xpt cut inside record 313": (
        _pilot_ae_cut(lambda start, length: start + 312 * length + 100),
        ["ae.xpt", "record 313", "cut short inside record 313", "100 of its 487 bytes"],
    ),
    "pilot ae.xpt cut inside a record on an 80-byte line": (
        _pilot_ae_cut(lambda start, length: start + (312 * length // 80) * 80),
        ["ae.xpt", "record 312", "cut short inside record 312"],
    ),
    "pilot ae.xpt without its last line": (
        _pilot_ae_cut(lambda start, length: len(PILOT_AE.read_bytes()) - 80),
        ["ae.xpt", "record 961", "first 960 records"],
    ),
    "ae.xpt a symlink to /dev/null": (
        _ae_xpt_that_is_not_a_file("/dev/null"),
        ["ae.xpt", "is a device (a symlink to /dev/null)", "must be a file"],
    ),
    "ae.xpt a symlink to /dev/zero": (
        _ae_xpt_that_is_not_a_file("/dev/zero"),
        ["ae.xpt", "is a device (a symlink to /dev/zero)"],
    ),
    "ae.xpt a dangling symlink": (
        _ae_xpt_that_is_not_a_file("dangling"),
        ["ae.xpt", "is a symlink to nothing"],
    ),
    "ae.xpt a folder": (_ae_xpt_that_is_not_a_file("folder"), ["ae.xpt", "is a folder"]),
    "ae.xpt a FIFO": (_ae_xpt_that_is_not_a_file("fifo"), ["ae.xpt", "named pipe"]),
    # The database holds TINY's base package: a package that drops a domain would remove it all.
    "no AE in a later cut": (
        _without("AE"),
        ["would remove 2 of study TINY's 2 current AE records", "100%", "--replace"],
    ),
    "no DS in a later cut": (_without("DS"), ["remove 2 of study TINY's 2 current DS records"]),
    "no IE in a later cut": (_without("IE"), ["remove 1 of study TINY's 1 current IE records"]),
    "no VS in a later cut": (_without("VS"), ["remove 1 of study TINY's 1 current VS records"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_input_changes_nothing(case: str, tmp_path: Path, loaded_db: str) -> None:
    build, expected = BROKEN[case]
    engine = make_engine(loaded_db)
    before = study_tables(engine)
    code, out, err = _import(build(tmp_path / "broken"), loaded_db)
    assert code == 2, (out, err)
    assert err.startswith("error: ")
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert "nothing was written" in err
    assert "Traceback" not in err + out
    after = study_tables(engine)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_corpus_is_large_enough() -> None:
    # Issue #17: 60 and more inputs, broken ones refused and odd ones loaded with a warning.
    assert len(BROKEN) >= 55 and len(BROKEN) + len(ODD_VALUES) >= 60


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


def test_a_cut_the_xpt_format_cannot_see_is_refused_as_mass_removal(tmp_path: Path) -> None:
    """A transport file cut where a record ends on an 80-byte line looks complete (version 5 files
    do not store their number of records; the pilot's AE every 80 records): against an earlier cut
    it removes most AEs, which needs --replace."""
    pilot = tmp_path / "pilot"
    pilot.mkdir()
    shutil.copy(PILOT_AE.parent / "dm.xpt", pilot / "dm.xpt")
    shutil.copy(PILOT_AE, pilot / "ae.xpt")
    url = new_database_url(tmp_path, "pilot")
    code, _out, err = _import(pilot, url)
    assert code == 0, err
    data, start, record_length = _pilot_ae_layout()
    assert (160 * record_length) % 80 == 0  # 160 records end on a line's end
    (pilot / "ae.xpt").write_bytes(data[: start + 160 * record_length])
    engine = make_engine(url)
    before = study_tables(engine)
    code, out, err = _import(pilot, url)
    assert code == 2, (out, err)
    assert (
        "would remove 801 of study CDISCPILOT01's 961 current AE records (83%; the package has "
        "160)" in err
    )
    assert "--replace" in err and "nothing was written" in err
    after = study_tables(engine)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
    code, out, err = _import(pilot, url, "--replace")
    assert code == 0, err
    counts = read_sql(
        "SELECT COUNT(*) AS n FROM adverseevent JOIN subject ON subject.id = subject_pk "
        "WHERE subject.study_id = 'CDISCPILOT01'",
        engine,
    )
    assert counts["n"].tolist() == [160]


def test_removing_half_of_a_domain_is_allowed_and_more_needs_replace(
    tmp_path: Path, loaded_db: str
) -> None:
    tables = copy_of_base()
    del tables["AE"][1]  # 1 of 2 AEs removed: half, allowed
    code, out, err = _import(write_package(tmp_path / "half", tables), loaded_db)
    assert code == 0, err
    assert "ae: 0 added, 0 changed, 1 removed" in out
    del tables["AE"]  # the last one too: all of them
    folder = write_package(tmp_path / "none", tables)
    code, _out, err = _import(folder, loaded_db)
    assert code == 2 and "would remove 1 of study TINY's 1 current AE records" in err
    code, out, err = _import(folder, loaded_db, "--replace")
    assert code == 0, err
    ae = read_sql("SELECT COUNT(*) AS n FROM adverseevent", make_engine(loaded_db))
    assert ae["n"].tolist() == [0]


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
    assert "ae.csv: 1 exact duplicate record kept once (records 3)" in out
    assert "vs.csv: 1 exact duplicate record kept once (records 2)" in out
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
    assert "sv.csv: 1 visit recorded more than once" in out
    assert "ds.csv: 1 key repeated (TINY-01-001/1)" in out
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


def test_an_ie_of_every_criterion_gives_one_warning_not_one_per_record(tmp_path: Path) -> None:
    tables = copy_of_base()
    for number, usubjid in enumerate(("TINY-01-001", "TINY-01-002", "TINY-02-003"), start=2):
        tables["IE"].append(
            {
                **tables["IE"][0],
                "USUBJID": usubjid,
                "IETESTCD": "INCL01",
                "IECAT": "INCLUSION",
                "IEORRES": "Y",
                "IESEQ": number,
            }
        )
    url, out = _load(tmp_path, tables)
    met = [line for line in out.splitlines() if "recorded as met" in line]
    assert met == [
        "warning: ie.csv, record 2: INCL01 is recorded as met (Y); IE holds criteria not met, so "
        "it is not counted (and 2 more recorded as met)"
    ]
    summary = json.loads(runner.invoke(app, ["summary", "--json", "--db", url]).stdout)
    assert summary["screen_failures_by_criterion"] == {"EXCL01": 1}


def test_sas_missing_values_become_nulls(tmp_path: Path) -> None:
    tables = copy_of_base()
    tables["DM"][1]["AGE"] = None  # written to xpt as a SAS missing numeric
    url, _out = _load(tmp_path, tables, formats={"DM": "xpt"})
    ages = read_sql("SELECT usubjid, age, arm FROM subject ORDER BY usubjid", make_engine(url))
    assert ages["age"].isna().tolist() == [False, True, False]
    assert pd.isna(ages["arm"].tolist()[1])  # a blank text is a null (NULL in SQL) too


# Unparseable optional values (DESIGN.md): a warning naming file, column, record and value; the text
# kept where the model keeps text, the date or number unknown (null), never a failed import.
ODD_VALUES: dict[str, tuple[str, int, str, str, str, str, tuple[object, ...]]] = {
    # case: (domain, record, column, value, warning fragment, SQL of the stored row, its values)
    "impossible day": (
        "DM",
        1,
        "RFSTDTC",
        "2024-02-30",
        "dm.csv column RFSTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'2024-02-30' is not a real date",
        "SELECT enrollment_dtc, enrollment_date FROM subject WHERE usubjid = 'TINY-01-001'",
        ("2024-02-30", None),
    ),
    "month 13": (
        "AE",
        1,
        "AESTDTC",
        "2024-13-01",
        "ae.csv column AESTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'2024-13-01' is not a real date",
        "SELECT start_dtc, start_date FROM adverseevent WHERE term = 'HEADACHE'",
        ("2024-13-01", None),
    ),
    "hour 25": (
        "AE",
        1,
        "AESTDTC",
        "2024-01-22T25:00",
        "ae.csv column AESTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'2024-01-22T25:00' is not a real time of day); kept as text",
        "SELECT start_dtc, start_date FROM adverseevent WHERE term = 'HEADACHE'",
        ("2024-01-22T25:00", None),
    ),
    "US date format": (
        "DS",
        2,
        "DSSTDTC",
        "05/20/2024",
        "ds.csv column DSSTDTC: 1 value is not a valid ISO 8601 date (first at record 2: "
        "'05/20/2024' is not an ISO 8601 date); kept as text, the date is unknown",
        "SELECT d.dtc, d.date FROM disposition d JOIN subject s ON s.id = d.subject_pk "
        "WHERE s.usubjid = 'TINY-01-001'",
        ("05/20/2024", None),
    ),
    "ongoing AE": (
        "AE",
        2,
        "AEENDTC",
        "ONGOING",
        "ae.csv column AEENDTC: 1 value is not a valid ISO 8601 date (first at record 2: "
        "'ONGOING' is not an ISO 8601 date)",
        "SELECT end_dtc, end_date FROM adverseevent WHERE term = 'PNEUMONIA'",
        ("ONGOING", None),
    ),
    "text in AGE": (
        "DM",
        3,
        "AGE",
        "fifty-five",
        "dm.csv column AGE: 1 value is not a number (first at record 3: 'fifty-five'); kept as "
        "text, the number is unknown",
        "SELECT age FROM subject WHERE usubjid = 'TINY-02-003'",
        (None,),
    ),
    "text in VSSTRESN": (
        "VS",
        1,
        "VSSTRESN",
        "70,5 kg",
        "vs.csv column VSSTRESN: 1 value is not a number (first at record 1: '70,5 kg')",
        "SELECT value_num, value_text FROM finding",
        (None, "70.5"),  # the number unknown; the result as text is VSSTRESC's
    ),
    "text in AESTDY": (
        "AE",
        1,
        "AESTDY",
        "day 3",
        "ae.csv column AESTDY: 1 value is not a number (first at record 1: 'day 3')",
        "SELECT start_day FROM adverseevent WHERE term = 'HEADACHE'",
        (None,),
    ),
    # -- values (#17): dates, keys, numbers --
    "year 0001": (
        "DM",
        1,
        "RFSTDTC",
        "0001-01-01",
        "dm.csv column RFSTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'0001-01-01' is not a plausible date (year outside 1900-",
        "SELECT enrollment_dtc, enrollment_date FROM subject WHERE usubjid = 'TINY-01-001'",
        ("0001-01-01", None),
    ),
    "year 9999": (
        "AE",
        2,
        "AEENDTC",
        "9999-12-31",
        "ae.csv column AEENDTC: 1 value is not a valid ISO 8601 date (first at record 2: "
        "'9999-12-31' is not a plausible date",
        "SELECT end_dtc, end_date FROM adverseevent WHERE term = 'PNEUMONIA'",
        ("9999-12-31", None),
    ),
    "text after a date": (
        "AE",
        1,
        "AESTDTC",
        "2014--05junk",
        "ae.csv column AESTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'2014--05junk' is not an ISO 8601 date)",
        "SELECT start_dtc, start_date FROM adverseevent WHERE term = 'HEADACHE'",
        ("2014--05junk", None),
    ),
    "T without a time": (
        "AE",
        1,
        "AESTDTC",
        "2024-01-22T",
        "ae.csv column AESTDTC: 1 value is not a valid ISO 8601 date (first at record 1: "
        "'2024-01-22T' is not an ISO 8601 date)",
        "SELECT start_dtc, start_date FROM adverseevent WHERE term = 'HEADACHE'",
        ("2024-01-22T", None),
    ),
    "AGE inf": (
        "DM",
        3,
        "AGE",
        "inf",
        "dm.csv column AGE: 1 value is not a finite number (first at record 3: 'inf'); the "
        "number is unknown",
        "SELECT age FROM subject WHERE usubjid = 'TINY-02-003'",
        (None,),
    ),
    "VSSTRESN -Infinity": (
        "VS",
        1,
        "VSSTRESN",
        "-Infinity",
        "vs.csv column VSSTRESN: 1 value is not a finite number (first at record 1: '-Infinity')",
        "SELECT value_num, value_text FROM finding",
        (None, "70.5"),
    ),
    "AESTDY 2.5": (
        "AE",
        1,
        "AESTDY",
        "2.5",
        "ae.csv column AESTDY: 1 value is not a finite whole number (first at record 1: '2.5'); "
        "the number is unknown",
        "SELECT start_day FROM adverseevent WHERE term = 'HEADACHE'",
        (None,),
    ),
    "NA in AESTDY": (
        "AE",
        1,
        "AESTDY",
        "NA",
        "ae.csv column AESTDY: 1 value 'NA' read as missing",
        "SELECT start_day FROM adverseevent WHERE term = 'HEADACHE'",
        (None,),
    ),
    "SAS dot in AGE": (
        "DM",
        3,
        "AGE",
        ".",
        "dm.csv column AGE: 1 value '.' read as missing",
        "SELECT age FROM subject WHERE usubjid = 'TINY-02-003'",
        (None,),
    ),
    # PostgreSQL refuses a NUL byte that SQLite stores: removed (with a warning) outside the
    # identifying columns, so both databases hold the same text.
    "NUL byte in AETERM": (
        "AE",
        1,
        "AETERM",
        "HEAD\x00ACHE",
        "ae.csv column AETERM: 1 value with NUL bytes or invalid characters (first at record 1: "
        "'HEAD\\x00ACHE'); those characters were removed",
        "SELECT term FROM adverseevent WHERE term = 'HEADACHE'",
        ("HEADACHE",),
    ),
}


@pytest.mark.parametrize("case", list(ODD_VALUES))
def test_unparseable_optional_value_is_a_warning_and_kept_as_text(
    case: str, tmp_path: Path
) -> None:
    domain, record, column, value, warning, sql, stored = ODD_VALUES[case]
    tables = copy_of_base()
    tables[domain][record - 1][column] = value
    url, out = _load(tmp_path, tables)
    assert f"warning: {warning}" in out
    assert any(warning in w for w in _warnings(url))
    row = read_sql(sql, make_engine(url))
    assert len(row) == 1
    assert [None if pd.isna(v) else v for v in row.iloc[0].tolist()] == list(stored)
    # The figures still come out: the unknown date or number is missing, not a crash.
    summary = json.loads(runner.invoke(app, ["summary", "--json", "--db", url]).stdout)
    assert (summary["screened"], summary["enrolled"], summary["ae_events"]) == (3, 2, 2)


def test_unparseable_values_are_one_warning_per_file_and_column(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row in tables["AE"]:
        row["AEENDTC"] = "ONGOING"
    tables["MH"] = [  # a domain read but not mapped: its dates are checked all the same
        {"STUDYID": "TINY", "USUBJID": u, "MHSEQ": 1, "MHTERM": "ASTHMA", "MHSTDTC": "UNK"}
        for u in ("TINY-01-001", "TINY-01-002", "TINY-02-003")
    ]
    url, out = _load(tmp_path, tables)
    lines = [line for line in out.splitlines() if "ISO 8601 date" in line]
    assert lines == [
        "warning: ae.csv column AEENDTC: 2 values are not a valid ISO 8601 date (first at "
        "record 1: 'ONGOING' is not an ISO 8601 date); kept as text, the date is unknown",
        "warning: mh.csv column MHSTDTC: 3 values are not a valid ISO 8601 date (first at "
        "record 1: 'UNK' is not an ISO 8601 date); kept as text, the date is unknown",
    ]
    ends = read_sql("SELECT end_dtc, end_date FROM adverseevent", make_engine(url))
    assert ends["end_dtc"].tolist() == ["ONGOING", "ONGOING"]
    assert ends["end_date"].isna().all()


def test_a_big_file_of_unparseable_values_gives_one_warning(tmp_path: Path) -> None:
    from dashboard.importers.readers import read_dataset

    n = 20_000
    frame = pd.DataFrame(
        {
            "USUBJID": [f"S{i}" for i in range(n)],
            "LBSEQ": range(1, n + 1),
            "LBTESTCD": "ALT",
            "LBSTRESN": ["<5" if i % 2 else str(i) for i in range(n)],
            "LBDTC": ["2024-01-01" if i % 3 else "2024-02-31" for i in range(n)],
        }
    )
    frame.to_csv(tmp_path / "lb.csv", index=False)
    dataset = read_dataset("LB", tmp_path / "lb.csv")
    assert dataset.warnings == [
        "lb.csv column LBSTRESN: 10,000 values are not a number (first at record 2: '<5'); "
        "kept as text, the number is unknown",
        "lb.csv column LBDTC: 6,667 values are not a valid ISO 8601 date (first at record 1: "
        "'2024-02-31' is not a real date (day is out of range for month)); kept as text, the "
        "date is unknown",
    ]
    # Independent check: the values are kept as given, the readable ones as numbers.
    raw = pd.read_csv(tmp_path / "lb.csv", dtype=str)
    assert dataset.frame["LBDTC"].tolist() == raw["LBDTC"].tolist()
    kept = dataset.frame["LBSTRESN"]
    assert [v for v in kept if isinstance(v, str)] == [v for v in raw["LBSTRESN"] if v == "<5"]
    assert sum(v for v in kept if isinstance(v, float)) == sum(range(0, n, 2))


def test_pages_show_an_unknown_age_and_dates_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import PROJECT_ROOT

    tables = copy_of_base()
    tables["DM"][0]["AGE"] = "sixty-one"  # an enrolled subject's age unknown
    tables["DM"][2]["RFXSTDTC"] = "2024-03-99"  # first dose unknown
    tables["DM"][0]["RFICDTC"] = "0001-01-01"  # year 1 once overflowed the Subject page's dates
    tables["AE"][0]["AESTDTC"] = "UNKNOWN"
    tables["AE"][1]["AEENDTC"] = "ONGOING"
    tables["VS"][0]["VSDTC"] = "2024-01-2O"  # a letter O
    url, _out = _load(tmp_path, tables)
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params["study"] = "TINY"
    at.run()
    for page in ("overview", "enrollment", "baseline", "adverse_events"):
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
    # Baseline: one enrolled subject has an age, the other's is missing (not zero, not a crash).
    at.switch_page("../pages/baseline.py").run()
    table = next(d.value for d in at.dataframe if "Characteristic" in d.value.columns)
    age = table[table["Characteristic"].astype(str).str.startswith("Age")]
    assert not age.empty
    shown = " ".join(age.astype(str).to_numpy().ravel())
    assert "55" in shown and "61" not in shown
    for usubjid in ("TINY-01-001", "TINY-02-003"):
        at.query_params["subject"] = usubjid
        at.switch_page("../pages/subject.py").run()
        assert not at.exception, (usubjid, at.exception)


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
    assert "No AE domain in data cut 1 of 1: adverse events are unknown, not zero." in [
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


# -- values (#17): dates, keys, numbers ------------------------------------------------------


@pytest.mark.parametrize(
    ("study_id", "message"),
    [
        (" ", "--study-id"),  # the message shows what reached the importer: ' ' or ''
        ("\t", "--study-id"),
        ("NCT123", "--study-id 'NCT123' looks like a ClinicalTrials.gov id but is not NCT"),
        ("nct0646685", "--study-id 'nct0646685' looks like a ClinicalTrials.gov id"),
    ],
)
def test_a_blank_or_malformed_study_id_changes_nothing(
    study_id: str, message: str, tmp_path: Path, loaded_db: str
) -> None:
    engine = make_engine(loaded_db)
    before = study_tables(engine)
    code, out, err = _import(write_package(tmp_path / "named"), loaded_db, "--study-id", study_id)
    assert code == 2, (out, err)
    assert err.startswith(f"error: {message}") and "nothing was written" in err, err
    assert "is blank" in err or "looks like a ClinicalTrials.gov id" in err, err
    after = study_tables(engine)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_an_nct_study_id_of_eight_digits_is_taken(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "nct")
    code, _out, err = _import(write_package(tmp_path / "nct"), url, "--study-id", " NCT06466851 ")
    assert code == 0, err
    assert read_sql("SELECT study_id FROM study", make_engine(url))["study_id"].tolist() == [
        "NCT06466851"
    ]


def test_study_tables_are_every_table_but_the_audit_trail() -> None:
    from sqlmodel import SQLModel

    import dashboard.models  # noqa: F401

    assert set(STUDY_TABLES) == set(SQLModel.metadata.tables) - {"auditevent"}
    assert {"subject", "adverseevent", "plannedvisit", "baselinecount", "app_user"} <= set(
        STUDY_TABLES
    )


def test_a_birth_year_is_not_said_to_be_cut(tmp_path: Path) -> None:
    tables = copy_of_base()
    for row, birth in zip(tables["DM"], ("1960", "", "1971"), strict=True):
        row["BRTHDTC"] = birth
    url, out = _load(tmp_path, tables)
    assert "BRTHDTC" not in out
    years = read_sql("SELECT birth_year FROM subject ORDER BY usubjid", make_engine(url))
    assert [None if pd.isna(v) else v for v in years["birth_year"]] == [1960, None, 1971]
    tables["DM"][1]["BRTHDTC"] = "1955-07"
    _url, out = _load(tmp_path / "month", tables)
    assert "warning: dm.csv: BRTHDTC cut to the year of birth" in out


def test_pilot_dm_with_age_inf_loads_with_the_age_unknown(tmp_path: Path) -> None:
    folder = _pilot("DM", _frame_set(2, "AGE", float("inf")))(tmp_path / "pilot")
    url = new_database_url(tmp_path, "pilot")
    code, out, err = _import(folder, url)
    assert code == 0, err
    assert (
        "warning: dm.xpt column AGE: 1 value is not a finite number (first at record 2: "
        "inf); the number is unknown"
    ) in out
    ages = read_sql("SELECT usubjid, age FROM subject ORDER BY id", make_engine(url))
    assert pd.isna(ages["age"].iloc[1]) and ages["age"].iloc[0] == 63  # the pilot's first age


def test_the_pack_draws_a_study_spanning_two_centuries(tmp_path: Path) -> None:
    """The accrual chart once took a row per month from the first screening to the cut-off: from
    1900 to 2120 that is over altair's 5,000 rows, and the pack stopped (exit 1, MaxRowsError)."""
    tables = copy_of_base()
    tables["DM"][1]["RFICDTC"] = "1900-01-10"
    tables["TS"][-1]["TSVAL"] = "2120-06-30"  # DCUTDTC
    url, _out = _load(tmp_path, tables)
    result = runner.invoke(
        app, ["report", "--study", "TINY", "--out", str(tmp_path / "pack"), "--db", url]
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "pack" / "TINY-pack-1.pdf").stat().st_size > 0


# -- registry (#17): TS, ages, enrollment, AE rules --
# Unknown blinding counts as blinded (DESIGN.md security model); TS ages written out are read with
# a warning; AE records repeated but for their sequence are loaded with one warning; the sponsor's
# AETRTEM is the treatment-emergent rule where most records hold it. AE figures are checked
# against counts made with pandas from the files written.

PILOT_DOMAINS = ("dm", "ae", "ds", "ex", "ta", "ts")


def _study_row(url: str) -> pd.Series:
    engine = make_engine(url)
    row = read_sql("SELECT is_blinded, masking, min_age, max_age FROM study", engine).iloc[0]
    engine.dispose()
    return row


def test_a_package_without_ts_counts_as_blinded(tmp_path: Path) -> None:
    tables = copy_of_base()
    del tables["TS"]
    url, out = _load(tmp_path, tables)
    expected = "no TS domain: blinding unknown, treated as blinded"
    assert f"warning: {expected}" in out
    assert any(w.startswith(expected) for w in _warnings(url))
    assert _study_row(url)["is_blinded"] is None  # unknown, not open label


@pytest.mark.parametrize(
    ("parameter", "value", "blinded"),
    [(None, None, None), ("TBLIND", "OPEN LABEL", False), ("TBLIND", "DOUBLE BLIND", True)],
)
def test_ts_without_a_blinding_parameter_counts_as_blinded(
    tmp_path: Path, parameter: str | None, value: str | None, blinded: bool | None
) -> None:
    tables = copy_of_base()
    if parameter:
        tables["TS"].append({"STUDYID": "TINY", "TSPARMCD": parameter, "TSVAL": value})
    url, out = _load(tmp_path, tables)
    warned = "ts.csv: no TBLIND parameter: blinding unknown, treated as blinded" in out
    assert warned == (parameter is None)
    study = _study_row(url)
    assert (None if pd.isna(study["is_blinded"]) else bool(study["is_blinded"])) == blinded


@pytest.mark.parametrize(
    ("agemin", "years", "warning"),
    [
        ("P50Y", 50, None),
        ("50 years", 50, "TS AGEMIN '50 years' is not an ISO 8601 duration (P50Y) but was read"),
        ("50 Years", 50, "TS AGEMIN '50 Years' is not an ISO 8601 duration (P50Y) but was read"),
        ("50", 50, "TS AGEMIN '50' is not an ISO 8601 duration (P50Y) but was read: 50 years"),
        ("18 months", 1.5, "TS AGEMIN '18 months' is not an ISO 8601 duration (P18M)"),
        ("fifty", None, "TS AGEMIN 'fifty' is not an ISO 8601 duration: no min age"),
    ],
)
def test_ts_ages_written_out_are_read_with_a_warning(
    tmp_path: Path, agemin: str, years: float | None, warning: str | None
) -> None:
    tables = copy_of_base()
    tables["TS"][3]["TSVAL"] = agemin  # AGEMIN
    url, out = _load(tmp_path, tables)
    study = _study_row(url)
    assert (None if pd.isna(study["min_age"]) else study["min_age"]) == years
    age_warnings = [w for w in _warnings(url) if w.startswith("TS AGEMIN")]
    if warning is None:
        assert age_warnings == []
    else:
        assert len(age_warnings) == 1 and age_warnings[0].startswith(warning), age_warnings
        assert f"warning: {warning}" in out


def test_the_overview_shows_ts_agemin_alone_as_a_lower_limit(tmp_path: Path) -> None:
    from sqlmodel import Session

    from dashboard.views.context import ViewContext
    from dashboard.views.overview import build_overview

    url, _out = _load(tmp_path)  # TS: AGEMIN P18Y, no AGEMAX; PLANSUB 10 (planned: a target)
    engine = make_engine(url)
    with Session(engine) as session:
        identity = dict(build_overview(session, ViewContext(study_id="TINY")).identity)
    engine.dispose()
    assert identity["Ages"] == "18 years or older"
    assert identity["Target enrollment"] == "10"


def _pilot_package(folder: Path, change: Callable[[dict[str, pd.DataFrame]], None]) -> Path:
    """Part of the CDISC pilot (``PILOT_DOMAINS``) as CSV in ``folder``, after ``change``."""
    import pyreadstat

    from tests.conftest import SHARED_DATA

    source = SHARED_DATA / "sdtm" / "cdiscpilot01"
    if not source.is_dir():
        pytest.skip(f"reference data folder {source} is absent")
    frames = {
        name: pyreadstat.read_xport(str(source / f"{name}.xpt"), encoding="cp1252")[0]
        for name in PILOT_DOMAINS
    }
    change(frames)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _load_pilot(
    tmp_path: Path, change: Callable[[dict[str, pd.DataFrame]], None]
) -> tuple[str, str, dict[str, pd.DataFrame]]:
    written: dict[str, pd.DataFrame] = {}

    def keep(frames: dict[str, pd.DataFrame]) -> None:
        change(frames)
        written.update(frames)

    url = new_database_url(tmp_path, "pilot-part")
    code, out, err = _import(_pilot_package(tmp_path / "pilot", keep), url)
    assert code == 0, err
    return url, out, written


def test_ae_records_identical_but_for_their_sequence_are_loaded_with_one_warning(
    tmp_path: Path,
) -> None:
    def repeat(frames: dict[str, pd.DataFrame]) -> None:
        # 230 records copied with a new AESEQ (the 2013 pilot release holds such repeats).
        ae = frames["ae"]
        copies = ae.iloc[:230].copy()
        copies["AESEQ"] = copies["AESEQ"] + 1000
        frames["ae"] = pd.concat([ae, copies], ignore_index=True)

    url, out, written = _load_pilot(tmp_path, repeat)
    ae = written["ae"]
    first = ae.iloc[961]
    expected = (
        f"ae.csv: 230 records identical to an earlier one but for their sequence (records "
        f"962, 963, 964, 965, 966 ...; first: {first['USUBJID']} AESEQ {int(first['AESEQ'])}"
    )
    warnings = _warnings(url)
    assert [w for w in warnings if "but for their sequence" in w] == [
        next(w for w in warnings if w.startswith(expected))
    ]
    assert expected in out
    loaded = read_sql("SELECT count(*) AS n FROM adverseevent", make_engine(url)).iloc[0]["n"]
    assert loaded == len(ae) == 961 + 230  # still loaded: they may be real repeated events


def _emergent_view(url: str, study_id: str, *, emergent: bool) -> object:
    from sqlmodel import Session

    from dashboard.views.adverse_events import AdverseEventsOptions, build_adverse_events
    from dashboard.views.context import ViewContext

    engine = make_engine(url)
    with Session(engine) as session:
        view = build_adverse_events(
            session,
            ViewContext(study_id=study_id),
            AdverseEventsOptions(treatment_emergent=emergent),
        )
    engine.dispose()
    return view


def test_the_sponsors_aetrtem_is_the_treatment_emergent_rule(tmp_path: Path) -> None:
    from dashboard.results.adverse_events import EMERGENT_DERIVED, EMERGENT_FLAGGED

    def flag(frames: dict[str, pd.DataFrame]) -> None:
        # The sponsor's flag: events during treatment. Not the derived rule: the pilot's AEs
        # before the first dose but in the TREATMENT epoch (or after it, in follow-up) differ.
        ae = frames["ae"]
        ae["AETRTEM"] = (ae["EPOCH"].str.upper() == "TREATMENT").map({True: "Y", False: "N"})
        ae.loc[ae.index[:5], "AETRTEM"] = ""  # a few without the flag: derived

    url, out, written = _load_pilot(tmp_path, flag)
    ae = written["ae"]
    assert "ae.csv: treatment-emergent as flagged by the sponsor (AETRTEM) for 956 of 961" in out

    # Independent count: flagged Y, plus the five unflagged ones that start on or after the
    # subject's first dose (RFXSTDTC; all five have full dates).
    dm = written["dm"].set_index("USUBJID")
    unflagged = ae[ae["AETRTEM"] == ""]
    dose = unflagged["USUBJID"].map(dm["RFXSTDTC"]).str[:10]
    assert (unflagged["AESTDTC"].str.len() >= 10).all() and (dose.str.len() == 10).all()
    emergent = pd.concat(
        [ae[ae["AETRTEM"] == "Y"], unflagged[unflagged["AESTDTC"].str[:10] >= dose]]
    )
    view = _emergent_view(url, "CDISCPILOT01", emergent=True)
    headline = view.headline  # type: ignore[attr-defined]
    assert (headline.events, headline.subjects) == (len(emergent), emergent["USUBJID"].nunique())
    note = view.counting_note  # type: ignore[attr-defined]
    assert EMERGENT_FLAGGED in note and f"without the flag {EMERGENT_DERIVED}" in note
    assert view.population.tells_emergent  # type: ignore[attr-defined]

    # The listing and the timeline read the same flag.
    from dashboard.metrics.ae_rules import is_treatment_emergent

    assert is_treatment_emergent(None, None, None, None, "Y")  # flagged, though never dosed
    assert not is_treatment_emergent("2014-01-02", None, "2014-01-01", None, "N")


def test_without_aetrtem_the_rule_is_derived_and_said_so(tmp_path: Path) -> None:
    from dashboard.results.adverse_events import EMERGENT_DERIVED, EMERGENT_FLAGGED

    url, out, _written = _load_pilot(tmp_path, lambda frames: None)
    assert "AETRTEM" not in out
    note = _emergent_view(url, "CDISCPILOT01", emergent=True).counting_note  # type: ignore[attr-defined]
    assert (
        note == f"Treatment-emergent AEs only: {EMERGENT_DERIVED}." and EMERGENT_FLAGGED not in note
    )


def test_aetrtem_in_few_records_is_not_used(tmp_path: Path) -> None:
    def few(frames: dict[str, pd.DataFrame]) -> None:
        ae = frames["ae"]
        ae["AETRTEM"] = ""
        ae.loc[ae.index[:100], "AETRTEM"] = "Y"

    url, out, _written = _load_pilot(tmp_path, few)
    assert "ae.csv: AETRTEM holds Y or N in only 100 of 961 records: not used" in out
    flagged = read_sql(
        "SELECT count(*) AS n FROM adverseevent WHERE treatment_emergent IS NOT NULL",
        make_engine(url),
    ).iloc[0]["n"]
    assert flagged == 0
