"""Baseline: Table 1 by arm or site with the overall column, and the distributions behind it."""

import dataclasses

import streamlit as st

from dashboard.charts.baseline import (
    VALUE_SELECTION,
    box_chart,
    categorical_distribution_chart,
    histogram_chart,
)
from dashboard.markdown import plain
from dashboard.metrics.table_one import (
    CHARACTERISTIC,
    MISSING_LEVEL,
    STATISTIC,
    column_summaries,
    level_counts,
)
from dashboard.ui import views
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import chart_points
from dashboard.ui.shell import metric_row, no_subjects_message, page_context, page_header
from dashboard.views.baseline import BY_LABELS, POPULATION_LABELS, TableOneOptions
from dashboard.views.format import plural

TABLE_ROW_PX = 35  # st.dataframe's row (and header) height


def _chosen(by: str | None, smd: bool | None) -> TableOneOptions:
    """The page's choices as its widgets hold them (their defaults where not drawn yet)."""
    state = st.session_state
    return TableOneOptions(
        population=str(state.get("baseline_pop", "enrolled")),
        by=by,
        keys=tuple(state["baseline_keys"]) if "baseline_keys" in state else None,
        show_range=bool(state.get("baseline_range", False)),
        smd=smd,
        p_values=bool(state.get("baseline_p", False)),
        nonnormal=tuple(state.get("baseline_nonnormal", ())),
    )


ctx = page_context()
page_header("Baseline characteristics", ctx)
guess = st.session_state.get("baseline_by")
view = views.baseline_view(
    ctx.db_url, ctx.cut_id, ctx.view, _chosen(guess, st.session_state.get(f"baseline_smd_{guess}"))
)
metric_row(view.metrics)
if view.counts.screened == 0:
    no_subjects_message(ctx)
    st.stop()

labels = view.labels
left, middle, right = st.columns([2, 2, 3])
left.selectbox(
    "Population",
    list(POPULATION_LABELS),
    format_func=lambda p: POPULATION_LABELS[p],
    key="baseline_pop",
)
# A blinded user of a blinded study gets no column by arm (the view offers none).
if st.session_state.get("baseline_by") not in view.by_options:
    st.session_state.pop("baseline_by", None)  # kept from another study or account
by = str(
    middle.radio(
        "Columns",
        view.by_options,
        format_func=lambda b: BY_LABELS[b],
        horizontal=True,
        key="baseline_by",
    )
)
right.multiselect(
    "Characteristics",
    list(labels),
    default=list(view.default_keys),
    format_func=lambda k: labels.get(k, k),
    key="baseline_keys",
)
if by != view.options.by:
    view = views.baseline_view(ctx.db_url, ctx.cut_id, ctx.view, _chosen(by, None))
if view.table is None:
    st.info(view.empty_message or "Nothing to tabulate.")
    st.stop()

options = st.columns(3)
options[0].checkbox("Min and max", key="baseline_range")
show_smd = view.compared and options[1].checkbox(
    "Standardized mean differences",
    value=view.smd_default,
    key=f"baseline_smd_{by}",
    help="The SMD of each pair of columns (tableone's definition: continuous, the difference in "
    "means over the pooled SD; categorical, Yang and Dalton's multinomial SMD).",
)
show_p = view.compared and options[2].checkbox(
    "p-values (test named per row)",
    key="baseline_p",
    help="tableone's choices: Welch's t-test for two columns, one-way ANOVA for more, "
    "Kruskal-Wallis for a variable marked non-normal; chi-squared for categories, Fisher's exact "
    "for a 2 x 2 table with an expected count below 5.",
)
if show_p:
    st.multiselect(
        "Non-normal (tested with Kruskal-Wallis)",
        [v.key for v in view.variables if not v.categorical],
        format_func=lambda k: labels.get(k, k),
        key="baseline_nonnormal",
    )
chosen = _chosen(by, bool(show_smd))
if not show_p:
    chosen = dataclasses.replace(chosen, nonnormal=())
if chosen != dataclasses.replace(view.options, with_tests=True) or view.table is None:
    view = views.baseline_view(ctx.db_url, ctx.cut_id, ctx.view, chosen)
if view.comparison_caption:
    st.caption(view.comparison_caption)

table = view.table
assert table is not None  # chosen characteristics and subjects: checked above
st.subheader("Table 1")
# The frame shown is the frame exported: same headers, same cells.
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    height=min(TABLE_ROW_PX * (len(table) + 1) + 3, 900),  # every row, no blank ones
    column_config={
        # Pinned: with three arms, the total and the SMD the table scrolls sideways at 1024 px.
        CHARACTERISTIC: st.column_config.TextColumn(width="medium", pinned=True),
        STATISTIC: st.column_config.TextColumn(width="medium"),
    },
)
st.caption(view.caption, help=view.caption_rule)
if view.new_caption:
    st.caption(view.new_caption)
download_buttons(table, name=f"{ctx.study_id}-table1", sheet="Table 1")

population = view.options.population
value_counts = view.value_counts
columns = list(view.columns)
variables = view.variables
chosen_keys = list(view.options.keys or ())
st.subheader("Distribution")
shown = st.selectbox(
    "Characteristic", chosen_keys, format_func=lambda k: labels.get(k, k), key="baseline_shown"
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
        picked, total = views.subjects_with_value(
            ctx.db_url,
            ctx.cut_id,
            ctx.view,
            population,
            by,
            shown,
            column,
            None if level == MISSING_LEVEL else level,
        )
        shown_note = f" (the first {len(picked)} listed)" if total > len(picked) else ""
        # The characteristic, its level (a country, a race) and the column (an arm, a site): data.
        picked_what = plain(f"{variable.label} {level}, {column}")
        st.markdown(f"**{plural(total, 'subject')}: {picked_what}**{shown_note}")
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
