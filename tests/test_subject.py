"""The Subject page: one subject's record equals that subject's rows in the SDTM datasets (the CDISC
pilot, read here with pyreadstat), the timeline's study days have no day 0, every listing's
subject codes link here, and bad input is a plain message."""

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest

from dashboard.charts.study_day_axis import study_day_ticks
from dashboard.charts.subject import subject_timeline_chart
from dashboard.db import make_engine
from dashboard.metrics.subject import identity_facts, observed_until, timeline_events
from dashboard.models import Subject
from dashboard.queries.subject import subject_codes, subject_record
from dashboard.results.subject import MILESTONE, VISIT_OVERDUE
from dashboard.ui.links import DISPLAY_CODE, subject_links, subject_url
from dashboard.ui.shell import SITES_KEY
from tests.conftest import PROJECT_ROOT

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PILOT = "CDISCPILOT01"
# Discontinued for an AE with three AEs (one ongoing); completed with two AEs; 22 AEs.
PILOT_SUBJECTS = ("01-701-1023", "01-701-1015", "01-701-1302")


def _xpt(shared_data: Path, domain: str, usubjid: str) -> pd.DataFrame:
    import pyreadstat

    frame, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "cdiscpilot01" / f"{domain}.xpt"))
    return frame[frame["USUBJID"] == usubjid].reset_index(drop=True)


def _text(value: Any) -> str | None:
    """A value as the model keeps text: blanks and missing values are None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) or None


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _records(frame: pd.DataFrame, columns: dict[str, str], *, key: str) -> list[tuple[Any, ...]]:
    """Rows of ``frame`` as tuples of the ``columns`` (name -> kind: text or number), in ``key``
    order, blanks as None."""
    convert = {"text": _text, "number": _number}
    rows = [
        tuple(convert[kind](row[name]) for name, kind in columns.items())
        for row in frame.to_dict("records")
    ]
    index = list(columns).index(key)
    return sorted(rows, key=lambda r: (r[index] is None, r[index]))


AE = {
    "AESEQ": "number",
    "AETERM": "text",
    "AEDECOD": "text",
    "AEBODSYS": "text",
    "AESEV": "text",
    "AESER": "text",
    "AEREL": "text",
    "AEOUT": "text",
    "AESTDTC": "text",
    "AEENDTC": "text",
    "AESTDY": "number",
    "AEENDY": "number",
}
DS = {
    "DSSEQ": "number",
    "DSCAT": "text",
    "DSDECOD": "text",
    "DSTERM": "text",
    "EPOCH": "text",
    "DSSTDTC": "text",
    "DSSTDY": "number",
}
SV = {
    "VISITNUM": "number",
    "VISIT": "text",
    "VISITDY": "number",
    "SVSTDTC": "text",
    "SVSTDY": "number",
}
# The page's headings of the same variables (and of the study days the page works out itself,
# compared with the pilot's own --STDY / --ENDY).
AE_SHOWN = {
    "AESEQ": "AESEQ",
    "AETERM": "Term (AETERM)",
    "AEDECOD": "Preferred term (AEDECOD)",
    "AEBODSYS": "System organ class (AEBODSYS)",
    "AESEV": "Severity (AESEV)",
    "AESER": "Serious (AESER)",
    "AEREL": "Relationship (AEREL)",
    "AEOUT": "Outcome (AEOUT)",
    "AESTDTC": "Start (AESTDTC)",
    "AEENDTC": "End (AEENDTC)",
    "AESTDY": "Start day (AESTDY)",
    "AEENDY": "End study day",
}
DS_SHOWN = {
    "DSSEQ": "DSSEQ",
    "DSCAT": "Category (DSCAT)",
    "DSDECOD": "Term (DSDECOD)",
    "DSTERM": "Verbatim (DSTERM)",
    "EPOCH": "Epoch (EPOCH)",
    "DSSTDTC": "Date (DSSTDTC)",
    "DSSTDY": "Study day",
}
SV_SHOWN = {
    "VISITNUM": "VISITNUM",
    "VISIT": "Visit (VISIT)",
    "VISITDY": "Planned day (VISITDY)",
    "SVSTDTC": "Date (SVSTDTC)",
    "SVSTDY": "Study day",
}


def _open(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    study: str | None,
    subject: str | None,
    sites: list[str] | None = None,
) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=90)
    if study:
        at.query_params["study"] = study
    if subject:
        at.query_params["subject"] = subject
    at.run()
    if sites:
        at.multiselect(key=SITES_KEY).set_value(sites).run()
    at.switch_page("../pages/subject.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _listing(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.parametrize("usubjid", PILOT_SUBJECTS)
def test_record_equals_the_pilot_rows(pilot_db_url: str, shared_data: Path, usubjid: str) -> None:
    with Session(make_engine(pilot_db_url)) as session:
        record = subject_record(session, study_id=PILOT, usubjid=usubjid, scope=None)
    assert record is not None
    (dm,) = _xpt(shared_data, "dm", usubjid).to_dict("records")
    assert (record.site_id, record.arm, record.actual_arm, record.sex, record.age) == (
        dm["SITEID"],
        dm["ARM"],
        dm["ACTARM"],
        dm["SEX"],
        dm["AGE"],
    )
    assert (record.enrollment_dtc, record.consent_dtc, record.race, record.ethnicity) == (
        _text(dm["RFSTDTC"]),
        _text(dm["RFICDTC"]),
        dm["RACE"],
        dm["ETHNIC"],
    )
    ae = record.adverse_events
    mine = {
        "AESEQ": ae["seq"],
        "AETERM": ae["term"],
        "AEDECOD": ae["decoded_term"],
        "AEBODSYS": ae["body_system"],
        "AESEV": ae["severity"],
        "AESER": ae["serious"],
        "AEREL": ae["relationship"],
        "AEOUT": ae["outcome"],
        "AESTDTC": ae["start_dtc"],
        "AEENDTC": ae["end_dtc"],
        "AESTDY": ae["start_day"],
    }
    source = {k: v for k, v in AE.items() if k != "AEENDY"}
    assert _records(pd.DataFrame(mine), source, key="AESEQ") == _records(
        _xpt(shared_data, "ae", usubjid), source, key="AESEQ"
    )
    ds = record.dispositions
    mine = {
        "DSSEQ": ds["seq"],
        "DSCAT": ds["category"],
        "DSDECOD": ds["term"],
        "DSTERM": ds["verbatim"],
        "EPOCH": ds["epoch"],
        "DSSTDTC": ds["dtc"],
    }
    source = {k: v for k, v in DS.items() if k != "DSSTDY"}
    assert _records(pd.DataFrame(mine), source, key="DSSEQ") == _records(
        _xpt(shared_data, "ds", usubjid), source, key="DSSEQ"
    )
    sv = record.visits
    mine = {"VISITNUM": sv["visit_num"], "VISIT": sv["visit"], "SVSTDTC": sv["dtc"]}
    source = {"VISITNUM": "number", "VISIT": "text", "SVSTDTC": "text"}
    assert _records(pd.DataFrame(mine), source, key="VISITNUM") == _records(
        _xpt(shared_data, "sv", usubjid), source, key="VISITNUM"
    )


def test_page_listings_equal_the_pilot_rows(
    pilot_db_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usubjid = "01-701-1023"
    at = _open(pilot_db_url, monkeypatch, study=PILOT, subject=usubjid)
    assert at.subheader[0].value == usubjid
    (dm,) = _xpt(shared_data, "dm", usubjid).to_dict("records")
    shown = {m.label: m.value for m in at.metric}
    assert shown == {
        "Site": dm["SITEID"],
        "Arm": dm["ARM"],
        "Status": "Discontinued",  # DS: DISPOSITION EVENT ADVERSE EVENT
        "Age": f"{dm['AGE']:g} years",
        "Sex": dm["SEX"],
    }
    assert f"day 1 (RFSTDTC) {dm['RFSTDTC']}" in at.caption[1].value
    # Every listing equals the subject's rows; the study days the page works out equal the
    # pilot's own --STDY/--ENDY (SDTM counts no day 0 either).
    for domain, variables, headings, key, unique in (
        ("ae", AE, AE_SHOWN, "AESEQ", "AETERM"),
        ("ds", DS, DS_SHOWN, "DSSEQ", "DSDECOD"),
        ("sv", SV, SV_SHOWN, "VISITNUM", "SVSTDTC"),  # the schedule has a VISITNUM column too
    ):
        listing = _listing(at, headings[unique])
        page = listing.rename(columns={v: k for k, v in headings.items()})
        kept = {k: v for k, v in variables.items() if k in page.columns}
        # A column blank in every row is left out; the data's own column is then blank too.
        for name in set(variables) - set(kept):
            assert _xpt(shared_data, domain, usubjid)[name].map(_text).isna().all(), name
        assert _records(page, kept, key=key) == _records(
            _xpt(shared_data, domain, usubjid), kept, key=key
        ), domain


def test_pilot_study_days_have_no_day_zero(pilot_db_url: str, shared_data: Path) -> None:
    # Over every visit of every pilot subject: the pilot's SVSTDY and the page's study day agree,
    # before and after day 1.
    import pyreadstat

    from dashboard.metrics.subject import with_study_days

    sv, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "cdiscpilot01" / "sv.xpt"))
    engine = make_engine(pilot_db_url)
    mine = pd.read_sql_query(
        "SELECT s.usubjid, s.enrollment_date, v.visit_num, v.date FROM visit v "
        "JOIN subject s ON s.id = v.subject_pk WHERE s.enrollment_date IS NOT NULL",
        engine,
        parse_dates=["enrollment_date", "date"],
    )
    days = pd.concat(
        [
            with_study_days(
                rows, day_one=rows["enrollment_date"].iloc[0].date(), dates={"date": "day"}
            )
            for _, rows in mine.groupby("usubjid")
        ]
    )
    merged = days.merge(
        sv.rename(columns={"USUBJID": "usubjid", "VISITNUM": "visit_num"}),
        on=["usubjid", "visit_num"],
    )
    dated = sv[sv["SVSTDY"].notna()]
    assert len(merged) == len(dated) > 3000  # every visit the pilot gives a study day
    assert (merged["day"].astype(float) == merged["SVSTDY"]).all()
    assert (merged["SVSTDY"] == -1).any() and not (merged["SVSTDY"] == 0).any()


def test_screen_failure_shows_the_criterion_wording(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "NCT06466850-01-017"  # failed INCL02 (BMI)
    expected = pd.read_sql_query(
        "SELECT c.code, c.text, e.result FROM eligibilityfinding e "
        "JOIN criterion c ON c.id = e.criterion_pk JOIN subject s ON s.id = e.subject_pk "
        f"WHERE s.usubjid = '{code}'",
        session.connection(),
    )
    at = _open(demo_db_url, monkeypatch, study="NCT06466850", subject=code)
    shown = _listing(at, "Criterion wording (IETEST)")
    assert (
        shown[
            ["Criterion (IETESTCD)", "Criterion wording (IETEST)", "Result (IEORRES)"]
        ].values.tolist()
        == expected.values.tolist()
    )
    assert shown["Criterion wording (IETEST)"].tolist() == [
        "Body mass index (BMI) between 21.5 and 29.5"
    ]
    assert {m.label: m.value for m in at.metric}["Status"] == "Screen failure"
    assert any("a screen failure has none" in i.value for i in at.info)


def test_enrolled_subject_shows_its_visit_schedule(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, monkeypatch, study="NCT06466850", subject="NCT06466850-01-030")
    schedule = _listing(at, "Held on study day")
    assert schedule.set_index("Visit")["Status"].to_dict() == {
        "SCREENING": "done",
        "DAY 1 (INJECTION)": "done",
        "WEEK 1": "done",
        "WEEK 4": "done",
        "WEEK 12": "overdue",
        "WEEK 24 (FOLLOW-UP)": "done",
    }
    assert any("1 visit overdue and 0 due on 30 Nov 2025" in w.value for w in at.warning)
    # The window is a setting: at ±60 days week 12 (due 1 Sep 2025) is still open on 30 Nov.
    at.number_input(key="visit_window_days_input").set_value(90).run()
    assert not at.exception
    schedule = _listing(at, "Held on study day")
    assert schedule.set_index("Visit").loc["WEEK 12", "Status"] == "due"


@pytest.mark.parametrize(
    ("study", "subject", "sites", "message"),
    [
        ("NCT06466850", "NOT-A-SUBJECT", None, "No subject **NOT-A-SUBJECT** in study NCT06466850"),
        # A subject of site 104 with only site 101 in scope: the same message as an unknown code.
        (
            "DEMO-MULTI",
            "DEMO-MULTI-104-0011",
            ["101"],
            "No subject **DEMO-MULTI-104-0011** at the selected sites of study DEMO-MULTI",
        ),
        # No ?study: the default study, where the pilot's code is unknown.
        (None, "01-701-1015", None, "No subject **01-701-1015** in study NCT06466850"),
    ],
)
def test_bad_links_are_a_plain_message(
    demo_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    study: str | None,
    subject: str,
    sites: list[str] | None,
    message: str,
) -> None:
    at = _open(demo_db_url, monkeypatch, study=study, subject=subject, sites=sites)
    assert any(message in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.dataframe and not at.metric


def test_without_a_subject_the_picker_finds_one(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, monkeypatch, study="DEMO-MULTI", subject=None)
    assert any("Pick a subject" in i.value for i in at.info)
    at.text_input(key="subject_search").set_value("104-0011").run()
    picker = next(s for s in at.selectbox if s.label.startswith("Subject ("))
    assert picker.options == ["DEMO-MULTI-104-0011"]
    picker.set_value("DEMO-MULTI-104-0011").run()
    assert not at.exception
    assert at.subheader[0].value == "DEMO-MULTI-104-0011"
    assert at.query_params["subject"] in (["DEMO-MULTI-104-0011"], "DEMO-MULTI-104-0011")


def test_subject_codes_search(session: Session) -> None:
    codes, total = subject_codes(session, study_id="DEMO-MULTI", scope=None, contains="104-00")
    assert total == len(codes) and all("104-00" in c for c in codes)
    _, everyone = subject_codes(session, study_id="DEMO-MULTI", scope=None, limit=5)
    # Every subject of the study (320 drawn, and 30 more screen failures at the site planted
    # with a high screen-failure rate), counted apart.
    counted = session.exec(
        select(func.count()).select_from(Subject).where(col(Subject.study_id) == "DEMO-MULTI")
    ).one()
    assert everyone == counted == 350
    # A LIKE wildcard in the search is a plain character.
    assert subject_codes(session, study_id="DEMO-MULTI", scope=None, contains="%") == ([], 0)
    only, _ = subject_codes(session, study_id="DEMO-MULTI", scope=("101",))
    assert only and all(c.startswith("DEMO-MULTI-101-") for c in only)


# -- the timeline -------------------------------------------------------------------------------------

DAY_ONE = dt.date(2025, 3, 10)


def _events(**changes: Any) -> pd.DataFrame:
    empty = {
        "dispositions": pd.DataFrame(
            columns=["seq", "category", "term", "verbatim", "epoch", "dtc", "date"]
        ),
        "exposures": pd.DataFrame(
            columns=["treatment", "dose", "unit", "route", "start_date", "end_date"]
        ),
        "visits": pd.DataFrame(columns=["visit_num", "visit", "date"]),
        "adverse_events": pd.DataFrame(
            columns=[
                "seq",
                "term",
                "decoded_term",
                "severity",
                "serious",
                "start_dtc",
                "end_dtc",
                "start_date",
                "end_date",
            ]
        ),
    }
    arguments: dict[str, Any] = {
        "day_one": DAY_ONE,
        "screening_date": dt.date(2025, 2, 24),
        "consent_dtc": "2025-02-24",
        "first_dose_date": DAY_ONE,
        **empty,
    }
    arguments.update(changes)
    return timeline_events(**arguments)


def test_timeline_places_events_on_study_days() -> None:
    aes = pd.DataFrame(
        [
            # The day before day 1 is day -1; a one-day AE covers one day.
            [
                1,
                "HEADACHE",
                "Headache",
                "MILD",
                "N",
                "2025-03-09",
                "2025-03-09",
                dt.date(2025, 3, 9),
                dt.date(2025, 3, 9),
            ],
            [
                2,
                "APPENDICITIS",
                "Appendicitis",
                "SEVERE",
                "Y",
                "2025-04-01",
                "",
                dt.date(2025, 4, 1),
                None,
            ],
        ],
        columns=[
            "seq",
            "term",
            "decoded_term",
            "severity",
            "serious",
            "start_dtc",
            "end_dtc",
            "start_date",
            "end_date",
        ],
    )
    events = _events(adverse_events=aes, until=dt.date(2025, 4, 20)).set_index("lane")
    headache, appendicitis = events.loc["AE 1 Headache"], events.loc["AE 2 Appendicitis"]
    assert (headache["start_day"], headache["end_day"]) == (-1, -1)
    assert (headache["x_start"], headache["x_end"]) == (-1, 0)
    assert headache["category"] == "Mild" and not headache["serious"]
    # Ongoing: runs to ``until``; serious is marked.
    assert appendicitis["end_date"] == dt.date(2025, 4, 20) and appendicitis["serious"]
    assert (appendicitis["start_day"], appendicitis["end_day"]) == (23, 42)
    milestones = events.loc["Milestones"]
    assert milestones["label"].tolist() == ["Screening", "Day 1 (RFSTDTC)"]
    assert milestones["start_day"].tolist() == [-14, 1]
    assert set(milestones["category"]) == {MILESTONE}


def test_timeline_of_a_subject_without_day_one_is_on_dates() -> None:
    events = _events(day_one=None, first_dose_date=None)
    assert events["label"].tolist() == ["Screening"]
    assert events["start_day"].isna().all() and events["x_start"].isna().all()
    chart = subject_timeline_chart(events, day_one=None, axis="day").to_dict()
    assert any(layer["encoding"]["x"]["type"] == "temporal" for layer in chart["layer"])


def test_timeline_chart_labels_study_days_without_day_zero() -> None:
    schedule = pd.DataFrame(
        [["WEEK 4", 29, "overdue", dt.date(2025, 3, 31), dt.date(2025, 4, 14)]],
        columns=["visit", "planned_day", "status", "opens", "closes"],
    )
    events = _events(schedule=schedule)
    assert events.loc[events["kind"] == "window", "category"].tolist() == [VISIT_OVERDUE]
    spec = subject_timeline_chart(events, day_one=DAY_ONE).to_dict()
    x = next(layer["encoding"]["x"] for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    assert x["axis"]["labelExpr"] == "datum.value >= 0 ? datum.value + 1 : datum.value"
    # Positions are days from day 1; a label is the position + 1 from day 1 on: round study days,
    # day 1 marked, never a day 0.
    ticks = study_day_ticks(-14, 40)
    assert [p + 1 if p >= 0 else p for p in ticks] == [-10, -5, 1, *range(5, 41, 5)]
    labels = [p + 1 if p >= 0 else p for p in study_day_ticks(-30, 200)]
    assert 0 not in labels and 1 in labels


def test_identity_and_observation_end() -> None:
    facts = identity_facts(
        site_id="701",
        arm="Xanomeline High Dose",
        actual_arm="Xanomeline Low Dose",
        population="ENROLLED",
        status="COMPLETED",
        age=77.0,
        age_unit="YEARS",
        sex="F",
    )
    assert facts == {
        "Site": "701",
        "Arm": "Xanomeline High Dose (treated: Xanomeline Low Dose)",
        "Status": "Completed",
        "Age": "77 years",
        "Sex": "F",
    }
    ds = pd.DataFrame({"date": [dt.date(2025, 1, 1), dt.date(2025, 6, 1)]})
    cutoff = dt.date(2025, 11, 30)
    assert observed_until(status="COMPLETED", dispositions=ds, cutoff=cutoff) == dt.date(2025, 6, 1)
    assert observed_until(status="ONGOING", dispositions=ds, cutoff=cutoff) == cutoff


# -- links ------------------------------------------------------------------------------------------


def test_subject_links_show_the_code() -> None:
    url = subject_url("NCT06466850", "NCT06466850-01-017")
    assert url == "subject?study=NCT06466850&subject=NCT06466850-01-017"
    # The display rule Streamlit applies (a JS regex; Python's reads it the same way).
    match = re.search(DISPLAY_CODE, subject_url("S 1", "A&B/7"))
    assert match is not None
    from urllib.parse import unquote

    assert unquote(match.group(1)) == "A&B/7"
    frame = pd.DataFrame({"usubjid": ["X-1", None], "site_id": ["01", "02"]})
    shown, config = subject_links(frame, study_id="S")
    assert shown["usubjid"].tolist() == ["subject?study=S&subject=X-1", None]
    assert frame["usubjid"].iloc[0] == "X-1"  # the frame for download keeps its codes
    assert config["usubjid"]["type_config"]["display_text"] == DISPLAY_CODE


def test_screen_failure_drilldown_codes_link_to_the_subject_page(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["study"] = "NCT06466850"
    at.run()
    at.switch_page("../pages/screen_failures.py").run()
    at.session_state["screen_failures_criterion"] = ("INCL02", "")  # as a bar click leaves it
    at.run()
    assert not at.exception
    listed = next(d.value for d in at.dataframe if "BMI" in d.value.columns)
    assert len(listed) == 5
    assert "subject?study=NCT06466850&subject=NCT06466850-01-017" in listed["usubjid"].tolist()
    deviations = next(d.value for d in at.dataframe if "Rule" in d.value.columns)
    assert all(u.startswith("subject?study=NCT06466850&subject=") for u in deviations["usubjid"])
