"""Streamlit entry point: page config, study picker and filters, navigation.

Run with ``streamlit run dashboard/app.py``. Pages live in the top-level ``pages/`` folder and are
listed here (paths relative to this file), so Streamlit never auto-discovers them.
"""

import streamlit as st

from dashboard.ui.shell import build_context

st.set_page_config(page_title="Study monitor", page_icon=":material/monitoring:", layout="wide")

IMPORT_PAGE = st.Page(
    "../pages/data_import.py", title="Import", icon=":material/upload_file:", url_path="import"
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
    IMPORT_PAGE,
]

navigation = st.navigation(PAGES)
# The Import page works without a study (it is how the first one gets in); the others need one.
if build_context() is None and navigation.url_path != IMPORT_PAGE.url_path:
    st.stop()
navigation.run()
