"""The monitoring pack as a PDF (A4 landscape): a title page, a contents list, then one section per
figure, page numbers on every page.

Charts are the pages' own altair specs (``dashboard.charts``) rendered to PNG with vl-convert, the
flow diagram is the Enrollment page's SVG; tables are laid out to the page width, their header
repeated on every page they run over.
"""

import datetime as dt
import io
from collections.abc import Sequence
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
from dashboard.charts.enrollment import accrual_chart, funnel_chart
from dashboard.charts.screen_failures import criteria_chart
from dashboard.charts.site_risk import funnel_chart as kri_funnel_chart
from dashboard.charts.site_risk import qtl_chart
from dashboard.report.pack import BLINDED_NOTE, NEW, MonitoringPack
from dashboard.views.format import plural

PAGE_SIZE = landscape(A4)
MARGIN = 12 * mm
FOOTER_Y = 7 * mm
BODY_WIDTH = PAGE_SIZE[0] - 2 * MARGIN
BODY_HEIGHT = PAGE_SIZE[1] - 2 * MARGIN
CHART_WIDTH_PX = 760  # the charts' drawing width (their fonts print at about 9 pt across the page)
CHART_SCALE = 2.0
# The PDF lists at most this many SAEs (the workbook lists every one, and the text says so).
PDF_SAE_LIMIT = 1000
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
        spaceAfter=6,
        textColor=HEADER_COLOUR,
    ),
    "subheading": ParagraphStyle(
        "subheading", fontName=BOLD, fontSize=11, leading=14, spaceBefore=6, spaceAfter=4
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


def _image(png: bytes, *, max_width: float = BODY_WIDTH, max_height: float) -> Image:
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


def data_table(
    frame: pd.DataFrame,
    *,
    width: float = BODY_WIDTH,
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
    body: list[list[Flowable]] = [[Paragraph(escape(h), styles["head"]) for h in header]]
    for i, row in enumerate(cells):
        strong = bool(emphasise[i]) if emphasise is not None else False
        line: list[Flowable] = []
        for j, text in enumerate(row):
            shown = escape(text)
            if strong or (text and text in bold_values):
                shown = f"<b>{shown}</b>"
            line.append(Paragraph(shown, styles["cell_right" if j in right_set else "cell"]))
        body.append(line)
    style: list[Any] = [
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
    table = Table(body, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(style))
    return table


# -- the document --------------------------------------------------------------------------------


class _PackDocument(BaseDocTemplate):
    """A4 landscape; every "PackHeading" paragraph goes into the contents and the PDF outline."""

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
        if isinstance(flowable, Paragraph) and flowable.style.name == "PackHeading":
            text = flowable.getPlainText()
            self._headings += 1
            key = f"section-{self._headings}"
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(text, key, level=0)
            self.notify("TOCEntry", (0, text, self.page, key))

    def handle_documentBegin(self) -> None:
        self._headings = 0  # multiBuild lays the document out more than once
        super().handle_documentBegin()


def _canvas_maker(pack: MonitoringPack) -> type[Canvas]:
    """A canvas that numbers pages "N of M": it keeps each page until the last is known."""
    cut = pack.cut
    left = f"{pack.study.study_id} · monitoring pack · " + (
        f"data cut {cut.id}, cut-off {_day(cut.cutoff_date)}" if cut else "no data cut"
    )
    left += f" · generated {pack.generated_at:%d %b %Y %H:%M} UTC"

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            # Kept, not emitted: the page is drawn in save(), once the page count is known.
            self._pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # reportlab's own page reset

        def save(self) -> None:
            total = len(self._pages)
            for page in self._pages:
                self.__dict__.update(page)
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


def _cover(pack: MonitoringPack) -> list[Flowable]:
    study, cut, since = pack.study, pack.cut, pack.since_cut
    # The Overview's identity rows (its "Sites" row says how many; the cover names them below).
    identity: list[tuple[str, str]] = [
        ("Study", study.study_id),
        *((label, value) for label, value in pack.overview.identity if label != "Sites"),
        (
            "Data cut",
            f"cut {cut.id}: cut-off {_day(cut.cutoff_date)}, loaded "
            f"{cut.loaded_at:%d %b %Y %H:%M} UTC"
            if cut
            else "none loaded (registry record only)",
        ),
        (
            "Compared with",
            f"cut {since.id}: cut-off {_day(since.cutoff_date)}"
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


def _contents() -> list[Flowable]:
    toc = TableOfContents()
    toc.levelStyles = [STYLES["toc0"]]
    toc.dotsMinLevel = 0
    return [_para("Contents", "cover_sub"), toc]


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
    out: list[Flowable] = [PageBreak(), _heading("Enrollment against the target")]
    if pack.accrual.empty:
        out.append(_para("No screening or enrollment dates in the data: nothing to draw."))
    else:
        chart = accrual_chart(**pack.enrollment.accrual_chart_inputs)
        out.append(_image(chart_png(chart), max_height=BODY_HEIGHT * 0.62))
        out.append(_para(pack.enrollment.accrual_caption, "note"))
    if pack.enrollment.undated_sentence:
        out.append(_para(pack.enrollment.undated_sentence, "note"))
    out += [
        _para("Forecast", "subheading"),
        _para(
            "The forecast is for the whole study: this pack is for some sites only."
            if filtered
            else plain(pack.enrollment.forecast_sentence)
        ),
    ]
    if pack.enrollment.forecast_method:
        out.append(_para(pack.enrollment.forecast_method, "note"))
    out += [
        CondPageBreak(BODY_HEIGHT * 0.45),
        _heading("Screening funnel"),
        _image(chart_png(funnel_chart(pack.funnel)), max_height=BODY_HEIGHT * 0.45),
    ]
    if not pack.treated_known:
        out.append(
            _para("No exposure data: who was treated is unknown, so that step is left out.", "note")
        )
    return out


def _flow(pack: MonitoringPack) -> list[Flowable]:
    png = svg_to_png(pack.flow_svg)
    return [
        PageBreak(),
        _heading("Flow of subjects"),
        _image(png, max_height=BODY_HEIGHT - 12 * mm),
    ]


def _failures(pack: MonitoringPack) -> list[Flowable]:
    screened = int(pack.figures["screened"])
    failures = int(pack.figures["screen_failures"])
    out: list[Flowable] = [PageBreak(), _heading("Screen failures by criterion")]
    if pack.by_criterion.empty:
        out.append(
            _para(
                "No eligibility criteria are recorded for this study (no TI domain or registry "
                "criteria): failures by criterion are unknown."
            )
        )
        return out
    if pack.ie_missing:
        out.append(
            _para(
                f"No IE domain in data cut {pack.cut.id if pack.cut else ''}: failures by "
                f"criterion are unknown ({plural(failures, 'screen failure')} of {screened} screened, "
                "without a recorded criterion). What DS says about them:"
            )
        )
        if pack.failure_dispositions.empty:
            out.append(_para("DS records no reason either.", "note"))
        else:
            out.append(
                data_table(pack.failure_dispositions, width=BODY_WIDTH * 0.8, right=["Subjects"])
            )
        return out
    unexplained = failures - pack.failures_with_reason
    out.append(
        _para(
            f"{plural(failures, 'screen failure')} of {screened} screened. Bars count distinct "
            "screen-failed subjects per criterion; a subject can fail several, so the bars do not "
            f"add up: {pack.failures_more_than_one} failed more than one."
            + (f" {unexplained} have no criterion recorded." if unexplained else "")
        )
    )
    # The chart has a bar per criterion, so it can be tall: it may fill the page, the table follows.
    chart = criteria_chart(pack.by_criterion, screened=screened)
    out.append(_image(chart_png(chart), max_height=BODY_HEIGHT - 30 * mm))
    marker = pack.marker
    new_column = next((c for c in pack.failures_table.columns if c.startswith("New (")), None)
    out += [
        CondPageBreak(40 * mm),
        _para("Failures by criterion", "subheading"),
        data_table(
            pack.failures_table,
            right=["Subjects", "% of screened", *([new_column] if new_column else [])],
            highlight=(pack.failures_table[new_column] > 0).tolist() if new_column else None,
        ),
    ]
    if marker and pack.changes is not None:
        out.append(
            _para(
                f"New: screen failures first seen after cut {pack.since_cut.id if pack.since_cut else ''} "
                f"({pack.changes.new_screen_failures} in all), shaded rows.",
                "note",
            )
        )
    return out


def _baseline(pack: MonitoringPack) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), _heading("Baseline characteristics (Table 1)")]
    if pack.table_one.empty:
        out.append(_para("No baseline characteristics of enrolled subjects in the data."))
        return out
    table = pack.table_one
    first_is_new = pack.since_cut is not None
    out += [
        _para(
            (
                "Enrolled subjects by planned arm (ARM)."
                if pack.shows_arms
                else "Enrolled subjects by site (the study is blinded: no column by arm)."
            )
            + " Continuous: mean (SD) and median [Q1, Q3]; "
            "categorical: n (%) of the column's subjects with a value, missing counted on their "
            "own row."
            + (
                f" The first row counts the subjects new since cut {pack.since_cut.id}."
                if pack.since_cut
                else ""
            )
            + (f" {BLINDED_NOTE}" if pack.study.counts_as_blinded and pack.shows_arms else ""),
            "note",
        ),
        Spacer(1, 2 * mm),
        data_table(
            table,
            highlight=[first_is_new and i == 0 for i in range(len(table))],
            right=[c for c in table.columns if c not in ("Characteristic", "Statistic")],
        ),
    ]
    return out


def _safety(pack: MonitoringPack) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), _heading("Adverse events: summary by arm")]
    if pack.ae_summary.empty or len(pack.ae_summary.columns) < 2:
        out.append(_para("No safety population in this selection: no table by arm."))
    else:
        out += [
            _para(pack.safety_note, "note"),
            Spacer(1, 2 * mm),
            data_table(
                pack.ae_summary,
                right=[c for c in pack.ae_summary.columns if c != "Category"],
            ),
        ]
    out += [PageBreak(), _heading("Adverse events by system organ class and preferred term")]
    if pack.ae_terms.empty:
        out.append(_para("No adverse events in the data for this selection."))
    else:
        terms = pack.ae_terms
        is_soc = (terms["level"] == "SOC").tolist()
        shown = terms.drop(columns="level").copy()
        shown["Term"] = [
            t if soc else f"   {t}" for t, soc in zip(shown["Term"], is_soc, strict=True)
        ]
        out += [
            _para(
                "Subjects n (%) [events] per arm; each system organ class (shaded, in bold: "
                "subjects with any term of the class) is followed by its preferred terms, most "
                "frequent first.",
                "note",
            ),
            Spacer(1, 2 * mm),
            data_table(shown, emphasise=is_soc, right=[c for c in shown.columns if c != "Term"]),
        ]
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
    out: list[Flowable] = [PageBreak(), _heading("Serious adverse events")]
    if saes.empty:
        out.append(_para("No serious adverse event (AESER = Y) in this selection."))
        return out
    new = pack.new_saes
    serious = "AE" if total == 1 else "AEs"
    lead = f"{total} serious {serious} in {plural(saes['USUBJID'].nunique(), 'subject')}."
    if marker:
        lead += (
            f" {new} new since cut {pack.since_cut.id if pack.since_cut else ''}: listed first, "
            "marked “new” and shaded."
        )
    else:
        lead += " One data cut only: nothing to mark as new."
    shown = saes.head(PDF_SAE_LIMIT)
    if total > len(shown):
        lead += f" The first {len(shown)} are listed here; the workbook's SAEs sheet lists all."
    columns = [c for c in ([marker] if marker else []) + list(PDF_SAE_COLUMNS) if c in shown]
    out += [
        _para(lead),
        data_table(
            # "Since cut N" would take a column of its own width: the lead names the cut.
            shown[columns].rename(columns={marker: "Status"} if marker else {}),
            highlight=(shown[marker] == NEW).tolist() if marker else None,
            right=["Study day"],
            bold_values=(NEW,),
        ),
        Spacer(1, 2 * mm),
        _para(
            "Study day: counted from the first dose (day 1; the day before is day -1, no day 0), "
            "as on the Adverse events page; AESTDY as given counts from RFSTDTC instead. Related: "
            "AEREL grouped as the Adverse events page does.",
            "note",
        ),
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
    out: list[Flowable] = [PageBreak(), _heading("Site risk")]
    out.append(
        _para(
            "  ·  ".join(
                f"{m.label}: {m.value}" + (f" ({m.delta})" if m.delta else "") for m in view.metrics
            )
        )
    )
    out.append(
        _para(
            f"Key risk indicators scored per site by the {view.options.method} method (gsm's "
            "default): each site against the study's overall ratio; flags -1/+1 amber and -2/+2 "
            "red below / above the study at each KRI's thresholds, - not scored (too little "
            "exposure or too few subjects). Risk score: gsm's weighted sum of the flags, 0-100.",
            "note",
        )
    )
    absent = [k for k in view.kris if k.absent is not None]
    if not view.comparable:
        out.append(
            _para(
                "One site: nothing to compare with. Key risk indicators flag a site against the "
                "others, so a single-site study has no flags."
            )
        )
    elif not view.flag_table.empty:
        table = view.flag_table
        flags = [c for c in table.columns if c not in ("Site", "Risk score")]
        shown = table.astype(object).copy()
        for column in flags:
            shown[column] = [_flag_text(v) for v in table[column]]
        shown["Risk score"] = ["" if pd.isna(v) else f"{float(v):.1f}" for v in table["Risk score"]]
        out += [Spacer(1, 2 * mm), _para("Flags by site and KRI", "subheading")]
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
        out.append(grid)
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
                        max_width=BODY_WIDTH / 2 - 3 * mm,
                        max_height=BODY_HEIGHT * 0.4,
                    ),
                ]
            )
        if cells:
            out += [Spacer(1, 3 * mm), _para("Funnel plots", "subheading")]
        for start in range(0, len(cells), 2):
            pair = cells[start : start + 2]
            funnel_row = Table(
                [pair + [[]] * (2 - len(pair))],
                colWidths=[BODY_WIDTH / 2] * 2,
                style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
            )
            out += [Spacer(1, 2 * mm), KeepTogether([funnel_row])]
        compared = view.compared_cut
        out.append(Spacer(1, 3 * mm))
        if compared is None:
            out.append(_para("Only one data cut is loaded: no flag can be new yet.", "note"))
        elif not view.compared_has_counts:
            out.append(
                _para(
                    f"Cut {compared.id} has no KRI counts kept (loaded before they were kept, or "
                    "a demo's earlier cut): which flags are new since then cannot be told.",
                    "note",
                )
            )
        else:
            out.append(_para(f"Newly flagged since cut {compared.id}", "subheading"))
            if view.new_flags.empty:
                out.append(_para(f"No site has a flag it did not have in cut {compared.id}."))
            else:
                out.append(data_table(view.new_flags, right=["Flag", "Score"]))
    out += [Spacer(1, 3 * mm), _para("Quality tolerance limits", "subheading")]
    rows = []
    for qtl in view.qtls:
        latest = qtl.latest
        rows.append(
            {
                "QTL": qtl.definition.name,
                "Cut": "" if latest is None else str(int(latest["cut_id"])),
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
    out.append(data_table(pd.DataFrame(rows), width=BODY_WIDTH * 0.8))
    for qtl in view.qtls:
        chart = qtl_chart(qtl, height=160)
        if chart is not None:
            out += [Spacer(1, 2 * mm), _image(chart_png(chart, width=520), max_height=45 * mm)]
    open_excursions = view.excursions[~view.excursions["closed"].astype(bool)]
    if not open_excursions.empty:
        out += [
            Spacer(1, 2 * mm),
            _para("Open excursions", "subheading"),
            data_table(open_excursions.drop(columns=["id", "closed"])),
        ]
    if absent:
        out += [
            Spacer(1, 3 * mm),
            _para("KRIs not computed", "subheading"),
            data_table(
                pd.DataFrame(
                    {
                        "KRI": [k.definition.name for k in absent],
                        "Why": [k.absent for k in absent],
                    }
                ),
                width=BODY_WIDTH * 0.8,
            ),
        ]
    return out


def pack_pdf(pack: MonitoringPack) -> bytes:
    """The pack as PDF bytes."""
    buffer = io.BytesIO()
    document = _PackDocument(buffer, pack)
    story: list[Flowable] = [
        *_cover(pack),
        NextPageTemplate("body"),
        PageBreak(),
        *_contents(),
        PageBreak(),
        *_headline(pack),
    ]
    if pack.figures["screened"]:
        story += [
            *_enrollment(pack),
            *_flow(pack),
            *_failures(pack),
            *_baseline(pack),
            *_safety(pack),
            *_saes(pack),
            *_site_risk(pack),
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
