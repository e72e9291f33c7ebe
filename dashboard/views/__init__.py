"""Views: one module per page, each ``build_<page>(session, ctx) -> <Page>View``, a frozen dataclass
of ready-to-draw frames, chart inputs and sentences. The page, the monitoring pack and the command
line read the same view, so a figure is composed once. No streamlit here."""
