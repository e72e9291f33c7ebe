"""One composition per page (issue #15): the monitoring pack shows exactly what the pages' views
hold, for the seed demo, DEMO-MULTI and the CDISC pilot, for the whole study and for two sites,
for an unblinded viewer and for a blinded viewer of a blinded study (the pilot is double blind;
the demos are open label, so there a "blinded" viewer sees the arms like everyone else).

The pack is read back from its files (workbook cells with openpyxl, PDF text with pypdf) and
compared with the views the pages draw, figure by figure: the headline and the target, the
forecast, the funnel and the flow, failures by criterion, Table 1, the AE tables and the SAE list.
"""

import ast
import datetime as dt
import io
import math
import re
from collections.abc import Iterator
from typing import Any

import openpyxl
import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.charts.adverse_events import soc_incidence_chart, timeline_chart, worst_level_chart
from dashboard.charts.baseline import box_chart, categorical_distribution_chart
from dashboard.charts.enrollment import accrual_chart, funnel_chart
from dashboard.charts.screen_failures import (
    criteria_chart,
    monthly_rate_chart,
    site_criterion_heatmap,
)
from dashboard.db import make_engine
from dashboard.metrics.ae_rules import WORST_DIMENSIONS
from dashboard.metrics.ae_tables import soc_incidence
from dashboard.metrics.ae_timeline import timeline_frame
from dashboard.metrics.kri import METHODS
from dashboard.metrics.table_one import column_summaries, level_counts
from dashboard.queries import studies
from dashboard.report.pack import MonitoringPack, build_pack, site_risk_sheet
from dashboard.report.pdf import pack_pdf, plain
from dashboard.report.workbook import SAE_SHEET, SITE_RISK_SHEET, pack_workbook
from dashboard.ui.ae_drilldown import listing_filters
from dashboard.ui.ae_picks import summary_cell_pick
from dashboard.views.adverse_events import (
    AdverseEventsOptions,
    AdverseEventsView,
    build_adverse_events,
    ds_discontinuations,
    events,
    subjects_with_events,
)
from dashboard.views.baseline import (
    POPULATION_LABELS,
    BaselineView,
    TableOneOptions,
    build_baseline,
)
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import EnrollmentView, build_enrollment, site_subjects
from dashboard.views.format import plural
from dashboard.views.overview import OverviewView, build_overview
from dashboard.views.reader import BlindingError, Reader
from dashboard.views.screen_failures import (
    ScreenFailuresView,
    build_screen_failures,
    failed_subjects,
)
from dashboard.views.site_risk import SiteRiskOptions, SiteRiskView, build_site_risk
from dashboard.views.subject import record
from dashboard.views.visits import grid, subject_schedule
from tests.conftest import PROJECT_ROOT, reference_absent
from tests.test_blinding import ARM_NAMES, text_of

SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"
CASES = [
    (study, sites, viewer)
    for study in (SEED, MULTI, PILOT)
    for sites in ("all sites", "two sites")
    for viewer in ("unblinded", "blinded")
]


@pytest.fixture(scope="module")
def engines(demo_db_url: str, pilot_db_url: str) -> Iterator[dict[str, Engine]]:
    demo, pilot = make_engine(demo_db_url), make_engine(pilot_db_url)
    yield {SEED: demo, MULTI: demo, PILOT: pilot}
    demo.dispose()
    pilot.dispose()


def context_for(engine: Engine, study_id: str, sites: str, viewer: str) -> ViewContext:
    """The context a page builds: the study, the first two sites (a one-site study: its site),
    arms shown as the viewer's rights and the study's blinding decide."""
    with Session(engine) as session:
        info = studies.study_info(session, study_id=study_id)
        site_ids = sorted(str(s) for s in studies.sites(session, study_id=study_id)["site_id"])
    assert info is not None
    scope = None if sites == "all sites" else tuple(site_ids[:2])
    return ViewContext.for_viewer(info, unblinded=viewer == "unblinded", scope=scope)


def _cell(value: Any) -> str:
    """A cell as text, the same whether it comes from a frame or back from the workbook."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rounded(text: str) -> str:
    try:
        return f"{float(text):.12g}"
    except ValueError:
        return text


def cells(frame: pd.DataFrame) -> list[list[str]]:
    return [[_cell(v) for v in row] for row in frame.astype(object).itertuples(index=False)]


def sheet(book: openpyxl.Workbook, name: str) -> tuple[list[str], list[list[str]]]:
    rows = list(book[name].values)
    return [str(c) for c in rows[0]], [[_cell(v) for v in row] for row in rows[1:]]


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class Rendered:
    """The five views a page draws on its first run, and the pack read back from its files."""

    def __init__(self, engine: Engine, ctx: ViewContext) -> None:
        with Session(engine) as session:
            self.overview: OverviewView = build_overview(session, ctx)
            self.enrollment: EnrollmentView = build_enrollment(session, ctx)
            self.failures: ScreenFailuresView = build_screen_failures(session, ctx)
            self.baseline: BaselineView = build_baseline(session, ctx)
            self.safety: AdverseEventsView = build_adverse_events(session, ctx)
            self.site_risk: SiteRiskView = build_site_risk(session, ctx)
            self.pack: MonitoringPack = build_pack(session, ctx)
        self.book = openpyxl.load_workbook(io.BytesIO(pack_workbook(self.pack)))
        pages = PdfReader(io.BytesIO(pack_pdf(self.pack))).pages
        self.pdf = words(" ".join(page.extract_text() for page in pages))


@pytest.fixture(scope="module")
def rendered(engines: dict[str, Engine]) -> dict[tuple[str, str, str], Rendered]:
    return {}


def render(
    engines: dict[str, Engine],
    cache: dict[tuple[str, str, str], Rendered],
    case: tuple[str, str, str],
) -> Rendered:
    if case not in cache:
        study, sites, viewer = case
        cache[case] = Rendered(engines[study], context_for(engines[study], study, sites, viewer))
    return cache[case]


@pytest.mark.parametrize(("study", "sites", "viewer"), CASES)
def test_the_packs_figures_are_the_pages_views(
    engines: dict[str, Engine],
    rendered: dict[tuple[str, str, str], Rendered],
    study: str,
    sites: str,
    viewer: str,
) -> None:
    r = render(engines, rendered, (study, sites, viewer))
    overview, pack = r.overview, r.pack

    # The headline: the workbook's Summary sheet is the Overview's table, cell for cell, and its
    # target is the Overview's "Enrolled / target" (the chosen sites' own target, or none).
    header, rows = sheet(r.book, "Summary")
    assert header == list(overview.headline.columns)
    assert rows == cells(overview.headline)
    target = dict(zip(overview.headline["Figure"], overview.headline["Value"], strict=True))[
        "Target enrollment"
    ]
    assert (None if target is pd.NA else int(target)) == overview.target
    enrolled = next(m for m in overview.metrics if m.label == "Enrolled / target")
    expected = (
        f"{overview.counts.enrolled} / {overview.target}"
        if overview.target
        else str(overview.counts.enrolled)
    )
    assert enrolled.value == expected
    assert pack.figures == overview.figures
    if overview.changes_sentence:
        assert words(overview.changes_sentence) in r.pdf

    # Site risk: the sheet is the view's scores (gsm's default, as the page opens), cell for cell.
    header, rows = sheet(r.book, SITE_RISK_SHEET)
    expected_sheet = site_risk_sheet(r.site_risk)
    assert header == list(expected_sheet.columns)
    assert [[_rounded(c) for c in row] for row in rows] == [
        [_rounded(c) for c in row] for row in cells(expected_sheet)
    ]  # floats as Excel keeps them (15 significant digits)
    pd.testing.assert_frame_equal(pack.site_risk.flag_table, r.site_risk.flag_table)
    assert pack.site_risk.metrics == r.site_risk.metrics

    if not overview.counts.screened:
        return
    for metric in r.site_risk.metrics:
        assert words(f"{metric.label}: {metric.value}") in r.pdf
    # Enrollment: the same forecast sentence (or none under a filter), chart target, funnel, flow.
    if not r.enrollment.filtered:
        assert words(plain(r.enrollment.forecast_sentence)) in r.pdf
    assert words(r.enrollment.accrual_caption) in r.pdf
    pd.testing.assert_frame_equal(pack.funnel, r.enrollment.funnel)
    assert pack.flow_svg == r.enrollment.flow_svg
    assert pack.enrollment.chart_target == r.enrollment.chart_target
    # The planned line is drawn exactly where the caption says so.
    inputs = r.enrollment.accrual_chart_inputs
    assert (inputs["planned_end"] is not None) == r.enrollment.planned_drawn

    # Failures by criterion: the sheet is the view's table; the page's table has the same counts.
    header, rows = sheet(r.book, "Failures by criterion")
    assert header == list(r.failures.failures_table.columns)
    assert rows == cells(r.failures.failures_table)
    assert (
        r.failures.criteria_table["Subjects"].tolist()
        == r.failures.failures_table["Subjects"].tolist()
    )

    # Table 1: the pack's is the page's default table without the test columns, led by the row
    # of new subjects; every cell it shows is the page's.
    page_table = r.baseline.table
    assert page_table is not None
    header, rows = sheet(r.book, "Table 1")
    body = rows[1:] if pack.since_cut is not None else rows
    assert header == [c for c in page_table.columns if c in header]
    assert body == cells(page_table[header])

    # Adverse events: the summary and the SOC/PT sheets are the page's tables; the SAE sheet
    # lists exactly the page's serious AEs (the page shows up to 500: all of them here).
    if r.safety.population.subjects:
        header, rows = sheet(r.book, "AE summary")
        summary = r.safety.summary_table.drop(columns="category")
        assert header == list(summary.columns) and rows == cells(summary)
        header, rows = sheet(r.book, "AEs by SOC and PT")
        terms = r.safety.terms_sheet().rename(columns={"level": "Level"})
        assert header == list(terms.columns) and rows == cells(terms)
    assert r.safety.sae_total == len(r.safety.sae_events)
    header, rows = sheet(r.book, SAE_SHEET)
    listed = {(row[header.index("USUBJID")], row[header.index("AESEQ")]) for row in rows}
    shown = {
        (str(u), _cell(s))
        for u, s in zip(r.safety.sae_events["usubjid"], r.safety.sae_events["seq"], strict=True)
    }
    assert listed == shown
    if shown:
        n, subjects = len(shown), len({u for u, _ in shown})
        lead = f"{n} serious {'AE' if n == 1 else 'AEs'} in {plural(subjects, 'subject')}."
        assert lead in r.pdf


# -- blinding by construction ---------------------------------------------------------------------

SUBJECT = "01-701-1015"  # a pilot subject on Placebo


def everything_shown(engine: Engine, ctx: ViewContext) -> dict[str, str]:
    """Every view of every page with each of its choices, the drilldowns, every chart spec drawn
    from them, and the pack's two files, each as text."""
    shown: dict[str, Any] = {}
    with Session(engine) as session:
        overview = build_overview(session, ctx)
        enrollment = build_enrollment(session, ctx)
        failures = build_screen_failures(session, ctx)
        shown |= {"overview": overview, "enrollment": enrollment, "failures": failures}
        for population in POPULATION_LABELS:
            for by in ("arm", "site"):
                view = build_baseline(session, ctx, TableOneOptions(population=population, by=by))
                shown[f"baseline {population} by {view.options.by}"] = view
                for variable in view.variables:
                    chart: Any
                    if variable.categorical:
                        levels = level_counts(
                            view.value_counts, key=variable.key, columns=view.columns
                        )
                        chart = categorical_distribution_chart(levels, label=variable.label)
                    else:
                        boxes = column_summaries(
                            view.value_counts, key=variable.key, columns=view.columns
                        )
                        chart = box_chart(boxes, label=variable.label)
                    shown[f"chart {population} {by} {variable.key}"] = chart.to_json()
        for dimension in WORST_DIMENSIONS:
            for emergent in (False, True):
                options = AdverseEventsOptions(treatment_emergent=emergent, dimension=dimension)
                ae_view = build_adverse_events(session, ctx, options)
                shown[f"ae {dimension} {emergent}"] = ae_view
                shown[f"ae chart {dimension} {emergent}"] = worst_level_chart(
                    ae_view.worst_levels, dimension=ae_view.options.dimension
                ).to_json()
                if not ae_view.terms.empty:
                    shown[f"soc chart {emergent}"] = soc_incidence_chart(
                        soc_incidence(ae_view.terms, ae_view.population.by_arm)
                    ).to_json()
        safety = shown["ae severity False"]
        pick = summary_cell_pick(
            (0, safety.summary_table.columns[1]), safety.summary_table, safety.population.by_arm
        )
        assert pick is not None
        shown["ae drilldown"] = events(session, ctx, **listing_filters(pick))
        shown["ds discontinuations"] = ds_discontinuations(session, ctx, pick.arm)
        history, _ = events(session, ctx, in_population=False, usubjids=(SUBJECT,))
        frame, _ = timeline_frame(history, cutoff=enrollment.frame.cutoff)
        shown["timeline"] = timeline_chart(frame).to_json()
        shown["timeline choices"] = subjects_with_events(session, ctx)
        site = str(studies.sites(session, study_id=ctx.study_id)["site_id"].iloc[0])
        shown["site subjects"] = site_subjects(session, ctx, site)
        first = failures.by_criterion.iloc[0]
        shown["failed subjects"] = failed_subjects(
            session, ctx, str(first["code"]), str(first["protocol_version"])
        )
        shown["subject"] = record(session, ctx, SUBJECT)
        cutoff = enrollment.frame.cutoff
        assert cutoff is not None
        shown["visit grid"] = grid(session, ctx, as_of=cutoff, window_days=7, needing_action=False)
        shown["subject schedule"] = subject_schedule(
            session, ctx, SUBJECT, as_of=cutoff, window_days=7
        )
        for method in METHODS:
            shown[f"site risk {method}"] = build_site_risk(
                session, ctx, SiteRiskOptions(method=method)
            )
        pack = build_pack(session, ctx)
    shown["accrual chart"] = accrual_chart(**enrollment.accrual_chart_inputs).to_json()
    shown["funnel chart"] = funnel_chart(enrollment.funnel).to_json()
    shown["criteria chart"] = criteria_chart(
        failures.by_criterion, screened=failures.counts.screened
    ).to_json()
    shown["monthly chart"] = monthly_rate_chart(failures.monthly).to_json()
    if failures.site_grid is not None:
        shown["site chart"] = site_criterion_heatmap(failures.site_grid).to_json()
    workbook = openpyxl.load_workbook(io.BytesIO(pack_workbook(pack)))
    shown["workbook"] = "\n".join(
        " ".join(_cell(v) for v in row)
        for name in workbook.sheetnames
        for row in workbook[name].values
    )
    pages = PdfReader(io.BytesIO(pack_pdf(pack))).pages
    shown["pdf"] = " ".join(page.extract_text() for page in pages)
    return {name: text_of(value) for name, value in shown.items()}


@pytest.mark.parametrize("sites", ["all sites", "two sites"])
def test_a_blinded_viewer_meets_no_arm_anywhere(engines: dict[str, Engine], sites: str) -> None:
    engine = engines[PILOT]
    blinded = context_for(engine, PILOT, sites, "blinded")
    assert not blinded.shows_arms  # the pilot is double blind
    leaks = {
        name: found
        for name, text in everything_shown(engine, blinded).items()
        if (found := {arm for arm in ARM_NAMES if arm in text})
    }
    assert leaks == {}
    # The same walk for an unblinded viewer finds the arms: the search can fail.
    unblinded = everything_shown(engine, context_for(engine, PILOT, sites, "unblinded"))
    assert {arm for arm in ARM_NAMES if arm in unblinded["workbook"]} >= set(ARM_NAMES[:3])
    assert "Xanomeline High Dose" in unblinded["ae severity False"]


def test_a_query_naming_arms_without_a_pooling_rule_is_refused(
    engines: dict[str, Engine],
) -> None:
    """Blinding cannot be forgotten: a query the reader has no rule for, whose answer names arms,
    is refused for a viewer who sees none (and passes for one who does)."""

    def new_query(session: Session, *, study_id: str, scope: Any) -> pd.DataFrame:
        return pd.DataFrame({"arm": ["Placebo"], "subjects": [3]})

    with Session(engines[PILOT]) as session:
        assert not Reader(session, ViewContext(PILOT))(new_query).empty
        with pytest.raises(BlindingError, match="new_query names arms"):
            Reader(session, ViewContext(PILOT, shows_arms=False))(new_query)


POOLING_FUNCTIONS = {
    "pool_arms",
    "pool_numeric",
    "pool_reasons",
    "pool_safety_population",
    "pool_safety_summary",
    "pool_term_incidence",
    "drop_arm_columns",
    "blind_subject_record",
}


def test_blinding_is_applied_in_one_place() -> None:
    """Only the reader calls the pooling functions (metrics.blinding defines them): no loader,
    page, view builder, pack or command pools by hand."""
    users: dict[str, set[str]] = {}
    for path in [
        *(PROJECT_ROOT / "dashboard").rglob("*.py"),
        *(PROJECT_ROOT / "pages").glob("*.py"),
    ]:
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if relative == "dashboard/metrics/blinding.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else None
            )
            if name in POOLING_FUNCTIONS:
                users.setdefault(relative, set()).add(name)
    assert set(users) == {"dashboard/views/reader.py"}


def test_missing_reference_data_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        reference_absent("reference data folder x is absent")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        reference_absent("reference data folder x is absent")
