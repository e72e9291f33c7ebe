"""The monitoring pack's downloads (the Overview page): the PDF and the workbook are built only
when their button is clicked (a pack takes seconds), each click audited as an export."""

import functools

import streamlit as st
from sqlmodel import Session

from dashboard.report.files import file_stem
from dashboard.report.pack import MonitoringPack, build_pack
from dashboard.report.pdf import pack_pdf
from dashboard.report.workbook import EXCEL_MIME, pack_workbook
from dashboard.ui import loaders
from dashboard.ui.auth import audited
from dashboard.ui.shell import PageContext


def pack_downloads(ctx: PageContext) -> None:
    """Two buttons: the pack as PDF and as Excel, for the study, the sites in view and the
    "compare with" cut of the sidebar."""
    # Streamlit runs a download's callable outside the script run: it gets plain values only.
    engine = loaders.engine_for(ctx.db_url)
    view = ctx.view  # the pages' own context: a blinded user's pack is pooled like their pages
    stem = file_stem(ctx.study_id, ctx.cut_id)

    # One pack for both buttons: the clicks need no rerun (on_click="ignore"), so a second click
    # of this run's page reuses the pack the first one built (a pack takes seconds).
    @functools.cache
    def pack() -> MonitoringPack:
        with Session(engine) as session:
            return build_pack(session, view)

    def pdf() -> bytes:
        return pack_pdf(pack())

    def workbook() -> bytes:
        return pack_workbook(pack())

    # One above the other: side by side in the Overview's narrow column their labels were cut.
    pdf_button = excel_button = st.container()
    pdf_button.download_button(
        "Monitoring pack (PDF)",
        audited(pdf, file_name=f"{stem}.pdf"),
        file_name=f"{stem}.pdf",
        mime="application/pdf",
        on_click="ignore",  # see dashboard.ui.downloads DOWNLOAD_NOTE
        icon=":material/picture_as_pdf:",
        width="stretch",
        help="Headline figures and changes, enrollment and forecast, the flow diagram, failures "
        "by criterion, Table 1, the AE tables and the SAE listing (built on click, a few "
        "seconds).",
    )
    excel_button.download_button(
        "Monitoring pack (Excel)",
        audited(workbook, file_name=f"{stem}.xlsx"),
        file_name=f"{stem}.xlsx",
        mime=EXCEL_MIME,
        on_click="ignore",
        icon=":material/table_view:",
        width="stretch",
        help="A sheet per listing: subjects, screen failures with their criteria, Table 1, AEs "
        "and SAEs, new rows marked.",
    )
