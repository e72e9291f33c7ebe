"""The warm-up of a new server process (dashboard/ui/warm_up.py): what it imports is read from the
page scripts themselves, so it cannot fall behind them."""

from pathlib import Path

from dashboard.ui.warm_up import imported_modules

PAGES = Path(__file__).resolve().parent.parent / "pages"


def test_the_pages_modules_are_found(tmp_path: Path) -> None:
    script = tmp_path / "page.py"
    script.write_text(
        "import json\nfrom dashboard.ui import views\nfrom .local import x\n"
        "if True:\n    from dashboard.metrics.kri import score_groups\n",
        encoding="utf-8",
    )
    assert imported_modules([script]) == [
        "json",
        "dashboard.ui",
        "dashboard.ui.views",
        "dashboard.metrics.kri",
        "dashboard.metrics.kri.score_groups",
    ]


def test_every_page_is_read() -> None:
    found = imported_modules(sorted(PAGES.glob("*.py")))
    assert "dashboard.ui.views" in found  # from dashboard.ui import views
    assert "dashboard.ui.ae_drilldown" in found  # the Adverse events page's
    assert "dashboard.importers.run" in found  # the Import page's
