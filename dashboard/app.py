"""Streamlit entry point: page config, sign-in, study picker and filters, navigation.

Run with ``streamlit run dashboard/app.py``. Pages live in the top-level ``pages/`` folder and are
listed here (paths relative to this file), so Streamlit never auto-discovers them.
"""

import altair as alt
import streamlit as st

from dashboard.access import allowed_pages
from dashboard.ui.auth import signed_in_user
from dashboard.ui.links import page_link
from dashboard.ui.shell import build_context
from dashboard.ui.style import apply_style
from dashboard.ui.warm_up import start as start_warm_up

st.set_page_config(page_title="Study monitor", page_icon=":material/monitoring:", layout="wide")
# Right after the page config, before anything is drawn: metrics and buttons that wrap rather than
# cut their text on a laptop or a phone (why, in dashboard/ui/style.py).
apply_style()

# Altair checks every chart object against the Vega-Lite schema as it is built ("debug mode"), and
# the finished spec once more when Streamlit serialises it: the second check is enough (and the
# chart functions' tests validate their specs). The first costs about 20 ms a page at scale.
alt.utils.schemapi.disable_debug_mode()

# The page links head the sidebar, as Streamlit's own navigation would; they are written once
# the study and filters of this run are known (below).
links = st.sidebar.container()

# Before any page is listed or any data read: without a user this draws the sign-in (or no-access)
# page and stops the run.
user = signed_in_user()

IMPORT_PAGE = st.Page(
    "../pages/data_import.py", title="Import", icon=":material/upload_file:", url_path="import"
)
AUDIT_PAGE = st.Page(
    "../pages/audit.py", title="Audit trail", icon=":material/policy:", url_path="audit"
)
PAGES = [
    st.Page("../pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page(
        "../pages/enrollment.py",
        title="Enrollment",
        icon=":material/trending_up:",
        url_path="enrollment",
    ),
    st.Page(
        "../pages/screen_failures.py",
        title="Screen failures",
        icon=":material/block:",
        url_path="screen-failures",
    ),
    st.Page(
        "../pages/baseline.py", title="Baseline", icon=":material/table_chart:", url_path="baseline"
    ),
    st.Page(
        "../pages/adverse_events.py",
        title="Adverse events",
        icon=":material/warning:",
        url_path="adverse-events",
    ),
    st.Page("../pages/labs.py", title="Labs", icon=":material/biotech:", url_path="labs"),
    st.Page(
        "../pages/site_risk.py",
        title="Site risk",
        icon=":material/crisis_alert:",
        url_path="site-risk",
    ),
    st.Page("../pages/queries.py", title="Queries", icon=":material/forum:", url_path="queries"),
    # Opened from every subject code in a list (/subject?study=..&subject=..), or by its picker.
    st.Page("../pages/subject.py", title="Subject", icon=":material/person:", url_path="subject"),
    IMPORT_PAGE,
    AUDIT_PAGE,
]

# A role's navigation lists only its pages; those pages check the role themselves as well.
listed = [p for p in PAGES if p.url_path in allowed_pages(user.role)]
# Streamlit's own sidebar links drop the query string, so a link opened in a new tab or copied
# would lose the study: the app draws the same list itself, each link carrying the view's state.
navigation = st.navigation(listed, position="hidden")
context = build_context(user)
with links:
    for page in listed:
        page_link(page, context)
    st.divider()  # the line Streamlit's navigation draws between the pages and the rest
# The Import page works without a study (it is how the first one gets in), and the audit trail is
# not about one study; the others need one.
without_study = (IMPORT_PAGE.url_path, AUDIT_PAGE.url_path)
if context is None and navigation.url_path not in without_study:
    st.stop()
try:
    navigation.run()
finally:
    # Once per process, when the first page is drawn (or stopped): the other pages' imports, in
    # the background (dashboard/ui/warm_up.py says why then).
    start_warm_up()
