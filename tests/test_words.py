"""Words a clinical-operations reader expects (issue #18): plurals agreed with their counts,
listings headed in words, "unknown" where a domain is absent, ordinal grades as categories, one
column for one arm, axes with whole-number ticks, country names. Each test reads the real output
of a view or chart function on the demo studies (or the CDISC pilot)."""

import ast
import datetime as dt
import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.io.formats.style import Styler
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.charts.adverse_events import soc_incidence_chart, worst_level_chart
from dashboard.charts.baseline import histogram_chart
from dashboard.charts.colours import PRIMARY_BLUE
from dashboard.charts.enrollment import SERIES_COLOURS, accrual_chart, funnel_chart
from dashboard.charts.screen_failures import criteria_chart, monthly_rate_chart
from dashboard.charts.subject import subject_timeline_chart
from dashboard.db import make_engine
from dashboard.metrics.ae_listing import derive_listing, listing_table
from dashboard.metrics.ae_tables import soc_incidence
from dashboard.metrics.countries import ISO_3166_ALPHA_3, country_label
from dashboard.metrics.subject import timeline_events
from dashboard.metrics.table_one import (
    CHARACTERISTIC,
    STATISTIC,
    column_summaries,
    is_ordinal,
    level_order,
)
from dashboard.queries import studies
from dashboard.results.population import SCREEN_FAILURE
from dashboard.ui.ae_drilldown import LISTING_COLUMNS, SUBJECT_HEADER
from dashboard.ui.tables import dashed
from dashboard.views import subject as subject_view
from dashboard.views.adverse_events import build_adverse_events
from dashboard.views.adverse_events import events as ae_events
from dashboard.views.baseline import build_baseline
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import build_enrollment
from dashboard.views.format import plural
from dashboard.views.overview import build_overview
from dashboard.views.screen_failures import NO_IE_COUNTS, build_screen_failures

SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"
ROOT = Path(__file__).resolve().parent.parent
BMI_FAILURE = "NCT06466850-01-017"  # screened, failed the BMI criterion


@pytest.fixture(scope="module")
def demo(demo_db_url: str) -> Iterator[Engine]:
    engine = make_engine(demo_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pilot(pilot_db_url: str) -> Iterator[Engine]:
    engine = make_engine(pilot_db_url)
    yield engine
    engine.dispose()


# -- plurals -----------------------------------------------------------------------------------


def test_plural_agrees_with_the_count() -> None:
    assert plural(1, "subject") == "1 subject"
    assert plural(0, "subject") == "0 subjects"
    assert plural(3, "screen failure") == "3 screen failures"
    assert plural(2, "criterion") == "2 criteria"
    assert plural(1, "criterion") == "1 criterion"


def _user_strings(path: Path) -> Iterator[tuple[int, str]]:
    """The string literals of a module (f-string parts included), with their line numbers."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_word_is_pluralised_with_an_s_in_brackets() -> None:
    """Nothing a user reads says "subject(s)": every count goes through ``plural``."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for folder in ("dashboard", "pages")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in _user_strings(path)
        if re.search(r"[a-z]\(s\)", text)
    ]
    # Docstrings may explain the rule; the helper's own says what it replaces.
    found = [f for f in found if "views/format.py" not in f]
    assert found == []


def test_the_changes_sentence_agrees_with_its_counts(demo: Engine) -> None:
    with Session(demo) as session:
        view = build_overview(session, ViewContext(study_id=SEED, since_cut_id=None))
    changes = view.changes
    assert changes is not None and view.changes_sentence is not None
    sentence = view.changes_sentence
    assert "(s)" not in sentence
    assert plural(changes.new_subjects, "new subject") + " screened" in sentence
    assert plural(changes.new_screen_failures, "screen failure") in sentence
    assert plural(changes.new_adverse_events, "new adverse event") in sentence


# -- unknown where IE is missing ----------------------------------------------------------------


def test_counts_by_criterion_are_unknown_without_ie(pilot: Engine, demo: Engine) -> None:
    """The CDISC pilot has no IE domain: who failed which criterion is not recorded, so the
    page's metrics and the workbook's "Failures by criterion" sheet (``failures_table``) say
    unknown rather than 0; the seed demo, with IE, keeps its counts."""
    with Session(pilot) as session:
        view = build_screen_failures(session, ViewContext(study_id=PILOT))
        latest = studies.data_cuts(session, study_id=PILOT)[-1]
    assert "IE" not in latest.domains and view.ie_missing
    metrics = {m.label: m for m in view.metrics}
    for label in ("Failed more than one criterion", "Enrolled despite a rule"):
        assert metrics[label].value == "unknown", label
        assert "IE" in (metrics[label].help or "")
    for table in (view.failures_table, view.criteria_table):
        assert len(table) == len(view.by_criterion) == 31
        assert "% of screened" not in table.columns
        assert set(table["Subjects"]) == {NO_IE_COUNTS}

    with Session(demo) as session:
        seed = build_screen_failures(session, ViewContext(study_id=SEED))
    shown = {m.label: m.value for m in seed.metrics}
    assert shown["Failed more than one criterion"] == seed.failures_more_than_one
    assert shown["Enrolled despite a rule"] == seed.eligibility.deviations["usubjid"].nunique()
    assert seed.failures_table["Subjects"].tolist() == seed.by_criterion["subjects"].tolist()


# -- dates that have passed, statuses the data contradict ---------------------------------------


def test_a_reached_target_is_not_a_projection(demo: Engine) -> None:
    """The seed demo enrolled its 20 by July 2025: the metric says when the target was reached,
    not a "projected completion" in the past; the registry's "Recruiting" beside it is said to
    be the registry's."""
    with Session(demo) as session:
        view = build_enrollment(session, ViewContext(study_id=SEED))
        overview = build_overview(session, ViewContext(study_id=SEED))
    forecast = view.forecast
    assert forecast is not None and forecast.status == "target_reached" and forecast.reached_on
    metrics = {m.label: m for m in view.metrics}
    assert "Projected completion" not in metrics
    reached = metrics["Target reached"]
    assert reached.value == f"{forecast.reached_on:%d %b %Y}"
    assert reached.delta == f"{view.counts.enrolled} enrolled, target {view.target}"

    status = dict(overview.identity)["Registry status"]
    assert overview.frame.study.status == "RECRUITING"
    assert overview.counts.enrolled >= (overview.target or 0) == 20
    assert status.startswith("Recruiting (the registry still says so")
    assert "target of 20" in status


def test_a_projected_date_before_today_says_it_has_passed(demo: Engine) -> None:
    """DEMO-MULTI's forecast, from its cut-off, projects a date: seen from a day after that
    date, the metric says it has passed; seen from the day after the cut-off it is a plain
    projection."""
    with Session(demo) as session:
        then = build_enrollment(session, ViewContext(study_id=MULTI), today=dt.date(2000, 1, 1))
        assert then.forecast is not None and then.forecast.median_date is not None
        median = then.forecast.median_date
        later = median + dt.timedelta(days=1)
        now = build_enrollment(session, ViewContext(study_id=MULTI), today=later)
    assert then.frame.cutoff is not None and then.frame.cutoff < median
    now_metric = {m.label: m for m in now.metrics}["Projected completion"]
    then_metric = {m.label: m for m in then.metrics}["Projected completion"]
    assert now_metric.value == then_metric.value == f"{median:%d %b %Y}"
    assert then_metric.delta is not None and then_metric.delta.startswith("80% interval")
    assert now_metric.delta == f"projected date passed · {then_metric.delta}"


# -- countries ------------------------------------------------------------------------------------


def test_countries_are_named(demo: Engine) -> None:
    """SDTM's ISO 3166 alpha-3 codes are shown with the country's name: the seed demo's subject
    is in "Iran (IRN)", DEMO-MULTI's sites table names every site's country."""
    assert len(ISO_3166_ALPHA_3) == 249  # every officially assigned code
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in ISO_3166_ALPHA_3)
    assert country_label("Iran, Islamic Republic of") == "Iran, Islamic Republic of"  # a name
    with Session(demo) as session:
        (usubjid, *_), _ = subject_view.codes(session, ViewContext(study_id=SEED), "")
        seed = subject_view.record(session, ViewContext(study_id=SEED), usubjid)
        multi = build_enrollment(session, ViewContext(study_id=MULTI))
        raw = studies.site_countries(session, study_id=MULTI)
    assert seed is not None and seed.country == "Iran (IRN)"
    assert multi.sites is not None
    codes = dict(zip(raw["site_id"], raw["country"], strict=True))
    for site_id, shown in zip(multi.sites["site_id"], multi.sites["country"], strict=True):
        code = codes[site_id]
        assert shown == f"{ISO_3166_ALPHA_3[code]} ({code})", site_id


# -- axes -------------------------------------------------------------------------------------------


def _encoding(chart: Any, channel: str) -> dict[str, Any]:
    """The encoding of ``channel`` in a chart's spec, in its first layer that has one."""
    spec = chart.to_dict()
    layers = spec.get("layer") or [spec]
    found = [layer["encoding"][channel] for layer in layers if channel in layer.get("encoding", {})]
    assert found, channel
    return dict(found[0])


def _counts_only(encoding: dict[str, Any]) -> None:
    axis = encoding.get("axis") or {}
    assert axis.get("tickMinStep") == 1 and axis.get("format") == "d", encoding


def test_axes_have_round_ticks_on_the_demo_data(demo: Engine) -> None:
    """On DEMO-MULTI's data: the severity bars have quarter ticks (not 21), the SOC dots lie
    inside an axis that ends on a round tick, counts have whole-number ticks and the seed demo's
    ages are binned and labelled in whole years."""
    with Session(demo) as session:
        ae = build_adverse_events(session, ViewContext(study_id=MULTI))
        enrollment_view = build_enrollment(session, ViewContext(study_id=MULTI))
        failures = build_screen_failures(session, ViewContext(study_id=MULTI))
        baseline = build_baseline(session, ViewContext(study_id=SEED))

    worst = _encoding(worst_level_chart(ae.worst_levels, dimension="severity"), "x")
    assert worst["axis"]["values"] == [0.0, 0.25, 0.5, 0.75, 1.0]

    socs = soc_incidence(ae.terms, ae.population.by_arm)
    x = _encoding(soc_incidence_chart(socs), "x")
    ticks, domain = x["axis"]["values"], x["scale"]["domain"]
    largest = float(socs["share"].max())
    assert domain == [0, ticks[-1]] and ticks[-2] < largest <= ticks[-1], (largest, ticks)
    assert len(ticks) <= 7
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced

    _counts_only(_encoding(accrual_chart(**enrollment_view.accrual_chart_inputs), "y"))
    _counts_only(_encoding(funnel_chart(enrollment_view.funnel), "x"))
    _counts_only(
        _encoding(criteria_chart(failures.by_criterion, screened=failures.counts.screened), "x")
    )
    _counts_only(_encoding(monthly_rate_chart(failures.monthly), "y"))

    counts = baseline.value_counts
    ages = counts[(counts["key"] == "AGE") & counts["value_num"].notna()]
    assert (ages["value_num"] == ages["value_num"].round()).all()  # whole years in DM.AGE
    boxes = column_summaries(counts, key="AGE", columns=list(baseline.columns))
    histogram = histogram_chart(boxes, ages[["column", "value_num", "subjects"]], label="Age")
    assert histogram is not None
    x, y = _encoding(histogram, "x"), _encoding(histogram, "y")
    assert x["bin"]["minstep"] == 1 and x["axis"]["format"] == "d"
    _counts_only(y)


# -- listings headed in words ---------------------------------------------------------------------

SDTM_NAME = re.compile(r"[A-Z]{2}[A-Z0-9]{2,6}")  # USUBJID, AEBODSYS, AESTDTC ...


def test_the_sae_listing_is_headed_in_words(demo: Engine, pilot: Engine) -> None:
    """Every column of the SAE listings the page draws (seed demo, DEMO-MULTI, CDISC pilot) is
    headed in words on screen, its SDTM variable behind the header's help icon; the data (and so
    the downloads) keep the SDTM names."""
    shown = []
    for engine, study in ((demo, SEED), (demo, MULTI), (pilot, PILOT)):
        with Session(engine) as session:
            view = build_adverse_events(session, ViewContext(study_id=study))
        assert not view.saes.empty, study
        shown += list(view.saes.columns)
    assert {"USUBJID", "AEBODSYS", "AESTDTC"} <= set(shown)
    for column in set(shown):
        config = LISTING_COLUMNS[column]
        header, help_text = config.get("label") or "", config.get("help") or ""
        assert not SDTM_NAME.fullmatch(header), (column, header)
        if SDTM_NAME.fullmatch(column):
            assert help_text.startswith(column), (column, help_text)
    assert LISTING_COLUMNS["USUBJID"]["label"] == SUBJECT_HEADER == "Subject"
    assert LISTING_COLUMNS["AEBODSYS"]["label"] == "Body system"
    assert LISTING_COLUMNS["Term"]["label"] == "Preferred term"
    assert LISTING_COLUMNS["AESTDTC"]["label"] == "Start date"


# -- a screen failure's timeline ------------------------------------------------------------------


def test_a_screen_failures_milestones_are_named(demo: Engine) -> None:
    """The seed demo's BMI screen failure has no day 1: its timeline is milestones only, each
    named by its shape in a legend (screening, the screen-failure disposition), not bare
    diamonds."""
    with Session(demo) as session:
        record = subject_view.record(session, ViewContext(study_id=SEED), BMI_FAILURE)
    assert record is not None and record.population == SCREEN_FAILURE
    events = timeline_events(
        day_one=None,
        screening_date=record.screening_date,
        consent_dtc=record.consent_dtc,
        first_dose_date=record.first_dose_date,
        dispositions=record.dispositions,
        exposures=record.exposures,
        visits=record.visits,
        adverse_events=record.adverse_events,
        schedule=None,
        until=None,
    )
    milestones = events.loc[events["kind"] == "milestone", "label"].drop_duplicates().tolist()
    assert "Screening" in milestones and "Screen failure" in milestones
    # Milestones of one day are one mark named together (screening and consent on the same day).
    by_day = events[events["kind"] == "milestone"].groupby("start_date", sort=False)["label"]
    named = [" · ".join(labels) for _, labels in by_day]
    spec = subject_timeline_chart(events, day_one=None).to_dict()
    shaped = [
        layer["encoding"]["shape"]
        for layer in spec["layer"]
        if "shape" in layer.get("encoding", {})
    ]
    assert len(shaped) == 1
    shape = shaped[0]
    assert shape["field"] == "label" and shape["legend"] is not None
    assert shape["scale"]["domain"] == named
    assert any("Screening" in n for n in named) and "Screen failure" in named
    assert len(set(shape["scale"]["range"])) == len(named)  # one shape each


# -- theme ----------------------------------------------------------------------------------------


def test_the_theme_is_the_charts_blue() -> None:
    """Chosen chips and selected radios in the charts' blue, not Streamlit's default red (which
    reads as an error); the enrolled line is drawn in the same blue."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["theme"]["primaryColor"] == PRIMARY_BLUE == SERIES_COLOURS["Enrolled"]
    assert config["theme"]["base"] == "light"


# -- Table 1: ordinal grades, one column for one arm -----------------------------------------------


def test_grades_are_categories_and_one_arm_is_one_column(demo: Engine) -> None:
    """The seed demo's Kellgren-Lawrence grades are tabulated as n (%) per grade, counted from
    the baseline findings themselves; its one arm is one column (no identical Overall); the WOMAC
    total score (0-96) stays continuous."""
    with Session(demo) as session:
        view = build_baseline(session, ViewContext(study_id=SEED))
        found = pd.read_sql(
            sa.text(
                "SELECT f.location, f.value_num, s.usubjid FROM finding f JOIN subject s "
                "ON s.id = f.subject_pk WHERE s.study_id = :study AND f.test_code = 'KLGRADE' "
                "AND f.is_baseline AND s.population = 'ENROLLED'"
            ),
            session.connection(),
            params={"study": SEED},
        )
    table = view.table
    assert table is not None
    (arm,) = view.columns
    n = view.counts.enrolled
    assert list(table.columns) == [CHARACTERISTIC, STATISTIC, f"{arm} (n={n})"]

    rows = table.assign(variable=table[CHARACTERISTIC].replace("", pd.NA).ffill())
    for knee in ("LEFT KNEE", "RIGHT KNEE"):
        label = next(v.label for v in view.variables if v.label.endswith(knee.lower()))
        variable = next(v for v in view.variables if v.label == label)
        assert variable.categorical
        shown = rows[rows["variable"] == label].set_index(STATISTIC)[f"{arm} (n={n})"]
        grades = found[found["location"] == knee]["value_num"].value_counts().sort_index()
        assert list(shown.index) == [f"{g:g}, n (%)" for g in grades.index]
        for grade, count in grades.items():
            assert shown[f"{grade:g}, n (%)"] == f"{count} ({100 * count / n:.1f}%)"
    womac = next(v for v in view.variables if v.label.startswith("WOMAC"))
    assert not womac.categorical
    womac_rows = rows[rows["variable"].str.startswith("WOMAC")]
    assert womac_rows[STATISTIC].tolist() == ["Mean (SD)", "Median [Q1, Q3]"]


def test_ordinal_rule() -> None:
    assert is_ordinal("Kellgren-Lawrence Grade", pd.Series([0.0, 2.0, 4.0]))
    assert is_ordinal("ECOG performance status score", pd.Series([0.0, 1.0, 5.0]))
    assert not is_ordinal("WOMAC Total Score (0-96)", pd.Series([12.0, 45.0, 80.0]))  # wide
    assert not is_ordinal("Pain grade", pd.Series([1.5, 2.0]))  # not whole numbers
    assert not is_ordinal("Body Mass Index", pd.Series([21.0, 25.0]))  # not a grade or score
    assert level_order("2") < level_order("10") < level_order("UNKNOWN")


# -- captions ---------------------------------------------------------------------------------------


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()) if s])


def test_captions_are_one_sentence_with_the_rule_behind_help(demo: Engine) -> None:
    """The captions a view gives the page are one sentence; the rule that used to follow is
    kept for the help icon (and, for the accrual chart, for the pack's note)."""
    with Session(demo) as session:
        baseline = build_baseline(session, ViewContext(study_id=MULTI))
        failures = build_screen_failures(session, ViewContext(study_id=MULTI))
        enrollment_view = build_enrollment(session, ViewContext(study_id=MULTI))
    accrual = enrollment_view.accrual_chart
    for sentence, rule in (
        (baseline.caption, baseline.caption_rule),
        (failures.criteria_caption, failures.criteria_rule),
        (accrual.sentence, accrual.rule),
    ):
        assert _sentences(sentence) == 1, sentence
        assert rule and _sentences(rule) >= 1 and rule not in sentence
    assert accrual.caption == f"{accrual.sentence} {accrual.rule}"  # the pack prints both
    assert f"{failures.failures_more_than_one} failed more than one" in failures.criteria_rule


# -- missing cells ----------------------------------------------------------------------------------


def test_a_missing_cell_is_a_dash(demo: Engine) -> None:
    """The seed demo's ongoing AE has no end date: its listing cell is drawn "–", not "None";
    the data behind the table keep the gap, and the columns without one keep their values."""
    with Session(demo) as session:
        found, _ = ae_events(session, ViewContext(study_id=SEED))
    table = listing_table(derive_listing(found, compare_cut_id=None), show_new=False)
    ongoing = table["AEENDTC"].isna()
    assert ongoing.sum() >= 1
    styled = dashed(table)
    assert isinstance(styled, Styler) and styled.data is table  # type: ignore[attr-defined]
    shown = styled.to_string(delimiter="\t").splitlines()
    header, rows = shown[0].split("\t"), [line.split("\t") for line in shown[1:]]
    end = header.index("AEENDTC")
    cells = [row[end] for row in rows]
    assert "None" not in cells and "nan" not in cells
    assert [c for c, gap in zip(cells, ongoing, strict=True) if gap] == ["–"] * int(ongoing.sum())
    assert [c for c, gap in zip(cells, ongoing, strict=True) if not gap] == [
        str(v) for v in table.loc[~ongoing, "AEENDTC"]
    ]
    complete = pd.DataFrame({"a": [1, 2]})
    assert dashed(complete) is complete  # nothing missing: drawn as it is
