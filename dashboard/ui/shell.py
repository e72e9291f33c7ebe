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
from dashboard.ui import loaders, url_state
from dashboard.views.common import Metric
from dashboard.views.context import ViewContext

# Session-state keys (one place, so pages and tests agree on them).
STUDY_KEY = "study"
SITES_KEY = "filter_sites"
COMPARE_KEY = "filter_compare_cut"
PERIOD_KEY = "filter_screening_period"  # the chosen period (None: every screening date)
PERIOD_WIDGET_KEY = "_screened_between"  # the date picker's own state (dropped off its pages)
LINK_KEY = "_link_state"  # what the first URL of a session asked for: sites and period
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
    chosen_sites: tuple[str, ...] = ()  # the sidebar's site choice (empty: every site)
    period: Period = None  # "Screened between" (None: every screening date)
    screening_span: Period = None  # the first and last screening dates of the sites in view

    @property
    def url_params(self) -> dict[str, str]:
        """The query string that reproduces this view (every sidebar and internal link)."""
        return url_state.state_params(self.study_id, self.chosen_sites, self.period)

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
    """A cut as the picker and the header name it: "Cut 1 of 2 · cut-off 03 Dec 2026"."""
    return f"Cut {cut.number} of {cut.total} · cut-off {_fmt_date(cut.cutoff_date)}"


def _on_study_change() -> None:
    # Sites and cuts belong to a study: a new study starts with every site and its own cuts.
    st.session_state.pop(SITES_KEY, None)
    st.session_state.pop(COMPARE_KEY, None)
    st.session_state.pop(PERIOD_KEY, None)
    st.session_state.pop(PERIOD_WIDGET_KEY, None)


def _on_period_change() -> None:
    # Kept under a key of its own: the picker's state is dropped on pages that do not draw it,
    # and the period must survive a visit to them (and stay in the URL meanwhile).
    chosen = st.session_state.get(PERIOD_WIDGET_KEY)
    if isinstance(chosen, tuple | list) and len(chosen) == 2:
        st.session_state[PERIOD_KEY] = (chosen[0], chosen[1])


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
        st.session_state[STUDY_KEY] = st.query_params.get(url_state.STUDY, default_study_id())
        # The sites and period of a shared link are checked once the study's sites are known.
        st.session_state[LINK_KEY] = {
            name: st.query_params.get(name)
            for name in (url_state.SITES, url_state.FROM, url_state.TO)
        }
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
    st.query_params[url_state.STUDY] = study_id
    link = st.session_state.pop(LINK_KEY, None) or {}

    loaders.forget_if_imported(db_url, study_id)
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
    asked, problems = url_state.parse_sites(
        link.get(url_state.SITES), offered=site_ids, every_site=every_site, study_id=study_id
    )
    for problem in problems:
        st.warning(problem)
    if len(site_ids) > 1:
        names = dict(zip(every_site, sites["name"].fillna(""), strict=True))
        if link.get(url_state.SITES) is not None:
            st.session_state[SITES_KEY] = asked
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
    span = loaders.load_screening_span(db_url, study_id, cut_id, scope)
    if link.get(url_state.FROM) is not None or link.get(url_state.TO) is not None:
        asked_period, problems = url_state.parse_period(
            link.get(url_state.FROM), link.get(url_state.TO), span=span
        )
        for problem in problems:
            st.warning(problem)
        st.session_state[PERIOD_KEY] = asked_period
    # A period kept from before a new cut or another site choice is cut to the dates now in view.
    period = url_state.fit_period(st.session_state.get(PERIOD_KEY), span)
    st.session_state[PERIOD_KEY] = period

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
        chosen_sites=tuple(chosen),
        period=period,
        screening_span=span,
    )
    # Written on every run: sidebar navigation and a picker change would leave the URL behind.
    for name in (url_state.SITES, url_state.FROM, url_state.TO):
        if name in context.url_params:
            st.query_params[name] = context.url_params[name]
        elif name in st.query_params:
            del st.query_params[name]
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
            f"data {latest.name}, cut-off {_fmt_date(latest.cutoff_date)}, "
            f"loaded {latest.loaded_at:%d %b %Y %H:%M} UTC"
        )
    else:
        parts.append("no data cut loaded (registry record only)")
    if context.compare_cut:
        compared = context.compare_cut
        parts.append(f"compared with {compared.name}, cut-off {_fmt_date(compared.cutoff_date)}")
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
    """A view's headline figures side by side, each with its line under it.

    A row that wraps rather than ``st.columns``: columns split the width equally whatever their
    text, so beside the sidebar at 1024 px (and on a phone) a metric got too little of it and its
    text was cut. Here a metric that does not fit moves to the next line (its minimum width and
    the wrapping of its label and delta: ``dashboard/ui/style.py``).
    """
    row = st.container(horizontal=True, wrap=True, gap="small")
    for metric in metrics:
        # A view's figures are plain text (numbers, and names from the data in some).
        row.metric(
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
    st.warning(f"No {domain} domain in data {latest.name}: {consequence}.")
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
    spans every screening date (so those pages share cached answers with the others).

    The period itself is the shell's (``build_context`` reads it from the URL, keeps it across
    pages and cuts it to the dates in view); the picker shows it and changes it."""
    span = context.screening_span
    if span is None:
        return None
    kept = context.period or span
    shown = st.session_state.get(PERIOD_WIDGET_KEY)
    if isinstance(shown, tuple | list) and len(shown) == 2 and tuple(shown) != kept:
        # Changed elsewhere (a link, the site filter): the picker follows.
        st.session_state[PERIOD_WIDGET_KEY] = kept
    # Its value is read by _on_period_change before the run, so the whole run agrees on it.
    st.sidebar.date_input(
        "Screened between",
        value=kept,
        min_value=span[0],
        max_value=span[1],
        key=PERIOD_WIDGET_KEY,
        on_change=_on_period_change,
        help="Every figure on this page counts the subjects screened in this period.",
    )
    return context.period
