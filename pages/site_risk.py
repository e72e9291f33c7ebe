"""Site risk: key risk indicators per site scored as gsm does, the site x KRI flags, a funnel plot
per KRI with a drilldown to a site, what is newly flagged, and the quality tolerance limits."""

from collections.abc import Hashable
from typing import cast

import pandas as pd
import streamlit as st

from dashboard.charts.site_risk import SITE_SELECTION, flag_label, funnel_chart, qtl_chart
from dashboard.markdown import plain
from dashboard.metrics.kri import Method
from dashboard.ui import views
from dashboard.ui.links import subject_links
from dashboard.ui.quality import excursion_form, may_evaluate
from dashboard.ui.selection import bring_into_view, chart_points, widget_key
from dashboard.ui.shell import metric_row, no_subjects_message, page_context, page_header
from dashboard.ui.site_risk import excursion_table, flag_styler
from dashboard.views.site_risk import SiteRiskOptions, SiteRiskView, recruitment_sentence

METHOD_KEY = "site_risk_method"
KRI_KEY = "site_risk_kri"
SITE_KEY = "site_risk_site"
CHART_KEY = "site_risk_funnel"
SITE_DETAIL_KEY = "site_risk_detail"  # the picked site's rows and subjects, scrolled to
METHODS = {
    "gsm": "gsm (normal approximation, over-dispersion adjusted)",
    "robust": "Robust (over-dispersion from winsorised scores: one outlier cannot hide itself)",
    "exact": "Exact (Poisson / binomial tail)",
}


def scoring_table(view: SiteRiskView) -> pd.DataFrame:
    """How each computed KRI is scored: what it counts, over what, its thresholds and minimums."""
    rows = []
    for kri in view.computed:
        scoring = view.options.scoring(kri)
        rows.append(
            {
                "KRI": kri.abbreviation,
                "Name": kri.name,
                "Numerator": kri.numerator,
                "Denominator": kri.denominator,
                "Metric": kri.per,
                "Method": scoring.method,
                "Thresholds (score)": ", ".join(f"{t:+g}" for t in scoring.thresholds),
                "Minimum denominator": scoring.min_denominator,
                "Minimum numerator": scoring.min_numerator,
            }
        )
    return pd.DataFrame(rows)


def site_rows(view: SiteRiskView, site_id: str) -> pd.DataFrame:
    """One site's KRI rows as the drilldown lists them (the metric on its display scale)."""
    scale = {k.id: k.scale for k in view.computed}
    per = {k.id: k.per for k in view.computed}
    rows = view.scores[view.scores["site_id"] == site_id]
    return pd.DataFrame(
        {
            "KRI": rows["name"],
            "Numerator": rows["numerator"],
            "Denominator": rows["denominator"],
            "Metric": rows["metric"] * rows["kri"].map(scale),
            "Unit": rows["kri"].map(per),
            "Score": rows["score"],
            "Flag": [flag_label(f) for f in rows["flag"]],
        }
    ).reset_index(drop=True)


def country_table(countries: pd.DataFrame, view: SiteRiskView) -> pd.DataFrame:
    table = countries.pivot(index="country", columns="abbreviation", values="flag")
    table = table.reindex(columns=[k.abbreviation for k in view.computed])
    return table.reset_index().rename(columns={"country": "Country"})


ctx = page_context()
page_header("Site risk", ctx)
method = st.radio(
    "Scoring method",
    list(METHODS),
    format_func=lambda m: METHODS[m],
    horizontal=True,
    key=METHOD_KEY,
    help="gsm's default scores each site against the study's overall rate, widened for "
    "over-dispersion; the robust and exact methods are offered to check a flag.",
)
view = views.site_risk_view(
    ctx.db_url, ctx.cut_id, ctx.view, SiteRiskOptions(method=cast(Method, method))
)
metric_row(view.metrics)

computed = view.computed
absent = [k for k in view.kris if k.absent is not None]
st.caption(
    f"Each site's key risk indicators against the study's overall ratio ({len(computed)} of "
    f"{len(view.kris)} computed).",
    help=f"Scored by the {method} method: flags ±1 (amber) and ±2 (red) at each KRI's "
    "thresholds. Risk score: gsm's weighted sum of the flags, 0–100.",
)
with st.expander("How each KRI is scored, and the KRIs not computed"):
    if computed:
        st.dataframe(scoring_table(view), hide_index=True, width="stretch")
    if absent:
        st.dataframe(
            pd.DataFrame(
                {
                    "KRI not computed": [k.definition.name for k in absent],
                    "Why": [k.absent for k in absent],
                }
            ),
            hide_index=True,
            width="stretch",
        )

if view.scores.empty:
    no_subjects_message(ctx)
    st.stop()

if not view.comparable:
    st.info(
        "One site: nothing to compare with. Key risk indicators flag a site against the others, "
        "so a single-site study has no flags; the quality tolerance limits below still apply."
    )
else:
    st.subheader("Flags by site and KRI")
    flag_columns: list[Hashable] = [
        k.abbreviation for k in computed if k.abbreviation in view.flag_table
    ]
    st.dataframe(
        flag_styler(view.flag_table, flag_columns),
        hide_index=True,
        width="stretch",
        column_config={"Site": st.column_config.TextColumn("Site", pinned=True)},
    )
    st.caption(
        "Riskiest sites first; click a header to sort."
        + (" Only your sites are listed." if ctx.restricted else ""),
        help="−2/+2 red, −1/+1 amber (below / above the study), 0 green, – not scored (too little "
        "exposure or too few subjects).",
    )

    recruitment = recruitment_sentence(view)
    if recruitment is not None and view.recruitment_below is not None:
        st.subheader("Recruitment against the model")
        if view.recruitment_below.empty:
            st.success(recruitment)
        else:
            st.markdown(recruitment)
            st.dataframe(
                view.recruitment_below,
                hide_index=True,
                width="stretch",
                column_config={"Open since": st.column_config.DateColumn("Open since")},
            )
        st.caption(
            "The Enrollment page's forecast model: site rates from one gamma distribution fitted "
            "to every site's enrollments; Expected is its mean rate times the days open.",
        )

    st.subheader("Funnel plot")
    with_funnel = {f.definition.id: f for f in view.funnels}
    kri_ids = [k.id for k in computed if k.id in with_funnel]
    names = {k.id: f"{k.abbreviation} · {k.name}" for k in computed}
    if not kri_ids:
        st.info("No KRI has a denominator above zero yet: there is no funnel to draw.")
        picked_site = None
    else:
        if st.session_state.get(KRI_KEY) not in kri_ids:
            st.session_state[KRI_KEY] = kri_ids[0]
        kri_id = st.selectbox("KRI", kri_ids, format_func=lambda k: names[k], key=KRI_KEY)
        funnel = with_funnel[kri_id]
        chart = funnel_chart(funnel)
        event = None
        if chart is None:
            st.info("No site of yours has this KRI scored: there is no point to draw.")
        else:
            event = st.altair_chart(
                chart,
                width="stretch",
                on_select="rerun",
                selection_mode=[SITE_SELECTION],
                key=widget_key(CHART_KEY, study_id=ctx.study_id, codes=[(kri_id, method)]),
            )
            st.caption(
                f"Each point a site: {funnel.definition.numerator.lower()} per "
                f"{funnel.definition.denominator.lower()} ({funnel.definition.per}); click a "
                "point to list the site.",
                help="Grey lines: the limits at the KRI's thresholds (solid the outer, dashed the "
                "inner); blue: the study's overall ratio.",
            )
        # A click on a point picks the site, as the selectbox does; whichever changed last wins.
        points = chart_points(event, SITE_SELECTION)
        clicked = str(points[0].get("site_id")) if points else None
        if clicked != st.session_state.get(f"{SITE_KEY}_last_click"):
            st.session_state[f"{SITE_KEY}_last_click"] = clicked
            if clicked is not None:
                st.session_state[SITE_KEY] = clicked
        sites = sorted(str(s) for s in view.scores["site_id"].unique())
        if st.session_state.get(SITE_KEY) not in sites:
            st.session_state[SITE_KEY] = None
        picked_site = st.selectbox(
            "Site", sites, index=None, key=SITE_KEY, placeholder="Pick a site, or click its point"
        )

    if picked_site is not None:
        # Scrolled to when a site is picked: a click on the funnel opens it below the fold.
        with st.container(key=SITE_DETAIL_KEY):
            st.subheader("Site detail")
            st.text(f"Site {picked_site}")
            st.dataframe(
                site_rows(view, picked_site),
                hide_index=True,
                width="stretch",
                column_config={
                    "Metric": st.column_config.NumberColumn("Metric", format="%.2f"),
                    "Score": st.column_config.NumberColumn("Score", format="%+.2f"),
                },
            )
            subjects = views.site_subjects(ctx.db_url, ctx.cut_id, ctx.view, picked_site)
            if subjects.empty:
                st.info("No subjects listed at this site.")
            else:
                shown, links = subject_links(subjects, study_id=ctx.study_id)
                st.dataframe(
                    shown,
                    hide_index=True,
                    width="stretch",
                    column_config={**links, "site_id": "Site"},
                )
            bring_into_view(SITE_DETAIL_KEY, picked_site)
    else:
        bring_into_view(SITE_DETAIL_KEY, None)

    # One country has nothing to be compared with: its table would be all "not scored".
    if view.countries is not None and view.countries["country"].nunique() > 1:
        st.subheader("Flags by country")
        country = country_table(view.countries, view)
        st.dataframe(
            flag_styler(country, [c for c in country.columns if c != "Country"]),
            hide_index=True,
            width="stretch",
            column_config={"Country": st.column_config.TextColumn("Country")},
        )
        st.caption("The same KRIs scored per country (each country's sites summed).")

    compared = view.compared_cut
    if compared is None:
        st.caption("Only one data cut is loaded: no flag can be new yet.")
    elif not view.compared_has_counts:
        st.caption(
            f"Cut {compared.number} has no KRI counts kept (loaded before they were kept, or a demo's "
            "earlier cut): which flags are new since then cannot be told."
        )
    else:
        st.subheader(f"Newly flagged since cut {compared.number}")
        if view.new_flags.empty:
            st.success(f"No site has a flag it did not have in cut {compared.number}.")
        else:
            st.dataframe(
                view.new_flags,
                hide_index=True,
                width="stretch",
                column_config={"Site": st.column_config.TextColumn("Site")},
            )

st.subheader("Quality tolerance limits")
for qtl in view.qtls:
    st.markdown(f"**{plain(qtl.definition.name)}**")
    latest = qtl.latest
    if qtl.absent is not None:
        st.info(f"Not computed: {plain(qtl.absent)}.")
        continue
    if latest is None:
        st.info("No data cut has counts for this limit yet.")
        continue
    words = (
        f"Cut {int(latest['cut_number'])}: {latest['proportion']:.1%} "
        f"({int(latest['numerator'])} of {int(latest['denominator'])}) against a limit of "
        f"{latest['limit']:.1%} (expected {qtl.p0:.0%}, z {qtl.z:g})."
    )
    (st.error if qtl.over else st.success)(
        words + (" The limit is crossed." if qtl.over else " Within the limit.")
    )
    chart = qtl_chart(qtl)
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    else:
        st.caption("One data cut with counts: the line over cuts is drawn from the next cut on.")
qtl_names = {q.definition.id: q.definition.name for q in view.qtls}
open_excursions = view.excursions[~view.excursions["closed"].astype(bool)]
if open_excursions.empty:
    st.caption("No open QTL excursion.")
else:
    st.markdown("**Open excursions**")
    st.dataframe(
        excursion_table(open_excursions, qtl_names, ctx.cuts), hide_index=True, width="stretch"
    )
    if may_evaluate(ctx):
        excursion_form(ctx, open_excursions)
    else:
        st.caption("A sponsor, a monitor or an admin records what was found and done.")
closed = view.excursions[view.excursions["closed"].astype(bool)]
if not closed.empty:
    with st.expander(f"Closed excursions ({len(closed)})"):
        st.dataframe(excursion_table(closed, qtl_names, ctx.cuts), hide_index=True, width="stretch")
