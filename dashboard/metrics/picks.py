"""Which drilldown a page shows after a rerun, from what each clickable control selects now."""

from typing import TypeVar

Pick = TypeVar("Pick")


def latest_pick(
    now: dict[str, Pick | None], before: dict[str, Pick | None], current: Pick | None
) -> Pick | None:
    """The control whose selection changed since the last run wins (a selection cleared clears
    the drilldown; controls are looked at in the order given); nothing changed keeps ``current``."""
    for control, pick in now.items():
        if before.get(control) != pick:
            return pick
    return current
