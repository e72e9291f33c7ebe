"""Blinding (DESIGN.md security model, issue #9 part 3): in a blinded study only an unblinded user
sees arms; everyone else sees pooled figures, on every page, download and CLI call.

The CDISC pilot is double blind (TS TBLIND). What a blinded user must never meet is any of its arm
names or codes: they are looked for in every element AppTest renders (each element's serialized
protobuf, which carries dataframes' Arrow bytes and charts' Vega-Lite specs and data), in every
loader's answer and in every download.
"""

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.elements.widgets.button import ButtonMixin
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from dashboard import access
from dashboard.cli import app
from dashboard.db import make_engine, session_scope
from dashboard.metrics.blinding import (
    POOLED,
    drop_arm_columns,
    pool_arms,
    pool_numeric,
    pool_reasons,
    pool_safety_summary,
    pool_term_incidence,
)
from dashboard.results.adverse_events import SafetySummary, TermIncidence
from dashboard.results.studies import StudyInfo
from dashboard.ui import ae_drilldown, loaders, views
from dashboard.ui.ae_picks import EventPick
from dashboard.views.context import ViewContext
from tests.access_support import readable
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database

PILOT = "CDISCPILOT01"
SEED = "NCT06466850"
BLINDED = "blinded.sponsor@pharma.example"
UNBLINDED = "unblinded.sponsor@pharma.example"
# The pilot's arms (ARM) and arm codes (ARMCD): none may reach a blinded user.
ARM_NAMES = ("Placebo", "Xanomeline High Dose", "Xanomeline Low Dose", "Pbo", "Xan_Hi", "Xan_Lo")
APP = str(PROJECT_ROOT / "dashboard" / "app.py")
SUBJECT_PAGE = "../pages/subject.py"
SUBJECT = "01-701-1015"  # a pilot subject on Placebo (ARM, ACTARM)
AUTH_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
        "client_id": "study-monitor",
        "client_secret": "not-a-secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
}


# -- pure pooling ---------------------------------------------------------------------------------


def test_pool_arms_sums_counts_over_arms_keeping_the_other_keys() -> None:
    frame = pd.DataFrame(
        {
            "arm": ["A", "A", "B", "B", "C"],
            "rank": [1, 2, 1, 3, 2],
            "subjects": [4, 1, 2, 5, 7],
        }
    )
    pooled = pool_arms(frame, counts=["subjects"])
    expected = frame.groupby("rank")["subjects"].sum()  # independent: pandas by rank
    assert list(pooled.columns) == ["arm", "rank", "subjects"]
    assert set(pooled["arm"]) == {POOLED}
    assert pooled.set_index("rank")["subjects"].sort_index().to_dict() == expected.to_dict()
    assert pooled["subjects"].sum() == frame["subjects"].sum()


def test_a_count_null_in_every_arm_stays_null() -> None:
    counts = pd.DataFrame(
        {
            "arm": ["A", "B", "A", "B"],
            "category": ["any", "any", "discontinued", "discontinued"],
            "subjects": [3, 4, 1, 2],
            "events": [10.0, 6.0, None, None],
        }
    )
    summary = SafetySummary(
        counts=counts,
        discontinuation_from_ds=True,
        outside_events=0,
        outside_subjects=0,
        graded_events=0,
        uncoded_events=0,
    )
    pooled = pool_safety_summary(summary).counts.set_index("category")
    assert pooled.loc["any", "subjects"] == 7 and pooled.loc["any", "events"] == 16
    assert pooled.loc["discontinued", "subjects"] == 3
    assert pooled["events"].isna().tolist() == [False, True]  # any, discontinued


def test_pooled_incidence_equals_pandas_sums_over_arms() -> None:
    by_pt = pd.DataFrame(
        {
            "arm": ["A", "B", "A", "B", "B"],
            "soc": ["S1", "S1", "S1", "S2", "S2"],
            "pt": ["p1", "p1", "p2", "p3", "p4"],
            "subjects": [2, 3, 1, 4, 1],
            "events": [2, 5, 1, 6, 1],
        }
    )
    by_soc = pd.DataFrame(
        {
            "arm": ["A", "B", "B"],
            "soc": ["S1", "S1", "S2"],
            "subjects": [3, 3, 5],
            "events": [3, 5, 7],
        }
    )
    pooled = pool_term_incidence(TermIncidence(by_pt=by_pt, by_soc=by_soc))
    for mine, source, keys in (
        (pooled.by_pt, by_pt, ["soc", "pt"]),
        (pooled.by_soc, by_soc, ["soc"]),
    ):
        expected = source.groupby(keys)[["subjects", "events"]].sum().reset_index()
        assert set(mine["arm"]) == {POOLED}
        got = mine.drop(columns="arm").sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_pool_numeric_and_drop_arm_columns() -> None:
    outcome = pd.DataFrame(
        {"arm": ["A", "B"], "allocated": [10, 12], "treated": [9, 12], "ongoing": [1, 0]}
    )
    pooled = pool_numeric(outcome)
    assert pooled.to_dict("records") == [
        {"arm": POOLED, "allocated": 22, "treated": 21, "ongoing": 1}
    ]
    listing = pd.DataFrame(
        {"usubjid": ["s1"], "Arm": ["A"], "ACTARM": ["A"], "arm_code": ["a"], "term": ["x"]}
    )
    assert list(drop_arm_columns(listing).columns) == ["usubjid", "term"]


def test_pooled_reasons_stay_most_frequent_first() -> None:
    reasons = pd.DataFrame(
        {
            "arm": ["A", "A", "B", "B"],
            "reason": ["WITHDRAWAL", "ADVERSE EVENT", "ADVERSE EVENT", "LOST"],
            "subjects": [3, 2, 4, 1],
        }
    )
    pooled = pool_reasons(reasons)
    assert pooled[["reason", "subjects"]].values.tolist() == [
        ["ADVERSE EVENT", 6],
        ["WITHDRAWAL", 3],
        ["LOST", 1],
    ]


def _study(*, blinded: bool | None) -> StudyInfo:
    fields: dict[str, Any] = {f.name: None for f in dataclasses.fields(StudyInfo)}
    fields.update(study_id="S", title="", is_blinded=blinded, is_synthetic=False)
    return StudyInfo(**fields)


def test_shows_arms() -> None:
    """Decided once, by the view context: arms in an open-label study, and in a blinded one only
    to an unblinded viewer."""
    assert ViewContext.for_viewer(_study(blinded=False), unblinded=False).shows_arms
    assert ViewContext.for_viewer(_study(blinded=True), unblinded=True).shows_arms
    assert not ViewContext.for_viewer(_study(blinded=True), unblinded=False).shows_arms


# -- the app --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blinding_db_url(pilot_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pilot, with a blinded and an unblinded sponsor (a copy: sign-ins write to it)."""
    url = copy_database(pilot_db_url, tmp_path_factory.mktemp("blinding"), "blinding")
    engine = make_engine(url)
    with session_scope(engine) as session:
        for email, unblinded in ((BLINDED, False), (UNBLINDED, True)):
            access.add_user(
                session, email=email, role=access.SPONSOR, unblinded=unblinded, actor="tests"
            )
    engine.dispose()
    return url


def arm_names_in(data: bytes | str) -> set[str]:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return {name for name in ARM_NAMES if name in text}


def _elements(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _elements(child)


def _serialized(node: Any) -> bytes:
    proto = getattr(node, "proto", None)
    return b"" if proto is None else bytes(proto.SerializeToString())


def rendered_arm_names(at: AppTest) -> dict[str, set[str]]:
    """Arm names in what the run rendered, by element type: every element's protobuf, serialized
    (markdown, metrics, captions, dataframes as Arrow, Vega-Lite specs with their datasets)."""
    found: dict[str, set[str]] = {}
    for root in (at.main, at.sidebar):
        for node in _elements(root):
            names = arm_names_in(_serialized(node))
            if names:
                found.setdefault(str(getattr(node, "type", type(node).__name__)), set()).update(
                    names
                )
    return found


def open_as(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    email: str,
    page: str | None,
    *,
    state: dict[str, Any] | None = None,
    study: str = PILOT,
) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": email}
    at.query_params["study"] = study
    at.run()
    if page is not None:
        at.switch_page(page).run()
    if page == SUBJECT_PAGE:
        at.query_params["subject"] = SUBJECT
        at.run()
    if state:  # as a click leaves it, once the page has run
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(value: Any) -> str:
    """Everything a value holds, as text: DataFrames (columns and cells), dataclasses, containers."""
    if isinstance(value, pd.DataFrame):
        return " ".join(map(str, value.columns)) + "\n" + value.to_csv(index=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(f"{k} {text_of(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return "\n".join(text_of(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "\n".join(text_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    return str(value)


class Spy:
    """Every loader answer and every download of a run (downloads built as a click builds them)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Any]] = {}
        self.downloads: dict[str, Any] = {}

    def loader_arm_names(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for name, answers in self.answers.items():
            names = arm_names_in(text_of(answers))
            if names:
                found[name] = names
        return found

    def download_arm_names(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for name, data in self.downloads.items():
            names = arm_names_in(text_of(readable(name, data() if callable(data) else data)))
            if names:
                found[name] = names
        return found


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    recorded = Spy()
    for name, function in list(vars(loaders).items()):
        if name.startswith("load_") and callable(function):
            monkeypatch.setattr(loaders, name, _wrap(recorded, name, function))
    for name, function in list(vars(views).items()):
        if getattr(function, "__module__", None) == views.__name__ and callable(function):
            monkeypatch.setattr(views, name, _wrap(recorded, name, function))
    real_download = ButtonMixin.download_button
    real_st_download = st.download_button

    def download_button(self: Any, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.downloads[str(kwargs.get("file_name", args[0] if args else ""))] = data
        return real_download(self, label, data, *args, **kwargs)

    def st_download_button(label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.downloads[str(kwargs.get("file_name", args[0] if args else ""))] = data
        return real_st_download(label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", download_button)
    monkeypatch.setattr(st, "download_button", st_download_button)
    return recorded


def _wrap(recorded: Spy, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        recorded.answers.setdefault(name, []).append(result)
        return result

    return wrapper


# Clicks that open the listings (AE drilldown on the pooled column, a site's subjects).
AE_PICK = {
    ae_drilldown.PICK_KEY: EventPick(
        source="summary", title="Any AE · all arms", arm=POOLED, category="any"
    )
}
DS_PICK = {
    ae_drilldown.PICK_KEY: EventPick(
        source="summary", title="Discontinuation", arm=POOLED, category="discontinuation"
    )
}
VISITS = [
    (None, None),
    ("../pages/enrollment.py", None),
    # Every subject on the visit schedule, not only those with a visit due.
    ("../pages/enrollment.py", {"enrollment_visits_needing_action": False}),
    ("../pages/screen_failures.py", None),
    ("../pages/baseline.py", None),
    ("../pages/adverse_events.py", None),
    ("../pages/adverse_events.py", AE_PICK),
    ("../pages/adverse_events.py", DS_PICK),
    (SUBJECT_PAGE, None),
]


@pytest.mark.parametrize(("page", "state"), VISITS)
def test_a_blinded_user_of_the_pilot_sees_no_arm_name(
    blinding_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    spy: Spy,
    page: str | None,
    state: dict[str, Any] | None,
) -> None:
    at = open_as(blinding_db_url, monkeypatch, BLINDED, page, state=state)
    context = at.session_state["_page_context"]
    assert context.study.is_blinded and not context.shows_arms  # TS TBLIND: DOUBLE BLIND
    assert rendered_arm_names(at) == {}
    assert spy.loader_arm_names() == {}
    assert spy.download_arm_names() == {}
    if state and ae_drilldown.PICK_KEY in state:  # the drilldown listed (pooled: every arm)
        assert any("Events behind" in m.value for m in at.markdown)


@pytest.mark.parametrize(("page", "state"), VISITS)
def test_an_unblinded_user_of_the_pilot_sees_the_arms(
    blinding_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    page: str | None,
    state: dict[str, Any] | None,
) -> None:
    at = open_as(blinding_db_url, monkeypatch, UNBLINDED, page, state=state)
    assert at.session_state["_page_context"].shows_arms
    if page not in (None, "../pages/screen_failures.py"):  # these two show no arm to anyone
        assert set(ARM_NAMES[:3]) & set().union(*rendered_arm_names(at).values())


# -- the command line -----------------------------------------------------------------------------

runner = CliRunner()


def test_summary_as_a_blinded_user_pools_the_arms(blinding_db_url: str) -> None:
    def summary(email: str | None) -> dict[str, Any]:
        args = ["summary", "--json", "--study", PILOT, "--db", blinding_db_url]
        result = runner.invoke(app, [*args, *(["--as", email] if email else [])])
        assert result.exit_code == 0, result.stderr
        figures = json.loads(result.stdout)
        assert isinstance(figures, dict)
        return figures

    blinded, unblinded, no_user = summary(BLINDED), summary(UNBLINDED), summary(None)
    assert arm_names_in(json.dumps(blinded)) == set()
    # Keyed by the pooled label: every enrolled subject, counted once over the arms.
    assert blinded["enrolled_by_arm"] == {POOLED: blinded["enrolled"]}
    assert set(ARM_NAMES[:3]) <= set(unblinded["enrolled_by_arm"])
    assert sum(unblinded["enrolled_by_arm"].values()) == blinded["enrolled"]
    assert no_user == unblinded  # without --as: whoever holds the database URL
    assert {k: v for k, v in blinded.items() if k != "enrolled_by_arm"} == {
        k: v for k, v in unblinded.items() if k != "enrolled_by_arm"
    }


def test_report_as_a_blinded_user_holds_no_arm_name(blinding_db_url: str, tmp_path: Path) -> None:
    for email, out in ((BLINDED, tmp_path / "blinded"), (UNBLINDED, tmp_path / "unblinded")):
        args = ["report", "--study", PILOT, "--out", str(out), "--as", email]
        result = runner.invoke(app, [*args, "--db", blinding_db_url])
        assert result.exit_code == 0, result.stderr
        files = sorted(out.iterdir())
        assert {f.suffix for f in files} == {".pdf", ".xlsx"}
        names = set().union(
            *(arm_names_in(text_of(readable(f.name, f.read_bytes()))) for f in files)
        )
        if email == BLINDED:
            assert names == set()
            workbook = pd.read_excel(files[1], sheet_name=None, dtype=str)
            assert any(POOLED in text_of(sheet) for sheet in workbook.values())
        else:
            assert set(ARM_NAMES[:3]) <= names


# -- an open-label study --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_label_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database (NCT06466850 is open label) with a sponsor who is not unblinded."""
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("open-label"), "open-label")
    engine = make_engine(url)
    with session_scope(engine) as session:
        access.add_user(session, email=BLINDED, role=access.SPONSOR, unblinded=False, actor="tests")
    engine.dispose()
    return url


@pytest.mark.parametrize("page", ["../pages/adverse_events.py", "../pages/enrollment.py"])
def test_an_open_label_study_shows_its_arms_to_everyone(
    open_label_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    engine = make_engine(open_label_db_url)
    arms = set(
        pd.read_sql_query(
            f"SELECT DISTINCT arm FROM subject WHERE study_id = '{SEED}' "
            "AND population = 'ENROLLED' AND arm IS NOT NULL",
            engine,
        )["arm"]
    )
    engine.dispose()
    assert arms
    at = open_as(open_label_db_url, monkeypatch, BLINDED, page, study=SEED)
    context = at.session_state["_page_context"]
    assert not context.study.is_blinded and context.shows_arms
    shown = " ".join(
        proto.decode("utf-8", errors="replace")
        for root in (at.main, at.sidebar)
        for node in _elements(root)
        if (proto := _serialized(node))
    )
    assert all(arm in shown for arm in arms)
    assert POOLED not in shown


def test_the_pooled_ae_summary_is_the_unblinded_total(
    blinding_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def summary(email: str) -> pd.DataFrame:
        at = open_as(blinding_db_url, monkeypatch, email, "../pages/adverse_events.py")
        table = next(d.value for d in at.dataframe if "Category" in d.value.columns)
        assert isinstance(table, pd.DataFrame)
        return table.set_index("Category")

    pooled, by_arm = summary(BLINDED), summary(UNBLINDED)
    # The pilot's 254 treated subjects (the page's Total column for an unblinded user).
    assert list(pooled.columns) == [f"{POOLED} (N=254)"]
    assert pooled.iloc[:, 0].tolist() == by_arm["Total (N=254)"].tolist()
    assert pooled.loc["Any AE"].iloc[0] == "225 (88.6%) [961]"


def test_a_sites_subject_list_drops_the_arm_when_pooled(blinding_db_url: str) -> None:
    """The Enrollment page's list of a clicked site's subjects (called here directly: AppTest
    cannot click a dataframe row)."""
    engine = make_engine(blinding_db_url)
    site = str(pd.read_sql_query("SELECT MIN(site_id) AS s FROM site", engine)["s"].iloc[0])
    engine.dispose()
    cut = loaders.load_cuts(blinding_db_url, PILOT)[-1].id
    by_arm = views.site_subjects(blinding_db_url, cut, ViewContext(PILOT, shows_arms=True), site)
    pooled = views.site_subjects(blinding_db_url, cut, ViewContext(PILOT, shows_arms=False), site)
    assert "arm" in by_arm.columns and set(ARM_NAMES[:3]) & set(by_arm["arm"])
    assert arm_names_in(text_of(pooled)) == set()
    pd.testing.assert_frame_equal(pooled, by_arm.drop(columns="arm"))


# -- registry (#17): a package without TS -----------------------------------------------------------
# Nothing says how the study is blinded: unknown blinding counts as blinded (DESIGN.md), so a
# viewer who is not unblinded sees no arm. The pilot without its ts.xpt (the files as given).

NO_TS = "PILOT-NO-TS"


@pytest.fixture(scope="module")
def no_ts_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    import shutil

    from dashboard.importers.run import import_sdtm
    from tests.conftest import SHARED_DATA
    from tests.databases import new_database_url

    source = SHARED_DATA / "sdtm" / "cdiscpilot01"
    if not source.is_dir():
        pytest.skip(f"reference data folder {source} is absent")
    folder = tmp_path_factory.mktemp("no-ts")
    for name in ("dm", "ae", "ds", "ex", "ta", "sv"):
        shutil.copy(source / f"{name}.xpt", folder / f"{name}.xpt")
    url = new_database_url(tmp_path_factory.mktemp("no-ts-db"), "no-ts")
    engine = make_engine(url)
    report = import_sdtm(engine, folder, study_id=NO_TS)
    assert any(
        w.startswith("no TS domain: blinding unknown, treated as blinded") for w in report.warnings
    )
    with session_scope(engine) as session:
        for email, unblinded in ((BLINDED, False), (UNBLINDED, True)):
            access.add_user(
                session, email=email, role=access.SPONSOR, unblinded=unblinded, actor="tests"
            )
    engine.dispose()
    return url


def test_unknown_blinding_shows_arms_only_to_unblinded_viewers() -> None:
    unknown = _study(blinded=None)
    assert unknown.counts_as_blinded
    assert not ViewContext.for_viewer(unknown, unblinded=False).shows_arms
    assert ViewContext.for_viewer(unknown, unblinded=True).shows_arms


def test_a_blinded_viewer_of_a_study_without_ts_gets_pooled_views(no_ts_db_url: str) -> None:
    from sqlmodel import Session

    from dashboard.queries.studies import study_info
    from dashboard.views.adverse_events import build_adverse_events
    from dashboard.views.baseline import build_baseline
    from dashboard.views.enrollment import build_enrollment

    engine = make_engine(no_ts_db_url)
    with Session(engine) as session:
        study = study_info(session, study_id=NO_TS)
        assert study is not None and study.is_blinded is None and study.counts_as_blinded
        blinded = ViewContext.for_viewer(study, unblinded=False)
        unblinded = ViewContext.for_viewer(study, unblinded=True)
        assert not blinded.shows_arms and unblinded.shows_arms
        for build in (build_adverse_events, build_baseline, build_enrollment):
            assert arm_names_in(text_of(build(session, blinded))) == set(), build.__name__
            assert set(ARM_NAMES[:3]) & arm_names_in(text_of(build(session, unblinded)))
        note = build_adverse_events(session, blinded).blinding_note
    engine.dispose()
    assert note is not None and note.startswith("The study's blinding is unknown")


@pytest.mark.parametrize("page", ["../pages/adverse_events.py", "../pages/baseline.py"])
def test_a_blinded_user_of_a_study_without_ts_sees_no_arm_name(
    no_ts_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    at = open_as(no_ts_db_url, monkeypatch, BLINDED, page, study=NO_TS)
    context = at.session_state["_page_context"]
    assert context.study.is_blinded is None and not context.shows_arms
    assert rendered_arm_names(at) == {}
    unblinded = open_as(no_ts_db_url, monkeypatch, UNBLINDED, page, study=NO_TS)
    assert set(ARM_NAMES[:3]) & set().union(*rendered_arm_names(unblinded).values())
