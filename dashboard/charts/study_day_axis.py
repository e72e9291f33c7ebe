"""The study-day axis both timelines draw (the AE swimmer plot and the Subject page): positions are
days from day 1, labels are study days, and there is no day 0."""

# Axis positions count days from day 1 (``metrics.ae_timeline.day_position``); the labels are
# study days again: position 0 -> day 1, -1 -> day -1 (no day 0). Both timelines' axes.
DAY_LABEL_EXPR = "datum.value >= 0 ? datum.value + 1 : datum.value"

_STEPS = (1, 2, 5, 7, 14, 28, 50, 100, 200, 500, 1000)


def study_day_ticks(first: int, last: int, *, most: int = 12) -> list[int]:
    """Tick positions (days from day 1) for the study-day axis from ``first`` to ``last``, so that
    the labels are round study days: day 1, then multiples of a step either side (positions
    ``step - 1, 2 * step - 1, ...`` after day 1, ``-step, -2 * step, ...`` before it; no day 0)."""
    span = max(last - first, 1)
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    before = [-k * step for k in range(1, -first // step + 1)] if first < 0 else []
    after = [k * step - 1 for k in range(1, (last + 1) // step + 1)]
    return sorted({*before, 0, *(p for p in after if p > 0)})
