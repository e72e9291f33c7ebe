"""The Baseline page through AppTest: which tests it offers for one arm, several arms and the
screened population; the column sizes of each population against pandas counts of the raw rows;
the CSV and Excel downloads against the table on screen."""

import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from streamlit.elements.widgets.button import ButtonMixin
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.metrics.table_one import CHARACTERISTIC, P_VALUE, STATISTIC, TEST
from dashboard.models import Exposure, Subject
from dashboard.precomputed import rebuild_baseline_counts
from tests.conftest import PROJECT_ROOT, open_study_page
from tests.databases import copy_database

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
MULTI = "DEMO-MULTI"
# DEMO-MULTI's demo doses every enrolled subject: the copy below takes the first dose away from
# this many subjects of each arm (in arm name order), so "treated" differs from "enrolled".
UNTREATED_PER_ARM = (2, 5, 9)


@pytest.fixture(scope="module")
def untreated_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the demo database (downloads write audit events) where some DEMO-MULTI subjects
    were enrolled but never dosed: no first dose date, no exposure record; the load-time
    summary rebuilt as a load would."""
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("baseline-page"), "baseline-page")
    engine = make_engine(url)
    with Session(engine) as session:
        enrolled = session.exec(
            select(Subject)
            .where(col(Subject.study_id) == MULTI, col(Subject.arm_code).is_not(None))
            .order_by(col(Subject.usubjid))
        ).all()
        arms = sorted({str(s.arm) for s in enrolled})
        untreated = [
            s.id
            for arm, k in zip(arms, UNTREATED_PER_ARM, strict=True)
            for s in [s for s in enrolled if s.arm == arm][:k]
        ]
        session.execute(
            update(Subject)
            .where(col(Subject.id).in_(untreated))
            .values(first_dose_date=None, first_dose_dtc=None)
        )
        session.execute(delete(Exposure).where(col(Exposure.subject_pk).in_(untreated)))
        rebuild_baseline_counts(session, MULTI)
        session.commit()
    engine.dispose()
    return url


@pytest.fixture
def engine(untreated_db_url: str) -> Iterator[Engine]:
    engine = make_engine(untreated_db_url)
    yield engine
    engine.dispose()


def open_baseline(url: str, study: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study, "baseline.py", monkeypatch, timeout=90)


def checkbox_keys(at: AppTest) -> set[str]:
    return {str(c.key) for c in at.checkbox}


def test_single_arm_study_offers_tests_only_against_screen_failures(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subjects = pd.read_sql_query(
        "SELECT id, arm, arm_code, arm_not_assigned_reason FROM subject "
        "WHERE study_id = 'NCT06466850'",
        demo_engine,
    )
    failed_by_ds = pd.read_sql_query(
        "SELECT DISTINCT subject_pk FROM disposition WHERE term = 'SCREEN FAILURE'", demo_engine
    )["subject_pk"]
    no_arm = subjects["arm_code"].fillna("").str.strip() == ""
    failures = int(
        (
            no_arm
            & (
                (subjects["arm_not_assigned_reason"].fillna("").str.upper() == "SCREEN FAILURE")
                | subjects["id"].isin(failed_by_ds)
            )
        ).sum()
    )
    assert failures == 16  # shared/data and the seed: 36 screened, 20 enrolled
    arms = subjects.loc[~no_arm, "arm"].value_counts()
    assert len(arms) == 1
    (arm, n), *_ = arms.items()

    at = open_baseline(demo_db_url, "NCT06466850", monkeypatch)
    table = at.dataframe[0].value
    # One arm, enrolled: one column, its own overall (no identical Overall column), no tests and
    # no checkbox for them.
    assert list(table.columns) == [CHARACTERISTIC, STATISTIC, f"{arm} (n={n})"]
    assert not {"baseline_smd_arm", "baseline_p"} & checkbox_keys(at)

    at.selectbox(key="baseline_pop").set_value("screened").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == [
        CHARACTERISTIC,
        STATISTIC,
        f"{arm} (n={n})",
        f"Screen failure (n={failures})",
        f"Overall (n={n + failures})",
    ]
    # Arm against screen failures: the tests are offered, off by default, and the page says what
    # they compare.
    assert {"baseline_smd_arm", "baseline_p"} <= checkbox_keys(at)
    assert not at.checkbox(key="baseline_smd_arm").value
    assert not at.checkbox(key="baseline_p").value
    notes = " ".join(c.value for c in at.caption)
    assert "Screen failure column is compared too" in notes and "not a difference" in notes
    at.checkbox(key="baseline_smd_arm").check().run()
    at.checkbox(key="baseline_p").check().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns[5:]) == [f"SMD ({arm}, Screen failure)", P_VALUE, TEST]
    age = table[table[CHARACTERISTIC] == "Age (years)"].iloc[0]
    assert age[TEST] == "Welch's t-test" and age[P_VALUE] != ""


def test_several_arms_show_smds_by_default_and_p_values_on_request(
    untreated_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    arms = sorted(
        pd.read_sql_query(
            f"SELECT DISTINCT arm FROM subject WHERE study_id = '{MULTI}' AND arm IS NOT NULL",
            engine,
        )["arm"]
    )
    at = open_baseline(untreated_db_url, MULTI, monkeypatch)
    table = at.dataframe[0].value
    pairs = [(a, b) for i, a in enumerate(arms) for b in arms[i + 1 :]]
    assert [c for c in table.columns if c.startswith("SMD")] == [
        f"SMD ({a}, {b})" for a, b in pairs
    ]
    assert at.checkbox(key="baseline_smd_arm").value
    assert P_VALUE not in table.columns and TEST not in table.columns
    at.checkbox(key="baseline_p").check().run()
    table = at.dataframe[0].value
    firsts = table[table[CHARACTERISTIC] != ""]
    assert list(table.columns[-2:]) == [P_VALUE, TEST]
    assert (firsts[TEST] != "").all() and (firsts[P_VALUE] != "").all()
    assert not table[P_VALUE].str.fullmatch(r"0\.0+").any()  # never "0.000": "<0.001"
    at.checkbox(key="baseline_smd_arm").uncheck().run()
    assert not any(c.startswith("SMD") for c in at.dataframe[0].value.columns)


def test_treated_columns_count_the_dosed_subjects(
    untreated_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subjects = pd.read_sql_query(
        f"SELECT id, arm, arm_code, first_dose_date FROM subject WHERE study_id = '{MULTI}'",
        engine,
    )
    exposed = pd.read_sql_query("SELECT DISTINCT subject_pk FROM exposure", engine)["subject_pk"]
    enrolled = subjects[subjects["arm_code"].fillna("").str.strip() != ""]
    # Treated: enrolled with a first dose (RFXSTDTC) or an exposure record.
    treated = enrolled[enrolled["first_dose_date"].notna() | enrolled["id"].isin(exposed)]
    expected = treated["arm"].value_counts().sort_index()
    assert (expected != enrolled["arm"].value_counts().sort_index()).all()  # the test can tell

    at = open_baseline(untreated_db_url, MULTI, monkeypatch)
    at.selectbox(key="baseline_pop").set_value("treated").run()
    assert not at.exception
    columns = list(at.dataframe[0].value.columns)
    assert columns[2 : 2 + len(expected) + 1] == [
        *(f"{arm} (n={n})" for arm, n in expected.items()),
        f"Overall (n={expected.sum()})",
    ]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every download button's data of the runs, by file name (the last run's wins)."""
    recorded: dict[str, Any] = {}
    real = ButtonMixin.download_button

    def download_button(self: Any, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        recorded[str(kwargs.get("file_name", args[0] if args else ""))] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", download_button)
    return recorded


def test_downloads_are_the_table_on_screen(
    untreated_db_url: str, monkeypatch: pytest.MonkeyPatch, downloads: dict[str, Any]
) -> None:
    at = open_baseline(untreated_db_url, MULTI, monkeypatch)
    at.checkbox(key="baseline_p").check().run()
    at.checkbox(key="baseline_range").check().run()
    assert not at.exception
    shown = at.dataframe[0].value.reset_index(drop=True)
    assert list(shown.columns[:2]) == ["Characteristic", "Statistic"]
    assert {P_VALUE, TEST} <= set(shown.columns) and "Min, max" in set(shown[STATISTIC])
    screen = shown.astype(object).where(shown.notna(), "").astype(str)
    # The headers a reader sees: the frame's, unless the column config relabels them.
    config = json.loads(at.dataframe[0].proto.columns or "{}")
    labels = {name: (config.get(name) or {}).get("label") or name for name in shown.columns}
    screen.columns = [labels[name] for name in shown.columns]

    csv = downloads[f"{MULTI}-table1.csv"]
    csv = csv() if callable(csv) else csv
    from_csv = pd.read_csv(
        io.BytesIO(csv.encode() if isinstance(csv, str) else csv),
        dtype=str,
        keep_default_na=False,
    )
    pd.testing.assert_frame_equal(from_csv.astype(object), screen.astype(object))

    excel = downloads[f"{MULTI}-table1.xlsx"]
    excel = excel() if callable(excel) else excel
    book = load_workbook(io.BytesIO(excel), read_only=True)
    assert book.sheetnames == ["Table 1"]
    rows = [
        ["" if v is None else str(v) for v in row]
        for row in book["Table 1"].iter_rows(values_only=True)
    ]
    assert rows[0] == list(screen.columns)
    assert rows[1:] == screen.to_numpy().tolist()
