"""Links between pages, each carrying the view's state (study, sites, screening period: the
shell's ``PageContext.url_params``), so a link opened in a new tab or copied shows what its
sender saw. ``page_link`` draws a sidebar link, ``page_url`` writes a page's relative URL.

Links to the Subject page: one rule for every listing that shows subject codes.

``subject_links`` turns a DataFrame's subject-code column into links to
``subject?study=<study>[&sites=..&from=..&to=..]&subject=<USUBJID>`` and returns the
``st.column_config`` entry that shows just the code. The URL is relative, so it resolves to
``/subject?...`` from every page (all pages sit one level under the app's root) and keeps working
where the app is served under a base path. A click opens the subject in a new tab (Streamlit's
link cells do), so the list stays where it was.

Use it on the frame that is drawn, never on the one offered for download (that keeps plain codes)::

    shown, links = subject_links(subjects, study_id=ctx.study_id)
    st.dataframe(shown, column_config={**links, "site_id": "Site"})
"""

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
import streamlit as st
from streamlit.navigation.page import StreamlitPage

from dashboard.ui.shell import PageContext, optional_context

SUBJECT_PAGE = "subject"  # the Subject page's url_path (DESIGN.md contract)
# The part of a link the cell shows: the subject code, the URL's last parameter (decoded by
# Streamlit before it is shown).
DISPLAY_CODE = r"[?&]subject=([^&#]*)$"


def _query(state: Mapping[str, str]) -> str:
    return urlencode(state, quote_via=quote, safe=",")


def subject_url(study_id: str, usubjid: str, state: Mapping[str, str] | None = None) -> str:
    """The relative link to one subject's page, the view's ``state`` kept (the subject last: the
    link cell shows it)."""
    query = _query({**(state or {}), "study": study_id})
    return f"{SUBJECT_PAGE}?{query}&subject={quote(usubjid, safe='')}"


def page_url(url_path: str, state: Mapping[str, str]) -> str:
    """The relative link to another page of the same view (``PageContext.url_params``)."""
    return f"{url_path}?{_query(state)}"


class _RootPage(StreamlitPage):
    """The default page as a link target: its href is "./?..." (the app's root seen from any
    page, under a base path too). Streamlit writes the default page's href as "?..." alone, which
    a new tab resolves against the page it is on: "open in new tab" on Overview from Enrollment
    would open Enrollment. A click still goes by the page's hash, which stays its own."""

    @property
    def url_path(self) -> str:
        return "."


def page_link(page: StreamlitPage, context: PageContext | None) -> None:
    """A sidebar link to ``page`` as Streamlit's navigation draws it (icon, title, the current
    page marked), its href carrying the view's state."""
    if page.url_path == "":  # the default page
        page = copy.copy(page)
        page.__class__ = _RootPage
    st.page_link(page, query_params=context.url_params if context else None, width="stretch")


def _state_of(study_id: str) -> Mapping[str, str] | None:
    # The run's view, where the listing is of its study (always, in the app).
    context = optional_context()
    return context.url_params if context and context.study_id == study_id else None


def subject_links(
    frame: pd.DataFrame, *, study_id: str, column: str = "usubjid", label: str = "Subject"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``frame`` with ``column`` (subject codes) turned into Subject-page links, and the
    ``column_config`` entry that draws them as links showing the code. Blank codes stay blank."""
    codes = frame[column]
    state = _state_of(study_id)
    links = pd.Series(
        [subject_url(study_id, str(c), state) if isinstance(c, str) and c else None for c in codes],
        index=frame.index,
        dtype=object,
    )
    config = st.column_config.LinkColumn(
        label,
        display_text=DISPLAY_CODE,
        help="Opens the subject's page (timeline, visits, AEs, dispositions, findings)",
        pinned=True,  # the listing's key: kept in view when a narrow window scrolls the others
    )
    return frame.assign(**{column: links}), {column: config}
