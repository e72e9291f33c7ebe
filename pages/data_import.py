"""Import: upload an SDTM package, an EDC export (REDCap, ODM, spreadsheet) with its mapping file,
or a registry record, and see the study's data cuts."""

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import pandas as pd
import streamlit as st

from dashboard.access import IMPORT_PAGE
from dashboard.config import database_url
from dashboard.importers.edc_package import MappingEffect
from dashboard.importers.run import (
    EDC_FORMATS,
    EDC_ROLES,
    SdtmImportReport,
    describe_failure,
    import_ctgov_upload,
    import_edc_uploads,
    import_sdtm_files,
    preview_edc_uploads,
)
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
REPLACE_HELP = (
    "Needed when fewer than half of the study's current subjects are in the package, "
    "or when it would remove more than half of a domain's records."
)
# Each EDC export file's uploader, by its role (run.EDC_ROLES). No type= on the uploaders, as for
# the SDTM package: the importer refuses a wrong file with a plain message rather than Streamlit
# with its own.
EDC_UPLOAD_LABELS = {
    "records": "Records (.csv)",
    "dictionary": "Data dictionary (.csv)",
    "odm": "ODM 1.3 file (.xml)",
    "table": "Spreadsheet (.csv or .xlsx)",
}
# Above this many ignored fields, their list folds into an expander.
SHORT_LIST = 12

Imported = TypeVar("Imported")


def run_import(
    run: Callable[[], Imported],
    lines: Callable[[Imported], list[str]],
    study_of: Callable[[Imported], str],
) -> None:
    """Run one of the page's imports and keep its outcome for the next run to show (the page
    reruns on the imported study); every failure is a plain message (STYLE.md 6), no traceback."""
    try:
        with st.spinner("Importing..."):
            result = run()
    except Exception as error:
        refuse(f"{describe_failure(error)}.")
        return
    st.session_state[RESULT_KEY] = ("success", lines(result))
    show_study(study_of(result))
    st.rerun()


def refuse(message: str) -> None:
    st.session_state[RESULT_KEY] = ("error", [f"{message} Nothing was written."])


def report_lines(report: SdtmImportReport) -> list[str]:
    return report.summary_lines() + [f"warning: {w}" for w in report.warnings]


def study_of_report(report: SdtmImportReport) -> str:
    return report.result.study_id


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
    replace = right.checkbox("Replace the study's data", help=REPLACE_HELP)
    submitted = st.form_submit_button("Import package", type="primary")

if submitted:
    uploads = [(f.name, f.getvalue()) for f in files or []]
    run_import(
        lambda: import_sdtm_files(
            loaders.engine_for(db_url),
            uploads,
            study_id=study_id.strip() or None,
            cutoff=cutoff,
            replace=replace,
            actor=user.email,
        ),
        report_lines,
        study_of_report,
    )


def show_effect(effect: MappingEffect) -> None:
    """What the mapping would do with the export (field names come from the files: plain text)."""
    st.markdown(
        f"**Preview, nothing written:** {plural(effect.subjects, 'subject')} in "
        f"{plural(effect.records, 'record')}"
    )
    if effect.dropped:
        st.warning("Identifying fields, never read: " + ", ".join(plain(f) for f in effect.dropped))
    st.markdown("**Fields used**")
    st.dataframe(
        pd.DataFrame(
            {"Field": [f for f, _ in effect.used], "Becomes": [b for _, b in effect.used]}
        ),
        hide_index=True,
        width="stretch",
    )
    if effect.decoded:
        st.markdown("**Decoded choices**")
        st.dataframe(
            pd.DataFrame(effect.decoded, columns=["Field", "Code", "Label"]),
            hide_index=True,
            width="stretch",
        )
    ignored = ", ".join(plain(f) for f in effect.ignored)
    if not effect.ignored:
        st.markdown("**Fields ignored:** none")
    elif len(effect.ignored) <= SHORT_LIST:
        st.markdown(f"**Fields ignored:** {ignored}")
    else:
        with st.expander(f"Fields ignored ({len(effect.ignored)})"):
            st.markdown(ignored)


# Plain widgets, not a form: the format radio changes the uploaders shown.
with st.container(border=True):
    st.subheader("REDCap, ODM or spreadsheet export")
    st.caption(
        "The mapping file (TOML) says which fields of the project are which parts of the data "
        "model; `study-monitor mapping draft DICTIONARY.csv` drafts one."
    )
    edc_kind = st.radio(
        "Export format",
        list(EDC_FORMATS),
        format_func=EDC_FORMATS.__getitem__,
        horizontal=True,
        key="edc_format",
    )
    roles = EDC_ROLES[edc_kind]
    columns = st.columns(len(roles) + 1)
    edc_files = {
        role: column.file_uploader(EDC_UPLOAD_LABELS[role], key=f"edc_{edc_kind}_{role}")
        for column, role in zip(columns[:-1], roles, strict=True)
    }
    mapping_file = columns[-1].file_uploader("Mapping file (.toml)", key="edc_mapping")
    edc_replace = st.checkbox("Replace the study's data", help=REPLACE_HELP, key="edc_replace")
    with st.container(horizontal=True):
        preview_clicked = st.button("Preview mapping", key="edc_preview")
        edc_clicked = st.button("Import export", type="primary", key="edc_import")

    edc_uploads = {role: (f.name, f.getvalue()) for role, f in edc_files.items() if f is not None}
    mapping = (mapping_file.name, mapping_file.getvalue()) if mapping_file is not None else None
    if preview_clicked:
        if mapping is None:
            st.error("No mapping file was uploaded: add the .toml that says which field is which.")
        else:
            try:
                with st.spinner("Reading the export..."):
                    effect = preview_edc_uploads(edc_kind, edc_uploads, mapping)
            except Exception as error:  # every failure is a plain message, no traceback
                st.error(plain(f"{describe_failure(error)}."))
            else:
                show_effect(effect)

if edc_clicked:
    if mapping is None:
        refuse("No mapping file was uploaded: add the .toml that says which field is which.")
    else:
        edc_mapping = mapping
        run_import(
            lambda: import_edc_uploads(
                loaders.engine_for(db_url),
                edc_kind,
                edc_uploads,
                edc_mapping,
                replace=edc_replace,
                actor=user.email,
            ),
            report_lines,
            study_of_report,
        )

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
        refuse("No record was uploaded.")
    else:
        name, content = record.name, record.getvalue()
        run_import(
            lambda: import_ctgov_upload(
                loaders.engine_for(db_url),
                name,
                content,
                study_id=enrich.strip() or None,
                actor=user.email,
            ),
            lambda registered: [
                f"study {registered.study_id} "
                f"{'created' if registered.created else 'updated'} from {name}",
                f"{registered.inclusion} inclusion and {registered.exclusion} exclusion "
                f"criteria, {plural(registered.sites, 'site')}",
                *(f"warning: {w}" for w in registered.warnings),
            ],
            lambda registered: registered.study_id,
        )

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
