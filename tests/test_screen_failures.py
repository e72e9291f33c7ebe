"""Screen failures: counts, drilldown, co-occurrence, time and site views, and the eligibility
checks, against independent pandas counts; the page through AppTest."""

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import streamlit as st
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from streamlit.testing.v1 import AppTest

from dashboard.charts.screen_failures import (
    SELECTION,
    criteria_chart,
    monthly_rate_chart,
    site_criterion_heatmap,
)
from dashboard.db import make_engine, session_scope
from dashboard.metrics.eligibility import (
    RuleError,
    age_rule,
    check_enrolled,
    checked_criteria,
    is_violation,
    parse_rule,
)
from dashboard.metrics.screen_failures import monthly_failure_rate, site_criterion_grid
from dashboard.models import Finding, Subject
from dashboard.queries.enrollment import enrollment_by_site
from dashboard.queries.screen_failures import (
    criteria_with_rules,
    daily_screening,
    eligibility_violations,
    enrolled_screening_values,
    failed_subject_counts,
    failed_subjects,
    failure_cooccurrence,
    failures_by_criterion,
    site_criterion_counts,
)
from dashboard.results.eligibility import CheckedCriterion
from dashboard.ui import selection
from dashboard.ui.selection import chart_pick, resolve, row_pick
from tests.conftest import PROJECT_ROOT, SHARED_DATA, open_study_page
from tests.databases import copy_database

APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def _failures(engine: Engine, study_id: str) -> pd.DataFrame:
    """(subject, criterion) pairs of screen-failed subjects, read with plain SQL."""
    return pd.read_sql_query(
        "SELECT s.id AS subject_pk, s.usubjid, site.site_id, s.screening_date, c.code, "
        "c.protocol_version FROM eligibilityfinding f JOIN subject s ON s.id = f.subject_pk "
        "JOIN criterion c ON c.id = f.criterion_pk LEFT JOIN site ON site.id = s.site_pk "
        f"WHERE s.study_id = '{study_id}' AND s.population = 'SCREEN FAILURE'",
        engine,
    )


@pytest.mark.parametrize("study_id", ["NCT06466850", "DEMO-MULTI"])
def test_counts_and_cooccurrence_match_pandas(
    study_id: str, session: Session, demo_engine: Engine
) -> None:
    pairs = _failures(demo_engine, study_id)
    by_criterion = failures_by_criterion(session, study_id=study_id, scope=None)
    expected = pairs.groupby("code")["subject_pk"].nunique()
    for code, n in zip(by_criterion["code"], by_criterion["subjects"], strict=True):
        assert n == expected.get(code, 0)
    per_subject = pairs.groupby("subject_pk")["code"].nunique()
    assert (
        failed_subject_counts(session, study_id=study_id, scope=None)["more_than_one"]
        == (per_subject > 1).sum()
    )
    # Co-occurrence: every pair of criteria failed by the same subject, counted by pandas.
    together: dict[frozenset[str], set[int]] = {}
    for subject, codes in pairs.groupby("subject_pk")["code"]:
        for a, b in itertools.combinations(sorted(set(codes)), 2):
            together.setdefault(frozenset((a, b)), set()).add(int(str(subject)))
    table = failure_cooccurrence(session, study_id=study_id, scope=None)
    got = {frozenset((a, b)): n for a, b, n in table.itertuples(index=False)}
    assert got == {pair: len(subjects) for pair, subjects in together.items()}
    assert table["subjects"].is_monotonic_decreasing


def test_seed_cooccurrence_is_the_three_double_failures(session: Session) -> None:
    table = failure_cooccurrence(session, study_id="NCT06466850", scope=None)
    assert {frozenset((a, b)) for a, b, _ in table.itertuples(index=False)} == {
        frozenset(("INCL02", "EXCL06")),
        frozenset(("INCL03", "EXCL02")),
        frozenset(("EXCL01", "EXCL05")),
    }


def test_drilldown_lists_who_failed_with_their_values(
    session: Session, demo_engine: Engine
) -> None:
    pairs = _failures(demo_engine, "NCT06466850")
    listed = failed_subjects(
        session, study_id="NCT06466850", scope=None, code="INCL02", value_codes=("BMI", "KLGRADE")
    )
    expected = pairs[pairs["code"] == "INCL02"]
    assert sorted(listed["usubjid"]) == sorted(expected["usubjid"])
    assert len(listed) == 5
    bmi = pd.read_sql_query(
        "SELECT s.usubjid, f.value_num FROM finding f JOIN subject s ON s.id = f.subject_pk "
        "WHERE f.test_code = 'BMI'",
        demo_engine,
    ).set_index("usubjid")["value_num"]
    for row in listed.to_dict("records"):
        assert bmi[row["usubjid"]] == row["BMI"]
        assert not 21.5 <= row["BMI"] <= 29.5  # every one of them is outside the protocol range
    both = listed.set_index("usubjid")["failed_criteria"]
    assert sorted(both.str.count(",").tolist()) == [0, 0, 0, 0, 1]  # one also failed EXCL06
    assert not both.str.contains("(", regex=False).any()  # one protocol version: bare codes
    assert {"KLGRADE LEFT KNEE", "KLGRADE RIGHT KNEE"} <= set(listed.columns)
    by_site = failed_subjects(session, study_id="DEMO-MULTI", scope=("101",), code="INCL03")
    multi = _failures(demo_engine, "DEMO-MULTI")
    assert len(by_site) == len(multi[(multi["code"] == "INCL03") & (multi["site_id"] == "101")])
    nobody = failed_subjects(session, study_id="NCT06466850", scope=None, code="EXCL03")
    assert nobody.empty


def test_monthly_rate_and_site_grid(session: Session, demo_engine: Engine) -> None:
    daily = daily_screening(session, study_id="DEMO-MULTI", scope=None)
    monthly = monthly_failure_rate(daily)
    subjects = pd.read_sql_query(
        "SELECT screening_date, population FROM subject WHERE study_id = 'DEMO-MULTI'", demo_engine
    )
    subjects["month"] = pd.to_datetime(subjects["screening_date"]).dt.to_period("M").dt.start_time
    expected = subjects.groupby("month").agg(
        screened=("population", "size"),
        screen_failures=("population", lambda p: (p == "SCREEN FAILURE").sum()),
    )
    got = monthly.set_index("month").to_dict("index")
    for month, row in expected.to_dict("index").items():
        assert got[month]["screened"] == row["screened"]
        assert got[month]["screen_failure_rate"] == pytest.approx(
            row["screen_failures"] / row["screened"]
        )
    counts = site_criterion_counts(session, study_id="DEMO-MULTI", scope=None)
    sites = enrollment_by_site(session, study_id="DEMO-MULTI", scope=None)
    criteria = failures_by_criterion(session, study_id="DEMO-MULTI", scope=None)
    grid = site_criterion_grid(counts, sites=sites, criteria=criteria)
    failed_criteria = (criteria["subjects"] > 0).sum()
    assert len(grid) == 10 * failed_criteria  # every site x every failed criterion, zeros too
    assert grid["subjects"].sum() == counts["subjects"].sum()
    pairs = _failures(demo_engine, "DEMO-MULTI")
    top = grid.sort_values("subjects").iloc[-1]
    assert (
        top["subjects"]
        == pairs[(pairs["site_id"] == top["site_id"]) & (pairs["code"] == top["criterion"])][
            "subject_pk"
        ].nunique()
    )
    # The demo's site 101 fails INCL03 far more often than the others: the grid shows it.
    incl03 = grid[grid["criterion"] == "INCL03"].set_index("site_id")["share_of_screened"]
    assert incl03.idxmax() == "101"


def test_monthly_rate_fills_empty_months() -> None:
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-01-05", "2025-03-10"]),
            "screened": [4, 2],
            "screen_failures": [1, 2],
        }
    )
    monthly = monthly_failure_rate(daily)
    assert monthly["screened"].tolist() == [4, 0, 2]
    assert monthly["screen_failure_rate"].tolist()[0] == 0.25
    assert pd.isna(monthly["screen_failure_rate"].tolist()[1])
    assert monthly_failure_rate(daily.iloc[0:0]).empty


def test_chart_specs(session: Session) -> None:
    criteria = failures_by_criterion(session, study_id="NCT06466850", scope=None)
    spec = criteria_chart(criteria, screened=36).to_dict()
    assert spec["params"][0]["name"] == SELECTION
    assert spec["params"][0]["select"]["fields"] == ["code", "protocol_version"]
    assert spec["encoding"]["x"]["field"] == "subjects"
    monthly = monthly_rate_chart(
        pd.DataFrame(
            {
                "month": pd.to_datetime(["2025-01-01"]),
                "screened": [3],
                "screen_failures": [1],
                "screen_failure_rate": [1 / 3],
            }
        )
    ).to_dict()
    assert [layer["mark"]["type"] for layer in monthly["layer"]] == ["bar", "line"]
    assert monthly["resolve"]["scale"]["y"] == "independent"
    heat = site_criterion_heatmap(
        pd.DataFrame(
            {
                "site_id": ["101"],
                "criterion": ["INCL03"],
                "subjects": [2],
                "screened": [8],
                "share_of_screened": [0.25],
            }
        )
    ).to_dict()
    assert heat["layer"][0]["encoding"]["color"]["field"] == "share_of_screened"
    assert heat["layer"][1]["encoding"]["text"]["field"] == "subjects"


# -- eligibility rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "holds"),
    [(21.4, False), (21.5, True), (25.0, True), (29.5, True), (29.51, False), (30.1, False)],
)
def test_bmi_rule_boundaries(value: float, holds: bool) -> None:
    rule = parse_rule("BMI between 21.5 and 29.5 kg/m2")
    assert rule.holds(value) is holds
    assert is_violation("INCLUSION", rule, value) is (not holds)


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [
        ("HGB < 10 g/dL", 9.9, True),
        ("HGB < 10 g/dL", 10.0, False),
        ("PAINDUR >= 3 months", 3, True),
        ("PAINDUR >= 3 months", 2.9, False),
        ("KLGRADE between 1 and 3 (each knee)", 4, False),
        ("VASPAIN > 40", 40, False),
        ("AGE <= 75", 75, True),
        ("ECOG = 0", 0, True),
        ("ECOG != 0", 0, False),
    ],
)
def test_rules(text: str, value: float, holds: bool) -> None:
    assert parse_rule(text).holds(value) is holds


def test_exclusion_rules_are_violated_when_met() -> None:
    rule = parse_rule("HGB < 10 g/dL")
    assert is_violation("EXCLUSION", rule, 9.4)
    assert not is_violation("EXCLUSION", rule, 12.0)


@pytest.mark.parametrize(
    "text", ["", "BMI", "BMI between 30 and 20", "__import__('os') < 3", "BMI ~ 3", "3 < BMI"]
)
def test_unreadable_rules(text: str) -> None:
    with pytest.raises(RuleError):
        parse_rule(text)


def test_age_rule_and_checked_criteria() -> None:
    assert age_rule(45, 75) is not None and age_rule(45, 75).holds(75)  # type: ignore[union-attr]
    assert age_rule(None, None) is None
    assert age_rule(50, None).text == "AGE >= 50"  # type: ignore[union-attr]
    rules = pd.DataFrame(
        {
            "code": ["INCL02", "X"],
            "protocol_version": ["", "V2"],
            "category": ["INCLUSION", "EXCLUSION"],
            "text": ["BMI", "odd"],
            "rule": ["BMI between 21.5 and 29.5", "see protocol"],
        }
    )
    checked, unreadable = checked_criteria(rules, min_age=45, max_age=75)
    assert [c.code for c in checked] == ["INCL02", "AGE"]
    assert unreadable and unreadable[0].startswith("X (V2):")


def test_check_enrolled_each_value_on_its_own() -> None:
    criteria = [
        CheckedCriterion("INCL03", "INCLUSION", "K-L 1-3", parse_rule("KLGRADE between 1 and 3"))
    ]
    values = pd.DataFrame(
        {
            "usubjid": ["A", "A", "B"],
            "variable": ["KLGRADE"] * 3,
            "location": ["LEFT KNEE", "RIGHT KNEE", "LEFT KNEE"],
            "value_num": [2.0, 4.0, None],
        }
    )
    flagged = check_enrolled(criteria, values)
    assert flagged[["usubjid", "location", "value"]].values.tolist() == [["A", "RIGHT KNEE", 4.0]]


def _checks(engine: Engine, study_id: str, min_age: float, max_age: float) -> pd.DataFrame:
    with Session(engine) as session:
        criteria, _ = checked_criteria(
            criteria_with_rules(session, study_id=study_id), min_age=min_age, max_age=max_age
        )
        values = enrolled_screening_values(
            session,
            study_id=study_id,
            scope=None,
            variables=tuple({c.rule.variable for c in criteria}),
        )
    return check_enrolled(criteria, values)


def test_eligibility_flags_the_planted_deviation_and_nobody_else(demo_engine: Engine) -> None:
    flagged = _checks(demo_engine, "NCT06466850", 45, 75)
    assert flagged[["code", "variable", "value"]].values.tolist() == [["INCL02", "BMI", 30.1]]
    enrolled_bmi = pd.read_sql_query(
        "SELECT s.usubjid, f.value_num FROM finding f JOIN subject s ON s.id = f.subject_pk "
        "WHERE s.population = 'ENROLLED' AND f.test_code = 'BMI' AND s.study_id = 'NCT06466850'",
        demo_engine,
    )
    outside = enrolled_bmi[~enrolled_bmi["value_num"].between(21.5, 29.5)]
    assert flagged["usubjid"].tolist() == outside["usubjid"].tolist()
    assert _checks(demo_engine, "DEMO-MULTI", 40, 80).empty


def test_eligibility_flags_nobody_when_every_rule_is_met(demo_db_url: str, tmp_path: Path) -> None:
    engine = make_engine(copy_database(demo_db_url, tmp_path, "fixed"))
    with session_scope(engine) as session:
        session.execute(
            update(Finding)
            .where(col(Finding.test_code) == "BMI", col(Finding.value_num) == 30.1)
            .values(value_num=29.5)  # the boundary itself is allowed
        )
    assert _checks(engine, "NCT06466850", 45, 75).empty
    # The SQL check the page runs, on this database (SQLite, or PostgreSQL: tests/databases.py).
    with Session(engine) as session:
        for study_id, ages in [("NCT06466850", (45, 75)), ("DEMO-MULTI", (40, 80))]:
            in_sql, in_python = _both_checks(session, study_id, ages)
            assert in_sql.empty and in_python.empty, study_id
    engine.dispose()


# -- the selection ----------------------------------------------------------------------------


def test_selection_resolution() -> None:
    codes = [("INCL01", ""), ("INCL02", "")]
    assert chart_pick({"selection": {SELECTION: [{"code": "INCL02", "protocol_version": ""}]}}) == (
        "INCL02",
        "",
    )
    assert chart_pick({"selection": {SELECTION: []}}) is None
    assert chart_pick(None) is None
    assert row_pick({"selection": {"rows": [1], "columns": []}}, codes) == ("INCL02", "")
    assert row_pick({"selection": {"rows": [5]}}, codes) is None
    a, b = ("INCL01", ""), ("INCL02", "")
    # A new click wins; an unchanged control keeps the current pick; clearing the control clears.
    assert resolve(current=None, chart=a, last_chart=None, row=None, last_row=None) == a
    assert resolve(current=a, chart=a, last_chart=a, row=b, last_row=None) == b
    assert resolve(current=b, chart=a, last_chart=a, row=b, last_row=b) == b
    assert resolve(current=b, chart=a, last_chart=a, row=None, last_row=b) is None


def _open(url: str, study: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study, "screen_failures.py", monkeypatch, timeout=90)


def test_page_drilldown_from_an_injected_selection(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    at.session_state["screen_failures_criterion"] = ("INCL02", "")  # as a bar click leaves it
    at.run()
    assert not at.exception
    assert "5 subjects failed INCL02" in [s.value for s in at.subheader]
    listed = next(d.value for d in at.dataframe if "usubjid" in d.value.columns)
    assert len(listed) == 5 and "BMI" in listed.columns
    labels = {b.proto.label for b in at.get("download_button")}
    assert labels >= {"Download CSV", "Download Excel"}
    # A filter change keeps the pick where the criterion is still there (the list follows the
    # filter); a study change clears it.
    at.date_input[0].set_value((dt.date(2024, 10, 11), dt.date(2024, 10, 31))).run()
    assert not at.exception
    assert "0 subjects failed INCL02" in [s.value for s in at.subheader]
    assert not any("usubjid" in d.value.columns for d in at.dataframe)
    assert any("Nobody failed this criterion" in i.value for i in at.info)
    at.selectbox(key="study").set_value("DEMO-MULTI").run()
    assert not at.exception
    assert not any(" failed " in s.value for s in at.subheader)


def test_page_figures_and_eligibility(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Screen failures"] == "16"
    assert shown["Failed more than one criterion"] == "3"
    assert shown["Enrolled despite a rule"] == "1"
    deviations = next(d.value for d in at.dataframe if "Rule" in d.value.columns)
    assert deviations[["Criterion", "Value"]].values.tolist() == [["INCL02", 30.1]]
    together = next(d.value for d in at.dataframe if "with" in d.value.columns)
    assert together["Subjects"].sum() == 3


def test_page_period_filter(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    period = (dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    at.date_input[0].set_value(period).run()
    assert not at.exception
    subjects = pd.read_sql_query(
        "SELECT screening_date, population FROM subject WHERE study_id = 'NCT06466850'", demo_engine
    )
    dates = pd.to_datetime(subjects["screening_date"])
    inside = subjects[(dates >= pd.Timestamp(period[0])) & (dates <= pd.Timestamp(period[1]))]
    assert {m.label: m.value for m in at.metric}["Screen failures"] == str(
        (inside["population"] == "SCREEN FAILURE").sum()
    )


@pytest.mark.parametrize(
    ("study_id", "ages"), [("NCT06466850", (45, 75)), ("DEMO-MULTI", (40, 80))]
)
def test_sql_eligibility_check_equals_the_python_evaluator(
    study_id: str, ages: tuple[int, int], demo_engine: Engine
) -> None:
    from dashboard.queries.screen_failures import eligibility_violations, variables_without_data

    with Session(demo_engine) as session:
        criteria, _ = checked_criteria(
            criteria_with_rules(session, study_id=study_id), min_age=ages[0], max_age=ages[1]
        )
        in_sql = eligibility_violations(session, study_id=study_id, scope=None, criteria=criteria)
        missing = variables_without_data(
            session,
            study_id=study_id,
            scope=None,
            variables=tuple({c.rule.variable for c in criteria}),
        )
    in_python = _checks(demo_engine, study_id, *ages)
    # A missing location is None from SQL and NaN from the pandas path: the same "no location".
    pd.testing.assert_frame_equal(
        in_sql.astype({"location": object}).fillna({"location": ""}),
        in_python.astype({"location": object}).fillna({"location": ""}),
        check_dtype=False,
    )
    assert missing == (("EGFR", "KLGRADE") if study_id == "DEMO-MULTI" else ())


# -- the SQL eligibility check on the rules' boundaries ---------------------------------------

PLANTED_BMI = 30.1  # the demo's enrolled subject outside the BMI range (issue #5)


@pytest.fixture(scope="module")
def boundary_db(
    demo_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, str]]:
    """A copy of the demo database (tests change values in a transaction they roll back) and the
    planted subject's USUBJID."""
    engine = make_engine(copy_database(demo_db_url, tmp_path_factory.mktemp("bounds"), "bounds"))
    planted = pd.read_sql_query(
        "SELECT s.usubjid FROM finding f JOIN subject s ON s.id = f.subject_pk "
        f"WHERE s.study_id = 'NCT06466850' AND f.test_code = 'BMI' AND f.value_num = {PLANTED_BMI}",
        engine,
    )["usubjid"].tolist()
    assert len(planted) == 1
    yield engine, planted[0]
    engine.dispose()


def _same_violations(in_sql: pd.DataFrame, in_python: pd.DataFrame) -> None:
    # A missing location is None from SQL and NaN from the pandas path: the same "no location".
    pd.testing.assert_frame_equal(
        in_sql.astype({"location": object}).fillna({"location": ""}),
        in_python.astype({"location": object}).fillna({"location": ""}),
        check_dtype=False,
    )


def _both_checks(
    session: Session, study_id: str, ages: tuple[int, int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the SQL check the page runs, the Python evaluator) on what ``session`` sees."""
    criteria, _ = checked_criteria(
        criteria_with_rules(session, study_id=study_id), min_age=ages[0], max_age=ages[1]
    )
    in_sql = eligibility_violations(session, study_id=study_id, scope=None, criteria=criteria)
    values = enrolled_screening_values(
        session, study_id=study_id, scope=None, variables=tuple({c.rule.variable for c in criteria})
    )
    return in_sql, check_enrolled(criteria, values)


@pytest.mark.parametrize(
    ("code", "rule", "variable", "location", "value", "violation"),
    [
        *[
            ("INCL02", "BMI between 21.5 and 29.5 kg/m2", "BMI", None, v, broken)
            for v, broken in [
                (21.4, True),
                (21.5, False),
                (29.5, False),
                (29.51, True),
                (PLANTED_BMI, True),
            ]
        ],
        # An exclusion: violated when the rule is met (haemoglobin below 10).
        *[
            ("EXCL07", "HGB < 10 g/dL", "HGB", None, v, broken)
            for v, broken in [(9.9, True), (9.99, True), (10.0, False), (10.1, False)]
        ],
        *[
            ("INCL01", "PAINDUR >= 3 months", "PAINDUR", None, v, broken)
            for v, broken in [(2.9, True), (2.99, True), (3.0, False), (3.1, False)]
        ],
        # Each knee on its own: one knee out of range is a violation.
        *[
            ("INCL03", "KLGRADE between 1 and 3 (each knee)", "KLGRADE", "LEFT KNEE", v, broken)
            for v, broken in [(0.0, True), (1.0, False), (3.0, False), (4.0, True)]
        ],
    ],
)
def test_sql_check_on_the_boundaries_equals_the_python_evaluator(
    code: str,
    rule: str,
    variable: str,
    location: str | None,
    value: float,
    violation: bool,
    boundary_db: tuple[Engine, str],
) -> None:
    engine, planted = boundary_db
    stored = pd.read_sql_query(
        f"SELECT rule FROM criterion WHERE study_id = 'NCT06466850' AND code = '{code}'", engine
    )["rule"].tolist()
    assert stored == [rule]  # the boundaries below are this rule's
    with Session(engine) as session:
        pk = session.execute(
            select(col(Subject.id)).where(col(Subject.usubjid) == planted)
        ).scalar_one()
        if variable != "BMI":  # the planted subject's BMI would be flagged too: bring it in range
            session.execute(
                update(Finding)
                .where(col(Finding.subject_pk) == pk, col(Finding.test_code) == "BMI")
                .values(value_num=25.0)
            )
        # The screening value the rule reads (the seed's haemoglobin has later visits too).
        changed = update(Finding).where(
            col(Finding.subject_pk) == pk,
            col(Finding.test_code) == variable,
            col(Finding.visit) == "SCREENING",
        )
        if location is not None:
            changed = changed.where(col(Finding.location) == location)
        assert session.execute(changed.values(value_num=value)).rowcount == 1  # type: ignore[attr-defined]
        in_sql, in_python = _both_checks(session, "NCT06466850", (45, 75))
        session.rollback()
    _same_violations(in_sql, in_python)
    expected = [[planted, code, variable, location or "", value]] if violation else []
    flagged = in_sql.astype({"location": object}).fillna({"location": ""})
    assert flagged[["usubjid", "code", "variable", "location", "value"]].values.tolist() == expected


# -- the drilldown on the page, from the controls -----------------------------------------------


def _criteria_table(at: AppTest) -> Any:
    """The criteria table (its key starts with the page's TABLE_KEY; selection.widget_key)."""
    tables = [d for d in at.dataframe if d.key and d.key.startswith("screen_failures_table")]
    assert len(tables) == 1
    return tables[0]


def _pick_row(at: AppTest, code: str) -> int:
    """Tick the criteria table's row of ``code`` as a click would; returns the row."""
    table = _criteria_table(at)
    row = int(table.value["Code"].tolist().index(code))
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return row


def _drilldown(at: AppTest) -> tuple[str | None, list[str]]:
    """(the criterion the drilldown's heading names, the subjects it lists) as the page shows
    them; the heading's count ("5 subjects failed INCL02") is the number of subjects listed."""
    headings = [s.value for s in at.subheader if re.fullmatch(r"\d+ subjects? failed .+", s.value)]
    lists = [d.value for d in at.dataframe if "failed_criteria" in d.value.columns]
    assert len(headings) <= 1 and len(lists) <= 1
    listed = sorted(lists[0]["usubjid"].map(_subject_code)) if lists else []
    if not headings:
        return None, listed
    count, _, criterion = headings[0].partition(" subject")
    assert int(count) == len(set(listed)), headings[0]
    return criterion.split(" failed ", 1)[1], listed


def _subject_code(link: object) -> str:
    # The subject column links to the Subject page: the code is the link's "subject" value.
    return parse_qs(urlsplit(str(link)).query)["subject"][0]


def _who_failed(engine: Engine, study_id: str, code: str) -> list[str]:
    pairs = _failures(engine, study_id)
    return sorted(pairs.loc[pairs["code"] == code, "usubjid"].unique())


class _ChartClicks:
    """Stands in for the browser's clicks on the criteria chart: Streamlit does not let session
    state set a chart's selection, so the page's read of it (``selection.widget_event``, before
    the chart is drawn) is wrapped to hand back, for the chart last drawn, the event a click on
    ``code`` would leave (AppTest runs the page in this process)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: dict[str, dict[str, Any]] = {}  # chart key -> its selection event
        self.drawn: list[str] = []  # the keys of the criteria charts drawn, in order
        self.full: list[str] = []  # the criteria whose bars the last chart draws full
        real_chart, real_event = st.altair_chart, selection.widget_event

        def altair_chart(chart: Any, **kwargs: Any) -> Any:
            key = str(kwargs.get("key", ""))
            if key.startswith("screen_failures_chart"):
                self.drawn.append(key)
                self.full = chart.data.loc[chart.data["picked"], "code"].tolist()
            return real_chart(chart, **kwargs)

        def widget_event(key: str) -> Any:
            if key.startswith("screen_failures_chart"):
                return self.events.get(key)
            return real_event(key)

        monkeypatch.setattr(st, "altair_chart", altair_chart)
        monkeypatch.setattr(selection, "widget_event", widget_event)

    def click(self, at: AppTest, code: str | None, version: str = "") -> None:
        clicked = [] if code is None else [{"code": code, "protocol_version": version}]
        self.events[self.drawn[-1]] = {"selection": {SELECTION: clicked}}
        at.run()
        assert not at.exception, [e.value for e in at.exception]


def test_page_drilldown_from_a_row_of_the_criteria_table(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, "DEMO-MULTI", monkeypatch)
    assert _drilldown(at) == (None, [])
    counts = _failures(demo_engine, "DEMO-MULTI").groupby("code")["subject_pk"].nunique()
    code = str(counts.idxmax())  # the criterion most failed
    _pick_row(at, code)
    heading, listed = _drilldown(at)
    assert heading == code
    assert listed == _who_failed(demo_engine, "DEMO-MULTI", code) and len(listed) == counts.max()
    # Unticking the row closes the drilldown.
    at.session_state[_criteria_table(at).key] = {"selection": {"rows": [], "columns": []}}
    at.run()
    assert _drilldown(at) == (None, [])


def test_page_drilldown_from_a_chart_click(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clicks = _ChartClicks(monkeypatch)
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    assert len(clicks.drawn) == 1  # the page drew its chart through the wrapper
    clicks.click(at, "INCL02")
    heading, listed = _drilldown(at)
    assert heading == "INCL02"
    assert listed == _who_failed(demo_engine, "NCT06466850", "INCL02") and len(listed) == 5
    # The bar clicked ticks its row of the table, and its bar alone is drawn full.
    assert _ticked(at) == ["INCL02"] and clicks.full == ["INCL02"]
    # A row ticked after the click wins, and its bar is the one drawn full (on a chart drawn
    # anew: the old one still holds the click on INCL02); a click on another bar then wins.
    _pick_row(at, "EXCL01")
    assert _drilldown(at) == (
        "EXCL01",
        _who_failed(demo_engine, "NCT06466850", "EXCL01"),
    )
    assert clicks.full == ["EXCL01"] and clicks.drawn[-1] != clicks.drawn[0]
    clicks.click(at, "INCL03")
    assert _drilldown(at) == (
        "INCL03",
        _who_failed(demo_engine, "NCT06466850", "INCL03"),
    )
    assert _ticked(at) == ["INCL03"] and clicks.full == ["INCL03"]
    # A click on empty space clears the chart's selection, and the drilldown with it.
    clicks.click(at, None)
    assert _drilldown(at) == (None, [])
    assert _ticked(at) == [] and len(clicks.full) == 10  # every bar full again


def _ticked(at: AppTest) -> list[str]:
    """The codes of the criteria table's ticked rows."""
    table = _criteria_table(at)
    rows = at.session_state[table.key]["selection"]["rows"]
    return [str(table.value["Code"].iloc[r]) for r in rows]


def test_page_row_pick_does_not_follow_into_another_study(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    row = _pick_row(at, "EXCL01")
    assert _drilldown(at)[0] == "EXCL01"
    other = pd.read_sql_query(
        "SELECT code FROM criterion WHERE study_id = 'DEMO-MULTI' ORDER BY seq, code", demo_engine
    )["code"].tolist()
    assert other[row] != "EXCL01"  # the same row is another criterion there: it must not open
    at.selectbox(key="study").set_value("DEMO-MULTI").run()
    assert not at.exception
    assert _drilldown(at) == (None, [])
    assert not _criteria_table(at).value.empty
    assert at.session_state["screen_failures_criterion"] is None
    # Back in the first study, nothing is ticked and nothing opens either.
    at.selectbox(key="study").set_value("NCT06466850").run()
    assert not at.exception
    assert _drilldown(at) == (None, [])


@pytest.mark.parametrize("removed", ["INCL02", "INCL01"])
def test_page_picked_criterion_gone_from_the_protocol(
    removed: str, demo_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_database(demo_db_url, tmp_path, "gone")
    engine = make_engine(url)
    at = _open(url, "NCT06466850", monkeypatch)
    _pick_row(at, "INCL02")
    assert _drilldown(at)[0] == "INCL02"
    # The protocol is re-imported without one criterion; then the dates change (a filter).
    with engine.begin() as connection:
        gone = "(SELECT id FROM criterion WHERE study_id = 'NCT06466850' AND code = :code)"
        connection.execute(
            text(f"DELETE FROM eligibilityfinding WHERE criterion_pk IN {gone}"), {"code": removed}
        )
        connection.execute(text(f"DELETE FROM criterion WHERE id IN {gone}"), {"code": removed})
    st.cache_data.clear()
    at.date_input[0].set_value((dt.date(2024, 1, 1), dt.date(2026, 12, 31))).run()
    assert not at.exception, [e.value for e in at.exception]
    assert removed not in _criteria_table(at).value["Code"].tolist()
    if removed == "INCL02":  # the pick is gone: no drilldown (and no other row takes its place)
        assert _drilldown(at) == (None, [])
        assert at.session_state["screen_failures_criterion"] is None
    else:  # the pick is still there: it stays, though the rows below it moved up
        assert _drilldown(at) == ("INCL02", _who_failed(engine, "NCT06466850", "INCL02"))
    engine.dispose()


@pytest.mark.parametrize("study_id", ["NCT06466850", "DEMO-MULTI"])
def test_page_criteria_table_and_bar_order(
    study_id: str, demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, study_id, monkeypatch)
    criteria = pd.read_sql_query(
        f"SELECT code, seq FROM criterion WHERE study_id = '{study_id}' ORDER BY seq, code",
        demo_engine,
    )
    screened = pd.read_sql_query(
        f"SELECT COUNT(*) AS n FROM subject WHERE study_id = '{study_id}'", demo_engine
    )["n"][0]
    counts = _failures(demo_engine, study_id).groupby("code")["subject_pk"].nunique()
    criteria["subjects"] = criteria["code"].map(counts).fillna(0).astype(int)
    table = _criteria_table(at).value
    assert table["Code"].tolist() == criteria["code"].tolist()  # protocol order, zeros listed
    assert table["Subjects"].tolist() == criteria["subjects"].tolist()
    assert table["% of screened"].tolist() == [
        f"{100 * n / screened:.1f}%" for n in criteria["subjects"]
    ]
    # The bars: most failed first, ties in protocol order.
    spec = criteria_chart(
        failures_by_criterion(Session(demo_engine), study_id=study_id, scope=None),
        screened=int(screened),
    ).to_dict()
    bars = [label.split(":")[0] for label in spec["encoding"]["y"]["sort"]]
    by_count = criteria.sort_values(["subjects", "seq"], ascending=[False, True])["code"].tolist()
    assert bars == by_count
    assert by_count != criteria["code"].tolist()  # the count order is not the protocol's here


# -- an amended protocol (SDTM-MSG) -------------------------------------------------------------

MSG_DIR = SHARED_DATA / "sdtm" / "cdisc_msg_v2"


def test_amended_protocol_drilldown_names_the_version(
    msg_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(msg_db_url)
    pairs = _failures(engine, "MSG")
    assert pairs["code"].tolist() == ["INCL03"]  # SDTM-MSG gives INCL03 = 1
    expected = [f"{c} ({v})" for c, v in zip(pairs["code"], pairs["protocol_version"], strict=True)]
    assert (
        pd.read_sql_query(
            "SELECT COUNT(DISTINCT protocol_version) AS n FROM criterion WHERE study_id = 'MSG'",
            engine,
        )["n"][0]
        > 1
    )
    with Session(engine) as session:
        listed = failed_subjects(
            session,
            study_id="MSG",
            scope=None,
            code="INCL03",
            protocol_version=str(pairs["protocol_version"][0]),
        )
        original = failed_subjects(session, study_id="MSG", scope=None, code="INCL03")
    assert listed["failed_criteria"].tolist() == expected  # "INCL03 (AMENDMENT 1)"
    assert original.empty  # INCL03 of the original protocol: nobody failed it
    at = _open(msg_db_url, "MSG", monkeypatch)
    table = _criteria_table(at)
    row = list(zip(table.value["Code"], table.value["Version"], strict=True)).index(
        ("INCL03", pairs["protocol_version"][0])
    )
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    heading, shown = _drilldown(at)
    assert heading == expected[0] and shown == pairs["usubjid"].tolist()
    shown_list = next(d.value for d in at.dataframe if "failed_criteria" in d.value.columns)
    assert shown_list["failed_criteria"].tolist() == expected
    engine.dispose()
