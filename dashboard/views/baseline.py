"""The Baseline page's view: Table 1 (by arm or site, with the overall column) for the chosen
population and characteristics, the headline demographics, what is new since the compared cut
per column, and the counted values the distributions are drawn from. The monitoring pack's
Table 1 is this view with the page's default choices (and no tests)."""

from dataclasses import dataclass, field

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.baseline import format_mean_sd, weighted_mean_sd
from dashboard.metrics.eligibility import rule_variables
from dashboard.metrics.table_one import (
    CHARACTERISTIC,
    DENOMINATOR_ROW,
    ORDINAL_MAX_RANGE,
    STATISTIC,
    SUBJECTS_KEY,
    Variable,
    as_ordinal,
    column_order,
    default_keys,
    is_ordinal,
    table_one,
)
from dashboard.queries import baseline, enrollment, screen_failures, studies
from dashboard.queries.changes import new_subjects_by_column
from dashboard.results.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
from dashboard.results.enrollment import PopulationCounts
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.format import percent
from dashboard.views.reader import Reader

POPULATION_LABELS = {
    "enrolled": "Enrolled",
    "treated": "Treated (first dose given)",
    "screened": "All screened (screen failures as their own column)",
}
BY_LABELS = {"arm": "Planned arm", "site": "Site"}
# A click lists a few hundred subjects at most; the total is counted and said.
SUBJECT_LIST_LIMIT = 500


@dataclass(frozen=True)
class TableOneOptions:
    """The page's choices; None: the default (which the view decides, so the pack's default
    Table 1 is the page's)."""

    population: str = "enrolled"
    by: str | None = None  # "arm" or "site"; by site for a viewer who sees no arms
    keys: tuple[str, ...] | None = None  # None: ``default_keys``; (): nothing chosen
    show_range: bool = False
    smd: bool | None = None  # None: shown between two or more arms
    p_values: bool = False
    nonnormal: tuple[str, ...] = ()
    with_tests: bool = True  # False: no SMD or p-value columns at all (the pack)


@dataclass(frozen=True)
class BaselineView:
    frame: StudyFrame
    counts: PopulationCounts
    metrics: tuple[Metric, ...]
    catalogue: pd.DataFrame  # key, label, unit, categorical, ...: what can be tabulated
    labels: dict[str, str]  # key -> "label (unit)"
    default_keys: tuple[str, ...]  # what Table 1 opens with (``table_one.default_keys``)
    by_options: tuple[str, ...]  # the column choices this viewer has
    options: TableOneOptions  # the choices resolved (defaults filled in)
    value_counts: pd.DataFrame  # subjects per (column, key, value): the distributions' input
    columns: tuple[str, ...]  # Table 1's group columns in order (before Overall)
    variables: tuple[Variable, ...]
    compared: bool  # two or more columns: SMDs and p-values can be offered
    smd_default: bool
    table: pd.DataFrame | None  # None: nothing chosen, or nobody in the population
    empty_message: str | None  # why there is no table
    caption: str  # one sentence under Table 1
    caption_rule: str  # behind its help icon: the statistics' definitions
    comparison_caption: str | None  # what SMDs against non-enrolled columns mean
    new_by_column: dict[str, int] | None  # subjects new since the compared cut per column
    new_caption: str | None
    # Table 1 led by a row of the new subjects per column (the pack's layout of the same table)
    table_with_new: pd.DataFrame = field(default_factory=pd.DataFrame)


def _table_with_new(
    table: pd.DataFrame, columns: tuple[str, ...], new: dict[str, int] | None, since: int | None
) -> pd.DataFrame:
    if new is None or since is None:
        return table
    # table_one's columns: characteristic, statistic, one per group in ``columns`` order, then
    # Overall where there are two groups or more.
    counts = [int(new.get(c, 0)) for c in columns]
    if len(columns) > 1:
        counts.append(sum(counts))
    headers = list(table.columns[2 : 2 + len(counts)])
    first = {
        CHARACTERISTIC: f"New since cut {since}",
        STATISTIC: "n",
        **{h: str(n) for h, n in zip(headers, counts, strict=True)},
    }
    return pd.concat([pd.DataFrame([first]), table], ignore_index=True).fillna("")


def build_baseline(
    session: Session, ctx: ViewContext, options: TableOneOptions | None = None
) -> BaselineView:
    read = Reader(session, ctx)
    frame = study_frame(read)
    since = frame.since_cut
    chosen = options or TableOneOptions()
    counts = read(enrollment.population_counts, period=None)
    demographics = read(baseline.demographic_counts)
    age_mean, age_sd = weighted_mean_sd(demographics["age"], demographics["subjects"])
    female = int(demographics.loc[demographics["sex"] == "F", "subjects"].sum())
    metrics = (
        Metric("Enrolled", counts.enrolled),
        Metric("Age, mean (SD)", format_mean_sd(age_mean, age_sd)),
        Metric("Female", f"{female} ({percent(female, counts.enrolled)})"),
    )
    catalogue = read(baseline.baseline_catalogue)
    labels = {
        str(row["key"]): str(row["label"])
        + (f" ({row['unit']})" if isinstance(row["unit"], str) else "")
        for row in catalogue.to_dict("records")
    }
    every_site = read(studies.sites, scope=None)
    viewer_sites = ctx.site_count(len(every_site))
    # A viewer who sees no arms gets no column by arm: columns by site, with the overall one.
    by_options: tuple[str, ...] = ("arm", "site") if viewer_sites > 1 else ("arm",)
    if not ctx.shows_arms:
        by_options = ("site",)
    by = chosen.by if chosen.by in by_options else by_options[0]
    rules = read(screen_failures.criteria_with_rules)["rule"]
    defaults = tuple(default_keys(catalogue, rule_variables(str(r) for r in rules)))
    keys = defaults if chosen.keys is None else chosen.keys
    keys = tuple(k for k in keys if k in labels)
    population = chosen.population

    def resolved(smd: bool) -> TableOneOptions:
        return TableOneOptions(
            population=population,
            by=by,
            keys=keys,
            show_range=chosen.show_range,
            smd=smd,
            p_values=chosen.p_values,
            nonnormal=chosen.nonnormal,
            with_tests=chosen.with_tests,
        )

    empty = pd.DataFrame(columns=[CHARACTERISTIC, STATISTIC])
    value_counts = (
        read(baseline.table_one_counts, population=population, by=by, keys=keys)
        if keys and counts.screened
        else pd.DataFrame(columns=["column", "key", "value", "value_num", "subjects"])
    )
    sizes = value_counts[value_counts["key"] == SUBJECTS_KEY]
    message = None
    if not keys:
        message = "Choose at least one characteristic to build the table."
    elif sizes["subjects"].sum() == 0:
        message = f"No {population} subjects in this selection: there is nothing to tabulate."
    if message is not None:
        return BaselineView(
            frame=frame,
            counts=counts,
            metrics=metrics,
            catalogue=catalogue,
            labels=labels,
            default_keys=defaults,
            by_options=by_options,
            options=resolved(False),
            value_counts=value_counts,
            columns=(),
            variables=(),
            compared=False,
            smd_default=False,
            table=None,
            empty_message=message,
            caption="",
            caption_rule="",
            comparison_caption=None,
            new_by_column=None,
            new_caption=None,
            table_with_new=empty,
        )
    columns = tuple(
        column_order(
            [str(c) for c in sizes["column"].unique()],
            last=(SCREEN_FAILURE_COLUMN, NOT_ALLOCATED_COLUMN),
        )
    )
    kinds = catalogue.set_index("key")
    # Grades and scores with few whole-number levels are tabulated as categories (n, %).
    ordinal = tuple(
        key
        for key in keys
        if not bool(kinds.loc[key, "categorical"])
        and is_ordinal(
            str(kinds.loc[key, "label"]),
            value_counts.loc[value_counts["key"] == key, "value_num"],
        )
    )
    value_counts = as_ordinal(value_counts, ordinal)
    variables = tuple(
        Variable(
            key=key,
            label=str(kinds.loc[key, "label"]),
            unit=unit if isinstance(unit := kinds.loc[key, "unit"], str) else None,
            categorical=bool(kinds.loc[key, "categorical"]) or key in ordinal,
        )
        for key in keys
    )
    # Tests need two or more columns. SMDs are shown by default between two or more arms;
    # p-values (the test named per row) only on request. A single-arm study's enrolled table has
    # one column: no tests. Its "all screened" table compares the arm with the screen failures:
    # the tests stay available there, off by default, said so.
    arm_columns = [c for c in columns if c not in (SCREEN_FAILURE_COLUMN, NOT_ALLOCATED_COLUMN)]
    compared = len(columns) > 1 and chosen.with_tests
    smd_default = by == "arm" and len(arm_columns) > 1
    smd = compared and (smd_default if chosen.smd is None else chosen.smd)
    p_values = compared and chosen.p_values
    table = table_one(
        value_counts,
        list(variables),
        columns=list(columns),
        nonnormal=list(chosen.nonnormal) if p_values else [],
        show_range=chosen.show_range,
        with_tests=compared,
        smd=smd,
        p_values=p_values,
    )
    not_enrolled = [c for c in columns if c not in arm_columns]
    comparison = None
    if compared and not_enrolled:
        several = len(not_enrolled) > 1
        comparison = (
            f"The {' and '.join(not_enrolled)} column{'s' if several else ''} "
            f"{'are' if several else 'is'} compared too: SMDs and p-values involving "
            f"{'them' if several else 'it'} describe how the subjects not enrolled "
            "differ from the enrolled, not a difference between arms."
        )
    caption = (
        "Measurements as mean (SD) and median [Q1, Q3]; categories, grades and scores as n (%)."
    )
    caption_rule = (
        "Quartiles are linear quantiles. Percentages are of the column's subjects with a value: "
        f'the n in the column\'s header, or the "{DENOMINATOR_ROW}" row where some values are '
        "missing (counted on their own row). A grade or score with at most "
        f"{ORDINAL_MAX_RANGE + 1} whole-number levels is counted per level. Baseline values are "
        "the records flagged baseline (or the last before first dose)."
        + (" SMD: standardized mean difference (tableone's definition)." if smd else "")
        + (" p-values below 0.001 are shown as <0.001." if p_values else "")
    )
    new = None
    new_caption = None
    if since is not None:
        found = read(new_subjects_by_column, since_cut_id=since.id, population=population, by=by)
        new = {str(c): int(n) for c, n in zip(found["column"], found["new_subjects"], strict=True)}
        new_caption = (
            f"New since cut {since.number} (first seen in a later data cut): "
            + ", ".join(f"{column} {new.get(column, 0)}" for column in columns)
            + f"; {sum(new.get(column, 0) for column in columns)} in all."
        )
    return BaselineView(
        frame=frame,
        counts=counts,
        metrics=metrics,
        catalogue=catalogue,
        labels=labels,
        default_keys=defaults,
        by_options=by_options,
        options=resolved(smd),
        value_counts=value_counts,
        columns=columns,
        variables=variables,
        compared=compared,
        smd_default=smd_default,
        table=table,
        empty_message=None,
        caption=caption,
        caption_rule=caption_rule,
        comparison_caption=comparison,
        new_by_column=new,
        new_caption=new_caption,
        table_with_new=_table_with_new(table, columns, new, since.number if since else None),
    )


def subjects_with_value(
    session: Session,
    ctx: ViewContext,
    *,
    population: str,
    by: str,
    key: str,
    column: str,
    value: str | None,
) -> tuple[pd.DataFrame, int]:
    """The distribution's drilldown: the subjects of one column with one value (at most
    ``SUBJECT_LIST_LIMIT``; how many in all)."""
    return Reader(session, ctx)(
        baseline.subjects_with_value,
        population=population,
        by=by,
        key=key,
        column=column,
        value=value,
        limit=SUBJECT_LIST_LIMIT,
    )
