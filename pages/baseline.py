"""Baseline: Table 1 by arm or site with the overall column, and the distributions behind it."""

import streamlit as st

from dashboard.charts.baseline import (
    VALUE_SELECTION,
    box_chart,
    categorical_distribution_chart,
    histogram_chart,
)
from dashboard.metrics.baseline import format_mean_sd, weighted_mean_sd
from dashboard.metrics.table_one import (
    CHARACTERISTIC,
    DENOMINATOR_ROW,
    MISSING_LEVEL,
    STATISTIC,
    SUBJECTS_KEY,
    Variable,
    column_order,
    column_summaries,
    default_keys,
    level_counts,
    table_one,
)
from dashboard.results.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
from dashboard.ui import loaders
from dashboard.ui.downloads import download_buttons
from dashboard.ui.format import percent
from dashboard.ui.links import subject_links
from dashboard.ui.selection import chart_points
from dashboard.ui.shell import no_subjects_message, page_context, page_header

POPULATION_LABELS = {
    "enrolled": "Enrolled",
    "treated": "Treated (first dose given)",
    "screened": "All screened (screen failures as their own column)",
}

TABLE_ROW_PX = 35  # st.dataframe's row (and header) height

ctx = page_context()
page_header("Baseline characteristics", ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
demographics = loaders.load_demographics(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
age_mean, age_sd = weighted_mean_sd(demographics["age"], demographics["subjects"])
female = int(demographics.loc[demographics["sex"] == "F", "subjects"].sum())

enrolled, age, women = st.columns(3)
enrolled.metric("Enrolled", counts.enrolled)
age.metric("Age, mean (SD)", format_mean_sd(age_mean, age_sd))
women.metric("Female", f"{female} ({percent(female, counts.enrolled)})")

if counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()

catalogue = loaders.load_baseline_catalogue(ctx.db_url, ctx.study_id, ctx.cut_id)
labels = {
    row["key"]: row["label"] + (f" ({row['unit']})" if isinstance(row["unit"], str) else "")
    for row in catalogue.to_dict("records")
}
left, middle, right = st.columns([2, 2, 3])
population = str(
    left.selectbox(
        "Population",
        list(POPULATION_LABELS),
        format_func=lambda p: POPULATION_LABELS[p],
        key="baseline_pop",
    )
)
# A blinded user of a blinded study gets no column by arm: columns by site, with the overall one.
by_options = ["arm", "site"] if ctx.site_count > 1 else ["arm"]
if not ctx.shows_arms:
    by_options = ["site"]
if st.session_state.get("baseline_by") not in by_options:
    st.session_state.pop("baseline_by", None)  # kept from another study or account
by = str(
    middle.radio(
        "Columns",
        by_options,
        format_func=lambda b: {"arm": "Planned arm", "site": "Site"}[b],
        horizontal=True,
        key="baseline_by",
    )
)
chosen = right.multiselect(
    "Characteristics",
    list(labels),
    default=default_keys(catalogue),
    format_func=lambda k: labels.get(k, k),
    key="baseline_keys",
)
if not chosen:
    st.info("Choose at least one characteristic to build the table.")
    st.stop()

value_counts = loaders.load_table_one_counts(
    ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, population, by, tuple(chosen)
)
sizes = value_counts[value_counts["key"] == SUBJECTS_KEY]
if sizes["subjects"].sum() == 0:
    st.info(f"No {population} subjects in this selection: there is nothing to tabulate.")
    st.stop()
columns = column_order(
    list(sizes["column"].unique()), last=(SCREEN_FAILURE_COLUMN, NOT_ALLOCATED_COLUMN)
)
kinds = catalogue.set_index("key")
variables = [
    Variable(
        key=key,
        label=str(kinds.loc[key, "label"]),
        unit=kinds.loc[key, "unit"] if isinstance(kinds.loc[key, "unit"], str) else None,
        categorical=bool(kinds.loc[key, "categorical"]),
    )
    for key in chosen
]
# Tests need two or more columns. SMDs are shown by default between two or more arms; p-values
# (the test named per row) only on request. A single-arm study's enrolled table has one column: no
# tests and no checkbox. Its "all screened" table compares the arm with the screen failures: the
# tests stay available there (who is turned away is worth comparing), off by default, said so.
arm_columns = [c for c in columns if c not in (SCREEN_FAILURE_COLUMN, NOT_ALLOCATED_COLUMN)]
compared = len(columns) > 1
options = st.columns(3)
show_range = options[0].checkbox("Min and max", key="baseline_range")
show_smd = compared and options[1].checkbox(
    "Standardized mean differences",
    value=by == "arm" and len(arm_columns) > 1,
    key=f"baseline_smd_{by}",
    help="The SMD of each pair of columns (tableone's definition: continuous, the difference in "
    "means over the pooled SD; categorical, Yang and Dalton's multinomial SMD).",
)
show_p = compared and options[2].checkbox(
    "p-values (test named per row)",
    key="baseline_p",
    help="tableone's choices: Welch's t-test for two columns, one-way ANOVA for more, "
    "Kruskal-Wallis for a variable marked non-normal; chi-squared for categories, Fisher's exact "
    "for a 2 x 2 table with an expected count below 5.",
)
nonnormal = (
    st.multiselect(
        "Non-normal (tested with Kruskal-Wallis)",
        [v.key for v in variables if not v.categorical],
        format_func=lambda k: labels.get(k, k),
        key="baseline_nonnormal",
    )
    if show_p
    else []
)
not_enrolled = [c for c in columns if c not in arm_columns]
if compared and not_enrolled:
    st.caption(
        f"The {' and '.join(not_enrolled)} column{'s' if len(not_enrolled) > 1 else ''} "
        f"{'are' if len(not_enrolled) > 1 else 'is'} compared too: SMDs and p-values involving "
        f"{'them' if len(not_enrolled) > 1 else 'it'} describe how the subjects not enrolled "
        "differ from the enrolled, not a difference between arms."
    )

table = table_one(
    value_counts,
    variables,
    columns=columns,
    nonnormal=nonnormal,
    show_range=show_range,
    with_tests=compared,
    smd=show_smd,
    p_values=show_p,
)
st.subheader("Table 1")
# The frame shown is the frame exported: same headers, same cells.
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=min(TABLE_ROW_PX * (len(table) + 1) + 3, 900),  # every row, no blank ones
    column_config={
        CHARACTERISTIC: st.column_config.TextColumn(width="medium"),
        STATISTIC: st.column_config.TextColumn(width="medium"),
    },
)
st.caption(
    "Continuous: mean (SD) and median [Q1, Q3] (linear quantiles); categorical: n (%) of the "
    "column's subjects with a value: the n in the column's header, or the "
    f'"{DENOMINATOR_ROW}" row where some values are missing (counted on their own row). '
    "Baseline values are the records flagged baseline (or the last before first dose)."
    + (" SMD: standardized mean difference (tableone's definition)." if show_smd else "")
    + (" p-values below 0.001 are shown as <0.001." if show_p else "")
)
if ctx.compare_cut_id is not None:
    new = loaders.load_new_by_column(
        ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, ctx.compare_cut_id, population, by
    )
    new_in = dict(zip(new["column"], new["new_subjects"], strict=True))
    st.caption(
        f"New since cut {ctx.compare_cut_id} (first seen in a later data cut): "
        + ", ".join(f"{column} {new_in.get(column, 0)}" for column in columns)
        + f"; {sum(new_in.get(column, 0) for column in columns)} in all."
    )
download_buttons(table, name=f"{ctx.study_id}-table1", sheet="Table 1")

st.subheader("Distribution")
shown = st.selectbox(
    "Characteristic", chosen, format_func=lambda k: labels.get(k, k), key="baseline_shown"
)
variable = next(v for v in variables if v.key == shown)
if variable.categorical:
    event = st.altair_chart(
        categorical_distribution_chart(
            level_counts(value_counts, key=shown, columns=columns), label=variable.label
        ),
        width="stretch",
        on_select="rerun",
        selection_mode=[VALUE_SELECTION],
        key="baseline_distribution",
    )
    points = chart_points(event, VALUE_SELECTION)
    if points:
        column, level = str(points[0].get("column")), str(points[0].get("value"))
        picked, total = loaders.load_subjects_with_value(
            ctx.db_url,
            ctx.study_id,
            ctx.cut_id,
            ctx.scope,
            population,
            by,
            shown,
            column,
            None if level == MISSING_LEVEL else level,
        )
        shown_note = f" (the first {len(picked)} listed)" if total > len(picked) else ""
        st.markdown(f"**{total} subject(s): {variable.label} {level}, {column}**{shown_note}")
        shown_subjects, links = subject_links(picked, study_id=ctx.study_id)
        st.dataframe(shown_subjects, hide_index=True, column_config=links)
    else:
        st.caption("Click a bar segment to list its subjects.")
else:
    found = value_counts[(value_counts["key"] == shown) & value_counts["value_num"].notna()]
    boxes = column_summaries(value_counts, key=shown, columns=columns)
    label = labels.get(shown, shown)
    # Two charts, each as wide as the page (a concatenated chart cannot stretch to it).
    st.altair_chart(box_chart(boxes, label=label), width="stretch")
    histogram = histogram_chart(boxes, found[["column", "value_num", "subjects"]], label=label)
    if histogram is not None:
        st.altair_chart(histogram, width="stretch")
