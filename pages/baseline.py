"""Baseline: Table 1 by arm or site with the overall column, and the distributions behind it."""

import streamlit as st

from dashboard.charts.baseline import (
    VALUE_SELECTION,
    categorical_distribution_chart,
    continuous_distribution_chart,
)
from dashboard.metrics.baseline import format_mean_sd, weighted_mean_sd
from dashboard.metrics.table_one import (
    MISSING_LEVEL,
    SUBJECTS_KEY,
    Variable,
    column_order,
    column_summaries,
    default_keys,
    level_counts,
    table_one,
)
from dashboard.queries.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
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
options = st.columns(3)
show_range = options[0].checkbox("Min and max", key="baseline_range")
with_tests = len(columns) > 1 and options[1].checkbox(
    "SMD and p-values",
    key="baseline_tests",
    help="Standardized mean differences for each pair "
    "of columns; p-values with the test named on each row (tableone's choices).",
)
nonnormal = (
    options[2].multiselect(
        "Non-normal (Kruskal-Wallis)",
        [v.key for v in variables if not v.categorical],
        format_func=lambda k: labels.get(k, k),
        key="baseline_nonnormal",
    )
    if with_tests
    else []
)

table = table_one(
    value_counts,
    variables,
    columns=columns,
    nonnormal=nonnormal,
    show_range=show_range,
    with_tests=with_tests,
)
st.subheader("Table 1")
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=min(38 * (len(table) + 1), 900),
    column_config={
        "characteristic": st.column_config.TextColumn("Characteristic", width="medium"),
        "statistic": st.column_config.TextColumn("Statistic", width="medium"),
    },
)
st.caption(
    "Continuous: mean (SD) and median [Q1, Q3] (linear quantiles); categorical: n (%) of the "
    "column's subjects with a value, missing values counted on their own row. Baseline values are "
    "the records flagged baseline (or the last before first dose)."
    + (" SMD: standardized mean difference (tableone's definition)." if with_tests else "")
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
    st.altair_chart(
        continuous_distribution_chart(
            column_summaries(value_counts, key=shown, columns=columns),
            found[["column", "value_num", "subjects"]],
            label=labels.get(shown, shown),
        ),
        width="stretch",
    )
