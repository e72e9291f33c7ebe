"""The few CSS rules the app adds to Streamlit's own, injected once by ``dashboard/app.py``.

Why: Streamlit draws a metric's label, value and delta, a button's label and a widget's label on
one line cut with an ellipsis. Beside a 300 px sidebar on a 1024 px laptop (or on a phone) that
cut "17 events (+7 new) · 1 with an SAE" to "17 events (+7 ne…": a figure nobody can read. Here
they wrap instead; a metric's value (the figure itself) stays on one line and a metric is never
narrower than it (``shell.metric_row`` lays the metrics out in a row that wraps); and the page's
side margins shrink on narrow screens so charts and tables keep their width.
"""

import streamlit as st

# Selectors by Streamlit's data-testid attributes and its stMarkdownEllipsis class (the one
# Streamlit puts on the labels it cuts), not its generated class names, which change per release.
CSS = """
/* Labels (metrics, buttons, page links, checkboxes, radios, widgets): wrap, never an ellipsis. */
.stMarkdownEllipsis[data-testid="stMarkdownContainer"],
.stMarkdownEllipsis[data-testid="stMarkdownContainer"] p {
  white-space: normal;
  overflow: visible;
  text-overflow: clip;
  overflow-wrap: anywhere;
}
/* The figure itself on one line: the metric is at least as wide as it (a flex item is never
   narrower than its content). */
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"],
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  white-space: nowrap;
  overflow-wrap: normal;
}
/* metric_row: each metric takes an equal share of the row but no less than 9rem (nor than its
   value); one that does not fit moves to the next line. */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stElementContainer"] > [data-testid="stMetric"])
  > [data-testid="stElementContainer"] {
  flex: 1 1 9rem;
  min-width: auto;
}
/* Streamlit's wide layout keeps 5rem margins either side whatever the window: on a laptop beside
   the sidebar that left charts and tables little more than half the screen. */
@media (max-width: 1280px) {
  [data-testid="stMainBlockContainer"] {
    padding-left: 2rem;
    padding-right: 2rem;
  }
}
"""


def apply_style() -> None:
    """Add the CSS above to the page (once per run, from ``dashboard/app.py``)."""
    st.html(f"<style>{CSS}</style>")
