"""Import: upload an SDTM package or a registry record, and see the study's data cuts."""

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard.access import IMPORT_PAGE
from dashboard.config import database_url
from dashboard.importers.run import describe_failure, import_ctgov_upload, import_sdtm_files
from dashboard.markdown import plain
from dashboard.ui import loaders
from dashboard.ui.auth import require_page
from dashboard.ui.shell import optional_context, show_study
from dashboard.views.format import plural

user = require_page(IMPORT_PAGE)  # admins only, whatever the navigation shows
st.title("Import data")
st.caption(
    "The same checks as `study-monitor import`: an import is all or nothing, and every import is "
    "one data cut, recorded in the audit trail under your name."
)
ctx = optional_context()
db_url = ctx.db_url if ctx else database_url()
RESULT_KEY = "import_result"

with st.form("sdtm_import", clear_on_submit=False):
    st.subheader("SDTM package")
    files = st.file_uploader(
        "Datasets (.xpt, .csv or Dataset-JSON .json; DM is required)",
        # No type=: Streamlit would refuse another name (``..``, ``ae.txt``) with its own error
        # box before the page runs; the importer refuses it with a plain message instead.
        accept_multiple_files=True,
    )
    left, middle, right = st.columns(3)
    study_id = left.text_input(
        "Study id", placeholder="from DM STUDYID", help="Load under another id than STUDYID."
    )
    cutoff: dt.date | None = middle.date_input(
        "Cut-off date", value=None, help="Used where TS has no DCUTDTC."
    )
    replace = right.checkbox(
        "Replace the study's data",
        help="Needed when fewer than half of the study's current subjects are in the package, "
        "or when it would remove more than half of a domain's records.",
    )
    submitted = st.form_submit_button("Import package", type="primary")

if submitted:
    uploads = [(f.name, f.getvalue()) for f in files or []]
    try:
        with st.spinner("Importing..."):
            report = import_sdtm_files(
                loaders.engine_for(db_url),
                uploads,
                study_id=study_id.strip() or None,
                cutoff=cutoff,
                replace=replace,
                actor=user.email,
            )
    except Exception as error:  # every failure is a plain message (STYLE.md 6), no traceback
        st.session_state[RESULT_KEY] = (
            "error",
            [f"{describe_failure(error)}. Nothing was written."],
        )
    else:
        st.session_state[RESULT_KEY] = (
            "success",
            report.summary_lines() + [f"warning: {w}" for w in report.warnings],
        )
        show_study(report.result.study_id)
        st.rerun()

with st.form("ctgov_import"):
    st.subheader("Registry record")
    record = st.file_uploader("ClinicalTrials.gov API v2 study record (.json)")  # any name
    enrich = st.text_input(
        "Study to enrich",
        placeholder="the record's NCT id",
        help="An existing study (loaded from SDTM, say) that this record describes.",
    )
    registry_submitted = st.form_submit_button("Import record")

if registry_submitted:
    if record is None:
        st.session_state[RESULT_KEY] = ("error", ["No record was uploaded. Nothing was written."])
    else:
        try:
            registered = import_ctgov_upload(
                loaders.engine_for(db_url),
                record.name,
                record.getvalue(),
                study_id=enrich.strip() or None,
                actor=user.email,
            )
        except Exception as error:  # every failure is a plain message, no traceback
            st.session_state[RESULT_KEY] = (
                "error",
                [f"{describe_failure(error)}. Nothing was written."],
            )
        else:
            st.session_state[RESULT_KEY] = (
                "success",
                [
                    f"study {registered.study_id} "
                    f"{'created' if registered.created else 'updated'} from {record.name}",
                    f"{registered.inclusion} inclusion and {registered.exclusion} exclusion "
                    f"criteria, {plural(registered.sites, 'site')}",
                    *(f"warning: {w}" for w in registered.warnings),
                ],
            )
            show_study(registered.study_id)
            st.rerun()

if RESULT_KEY in st.session_state:
    kind, lines = st.session_state[RESULT_KEY]
    # File names, study ids and values quoted from the files: shown as text.
    if kind == "error":
        st.error(plain(lines[0]))
    else:
        st.success(plain(lines[0]))
        st.markdown("\n".join(f"- {plain(line)}" for line in lines[1:]))

if ctx is not None:
    st.subheader(f"Data cuts of {plain(ctx.study_id)}")
    if not ctx.cuts:
        st.info("No data cut yet: this study has only its registry record.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Cut": [c.number for c in reversed(ctx.cuts)],
                    "Loaded (UTC)": [f"{c.loaded_at:%Y-%m-%d %H:%M}" for c in reversed(ctx.cuts)],
                    "Cut-off": [c.cutoff_date for c in reversed(ctx.cuts)],
                    "Domains": [", ".join(c.domains) for c in reversed(ctx.cuts)],
                    "Records": [c.records for c in reversed(ctx.cuts)],
                    "Warnings": [len(c.warnings) for c in reversed(ctx.cuts)],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        for cut in reversed(ctx.cuts):
            if cut.warnings:
                with st.expander(f"Warnings of cut {cut.number} ({len(cut.warnings)})"):
                    st.markdown("\n".join(f"- {plain(w)}" for w in cut.warnings))
