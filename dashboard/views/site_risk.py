"""The Site risk view: every key risk indicator scored per site (and per country), the flags as a
site x KRI table with gsm's site risk score, a funnel plot per KRI, what is newly flagged since the
compared cut, and the study's quality tolerance limits over its cuts. The page, the pack and
``study-monitor kri`` read it.

Scores compare a site with every other site, so they are computed over the whole study and only
then cut to the sites the viewer may see; a viewer limited to some sites sees the funnels' limits
but not the other sites' points, and no country level (a country's sum would show its other
sites). Nothing here is by arm: blinding has nothing to pool.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session

from dashboard.metrics import kri_catalogue as catalogue
from dashboard.metrics.countries import country_label
from dashboard.metrics.kri import (
    Method,
    Scoring,
    funnel_bounds,
    json_number,
    qtl_by_cut,
    score_groups,
    site_risk_scores,
)
from dashboard.metrics.kri_catalogue import KriDefinition, QtlDefinition
from dashboard.metrics.site_forecast import (
    BELOW_EXPECTED,
    multicentre_reason,
    site_expectations,
    site_openings,
)
from dashboard.queries import enrollment, site_risk, studies
from dashboard.results.studies import CutInfo
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader

SCORE_COLUMNS = [
    "site_id",
    "kri",
    "abbreviation",
    "name",
    "numerator",
    "denominator",
    "metric",
    "score",
    "flag",
]
FUNNEL_POINTS = 60  # denominators at which a funnel's limits are drawn


@dataclass(frozen=True)
class SiteRiskOptions:
    """How the KRIs are scored: one method for all (gsm's by default), a KRI's own where given."""

    method: Method = "gsm"
    per_kri: tuple[tuple[str, Method], ...] = ()

    def scoring(self, kri: KriDefinition) -> Scoring:
        method = dict(self.per_kri).get(kri.id, self.method)
        s = kri.scoring
        return Scoring(s.kind, s.thresholds, s.min_denominator, s.min_numerator, method)


@dataclass(frozen=True)
class KriStatus:
    definition: KriDefinition
    absent: str | None  # why the KRI is not computed (None: it is)


@dataclass(frozen=True)
class Funnel:
    definition: KriDefinition
    points: pd.DataFrame  # site_id, numerator, denominator, metric (display scale), score, flag
    bounds: pd.DataFrame  # denominator, threshold, metric (display scale)
    overall: float  # the study's ratio, display scale


@dataclass(frozen=True)
class QtlStatus:
    definition: QtlDefinition
    p0: float
    z: float
    # cut_id, cut_number (the study's own count, shown), cutoff, numerator, denominator,
    # proportion, limit, over: one row per cut with counts
    history: pd.DataFrame
    absent: str | None  # why it cannot be computed (None: it can)

    @property
    def latest(self) -> dict[str, Any] | None:
        if self.history.empty:
            return None
        return {str(name): value for name, value in self.history.iloc[-1].items()}

    @property
    def over(self) -> bool:
        latest = self.latest
        return bool(latest and latest["over"])


@dataclass(frozen=True)
class SiteRiskView:
    frame: StudyFrame
    options: SiteRiskOptions
    kris: tuple[KriStatus, ...]
    scores: pd.DataFrame  # ``SCORE_COLUMNS``: each site in view and computed KRI
    countries: pd.DataFrame | None  # the same per country (None for a viewer limited to sites)
    flag_table: pd.DataFrame  # Site, Risk score, one column per computed KRI; riskiest first
    funnels: tuple[Funnel, ...]
    history: pd.DataFrame  # cut_id, site_id, kri, flag: every kept cut, sites in view
    compared_cut: CutInfo | None  # the cut "new" refers to
    compared_has_counts: bool  # whether that cut kept KRI counts
    new_flags: pd.DataFrame  # Site, KRI, Flag, Score, Cuts flagged in a row: flagged now, not then
    qtls: tuple[QtlStatus, ...]
    excursions: pd.DataFrame  # ``queries.site_risk.EXCURSION_COLUMNS``
    sites_in_study: int
    # Sites in view recruiting below what the multicentre model expects of the study's sites
    # (``RECRUITMENT_COLUMNS``); None where the model cannot be fitted (one site, too few).
    recruitment_below: pd.DataFrame | None = None
    metrics: tuple[Metric, ...] = field(default=())

    @property
    def study_id(self) -> str:
        return self.frame.study.study_id

    @property
    def computed(self) -> tuple[KriDefinition, ...]:
        return tuple(k.definition for k in self.kris if k.absent is None)

    @property
    def comparable(self) -> bool:
        """Whether there is more than one site to compare (a single-site study has no outliers)."""
        return self.sites_in_study > 1

    def flagged_sites(self, level: int) -> list[str]:
        """The sites in view with a flag of ``level`` (2 red, 1 amber) on some KRI, either side."""
        scores = self.scores.dropna(subset=["flag"])
        return sorted(scores.loc[scores["flag"].abs() == level, "site_id"].unique())

    def kri_rows(self) -> list[dict[str, Any]]:
        """``study-monitor kri --json`` (a contract): one object per site in view and computed
        KRI, with keys site, kri, name, numerator, denominator, metric, score, flag."""
        found = []
        for row in self.scores.to_dict("records"):
            found.append(
                {
                    "site": row["site_id"],
                    "kri": row["kri"],
                    "name": row["name"],
                    "numerator": json_number(row["numerator"]),
                    "denominator": json_number(row["denominator"]),
                    "metric": json_number(row["metric"]),
                    "score": json_number(row["score"]),
                    "flag": json_number(row["flag"]),
                }
            )
        return found


def _absent_reason(kri: KriDefinition, counts: pd.DataFrame) -> str | None:
    rows = counts[counts["kri"] == kri.id]
    if not rows.empty and rows["denominator"].notna().any():
        return None
    reasons = {
        catalogue.DEVIATIONS: "no DV domain in this data cut",
        catalogue.IMPORTANT_DEVIATIONS: "no DV domain in this data cut",
        catalogue.LAB_GRADE_3: "no LB result carries a toxicity grade (LBTOXGR)",
        catalogue.TREATMENT_DISCONTINUATION: "DS names no TREATMENT epoch",
        catalogue.OVERDUE_VISITS: "the study has no planned visit schedule (TV)",
        catalogue.ELIGIBILITY: "no eligibility criterion can be checked by machine",
    }
    return reasons.get(kri.id, "no data")


def score_counts(
    counts: pd.DataFrame, kris: tuple[KriDefinition, ...], options: SiteRiskOptions
) -> pd.DataFrame:
    """Every computed KRI scored per site (or any ``site_id`` grouping). Columns:
    ``SCORE_COLUMNS``."""
    frames = []
    for kri in kris:
        rows = counts[counts["kri"] == kri.id]
        groups = rows.rename(columns={"site_id": "group"})[["group", "numerator", "denominator"]]
        scored = score_groups(
            groups.astype({"numerator": float, "denominator": float}), options.scoring(kri)
        )
        frames.append(
            scored.rename(columns={"group": "site_id"}).assign(
                kri=kri.id, abbreviation=kri.abbreviation, name=kri.name
            )
        )
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]


def _flag_table(scores: pd.DataFrame, kris: tuple[KriDefinition, ...]) -> pd.DataFrame:
    # The risk score beside the site: on a narrow screen the KRI columns may scroll, it may not.
    columns = ["Site", "Risk score", *(k.abbreviation for k in kris)]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    table = scores.pivot(index="site_id", columns="abbreviation", values="flag")
    table = table.reindex(columns=[k.abbreviation for k in kris])
    table["Risk score"] = site_risk_scores(table)
    table = table.reset_index().rename(columns={"site_id": "Site"})[columns]
    return table.sort_values(
        ["Risk score", "Site"], ascending=[False, True], na_position="last"
    ).reset_index(drop=True)


def _funnels(
    counts: pd.DataFrame,
    scores: pd.DataFrame,
    kris: tuple[KriDefinition, ...],
    options: SiteRiskOptions,
) -> tuple[Funnel, ...]:
    found = []
    for kri in kris:
        rows = counts[counts["kri"] == kri.id].rename(columns={"site_id": "group"})
        rows = rows.astype({"numerator": float, "denominator": float})
        largest = float(rows["denominator"].max()) if not rows.empty else 0.0
        if not largest > 0:
            continue
        smallest = max(1.0, float(rows.loc[rows["denominator"] > 0, "denominator"].min()) / 2)
        denominators = np.unique(np.geomspace(smallest, largest * 1.1, FUNNEL_POINTS).round(2))
        bounds = funnel_bounds(rows, options.scoring(kri), denominators.tolist())
        points = scores[scores["kri"] == kri.id][
            ["site_id", "numerator", "denominator", "metric", "score", "flag"]
        ]
        total = rows["denominator"].sum()
        overall = float(rows["numerator"].sum() / total) * kri.scale if total else float("nan")
        found.append(
            Funnel(
                kri,
                points.assign(metric=points["metric"] * kri.scale).reset_index(drop=True),
                bounds.assign(metric=bounds["metric"] * kri.scale),
                overall,
            )
        )
    return tuple(found)


def _scored_cuts(
    stored: pd.DataFrame, kris: tuple[KriDefinition, ...], options: SiteRiskOptions
) -> dict[int, pd.DataFrame]:
    """Every kept cut's counts scored (``SCORE_COLUMNS``), by cut id: the latest is the view's
    scores, the others its history. Scored once each (scoring 200 sites x 10 KRIs is the cost)."""
    return {
        int(cut_id): score_counts(stored[stored["cut_id"] == cut_id], kris, options)
        for cut_id in sorted(stored["cut_id"].unique())
    }


def _history(scored: dict[int, pd.DataFrame]) -> pd.DataFrame:
    columns = ["cut_id", "site_id", "kri", "flag"]
    frames = [s[["site_id", "kri", "flag"]].assign(cut_id=c) for c, s in scored.items()]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _in_a_row(history: pd.DataFrame, cut_ids: list[int]) -> pd.Series:
    """Per (site_id, kri): how many of the latest kept cuts in a row had a flag (either side)."""
    flagged = history.assign(on=history["flag"].fillna(0).abs() > 0)
    table = flagged.pivot_table(
        index=["site_id", "kri"], columns="cut_id", values="on", aggfunc="any", fill_value=False
    ).reindex(columns=cut_ids, fill_value=False)
    # Counting back from the latest cut: the run ends at the first cut without a flag.
    runs = table.loc[:, ::-1].astype(bool).cumprod(axis=1).sum(axis=1)
    return runs.astype(int)


def _new_flags(
    scores: pd.DataFrame,
    history: pd.DataFrame,
    compared: int | None,
    cut_ids: list[int],
    names: dict[str, str],
) -> pd.DataFrame:
    columns = ["Site", "KRI", "Flag", "Score", "Cuts flagged in a row"]
    now = scores[scores["flag"].fillna(0) != 0]
    if compared is None or now.empty:
        return pd.DataFrame(columns=columns)
    then = history[history["cut_id"] == compared].set_index(["site_id", "kri"])["flag"]
    before = [then.get((s, k), pd.NA) for s, k in zip(now["site_id"], now["kri"], strict=True)]
    new = now[[pd.isna(b) or b == 0 for b in before]]
    runs = _in_a_row(history, cut_ids)
    return pd.DataFrame(
        {
            "Site": new["site_id"],
            "KRI": new["kri"].map(names),
            "Flag": new["flag"].astype(int),
            "Score": new["score"].round(2),
            "Cuts flagged in a row": [
                int(runs.get((s, k), 1)) for s, k in zip(new["site_id"], new["kri"], strict=True)
            ],
        }
    ).reset_index(drop=True)[columns]


def _qtls(
    read: Reader, stored: pd.DataFrame, cuts: tuple[CutInfo, ...], kris: list[KriStatus]
) -> tuple[QtlStatus, ...]:
    settings = read(site_risk.qtl_settings)
    cutoffs = {c.id: c.cutoff_date for c in cuts}
    numbers = {c.id: c.number for c in cuts}
    absent = {k.definition.id: k.absent for k in kris}
    found = []
    for qtl in catalogue.QTLS:
        p0, z = settings[qtl.id]
        rows = stored[stored["kri"] == qtl.kri].dropna(subset=["denominator"])
        totals = rows.groupby("cut_id", sort=True, as_index=False)[["numerator", "denominator"]]
        history = qtl_by_cut(totals.sum(), p0, z)
        history.insert(1, "cutoff", [cutoffs.get(int(c)) for c in history["cut_id"]])
        history["cut_id"] = history["cut_id"].astype(int)
        history.insert(1, "cut_number", [numbers.get(c, c) for c in history["cut_id"]])
        found.append(QtlStatus(qtl, p0, z, history.reset_index(drop=True), absent.get(qtl.kri)))
    return tuple(found)


RECRUITMENT_COLUMNS = ["Site", "Open since", "Days open", "Enrolled", "Expected", "P(≤ enrolled)"]


def _recruitment_below(
    read: Reader, frame: StudyFrame, visible: set[str] | None
) -> pd.DataFrame | None:
    """The sites in view whose enrollment is below what the multicentre model expects: the
    study's sites all fitted (a site is judged against every site), the viewer's listed."""
    cutoff = frame.cutoff
    if cutoff is None:
        return None
    by_site = read(enrollment.enrollment_by_site, scope=None)
    openings = site_openings(by_site, cutoff=cutoff, registry_start=frame.study.planned_start)
    days = read(enrollment.site_enrollment_days, scope=None)
    if multicentre_reason(openings, days, cutoff=cutoff) is not None:
        return None
    _, sites = site_expectations(openings, days, cutoff=cutoff)
    sites = sites.sort_values(["p_at_most", "site_id"])
    below = sites[
        sites["below"] & sites["site_id"].isin(visible if visible is not None else sites["site_id"])
    ]
    return pd.DataFrame(
        {
            "Site": below["site_id"],
            "Open since": below["opened_on"],
            "Days open": below["open_days"],
            "Enrolled": below["enrolled"],
            "Expected": [f"{v:.1f}" for v in below["expected"]],
            "P(≤ enrolled)": [f"{v:.3f}" for v in below["p_at_most"]],
        },
        columns=RECRUITMENT_COLUMNS,
    ).reset_index(drop=True)


def recruitment_sentence(view: "SiteRiskView") -> str | None:
    """What the recruitment table says, for the page and the pack (None: no model)."""
    table = view.recruitment_below
    if table is None:
        return None
    if table.empty:
        return (
            "No site recruits below what the multicentre model expects of the study's sites "
            f"(P(≤ enrolled) of {BELOW_EXPECTED} or more everywhere)."
        )
    return (
        f"{len(table)} {'site recruits' if len(table) == 1 else 'sites recruit'} below what the "
        "multicentre model expects of the study's sites: the chance of a site like the others, "
        f"open as long, recruiting this few or fewer is under {BELOW_EXPECTED}."
    )


def build_site_risk(
    session: Session, ctx: ViewContext, options: SiteRiskOptions | None = None
) -> SiteRiskView:
    """The Site risk view for ``ctx``. Raises UnknownStudyError / UnknownCutError (common)."""
    options = options or SiteRiskOptions()
    read = Reader(session, ctx)
    frame = study_frame(read)
    stored = read(site_risk.stored_kri_counts)
    latest = frame.cut
    if latest is not None and not (stored["cut_id"] == latest.id).any():
        # A study loaded before the counts were kept: its latest cut is counted now, the same way.
        live = read(site_risk.kri_counts, cutoff=latest.cutoff_date, domains=latest.domains)
        stored = pd.concat([stored, live.assign(cut_id=latest.id)], ignore_index=True)
    stored = stored.astype({"numerator": float, "denominator": float})
    current = (
        stored[stored["cut_id"] == latest.id].drop(columns="cut_id")
        if latest is not None
        else stored.drop(columns="cut_id")
    )
    kris = [KriStatus(kri, _absent_reason(kri, current)) for kri in catalogue.KRIS]
    computed = tuple(k.definition for k in kris if k.absent is None)
    visible = set(ctx.viewer_sites) if ctx.viewer_sites is not None else None
    if ctx.scope:
        visible = set(ctx.scope) if visible is None else visible & set(ctx.scope)

    def in_view(frame_: pd.DataFrame) -> pd.DataFrame:
        if visible is None:
            return frame_.reset_index(drop=True)
        return frame_[frame_["site_id"].isin(visible)].reset_index(drop=True)

    scored = _scored_cuts(stored, computed, options)
    all_scores = (
        scored[latest.id]
        if latest is not None and latest.id in scored
        else score_counts(current, computed, options)
    )
    scores = in_view(all_scores)
    history = in_view(_history(scored))
    countries = None
    if not ctx.restricted:
        sites = read(studies.site_countries)
        by_country = current.merge(sites, on="site_id", how="left")
        by_country["site_id"] = [
            country_label(c) if isinstance(c, str) and c else "(no country)"
            for c in by_country["country"]
        ]
        by_country = by_country.groupby(["site_id", "kri"], as_index=False)[
            ["numerator", "denominator"]
        ].sum(min_count=1)
        countries = score_counts(by_country, computed, options).rename(
            columns={"site_id": "country"}
        )
    funnels = _funnels(current, scores, computed, options)
    if visible is not None:
        funnels = tuple(
            Funnel(f.definition, in_view(f.points), f.bounds, f.overall) for f in funnels
        )
    kept_cuts = sorted(int(c) for c in stored["cut_id"].unique())
    compared = frame.since_cut
    compared_has = compared is not None and compared.id in kept_cuts
    new_flags = _new_flags(
        scores,
        history,
        compared.id if compared_has and compared is not None else None,
        kept_cuts,
        {k.id: k.name for k in computed},
    )
    qtls = _qtls(read, stored, frame.cuts, kris)
    sites_in_study = int(current["site_id"].nunique())
    view = SiteRiskView(
        frame=frame,
        options=options,
        kris=tuple(kris),
        scores=scores,
        countries=countries,
        flag_table=_flag_table(scores, computed),
        funnels=funnels,
        history=history,
        compared_cut=compared,
        compared_has_counts=compared_has,
        new_flags=new_flags,
        qtls=qtls,
        excursions=read(site_risk.qtl_excursions),
        sites_in_study=sites_in_study,
        recruitment_below=_recruitment_below(read, frame, visible),
    )
    return _with_metrics(view)


def _with_metrics(view: SiteRiskView) -> SiteRiskView:
    red = view.flagged_sites(2)
    amber = sorted(set(view.flagged_sites(1)) - set(red))
    over = [q.definition.name for q in view.qtls if q.over]
    compared = view.compared_cut
    new_sites = sorted(view.new_flags["Site"].unique()) if not view.new_flags.empty else []
    new_line = (
        f"{len(new_sites)} new since cut {compared.number}"
        if compared is not None and view.compared_has_counts
        else None
    )
    metrics = (
        Metric("Red-flag sites", len(red), ", ".join(red[:6]) or None),
        Metric("Amber-only sites", len(amber), ", ".join(amber[:6]) or None),
        Metric("Newly flagged", len(new_sites) if new_line else "–", new_line),
        Metric(
            "QTLs crossed",
            f"{len(over)} of {len(view.qtls)}",
            ", ".join(over) or None,
        ),
    )
    return SiteRiskView(**{**view.__dict__, "metrics": metrics})
