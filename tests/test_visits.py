"""The visit schedule: the status rule at its boundaries, the planned schedule read from TV, and the
due/overdue counts of the query layer and the Enrollment page against an independent pandas
computation on the demo data at fixed dates."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine
from dashboard.demo import SEED_CUTOFF, SEED_STUDY_ID
from dashboard.importers.run import import_sdtm
from dashboard.metrics.study_days import date_of_study_day, study_day
from dashboard.metrics.visits import (
    DONE,
    DONE_OUT_OF_WINDOW,
    DUE,
    MISSED,
    NOT_EXPECTED,
    NOT_RECORDED,
    OVERDUE,
    UPCOMING,
    derive_visit_status,
    is_conditional_visit,
    schedule_grid,
    visit_status,
)
from dashboard.queries.scope import SiteScope
from dashboard.queries.visits import (
    LEFT,
    planned_schedule,
    subject_schedules,
    subject_visit_schedule,
    visits_by_site,
)
from dashboard.views.format import plural
from tests.conftest import PROJECT_ROOT, open_study_page
from tests.databases import new_database_url
from tests.sdtm_builders import copy_of_base, write_package

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
MULTI = "DEMO-MULTI"
DAY_ONE = dt.date(2025, 1, 10)

# -- the rule, at its boundaries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2025, 1, 8), -2),
        (dt.date(2025, 1, 9), -1),  # the day before day 1: no day 0 (SDTMIG 4.4.4)
        (dt.date(2025, 1, 10), 1),
        (dt.date(2025, 1, 11), 2),
        (dt.date(2025, 2, 9), 31),
    ],
)
def test_study_day_has_no_day_zero(day: dt.date, expected: int) -> None:
    assert study_day(day, DAY_ONE) == expected
    assert date_of_study_day(expected, DAY_ONE) == day  # the inverse, both sides of day 1


def test_a_day_zero_in_a_schedule_is_read_as_day_one() -> None:
    assert date_of_study_day(0, DAY_ONE) == date_of_study_day(1, DAY_ONE) == DAY_ONE


def _status(
    as_of: dt.date,
    *,
    planned_day: int = 29,
    held_on: dt.date | None = None,
    held: bool | None = None,
    left_on: dt.date | None = None,
    before: int = 7,
    after: int = 7,
) -> str:
    return visit_status(
        planned_day=planned_day,
        day_one=DAY_ONE,
        as_of=as_of,
        window_before=before,
        window_after=after,
        held=held if held is not None else held_on is not None,
        held_on=held_on,
        left_on=left_on,
    )


# Day 29 of a subject whose day 1 is 10 Jan 2025 is 7 Feb; with ±7 days the window is 31 Jan to
# 14 Feb, both on time.
DUE_ON = dt.date(2025, 2, 7)
OPENS, CLOSES = dt.date(2025, 1, 31), dt.date(2025, 2, 14)


def test_status_on_the_days_around_the_window() -> None:
    days = [OPENS - dt.timedelta(days=1), OPENS, DUE_ON, CLOSES, CLOSES + dt.timedelta(days=1)]
    assert [_status(d) for d in days] == [UPCOMING, DUE, DUE, DUE, OVERDUE]


def test_status_of_a_held_visit_by_when_it_was_held() -> None:
    held = [OPENS - dt.timedelta(days=1), OPENS, CLOSES, CLOSES + dt.timedelta(days=1)]
    later = dt.date(2025, 6, 1)
    assert [_status(later, held_on=d) for d in held] == [
        DONE_OUT_OF_WINDOW,
        DONE,
        DONE,
        DONE_OUT_OF_WINDOW,
    ]
    assert _status(later, held=True) == DONE  # an SV record without a date: held, time unknown


def test_status_after_the_subject_left() -> None:
    later = dt.date(2025, 6, 1)
    assert _status(later, left_on=OPENS - dt.timedelta(days=1)) == NOT_EXPECTED
    assert _status(later, left_on=OPENS) == MISSED
    assert _status(later, left_on=CLOSES + dt.timedelta(days=3)) == MISSED
    # A departure after the reference date has not happened yet on it.
    assert _status(CLOSES + dt.timedelta(days=1), left_on=later) == OVERDUE


def test_status_of_an_asymmetric_window_and_a_screening_visit() -> None:
    assert _status(DUE_ON + dt.timedelta(days=1), before=3, after=0) == OVERDUE
    assert _status(DUE_ON - dt.timedelta(days=3), before=3, after=0) == DUE
    assert _status(DUE_ON - dt.timedelta(days=4), before=3, after=0) == UPCOMING
    # A screening visit of a subject who reached day 1 took place; SV just does not say when.
    assert _status(dt.date(2025, 6, 1), planned_day=-14) == NOT_RECORDED


@pytest.mark.parametrize(
    ("visit", "rule", "conditional"),
    [
        ("RETRIEVAL", "If subject stopped treatment early, before Visit 12", True),
        ("AE FOLLOW-UP", "When subject is terminated early, with followup", True),
        ("WEEK 4: UNSCHEDULED 01", None, True),
        ("EARLY DISCONTINUATION", "Discontinuation Date Prior to Week 24", True),
        ("WEEK 24", "End of Visitnum  3 + 24W", False),
        ("WEEK 24 (FOLLOW-UP)", None, False),
    ],
)
def test_conditional_visits(visit: str, rule: str | None, conditional: bool) -> None:
    assert is_conditional_visit(visit, rule) is conditional


# -- an independent computation on the database's own rows -------------------------------------------


def _independent(
    engine: Engine,
    study_id: str,
    *,
    as_of: dt.date,
    window: int,
    scope: SiteScope = None,
) -> pd.DataFrame:
    """Each enrolled subject's planned visits with their status on ``as_of``, straight from the
    tables with pandas (no query, metrics or SQL CASE of the app): one row per subject and visit."""
    subjects = pd.read_sql_query(
        "SELECT s.id, s.usubjid, s.arm_code, s.enrollment_date, s.status, st.site_id "
        "FROM subject s LEFT JOIN site st ON st.id = s.site_pk "
        f"WHERE s.study_id = '{study_id}' AND s.population = 'ENROLLED' "
        "AND s.enrollment_date IS NOT NULL",
        engine,
        parse_dates=["enrollment_date"],
    )
    if scope is not None:
        subjects = subjects[subjects["site_id"].isin(scope)]
    planned = pd.read_sql_query(
        "SELECT visit_num, visit, arm_code AS planned_arm, planned_day, window_before, "
        f"window_after FROM plannedvisit WHERE study_id = '{study_id}' "
        "AND planned_day IS NOT NULL AND NOT is_conditional",
        engine,
    )
    held = pd.read_sql_query(
        "SELECT v.subject_pk AS id, v.visit_num, v.date FROM visit v "
        f"JOIN subject s ON s.id = v.subject_pk WHERE s.study_id = '{study_id}'",
        engine,
        parse_dates=["date"],
    )
    held = held[held["date"].isna() | (held["date"] <= pd.Timestamp(as_of))]
    first_held = held.groupby(["id", "visit_num"])["date"].min().rename("held_on").reset_index()
    first_held["held"] = True
    ds = pd.read_sql_query(
        "SELECT d.subject_pk AS id, d.category, d.epoch, d.term, d.date FROM disposition d "
        f"JOIN subject s ON s.id = d.subject_pk WHERE s.study_id = '{study_id}'",
        engine,
        parse_dates=["date"],
    )
    events = ds[
        (ds["category"].str.upper() == "DISPOSITION EVENT")
        & (ds["epoch"].fillna("").str.upper() != "SCREENING")
        & (ds["term"].str.upper() != "SCREEN FAILURE")
    ]
    left = events.groupby("id")["date"].max().rename("left_on")
    pairs = subjects.merge(planned, how="cross")
    pairs = pairs[(pairs["planned_arm"] == "") | (pairs["planned_arm"] == pairs["arm_code"])]
    pairs = pairs.merge(first_held, on=["id", "visit_num"], how="left").join(left, on="id")
    pairs["held"] = pairs["held"].eq(True)
    ended = pairs["status"].isin(["COMPLETED", "DISCONTINUED"])
    pairs["left_on"] = pairs["left_on"].where(ended, pd.NaT)
    # Days from day 1 to the due day: planned day - 1 after day 1, the planned day before it.
    offset = pairs["planned_day"].where(pairs["planned_day"] < 1, pairs["planned_day"] - 1)
    due = pairs["enrollment_date"] + pd.to_timedelta(offset, unit="D")
    before = pairs["window_before"].fillna(window)
    after = pairs["window_after"].fillna(window)
    opens = due - pd.to_timedelta(before, unit="D")
    closes = due + pd.to_timedelta(after, unit="D")
    today = pd.Timestamp(as_of)
    gone = pairs["left_on"].notna() & (pairs["left_on"] <= today)
    in_window = pairs["held_on"].isna() | pairs["held_on"].between(opens, closes)
    conditions = [
        pairs["held"] & in_window,
        pairs["held"],
        (pairs["planned_day"] < 1) & (pairs["enrollment_date"] <= today),
        gone & (pairs["left_on"] < opens),
        gone,
        today < opens,
        today <= closes,
    ]
    choices = [DONE, DONE_OUT_OF_WINDOW, NOT_RECORDED, NOT_EXPECTED, MISSED, UPCOMING, DUE]
    # The first condition that holds decides (numpy.select), else overdue.
    pairs["status"] = np.select(conditions, choices, default=OVERDUE)
    return pairs[["usubjid", "site_id", "visit_num", "status"]]


def _by_site(expected: pd.DataFrame) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for site, rows in expected.groupby("site_id"):
        status = rows["status"]
        counts[str(site)] = {
            "done": int(status.isin([DONE, DONE_OUT_OF_WINDOW]).sum()),
            "due": int((status == DUE).sum()),
            "overdue": int((status == OVERDUE).sum()),
            "upcoming": int((status == UPCOMING).sum()),
            "subjects_overdue": int(rows.loc[status == OVERDUE, "usubjid"].nunique()),
            "subjects": int(rows["usubjid"].nunique()),
        }
    return counts


CASES = [
    (SEED_STUDY_ID, SEED_CUTOFF, 7, None),
    (SEED_STUDY_ID, dt.date(2025, 9, 15), 7, None),  # before the cut-off: later visits not held yet
    (SEED_STUDY_ID, SEED_CUTOFF, 3, None),
    (MULTI, dt.date(2025, 12, 31), 7, None),
    (MULTI, dt.date(2025, 10, 1), 14, None),
    (MULTI, dt.date(2025, 12, 31), 7, ("103", "104")),
]


@pytest.mark.parametrize(("study_id", "as_of", "window", "scope"), CASES)
def test_overdue_counts_by_site_equal_an_independent_computation(
    session: Session,
    demo_engine: Engine,
    study_id: str,
    as_of: dt.date,
    window: int,
    scope: SiteScope,
) -> None:
    expected = _by_site(
        _independent(demo_engine, study_id, as_of=as_of, window=window, scope=scope)
    )
    got = visits_by_site(session, study_id=study_id, scope=scope, as_of=as_of, window_days=window)
    columns = ["done", "due", "overdue", "upcoming", "subjects_overdue", "subjects"]
    assert got.set_index("site_id")[columns].to_dict("index") == expected


@pytest.mark.parametrize(("study_id", "as_of", "window", "scope"), CASES)
def test_every_visit_status_equals_an_independent_computation(
    session: Session,
    demo_engine: Engine,
    study_id: str,
    as_of: dt.date,
    window: int,
    scope: SiteScope,
) -> None:
    expected = _independent(demo_engine, study_id, as_of=as_of, window=window, scope=scope)
    schedules, total = subject_schedules(
        session,
        study_id=study_id,
        scope=scope,
        as_of=as_of,
        window_days=window,
        needing_action=False,
        limit=10_000,
    )
    derived = derive_visit_status(schedules, as_of=as_of, window_days=window)
    assert total == expected["usubjid"].nunique() == derived["usubjid"].nunique()
    key = ["usubjid", "visit_num"]
    got = derived.set_index(key)["status"].sort_index()
    assert got.to_dict() == expected.set_index(key)["status"].sort_index().to_dict()
    # The SQL's own status agrees, with missed and not expected as one "left the study".
    sql = derived["sql_status"].where(~derived["status"].isin([MISSED, NOT_EXPECTED]), "left")
    python = derived["status"].replace({DONE_OUT_OF_WINDOW: DONE, MISSED: "left"})
    python = python.replace({NOT_EXPECTED: "left"})
    assert (sql.replace({LEFT: "left"}) == python).all()


def test_the_seed_study_at_its_cut_off(session: Session) -> None:
    # The demo plants these (dashboard.demo.SEED_VISIT_DEVIATIONS): week 12 not held by two
    # subjects still on study, week 24 due for one, a week-4 visit held two weeks late, and a
    # completer who missed week 4.
    (site,) = visits_by_site(
        session, study_id=SEED_STUDY_ID, scope=None, as_of=SEED_CUTOFF
    ).to_dict("records")
    assert (site["overdue"], site["subjects_overdue"], site["due"], site["upcoming"]) == (
        2,
        2,
        1,
        3,
    )
    schedules, total = subject_schedules(
        session, study_id=SEED_STUDY_ID, scope=None, as_of=SEED_CUTOFF
    )
    assert total == 3  # needing action: the two overdue and the one due
    grid = schedule_grid(derive_visit_status(schedules, as_of=SEED_CUTOFF))
    assert grid["usubjid"].tolist() == [
        "NCT06466850-01-030",
        "NCT06466850-01-034",
        "NCT06466850-01-031",
    ]
    assert (
        grid.loc[0, "5 · WEEK 12"] == "OVERDUE" and grid.loc[2, "6 · WEEK 24 (FOLLOW-UP)"] == "DUE"
    )
    late = derive_visit_status(
        subject_visit_schedule(
            session,
            study_id=SEED_STUDY_ID,
            usubjid="NCT06466850-01-036",
            scope=None,
            as_of=SEED_CUTOFF,
        ),
        as_of=SEED_CUTOFF,
    ).set_index("visit")
    assert late.loc["WEEK 4", "status"] == DONE_OUT_OF_WINDOW
    assert late.loc["WEEK 4", "held_day"] == 29 + 14


def test_a_subject_outside_the_scope_has_no_schedule(session: Session) -> None:
    code = "DEMO-MULTI-104-0011"
    assert not subject_visit_schedule(
        session, study_id=MULTI, usubjid=code, scope=None, as_of=dt.date(2025, 12, 31)
    ).empty
    assert subject_visit_schedule(
        session, study_id=MULTI, usubjid=code, scope=("101",), as_of=dt.date(2025, 12, 31)
    ).empty


# -- the planned schedule from TV -------------------------------------------------------------------


def test_pilot_schedule_is_tv(pilot_db_url: str, shared_data: Path) -> None:
    import pyreadstat

    tv, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "cdiscpilot01" / "tv.xpt"))
    with Session(make_engine(pilot_db_url)) as session:
        schedule = planned_schedule(session, study_id="CDISCPILOT01")
    assert schedule["visit_num"].tolist() == sorted(tv["VISITNUM"].tolist())
    by_number = schedule.set_index("visit_num")
    for row in tv.to_dict("records"):
        planned = by_number.loc[row["VISITNUM"]]
        assert planned["visit"] == row["VISIT"]
        assert planned["start_rule"] == (row["TVSTRL"] or None)
        if pd.isna(row["VISITDY"]):
            assert pd.isna(planned["planned_day"])
        else:
            assert planned["planned_day"] == row["VISITDY"]
    # AE follow-up, retrieval and rash follow-up happen only when something else does.
    assert sorted(schedule.loc[schedule["is_conditional"], "visit_num"]) == [101.0, 201.0, 501.0]


def test_pilot_at_its_cut_off_has_no_overdue_visit(pilot_db_url: str) -> None:
    # Every randomized subject completed or discontinued before the 2015-03-31 cut-off: nothing
    # can be overdue, and what was not held is missed or not expected.
    with Session(make_engine(pilot_db_url)) as session:
        by_site = visits_by_site(
            session, study_id="CDISCPILOT01", scope=None, as_of=dt.date(2015, 3, 31)
        )
    assert by_site["subjects"].sum() == 254 and by_site["on_study"].sum() == 0
    assert by_site[["due", "overdue", "upcoming"]].to_numpy().sum() == 0


# -- the Enrollment page -----------------------------------------------------------------------------


def _enrollment(db_url: str, study: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(db_url, study, "enrollment.py", monkeypatch, timeout=90)


def _visit_tables(at: AppTest) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    by_site = next(d.value for d in at.dataframe if "Subjects on the schedule" in d.value.columns)
    grid = next((d.value for d in at.dataframe if "Day 1" in d.value.columns), None)
    return by_site, grid


def test_enrollment_page_visit_schedule(
    demo_db_url: str, demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _enrollment(demo_db_url, MULTI, monkeypatch)
    as_of = dt.date(2025, 12, 31)  # DEMO-MULTI's cut-off
    expected = _by_site(_independent(demo_engine, MULTI, as_of=as_of, window=7))
    by_site, grid = _visit_tables(at)
    shown = by_site.set_index("Site")
    assert shown["Overdue"].to_dict() == {s: v["overdue"] for s, v in expected.items()}
    assert shown["Due now"].to_dict() == {s: v["due"] for s, v in expected.items()}
    assert shown.index[0] == "104"  # the lagging site, most overdue visits first
    overdue = sum(v["overdue"] for v in expected.values())
    text = " ".join(m.value for m in at.markdown)
    assert f"{plural(overdue, 'visit')} overdue" in text
    # The per-subject list: everyone with a visit due or overdue, each code a Subject-page link.
    needing = _independent(demo_engine, MULTI, as_of=as_of, window=7)
    needing = needing[needing["status"].isin([DUE, OVERDUE])]
    assert grid is not None and len(grid) == needing["usubjid"].nunique()
    assert all(link.startswith(f"subject?study={MULTI}&subject=") for link in grid["usubjid"])
    # A wider window: fewer overdue visits, more due; the figures follow the setting.
    at.number_input(key="visit_window_days_input").set_value(21).run()
    assert not at.exception
    wider = _by_site(_independent(demo_engine, MULTI, as_of=as_of, window=21))
    by_site, _ = _visit_tables(at)
    shown = by_site.set_index("Site")
    assert shown["Overdue"].to_dict() == {s: v["overdue"] for s, v in wider.items()}
    assert shown["Due now"].to_dict() == {s: v["due"] for s, v in wider.items()}
    assert sum(v["overdue"] for v in wider.values()) < overdue
    # Every enrolled subject on the schedule, on request.
    at.toggle(key="enrollment_visits_needing_action").set_value(False).run()
    _, grid = _visit_tables(at)
    assert grid is not None and len(grid) == sum(v["subjects"] for v in wider.values())


def test_study_without_a_schedule_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_database_url(tmp_path, "tiny")
    import_sdtm(make_engine(url), write_package(tmp_path / "tiny"))  # no TV, no SV
    at = _enrollment(url, "TINY", monkeypatch)
    assert any("No planned visit schedule" in i.value for i in at.info)


def test_study_with_tv_but_no_sv_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = copy_of_base()
    tables["TV"] = [
        {"STUDYID": "TINY", "VISITNUM": 1, "VISIT": "DAY 1", "VISITDY": 1, "ARMCD": ""},
        {"STUDYID": "TINY", "VISITNUM": 2, "VISIT": "WEEK 4", "VISITDY": 29, "ARMCD": ""},
    ]
    url = new_database_url(tmp_path, "tiny")
    import_sdtm(make_engine(url), write_package(tmp_path / "tiny", tables))
    with Session(make_engine(url)) as session:
        assert planned_schedule(session, study_id="TINY")["visit"].tolist() == ["DAY 1", "WEEK 4"]
    at = _enrollment(url, "TINY", monkeypatch)
    assert any("No SV domain" in w.value for w in at.warning)
    # The Subject page of an enrolled subject says the same instead of calling every visit overdue.
    at.query_params["subject"] = "TINY-01-001"
    at.switch_page("../pages/subject.py").run()
    assert not at.exception
    assert any("No SV domain" in w.value for w in at.warning)
    assert not any("Held on study day" in d.value.columns for d in at.dataframe)
