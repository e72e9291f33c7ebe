"""Overview: the study's identity, headline numbers and what changed since the previous cut."""

import streamlit as st

from dashboard.metrics.enrollment import target_in_scope
from dashboard.report.pack import changes_sentence
from dashboard.ui import loaders
from dashboard.ui.format import count_of, percent
from dashboard.ui.report import pack_downloads
from dashboard.ui.shell import no_subjects_message, page_context, page_header

ctx = page_context()
study = ctx.study
page_header(study.title or study.study_id, ctx)

counts = loaders.load_population(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
ae, _ = loaders.load_adverse_events(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope)
changes = (
    loaders.load_changes_since(ctx.db_url, ctx.study_id, ctx.cut_id, ctx.scope, ctx.compare_cut_id)
    if ctx.compare_cut_id is not None
    else None
)
# The page leads with what changed since the compared cut (the monitoring meeting's question).
if changes is not None and ctx.compare_cut is not None:
    st.info(changes_sentence(changes, ctx.compare_cut), icon=":material/update:")


def _new(n: int | None) -> str:
    """ "+3 new · " before a metric's delta (nothing without a cut to compare with)."""
    return f"+{n} new · " if n is not None else ""


new_failures = _new(changes.new_screen_failures if changes else None)
new_enrolled = _new(changes.new_enrolled if changes else None)


screened, failures, enrolled, adverse = st.columns(4)
screened.metric(
    "Screened",
    counts.screened,
    delta=f"+{changes.new_subjects} new" if changes and changes.new_subjects else None,
    delta_color="off",
    delta_arrow="off",
)
failures.metric(
    "Screen failures",
    counts.screen_failures,
    delta=f"{new_failures}{percent(counts.screen_failures, counts.screened)} of screened",
    delta_color="off",
    delta_arrow="off",
)
if ctx.restricted:  # the study's target is not a site's: compared below, study-wide
    enrolled.metric(
        "Enrolled at your sites",
        counts.enrolled,
        delta=new_enrolled.removesuffix(" · ") or None,
        delta_color="off",
        delta_arrow="off",
    )
else:
    # A site filter compares with those sites' own targets (none where a site has none).
    in_view = target_in_scope(
        study.planned_enrollment,
        loaders.load_sites(ctx.db_url, ctx.study_id, ctx.cut_id),
        ctx.scope,
    )
    enrolled.metric(
        "Enrolled / target",
        count_of(counts.enrolled, in_view),
        delta=f"{new_enrolled}{percent(counts.enrolled, in_view or 0)} of target"
        if in_view
        else new_enrolled.removesuffix(" · ") or None,
        delta_color="off",
        delta_arrow="off",
    )
adverse.metric(
    "Subjects with an AE",
    ae.subjects,
    delta=f"{ae.events} events"
    + (f" (+{changes.new_adverse_events} new)" if changes else "")
    + f" · {ae.serious_subjects} with an SAE",
    delta_color="off",
    delta_arrow="off",
)

if ctx.restricted:
    # A site user may know how the whole study is doing, but only as totals: no site's figures.
    wide = loaders.load_study_wide_counts(ctx.db_url, ctx.study_id, ctx.cut_id)
    target = f" (target {study.planned_enrollment})" if study.planned_enrollment else ""
    st.info(
        f"**Study-wide, all {ctx.study_site_count} sites (aggregate only):** {wide.enrolled} "
        f"enrolled{target}, {wide.screened} screened. Every other figure in the app counts your "
        f"sites only ({', '.join(ctx.allowed or ())}).",
        icon=":material/public:",
    )

study_column, changes_column = st.columns([3, 2])
with study_column:
    st.subheader("Study")
    identity = {
        "Registry id": study.registry_id or "–",
        "Sponsor": study.sponsor or "–",
        "Registry status": (study.status or "–").replace("_", " ").capitalize(),
        "Design": study.design or "–",
        "Condition": study.condition or "–",
        "Intervention": study.intervention or "–",
        "Target enrollment": str(study.planned_enrollment or "–"),
        "Ages": f"{study.min_age:g} to {study.max_age:g} years"
        if study.min_age is not None and study.max_age is not None
        else "–",
        "Sites": str(ctx.study_site_count)
        + (f" (you see {ctx.site_count})" if ctx.restricted else ""),
    }
    st.markdown("  \n".join(f"**{k}:** {v}" for k, v in identity.items()))
    if study.planned_start and study.planned_end:
        assumed = (
            " (assumed for the demo: the registry gives no dates)" if study.is_synthetic else ""
        )
        st.caption(
            f"Planned recruitment {study.planned_start:%b %Y} to {study.planned_end:%b %Y}{assumed}"
        )
with changes_column:
    if counts.screened == 0:
        no_subjects_message(ctx)
    elif changes is not None and ctx.compare_cut is not None:
        st.subheader(f"Since cut {ctx.compare_cut.id}")
        st.dataframe(
            {
                "What": [
                    "New subjects screened",
                    "of whom screen failures",
                    "of whom enrolled",
                    "Earlier subjects with changes",
                    "New adverse events",
                    "New serious adverse events",
                    "Earlier adverse events with changes",
                ],
                "Count": [
                    changes.new_subjects,
                    changes.new_screen_failures,
                    changes.new_enrolled,
                    changes.changed_subjects,
                    changes.new_adverse_events,
                    changes.new_serious_adverse_events,
                    changes.changed_adverse_events,
                ],
            },
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("Only one data cut is loaded: nothing to compare with yet.")

with changes_column:
    st.subheader("Monitoring-meeting pack")
    st.caption(
        "Everything above and on the other pages in one PDF and one workbook, for the sites in "
        "view, new rows marked against the “compare with” cut."
    )
    pack_downloads(ctx)
