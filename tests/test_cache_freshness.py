"""The app shows what an import without a data cut changed at once: a registry record or a site
table loaded from the command line while the app runs. A data cut changes the cut id in every cache
key; these do not, so the shell clears the caches when the study's latest import changes
(``loaders.forget_if_imported``)."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.demo import SEED_STUDY_ID
from dashboard.importers.run import import_ctgov_path
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database

RECORD = PROJECT_ROOT / "dashboard" / "studies" / "NCT06466850.json"


def _title(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.query_params["study"] = SEED_STUDY_ID
    at.run()
    assert not at.exception
    return str(at.title[0].value)


def test_a_registry_record_loaded_while_the_app_runs_shows_at_once(
    demo_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_database(demo_db_url, tmp_path, "fresh")
    before = _title(monkeypatch, url)
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    identification = record["protocolSection"]["identificationModule"]
    assert identification["briefTitle"] in before
    identification["briefTitle"] = "Exosomes for knee osteoarthritis, retitled"
    changed = tmp_path / "NCT06466850.json"
    changed.write_text(json.dumps(record), encoding="utf-8")
    engine = make_engine(url)
    try:
        import_ctgov_path(engine, changed, study_id=SEED_STUDY_ID)  # as `import ctgov` does
    finally:
        engine.dispose()
    # The same process, the same cached study: the title is the new one, not the cached one.
    assert "Exosomes for knee osteoarthritis, retitled" in _title(monkeypatch, url)
