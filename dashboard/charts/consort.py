"""CONSORT-style participant flow diagram: pure functions ConsortFlow -> SVG text -> PNG bytes.

A flow diagram is boxes and arrows whose size depends on the text inside them, not an encoding of
data on scales, so it is laid out here by hand as plain SVG 1.1 instead of with altair. The layout
follows the CONSORT 2010 template (enrollment, allocation, follow-up, then the status at the data
cut instead of "analysis", because a monitoring dashboard shows a study while it runs):

    Assessed for eligibility ──> Excluded (reasons by criterion)
              │             ──> Not yet allocated
           Enrolled
        ┌─────┴─────┐
    Allocated     Allocated      one column per planned arm
    Discontinued  Discontinued   with reasons (DSDECOD)
    Completed | Ongoing  ...

No streamlit here: a page turns the text into a download (encode it as UTF-8) or a picture.
"""

import math
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import vl_convert

from dashboard.results.consort import ArmFlow, ConsortFlow

__all__ = ["consort_svg", "svg_to_png"]


# --- text measurement -------------------------------------------------------------------------
# The SVG is drawn with DejaVu Sans, which Debian (and so the headless Chromium of the browser
# tests and the PNG renderer) always has. There is no text measurement in SVG itself, so boxes are
# sized from DejaVu Sans advance widths (1/1000 em, characters 32-126, read from the .ttf files
# with Pillow). Arial and Liberation Sans, the fallbacks, are narrower, so text still fits in them.
_REGULAR_WIDTHS = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632,
    575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685,
    611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
    278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
)  # fmt: skip
_BOLD_WIDTHS = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683,
    683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
    724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
    343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
)  # fmt: skip
# Outside ASCII: the ellipsis and bullet this module writes, else a width wider than any accented
# Latin letter (a box a little too wide is better than text over its border); 1 em for CJK.
_OTHER_WIDTHS = {"…": 1000, "•": 640}
_NON_ASCII_WIDTH = 800
_WIDE_FROM = 0x2E80

FONT_FAMILY = "'DejaVu Sans', Arial, sans-serif"


@dataclass(frozen=True)
class _Font:
    size: float
    bold: bool = False
    italic: bool = False
    colour: str = "#1a1a1a"

    @property
    def line_height(self) -> float:
        return round(self.size * 1.3)


_HEADLINE = _Font(13, bold=True)
_BODY = _Font(12)
_NOTE = _Font(11, italic=True, colour="#555555")
_STAGE = _Font(12, bold=True, colour="#1f3b5a")
_TITLE = _Font(15, bold=True)


def _text_width(text: str, font: _Font) -> float:
    table = _BOLD_WIDTHS if font.bold else _REGULAR_WIDTHS
    total = 0
    for char in text:
        code = ord(char)
        if 32 <= code < 127:
            total += table[code - 32]
        elif char in _OTHER_WIDTHS:
            total += _OTHER_WIDTHS[char]
        else:
            total += 1000 if code >= _WIDE_FROM else _NON_ASCII_WIDTH
    return total * font.size / 1000


def _wrap(text: str, width: float, font: _Font, *, indent: float = 0.0) -> list[str]:
    """Greedy word wrap into lines of at most ``width`` px (continuation lines ``indent`` less).

    A word longer than a whole line is split between characters rather than left to overflow.
    """
    lines: list[str] = []
    current = ""
    for word in text.split():
        room = width - (indent if lines else 0.0)
        candidate = f"{current} {word}" if current else word
        if _text_width(candidate, font) <= room:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
            room = width - indent
        while _text_width(word, font) > room and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and _text_width(word[:cut], font) > room:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
            room = width - indent
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def _fit(
    label: str,
    width: float,
    font: _Font,
    *,
    prefix: str = "",
    suffix: str = "",
    max_lines: int = 2,
    indent: float = 0.0,
) -> list[str]:
    """Wrap ``prefix + label + suffix`` into ``max_lines``, cutting the label with "…" if needed.

    Only the label is cut, so the bullet and the "(n=…)" count always survive.
    """
    label = " ".join(label.split())
    lines = _wrap(f"{prefix}{label}{suffix}", width, font, indent=indent)
    keep = len(label)
    while len(lines) > max_lines and keep > 0:
        keep -= 1
        lines = _wrap(f"{prefix}{label[:keep].rstrip()}…{suffix}", width, font, indent=indent)
    return lines[:max_lines]


def _count(n: int) -> str:
    return f"(n={n})"


# --- layout -----------------------------------------------------------------------------------
_MARGIN = 20.0
_PAD_X = 10.0
_PAD_Y = 7.0
_PARA_GAP = 3.0
_ROW_GAP = 30.0  # room for an arrow between two rows of boxes
_SIDE_GAP = 16.0  # between the main spine boxes and the side boxes hanging off it
_SIDE_OFFSET = 40.0  # from the spine to the left edge of a side box
_MAX_SIDE_WIDTH = 340.0
_MIN_SIDE_WIDTH = 200.0
_COLUMN_GAP = 22.0
_STATUS_GAP = 10.0
_STAGE_WIDTH = 96.0
_STAGE_GAP = 24.0
_MIN_MAIN_WIDTH = 260.0
_NOT_ALLOCATED_NOTE = "in screening or not assigned to an arm"


def _arm_width(arms: int) -> float:
    # Columns narrow as arms are added, down to the width at which "Completed" still fits on
    # one line in half a column; past that the diagram grows wider instead.
    half = _text_width("Completed", _HEADLINE) + 2 * _PAD_X + 1
    return max(2 * half + _STATUS_GAP, 260.0 - 20.0 * (arms - 1))


@dataclass(frozen=True)
class _Para:
    """One logical piece of text (one <text> element); ``lines`` are its wrapped lines."""

    lines: tuple[str, ...]
    font: _Font
    align: Literal["start", "middle"] = "start"
    indent: float = 0.0

    @property
    def height(self) -> float:
        return len(self.lines) * self.font.line_height


_BoxText = tuple[_Para, ...]


def _paras_width(paras: tuple[_Para, ...]) -> float:
    """The longest line, continuation indents included."""
    return max(
        _text_width(line, p.font) + (p.indent if i else 0.0)
        for p in paras
        for i, line in enumerate(p.lines)
    )


def _paras_height(paras: tuple[_Para, ...]) -> float:
    return 2 * _PAD_Y + sum(p.height for p in paras) + _PARA_GAP * max(len(paras) - 1, 0)


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float
    paras: tuple[_Para, ...]
    role: str  # a class name, so a reader (or a test) can tell the boxes apart
    stage: bool = False

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class _Line:
    points: tuple[tuple[float, float], ...]
    arrow: bool


def _headline(text: str, width: float, *, align: Literal["start", "middle"] = "start") -> _Para:
    return _Para(tuple(_wrap(text, width, _HEADLINE)), _HEADLINE, align)


def _bullet(label: str, n: int, width: float) -> _Para:
    bullet = "• "
    indent = _text_width(bullet, _BODY)
    lines = _fit(label, width, _BODY, prefix=bullet, suffix=f" {_count(n)}", indent=indent)
    return _Para(tuple(lines), _BODY, "start", indent)


def _reason_paras(
    reasons: tuple[tuple[str, int], ...], *, max_reasons: int, other: str, width: float
) -> list[_Para]:
    # Stable sort: equal counts keep the caller's order (criterion order, usually).
    ranked = sorted(reasons, key=lambda r: -r[1])
    paras = [_bullet(label, n, width) for label, n in ranked[:max_reasons]]
    if len(ranked) > max_reasons:
        paras.append(_bullet(other, sum(n for _, n in ranked[max_reasons:]), width))
    return paras


def _excluded_paras(flow: ConsortFlow, *, max_reasons: int, width: float) -> tuple[_Para, ...]:
    paras = [_headline(f"Excluded {_count(flow.screen_failures)}", width)]
    paras += _reason_paras(
        flow.exclusion_reasons, max_reasons=max_reasons, other="other criteria", width=width
    )
    if flow.failures_without_reason > 0:
        paras.append(_bullet("no criterion recorded", flow.failures_without_reason, width))
    listed = sum(n for _, n in flow.exclusion_reasons) + flow.failures_without_reason
    if listed > flow.screen_failures:
        note = "a subject may fail several criteria"
        paras.append(_Para(tuple(_wrap(note, width, _NOTE)), _NOTE))
    return tuple(paras)


def _arm_paras(
    arm: ArmFlow, *, max_reasons: int, width: float
) -> tuple[_BoxText, _BoxText, _BoxText, _BoxText]:
    """The text of an arm's allocation, discontinued, completed and ongoing boxes."""
    allocated = _Para(
        tuple(
            _fit(
                arm.arm,
                width,
                _HEADLINE,
                prefix="Allocated to ",
                suffix=f" {_count(arm.allocated)}",
                max_lines=3,
            )
        ),
        _HEADLINE,
        "middle",
    )
    treated = _Para(
        tuple(
            _wrap(
                f"received treatment {_count(arm.treated)}"
                if arm.treated is not None
                else "treatment not recorded",
                width,
                _BODY,
            )
        ),
        _BODY,
        "middle",
    )
    discontinued = [_headline(f"Discontinued {_count(arm.discontinued)}", width)]
    discontinued += _reason_paras(
        arm.discontinuation_reasons, max_reasons=max_reasons, other="other reasons", width=width
    )
    half = (width + 2 * _PAD_X - _STATUS_GAP) / 2 - 2 * _PAD_X
    completed = _headline(f"Completed {_count(arm.completed)}", half, align="middle")
    ongoing = _headline(f"Ongoing {_count(arm.ongoing)}", half, align="middle")
    return (allocated, treated), tuple(discontinued), (completed,), (ongoing,)


@dataclass(frozen=True)
class _Diagram:
    width: float
    height: float
    title: _Para | None
    boxes: tuple[_Box, ...]
    lines: tuple[_Line, ...]


def _layout(flow: ConsortFlow, *, title: str | None, max_reasons: int) -> _Diagram:
    boxes: list[_Box] = []
    lines: list[_Line] = []

    arm_w = _arm_width(len(flow.arms))
    arms_w = len(flow.arms) * arm_w + max(len(flow.arms) - 1, 0) * _COLUMN_GAP
    main_texts = [
        f"Assessed for eligibility {_count(flow.screened)}",
        f"Enrolled {_count(flow.enrolled)}",
    ]
    main_w = max(_MIN_MAIN_WIDTH, *(_text_width(t, _HEADLINE) + 2 * _PAD_X + 1 for t in main_texts))
    left = _MARGIN + _STAGE_WIDTH + _STAGE_GAP
    cx = left + max(main_w, arms_w) / 2

    # The side boxes are worded before the width is known, since they may set it.
    side_inner = _MAX_SIDE_WIDTH - 2 * _PAD_X
    side_texts = [_excluded_paras(flow, max_reasons=max_reasons, width=side_inner)]
    if flow.not_allocated > 0:
        side_texts.append(
            (
                _headline(f"Not yet allocated {_count(flow.not_allocated)}", side_inner),
                _Para(tuple(_wrap(_NOT_ALLOCATED_NOTE, side_inner, _NOTE)), _NOTE),
            )
        )
    # Narrowed to the longest line: a greedy wrap gives the same lines at that width.
    side_w = max(_MIN_SIDE_WIDTH, *(_paras_width(t) + 2 * _PAD_X + 1 for t in side_texts))
    side_x = cx + _SIDE_OFFSET
    right = max(cx + max(main_w, arms_w) / 2, side_x + side_w)
    width = math.ceil(right + _MARGIN)

    y = _MARGIN
    title_para: _Para | None = None
    if title:
        title_lines = _fit(title, width - 2 * _MARGIN, _TITLE, max_lines=2)
        title_para = _Para(tuple(title_lines), _TITLE)
        y += title_para.height + 14

    def main_box(text: str, top: float, role: str) -> _Box:
        paras = (_headline(text, main_w - 2 * _PAD_X, align="middle"),)
        return _Box(cx - main_w / 2, top, main_w, _paras_height(paras), paras, role)

    def stage(text: str, beside: _Box) -> None:
        paras = (_Para(tuple(_wrap(text, _STAGE_WIDTH - 12, _STAGE)), _STAGE, "middle"),)
        h = max(_paras_height(paras), 28.0)
        top = beside.y + (beside.h - h) / 2
        boxes.append(_Box(_MARGIN, top, _STAGE_WIDTH, h, paras, "stage", stage=True))

    assessed = main_box(main_texts[0], y, "assessed")
    boxes.append(assessed)
    stage("Enrollment", assessed)

    side_boxes: list[_Box] = []
    y = assessed.bottom + _SIDE_GAP
    for paras, role in zip(side_texts, ("excluded", "not-allocated"), strict=False):
        side_boxes.append(_Box(side_x, y, side_w, _paras_height(paras), paras, role))
        y = side_boxes[-1].bottom + _SIDE_GAP
    for side in side_boxes:
        boxes.append(side)
        mid = side.y + side.h / 2
        lines.append(_Line(((cx, mid), (side.x, mid)), arrow=True))

    enrolled = main_box(main_texts[1], side_boxes[-1].bottom + _SIDE_GAP, "enrolled")
    boxes.append(enrolled)
    lines.append(_Line(((cx, assessed.bottom), (cx, enrolled.y)), arrow=True))
    bottom = enrolled.bottom

    if flow.arms:
        inner = arm_w - 2 * _PAD_X
        texts = [_arm_paras(arm, max_reasons=max_reasons, width=inner) for arm in flow.arms]
        # Every box of a row gets the row's tallest height, so the rows line up across arms.
        alloc_h = max(_paras_height(t[0]) for t in texts)
        disc_h = max(_paras_height(t[1]) for t in texts)
        status_h = max(_paras_height(box) for t in texts for box in (t[2], t[3]))

        alloc_y = enrolled.bottom + _ROW_GAP
        if len(flow.arms) > 1:
            bus_y = enrolled.bottom + _ROW_GAP / 2
            alloc_y = bus_y + _ROW_GAP / 2 + 4
            first = cx - arms_w / 2 + arm_w / 2
            last = first + (len(flow.arms) - 1) * (arm_w + _COLUMN_GAP)
            lines.append(_Line(((cx, enrolled.bottom), (cx, bus_y)), arrow=False))
            lines.append(_Line(((first, bus_y), (last, bus_y)), arrow=False))
        disc_y = alloc_y + alloc_h + _ROW_GAP
        fork_y = disc_y + disc_h + _ROW_GAP / 2
        status_y = fork_y + _ROW_GAP / 2
        half = (arm_w - _STATUS_GAP) / 2

        for i, (alloc_t, disc_t, done_t, ongoing_t) in enumerate(texts):
            x = cx - arms_w / 2 + i * (arm_w + _COLUMN_GAP)
            alloc = _Box(x, alloc_y, arm_w, alloc_h, alloc_t, "allocated")
            disc = _Box(x, disc_y, arm_w, disc_h, disc_t, "discontinued")
            done = _Box(x, status_y, half, status_h, done_t, "completed")
            going = _Box(x + half + _STATUS_GAP, status_y, half, status_h, ongoing_t, "ongoing")
            boxes += [alloc, disc, done, going]
            top = enrolled.bottom if len(flow.arms) == 1 else enrolled.bottom + _ROW_GAP / 2
            lines.append(_Line(((alloc.cx, top), (alloc.cx, alloc.y)), arrow=True))
            lines.append(_Line(((alloc.cx, alloc.bottom), (disc.cx, disc.y)), arrow=True))
            lines.append(_Line(((disc.cx, disc.bottom), (disc.cx, fork_y)), arrow=False))
            lines.append(_Line(((done.cx, fork_y), (going.cx, fork_y)), arrow=False))
            lines.append(_Line(((done.cx, fork_y), (done.cx, done.y)), arrow=True))
            lines.append(_Line(((going.cx, fork_y), (going.cx, going.y)), arrow=True))
            if i == 0:
                stage("Allocation", alloc)
                stage("Follow-up", disc)
                stage("Status at data cut-off", done)
        bottom = status_y + status_h

    height = math.ceil(bottom + _MARGIN)
    return _Diagram(width, height, title_para, tuple(boxes), tuple(lines))


# --- rendering --------------------------------------------------------------------------------
def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _text_svg(para: _Para, x: float, top: float, width: float) -> str:
    font = para.font
    attrs = [f'font-size="{_num(font.size)}"', f'fill="{font.colour}"']
    if font.bold:
        attrs.append('font-weight="bold"')
    if font.italic:
        attrs.append('font-style="italic"')
    if para.align == "middle":
        attrs.append('text-anchor="middle"')
    spans = []
    for i, line in enumerate(para.lines):
        line_x = x + width / 2 if para.align == "middle" else x + (para.indent if i else 0.0)
        # Baseline about 0.36 em below the middle of the line box centres capitals and digits.
        baseline = top + i * font.line_height + font.line_height / 2 + 0.36 * font.size
        spans.append(f'<tspan x="{_num(line_x)}" y="{_num(baseline)}">{escape(line)}</tspan>')
    return f"<text {' '.join(attrs)}>{''.join(spans)}</text>"


def _box_svg(box: _Box) -> str:
    if box.stage:
        rect = (
            f'<rect class="stage" x="{_num(box.x)}" y="{_num(box.y)}" width="{_num(box.w)}" '
            f'height="{_num(box.h)}" rx="8" fill="#dbe8f5" stroke="#7ea6d3" stroke-width="1"/>'
        )
    else:
        rect = (
            f'<rect class="box {box.role}" x="{_num(box.x)}" y="{_num(box.y)}" '
            f'width="{_num(box.w)}" height="{_num(box.h)}" fill="#ffffff" stroke="#333333" '
            f'stroke-width="1.2"/>'
        )
    parts = [f'<g class="{box.role}">', rect]
    inner_h = _paras_height(box.paras)
    # Rows share the tallest box's height; the text of a shorter box sits centred in it when it
    # is one centred headline, else at the top like a list.
    centred = all(p.align == "middle" for p in box.paras)
    top = box.y + _PAD_Y + ((box.h - inner_h) / 2 if centred else 0.0)
    for para in box.paras:
        parts.append(_text_svg(para, box.x + _PAD_X, top, box.w - 2 * _PAD_X))
        top += para.height + _PARA_GAP
    parts.append("</g>")
    return "".join(parts)


def _line_svg(line: _Line) -> str:
    points = " ".join(f"{_num(x)},{_num(y)}" for x, y in line.points)
    marker = ' marker-end="url(#arrow)"' if line.arrow else ""
    return f'<polyline points="{points}" fill="none" stroke="#333333" stroke-width="1.2"{marker}/>'


def consort_svg(flow: ConsortFlow, *, title: str | None = None, max_reasons: int = 6) -> str:
    """A CONSORT 2010-style flow diagram of ``flow`` as a self-contained SVG 1.1 document.

    Boxes: "Assessed for eligibility", to its right "Excluded" with the ``max_reasons`` commonest
    criteria (the rest summed as "other criteria"; criterion wording is cut with "…" to two lines)
    and "Not yet allocated" when any subject is, "Enrolled", then one column per arm: "Allocated
    to <arm>" with the subjects treated, "Discontinued" with its ``max_reasons`` commonest reasons,
    and "Completed" beside "Ongoing". Every count is printed, zeros included (a zero is
    information). Each box is a ``<g>`` whose class names its role; each logical line of text is
    one ``<text>`` element, wrapped into ``<tspan>`` lines.

    The default of 6 reasons keeps the Excluded box about as tall as the enrollment part of the
    diagram; the criteria chart on the Screen failures page lists them all.
    """
    if max_reasons < 0:
        raise ValueError(f"max_reasons must be 0 or more, not {max_reasons}")
    diagram = _layout(flow, title=title, max_reasons=max_reasons)
    w, h = diagram.width, diagram.height
    label = title or "CONSORT flow diagram"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family={quoteattr(FONT_FAMILY)}>',
        f"<title>{escape(label)}</title>",
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#333333"/></marker>'
        "</defs>",
        f'<rect class="background" x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    if diagram.title is not None:
        parts.append(_text_svg(diagram.title, _MARGIN, _MARGIN, w - 2 * _MARGIN))
    parts += [_line_svg(line) for line in diagram.lines]
    parts += [_box_svg(box) for box in diagram.boxes]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_to_png(svg: str, *, scale: float = 2.0) -> bytes:
    """Rasterise an SVG document to PNG bytes, ``scale`` pixels per SVG user unit.

    vl-convert renders with resvg from a self-contained wheel, so no browser or system library is
    needed; 2 gives a sharp picture on high-density screens and in slides.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    return vl_convert.svg_to_png(svg, scale=scale)
