"""Adverse events: the summary by arm, the SAE listing, incidence by SOC and PT, subjects by their
worst severity / grade, seriousness and relationship, and AE timelines; a click on a cell or a bar
lists the events behind it."""

import hashlib

import streamlit as st

from dashboard.charts.adverse_events import (
    LEVEL_SELECTION,
    SOC_SELECTION,
    soc_incidence_chart,
    timeline_chart,
    worst_level_chart,
)
from dashboard.metrics.ae_rules import SOURCE_VARIABLES, WORST_DIMENSIONS
from dashboard.metrics.ae_tables import soc_incidence, soc_label
from dashboard.metrics.ae_timeline import EARLIEST_TIMELINE_DAY, timeline_frame
from dashboard.results.adverse_events import UNCODED_SOC
from dashboard.ui import review, views
from dashboard.ui.ae_drilldown import (
    LISTING_COLUMNS,
    STUDY_DAY_NOTE,
    SUBJECT_HEADER,
    chart_point,
    pick_events,
    resolve_pick,
    show_events,
    soc_expander_key,
    table_cell,
)
from dashboard.ui.ae_picks import (
    EventPick,
    incidence_cell_pick,
    level_cell_pick,
    level_point_pick,
    soc_point_pick,
    source_value_pick,
    summary_cell_pick,
)
from dashboard.ui.downloads import download_buttons
from dashboard.ui.links import subject_links
from dashboard.ui.selection import bring_into_view
from dashboard.ui.shell import (
    domain_missing,
    metric_row,
    no_subjects_message,
    page_context,
    page_header,
)
from dashboard.ui.tables import dashed
from dashboard.views import adverse_events
from dashboard.views.format import plural, verb

EVENTS_KEY = "ae_events_behind"  # the listing of the events behind a pick, scrolled to
HIGHLIGHT_ROWS = 200  # listings longer than this are not colour-highlighted (see below)
TIMELINE_SUBJECTS = 10  # the timeline draws at most this many subjects (a cell can hold hundreds)

ctx = page_context()
page_header("Adverse events", ctx)
who = review.review_as(ctx)


def _view(
    treatment_emergent: bool, dimension: str, threshold: float
) -> adverse_events.AdverseEventsView:
    options = adverse_events.AdverseEventsOptions(
        treatment_emergent=treatment_emergent, dimension=dimension, threshold=threshold
    )
    return views.adverse_events_view(ctx.db_url, ctx.cut_id, ctx.view, options)


# The page's choices as its widgets hold them; the view is built again only where a widget
# drawn below disagrees with them (it never does after the first run).
state = st.session_state
view = _view(
    bool(state.get("ae_treatment_emergent", False)),
    str(state.get("ae_dimension", "severity")),
    float(state.get("ae_threshold", 0.0)),
)
population = view.population
treatment_emergent = False
if population.tells_emergent:
    treatment_emergent = st.toggle(
        "Treatment-emergent AEs only",
        key="ae_treatment_emergent",
        help=f"Rule: {population.emergent_rule}. "
        + (
            "The sponsor's flag is used where the AE carries it. "
            if population.emergent_flagged
            else ""
        )
        + "Derived: onset on or after the subject's first dose; an unknown or partial onset date "
        "that cannot be placed before the first dose counts as treatment-emergent.",
    )
if treatment_emergent != view.options.treatment_emergent:
    view = _view(treatment_emergent, view.options.dimension, view.options.threshold)
population = view.population
ae = view.headline
compare = view.since_cut_id  # "new since" this earlier cut (None: one cut only)
metric_row(view.metrics)

if not view.anyone:
    no_subjects_message(ctx)
    st.stop()
if domain_missing(ctx, "AE", "adverse events are unknown, not zero"):
    st.stop()
if ae.events == 0:
    st.info(
        "No treatment-emergent adverse events in this selection: switch the filter off to see "
        "every AE."
        if treatment_emergent
        else "No adverse events in the data for this selection."
    )
    st.stop()

st.caption(view.population_note, help=view.counting_note)
if view.blinding_note:
    st.caption(view.blinding_note)
summary = view.summary
if view.outside_sentence:
    st.info(view.outside_sentence)

# -- 1. summary ---------------------------------------------------------------------------------
st.subheader("Summary by arm")
table = view.summary_table
summary_event = st.dataframe(
    table.drop(columns="category"),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-cell",
    key=f"ae_summary_{treatment_emergent}",
    column_config={"Category": st.column_config.Column(pinned=True)},  # in view when scrolled
)
st.caption(
    "Subjects n (%) with at least one such AE, and [events]; click a cell to list the events.",
    help=view.definitions,
)
summary_slot = st.container()
slots = {"summary": summary_slot}  # where each control's drilldown listing is drawn

# -- 2. serious adverse events ------------------------------------------------------------------
st.subheader("Serious adverse events")
# New SAEs first (the monitoring meeting reads them first).
saes, sae_total = view.sae_events, view.sae_total
if saes.empty:
    st.success("No serious adverse event (AESER = Y) in this selection.")
else:
    sae_table = view.saes
    new = int(saes["new"].sum())
    # Each SAE's review state for the chosen role, a tick box to mark it (dashboard/ui/review.py).
    found = review.states(ctx, who.role, "ae", keys=saes["natural_key"].tolist())
    listed = review.with_review(sae_table.assign(natural_key=saes["natural_key"].to_numpy()), found)
    counts = review.sae_counts(ctx, who.role)
    unreviewed = f"{counts.needs_review:,} unreviewed" + (
        f" ({counts.changed:,} changed since review)" if counts.changed else ""
    )
    since_number = view.frame.since_cut.number if view.frame.since_cut else None
    st.markdown(
        f"**{plural(new, 'SAE')} new since cut {since_number}, {unreviewed}**"
        if compare is not None
        else f"**{counts.sentence('SAEs')}**",
        help=f"Unreviewed: every serious AE in view not reviewed by the {who.name.lower()} in "
        "the version it has now (never reviewed, the mark withdrawn, or changed by a later cut).",
    )
    # Row colours through a pandas Styler cost about a second per thousand rows at every rerun:
    # highlight only a listing short enough to read row by row; a long one keeps its "New" column.
    shown_saes, links = subject_links(
        listed, study_id=ctx.study_id, column="USUBJID", label=SUBJECT_HEADER
    )
    review.review_table(
        ctx,
        who,
        shown_saes,
        entity="ae",
        name="saes",
        column_config={**LISTING_COLUMNS, **links},
        style=lambda frame: dashed(  # an ongoing AE's end date: a dash, not "None"
            frame.style.apply(
                lambda row: ["background-color: #fff3b0" if row.get("New") else ""] * len(row),
                axis=1,
            )
            if len(frame) <= HIGHLIGHT_ROWS
            else frame
        ),
    )
    since = (
        f"{new} new since cut {since_number}, listed first (column New"
        + (", highlighted)." if len(sae_table) <= HIGHLIGHT_ROWS else ").")
        if compare is not None
        else "one data cut only, nothing to mark as new."
    )
    in_subjects = plural(saes["usubjid"].nunique(), "subject")
    shown = (
        f"The first {len(saes)} of {sae_total} serious AEs, new ones first, in {in_subjects} "
        "(all are in the SAEs sheet of the monitoring pack, on the Overview)"
        if sae_total > len(saes)
        else f"{sae_total} serious {'AE' if sae_total == 1 else 'AEs'} in {in_subjects}"
    )
    st.caption(f"{shown}, every subject in scope; {since}", help=STUDY_DAY_NOTE)
    download_buttons(sae_table, name=f"{ctx.study_id}-serious-adverse-events", sheet="SAE")

# -- 3. per subject: worst severity / grade, seriousness, relationship --------------------------
st.subheader("Subjects by severity, seriousness and relationship")
if state.get("ae_dimension") not in view.dimensions:
    state.pop("ae_dimension", None)  # kept from a study with graded AEs
dimension = st.radio(
    "Per subject",
    view.dimensions,
    format_func=lambda d: WORST_DIMENSIONS[d],
    horizontal=True,
    key="ae_dimension",
)
if dimension != view.options.dimension:
    view = _view(treatment_emergent, dimension, view.options.threshold)
levels = view.worst_levels
level_event = st.altair_chart(
    worst_level_chart(levels, dimension=dimension),
    width="stretch",
    on_select="rerun",
    selection_mode=[LEVEL_SELECTION],
    key=f"ae_level_chart_{dimension}_{treatment_emergent}",
)
level_table = view.worst_table
level_table_event = st.dataframe(
    level_table,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-cell",
    key=f"ae_level_table_{dimension}_{treatment_emergent}",
)
st.caption(
    "Each subject counts once, at the highest level among their AEs; click a segment or a cell "
    "for the events at that level of those subjects.",
    help="“No AE” completes the arm. Unknown: no AE of the subject has a value the rules know.",
)
variable = SOURCE_VARIABLES[dimension]
value_table = view.source_values
with st.expander(f"{variable} values as given, and the level each counts as"):
    value_event = st.dataframe(
        value_table.drop(columns="value"),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-cell",
        key=f"ae_values_{dimension}_{treatment_emergent}",
    )
    st.caption(
        f"Events and subjects (all arms) per value of {variable} as the data give it; click a "
        "cell for the events with that value."
    )
slots["worst"] = st.container()

# -- 4. incidence by SOC and PT -----------------------------------------------------------------
st.subheader("Incidence by system organ class and preferred term")
threshold = st.columns([1, 2])[0].number_input(
    "Preferred terms in at least this % of some arm",
    min_value=0.0,
    max_value=100.0,
    value=0.0,
    step=1.0,
    key="ae_threshold",
)
if threshold != view.options.threshold:
    view = _view(treatment_emergent, dimension, threshold)
terms = view.terms
if summary.uncoded_events:
    st.warning(
        f"AEDECOD is blank for {summary.uncoded_events} of the {ae.events} AEs: they are grouped "
        "by the verbatim term (AETERM)"
        + (
            f", and without AEBODSYS under “{UNCODED_SOC}”."
            if UNCODED_SOC in set(terms["soc"])
            else "."
        )
    )
term_controls: dict[str, EventPick | None] = {}
if terms.empty:
    st.info(f"No preferred term reaches {threshold:g}% of any arm: lower the threshold.")
    soc_event = None
else:
    soc_event = st.altair_chart(
        soc_incidence_chart(soc_incidence(terms, population.by_arm)),
        width="stretch",
        on_select="rerun",
        selection_mode=[SOC_SELECTION],
        key=f"ae_soc_chart_{treatment_emergent}_{threshold}",
    )
    st.caption(
        "Share of each arm's subjects with at least one AE in the class; click a dot or a cell "
        "for its events.",
        help="Below, each class opens to its preferred terms, most frequent first (a class keeps "
        "its figures over all its terms when the threshold hides some).",
    )
    slots["soc"] = st.container()
    # Formatted once for every class (a class at a time costs as much again per class).
    shown_terms = view.terms_shown
    for position, (name, group) in enumerate(terms.groupby("soc", sort=False)):
        soc = str(name)
        rows = group.reset_index(drop=True)
        digest = hashlib.sha1(soc.encode()).hexdigest()[:10]
        # A class's table is drawn only while it is open (opening it reruns the page from the
        # cache): a large study has two dozen classes and hundreds of terms.
        soc_box = st.expander(
            soc_label(rows, population.by_arm),
            expanded=position == 0,
            key=soc_expander_key(soc),
            on_change="rerun",
        )
        with soc_box:
            if soc_box.open:
                event = st.dataframe(
                    shown_terms.loc[group.index].reset_index(drop=True),
                    hide_index=True,
                    width="stretch",
                    on_select="rerun",
                    selection_mode="single-cell",
                    key=f"ae_terms_{digest}_{treatment_emergent}_{threshold}",
                )
                term_controls[f"terms:{soc}"] = incidence_cell_pick(
                    table_cell(event), rows, population.by_arm
                )
                slots[f"terms:{soc}"] = st.container()

# -- the drilldown: whichever control changed last ----------------------------------------------
controls: dict[str, EventPick | None] = {
    "summary": summary_cell_pick(table_cell(summary_event), table, population.by_arm),
    "soc": soc_point_pick(chart_point(soc_event, SOC_SELECTION)),
    **term_controls,
    "worst": level_point_pick(
        chart_point(level_event, LEVEL_SELECTION), population.by_arm, dimension
    ),
    "worst_table": level_cell_pick(
        table_cell(level_table_event), level_table, population.by_arm, dimension
    ),
    "values": source_value_pick(table_cell(value_event), value_table, dimension),
}
pick = resolve_pick(ctx.study_id, controls)
if pick is not None:
    source = pick.source if pick.source != "terms" else f"terms:{pick.soc}"
    # Scrolled to when picked: a cell clicked low on the screen opens its listing below the fold.
    with slots.get(source, summary_slot), st.container(key=EVENTS_KEY):
        show_events(
            ctx,
            pick,
            treatment_emergent=treatment_emergent,
            discontinuation_from_ds=summary.discontinuation_from_ds,
        )
        bring_into_view(EVENTS_KEY, pick)
else:
    bring_into_view(EVENTS_KEY, None)

# -- 5. timelines -------------------------------------------------------------------------------
st.subheader("Timelines")
with_events = views.subjects_with_events(ctx.db_url, ctx.cut_id, ctx.view)
usubjids: tuple[str, ...] = ()
behind_subjects = 0
mode = "one subject"
has_events = pick is not None and pick.rank != -1
if pick is not None and pick.category == "discontinuation" and summary.discontinuation_from_ds:
    has_events = False  # subjects counted from DS: no events behind the figure
if has_events:
    mode = st.radio(
        "Timeline of",
        ["the subjects behind the selection", "one subject"],
        horizontal=True,
        key="ae_timeline_mode",
    )
if mode == "one subject":
    choice = st.selectbox(
        "Subject",
        with_events["usubjid"].tolist(),
        key=f"ae_timeline_subject_{ctx.study_id}",
        index=None,
        placeholder="Choose a subject",
        help="Subjects with an AE in scope, those with a serious one first, then by code.",
    )
    if len(with_events) >= adverse_events.TIMELINE_CHOICES:
        st.caption(
            f"The first {adverse_events.TIMELINE_CHOICES:,} subjects with an AE are offered (those "
            "with a serious AE first); any subject's AEs are on their Subject page."
        )
    usubjids = (choice,) if choice else ()
elif pick is not None:
    behind, _ = pick_events(ctx, pick, treatment_emergent=treatment_emergent)
    behind_subjects = behind["usubjid"].nunique()
    usubjids = tuple(behind["usubjid"].drop_duplicates()[:TIMELINE_SUBJECTS])
if usubjids:
    history, _ = views.events(
        ctx.db_url, ctx.cut_id, ctx.view, False, in_population=False, usubjids=usubjids
    )
    cutoff = ctx.latest_cut.cutoff_date if ctx.latest_cut else None
    frame, left_out = timeline_frame(history, cutoff=cutoff)
    if frame.empty:
        st.info("No AE of these subjects can be placed in time (no onset date or no first dose).")
    else:
        st.altair_chart(timeline_chart(frame), width="stretch")
        notes = [
            "Every AE of the chosen subjects, by study day from the first dose (day 1; the day before is "
            "day -1). An AE without an end date is ongoing: its bar runs to the subject's last "
            "disposition record, else to the cut-off. Faded: onset before the first dose (not "
            "treatment-emergent). Partial dates are placed on the first day of their period."
        ]
        if behind_subjects > len(usubjids):
            notes.append(
                f"The first {len(usubjids)} of the {behind_subjects} subjects behind the "
                "selection are drawn; pick one subject to see any other."
            )
        if frame["cut"].any():
            notes.append(
                f"{plural(int(frame['cut'].sum()), 'AE')} began more than {-EARLIEST_TIMELINE_DAY} days "
                "before the first dose: their bars start at the left edge (the tooltip gives the "
                "onset)."
            )
        if left_out:
            notes.append(
                f"{plural(left_out, 'AE')} without an onset date or a first dose "
                f"{verb(left_out, 'is', 'are')} not drawn."
            )
        st.caption(" ".join(notes))
