"""What the Labs page draws of its view (issue #21), composed once per view: the shift tables as
shown and the charts as Vega-Lite specs. A module of its own so that what reads the Labs view
without drawing it (``summary --json``'s Hy's law cases) does not load the charting library.
"""

from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.charts.labs import EDISH_DOT_LIMIT, box_by_visit, edish_chart
from dashboard.metrics import labs
from dashboard.views.labs import LabsView, shift_display


@dataclass(frozen=True)
class LabsDisplay:
    """What the Labs page draws of a ``LabsView``, composed once per view (the page caches it
    beside the view): the shift tables as ``shift_display`` lays them out (None where no subject
    has a post-baseline class) and the charts as Vega-Lite specs (None where there is nothing to
    draw). Rebuilt on every rerun, a click or a toggle, they cost a quarter of a second at
    50,000 subjects: the eDISH chart's 30,000 peaks are binned and the specs validated."""

    range_shift: pd.DataFrame | None
    grade_shift: pd.DataFrame | None
    edish: dict[str, Any] | None  # no subject with an ALT or AST and a bilirubin with a ULN
    edish_shaded: bool  # the normal-range quadrant drawn as shaded cells (``EDISH_DOT_LIMIT``)
    boxes: dict[str, Any] | None  # no value of the measurement at a scheduled visit


def _shown_shift(table: labs.ShiftTable | None) -> pd.DataFrame | None:
    if table is None or table.cells["n"].sum() == 0:
        return None
    return shift_display(table)


def labs_display(view: LabsView) -> LabsDisplay:
    """The display of ``view`` (``LabsDisplay``); links from the eDISH points carry the study."""
    points = view.edish
    assessable = int((points["quadrant"] != labs.NOT_ASSESSABLE).sum()) if len(points) else 0
    # Specs not validated against the Vega-Lite schema here (a tenth of a second of a cold
    # page): the tests validate what these same builders give (tests/test_lab_metrics.py).
    return LabsDisplay(
        range_shift=_shown_shift(view.range_shift),
        grade_shift=_shown_shift(view.grade_shift),
        edish=(
            edish_chart(points, view.frame.study.study_id).to_dict(validate=False)
            if assessable
            else None
        ),
        edish_shaded=assessable > EDISH_DOT_LIMIT,
        boxes=(
            box_by_visit(view.boxes, view.options.measurement or "").to_dict(validate=False)
            if not view.boxes.empty
            else None
        ),
    )
