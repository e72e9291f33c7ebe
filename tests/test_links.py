"""Subject codes in the Adverse events and Baseline listings link to the Subject page."""

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from tests.test_pages import open_page


def test_sae_listing_links_every_code(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "adverse-events", "DEMO-MULTI")
    assert not at.exception
    listing = next(d.value for d in at.dataframe if "AESER" in d.value.columns)
    serious = pd.read_sql_query(
        "SELECT s.usubjid FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        "WHERE s.study_id = 'DEMO-MULTI' AND a.serious = 'Y'",
        demo_engine,
    )
    expected = {f"subject?study=DEMO-MULTI&subject={u}" for u in serious["usubjid"]}
    assert set(listing["USUBJID"]) == expected


def test_baseline_segment_list_links_its_subjects(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "baseline", "DEMO-MULTI")
    at.selectbox(key="baseline_shown").set_value("SEX").run()
    arm = sorted(at.dataframe[0].value.columns[2:-1])[0].split(" (n=")[0]
    at.session_state["baseline_distribution"] = {
        "selection": {"level": [{"column": arm, "value": "F"}]}
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    listed = next(d.value for d in at.dataframe if "value" in d.value.columns)
    assert len(listed) > 0
    assert all(u.startswith("subject?study=DEMO-MULTI&subject=") for u in listed["usubjid"])
    assert set(listed["value"]) == {"F"}
