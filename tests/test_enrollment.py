"""Enrollment page: queries, metrics and charts against independent pandas counts, and the page
itself (AppTest) on the NCT06466850 demo, the multisite demo and the CDISC pilot."""

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.charts.enrollment import funnel_chart
from dashboard.db import make_engine
from dashboard.metrics.enrollment import (
    enrollment_dates,
    funnel_steps,
    reasons_text,
    recent_and_overall_rate,
    site_table,
)
from dashboard.queries.enrollment import (
    discontinuation_reasons,
    enrollment_by_site,
    funnel,
    outcome_by_arm,
    screening_span,
    site_subjects,
)
from tests.conftest import PROJECT_ROOT, open_study_page

APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def _subjects(engine: Engine, study_id: str) -> pd.DataFrame:
    frame = pd.read_sql_query(
        "SELECT s.*, site.site_id AS siteid FROM subject s LEFT JOIN site ON site.id = s.site_pk "
        f"WHERE s.study_id = '{study_id}'",
        engine,
    )
    for column in ("screening_date", "enrollment_date", "first_dose_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def _latest_ds(engine: Engine, study_id: str) -> pd.DataFrame:
    """Each discontinued subject's latest disposition event (other than completion), by pandas."""
    ds = pd.read_sql_query(
        "SELECT d.*, s.arm, s.status FROM disposition d JOIN subject s ON s.id = d.subject_pk "
        f"WHERE s.study_id = '{study_id}'",
        engine,
    )
    ds = ds[
        (ds["status"] == "DISCONTINUED")
        & (ds["category"].str.upper() == "DISPOSITION EVENT")
        & (ds["epoch"].fillna("").str.upper() != "SCREENING")
        & ~ds["term"].str.upper().isin(["COMPLETED", "SCREEN FAILURE"])
    ]
    latest = ds.groupby("subject_pk")["date"].transform("max")
    return ds[ds["date"] == latest]


STUDIES = [("demo", "NCT06466850"), ("demo", "DEMO-MULTI"), ("pilot", "CDISCPILOT01")]


def _url(kind: str, demo_db_url: str, request: pytest.FixtureRequest) -> str:
    return demo_db_url if kind == "demo" else str(request.getfixturevalue("pilot_db_url"))


@pytest.mark.parametrize(("kind", "study_id"), STUDIES)
def test_funnel_matches_pandas(
    kind: str, study_id: str, demo_db_url: str, request: pytest.FixtureRequest
) -> None:
    engine = make_engine(_url(kind, demo_db_url, request))
    subjects = _subjects(engine, study_id)
    exposed = set(
        pd.read_sql_query("SELECT DISTINCT subject_pk FROM exposure", engine)["subject_pk"]
    )
    enrolled = subjects[subjects["population"] == "ENROLLED"]
    with Session(engine) as session:
        counts = funnel(session, study_id=study_id, scope=None)
        reasons = discontinuation_reasons(session, study_id=study_id, scope=None)
        by_arm = outcome_by_arm(session, study_id=study_id, scope=None)
    assert counts.screened == len(subjects)
    assert counts.screen_failures == (subjects["population"] == "SCREEN FAILURE").sum()
    assert counts.in_screening == (subjects["population"] == "IN SCREENING").sum()
    assert counts.enrolled == len(enrolled)
    treated = enrolled["first_dose_date"].notna() | enrolled["id"].isin(exposed)
    assert counts.treated == treated.sum()
    for status in ("COMPLETED", "DISCONTINUED", "ONGOING"):
        assert getattr(counts, status.lower()) == (enrolled["status"] == status).sum()
    latest = _latest_ds(engine, study_id)
    expected = latest.groupby(["arm", "term"])["subject_pk"].nunique()
    got = reasons.set_index(["arm", "reason"])["subjects"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert reasons["subjects"].sum() == counts.discontinued
    assert (
        by_arm.set_index("arm")["allocated"].to_dict() == enrolled.groupby("arm").size().to_dict()
    )
    assert by_arm["completed"].sum() == counts.completed


def test_cdisc_pilot_completers(pilot_db_url: str) -> None:
    # CDISC pilot: 110 subjects completed, 144 discontinued (DS); the most frequent reason is
    # ADVERSE EVENT (92 subjects across arms).
    with Session(make_engine(pilot_db_url)) as session:
        counts = funnel(session, study_id="CDISCPILOT01", scope=None)
        reasons = discontinuation_reasons(session, study_id="CDISCPILOT01", scope=None)
    assert (counts.completed, counts.discontinued, counts.ongoing) == (110, 144, 0)
    assert reasons_text(reasons).startswith("ADVERSE EVENT 92")


@pytest.mark.parametrize("scope", [None, ("101", "104")])
def test_sites_match_pandas(
    session: Session, demo_engine: Engine, scope: tuple[str, ...] | None
) -> None:
    subjects = _subjects(demo_engine, "DEMO-MULTI")
    if scope:
        subjects = subjects[subjects["siteid"].isin(scope)]
    by_site = enrollment_by_site(session, study_id="DEMO-MULTI", scope=scope).set_index("site_id")
    grouped = subjects.groupby("siteid")
    assert sorted(by_site.index) == sorted(scope or by_site.index)
    for site_id, rows in grouped:
        row = by_site.loc[site_id]
        assert row["screened"] == len(rows)
        assert row["screen_failures"] == (rows["population"] == "SCREEN FAILURE").sum()
        enrolled = rows[rows["population"] == "ENROLLED"]
        assert row["enrolled"] == len(enrolled)
        assert row["first_screening"] == rows["screening_date"].min().date()
        assert row["last_enrollment"] == enrolled["enrollment_date"].max().date()
    subjects_101 = site_subjects(session, study_id="DEMO-MULTI", site_id="101", scope=scope)
    assert len(subjects_101) == (grouped.size().get("101", 0))
    span = screening_span(session, study_id="DEMO-MULTI", scope=scope)
    assert span == (
        subjects["screening_date"].min().date(),
        subjects["screening_date"].max().date(),
    )


def test_period_filter_counts_subjects_screened_in_it(
    session: Session, demo_engine: Engine
) -> None:
    subjects = _subjects(demo_engine, "DEMO-MULTI")
    period = (dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    inside = subjects[
        subjects["screening_date"].between(pd.Timestamp(period[0]), pd.Timestamp(period[1]))
    ]
    counts = funnel(session, study_id="DEMO-MULTI", scope=None, period=period)
    assert counts.screened == len(inside) > 0
    assert counts.enrolled == (inside["population"] == "ENROLLED").sum()


def test_site_table_boundaries() -> None:
    by_site = pd.DataFrame(
        {
            "site_id": ["A", "B", "C"],
            "name": ["a", "b", "c"],
            "country": ["DEU", "FRA", None],
            "activated_on": [dt.date(2025, 1, 1), None, None],
            "planned_enrollment": [10, None, 0],
            "first_screening": [dt.date(2025, 1, 10), dt.date(2025, 3, 2), None],
            "screened": [12, 4, 0],
            "screen_failures": [3, 0, 0],
            "enrolled": [9, 4, 0],
            "last_enrollment": [dt.date(2025, 3, 1), dt.date(2025, 3, 31), None],
        }
    )
    table = site_table(by_site, cutoff=dt.date(2025, 3, 31)).set_index("site_id")
    assert table.loc["A", "active_since"] == dt.date(2025, 1, 1)  # activation wins
    assert table.loc["B", "active_since"] == dt.date(2025, 3, 2)  # else first screening
    assert table.loc["A", "screen_failure_rate"] == 0.25
    assert table["screen_failure_rate"].isna()["C"]  # nobody screened: no rate, not 0
    # 9 enrolled over 90 days (1 Jan to 31 Mar, both counted) = 9 / 90 * 30.4375 a month
    assert table.loc["A", "enrolled_per_month"] == pytest.approx(9 / 90 * 30.4375)
    assert table.loc["A", "days_since_last_enrollment"] == 30
    assert table.loc["B", "days_since_last_enrollment"] == 0
    assert table.loc["A", "share_of_target"] == 0.9
    assert table["share_of_target"].isna()[["B", "C"]].all()


def test_recent_and_overall_rate() -> None:
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-01-01", "2025-03-01", "2025-03-02", "2025-03-31"]),
            "screened": [1, 1, 1, 1],
            "enrolled": [1, 2, 0, 3],
        }
    )
    recent, overall = recent_and_overall_rate(daily, cutoff=dt.date(2025, 3, 31), start=None)
    # Last 30 days = 2 Mar .. 31 Mar: 0 + 3 = 3 -> 3 a month; overall 6 over 90 days.
    assert recent == pytest.approx(3 / 30 * 30.4375)
    assert overall == pytest.approx(6 / 90 * 30.4375)
    assert recent_and_overall_rate(
        daily.assign(enrolled=0), cutoff=dt.date(2025, 3, 31), start=None
    ) == (None, None)
    assert (
        enrollment_dates(daily)
        == [dt.date(2025, 1, 1)] + [dt.date(2025, 3, 1)] * 2 + [dt.date(2025, 3, 31)] * 3
    )


def test_funnel_steps_and_chart() -> None:
    steps = funnel_steps(
        screened=36,
        screen_failures=16,
        in_screening=0,
        not_assigned=0,
        enrolled=20,
        treated=20,
        completed=12,
        discontinued=2,
        ongoing=6,
        discontinuation_reasons="LOST TO FOLLOW-UP 1",
    ).set_index("step")
    assert steps.loc["Screen failed", "of_previous"] == pytest.approx(16 / 36)
    assert steps.loc["Eligible", "subjects"] == 20
    assert steps.loc["Enrolled", "of_previous"] == 1.0
    assert steps.loc["Completed", "previous"] == "Treated"
    assert steps.loc["Discontinued", "detail"] == "LOST TO FOLLOW-UP 1"
    no_exposure = funnel_steps(
        screened=10,
        screen_failures=0,
        in_screening=0,
        not_assigned=0,
        enrolled=10,
        treated=None,
        completed=0,
        discontinued=0,
        ongoing=10,
    ).set_index("step")
    assert "Treated" not in no_exposure.index
    assert no_exposure.loc["Ongoing", "previous"] == "Enrolled"
    spec = funnel_chart(steps.reset_index()).to_dict()
    bars, labels = spec["layer"]
    assert labels["encoding"]["text"]["field"] == "label"
    assert bars["encoding"]["y"]["sort"][0] == "Screened"
    assert bars["encoding"]["x"]["field"] == "subjects"
    data = next(iter(spec["datasets"].values()))
    assert [r["label"] for r in data][:2] == ["36", "16 (44% of screened)"]


# -- the page ---------------------------------------------------------------------------------


def _page(url: str, study_id: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study_id, "enrollment.py", monkeypatch, timeout=90)


@pytest.mark.parametrize(("kind", "study_id"), STUDIES)
def test_enrollment_page_figures(
    kind: str,
    study_id: str,
    demo_db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(kind, demo_db_url, request)
    at = _page(url, study_id, monkeypatch)
    engine = make_engine(url)
    subjects = _subjects(engine, study_id)
    study = pd.read_sql_query(f"SELECT * FROM study WHERE study_id = '{study_id}'", engine).iloc[0]
    shown = {m.label: m.value for m in at.metric}
    enrolled = (subjects["population"] == "ENROLLED").sum()
    failures = (subjects["population"] == "SCREEN FAILURE").sum()
    assert shown["Enrolled / target"] == f"{enrolled} / {study['planned_enrollment']}"
    assert shown["Screen-failure rate"] == f"{100 * failures / len(subjects):.0f}%"
    # Enrollment rate in the 30 days up to the cut-off, per month.
    cutoff = pd.read_sql_query(
        f"SELECT max(cutoff_date) AS c FROM datacut WHERE study_id = '{study_id}'", engine
    ).iloc[0]["c"]
    cut = pd.Timestamp(cutoff)
    dates = subjects.loc[subjects["population"] == "ENROLLED", "enrollment_date"]
    recent = ((dates > cut - pd.Timedelta(days=30)) & (dates <= cut)).sum()
    assert shown["Enrolled per month, last 30 days"] == f"{recent / 30 * 30.4375:.1f}"
    # Site table: shown for multi-site studies, with every site's counts.
    site_tables = [d.value for d in at.dataframe if "site_id" in d.value.columns]
    if subjects["siteid"].nunique() > 1:
        (table,) = site_tables
        expected = subjects.groupby("siteid").size()
        assert table.set_index("site_id")["screened"].to_dict() == expected.to_dict()
    else:
        assert site_tables == []  # single site: nothing new to say
    # Accrual and funnel, and the multicentre forecast's bands where more than one site is open
    # and recruiting (the pilot's recruitment has stalled: no projection, no bands).
    multicentre = subjects["siteid"].nunique() > 1 and study_id != "CDISCPILOT01"
    assert len(at.get("vega_lite_chart")) == (3 if multicentre else 2)


def test_enrollment_page_site_filter_hides_the_study_target(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["study"] = "DEMO-MULTI"
    at.run()
    at.multiselect(key="filter_sites").set_value(["103"]).run()
    at.switch_page("../pages/enrollment.py").run()
    assert not at.exception
    assert any("clear the site and date filters" in i.value for i in at.info)


def test_stalled_recruitment_gets_no_projected_date() -> None:
    from dashboard.metrics.enrollment import STALLED_AFTER_DAYS, study_forecast

    days = pd.date_range("2024-01-01", periods=40, freq="7D")
    daily = pd.DataFrame({"date": days, "screened": 1, "enrolled": 1})
    last = days[-1].date()
    running = study_forecast(
        daily,
        target=100,
        cutoff=last + dt.timedelta(days=STALLED_AFTER_DAYS),
        planned_start=None,
        planned_end=None,
    )
    assert running is not None and running.status == "ok" and running.median_date is not None
    stalled = study_forecast(
        daily,
        target=100,
        cutoff=last + dt.timedelta(days=STALLED_AFTER_DAYS + 1),
        planned_start=None,
        planned_end=None,
    )
    assert stalled is not None and stalled.status == "stalled"
    assert stalled.median_date is None and "No enrollment since" in stalled.message
    assert (
        study_forecast(daily, target=100, cutoff=None, planned_start=None, planned_end=None) is None
    )
    # A planned start after the first enrollment is not used (the data contradict it).
    late_start = study_forecast(
        daily, target=100, cutoff=last, planned_start=dt.date(2024, 6, 1), planned_end=None
    )
    assert late_start is not None and late_start.status == "ok"


def test_cdisc_pilot_page_says_recruitment_stalled(
    pilot_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(pilot_db_url, "CDISCPILOT01", monkeypatch)
    # Last enrollment 2014-09-02, cut-off 2015-03-31: 210 days without one.
    assert any(
        "No enrollment since 02 Sep 2014, 210 days before the cut-off" in i.value for i in at.info
    )
    assert {m.label: m.value for m in at.metric}["Projected completion"] == "–"


def test_screening_period_filter_applies_to_the_page(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(demo_db_url, "DEMO-MULTI", monkeypatch)
    period = (dt.date(2025, 1, 1), dt.date(2025, 6, 30))
    at.sidebar.date_input[0].set_value(period).run()
    assert not at.exception
    subjects = _subjects(demo_engine, "DEMO-MULTI")
    inside = subjects[
        subjects["screening_date"].between(pd.Timestamp(period[0]), pd.Timestamp(period[1]))
    ]
    shown = {m.label: m.value for m in at.metric}
    enrolled = (inside["population"] == "ENROLLED").sum()
    assert shown["Enrolled / target"] == f"{enrolled} / 304"
    assert shown["Projected completion"] == "–"  # the forecast is for the whole study
    (table,) = [d.value for d in at.dataframe if "site_id" in d.value.columns]
    assert table["screened"].sum() == len(inside)
