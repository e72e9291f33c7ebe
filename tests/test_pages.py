"""An AppTest per page: no exception, and the headline figures equal the query layer's."""

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine, session_scope
from dashboard.metrics.baseline import format_mean_sd, weighted_mean_sd
from dashboard.models import Study
from dashboard.queries.adverse_events import count_adverse_events
from dashboard.queries.baseline import demographic_counts
from dashboard.queries.enrollment import population_counts
from dashboard.queries.safety_counts import changes_since
from dashboard.queries.screen_failures import failed_subject_counts
from dashboard.queries.studies import data_cuts
from dashboard.ui.shell import CONTEXT_KEY, SITES_KEY, PageContext
from dashboard.ui.site_risk import flag_text
from dashboard.views.format import plural
from dashboard.views.site_risk import SiteRiskOptions, build_site_risk
from tests.conftest import PROJECT_ROOT
from tests.databases import read_sql

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PAGES = {
    "overview": "../pages/overview.py",
    "enrollment": "../pages/enrollment.py",
    "screen-failures": "../pages/screen_failures.py",
    "baseline": "../pages/baseline.py",
    "adverse-events": "../pages/adverse_events.py",
    "labs": "../pages/labs.py",
    "site-risk": "../pages/site_risk.py",
}


def open_page(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    study: str | None = None,
    before: Callable[[AppTest], None] | None = None,
) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    if study:
        at.query_params["study"] = study
    at.run()
    if before:
        before(at)
        at.run()
    if page != "overview":
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def text_of(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.info, *at.warning, *at.title)]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI"])
def test_every_page_runs(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str, study: str
) -> None:
    at = open_page(demo_db_url, monkeypatch, page, study)
    assert at.session_state["study"] == study
    assert at.query_params["study"] == [study] or at.query_params["study"] == study
    assert "Synthetic demo data" in text_of(at)
    # The freshness line names the latest cut by the study's own count ("cut 2 of 2").
    assert re.search(r"data cut 2 of 2, cut-off \d\d \w+ \d{4}", text_of(at))


def test_overview_figures(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "overview", "NCT06466850")
    counts = population_counts(session, study_id="NCT06466850", scope=None)
    ae = count_adverse_events(session, study_id="NCT06466850", scope=None)
    shown = metrics(at)
    assert shown["Screened"] == str(counts.screened) == "36"
    assert shown["Screen failures"] == str(counts.screen_failures) == "16"
    assert shown["Enrolled / target"] == f"{counts.enrolled} / 20" == "20 / 20"
    assert shown["Subjects with an AE"] == str(ae.subjects)
    assert at.title[0].value == "Mesenchymal Stem Cells Derived Exosomes in Osteoarthritis Patients"
    text = text_of(at)
    for fact in ("NCT06466850", "Isfahan University of Medical Sciences", "45 to 75 years"):
        assert fact in text
    # "Since cut 1": the query layer's changes against the cut before the latest.
    first, _latest = data_cuts(session, study_id="NCT06466850")
    changes = changes_since(session, study_id="NCT06466850", scope=None, since_cut_id=first.id)
    since = at.dataframe[0].value
    assert dict(zip(since["What"], since["Count"], strict=True)) == {
        "New subjects screened": changes.new_subjects,
        "of whom screen failures": changes.new_screen_failures,
        "of whom enrolled": changes.new_enrolled,
        "Earlier subjects with changes": changes.changed_subjects,
        "New adverse events": changes.new_adverse_events,
        "New serious adverse events": changes.new_serious_adverse_events,
        "Earlier adverse events with changes": changes.changed_adverse_events,
    }
    assert shown["Screened"] == "36" and changes.new_subjects == 12


def test_enrollment_figures(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "enrollment", "DEMO-MULTI")
    counts = population_counts(session, study_id="DEMO-MULTI", scope=None)
    shown = metrics(at)
    assert shown["Enrolled / target"] == f"{counts.enrolled} / 304"
    assert shown["Screen-failure rate"] == f"{100 * counts.screen_failures / counts.screened:.0f}%"
    assert len(at.get("vega_lite_chart")) == 3  # accrual, the forecast bands (10 sites), funnel


def test_screen_failure_figures(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "screen-failures", "NCT06466850")
    shown = metrics(at)
    assert shown["Screen failures"] == "16"
    assert shown["Screen-failure rate"] == "44%"
    reasons = failed_subject_counts(session, study_id="NCT06466850", scope=None)
    assert shown["Failed more than one criterion"] == str(reasons["more_than_one"]) == "3"
    table = at.dataframe[0].value
    assert table["Code"].tolist()[:3] == ["INCL01", "INCL02", "INCL03"]
    assert dict(zip(table["Code"], table["Subjects"], strict=True))["EXCL03"] == 0
    # Why the bars do not add up is behind the caption's help icon.
    helps = " ".join(str(c.proto.help) for c in at.caption)
    assert "do not add up to the 16 screen failures" in helps


def test_baseline_figures(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "baseline", "NCT06466850")
    demographics = demographic_counts(session, study_id="NCT06466850", scope=None)
    mean, sd = weighted_mean_sd(demographics["age"], demographics["subjects"])
    female = int(demographics.loc[demographics["sex"] == "F", "subjects"].sum())
    shown = metrics(at)
    assert shown["Enrolled"] == "20"
    assert shown["Age, mean (SD)"] == format_mean_sd(mean, sd)
    assert shown["Female"] == f"{female} ({100 * female / 20:.0f}%)"
    table = at.dataframe[0].value
    assert "Kellgren-Lawrence Grade, left knee" in table["Characteristic"].tolist()
    assert "Exosome (n=20)" in table.columns and "Overall (n=20)" not in table.columns  # one arm


def test_adverse_event_figures(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(demo_db_url, monkeypatch, "adverse-events", "NCT06466850")
    shown = metrics(at)
    assert shown["Subjects with an AE"] == "14 (70%)"
    assert shown["AE events"] == "17"
    assert shown["Subjects with an SAE"] == "1 (5%)"
    assert shown["SAE events"] == "1"


@pytest.mark.parametrize("method", ["gsm", "robust"])
def test_site_risk_flag_table(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    at = open_page(demo_db_url, monkeypatch, "site-risk", "DEMO-MULTI")
    if method != "gsm":
        at.radio(key="site_risk_method").set_value(method).run()
        assert not at.exception
    context = at.session_state[CONTEXT_KEY]
    assert isinstance(context, PageContext)
    expected = build_site_risk(
        session,
        context.view,
        SiteRiskOptions(method=method),  # type: ignore[arg-type]
    )
    assert metrics(at) == {m.label: str(m.value) for m in expected.metrics}
    drawn = next(d.value for d in at.dataframe if "Risk score" in d.value.columns)
    shown: pd.DataFrame = getattr(drawn, "data", drawn)  # drawn as a Styler
    assert shown["Site"].tolist() == expected.flag_table["Site"].tolist()
    flags = [c for c in expected.flag_table.columns if c not in ("Site", "Risk score")]
    # The flags written as text ("+1", "0", "–" for a KRI not scored; a grid would write a
    # missing number as "None"), the risk score a number.
    written = expected.flag_table.astype(object).copy()
    for column in flags:
        written[column] = [flag_text(v) for v in expected.flag_table[column]]
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), written, check_dtype=False)
    for value, text in ((-2, "-2"), (1, "+1"), (0, "0"), (None, "–")):
        assert flag_text(value) == text
    assert len(at.get("vega_lite_chart")) >= 1  # the funnel plot
    # A site picked lists its KRI rows and its subjects.
    site = str(expected.flag_table["Site"].iloc[0])
    at.selectbox(key="site_risk_site").set_value(site).run()
    assert not at.exception
    assert any(f"Site {site}" == t.value for t in at.text)
    assert any("Score" in d.value.columns for d in at.dataframe)


def test_site_risk_single_site_study(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(demo_db_url, monkeypatch, "site-risk", "NCT06466850")
    assert "One site: nothing to compare with" in text_of(at)
    assert not any("Risk score" in d.value.columns for d in at.dataframe)
    assert "Quality tolerance limits" in [s.value for s in at.subheader]


def test_site_filter_scopes_every_figure(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pick_sites(at: AppTest) -> None:
        at.multiselect(key=SITES_KEY).set_value(["101", "105"])

    at = open_page(demo_db_url, monkeypatch, "screen-failures", "DEMO-MULTI", before=pick_sites)
    counts = population_counts(session, study_id="DEMO-MULTI", scope=("101", "105"))
    assert metrics(at)["Screen failures"] == str(counts.screen_failures)
    assert "sites: 101, 105" in text_of(at)
    # The filter is kept when moving to another page.
    at.switch_page(PAGES["adverse-events"]).run()
    assert not at.exception
    ae = count_adverse_events(session, study_id="DEMO-MULTI", scope=("101", "105"))
    assert metrics(at)["AE events"] == str(ae.events)


def test_unknown_study_in_link_falls_back(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "overview", "NOT-A-STUDY")
    assert "NOT-A-STUDY** is not in this database" in text_of(at)
    assert at.session_state["study"] == "NCT06466850"


def test_empty_database_says_what_to_do(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "No study in the database yet" in text_of(at)


def test_unreadable_database_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.db").write_bytes(b"this is not a database")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'broken.db'}")  # a file, so SQLite
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "cannot be read" in at.error[0].value


@pytest.mark.parametrize("page", list(PAGES))
def test_study_without_subjects(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    with session_scope(make_engine(empty_db_url)) as db:
        db.add(Study(study_id="REG-ONLY", title="Registry record only", planned_enrollment=40))
    at = open_page(empty_db_url, monkeypatch, page, "REG-ONLY")
    assert "has no subjects yet" in text_of(at)
    assert "no data cut loaded" in text_of(at)


def test_import_page_lists_the_data_cuts(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(demo_db_url, monkeypatch, "overview", "NCT06466850")
    at.switch_page("../pages/data_import.py").run()
    assert not at.exception
    cuts = at.dataframe[0].value
    assert cuts["Cut"].tolist() == [2, 1]
    assert cuts["Cut-off"].astype(str).tolist() == ["2025-11-30", "2025-04-30"]
    assert "Data cuts of NCT06466850" in [s.value for s in at.subheader]


def test_import_page_opens_on_an_empty_database(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("../pages/data_import.py").run()
    assert not at.exception
    assert at.title[0].value == "Import data"
    assert "SDTM package" in [s.value for s in at.subheader]


@pytest.mark.parametrize("page", ["overview", "enrollment"])
@pytest.mark.parametrize("chosen", [("101",), ("102", "105")])
def test_a_site_filter_compares_with_the_sites_own_targets(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str, chosen: tuple[str, ...]
) -> None:
    """With some sites chosen, "Enrolled / target" counts their subjects against the sum of their
    own targets (pandas on the site and subject tables), not the study's."""
    engine = make_engine(demo_db_url)
    sites = read_sql("SELECT id, site_id, planned_enrollment FROM site", engine)
    sites = sites[sites["site_id"].isin(chosen)]
    subjects = read_sql("SELECT site_pk, population FROM subject", engine)
    enrolled = int(
        ((subjects["population"] == "ENROLLED") & subjects["site_pk"].isin(sites["id"])).sum()
    )
    target = int(sites["planned_enrollment"].sum())
    assert sites["planned_enrollment"].notna().all() and target > 0

    def choose(at: AppTest) -> None:
        at.session_state[SITES_KEY] = list(chosen)

    at = open_page(demo_db_url, monkeypatch, page, "DEMO-MULTI", before=choose)
    assert metrics(at)["Enrolled / target"] == f"{enrolled} / {target}"


def test_target_in_scope() -> None:
    from dashboard.metrics.enrollment import target_in_scope

    sites = pd.DataFrame({"site_id": ["1", "2", "3"], "planned_enrollment": [10, 20, None]})
    assert target_in_scope(300, sites, None) == 300
    assert target_in_scope(300, sites, ("1", "2")) == 30
    assert target_in_scope(300, sites, ("1", "3")) is None  # site 3 has no target
    assert target_in_scope(300, sites, ("9",)) is None
    assert target_in_scope(None, sites, None) is None


def test_overview_says_where_to_look(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page(demo_db_url, monkeypatch, "overview", "DEMO-MULTI")
    context = at.session_state[CONTEXT_KEY]
    assert isinstance(context, PageContext)
    risk = build_site_risk(session, context.view, SiteRiskOptions())
    figures = {m.label: m for m in risk.metrics}
    assert "Where to look" in [s.value for s in at.subheader]
    links = [m.value for m in at.markdown if "(site-risk?study=DEMO-MULTI)" in m.value]
    assert len(links) == 2
    red, amber = figures["Red-flag sites"], figures["Amber-only sites"]
    sites = plural(int(red.value), "site")
    assert f"{sites} with a red flag, {amber.value} with an amber flag only" in links[0]
    assert str(figures["QTLs crossed"].value) in links[1]
