"""Axes every chart shares: whole-number ticks for counts (no "0.2 subjects"), quarter ticks for a
0-100% bar (not 21 of them), and a share axis whose domain ends on a round tick beyond the
largest value (not at 34% with a dot at 35%)."""

import math
from collections.abc import Sequence

import altair as alt

# 0%, 25%, 50%, 75%, 100%: enough to read a stacked bar that always ends at 100%.
QUARTERS = [0.0, 0.25, 0.5, 0.75, 1.0]
# Round steps for a share axis, smallest first; the first that gives at most MAX_TICKS is used.
SHARE_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25)
MAX_TICKS = 7


def count_axis(**options: object) -> alt.Axis:
    """An axis of counts: integer ticks only, printed as integers."""
    return alt.Axis(tickMinStep=1, format="d", **options)  # type: ignore[arg-type]


def share_ticks(largest: float) -> list[float]:
    """Ticks from 0 to a round share at or above ``largest`` (0-1), at most ``MAX_TICKS``: the
    last tick is the domain's end, so every point lies inside the axis."""
    top = min(max(float(largest), 0.0), 1.0)
    if top == 0.0:
        return [0.0, 0.25]
    for step in SHARE_STEPS:
        end = math.ceil(round(top / step, 9)) * step
        if end / step + 1 <= MAX_TICKS:
            break
    count = round(end / step)
    return [round(i * step, 10) for i in range(count + 1)]


def share_axis_scale(values: Sequence[float]) -> tuple[alt.Axis, alt.Scale]:
    """A percentage axis and its scale for shares ``values`` (0-1): domain from 0 to the last of
    ``share_ticks``, the ticks there."""
    ticks = share_ticks(max(values, default=0.0))
    return alt.Axis(format="%", values=ticks), alt.Scale(domain=[0, ticks[-1]], nice=False)
