"""The Import page's EDC export section (#23): a REDCap, ODM or spreadsheet export with its mapping
file, previewed without writing anything, then imported all or nothing like an SDTM package."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.demo_redcap import export_seed_redcap
from dashboard.markdown import shown
from tests.conftest import PROJECT_ROOT, open_study_page
from tests.databases import STUDY_TABLES, read_sql, study_tables

SHIPPED = PROJECT_ROOT / "dashboard" / "studies" / "NCT06466850-redcap"
# The files each format uploads (uploader key -> file of the export), the mapping besides.
FORMATS = {
    "redcap": {"edc_redcap_records": "records.csv", "edc_redcap_dictionary": "dictionary.csv"},
    "odm": {"edc_odm_odm": "project.xml"},
    "table": {"edc_table_table": "records.xlsx"},
}


@pytest.fixture(scope="module")
def export(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed demo as a REDCap project exports it: the shipped folder, else written afresh."""
    if (SHIPPED / "mapping.toml").is_file():
        return SHIPPED
    with Session(demo_engine) as session:
        return export_seed_redcap(session, tmp_path_factory.mktemp("redcap") / "export")


def _page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    # An empty database: the Import page is how a first study gets in (no ?study= to open).
    return open_study_page(url, "", "data_import.py", monkeypatch, timeout=60)


def _upload(
    at: AppTest, folder: Path, kind: str = "redcap", *, mapping: bytes | None = None
) -> AppTest:
    """Choose the format and upload its files and the mapping (``mapping``: other text for it)."""
    at.radio(key="edc_format").set_value(kind).run()
    for key, name in FORMATS[kind].items():
        at.file_uploader(key=key).set_value(
            (name, (folder / name).read_bytes(), "application/octet-stream")
        )
    text = (folder / "mapping.toml").read_bytes() if mapping is None else mapping
    at.file_uploader(key="edc_mapping").set_value(("mapping.toml", text, "application/toml"))
    return at.run()


def _shown(at: AppTest) -> str:
    """The page's text as it reads on screen (plain()'s escapes removed)."""
    return " ".join(shown(m.value) for m in at.markdown)


def test_the_preview_shows_the_mappings_effect_and_writes_nothing(
    export: Path, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = study_tables(make_engine(empty_db_url))
    at = _upload(_page(empty_db_url, monkeypatch), export)
    at.button(key="edc_preview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert "36 subjects in 172 records" in _shown(at)
    used = at.dataframe[0].value
    assert list(used.columns) == ["Field", "Becomes"]
    assert "ae_term" in used["Field"].tolist()
    decoded = at.dataframe[1].value
    assert list(decoded.columns) == ["Field", "Code", "Label"]
    assert ("sex", "1", "Female") in set(decoded.itertuples(index=False, name=None))
    # The identifying fields are named, and nothing else of them (their values are never read).
    (warning,) = at.warning
    assert shown(warning.value) == "Identifying fields, never read: dob, initials"
    assert not at.success
    after = study_tables(make_engine(empty_db_url))
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
        assert after[table].empty, table
    audit = read_sql("SELECT * FROM auditevent", make_engine(empty_db_url))
    assert audit.empty


@pytest.mark.parametrize("kind", ["odm", "table"])
def test_the_other_formats_ask_for_their_own_file(
    kind: str, export: Path, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _upload(_page(empty_db_url, monkeypatch), export, kind)
    # One uploader for the export's file, one for the mapping: the REDCap ones are gone.
    assert sorted(u.key for u in at.file_uploader if u.key and u.key.startswith("edc_")) == sorted(
        [*FORMATS[kind], "edc_mapping"]
    )
    at.button(key="edc_preview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "36 subjects in " in _shown(at)
    assert "ae_term" in at.dataframe[0].value["Field"].tolist()


def test_the_import_loads_the_study_as_a_data_cut(
    export: Path, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _upload(_page(empty_db_url, monkeypatch), export)
    at.button(key="edc_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("study NCT06466850: data cut 1 loaded")
    subjects = read_sql(
        "SELECT COUNT(*) AS n FROM subject WHERE study_id = 'NCT06466850'",
        make_engine(empty_db_url),
    )
    assert subjects["n"].tolist() == [36]
    # The page opened the study it loaded: its data cut is listed.
    assert at.dataframe[0].value["Cut"].tolist() == [1]


@pytest.mark.parametrize("button", ["edc_preview", "edc_import"])
def test_a_mapping_naming_a_missing_field_is_a_plain_message(
    button: str, export: Path, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (export / "mapping.toml").read_text(encoding="utf-8")
    assert 'term = "ae_term"' in text
    broken = text.replace('term = "ae_term"', 'term = "ae_termx"').encode()
    before = study_tables(make_engine(empty_db_url))
    at = _upload(_page(empty_db_url, monkeypatch), export, mapping=broken)
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (error,) = at.error
    message = shown(error.value)
    assert "field 'ae_termx', which is not in the project" in message
    assert "Traceback" not in message
    if button == "edc_import":
        assert message.endswith("Nothing was written.")
    assert not at.success
    assert not at.dataframe  # no preview table, no data cut
    after = study_tables(make_engine(empty_db_url))
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_without_a_mapping_file_the_page_says_so(
    export: Path, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _upload(_page(empty_db_url, monkeypatch), export)
    at.file_uploader(key="edc_mapping").set_value(None).run()
    at.button(key="edc_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "No mapping file was uploaded: add the .toml that says which field is which. "
        "Nothing was written."
    ]
