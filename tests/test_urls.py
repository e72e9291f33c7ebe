"""Links that carry the view, and cuts numbered per study.

- ``dashboard.ui.url_state``: what a link's ``sites=`` / ``from=`` / ``to=`` ask for, good and
  bad values, against expectations written out by hand; and the app (AppTest) opened on such a
  link: the filters it sets, the plain warnings for the bad parts, and the URL written back.
- Data cut ids are counted across studies; users see each study's own count. Two studies
  imported alternately (ids 1..4 interleaved) must each number their cuts 1, 2 of 2.
"""

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.db import ensure_schema, make_engine
from dashboard.demo import MULTISITE_STUDY_ID, SEED_STUDY_ID
from dashboard.demo_export import export_sdtm
from dashboard.importers.run import SdtmImportReport, import_sdtm
from dashboard.queries.studies import data_cuts
from dashboard.report.pack import build_pack
from dashboard.ui.links import page_url, subject_url
from dashboard.ui.shell import CONTEXT_KEY, PageContext
from dashboard.ui.url_state import fit_period, parse_period, parse_sites, state_params
from dashboard.views.context import ViewContext
from dashboard.views.overview import build_overview
from tests.conftest import APP
from tests.databases import new_database_url

D = dt.date
SPAN = (D(2024, 5, 22), D(2025, 12, 30))
EVERY = ["101", "102", "103"]


# -- sites= -------------------------------------------------------------------------------------


def test_sites_in_the_link_are_kept_in_the_sidebar_order() -> None:
    chosen, warnings = parse_sites(" 103,101,101,", offered=EVERY, every_site=EVERY, study_id="S")
    assert chosen == ["101", "103"] and warnings == ()


def test_no_sites_in_the_link_is_every_site() -> None:
    assert parse_sites(None, offered=EVERY, every_site=EVERY, study_id="S") == ([], ())


def test_an_unknown_site_is_named_and_left_out() -> None:
    chosen, warnings = parse_sites("101,999", offered=EVERY, every_site=EVERY, study_id="S")
    assert chosen == ["101"]
    assert warnings == (
        "Site **999** in the link is not a site of study S: left out of the site filter.",
    )


def test_a_site_the_reader_may_not_see_is_never_chosen() -> None:
    chosen, warnings = parse_sites("101,102", offered=["101"], every_site=EVERY, study_id="S")
    assert chosen == ["101"]
    assert warnings == (
        "Site **102** in the link is not open to your account: left out of the site filter.",
    )


def test_markdown_in_a_site_code_is_shown_as_text() -> None:
    _, warnings = parse_sites("**x**", offered=EVERY, every_site=EVERY, study_id="S")
    assert "****x****" not in warnings[0] and "x" in warnings[0]


# -- from= / to= --------------------------------------------------------------------------------


def test_a_period_inside_the_span_is_kept() -> None:
    assert parse_period("2025-01-01", "2025-03-31", span=SPAN) == (
        (D(2025, 1, 1), D(2025, 3, 31)),
        (),
    )


def test_no_period_in_the_link_is_every_date() -> None:
    assert parse_period(None, None, span=SPAN) == (None, ())


def test_one_end_only_runs_to_the_span_s_other_end() -> None:
    assert parse_period("2025-01-01", None, span=SPAN) == ((D(2025, 1, 1), SPAN[1]), ())
    assert parse_period(None, "2025-01-01", span=SPAN) == ((SPAN[0], D(2025, 1, 1)), ())


def test_the_whole_span_is_no_filter() -> None:
    assert parse_period("2024-05-22", "2025-12-30", span=SPAN) == (None, ())


@pytest.mark.parametrize("raw", ["2025-02-30", "yesterday", "2025", ""])
def test_an_impossible_date_is_named_and_ignored(raw: str) -> None:
    period, warnings = parse_period(raw, "2025-03-31", span=SPAN)
    assert period == (SPAN[0], D(2025, 3, 31))
    assert warnings == (f"**from={raw}** in the link is not a date (YYYY-MM-DD): ignored.",)


def test_a_period_running_backwards_is_ignored() -> None:
    period, warnings = parse_period("2025-03-31", "2025-01-01", span=SPAN)
    assert period is None
    assert warnings == (
        "The link's screening period runs backwards (31 Mar 2025 to 01 Jan 2025): ignored.",
    )


def test_a_period_reaching_outside_the_span_is_cut_to_it() -> None:
    period, warnings = parse_period("2020-01-01", "2025-03-31", span=SPAN)
    assert period == (SPAN[0], D(2025, 3, 31))
    assert warnings == (
        "The link's screening period (01 Jan 2020 to 31 Mar 2025) reaches outside the screening "
        "dates; cut to 22 May 2024 to 31 Mar 2025.",
    )


def test_a_period_wholly_outside_the_span_is_ignored() -> None:
    period, warnings = parse_period("2030-01-01", "2030-02-01", span=SPAN)
    assert period is None and "is outside the screening dates" in warnings[0]


def test_a_period_without_screening_dates_is_ignored() -> None:
    period, warnings = parse_period("2025-01-01", "2025-02-01", span=None)
    assert period is None and warnings


def test_a_kept_period_is_cut_to_the_dates_in_view() -> None:
    assert fit_period((D(2024, 1, 1), D(2025, 1, 1)), SPAN) == (SPAN[0], D(2025, 1, 1))
    assert fit_period((D(2026, 1, 1), D(2026, 2, 1)), SPAN) is None
    assert fit_period(SPAN, SPAN) is None
    assert fit_period(None, SPAN) is None


def test_the_query_string_of_a_view() -> None:
    assert state_params("S", [], None) == {"study": "S"}
    assert state_params("S", ["101", "103"], (D(2025, 1, 1), D(2025, 3, 31))) == {
        "study": "S",
        "sites": "101,103",
        "from": "2025-01-01",
        "to": "2025-03-31",
    }


def test_internal_links_carry_the_state() -> None:
    state = state_params("S 1", ["101"], (D(2025, 1, 1), D(2025, 3, 31)))
    assert page_url("enrollment", state) == (
        "enrollment?study=S%201&sites=101&from=2025-01-01&to=2025-03-31"
    )
    assert subject_url("S 1", "A&B", state) == (
        "subject?study=S%201&sites=101&from=2025-01-01&to=2025-03-31&subject=A%26B"
    )


# -- the app opened on a link -------------------------------------------------------------------


def _open(db_url: str, monkeypatch: pytest.MonkeyPatch, **params: str) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _query(at: AppTest) -> dict[str, str]:
    """The URL's query as the app left it (AppTest keeps each value as a list)."""
    return {k: v[-1] if isinstance(v, list) else str(v) for k, v in at.query_params.items()}


def _context(at: AppTest) -> PageContext:
    context = at.session_state[CONTEXT_KEY]
    assert isinstance(context, PageContext)
    return context


def test_a_link_sets_the_sites_and_period_and_is_written_back(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(
        demo_db_url,
        monkeypatch,
        study=MULTISITE_STUDY_ID,
        sites="105,102",
        **{"from": "2025-01-01", "to": "2025-06-30"},
    )
    context = _context(at)
    assert list(context.scope or ()) == ["102", "105"]
    assert context.chosen_sites == ("102", "105")
    assert context.period == (D(2025, 1, 1), D(2025, 6, 30))
    assert not at.warning
    assert _query(at) == {
        "study": MULTISITE_STUDY_ID,
        "sites": "102,105",
        "from": "2025-01-01",
        "to": "2025-06-30",
    }
    # The period survives a page without the picker, and the picker shows it on its page.
    at.switch_page("../pages/baseline.py").run()
    at.switch_page("../pages/enrollment.py").run()
    assert not at.exception
    assert _context(at).period == (D(2025, 1, 1), D(2025, 6, 30))
    assert at.sidebar.date_input[0].value == (D(2025, 1, 1), D(2025, 6, 30))


def test_a_period_picked_goes_into_the_url_and_survives_other_pages(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, monkeypatch, study=MULTISITE_STUDY_ID)
    at.switch_page("../pages/screen_failures.py").run()
    picked = (D(2025, 2, 1), D(2025, 5, 31))
    at.sidebar.date_input[0].set_value(picked).run()
    assert not at.exception
    assert _context(at).period == picked
    assert _query(at) == {"study": MULTISITE_STUDY_ID, "from": "2025-02-01", "to": "2025-05-31"}
    at.switch_page("../pages/overview.py").run()  # no picker here: the period stays in the URL
    assert _query(at)["from"] == "2025-02-01"
    at.switch_page("../pages/enrollment.py").run()
    assert at.sidebar.date_input[0].value == picked
    assert _context(at).period == picked


def test_bad_values_in_a_link_give_plain_warnings(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(
        demo_db_url,
        monkeypatch,
        study=MULTISITE_STUDY_ID,
        sites="102,nope",
        **{"from": "2025-13-01", "to": "2019-01-01"},
    )
    context = _context(at)
    assert context.chosen_sites == ("102",)
    assert context.period is None
    warnings = [w.value for w in at.warning]
    assert any("Site **nope**" in w for w in warnings)
    assert any("**from=2025-13-01**" in w for w in warnings)
    assert any("outside the screening dates" in w for w in warnings)


def test_changing_study_drops_the_sites_and_period(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(
        demo_db_url,
        monkeypatch,
        study=MULTISITE_STUDY_ID,
        sites="102",
        **{"from": "2025-01-01", "to": "2025-06-30"},
    )
    at.sidebar.selectbox(key="study").set_value(SEED_STUDY_ID).run()
    context = _context(at)
    assert context.study_id == SEED_STUDY_ID
    assert context.chosen_sites == () and context.period is None
    assert _query(at) == {"study": SEED_STUDY_ID}


# -- cuts numbered per study --------------------------------------------------------------------


@pytest.fixture(scope="module")
def alternating(
    demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[SdtmImportReport]]:
    """A database where the seed and the multisite demo were imported in turn, two cuts each."""
    base = tmp_path_factory.mktemp("alternating")
    with Session(demo_engine) as session:
        folders = [
            export_sdtm(session, study_id=study, cutoff=cutoff, folder=base / f"{study}-{cutoff}")
            for study, cutoff in (
                (MULTISITE_STUDY_ID, D(2025, 9, 30)),
                (SEED_STUDY_ID, D(2025, 4, 30)),
                (MULTISITE_STUDY_ID, D(2025, 12, 31)),
                (SEED_STUDY_ID, D(2025, 11, 30)),
            )
        ]
    url = new_database_url(base, "alternating")
    engine = make_engine(url)
    ensure_schema(engine)
    reports = [import_sdtm(engine, folder) for folder in folders]
    engine.dispose()
    return url, reports


def test_each_study_numbers_its_own_cuts(alternating: tuple[str, list[SdtmImportReport]]) -> None:
    url, reports = alternating
    engine = make_engine(url)
    with Session(engine) as session:
        multi = data_cuts(session, study_id=MULTISITE_STUDY_ID)
        seed = data_cuts(session, study_id=SEED_STUDY_ID)
        figures = build_overview(session, ViewContext(MULTISITE_STUDY_ID)).figures
    engine.dispose()
    # The ids interleave (1, 3 and 2, 4); the numbers do not.
    assert [c.id for c in multi] == [r.result.cut_id for r in reports[0::2]]
    assert [c.id for c in seed] == [r.result.cut_id for r in reports[1::2]]
    assert [c.id for c in multi] != [1, 2] and [c.id for c in seed] != [1, 2]
    assert [(c.number, c.total, c.name) for c in multi] == [
        (1, 2, "cut 1 of 2"),
        (2, 2, "cut 2 of 2"),
    ]
    assert [(c.number, c.total) for c in seed] == [(1, 2), (2, 2)]
    # The import says which of the study's cuts it loaded.
    assert [r.summary_lines()[0].split(" loaded")[0] for r in reports] == [
        f"study {MULTISITE_STUDY_ID}: data cut 1",
        f"study {SEED_STUDY_ID}: data cut 1",
        f"study {MULTISITE_STUDY_ID}: data cut 2",
        f"study {SEED_STUDY_ID}: data cut 2",
    ]
    # The CLI's JSON keeps the id (contract) and says the number beside it.
    assert figures["data_cut"]["id"] == multi[-1].id
    assert figures["data_cut"]["number"] == 2


def test_the_pages_name_the_study_s_own_cuts(
    alternating: tuple[str, list[SdtmImportReport]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = alternating
    at = _open(url, monkeypatch, study=SEED_STUDY_ID)
    header = next(c.value for c in at.caption if "data cut" in c.value)
    assert "data cut 2 of 2, cut-off 30 Nov 2025" in header
    assert "compared with cut 1 of 2, cut-off 30 Apr 2025" in header
    picker = at.sidebar.selectbox(key="filter_compare_cut")
    assert picker.format_func(picker.value) == "Cut 1 of 2 · cut-off 30 Apr 2025"
    assert any(s.value == "Since cut 1" for s in at.subheader)


def test_the_pack_names_cuts_by_the_study_s_own_count(session: Session) -> None:
    """The pack's title and its listings' cut columns: DEMO-MULTI's cuts have ids 3 and 4 in the
    demo database (the seed's come first), and read 1 and 2."""
    cuts = data_cuts(session, study_id=MULTISITE_STUDY_ID)
    assert [c.id for c in cuts] != [1, 2]
    pack = build_pack(session, ViewContext(MULTISITE_STUDY_ID))
    assert pack.cut_label == "cut 2 of 2"
    first_ids = session.execute(
        text("SELECT first_cut_id FROM subject WHERE study_id = :s"), {"s": MULTISITE_STUDY_ID}
    ).scalars()
    expected = Counter(1 + [c.id for c in cuts].index(i) for i in first_ids)
    assert Counter(pack.subjects["First in cut"]) == expected
