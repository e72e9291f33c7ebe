"""The app shell: study picker, shared filters, the page context, headers and empty states.

``dashboard/app.py`` calls ``build_context()`` once per run, before ``st.navigation(...).run()``;
pages read it with ``page_context()``. Filters live in session state under the names below, so they
survive moving between pages.
"""

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard.access import CurrentUser, allowed_sites, effective_scope, may_see_study
from dashboard.config import database_url, default_study_id
from dashboard.markdown import plain
from dashboard.queries.scope import Period, SiteScope
from dashboard.results.studies import CutInfo, StudyInfo
from dashboard.ui import loaders
from dashboard.views.common import Metric
from dashboard.views.context import ViewContext

# Session-state keys (one place, so pages and tests agree on them).
STUDY_KEY = "study"
SITES_KEY = "filter_sites"
COMPARE_KEY = "filter_compare_cut"
PERIOD_KEY = "filter_screening_period"
CONTEXT_KEY = "_page_context"
PENDING_STUDY_KEY = "_pending_study"


@dataclass(frozen=True)
class PageContext:
    """Everything a page needs to call the loaders: primitives only."""

    db_url: str
    study: StudyInfo
    cuts: tuple[CutInfo, ...]
    scope: SiteScope  # what every query counts: the user's sites within the sidebar's choice
    compare_cut_id: int | None  # the earlier cut "new since" refers to
    site_count: int  # sites the user may see (before the sidebar filter)
    user: CurrentUser
    allowed: SiteScope = None  # the user's sites in this study; None: every site
    study_site_count: int = 0  # every site of the study (shown only as a study-wide aggregate)

    @property
    def study_id(self) -> str:
        return self.study.study_id

    @property
    def restricted(self) -> bool:
        """Whether the user sees only some sites of the study (figures for all of them appear
        only as study-wide aggregates, marked so)."""
        return self.allowed is not None

    @property
    def view(self) -> ViewContext:
        """What the page's view is built for: this study, the sites in view, the compared cut
        and this user's rights (whether they see arms is decided there, once)."""
        return ViewContext.for_viewer(
            self.study,
            unblinded=self.user.unblinded,
            scope=self.scope,
            since_cut_id=self.compare_cut_id,
            viewer_sites=self.allowed,
        )

    def view_for(self, period: Period) -> ViewContext:
        """The view context of a page with the "Screened between" filter."""
        return dataclasses.replace(self.view, period=period)

    @property
    def shows_arms(self) -> bool:
        """Whether this user sees this study's arms (``ViewContext.for_viewer`` decides)."""
        return self.view.shows_arms

    @property
    def latest_cut(self) -> CutInfo | None:
        return self.cuts[-1] if self.cuts else None

    @property
    def cut_id(self) -> int | None:
        """The latest cut's id: part of every cache key."""
        return self.latest_cut.id if self.latest_cut else None

    @property
    def compare_cut(self) -> CutInfo | None:
        return next((c for c in self.cuts if c.id == self.compare_cut_id), None)


def _fmt_date(day: dt.date | None) -> str:
    return day.strftime("%d %b %Y") if day else "unknown"


def cut_label(cut: CutInfo) -> str:
    return f"Cut {cut.id} · cut-off {_fmt_date(cut.cutoff_date)}"


def _on_study_change() -> None:
    # Sites and cuts belong to a study: a new study starts with every site and its own cuts.
    st.session_state.pop(SITES_KEY, None)
    st.session_state.pop(COMPARE_KEY, None)
    st.session_state.pop(PERIOD_KEY, None)


def build_context(user: CurrentUser) -> PageContext | None:
    """Draw the sidebar (study picker and filters) and return the context, or None if the database
    holds no study the user may see (then a plain message says what to do)."""
    db_url = database_url()
    st.session_state.pop(CONTEXT_KEY, None)  # never a context left from an earlier run
    try:
        every_study = loaders.load_study_ids(db_url)
    except SQLAlchemyError as error:  # a missing or unreadable database: a message, no traceback
        st.error(
            "The study database cannot be read "
            f"({error.__class__.__name__}). Create it with `study-monitor demo` or set "
            "DATABASE_URL to a database that holds study data."
        )
        return None
    study_ids = [s for s in every_study if may_see_study(user, s)]
    if every_study and not study_ids:
        st.info(
            "No study is open to your account yet: ask an administrator to grant you the sites "
            "you work with."
        )
        return None
    if not study_ids:
        st.info(
            "No study in the database yet. Load the demo study with `study-monitor demo`, import "
            "one with `study-monitor import sdtm PATH`, or upload its files on the Import page."
        )
        return None

    # DESIGN.md contract: the URL's ?study= opens a study and is written back on every run, since
    # sidebar navigation drops the query string.
    if STUDY_KEY not in st.session_state:
        st.session_state[STUDY_KEY] = st.query_params.get("study", default_study_id())
    if PENDING_STUDY_KEY in st.session_state:  # set by an import before its rerun
        st.session_state[STUDY_KEY] = st.session_state.pop(PENDING_STUDY_KEY)
        _on_study_change()
    requested = st.session_state[STUDY_KEY]
    if requested not in study_ids:
        fallback = default_study_id() if default_study_id() in study_ids else study_ids[0]
        # Said where someone asked for the study (a link, a pick), not for the app's default.
        if st.query_params.get("study") == requested or requested != default_study_id():
            where = "open to your account" if requested in every_study else "in this database"
            st.warning(
                f"Study **{plain(requested)}** is not {where}; showing **{plain(fallback)}**."
            )
        st.session_state[STUDY_KEY] = fallback
    st.sidebar.selectbox("Study", study_ids, key=STUDY_KEY, on_change=_on_study_change)
    study_id: str = st.session_state[STUDY_KEY]
    st.query_params["study"] = study_id

    cuts = tuple(loaders.load_cuts(db_url, study_id))
    cut_id = cuts[-1].id if cuts else None
    study = loaders.load_study(db_url, study_id, cut_id)
    if study is None:  # removed between two queries
        st.error(
            f"Study {plain(study_id)} has just been removed from the database. Reload the page."
        )
        return None

    sites = loaders.load_sites(db_url, study_id, cut_id)
    every_site = [str(s) for s in sites["site_id"]]
    # The sidebar offers only the user's sites, and the scope is cut to them again whatever the
    # widget holds: the query layer gets no site the user may not see.
    allowed = allowed_sites(user, study_id)
    site_ids = every_site if allowed is None else [s for s in every_site if s in allowed]
    chosen: list[str] = []
    if len(site_ids) > 1:
        names = dict(zip(every_site, sites["name"].fillna(""), strict=True))
        if not set(st.session_state.get(SITES_KEY, ())) <= set(site_ids):
            st.session_state.pop(SITES_KEY)  # kept from another account or study
        chosen = st.sidebar.multiselect(
            "Sites",
            site_ids,
            key=SITES_KEY,
            format_func=lambda s: f"{s} {names.get(s, '')}".strip(),
            placeholder="All sites" if allowed is None else "All your sites",
            help="Leave empty for every site" + (" you may see." if allowed is not None else "."),
        )
    scope = effective_scope(allowed, chosen)

    earlier = cuts[:-1]
    compare_cut_id: int | None = None
    if earlier:
        options = [c.id for c in reversed(earlier)]
        if st.session_state.get(COMPARE_KEY) not in options:
            st.session_state[COMPARE_KEY] = options[0]  # default: the cut before the latest
        labels = {c.id: cut_label(c) for c in earlier}
        compare_cut_id = st.sidebar.selectbox(
            "Compare with", options, key=COMPARE_KEY, format_func=lambda i: labels[i]
        )
    context = PageContext(
        db_url=db_url,
        study=study,
        cuts=cuts,
        scope=scope,
        compare_cut_id=compare_cut_id,
        site_count=len(site_ids),
        user=user,
        allowed=allowed,
        study_site_count=len(every_site),
    )
    st.session_state[CONTEXT_KEY] = context
    return context


def optional_context() -> PageContext | None:
    """The context of this run, or None where the database holds no study yet."""
    context = st.session_state.get(CONTEXT_KEY)
    return context if isinstance(context, PageContext) else None


def show_study(study_id: str) -> None:
    """Open ``study_id`` on the next run (the study picker cannot change once drawn)."""
    st.session_state[PENDING_STUDY_KEY] = study_id


def page_context() -> PageContext:
    """The context the entry point built for this run; stops the page if there is none."""
    context = st.session_state.get(CONTEXT_KEY)
    if not isinstance(context, PageContext):
        st.stop()
    return context


def page_header(title: str, context: PageContext) -> None:
    """Page title, the data-freshness line and the banners every page carries."""
    st.title(plain(title))
    study = context.study
    latest = context.latest_cut
    parts = [f"**{plain(study.registry_id or study.study_id)}**"]
    if latest:
        parts.append(
            f"data cut {latest.id}, cut-off {_fmt_date(latest.cutoff_date)}, "
            f"loaded {latest.loaded_at:%d %b %Y %H:%M} UTC"
        )
    else:
        parts.append("no data cut loaded (registry record only)")
    if context.compare_cut:
        parts.append(f"compared with {plain(cut_label(context.compare_cut))}")
    if context.scope:
        parts.append(
            f"{'your ' if context.scope == context.allowed else ''}sites: "
            f"{plain(', '.join(context.scope))}"
        )
    if context.user.local:
        parts.append("local mode: no sign-in configured")
    st.caption(" · ".join(parts))
    if study.is_synthetic:
        st.info(
            "Synthetic demo data: no real patient is behind these figures.",
            icon=":material/science:",
        )


def metric_row(metrics: Sequence[Metric]) -> None:
    """A view's headline figures side by side, each with its line under it."""
    for column, metric in zip(st.columns(len(metrics)), metrics, strict=True):
        # A view's figures are plain text (numbers, and names from the data in some).
        column.metric(
            plain(metric.label),
            plain(metric.value),
            delta=None if metric.delta is None else plain(metric.delta),
            delta_color="off",
            delta_arrow="off",
            help=metric.help,
        )


def domain_missing(context: PageContext, domain: str, consequence: str) -> bool:
    """Say so where the latest data cut has no ``domain`` (instead of showing zeros); True if so.
    A registry-only study has no data cut, so nothing to miss."""
    latest = context.latest_cut
    if latest is None or domain in latest.domains:
        return False
    st.warning(f"No {domain} domain in data cut {latest.id}: {consequence}.")
    return True


def no_subjects_message(context: PageContext) -> None:
    """The plain message for a study or a filter with no subjects."""
    if context.restricted and context.scope == context.allowed:
        st.info("No subjects at your sites in this study yet.")
    elif context.scope:
        st.info("No subjects at the selected sites. Clear the site filter to see the whole study.")
    else:
        st.info(
            f"Study {plain(context.study_id)} has no subjects yet: the figures appear after the first "
            "data import."
        )


def period_filter(context: PageContext) -> Period:
    """The "Screened between" filter in the sidebar, for the pages that offer it; None where it
    spans every screening date (so those pages share cached answers with the others)."""
    span = loaders.load_screening_span(
        context.db_url, context.study_id, context.cut_id, context.scope
    )
    if span is None:
        return None
    kept = st.session_state.get(PERIOD_KEY, span)
    if not (span[0] <= kept[0] <= kept[1] <= span[1]):
        kept = span  # a period kept from before a new cut or study that no longer fits
    chosen = st.sidebar.date_input(
        "Screened between",
        value=kept,
        min_value=span[0],
        max_value=span[1],
        help="Every figure on this page counts the subjects screened in this period.",
    )
    if not (isinstance(chosen, tuple) and len(chosen) == 2):
        return None  # the second date is still being picked
    st.session_state[PERIOD_KEY] = chosen
    return None if tuple(chosen) == span else (chosen[0], chosen[1])
