"""Links to the Subject page: one rule for every listing that shows subject codes.

``subject_links`` turns a DataFrame's subject-code column into links to
``subject?study=<study>&subject=<USUBJID>`` and returns the ``st.column_config`` entry that shows
just the code. The URL is relative, so it resolves to ``/subject?...`` from every page (all pages
sit one level under the app's root) and keeps working where the app is served under a base path.
A click opens the subject in a new tab (Streamlit's link cells do), so the list stays where it was.

Use it on the frame that is drawn, never on the one offered for download (that keeps plain codes)::

    shown, links = subject_links(subjects, study_id=ctx.study_id)
    st.dataframe(shown, column_config={**links, "site_id": "Site"})
"""

from typing import Any
from urllib.parse import quote

import pandas as pd
import streamlit as st

SUBJECT_PAGE = "subject"  # the Subject page's url_path (DESIGN.md contract)
# The part of a link the cell shows: the subject code, the URL's last parameter (decoded by
# Streamlit before it is shown).
DISPLAY_CODE = r"[?&]subject=([^&#]*)$"


def subject_url(study_id: str, usubjid: str) -> str:
    """The relative link to one subject's page."""
    return f"{SUBJECT_PAGE}?study={quote(study_id, safe='')}&subject={quote(usubjid, safe='')}"


def page_url(url_path: str, study_id: str) -> str:
    """The relative link to another page of the same study (its ``?study=`` kept)."""
    return f"{url_path}?study={quote(study_id, safe='')}"


def subject_links(
    frame: pd.DataFrame, *, study_id: str, column: str = "usubjid", label: str = "Subject"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``frame`` with ``column`` (subject codes) turned into Subject-page links, and the
    ``column_config`` entry that draws them as links showing the code. Blank codes stay blank."""
    codes = frame[column]
    links = pd.Series(
        [subject_url(study_id, str(c)) if isinstance(c, str) and c else None for c in codes],
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
