"""What a click on the Adverse events page selects: a cell of a table or a point of a chart,
turned into the filter of the events behind it (an ``EventPick``), which the drilldown lists.
"""

from dataclasses import dataclass

import pandas as pd

from dashboard.metrics.ae_rules import LEVEL_LABELS, SOURCE_VARIABLES, WORST_DIMENSIONS
from dashboard.metrics.ae_tables import BLANK_VALUE, NO_AE, arm_columns


@dataclass(frozen=True)
class EventPick:
    """What a click selected: the events behind one cell or bar. ``source`` names the control (so
    the listing is drawn beside it); the other fields filter the events (None: any)."""

    source: str  # "summary" | "terms" | "soc" | "worst"
    title: str
    arm: str | None = None
    category: str | None = None  # a SUMMARY_CATEGORIES key
    soc: str | None = None
    pt: str | None = None
    dimension: str | None = None  # a WORST_DIMENSIONS key, with rank or value
    rank: int | None = None
    value: str | None = None  # the dimension's variable as given ('' for blank): those events


def summary_cell_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, population: pd.DataFrame
) -> EventPick | None:
    """The pick of a cell of ``summary_table``: its row's category, its column's arm (the label
    column: every arm)."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    row, column = cell
    key, label = str(table.iloc[row]["category"]), str(table.iloc[row]["Category"])
    arm = next((c.arm for c in arm_columns(population) if column == c.label), None)
    return EventPick(
        source="summary",
        title=f"{label} · {arm or 'all arms'}",
        arm=arm,
        category=key,
    )


def incidence_cell_pick(
    cell: tuple[int, str] | None, rows: pd.DataFrame, population: pd.DataFrame
) -> EventPick | None:
    """The pick of a cell of one SOC's table (``rows``: its ``incidence_table`` rows)."""
    if cell is None or not 0 <= cell[0] < len(rows):
        return None
    row, column = cell
    record = rows.iloc[row]
    arm = next((c.arm for c in arm_columns(population) if column == c.label), None)
    pt = None if record["level"] == "SOC" else str(record["pt"])
    return EventPick(
        source="terms",
        title=f"{pt or record['soc']} · {arm or 'all arms'}",
        arm=arm,
        soc=str(record["soc"]),
        pt=pt,
    )


def soc_point_pick(point: dict[str, object] | None) -> EventPick | None:
    """The pick of a dot of the SOC chart (its fields: soc, arm)."""
    if not point or point.get("soc") is None:
        return None
    soc, arm = str(point["soc"]), point.get("arm")
    return EventPick(
        source="soc",
        title=f"{soc} · {arm or 'all arms'}",
        arm=None if arm is None else str(arm),
        soc=soc,
    )


def level_point_pick(
    point: dict[str, object] | None, population: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a segment of the per-subject chart (its fields: arm_label, level): the events
    at that level of the arm's subjects whose highest level it is. "No AE" is rank -1."""
    if not point or point.get("level") is None:
        return None
    label, level = str(point.get("arm_label")), str(point["level"])
    ranks = {name: rank for rank, name in LEVEL_LABELS[dimension].items()} | {NO_AE: -1}
    if level not in ranks:
        return None
    arm = next((c.arm for c in arm_columns(population) if c.label == label), None)
    return EventPick(
        source="worst",
        title=f"{WORST_DIMENSIONS[dimension]}: {level} · {arm or 'all arms'}",
        arm=arm,
        dimension=dimension,
        rank=ranks[level],
    )


def level_cell_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, population: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a cell of ``display_worst_levels``: its row's level, its column's arm (the
    Level column: every arm) -- the same events as the chart's segment (``level_point_pick``)."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    row, column = cell
    point: dict[str, object] = {"arm_label": column, "level": str(table.iloc[row]["Level"])}
    return level_point_pick(point, population, dimension)


def source_value_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a cell of ``source_values``: the events (of every arm) whose variable holds
    that row's value as given."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    value = str(table.iloc[cell[0]]["value"])
    variable = SOURCE_VARIABLES[dimension]
    return EventPick(
        source="worst",
        title=f"{variable} = {value or BLANK_VALUE} · all arms",
        dimension=dimension,
        value=value,
    )
