"""Real-browser layout tests: at a laptop's 1024 px beside the open sidebar, at 1280 and 1440 px,
and on a 390 px phone (the Overview), no metric, button, page link, tab or checkbox label is cut
with an ellipsis; and the Screen failures drilldown lands in view, the chart and the table showing
the same criterion.

"Cut": an element (or a descendant) whose text is wider than its box (``scrollWidth >
clientWidth + 1``) where the box clips (``text-overflow: ellipsis`` or an ``overflow`` that hides).
Every offender of a study and width is collected, page, width and text, so a failure names them all.
Fixtures: tests/browser_support.py.
"""

import re
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

SEED = "NCT06466850"
PILOT = "CDISCPILOT01"
# One subject per study for the Subject page: a BMI screen failure, an enrolled subject with
# overdue visits, a pilot subject with AEs.
SUBJECTS = {SEED: "NCT06466850-01-017", "DEMO-MULTI": "DEMO-MULTI-104-0280", PILOT: "01-701-1023"}
PAGES = [
    "",
    "enrollment",
    "screen-failures",
    "baseline",
    "adverse-events",
    "labs",
    "site-risk",
    "subject",
]
HEIGHT = 900

# Collects, for every element whose text must never be cut, each box that clips text wider than
# itself: [kind, text, scrollWidth, clientWidth].
CUT_TEXT = """
() => {
  const kinds = ['stMetric', 'stButton', 'stDownloadButton', 'stPageLink', 'stTab', 'stCheckbox'];
  const selector = kinds.map(k => `[data-testid="${k}"]`).join(', ') + ', [role="tab"]';
  const found = [];
  for (const element of document.querySelectorAll(selector)) {
    for (const node of [element, ...element.querySelectorAll('*')]) {
      if (node.scrollWidth <= node.clientWidth + 1) continue;
      // A box 1 px wide is a visually hidden one (a checkbox's input): nothing to read in it.
      if (node.clientWidth <= 1 || !(node.innerText || '').trim()) continue;
      const style = getComputedStyle(node);
      const clips = style.textOverflow === 'ellipsis'
        || ['hidden', 'clip', 'auto', 'scroll'].includes(style.overflowX);
      if (!clips) continue;
      found.push([element.getAttribute('data-testid') || 'tab',
                  (element.innerText || '').trim().replace(/\\s+/g, ' '),
                  node.scrollWidth, node.clientWidth]);
    }
  }
  return found;
}
"""


def _needs_pilot(study: str) -> None:
    if study == PILOT and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")


def _url(server: str, path: str, study: str) -> str:
    if path == "subject":
        return f"{server}/subject?study={study}&subject={SUBJECTS[study]}"
    return f"{server}/{path}?study={study}"


def _cut_texts(page: Any, server: str, study: str, width: int, paths: list[str]) -> list[str]:
    """Open each page of ``study`` at ``width`` in one browser page; every cut text, named."""
    page.set_viewport_size({"width": width, "height": HEIGHT})
    found = []
    for path in paths:
        page.goto(_url(server, path, study))
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, (path, study)
        found += [
            f"{path or 'overview'} at {width} px: {kind} {text!r} ({scroll} > {client} px)"
            for kind, text, scroll, client in page.evaluate(CUT_TEXT)
        ]
    return found


@pytest.mark.parametrize("width", [1024, 1440])
@pytest.mark.parametrize("study", [SEED, "DEMO-MULTI", PILOT])
def test_no_text_cut_on_any_page(browser: Any, server: str, study: str, width: int) -> None:
    _needs_pilot(study)
    page = browser.new_page()
    cut = _cut_texts(page, server, study, width, PAGES)
    page.close()
    assert not cut, "cut with an ellipsis:\n" + "\n".join(cut)


@pytest.mark.parametrize("study", [SEED, "DEMO-MULTI", PILOT])
def test_no_text_cut_on_the_overview_at_1280_and_on_a_phone(
    browser: Any, server: str, study: str
) -> None:
    _needs_pilot(study)
    page = browser.new_page()
    cut = _cut_texts(page, server, study, 1280, [""])
    # A phone: Streamlit folds the sidebar away below 640 px.
    cut += _cut_texts(page, server, study, 390, [""])
    page.screenshot(path=str(ARTIFACTS / f"overview-390-{study}.png"), full_page=True)
    # Nothing wider than the phone's screen either: no sideways scrolling of the page.
    main = page.locator('[data-testid="stMain"]')
    assert main.evaluate("m => m.scrollWidth") <= 390
    for chart in page.locator('[data-testid="stVegaLiteChart"]').all():
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.close()
    assert not cut, "cut with an ellipsis:\n" + "\n".join(cut)


def _bar_opacity(page: Any) -> dict[str, float]:
    """Each criterion's bar on the criteria chart: its opacity (1 full, below 1 faded). Vega labels
    each bar with its tooltip fields ("Criterion: INCL02; ...")."""
    pairs = page.evaluate(
        """() => [...document.querySelectorAll(
              '[data-testid="stVegaLiteChart"] svg g.mark-rect path[aria-label*="Criterion: "]')]
            .map(p => [p.getAttribute('aria-label').match(/Criterion: ([^;]+);/)[1],
                       p.getAttribute('fill-opacity') ?? p.getAttribute('opacity') ?? '1'])"""
    )
    return {code: float(opacity) for code, opacity in pairs}


def _ticked_rows(page: Any) -> list[str]:
    """The first cell of every ticked row, in every grid (Glide's accessible copy of the grid
    marks a ticked row aria-selected)."""
    rows: list[str] = page.evaluate(
        """() => [...document.querySelectorAll(
              '[data-testid="stDataFrame"] tr[aria-selected="true"]')]
            .map(r => r.querySelector('[role="gridcell"]').textContent.trim())"""
    )
    return rows


def _in_view(page: Any, box: dict[str, float] | None) -> bool:
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT


@pytest.mark.parametrize("width", [1024, 1440])
def test_screen_failure_drilldown_lands_in_view(browser: Any, server: str, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": HEIGHT})
    page.goto(f"{server}/screen-failures?study={SEED}")
    settle(page, chart=True)
    # The data manager clicks the BMI bar (Playwright scrolls to the chart first, as they would).
    page.locator(
        '[data-testid="stVegaLiteChart"] svg g.mark-rect path[aria-label*="Criterion: INCL02;"]'
    ).first.click()
    heading = page.locator("#who-failed")
    heading.wait_for(timeout=30_000)
    settle(page, chart=True)
    page.wait_for_timeout(500)  # the scroll to the list
    page.screenshot(path=str(ARTIFACTS / f"screen-failures-drilldown-{width}.png"))
    # The list's heading names the pick; the heading and the list's first row are on screen.
    assert heading.inner_text().strip() == "5 subjects failed INCL02"
    assert _in_view(page, heading.bounding_box())
    listing = page.locator('[data-testid="stDataFrame"]').filter(has_text="Criteria failed")
    box = listing.bounding_box()
    assert box is not None
    first_row = {"y": box["y"], "height": 2 * 35}  # the header and the first row, 35 px each
    assert _in_view(page, first_row)
    # Who, where, when: the first row's subject (a Subject-page link), site and screening date.
    cells = [c.strip() for c in listing.locator("tr").nth(1).locator("td").all_text_contents()]
    assert re.search(rf"subject\?study={SEED}&subject={SEED}-01-\d{{3}}$", cells[0]), cells
    assert "01" in cells and any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", c) for c in cells), cells
    # The chart and the table show the same pick: the BMI bar alone full, its row ticked.
    opacity = _bar_opacity(page)
    assert opacity["INCL02"] == 1 and all(v < 1 for c, v in opacity.items() if c != "INCL02")
    assert _ticked_rows(page) == ["INCL02"]

    # The other way: a row ticked in the table picks its criterion, highlights its bar and
    # brings its list into view.
    table = page.locator('[data-testid="stDataFrame"]').filter(has_text="Criterion (protocol")
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    assert box is not None
    rows = table.locator("tr").all_text_contents()  # the header, then a row per criterion
    row = next(i for i, text in enumerate(rows) if text.startswith("EXCL01"))
    page.mouse.click(box["x"] + 16, box["y"] + 35 * row + 17)  # the row's tick box
    page.get_by_text("2 subjects failed EXCL01").wait_for(timeout=30_000)
    settle(page, chart=True)
    page.wait_for_timeout(500)
    assert _in_view(page, heading.bounding_box())
    opacity = _bar_opacity(page)
    assert opacity["EXCL01"] == 1 and all(v < 1 for c, v in opacity.items() if c != "EXCL01")
    assert _ticked_rows(page) == ["EXCL01"]
    page.close()


def _click_row(page: Any, grid: Any, row: int, x: float) -> None:
    """Click ``row`` (1: the first under the header) of a grid, ``x`` px from its left edge."""
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + 35 * row + 17)


def test_other_drilldowns_land_in_view(browser: Any, server: str) -> None:
    """Enrollment's sites table, Site risk's funnel plot and the AE summary: a pick low on the
    screen opens its list, and the list's start is then on screen."""
    page = browser.new_page(viewport={"width": 1024, "height": HEIGHT})
    page.goto(f"{server}/enrollment?study=DEMO-MULTI")
    settle(page, chart=True)
    sites = page.locator('[data-testid="stDataFrame"]').filter(has_text="Active since")
    _click_row(page, sites, 3, 16)  # the row's tick box
    page.get_by_text("Subjects of site 103").wait_for(timeout=30_000)
    settle(page, chart=True)
    page.wait_for_timeout(500)
    assert _in_view(page, page.get_by_text("Subjects of site 103").bounding_box())

    page.goto(f"{server}/site-risk?study=DEMO-MULTI")
    settle(page, chart=True)
    page.locator('[data-testid="stVegaLiteChart"] svg g.mark-symbol path').first.click()
    page.get_by_text("Site detail").wait_for(timeout=30_000)
    settle(page, chart=True)
    page.wait_for_timeout(500)
    assert _in_view(page, page.get_by_role("heading", name="Site detail").bounding_box())

    page.goto(f"{server}/adverse-events?study=DEMO-MULTI")
    settle(page, chart=True)
    summary = page.locator('[data-testid="stDataFrame"]').first
    _click_row(page, summary, 1, 260)  # "Any AE", the first arm's cell
    title = page.get_by_text("Events behind: Any AE")
    title.wait_for(timeout=30_000)
    settle(page, chart=True)
    page.wait_for_timeout(500)
    assert _in_view(page, title.bounding_box())
    page.close()
