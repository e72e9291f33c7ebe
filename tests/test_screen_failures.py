"""Screen failures: counts, drilldown, co-occurrence, time and site views, and the eligibility
checks, against independent pandas counts; the page through AppTest."""

import datetime as dt
import itertools
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import update
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
    CheckedCriterion,
    RuleError,
    age_rule,
    check_enrolled,
    checked_criteria,
    is_violation,
    parse_rule,
)
from dashboard.metrics.screen_failures import monthly_failure_rate, site_criterion_grid
from dashboard.models import Finding
from dashboard.queries.enrollment import enrollment_by_site
from dashboard.queries.screen_failures import (
    criteria_with_rules,
    daily_screening,
    enrolled_screening_values,
    failed_subject_counts,
    failed_subjects,
    failure_cooccurrence,
    failures_by_criterion,
    site_criterion_counts,
)
from dashboard.ui.selection import chart_pick, resolve, row_pick
from tests.conftest import PROJECT_ROOT
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
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["study"] = study
    at.run()
    at.switch_page("../pages/screen_failures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_drilldown_from_an_injected_selection(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    at.session_state["screen_failures_criterion"] = ("INCL02", "")  # as a bar click leaves it
    at.run()
    assert not at.exception
    assert "Who failed INCL02" in [s.value for s in at.subheader]
    listed = next(d.value for d in at.dataframe if "usubjid" in d.value.columns)
    assert len(listed) == 5 and "BMI" in listed.columns
    labels = {b.proto.label for b in at.get("download_button")}
    assert labels >= {"Download CSV", "Download Excel"}
    # A filter change keeps the pick where the criterion is still there (the list follows the
    # filter); a study change clears it.
    at.date_input[0].set_value((dt.date(2024, 10, 11), dt.date(2024, 10, 31))).run()
    assert not at.exception
    assert "Who failed INCL02" in [s.value for s in at.subheader]
    assert not any("usubjid" in d.value.columns for d in at.dataframe)
    assert any("Nobody failed this criterion" in i.value for i in at.info)
    at.selectbox(key="study").set_value("DEMO-MULTI").run()
    assert not at.exception
    assert not any(s.value.startswith("Who failed") for s in at.subheader)


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
