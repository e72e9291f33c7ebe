"""The CONSORT flow diagram: a valid SVG carrying every count in the right box, laid out cleanly."""

import itertools
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PIL import ImageFont

from dashboard.charts.consort import consort_svg, svg_to_png
from dashboard.results.consort import ArmFlow, ConsortFlow

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SVG = "{http://www.w3.org/2000/svg}"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")

# NCT06466850 as the demo builds it (README, "The demo study's figures"), criterion wording from
# the registry record: 19 criterion failures in 16 subjects, EXCL03 failed by nobody.
NCT06466850 = ConsortFlow(
    screened=36,
    screen_failures=16,
    exclusion_reasons=(
        ("INCL02 Body mass index (BMI) between 21.5 and 29.5", 5),
        (
            "INCL03 Radiographically documented knee osteoarthritis of grades 1 to 3 "
            "(Kellgren-Lawrence (K-L) radiographic classification scale)",
            3,
        ),
        ("EXCL06 Hyaluronic acid infiltration within the previous six months", 3),
        ("EXCL01 Rheumatoid arthritis and other rheumatic diseases", 2),
        ("EXCL02 Varus or valgus more than 10 degrees; lateral subluxation of the patella", 2),
        ("INCL01 Chronic history (for at least 3 months) of knee joint pain", 1),
        ("EXCL04 Complete rupture of the ligament and meniscus leading to laxity or locking", 1),
        (
            "EXCL05 Serious systemic, oncohematological, autoimmune diseases; history of severe "
            "allergy; serious failure of vital organs, inability to walk",
            1,
        ),
        ("EXCL07 Hemoglobin levels <10 g/dL", 1),
        ("EXCL03 Deformity at the joint levels or adjacent to the knee due to fracture", 0),
    ),
    failures_without_reason=0,
    not_allocated=0,
    enrolled=20,
    arms=(
        ArmFlow(
            arm="Exosome",
            allocated=20,
            treated=20,
            discontinued=2,
            discontinuation_reasons=(("LOST TO FOLLOW-UP", 1), ("WITHDRAWAL BY SUBJECT", 1)),
            completed=12,
            ongoing=6,
        ),
    ),
)

# CDISCPILOT01-like: the pilot has no IE domain, so its 52 screen failures have no criterion. The
# arm sizes are the pilot's; the discontinuation splits are made up.
CDISCPILOT01 = ConsortFlow(
    screened=306,
    screen_failures=52,
    exclusion_reasons=(),
    failures_without_reason=52,
    not_allocated=0,
    enrolled=254,
    arms=(
        ArmFlow(
            "Placebo",
            86,
            86,
            28,
            (
                ("WITHDRAWAL BY SUBJECT", 9),
                ("ADVERSE EVENT", 8),
                ("LOST TO FOLLOW-UP", 5),
                ("PROTOCOL VIOLATION", 3),
                ("LACK OF EFFICACY", 3),
            ),
            58,
            0,
        ),
        ArmFlow(
            "Xanomeline High Dose",
            84,
            84,
            57,
            (
                ("ADVERSE EVENT", 40),
                ("WITHDRAWAL BY SUBJECT", 8),
                ("PROTOCOL VIOLATION", 3),
                ("PHYSICIAN DECISION", 2),
                ("STUDY TERMINATED BY SPONSOR", 2),
                ("LOST TO FOLLOW-UP", 1),
                ("LACK OF EFFICACY", 1),
            ),
            27,
            0,
        ),
        ArmFlow(
            "Xanomeline Low Dose",
            84,
            84,
            59,
            (
                ("ADVERSE EVENT", 44),
                ("WITHDRAWAL BY SUBJECT", 10),
                ("PROTOCOL VIOLATION", 3),
                ("LOST TO FOLLOW-UP", 1),
                ("DEATH", 1),
            ),
            25,
            0,
        ),
    ),
)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: "Rect") -> bool:
        # Touching edges do not count; any shared area does.
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )


def _rect(element: ET.Element) -> Rect:
    return Rect(*(float(element.attrib[k]) for k in ("x", "y", "width", "height")))


def _text(element: ET.Element) -> str:
    """A <text> element's logical text: its wrapped <tspan> lines joined by spaces."""
    return " ".join(part.strip() for part in element.itertext() if part.strip())


def _boxes(root: ET.Element, role: str) -> list[tuple[Rect, list[str]]]:
    """Every box drawn for ``role`` (left to right): its rectangle and its lines of text."""
    found = []
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == role:
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            found.append((_rect(rect), [_text(t) for t in group.iter(f"{SVG}text")]))
    return sorted(found, key=lambda box: box[0].x)


def _texts(root: ET.Element, role: str) -> list[list[str]]:
    return [texts for _, texts in _boxes(root, role)]


def _all_rects(root: ET.Element) -> list[Rect]:
    """The boxes and stage labels, not the background."""
    return [_rect(r) for r in root.iter(f"{SVG}rect") if r.get("class") != "background"]


def _png_size(png: bytes) -> tuple[int, int]:
    # The IHDR chunk comes first: 8-byte signature, 4-byte length, b"IHDR", width, height.
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_svg_document_root() -> None:
    svg = consort_svg(NCT06466850, title="NCT06466850")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("version") == "1.1"
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    assert width > 0 and height > 0
    assert root.get("viewBox") == f"0 0 {width} {height}"
    assert "DejaVu Sans" in root.attrib["font-family"]
    assert root.findtext(f"{SVG}title") == "NCT06466850"
    background = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "background")
    assert _rect(background) == Rect(0, 0, width, height)
    assert background.get("fill") == "#ffffff"
    arrows = [p for p in root.iter(f"{SVG}polyline") if p.get("marker-end") == "url(#arrow)"]
    # Assessed -> Enrolled, -> Excluded, -> Allocated, -> Discontinued, -> Completed, -> Ongoing.
    assert len(arrows) == 6
    assert root.find(f"{SVG}defs/{SVG}marker[@id='arrow']") is not None


def test_single_arm_counts_are_in_their_boxes() -> None:
    root = ET.fromstring(consort_svg(NCT06466850))
    assert _texts(root, "assessed") == [["Assessed for eligibility (n=36)"]]
    (excluded,) = _texts(root, "excluded")
    # The K-L wording is too long for two lines: cut, its count kept.
    cut = excluded.pop(2)
    assert cut.startswith("• INCL03 Radiographically documented knee osteoarthritis")
    assert cut.endswith("… (n=3)")
    assert excluded == [
        "Excluded (n=16)",
        "• INCL02 Body mass index (BMI) between 21.5 and 29.5 (n=5)",
        "• EXCL06 Hyaluronic acid infiltration within the previous six months (n=3)",
        "• EXCL01 Rheumatoid arthritis and other rheumatic diseases (n=2)",
        "• EXCL02 Varus or valgus more than 10 degrees; lateral subluxation of the patella (n=2)",
        "• INCL01 Chronic history (for at least 3 months) of knee joint pain (n=1)",
        # EXCL04, EXCL05, EXCL07 and EXCL03: 1 + 1 + 1 + 0.
        "• other criteria (n=3)",
        # 19 criterion failures in 16 subjects.
        "a subject may fail several criteria",
    ]
    assert _texts(root, "not-allocated") == []
    assert _texts(root, "enrolled") == [["Enrolled (n=20)"]]
    assert _texts(root, "allocated") == [
        ["Allocated to Exosome (n=20)", "received treatment (n=20)"]
    ]
    assert _texts(root, "discontinued") == [
        ["Discontinued (n=2)", "• LOST TO FOLLOW-UP (n=1)", "• WITHDRAWAL BY SUBJECT (n=1)"]
    ]
    assert _texts(root, "completed") == [["Completed (n=12)"]]
    assert _texts(root, "ongoing") == [["Ongoing (n=6)"]]
    assert [t for row in _texts(root, "stage") for t in row] == [
        "Enrollment",
        "Allocation",
        "Follow-up",
        "Status at data cut-off",
    ]


def test_three_arms_side_by_side_without_overlaps() -> None:
    root = ET.fromstring(consort_svg(CDISCPILOT01, title="CDISCPILOT01"))
    assert _texts(root, "assessed") == [["Assessed for eligibility (n=306)"]]
    # No IE domain: every failure is "no criterion recorded", and nothing overlaps, so no note.
    assert _texts(root, "excluded") == [["Excluded (n=52)", "• no criterion recorded (n=52)"]]
    assert _texts(root, "enrolled") == [["Enrolled (n=254)"]]
    allocated = _boxes(root, "allocated")
    assert [texts for _, texts in allocated] == [
        ["Allocated to Placebo (n=86)", "received treatment (n=86)"],
        ["Allocated to Xanomeline High Dose (n=84)", "received treatment (n=84)"],
        ["Allocated to Xanomeline Low Dose (n=84)", "received treatment (n=84)"],
    ]
    rects = [rect for rect, _ in allocated]
    assert len({r.y for r in rects}) == 1
    assert rects[0].x + rects[0].w < rects[1].x < rects[1].x + rects[1].w < rects[2].x
    discontinued = _texts(root, "discontinued")
    assert [d[0] for d in discontinued] == [
        "Discontinued (n=28)",
        "Discontinued (n=57)",
        "Discontinued (n=59)",
    ]
    # Seven reasons in the high-dose arm: six listed, the last (LACK OF EFFICACY 1) summed.
    assert discontinued[1][1:] == [
        "• ADVERSE EVENT (n=40)",
        "• WITHDRAWAL BY SUBJECT (n=8)",
        "• PROTOCOL VIOLATION (n=3)",
        "• PHYSICIAN DECISION (n=2)",
        "• STUDY TERMINATED BY SPONSOR (n=2)",
        "• LOST TO FOLLOW-UP (n=1)",
        "• other reasons (n=1)",
    ]
    assert _texts(root, "completed") == [
        ["Completed (n=58)"],
        ["Completed (n=27)"],
        ["Completed (n=25)"],
    ]
    assert _texts(root, "ongoing") == [["Ongoing (n=0)"]] * 3
    for a, b in itertools.combinations(_all_rects(root), 2):
        assert not a.overlaps(b), (a, b)


@pytest.mark.parametrize("arms", [1, 2, 3, 4, 5, 6, 8])
def test_layout_scales_with_the_number_of_arms(arms: int) -> None:
    flow = replace(
        CDISCPILOT01,
        not_allocated=4,
        arms=tuple(
            replace(CDISCPILOT01.arms[i % 3], arm=f"Arm {i + 1} {'long name ' * i}")
            for i in range(arms)
        ),
    )
    root = ET.fromstring(consort_svg(flow))
    width = int(root.attrib["width"])
    rects = _all_rects(root)
    for a, b in itertools.combinations(rects, 2):
        assert not a.overlaps(b), (a, b)
    # Everything inside the picture, with a margin.
    for r in rects:
        assert r.x > 0 and r.x + r.w < width and r.y > 0
        assert r.y + r.h < int(root.attrib["height"])
    allocated = [rect for rect, _ in _boxes(root, "allocated")]
    assert len(allocated) == arms
    # Narrower columns as arms are added, never narrower than a "Completed" headline needs;
    # about 230 px per arm at most.
    assert 200 <= allocated[0].w <= 260
    assert width <= 400 + 235 * max(arms, 2)


def test_columns_narrow_and_the_picture_widens_with_more_arms() -> None:
    widths, column_widths = [], []
    for arms in range(1, 7):
        flow = replace(CDISCPILOT01, arms=CDISCPILOT01.arms[:1] * arms)
        root = ET.fromstring(consort_svg(flow))
        widths.append(int(root.attrib["width"]))
        column_widths.append(_boxes(root, "allocated")[0][0].w)
    assert widths == sorted(widths)
    assert column_widths == sorted(column_widths, reverse=True)
    assert column_widths[0] > column_widths[-1]


def test_other_criteria_sums_what_is_not_listed() -> None:
    reasons = tuple((f"INCL{i:02d} criterion {i}", 10 - i) for i in range(1, 9))
    flow = replace(NCT06466850, screen_failures=30, exclusion_reasons=reasons)
    # Eight reasons (9 down to 2), three listed: the other five add up to 6 + 5 + 4 + 3 + 2.
    texts = _texts(ET.fromstring(consort_svg(flow, max_reasons=3)), "excluded")[0]
    assert texts[1:4] == [
        "• INCL01 criterion 1 (n=9)",
        "• INCL02 criterion 2 (n=8)",
        "• INCL03 criterion 3 (n=7)",
    ]
    assert texts[4] == f"• other criteria (n={6 + 5 + 4 + 3 + 2})"
    # 44 criterion failures in 30 subjects.
    assert texts[5] == "a subject may fail several criteria"
    # Exactly max_reasons reasons: all listed, no "other" line.
    listed = _texts(ET.fromstring(consort_svg(flow, max_reasons=8)), "excluded")[0]
    assert not any("other criteria" in t for t in listed)
    assert len(listed) == 1 + 8 + 1
    # None listed: one line sums them all.
    summed = _texts(ET.fromstring(consort_svg(flow, max_reasons=0)), "excluded")[0]
    assert summed[1] == "• other criteria (n=44)"
    with pytest.raises(ValueError, match="max_reasons"):
        consort_svg(flow, max_reasons=-1)


def test_unsorted_reasons_are_listed_most_first() -> None:
    flow = replace(
        NCT06466850,
        exclusion_reasons=(("EXCL01 a", 1), ("INCL01 b", 4), ("EXCL02 c", 4), ("INCL02 d", 2)),
    )
    texts = _texts(ET.fromstring(consort_svg(flow, max_reasons=3)), "excluded")[0]
    # Equal counts keep the order given.
    assert texts[1:5] == [
        "• INCL01 b (n=4)",
        "• EXCL02 c (n=4)",
        "• INCL02 d (n=2)",
        "• other criteria (n=1)",
    ]


def test_note_only_when_reasons_add_up_to_more_than_the_failures() -> None:
    # 3 + 2 with reasons plus 1 without: exactly the 6 failures, so no subject failed two.
    flow = replace(
        NCT06466850,
        screen_failures=6,
        exclusion_reasons=(("INCL01 a", 3), ("INCL02 b", 2)),
        failures_without_reason=1,
    )
    texts = _texts(ET.fromstring(consort_svg(flow)), "excluded")[0]
    assert texts == [
        "Excluded (n=6)",
        "• INCL01 a (n=3)",
        "• INCL02 b (n=2)",
        "• no criterion recorded (n=1)",
    ]
    overlapping = replace(flow, screen_failures=5)
    texts = _texts(ET.fromstring(consort_svg(overlapping)), "excluded")[0]
    assert texts[-1] == "a subject may fail several criteria"


def test_markup_in_wording_is_escaped() -> None:
    flow = replace(
        NCT06466850,
        exclusion_reasons=(("EXCL07 Hb <10 g/dL & platelets >100", 1),),
        arms=(replace(NCT06466850.arms[0], arm='A&B <"high">'),),
    )
    svg = consort_svg(flow, title="Flow <draft> & 'notes'")
    assert "<draft>" not in svg and '<"high">' not in svg
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == "Flow <draft> & 'notes'"
    assert "• EXCL07 Hb <10 g/dL & platelets >100 (n=1)" in _texts(root, "excluded")[0]
    assert _texts(root, "allocated")[0][0] == 'Allocated to A&B <"high"> (n=20)'


def test_zero_counts_are_shown() -> None:
    flow = ConsortFlow(
        screened=0,
        screen_failures=0,
        exclusion_reasons=(("INCL01 a", 0),),
        failures_without_reason=0,
        not_allocated=0,
        enrolled=0,
        arms=(ArmFlow("Placebo", 0, 0, 0, (), 0, 0),),
    )
    root = ET.fromstring(consort_svg(flow))
    assert _texts(root, "assessed") == [["Assessed for eligibility (n=0)"]]
    assert _texts(root, "excluded") == [["Excluded (n=0)", "• INCL01 a (n=0)"]]
    assert _texts(root, "enrolled") == [["Enrolled (n=0)"]]
    assert _texts(root, "allocated") == [["Allocated to Placebo (n=0)", "received treatment (n=0)"]]
    assert _texts(root, "discontinued") == [["Discontinued (n=0)"]]
    assert _texts(root, "completed") == [["Completed (n=0)"]]
    assert _texts(root, "ongoing") == [["Ongoing (n=0)"]]


def test_not_yet_allocated_box_and_no_arms() -> None:
    flow = ConsortFlow(
        screened=5,
        screen_failures=0,
        exclusion_reasons=(),
        failures_without_reason=0,
        not_allocated=5,
        enrolled=0,
        arms=(),
    )
    root = ET.fromstring(consort_svg(flow))
    assert _texts(root, "not-allocated") == [
        ["Not yet allocated (n=5)", "in screening or not assigned to an arm"]
    ]
    assert _texts(root, "enrolled") == [["Enrolled (n=0)"]]
    assert _texts(root, "allocated") == []
    for a, b in itertools.combinations(_all_rects(root), 2):
        assert not a.overlaps(b), (a, b)


def test_long_arm_name_is_cut_keeping_the_count() -> None:
    arm = "Drug A 20 mg once daily plus background standard-of-care therapy " * 3
    flow = replace(NCT06466850, arms=(replace(NCT06466850.arms[0], arm=arm),))
    root = ET.fromstring(consort_svg(flow))
    headline = next(
        t
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "allocated"
        for t in g.iter(f"{SVG}text")
    )
    assert len(list(headline)) == 3  # at most three wrapped lines
    assert _text(headline).startswith("Allocated to Drug A 20 mg")
    assert _text(headline).endswith("… (n=20)")


@pytest.mark.skipif(not (DEJAVU / "DejaVuSans.ttf").exists(), reason="DejaVu fonts not installed")
@pytest.mark.parametrize("flow", [NCT06466850, CDISCPILOT01], ids=["single-arm", "three-arms"])
def test_text_fits_inside_its_box_in_dejavu_sans(flow: ConsortFlow) -> None:
    # Measured with the font file itself (through Pillow), not with the module's width table.
    fonts = {
        (bold, size): ImageFont.truetype(
            str(DEJAVU / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size
        )
        for bold in (False, True)
        for size in (11, 12, 13)
    }
    root = ET.fromstring(consort_svg(flow))
    checked = 0
    for group in root.iter(f"{SVG}g"):
        rect_element = group.find(f"{SVG}rect")
        assert rect_element is not None
        rect = _rect(rect_element)
        for text in group.iter(f"{SVG}text"):
            font = fonts[text.get("font-weight") == "bold", int(text.attrib["font-size"])]
            centred = text.get("text-anchor") == "middle"
            for span in text:
                length = font.getlength(span.text or "")
                x = float(span.attrib["x"]) - (length / 2 if centred else 0.0)
                assert rect.x + 4 <= x and x + length <= rect.x + rect.w - 4, (span.text, rect)
                assert rect.y < float(span.attrib["y"]) < rect.y + rect.h
                checked += 1
    assert checked > 10


def test_png_has_the_svg_size_times_scale() -> None:
    svg = consort_svg(NCT06466850)
    root = ET.fromstring(svg)
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    for scale in (1.0, 2.0):
        png = svg_to_png(svg, scale=scale)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert _png_size(png) == (int(width * scale), int(height * scale))
    with pytest.raises(ValueError, match="scale"):
        svg_to_png(svg, scale=0)


def test_write_example_pngs() -> None:
    """The two examples as pictures in tests/artifacts/, for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    for name, flow, title in [
        ("NCT06466850", NCT06466850, "NCT06466850: participant flow (synthetic subjects)"),
        ("CDISCPILOT01", CDISCPILOT01, "CDISCPILOT01: participant flow (made-up dispositions)"),
    ]:
        png = svg_to_png(consort_svg(flow, title=title))
        path = ARTIFACTS / f"consort-{name}.png"
        path.write_bytes(png)
        assert path.stat().st_size > 10_000
