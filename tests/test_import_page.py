"""The Import page's error path: a broken upload shows the importer's plain message and changes no
study data (the same all-or-nothing import as the command line)."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.importers import run
from dashboard.importers.run import import_sdtm
from tests.conftest import PROJECT_ROOT
from tests.databases import STUDY_TABLES, new_database_url, read_sql, study_tables
from tests.sdtm_builders import copy_of_base, write_package


def _tables_of(url: str) -> dict[str, pd.DataFrame]:
    return study_tables(make_engine(url))


def _upload(url: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params["study"] = "TINY"
    at.run()
    at.switch_page("../pages/data_import.py").run()
    assert not at.exception
    at.file_uploader[0].set_value(
        [(p.name, p.read_bytes(), "application/octet-stream") for p in sorted(folder.iterdir())]
    )
    (button,) = [b for b in at.button if b.label == "Import package"]
    button.click().run()
    assert not at.exception
    return at


@pytest.fixture
def loaded(tmp_path: Path) -> str:
    """A database holding the base package as study TINY (one data cut)."""
    url = new_database_url(tmp_path, "page")
    import_sdtm(make_engine(url), write_package(tmp_path / "base"))
    return url


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "subject not in DM",
            "ae.csv, record 2, column USUBJID: subject NOBODY is not in DM. Nothing was written.",
        ),
        (
            "text in a key",
            "ae.csv, record 1, column AESEQ: 'one' is not a number, and AESEQ is a key of AE. "
            "Nothing was written.",
        ),
    ],
)
def test_a_broken_upload_shows_the_message_and_changes_nothing(
    case: str, message: str, loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = copy_of_base()
    tables["DM"][0]["AGE"] = 99  # a change that must not reach the database
    if case == "subject not in DM":
        tables["AE"][1]["USUBJID"] = "NOBODY"
    else:
        tables["AE"][0]["AESEQ"] = "one"
    folder = write_package(tmp_path / "broken", tables)
    before = _tables_of(loaded)
    at = _upload(loaded, folder, monkeypatch)
    assert [e.value for e in at.error] == [message]
    assert not at.success
    after = _tables_of(loaded)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
    # The page still lists the one data cut there is.
    assert at.dataframe[0].value["Cut"].tolist() == [1]


def test_a_valid_upload_with_odd_values_shows_its_warnings(
    loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = copy_of_base()
    tables["AE"][1]["AEENDTC"] = "ONGOING"
    at = _upload(loaded, write_package(tmp_path / "odd", tables), monkeypatch)
    assert not at.error
    assert at.success[0].value.startswith("study TINY: data cut 2 loaded")
    shown = " ".join(m.value for m in at.markdown)
    assert "ae.csv column AEENDTC: 1 value is not a valid ISO 8601 date" in shown
    cuts = read_sql("SELECT id FROM datacut ORDER BY id", make_engine(loaded))
    assert cuts["id"].tolist() == [1, 2]


def _upload_files(
    url: str, files: list[tuple[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params["study"] = "TINY"
    at.run()
    at.switch_page("../pages/data_import.py").run()
    at.file_uploader[0].set_value([(n, c, "application/octet-stream") for n, c in files])
    (button,) = [b for b in at.button if b.label == "Import package"]
    button.click().run()
    assert not at.exception
    return at


@pytest.mark.parametrize("name", ["..", ".", "/", "", "ae.txt"])
def test_an_upload_without_a_file_name_is_refused_plainly(
    name: str, loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_package(tmp_path / "named")
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    files[0] = (name, files[0][1])
    before = _tables_of(loaded)
    at = _upload_files(loaded, files, monkeypatch)
    assert [e.value for e in at.error] == [
        "ae.txt: is not a dataset file: upload SAS transport (.xpt), CSV (.csv) or Dataset-JSON "
        "(.json) files. Nothing was written."
        if name == "ae.txt"
        else f"an uploaded file is named {name!r}, which is not a file name: name each file "
        "after its dataset (dm.xpt, ae.csv, ...). Nothing was written."
    ]
    after = _tables_of(loaded)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        (
            OperationalError("INSERT INTO subject ...", {}, Exception("disk I/O error")),
            "the database refused the import (OperationalError: disk I/O error). "
            "Nothing was written.",
        ),
        (
            OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked")),
            "the database is busy (an import is being written); try again in a minute. "
            "Nothing was written.",
        ),
        (
            SQLAlchemyError("the connection was closed"),
            "the database refused the import (SQLAlchemyError: the connection was closed). "
            "Nothing was written.",
        ),
        (
            PermissionError(13, "Permission denied"),
            "the uploaded files could not be stored or read (Permission denied). "
            "Nothing was written.",
        ),
    ],
)
def test_a_database_refusal_shows_a_plain_message(
    refusal: Exception,
    message: str,
    loaded: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise refusal

    # Where the importer's own wrapping of database errors does not reach (the page's call).
    monkeypatch.setattr(run, "import_sdtm_files", refused)
    at = _upload(loaded, write_package(tmp_path / "refused"), monkeypatch)
    assert [e.value for e in at.error] == [message]
    assert not at.success


def test_a_database_refusal_inside_the_import_is_the_importers_message(
    loaded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO datacut ...", {}, Exception("disk I/O error"))

    monkeypatch.setattr(run, "store_package", refused)
    before = _tables_of(loaded)
    at = _upload(loaded, write_package(tmp_path / "refused"), monkeypatch)
    assert [e.value for e in at.error] == [
        "the database refused the import: disk I/O error. Nothing was written."
    ]
    after = _tables_of(loaded)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
