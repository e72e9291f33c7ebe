"""The monitoring pack as a PDF (A4 landscape): a title page, a contents list, then one section per
figure, page numbers on every page.

Charts are the pages' own altair specs (``dashboard.charts``) rendered to PNG with vl-convert, the
flow diagram is the Enrollment page's SVG; tables are laid out to the page width, their header
repeated on every page they run over.
"""

import datetime as dt
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import altair as alt
import pandas as pd
import reportlab
import vl_convert
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.tableofcontents import TableOfContents

from dashboard.charts.consort import svg_to_png
from dashboard.charts.enrollment import accrual_chart, forecast_bands_chart, funnel_chart
from dashboard.charts.labs import edish_chart
from dashboard.charts.screen_failures import criteria_chart
from dashboard.charts.site_risk import funnel_chart as kri_funnel_chart
from dashboard.charts.site_risk import qtl_chart
from dashboard.metrics.ae_listing import LISTING_HEADERS
from dashboard.metrics.labs import NOT_ASSESSABLE
from dashboard.metrics.site_forecast import BELOW_EXPECTED
from dashboard.report.labs import (
    NO_LAB_DATA,
    SUMMARY_MISSING,
    TOTAL_ARM,
    arm_subjects,
    date_text,
    peak_text,
    shift_arms,
)
from dashboard.report.pack import BLINDED_NOTE, NEW, MonitoringPack
from dashboard.views.excursions import excursion_table
from dashboard.views.format import plural, registry_enrollment
from dashboard.views.site_risk import SiteRiskView, recruitment_sentence

PAGE_SIZE = landscape(A4)
MARGIN = 12 * mm
FOOTER_Y = 7 * mm
BODY_WIDTH = PAGE_SIZE[0] - 2 * MARGIN
BODY_HEIGHT = PAGE_SIZE[1] - 2 * MARGIN
# What a page's frame holds: the body less the footer's room and reportlab's frame padding (6 pt
# each side). A block taller than this cannot be placed at all; one that is placed by this size
# fits any page.
FRAME_PADDING = 6.0
FRAME_WIDTH = BODY_WIDTH - 2 * FRAME_PADDING
FRAME_HEIGHT = BODY_HEIGHT - 3 * mm - 2 * FRAME_PADDING
# A table starts on a page only with room for its header and a few rows after its heading; a
# table up to SMALL_TABLE tall is not split at all (a page holding its last three rows).
TABLE_START = 30 * mm
SMALL_TABLE = FRAME_HEIGHT * 0.6
CHART_WIDTH_PX = 760  # the charts' drawing width (their fonts print at about 9 pt across the page)
CHART_SCALE = 2.0
# The PDF lists at most this many SAEs, the new ones first: about ten pages, what a meeting reads
# (the workbook lists every one, and the text says so). A thousand took forty pages and a third of
# the PDF's build time at 50,000 subjects.
PDF_SAE_LIMIT = 250
NEW_ROW_COLOUR = colors.HexColor("#fff3b0")  # the Adverse events page's highlight
HEADER_COLOUR = colors.HexColor("#1f3b5a")
SOC_ROW_COLOUR = colors.HexColor("#eef2f7")
GRID_COLOUR = colors.HexColor("#c8ccd2")

# Bitstream Vera ships inside reportlab, so the PDF looks the same on every machine; it has the
# glyphs the tables use (≥, ·, –, …), which the PDF standard fonts lack.
_FONT_DIR = Path(reportlab.__file__).parent / "fonts"
FONT, BOLD, ITALIC = "PackSans", "PackSans-Bold", "PackSans-Italic"


def _register_fonts() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    pdfmetrics.registerFont(TTFont(FONT, str(_FONT_DIR / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(_FONT_DIR / "VeraBd.ttf")))
    pdfmetrics.registerFont(TTFont(ITALIC, str(_FONT_DIR / "VeraIt.ttf")))
    pdfmetrics.registerFont(TTFont(f"{FONT}-BoldItalic", str(_FONT_DIR / "VeraBI.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=BOLD, italic=ITALIC, boldItalic=f"{FONT}-BoldItalic"
    )


_register_fonts()

STYLES = {
    "cover": ParagraphStyle("cover", fontName=BOLD, fontSize=26, leading=32, spaceAfter=10),
    "cover_sub": ParagraphStyle("cover_sub", fontName=FONT, fontSize=14, leading=19, spaceAfter=14),
    "heading": ParagraphStyle(
        "PackHeading",
        fontName=BOLD,
        fontSize=15,
        leading=19,
        spaceBefore=12,  # none at a page's top: reportlab drops it there
        spaceAfter=6,
        textColor=HEADER_COLOUR,
    ),
    "subheading": ParagraphStyle(
        "PackSubheading", fontName=BOLD, fontSize=11, leading=14, spaceBefore=6, spaceAfter=4
    ),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=13, spaceAfter=5),
    "note": ParagraphStyle(
        "note", fontName=ITALIC, fontSize=8, leading=10.5, textColor=colors.HexColor("#555555")
    ),
    "toc0": ParagraphStyle("toc0", fontName=FONT, fontSize=11, leading=16, leftIndent=6 * mm),
}
CELL_PADDING = 3.0
TABLE_FONT_SIZE = 7.5  # small enough for a 15-column listing across A4 landscape
MIN_FONT_SIZE = 6.0


def _cell_styles(size: float) -> dict[str, ParagraphStyle]:
    """The styles of a table's header, text cells and figure cells at one font size."""
    leading = size * 1.2
    return {
        "cell": ParagraphStyle(f"cell{size}", fontName=FONT, fontSize=size, leading=leading),
        "cell_right": ParagraphStyle(
            f"cell_right{size}", fontName=FONT, fontSize=size, leading=leading, alignment=TA_RIGHT
        ),
        "head": ParagraphStyle(
            f"head{size}", fontName=BOLD, fontSize=size, leading=leading, textColor=colors.white
        ),
    }


# -- text ----------------------------------------------------------------------------------------


def _day(day: dt.date | None) -> str:
    return day.strftime("%d %b %Y") if day else "unknown"


def _cell_text(value: object) -> str:
    """A value as a table cell shows it: blank for missing, dates as ISO, whole numbers bare."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if pd.isna(value):
            return ""
        return f"{value:g}" if value != int(value) else str(int(value))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "Yes" if value else ""
    return str(value)


def plain(markdown: str) -> str:
    """A view's sentence without its markdown emphasis (the PDF sets plain paragraphs)."""
    return markdown.replace("**", "").replace("\n\n", " ")


def changes_text(pack: MonitoringPack) -> str:
    """One sentence on what is new since the compared cut (plain text)."""
    if pack.cut is None:
        return "No data cut loaded yet (the registry record only): nothing to compare with."
    return (
        pack.overview.changes_sentence
        or "Only one data cut is loaded: nothing to compare with yet."
    )


# -- flowables -----------------------------------------------------------------------------------


def _para(text: str, style: str = "body") -> Paragraph:
    return Paragraph(escape(text), STYLES[style])


def _heading(text: str) -> Paragraph:
    # The document records every paragraph of this style in the contents and the PDF outline.
    return Paragraph(escape(text), STYLES["heading"])


def _subheading(text: str) -> Paragraph:
    # In the PDF outline under its section (``OUTLINE_LEVELS``), not in the contents.
    return Paragraph(escape(text), STYLES["subheading"])


def _height(flowables: Sequence[Flowable], width: float = FRAME_WIDTH) -> float:
    """How tall ``flowables`` stand one after the other in a page's frame, spacing included."""
    total = 0.0
    for flowable in flowables:
        _, height = flowable.wrap(width, FRAME_HEIGHT)
        total += height + flowable.getSpaceBefore() + flowable.getSpaceAfter()
    return total


def _kept_with_next(lead: Sequence[Flowable], *, need: float) -> list[Flowable]:
    """``lead`` (a heading and its introduction) where at least ``need`` points are left under
    it for what follows (a chart's height, a table's first rows); else on the next page. A heading
    is never the last thing on a page, and a section that fits starts where the last one ended,
    not on a page of its own (which left pages nearly empty)."""
    return [CondPageBreak(min(_height(lead) + need, FRAME_HEIGHT)), *lead]


def _table_start(blocks: Sequence[Flowable]) -> float:
    """The room ``blocks`` (a table, perhaps after a note) need to start on a page: the whole of
    a small table, else what leads it and a few rows."""
    before = 0.0
    for block in blocks:
        height = _height([block])
        if isinstance(block, Table):
            return before + (height if height <= SMALL_TABLE else TABLE_START)
        before += height
    return before


def _image(png: bytes, *, max_width: float = FRAME_WIDTH, max_height: float) -> Image:
    """A PNG scaled to fit the box, its proportions kept."""
    width, height = ImageReader(io.BytesIO(png)).getSize()
    scale = min(max_width / width, max_height / height)
    return Image(io.BytesIO(png), width=width * scale, height=height * scale)


def chart_png(chart: alt.TopLevelMixin, *, width: int = CHART_WIDTH_PX) -> bytes:
    """A page's altair chart as a PNG, drawn ``width`` pixels wide (the pages let the browser
    choose the width: here it is set)."""
    spec = chart.properties(width=width).to_dict()
    return bytes(vl_convert.vegalite_to_png(spec, scale=CHART_SCALE))


def _column_widths(
    cells: list[list[str]], header: list[str], total: float, *, size: float
) -> tuple[list[float], bool]:
    """Each column's natural width (its longest text, capped at half the page), then cut to fit
    ``total``: narrow columns keep their width and the wide ones share what is left, none below
    its longest word (so no word is broken). The flag says whether that was possible: if not,
    every column is shrunk alike (and long words break)."""
    n = len(header)
    pad = 2 * CELL_PADDING + 1

    def width_of(text: str, bold: bool = False) -> float:
        return pdfmetrics.stringWidth(text, BOLD if bold else FONT, size)

    natural, minimum = [], []
    for j in range(n):
        texts = [row[j] for row in cells]
        longest = max([width_of(t) for t in texts] + [0.0])
        word = max(
            [width_of(w) for t in texts for w in t.split()]
            + [width_of(w, bold=True) for w in header[j].split()]
            + [8.0]
        )
        head = width_of(header[j], bold=True)
        natural.append(min(max(longest, min(head, 12 * size), word) + pad, total / 2))
        minimum.append(min(word + pad, natural[-1]))
    if sum(natural) <= total:
        return natural, True
    widths = list(minimum)
    spare = total - sum(widths)
    if spare <= 0:  # too many columns even at their longest words: shrink all alike
        return [w * total / sum(widths) for w in widths], False
    wanting = [j for j in range(n) if natural[j] > widths[j]]
    while spare > 1e-6 and wanting:
        share = spare / len(wanting)
        for j in list(wanting):
            grant = min(share, natural[j] - widths[j])
            widths[j] += grant
            spare -= grant
            if natural[j] - widths[j] <= 1e-6:
                wanting.remove(j)
    return widths, True


WIDOW_ROWS = 3  # a table split over two pages carries at least this many rows onto the next


class _DataTable(Table):
    """A table split at a page's foot with at least ``WIDOW_ROWS`` rows on either side: none
    starts with a row or two at a page's foot, none leaves a row or two alone under its repeated
    header on the next page (Table 1's last "Missing, n" row stood alone so)."""

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        parts = super().split(availWidth, availHeight)
        if len(parts) != 2:
            return parts
        first, rest = (len(part._cellvalues) - self.repeatRows for part in parts)  # type: ignore[attr-defined]
        if first < WIDOW_ROWS:
            return []  # the whole table starts on the next page
        if rest >= WIDOW_ROWS:
            return parts
        moved = WIDOW_ROWS - rest
        if first - moved < WIDOW_ROWS:
            return []
        end = len(parts[0]._cellvalues)  # type: ignore[attr-defined]
        heights = self._rowHeights  # type: ignore[attr-defined]  # set by wrap(), before split()
        shorter = super().split(availWidth, availHeight - sum(heights[end - moved : end]))
        if len(shorter) != 2:
            return parts
        # The rest on the next page: the room the moved rows leave is not for its next rows.
        return [shorter[0], PageBreak(), shorter[1]]


def data_table(
    frame: pd.DataFrame,
    *,
    width: float = FRAME_WIDTH,
    highlight: Sequence[bool] | None = None,
    emphasise: Sequence[bool] | None = None,
    right: Sequence[str] = (),
    bold_values: Sequence[str] = (),
    font_size: float = TABLE_FONT_SIZE,
) -> Table:
    """``frame`` as a table across ``width``: cells wrap, the header repeats on each page.
    ``highlight``: rows shaded as new; ``emphasise``: rows in bold on a tint (a SOC's row);
    ``right``: columns aligned right (figures); ``bold_values``: cell texts set in bold ("new")."""
    header = [str(c) for c in frame.columns]
    cells = [[_cell_text(v) for v in row] for row in frame.itertuples(index=False)]
    # A wide listing is set a little smaller rather than break its words (down to 6 pt).
    widths, fits = _column_widths(cells, header, width, size=font_size)
    while not fits and font_size > MIN_FONT_SIZE:
        font_size -= 0.5
        widths, fits = _column_widths(cells, header, width, size=font_size)
    styles = _cell_styles(font_size)
    right_set = {header.index(c) for c in right if c in header}
    body: list[list[Flowable | str]] = [[Paragraph(escape(h), styles["head"]) for h in header]]
    # A cell whose text fits its column on one line is drawn as plain text in the cell's font
    # (what a one-line Paragraph draws, at the same leading, so rows keep their heights): laying
    # out a Paragraph per cell took most of the PDF's time for a listing of a thousand rows.
    # Longer texts stay Paragraphs, which wrap.
    bold_cells: list[tuple[int, int]] = []
    for i, row in enumerate(cells):
        strong = bool(emphasise[i]) if emphasise is not None else False
        line: list[Flowable | str] = []
        for j, text in enumerate(row):
            bold = strong or bool(text and text in bold_values)
            words = " ".join(text.split())  # as a Paragraph sets it: spaces collapsed
            room = widths[j] - 2 * CELL_PADDING
            if pdfmetrics.stringWidth(words, BOLD if bold else FONT, font_size) <= room:
                line.append(words)
                if bold and not strong:
                    bold_cells.append((j, i + 1))
                continue
            shown = escape(text)
            if bold:
                shown = f"<b>{shown}</b>"
            line.append(Paragraph(shown, styles["cell_right" if j in right_set else "cell"]))
        body.append(line)
    style: list[Any] = [
        ("FONT", (0, 1), (-1, -1), FONT, font_size, font_size * 1.2),
        *(("ALIGN", (j, 1), (j, -1), "RIGHT") for j in sorted(right_set)),
        *(("FONTNAME", cell, cell, BOLD) for cell in bold_cells),
        *(
            ("FONTNAME", (0, i + 1), (-1, i + 1), BOLD)
            for i in range(len(cells))
            if emphasise is not None and emphasise[i]
        ),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_COLOUR),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.4, GRID_COLOUR),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    for i in range(len(cells)):
        if highlight is not None and highlight[i]:
            style.append(("BACKGROUND", (0, i + 1), (-1, i + 1), NEW_ROW_COLOUR))
        elif emphasise is not None and emphasise[i]:
            style.append(("BACKGROUND", (0, i + 1), (-1, i + 1), SOC_ROW_COLOUR))
    table = _DataTable(body, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


def data_tables(
    frame: pd.DataFrame, *, keys: int = 1, width: float = FRAME_WIDTH, **options: Any
) -> list[Flowable]:
    """``frame`` as ``data_table``; a table too wide for ``width`` even in the smallest type
    without breaking a word (a 15-arm Table 1) is split by columns into parts, one under the
    other, each led by the first ``keys`` columns (what names the row) and titled with the
    columns it holds. So no table is cut at the page's edge or squeezed to a letter a line."""
    header = [str(c) for c in frame.columns]
    cells = [[_cell_text(v) for v in row] for row in frame.itertuples(index=False)]

    def fits(columns: list[int]) -> bool:
        return _column_widths(
            [[row[j] for j in columns] for row in cells],
            [header[j] for j in columns],
            width,
            size=MIN_FONT_SIZE,
        )[1]

    lead = list(range(min(keys, len(header))))
    if fits(list(range(len(header)))) or len(header) <= len(lead) + 1:
        return [data_table(frame, width=width, **options)]
    parts: list[list[int]] = [[]]
    for j in range(len(lead), len(header)):
        if parts[-1] and not fits(lead + parts[-1] + [j]):
            parts.append([])
        parts[-1].append(j)
    out: list[Flowable] = []
    for n, part in enumerate(parts, start=1):
        named = ", ".join(header[j] for j in part)
        out += [
            _para(f"Part {n} of {len(parts)}: {named}", "note"),
            data_table(frame.iloc[:, lead + part], width=width, **options),
            Spacer(1, 3 * mm),
        ]
    return out


# -- the document --------------------------------------------------------------------------------


# The paragraph styles that head a block, and their level in the PDF outline.
OUTLINE_LEVELS = {"PackHeading": 0, "PackSubheading": 1}


class _PackDocument(BaseDocTemplate):
    """A4 landscape; every "PackHeading" paragraph goes into the contents and the PDF outline,
    every "PackSubheading" into the outline under it."""

    def __init__(self, buffer: io.BytesIO, pack: MonitoringPack) -> None:
        super().__init__(
            buffer,
            pagesize=PAGE_SIZE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + 3 * mm,
            title=f"Monitoring pack: {pack.study.study_id}, data {pack.cut_label}",
            author="study-monitor",
            subject=pack.study.title,
            creator="study-monitor report",
        )
        frame = Frame(
            self.leftMargin, self.bottomMargin, self.width, self.height, id="body", showBoundary=0
        )
        self.addPageTemplates(
            [
                PageTemplate(id="cover", frames=[frame]),
                PageTemplate(id="body", frames=[frame]),
            ]
        )
        self._headings = 0

    def afterFlowable(self, flowable: Flowable) -> None:
        if not isinstance(flowable, Paragraph):
            return
        level = OUTLINE_LEVELS.get(flowable.style.name)
        if level is None:
            return
        text = flowable.getPlainText()
        self._headings += 1
        key = f"section-{self._headings}"
        self.canv.bookmarkPage(key)
        # Sub-headings go into the PDF outline under their section, not into the contents list.
        self.canv.addOutlineEntry(text, key, level=level)
        if level == 0:
            self.notify("TOCEntry", (0, text, self.page, key))

    def handle_documentBegin(self) -> None:
        self._headings = 0  # multiBuild lays the document out more than once
        super().handle_documentBegin()


def _canvas_maker(pack: MonitoringPack) -> type[Canvas]:
    """A canvas that numbers pages "N of M": it keeps each page until the last is known."""
    cut = pack.cut
    left = f"{pack.study.study_id} · monitoring pack · " + (
        f"data {cut.name}, cut-off {_day(cut.cutoff_date)}" if cut else "no data cut"
    )
    left += f" · generated {pack.generated_at:%d %b %Y %H:%M} UTC"

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []
            self._bookmarks: list[str] = []

        def bookmarkPage(self, key: str, **kwargs: Any) -> None:  # type: ignore[override]
            # Kept with its page: a bookmark names the page the PDF is writing, and pages are
            # only written in save() (set here, every outline entry led to page 1).
            self._bookmarks.append(key)

        def showPage(self) -> None:
            # Kept, not emitted: the page is drawn in save(), once the page count is known.
            self._pages.append(dict(self.__dict__))
            self._bookmarks = []
            self._startPage()  # type: ignore[attr-defined]  # reportlab's own page reset

        def save(self) -> None:
            total = len(self._pages)
            for page in self._pages:
                self.__dict__.update(page)
                for key in page["_bookmarks"]:
                    Canvas.bookmarkPage(self, key)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            self.saveState()
            self.setFont(FONT, 7.5)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(MARGIN, FOOTER_Y, left)
            self.drawRightString(
                PAGE_SIZE[0] - MARGIN, FOOTER_Y, f"Page {self.getPageNumber()} of {total}"
            )
            self.restoreState()

    return NumberedCanvas


TARGET_LABEL = registry_enrollment(None, None)[0]


def _registry_target(pack: MonitoringPack, value: str) -> str:
    """The registry's target on a pack for some sites: said to be the whole study's, beside the
    sites' own that the pack's figures use (the Enrollment page's)."""
    if pack.scope is None:
        return value
    own = pack.enrollment.target
    return f"{value}, the whole study's; " + (
        f"these sites' own: {own}"
        if own is not None
        else "these sites have no targets of their own"
    )


def _cover(pack: MonitoringPack) -> list[Flowable]:
    study, cut, since = pack.study, pack.cut, pack.since_cut
    # The Overview's identity rows (its "Sites" row says how many; the cover names them below).
    identity: list[tuple[str, str]] = [
        ("Study", study.study_id),
        *(
            (label, _registry_target(pack, value) if label == TARGET_LABEL else value)
            for label, value in pack.overview.identity
            if label != "Sites"
        ),
        (
            "Data cut",
            f"{cut.name}: cut-off {_day(cut.cutoff_date)}, loaded "
            f"{cut.loaded_at:%d %b %Y %H:%M} UTC"
            if cut
            else "none loaded (registry record only)",
        ),
        (
            "Compared with",
            f"{since.name}: cut-off {_day(since.cutoff_date)}"
            if since
            else "nothing (one data cut only)",
        ),
        ("Sites", "every site" if pack.scope is None else ", ".join(pack.scope) or "none"),
        ("Generated", f"{pack.generated_at:%d %b %Y %H:%M} UTC"),
    ]
    rows = [
        [Paragraph(f"<b>{escape(k)}</b>", STYLES["body"]), Paragraph(escape(v), STYLES["body"])]
        for k, v in identity
    ]
    facts = Table(rows, colWidths=[45 * mm, BODY_WIDTH - 45 * mm], hAlign="LEFT")
    facts.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, GRID_COLOUR),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    out: list[Flowable] = [
        Spacer(1, 8 * mm),
        _para("Monitoring pack", "cover"),
        _para(study.title or study.study_id, "cover_sub"),
        facts,
    ]
    if study.is_synthetic:
        out += [
            Spacer(1, 4 * mm),
            _para("Synthetic demo data: no real patient is behind these figures.", "note"),
        ]
    return out


# The contents list's most entries: the sections a pack can have.
CONTENTS_ENTRIES = 12


def _contents() -> list[Flowable]:
    """The contents list under the cover's facts (a page of its own held a dozen lines), on the
    next page only where the cover leaves too little room."""
    toc = TableOfContents()
    toc.levelStyles = [STYLES["toc0"]]
    toc.dotsMinLevel = 0
    title = _para("Contents", "cover_sub")
    room = _height([title]) + CONTENTS_ENTRIES * STYLES["toc0"].leading
    return [Spacer(1, 6 * mm), CondPageBreak(room), title, toc]


def _headline(pack: MonitoringPack) -> list[Flowable]:
    out: list[Flowable] = [
        _heading("Headline figures and changes"),
        _para(changes_text(pack)),
        data_table(
            pack.headline,
            width=BODY_WIDTH * 0.6,
            right=[c for c in pack.headline.columns if c != "Figure"],
            font_size=10,
        ),
        Spacer(1, 3 * mm),
        _para(
            "Screened: every subject of the study (screen failures included). Adverse events: "
            "every AE in the data (subjects with at least one, and events). New: first held by a "
            "data cut after the one compared with; changed: held by that cut and altered since. "
            "The figures of the dashboard's pages and of `study-monitor summary`.",
            "note",
        ),
    ]
    return out


def _enrollment(pack: MonitoringPack) -> list[Flowable]:
    filtered = pack.scope is not None
    heading = _heading("Enrollment against the target")
    out: list[Flowable] = []
    if pack.accrual.empty:
        out += _kept_with_next(
            [heading, _para("No screening or enrollment dates in the data: nothing to draw.")],
            need=0,
        )
    else:
        chart = _image(
            chart_png(accrual_chart(**pack.enrollment.accrual_chart_inputs)),
            max_height=FRAME_HEIGHT * 0.62,
        )
        out += _kept_with_next([heading], need=_height([chart]))
        out += [chart, _para(pack.enrollment.accrual_caption, "note")]
    if pack.enrollment.undated_sentence:
        out.append(_para(pack.enrollment.undated_sentence, "note"))
    forecast = _para(
        "The forecast is for the whole study: this pack is for some sites only."
        if filtered
        else plain(pack.enrollment.forecast_sentence)
    )
    out += _kept_with_next([_subheading("Forecast")], need=_height([forecast]))
    out.append(forecast)
    if pack.enrollment.model_note:
        out.append(_para(plain(pack.enrollment.model_note), "note"))
    if pack.enrollment.forecast_method:
        out.append(_para(pack.enrollment.forecast_method, "note"))
    out += _site_forecast(pack)
    funnel = _image(chart_png(funnel_chart(pack.funnel)), max_height=FRAME_HEIGHT * 0.4)
    out += _kept_with_next([_heading("Screening funnel")], need=_height([funnel]))
    out.append(funnel)
    if not pack.treated_known:
        out.append(
            _para("No exposure data: who was treated is unknown, so that step is left out.", "note")
        )
    return out


def _site_forecast(pack: MonitoringPack) -> list[Flowable]:
    """The multicentre forecast's bands and its calibration at earlier cuts, as on the page."""
    view = pack.enrollment
    model = view.site_forecast
    if model is None:
        return []
    chart = _image(
        chart_png(
            forecast_bands_chart(
                view.accrual, model.bands, target=model.target, cutoff=model.cutoff
            )
        ),
        max_height=FRAME_HEIGHT * 0.5,
    )
    out: list[Flowable] = [
        chart,
        _para(
            "After the cut-off: the median of the predicted enrollment (dashed) with its 50% "
            "and 80% bands, planned sites included from their dates.",
            "note",
        ),
    ]
    shown = view.calibration_shown
    if shown is not None and not shown.empty:
        tables = data_tables(shown, right=["Sites", "Enrolled", "Actual"])
        heading = _subheading("How the forecast did at earlier cuts")
        out += _kept_with_next([heading], need=_table_start(tables))
        out += tables
        if view.calibration_sentence:
            out.append(_para(view.calibration_sentence, "note"))
    return out


def _recruitment_below(view: SiteRiskView) -> list[Flowable]:
    """The Site risk page's sites recruiting below the multicentre model's expectation."""
    sentence = recruitment_sentence(view)
    table = view.recruitment_below
    if sentence is None or table is None:
        return []
    heading = [Spacer(1, 2 * mm), _subheading("Recruitment against the model"), _para(sentence)]
    if table.empty:
        return _kept_with_next(heading, need=0)
    shown = table.astype(object).copy()
    shown["Open since"] = [f"{d:%d %b %Y}" for d in table["Open since"]]
    grid = data_table(shown, right=["Days open", "Enrolled", "Expected", "P(≤ enrolled)"])
    return [*_kept_with_next(heading, need=_table_start([grid])), grid]


def _blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def site_table_shown(sites: pd.DataFrame) -> pd.DataFrame:
    """The site table (``MonitoringPack.sites``) as the PDF prints it, as the page shows it:
    rates and shares as per cent, targets and days as whole numbers (blank: none)."""
    shown = sites.astype(object).copy()
    formats: dict[str, Callable[[Any], str]] = {
        "SF rate": lambda v: f"{float(v):.0%}",
        "Of target": lambda v: f"{float(v):.0%}",
        "Enrolled / month": lambda v: f"{float(v):.2f}",
        "Site target": lambda v: str(int(v)),
        "Days since last enrollment": lambda v: str(int(v)),
        "Expected": lambda v: f"{float(v):.1f}",
        "P(≤ enrolled)": lambda v: f"{float(v):.2f}",
    }
    for column, shown_as in formats.items():
        if column in shown:
            shown[column] = ["" if _blank(v) else shown_as(v) for v in shown[column]]
    return shown


def _sites(pack: MonitoringPack) -> list[Flowable]:
    """The Enrollment page's "Sites" table (none where the viewer sees one site)."""
    if pack.sites.empty:
        return []
    shown = site_table_shown(pack.sites)
    figures = [c for c in shown.columns if c not in ("Site", "Name", "Country", "Active since")]
    tables = data_tables(shown, right=figures)
    note = _para(
        "Active since: the activation date, else the first screening. Rates run to the cut-off. "
        "Site target: the site's own (blank where it has none), as on the Enrollment page. "
        "Expected: what a site of this study recruits on average in the time it has been open "
        "(the multicentre model); P(≤ enrolled): the chance of recruiting this few or fewer, "
        f"under {BELOW_EXPECTED}: below what the model expects.",
        "note",
    )
    return [*_kept_with_next([_heading("Sites"), note], need=_table_start(tables)), *tables]


def _flow(pack: MonitoringPack) -> list[Flowable]:
    heading = _heading("Flow of subjects")
    # The diagram fills what the page leaves under its heading, so the two share a page.
    png = svg_to_png(pack.flow_svg)
    diagram = _image(png, max_height=FRAME_HEIGHT - _height([heading]) - 2 * mm)
    return [*_kept_with_next([heading], need=_height([diagram])), diagram]


def _failures(pack: MonitoringPack) -> list[Flowable]:
    screened = int(pack.figures["screened"])
    failures = int(pack.figures["screen_failures"])
    heading = _heading("Screen failures by criterion")
    if pack.by_criterion.empty:
        return _kept_with_next(
            [
                heading,
                _para(
                    "No eligibility criteria are recorded for this study (no TI domain or "
                    "registry criteria): failures by criterion are unknown."
                ),
            ],
            need=0,
        )
    if pack.ie_missing:
        lead = _para(
            f"No IE domain in data {pack.cut.name if pack.cut else 'cut'}: failures by "
            f"criterion are unknown ({plural(failures, 'screen failure')} of {screened} screened, "
            "without a recorded criterion). What DS says about them:"
        )
        if pack.failure_dispositions.empty:
            return _kept_with_next(
                [heading, lead, _para("DS records no reason either.", "note")], need=0
            )
        tables = data_tables(pack.failure_dispositions, width=FRAME_WIDTH * 0.8, right=["Subjects"])
        return [*_kept_with_next([heading, lead], need=_table_start(tables)), *tables]
    unexplained = failures - pack.failures_with_reason
    lead = _para(
        f"{plural(failures, 'screen failure')} of {screened} screened. Bars count distinct "
        "screen-failed subjects per criterion; a subject can fail several, so the bars do not "
        f"add up: {pack.failures_more_than_one} failed more than one."
        + (f" {unexplained} have no criterion recorded." if unexplained else "")
    )
    # The chart has a bar per criterion, so it can be tall: it may fill the page, the table follows.
    chart = criteria_chart(pack.by_criterion, screened=screened)
    image = _image(chart_png(chart), max_height=FRAME_HEIGHT - 30 * mm)
    out = [*_kept_with_next([heading, lead], need=_height([image])), image]
    marker = pack.marker
    new_column = next((c for c in pack.failures_table.columns if c.startswith("New (")), None)
    tables = data_tables(
        pack.failures_table,
        right=["Subjects", "% of screened", *([new_column] if new_column else [])],
        highlight=(pack.failures_table[new_column] > 0).tolist() if new_column else None,
    )
    out += [
        *_kept_with_next([_subheading("Failures by criterion")], need=_table_start(tables)),
        *tables,
    ]
    if marker and pack.changes is not None:
        out.append(
            _para(
                "New: screen failures first seen after cut "
                f"{pack.since_cut.number if pack.since_cut else ''} "
                f"({pack.changes.new_screen_failures} in all), shaded rows.",
                "note",
            )
        )
    return out


def _baseline(pack: MonitoringPack) -> list[Flowable]:
    heading = _heading("Baseline characteristics (Table 1)")
    if pack.table_one.empty:
        return _kept_with_next(
            [heading, _para("No baseline characteristics of enrolled subjects in the data.")],
            need=0,
        )
    table = pack.table_one
    first_is_new = pack.since_cut is not None
    note = _para(
        (
            "Enrolled subjects by planned arm (ARM)."
            if pack.shows_arms
            else "Enrolled subjects by site (the study is blinded: no column by arm)."
        )
        + " Continuous: mean (SD) and median [Q1, Q3]; "
        "categorical: n (%) of the column's subjects with a value, missing counted on their "
        "own row."
        + (
            f" The first row counts the subjects new since cut {pack.since_cut.number}."
            if pack.since_cut
            else ""
        )
        + (f" {BLINDED_NOTE}" if pack.study.counts_as_blinded and pack.shows_arms else ""),
        "note",
    )
    tables = data_tables(
        table,
        keys=2,  # the characteristic and its statistic name every row
        highlight=[first_is_new and i == 0 for i in range(len(table))],
        right=[c for c in table.columns if c not in ("Characteristic", "Statistic")],
    )
    lead = [heading, note, Spacer(1, 2 * mm)]
    return [*_kept_with_next(lead, need=_table_start(tables)), *tables]


def _safety(pack: MonitoringPack) -> list[Flowable]:
    heading = _heading("Adverse events: summary by arm")
    out: list[Flowable] = []
    if pack.ae_summary.empty or len(pack.ae_summary.columns) < 2:
        out += _kept_with_next(
            [heading, _para("No safety population in this selection: no table by arm.")], need=0
        )
    else:
        tables = data_tables(
            pack.ae_summary, right=[c for c in pack.ae_summary.columns if c != "Category"]
        )
        lead = [heading, _para(pack.safety_note, "note"), Spacer(1, 2 * mm)]
        out += [*_kept_with_next(lead, need=_table_start(tables)), *tables]
    heading = _heading("Adverse events by system organ class and preferred term")
    if pack.ae_terms.empty:
        out += _kept_with_next(
            [heading, _para("No adverse events in the data for this selection.")], need=0
        )
    else:
        terms = pack.ae_terms
        is_soc = (terms["level"] == "SOC").tolist()
        shown = terms.drop(columns="level").copy()
        shown["Term"] = [
            t if soc else f"   {t}" for t, soc in zip(shown["Term"], is_soc, strict=True)
        ]
        lead = [
            heading,
            _para(
                "Subjects n (%) [events] per arm; each system organ class (shaded, in bold: "
                "subjects with any term of the class) is followed by its preferred terms, most "
                "frequent first.",
                "note",
            ),
            Spacer(1, 2 * mm),
        ]
        tables = data_tables(
            shown, emphasise=is_soc, right=[c for c in shown.columns if c != "Term"]
        )
        out += [*_kept_with_next(lead, need=_table_start(tables)), *tables]
    return out


# The SAE listing's columns in the PDF (the workbook has all of them).
PDF_SAE_COLUMNS = (
    "USUBJID",
    "SITEID",
    "Arm",
    "Term",
    "AEBODSYS",
    "AESTDTC",
    "Study day",
    "AEENDTC",
    "AEOUT",
    "AESEV",
    "AETOXGR",
    "Seriousness criteria",
    "Related",
    "AEACN",
)


def _saes(pack: MonitoringPack) -> list[Flowable]:
    saes, marker = pack.saes, pack.marker
    total = len(saes)
    heading = _heading("Serious adverse events")
    if saes.empty:
        return _kept_with_next(
            [heading, _para("No serious adverse event (AESER = Y) in this selection.")], need=0
        )
    new = pack.new_saes
    serious = "AE" if total == 1 else "AEs"
    lead = f"{total} serious {serious} in {plural(saes['USUBJID'].nunique(), 'subject')}."
    if marker:
        lead += (
            f" {new} new since cut {pack.since_cut.number if pack.since_cut else ''}: listed first, "
            "marked “new” and shaded."
        )
    else:
        lead += " One data cut only: nothing to mark as new."
    shown = saes.head(PDF_SAE_LIMIT)
    if total > len(shown):
        lead += (
            f" The first {len(shown)}"
            + (", new ones first," if marker and new else "")
            + " are listed here; the workbook's SAEs sheet lists all."
        )
    columns = [c for c in ([marker] if marker else []) + list(PDF_SAE_COLUMNS) if c in shown]
    tables = data_tables(
        # "Since cut N" would take a column of its own width: the lead names the cut.
        # Headed in words as on the screen's listing (the workbook keeps the SDTM names).
        shown[columns].rename(
            columns={
                **{code: header for code, (header, _) in LISTING_HEADERS.items()},
                **({marker: "Status"} if marker else {}),
            }
        ),
        keys=2 if marker else 1,  # the status and the subject name each row
        highlight=(shown[marker] == NEW).tolist() if marker else None,
        right=["Study day"],
        bold_values=(NEW,),
    )
    return [
        *_kept_with_next([heading, _para(lead)], need=_table_start(tables)),
        *tables,
        Spacer(1, 2 * mm),
        _para(
            "Study day: counted from the first dose (day 1; the day before is day -1, no day 0), "
            "as on the Adverse events page; AESTDY as given counts from RFSTDTC instead. Related: "
            "AEREL grouped as the Adverse events page does.",
            "note",
        ),
    ]


def _shift_grid(table: Any, width: float = FRAME_WIDTH) -> list[Flowable]:
    """A shift table per arm (``ShiftTable.wide``) and in total, two side by side, each titled
    with its arm and N (a row of two is one flowable: it is never split over two pages)."""
    half = width / 2
    cells = []
    for arm in shift_arms(table):
        wide = table.wide(arm).reset_index()
        name = TOTAL_ARM if arm is None else arm
        grid = data_table(
            wide, width=half - 4 * mm, right=[c for c in wide.columns if c != "Baseline"]
        )
        # The Total row shaded, not set in bold: bold figures outgrow the columns sized for them.
        grid.setStyle(TableStyle([("BACKGROUND", (0, -1), (-1, -1), SOC_ROW_COLOUR)]))
        cells.append([_para(f"{name} (N = {arm_subjects(table, arm)})", "body"), grid])
    return [
        Table(
            [pair + [[]] * (2 - len(pair))],
            colWidths=[half] * 2,
            hAlign="LEFT",
            style=TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            ),
        )
        for pair in (cells[start : start + 2] for start in range(0, len(cells), 2))
    ]


def _labs(pack: MonitoringPack) -> list[Flowable]:
    """Laboratory safety (issue #21): the range and CTCAE grade shift tables of ALT, AST,
    bilirubin and creatinine by arm, the eDISH plot with its rule, and the potential Hy's law
    cases; the Labs page's figures."""
    section = pack.lab_safety
    heading = _heading("Laboratory safety")
    if section.summary_missing:
        return _kept_with_next([heading, _para(SUMMARY_MISSING)], need=0)
    if not section.has_lab_data:
        return _kept_with_next([heading, _para(NO_LAB_DATA)], need=0)
    intro = (
        "Shift tables: subjects n (%) by their baseline (rows) and their worst post-baseline "
        "value (columns), of the N subjects with a post-baseline value, "
        + ("per actual arm and in total." if pack.shows_arms else "all arms pooled.")
    )
    # The rules the shift tables follow, where there are tables to follow them.
    notes = [intro, *section.rules] if section.tests else []
    if pack.safety.blinding_note:
        notes.append(pack.safety.blinding_note)
    lead: list[Flowable] = [heading]
    if notes:
        lead += [_para(" ".join(notes), "note"), Spacer(1, 2 * mm)]
    out: list[Flowable] = []
    if not section.tests:
        lead.append(
            _para(f"None of {', '.join(section.missing_tests)} in this cut: no shift tables.")
        )
        out += _kept_with_next(lead, need=0)
        lead = []
    for test in section.tests:
        title = _subheading(f"{test.test_code}: {test.measurement}")
        grid = _shift_grid(test.range_shift)
        first = [
            title,
            _para(
                "Normal range (LOW / NORMAL / HIGH): baseline against worst post-baseline.", "note"
            ),
        ]
        out += _kept_with_next([*lead, *first], need=_height(grid[:1]))
        out += grid
        lead = []
        if test.grade_shift is not None and test.term is not None:
            grades = _shift_grid(test.grade_shift)
            out += _kept_with_next(
                [
                    _para(
                        f"CTCAE v5 grade, {test.term}: baseline against worst post-baseline.",
                        "note",
                    )
                ],
                need=_height(grades[:1]),
            )
            out += grades
        out.append(Spacer(1, 2 * mm))
    if section.tests and section.missing_tests:
        out.append(_para(f"Not in this cut: {', '.join(section.missing_tests)}.", "note"))
    # eDISH: the page's chart, the rule it draws stated under it.
    edish = _subheading("eDISH: peak transaminase against peak total bilirubin")
    rule = _para(section.hys_law_rule, "note")
    cases = section.hys_law_cases
    sub = _subheading("Potential Hy's law cases")
    drawn = section.edish[section.edish["quadrant"] != NOT_ASSESSABLE]
    if drawn.empty:  # no plot, so no case: one short paragraph says both
        none = (
            "None: no ALT, AST or total bilirubin with an upper limit on treatment, no eDISH plot."
        )
        return [*out, *_kept_with_next([Spacer(1, 3 * mm), sub, _para(none)], need=0)]
    image = _image(
        chart_png(edish_chart(section.edish, pack.study.study_id), width=560),
        max_height=FRAME_HEIGHT * 0.62,
    )
    out += _kept_with_next([edish], need=_height([image]))
    out += [image, rule]
    if cases.empty:
        out += _kept_with_next([Spacer(1, 3 * mm), sub, _para("None.")], need=0)
    else:
        shown = cases.astype(object).copy()
        for column in shown.columns:
            if "(x ULN)" in column:
                shown[column] = [peak_text(v) for v in cases[column]]
            elif column.endswith("date"):
                shown[column] = [date_text(v) for v in cases[column]]
        tables = data_tables(shown, right=[c for c in shown.columns if "(x ULN)" in c])
        out += [
            *_kept_with_next([Spacer(1, 3 * mm), sub], need=_table_start(tables)),
            *tables,
        ]
    return out


FLAG_CELL_COLOURS = {
    2: colors.HexColor("#f4c7c3"),
    1: colors.HexColor("#fde2b8"),
    0: colors.HexColor("#d9ead3"),
}
FEW_KRIS = 4  # up to this many computed KRIs, every funnel is drawn; else the flagged ones


def _flag_text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{int(value):+d}" if value else "0"  # type: ignore[call-overload]


def site_risk_funnels(pack: MonitoringPack) -> list[Any]:
    """The funnels the pack draws: every computed KRI's when there are few, else those of the
    KRIs with at least one flagged site in view."""
    funnels = list(pack.site_risk.funnels)
    if len(funnels) <= FEW_KRIS:
        return funnels
    flagged = pack.site_risk.scores.dropna(subset=["flag"])
    kris = set(flagged.loc[flagged["flag"] != 0, "kri"])
    return [f for f in funnels if f.definition.id in kris]


def _site_risk(pack: MonitoringPack) -> list[Flowable]:
    view = pack.site_risk
    lead: list[Flowable] = [_heading("Site risk")]
    lead.append(
        _para(
            "  ·  ".join(
                f"{m.label}: {m.value}" + (f" ({m.delta})" if m.delta else "") for m in view.metrics
            )
        )
    )
    lead.append(
        _para(
            f"Key risk indicators scored per site by the {view.options.method} method (gsm's "
            "default): each site against the study's overall ratio; flags -1/+1 amber and -2/+2 "
            "red below / above the study at each KRI's thresholds, - not scored (too little "
            "exposure or too few subjects). Risk score: gsm's weighted sum of the flags, 0-100.",
            "note",
        )
    )
    absent = [k for k in view.kris if k.absent is not None]
    out: list[Flowable] = []
    if not view.comparable:
        lead.append(
            _para(
                "One site: nothing to compare with. Key risk indicators flag a site against the "
                "others, so a single-site study has no flags."
            )
        )
    if not view.comparable or view.flag_table.empty:
        out += _kept_with_next(lead, need=0)
    else:
        table = view.flag_table
        flags = [c for c in table.columns if c not in ("Site", "Risk score")]
        shown = table.astype(object).copy()
        for column in flags:
            shown[column] = [_flag_text(v) for v in table[column]]
        shown["Risk score"] = ["" if pd.isna(v) else f"{float(v):.1f}" for v in table["Risk score"]]
        grid = data_table(shown, right=[*flags, "Risk score"])
        cell_colours: list[Any] = []
        for i, row in enumerate(table[flags].itertuples(index=False)):
            for j, value in enumerate(row):
                if value is None or value is pd.NA or pd.isna(value):
                    continue
                colour = FLAG_CELL_COLOURS[min(abs(int(value)), 2)]
                at = list(table.columns).index(flags[j])
                cell_colours.append(("BACKGROUND", (at, i + 1), (at, i + 1), colour))
        grid.setStyle(TableStyle(cell_colours))
        lead += [Spacer(1, 2 * mm), _subheading("Flags by site and KRI")]
        out += [*_kept_with_next(lead, need=_table_start([grid])), grid]
        out += _recruitment_below(view)
        # Two funnels side by side, a row kept together: eight KRIs take two pages, not eight.
        cells = []
        for funnel in site_risk_funnels(pack):
            chart = kri_funnel_chart(funnel, height=260)
            if chart is None:
                continue
            kri = funnel.definition
            cells.append(
                [
                    _para(f"{kri.name} ({kri.per})", "subheading"),
                    _image(
                        chart_png(chart, width=CHART_WIDTH_PX // 2 + 80),
                        max_width=FRAME_WIDTH / 2 - 3 * mm,
                        max_height=FRAME_HEIGHT * 0.4,
                    ),
                ]
            )
        rows = [
            Table(
                [pair + [[]] * (2 - len(pair))],
                colWidths=[FRAME_WIDTH / 2] * 2,
                style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
            )
            for pair in (cells[start : start + 2] for start in range(0, len(cells), 2))
        ]
        if rows:
            out += _kept_with_next(
                [Spacer(1, 3 * mm), _subheading("Funnel plots")], need=_height(rows[:1])
            )
        for funnel_row in rows:
            out += [Spacer(1, 2 * mm), KeepTogether([funnel_row])]
        compared = view.compared_cut
        out.append(Spacer(1, 3 * mm))
        if compared is None:
            out.append(_para("Only one data cut is loaded: no flag can be new yet.", "note"))
        elif not view.compared_has_counts:
            out.append(
                _para(
                    f"Cut {compared.number} has no KRI counts kept (loaded before they were kept, or "
                    "a demo's earlier cut): which flags are new since then cannot be told.",
                    "note",
                )
            )
        else:
            newly = _subheading(f"Newly flagged since cut {compared.number}")
            if view.new_flags.empty:
                out += _kept_with_next(
                    [newly, _para(f"No site has a flag it did not have in cut {compared.number}.")],
                    need=0,
                )
            else:
                tables = data_tables(view.new_flags, right=["Flag", "Score"])
                out += [*_kept_with_next([newly], need=_table_start(tables)), *tables]
    qtl_rows = []
    for qtl in view.qtls:
        latest = qtl.latest
        qtl_rows.append(
            {
                "QTL": qtl.definition.name,
                "Cut": "" if latest is None else str(int(latest["cut_number"])),
                "Observed": "" if latest is None else f"{latest['proportion']:.1%}",
                "Of": ""
                if latest is None
                else f"{int(latest['numerator'])} / {int(latest['denominator'])}",
                "Limit": "" if latest is None else f"{latest['limit']:.1%}",
                "Expected": f"{qtl.p0:.0%}",
                "Status": qtl.absent
                or ("no counts" if latest is None else "crossed" if qtl.over else "within"),
            }
        )
    qtl_table = data_table(pd.DataFrame(qtl_rows), width=FRAME_WIDTH * 0.8)
    out += [
        *_kept_with_next(
            [Spacer(1, 3 * mm), _subheading("Quality tolerance limits")],
            need=_table_start([qtl_table]),
        ),
        qtl_table,
    ]
    for qtl in view.qtls:
        chart = qtl_chart(qtl, height=160)
        if chart is not None:
            out += [Spacer(1, 2 * mm), _image(chart_png(chart, width=520), max_height=45 * mm)]
    open_excursions = view.excursions[~view.excursions["closed"].astype(bool)]
    if not open_excursions.empty:
        names = {q.definition.id: q.definition.name for q in view.qtls}
        # The Site risk page's table: names, per cent and minutes, not the stored values.
        tables = data_tables(excursion_table(open_excursions, names, view.frame.cuts))
        out += [
            *_kept_with_next(
                [Spacer(1, 2 * mm), _subheading("Open excursions")], need=_table_start(tables)
            ),
            *tables,
        ]
    if absent:
        tables = data_tables(
            pd.DataFrame(
                {
                    "KRI": [k.definition.name for k in absent],
                    "Why": [k.absent for k in absent],
                }
            ),
            width=FRAME_WIDTH * 0.8,
        )
        out += [
            *_kept_with_next(
                [Spacer(1, 3 * mm), _subheading("KRIs not computed")], need=_table_start(tables)
            ),
            *tables,
        ]
    return out


def _review(pack: MonitoringPack) -> list[Flowable]:
    """Review (issue #20): the SAEs the medical monitor has not reviewed in their present
    version, and the queries not closed, per site."""
    saes, queries = pack.review_saes, pack.review_queries
    where = "at these sites" if pack.scope is not None else "in this study"
    out: list[Flowable] = []
    heading = _heading("Review")
    changed = int((saes["Review state"] == "changed since review").sum()) if len(saes) else 0
    lead = _para(
        f"Serious adverse events the medical monitor has not reviewed in their present version "
        f"{where}: {plural(len(saes), 'SAE')}"
        + (f", {changed} of them changed since review." if changed else ".")
    )
    sub = _subheading("Unreviewed serious adverse events")
    if saes.empty:
        out += _kept_with_next([heading, lead, sub, _para("None.")], need=0)
    else:
        tables = data_tables(saes, keys=1, right=["Last changed in cut", "Reviewed in cut"])
        out += [*_kept_with_next([heading, lead, sub], need=_table_start(tables)), *tables]
    sub = _subheading("Open queries")
    intro = _para(
        f"Queries not closed {where}: {plural(len(queries), 'query', 'queries')}, per site, "
        "the oldest first; age in days since the query was raised."
    )
    if queries.empty:
        out += _kept_with_next([Spacer(1, 3 * mm), sub, intro, _para("None.")], need=0)
    else:
        tables = data_tables(queries, keys=2, right=["Query", "Age (days)"])
        out += [
            *_kept_with_next([Spacer(1, 3 * mm), sub, intro], need=_table_start(tables)),
            *tables,
        ]
    return out


def pack_pdf(pack: MonitoringPack) -> bytes:
    """The pack as PDF bytes."""
    buffer = io.BytesIO()
    document = _PackDocument(buffer, pack)
    story: list[Flowable] = [
        *_cover(pack),
        NextPageTemplate("body"),
        *_contents(),
        PageBreak(),
        *_headline(pack),
    ]
    if pack.figures["screened"]:
        story += [
            *_enrollment(pack),
            *_sites(pack),
            *_flow(pack),
            *_failures(pack),
            *_baseline(pack),
            *_safety(pack),
            *_saes(pack),
            *_labs(pack),
            *_site_risk(pack),
            *_review(pack),
        ]
    else:  # a registry record without data yet, or sites without subjects: nothing to draw
        where = "at these sites" if pack.scope is not None else "in this study"
        story.append(
            _para(
                f"No subjects {where} yet: the other sections appear after the first data "
                "import that holds some."
            )
        )
    # Two passes at least: the contents list learns the page numbers on the first.
    document.multiBuild(story, canvasmaker=_canvas_maker(pack))
    return buffer.getvalue()
