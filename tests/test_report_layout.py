"""The monitoring pack reads as a document (issue #18): no heading at the foot of a page with its
chart or table on the next, no table cut at the page's edge, and for some sites the same targets
as the app's pages for those sites.

The packs of the seed demo, DEMO-MULTI and the CDISC pilot are rendered and read back with pypdf:
the headings are the PDF outline's entries (the code records every heading and sub-heading
there), their place on the page is where pypdf finds their text, and what follows them is any
text line or image drawn lower on the same page.
"""

import functools
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream, Destination
from reportlab.platypus import Flowable, Image, PageBreak, Paragraph, Table
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import make_engine
from dashboard.queries import studies
from dashboard.report import pdf
from dashboard.report.pack import MonitoringPack, build_pack
from dashboard.report.pdf import MARGIN, pack_pdf, site_table_shown
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import build_enrollment
from dashboard.views.excursions import excursion_table
from dashboard.views.overview import build_overview

SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"
# Below this height only the footer is drawn (page number, study, cut).
FOOTER_TOP = MARGIN


@pytest.fixture(scope="module")
def engines(demo_db_url: str, pilot_db_url: str) -> Iterator[dict[str, Engine]]:
    demo, pilot = make_engine(demo_db_url), make_engine(pilot_db_url)
    yield {SEED: demo, MULTI: demo, PILOT: pilot}
    demo.dispose()
    pilot.dispose()


def _context(engine: Engine, study_id: str, sites: tuple[str, ...] | None = None) -> ViewContext:
    with Session(engine) as session:
        info = studies.study_info(session, study_id=study_id)
    assert info is not None
    return ViewContext.for_viewer(info, unblinded=True, scope=sites, viewer_sites=sites)


@dataclass
class Rendered:
    pack: MonitoringPack
    pdf: bytes

    @functools.cached_property
    def reader(self) -> PdfReader:
        return PdfReader(io.BytesIO(self.pdf))


@pytest.fixture(scope="module")
def packs(engines: dict[str, Engine]) -> dict[str, Rendered]:
    out = {}
    for study in (SEED, MULTI, PILOT):
        with Session(engines[study]) as session:
            pack = build_pack(session, _context(engines[study], study))
        out[study] = Rendered(pack, pack_pdf(pack))
    return out


# -- reading the PDF back ------------------------------------------------------------------------


def outline_headings(reader: PdfReader) -> list[tuple[str, int]]:
    """Every outline entry (headings and, nested, sub-headings): its title and page index."""
    found: list[tuple[str, int]] = []

    def walk(entries: list[Any]) -> None:
        for entry in entries:
            if isinstance(entry, list):
                walk(entry)
            elif isinstance(entry, Destination):
                page = reader.get_destination_page_number(entry)
                assert page is not None, f"outline entry {entry.title!r} leads to no page"
                found.append((str(entry.title), page))

    walk(reader.outline)
    return found


def _multiply(m: list[float], n: list[float]) -> list[float]:
    """The PDF matrix product m x n (each as a, b, c, d, e, f)."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return [
        a * p + b * r,
        a * q + b * s,
        c * p + d * r,
        c * q + d * s,
        e * p + f * r + t,
        e * q + f * s + u,
    ]


def text_lines(reader: PdfReader, index: int) -> list[tuple[str, float]]:
    """The page's text runs and the height of their baseline (points from the page's foot)."""
    lines: list[tuple[str, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: Any) -> None:
        if text.strip():
            lines.append((text.strip(), _multiply(tm, cm)[5]))

    reader.pages[index].extract_text(visitor_text=visit)
    return lines


def image_tops(reader: PdfReader, index: int) -> list[float]:
    """The top edge of every image (chart, flow diagram) drawn on the page."""
    page = reader.pages[index]
    stream = ContentStream(page.get_contents(), reader)
    matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    saved: list[list[float]] = []
    tops = []
    for operands, operator in stream.operations:
        if operator == b"q":
            saved.append(matrix)
        elif operator == b"Q":
            matrix = saved.pop()
        elif operator == b"cm":
            matrix = _multiply([float(v) for v in operands], matrix)
        elif operator == b"Do":
            # An image fills the unit square mapped by the current matrix.
            tops.append(max(matrix[5], matrix[5] + matrix[3]))
    return tops


def orphan_headings(reader: PdfReader) -> list[str]:
    """The headings with nothing under them on their page (but the footer)."""
    orphans = []
    for title, index in outline_headings(reader):
        lines = text_lines(reader, index)
        at = [y for text, y in lines if text == title]
        assert at, f"heading {title!r} not found on page {index + 1}"
        y = min(at)
        below = [t for t, ty in lines if ty < y - 1 and ty > FOOTER_TOP]
        drawn = [top for top in image_tops(reader, index) if top < y]
        if not below and not drawn:
            orphans.append(f"{title!r} on page {index + 1}")
    return orphans


def layout_text(pdf: bytes, index: int, folder: Path) -> str:
    """One page's text as ``pdftotext -layout`` sets it: a table row on one line."""
    path = folder / "pack.pdf"
    path.write_bytes(pdf)
    page = str(index + 1)
    return subprocess.run(
        ["pdftotext", "-layout", "-f", page, "-l", page, str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def page_text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("study", [SEED, MULTI, PILOT])
def test_no_heading_ends_a_page(packs: dict[str, Rendered], study: str) -> None:
    reader = packs[study].reader
    headings = [title for title, _ in outline_headings(reader)]
    # The outline holds the sections (so the check covers them all) and the sub-headings.
    assert "Flow of subjects" in headings and "Site risk" in headings
    assert "Forecast" in headings and "Quality tolerance limits" in headings
    assert orphan_headings(reader) == []


def test_the_check_finds_a_heading_left_alone_at_a_page_foot(
    packs: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check itself: a pack whose flow diagram lands on the page after its heading (as
    # main's layout had it for every study) is caught.
    original = pdf._flow

    def split_flow(pack: MonitoringPack) -> list[Flowable]:
        heading, *rest = [f for f in original(pack) if isinstance(f, Paragraph | Image)]
        return [PageBreak(), heading, PageBreak(), *rest]

    monkeypatch.setattr(pdf, "_flow", split_flow)
    reader = PdfReader(io.BytesIO(pack_pdf(packs[SEED].pack)))
    assert [o for o in orphan_headings(reader) if "Flow of subjects" in o]


def test_sections_flow_on_and_no_page_is_blank(packs: dict[str, Rendered]) -> None:
    # Sections start where the one before ended if they fit: the seed demo's pack (one site, small
    # tables) took 10 pages, not 13 with a page per small table (an earlier layout); its laboratory
    # section (issue #21: eight shift tables and the eDISH plot) adds four.
    assert len(packs[SEED].reader.pages) <= 14
    for rendered in packs.values():
        reader = rendered.reader
        for index in range(len(reader.pages)):
            lines = [t for t, y in text_lines(reader, index) if y > FOOTER_TOP]
            assert lines or image_tops(reader, index), f"page {index + 1} is blank"


def test_every_site_is_in_the_site_table_with_the_apps_target(
    engines: dict[str, Engine], packs: dict[str, Rendered], tmp_path: Path
) -> None:
    rendered = packs[MULTI]
    with Session(engines[MULTI]) as session:
        app = build_enrollment(session, _context(engines[MULTI], MULTI))
    assert app.sites is not None
    text = page_text(rendered.reader)
    (index,) = [i for title, i in outline_headings(rendered.reader) if title == "Sites"]
    page = layout_text(rendered.pdf, index, tmp_path)
    shown = site_table_shown(rendered.pack.sites)
    # The pack's table is the app's, cell for cell (the page's headers).
    assert rendered.pack.sites["Site"].tolist() == app.sites["site_id"].tolist()
    assert rendered.pack.sites["Site target"].tolist() == app.sites["planned_enrollment"].tolist()
    assert "Site target" in page and "Of target" in page  # no column cut off the page
    for site, target, share in zip(
        shown["Site"], shown["Site target"], shown["Of target"], strict=True
    ):
        # Each site's row, whole: its id, its own target and the share of it (the page's), then
        # what the multicentre model expects of it and the chance of recruiting that few.
        row = next(line for line in page.splitlines() if line.split()[:1] == [site])
        assert row.split()[-4:-2] == [target, share], row
        expected, p_at_most = shown.set_index("Site").loc[site, ["Expected", "P(≤ enrolled)"]]
        assert row.split()[-2:] == [expected, p_at_most], row
    assert set(app.sites["site_id"].astype(str)) <= set(text.split())


def test_a_pack_for_some_sites_has_the_apps_targets_for_them(engines: dict[str, Engine]) -> None:
    # A viewer limited to sites 101 and 102 (`report --as`, or the Overview's download): the pack's
    # headline target, its chart's target line and its site table are the Enrollment and Overview
    # pages' for the same sites, and the sites' own sum, never the study's target.
    engine = engines[MULTI]
    ctx = _context(engine, MULTI, ("101", "102"))
    with Session(engine) as session:
        overview = build_overview(session, ctx)
        enrollment = build_enrollment(session, ctx)
        pack = build_pack(session, ctx)
        every_site = studies.sites(session, study_id=MULTI)
    own = every_site[every_site["site_id"].astype(str).isin(["101", "102"])]
    expected = int(own["planned_enrollment"].sum())
    assert overview.target == enrollment.target == expected
    assert pack.enrollment.chart_target == expected
    headline = dict(zip(pack.headline["Figure"], pack.headline["Value"], strict=True))
    assert headline["Target enrollment"] == expected
    text = " ".join(page_text(PdfReader(io.BytesIO(pack_pdf(pack)))).split())
    assert f"Target enrollment {expected} Sites 2" in text  # the headline table's two rows
    assert f"The target line is the chosen sites' own ({expected})." in text
    # The cover's registry target is said to be the whole study's, beside the sites' own.
    assert f"the whole study's; these sites' own: {expected}" in text
    assert enrollment.sites is not None and pack.enrollment.sites is not None
    app_targets = dict(
        zip(enrollment.sites["site_id"], enrollment.sites["planned_enrollment"], strict=True)
    )
    pack_targets = dict(
        zip(
            pack.enrollment.sites["site_id"],
            pack.enrollment.sites["planned_enrollment"],
            strict=True,
        )
    )
    assert pack_targets == app_targets and set(app_targets) == {"101", "102"}


def test_open_excursions_read_as_on_the_site_risk_page(
    packs: dict[str, Rendered], tmp_path: Path
) -> None:
    # The pilot crosses its discontinuation limit: the pack lists the excursion as the Site risk
    # page does (the QTL's name, per cent), not the stored row (parameter id, 0.566929).
    rendered = packs[PILOT]
    view = rendered.pack.site_risk
    open_rows = view.excursions[~view.excursions["closed"].astype(bool)]
    assert not open_rows.empty
    names = {q.definition.id: q.definition.name for q in view.qtls}
    shown = excursion_table(open_rows, names)
    (index,) = [i for title, i in outline_headings(rendered.reader) if title == "Open excursions"]
    page = layout_text(rendered.pdf, index, tmp_path)
    for name, proportion, limit in zip(
        shown["QTL"], shown["Proportion"], shown["Limit"], strict=True
    ):
        row = next(line for line in page.splitlines() if name in line)
        assert proportion in row and limit in row, row
    assert "parameter" not in page and "qtl_discontinuation" not in page


def test_a_table_too_wide_for_the_page_is_split_by_columns_with_its_row_names() -> None:
    # Twenty-five arms of Table 1: at 6 pt the columns still do not fit the page without breaking
    # words, so the table comes in parts, each led by the characteristic and the statistic.
    arms = [f"Arm number {n} (n=100)" for n in range(1, 26)]
    frame = pd.DataFrame(
        {
            "Characteristic": ["Age (years)", ""],
            "Statistic": ["Mean (SD)", "Median [Q1, Q3]"],
            **{arm: ["61.0(11.2)", "62.0[51.0,71.0]"] for arm in arms},
        }
    )
    flowables = pdf.data_tables(frame, keys=2)
    tables = [f for f in flowables if isinstance(f, Table)]
    assert len(tables) > 1
    columns = [[p.getPlainText() for p in t._cellvalues[0]] for t in tables]  # type: ignore[attr-defined]
    assert all(c[:2] == ["Characteristic", "Statistic"] for c in columns)
    assert [a for c in columns for a in c[2:]] == arms  # every arm once, in order
    for table in tables:
        width, _ = table.wrap(pdf.FRAME_WIDTH, pdf.FRAME_HEIGHT)
        assert width <= pdf.FRAME_WIDTH + 0.01  # inside the page
    # A table that fits stays whole.
    assert len([f for f in pdf.data_tables(frame.iloc[:, :5], keys=2) if isinstance(f, Table)]) == 1
