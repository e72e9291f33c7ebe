"""Adverse events: a listing of events with the columns the rules give, and as shown and
downloaded.
"""

import pandas as pd

from dashboard.metrics.ae_rules import (
    classify_relationship,
    given_text,
    is_treatment_emergent,
    seriousness_criteria,
)
from dashboard.metrics.study_days import study_day
from dashboard.results.dates import as_date, is_missing

# -- listings ---------------------------------------------------------------------------------------

# The seriousness criteria (the AES* flags), in the order the listing names them. AESCAN and AESOD
# were dropped from the AE domain in SDTMIG 3.4 but are in older packages (the CDISC pilot, SDTM-MSG).
SERIOUSNESS_FLAGS = {
    "serious_death": "Death",  # AESDTH
    "serious_life_threatening": "Life-threatening",  # AESLIFE
    "serious_hospitalisation": "Hospitalisation",  # AESHOSP
    "serious_disability": "Disability",  # AESDISAB
    "serious_congenital": "Congenital anomaly",  # AESCONG
    "serious_cancer": "Cancer",  # AESCAN
    "serious_overdose": "Overdose",  # AESOD
    "serious_other": "Other medically important",  # AESMIE
}


def derive_listing(events: pd.DataFrame, *, compare_cut_id: int | None) -> pd.DataFrame:
    """Adds to an AE listing (``queries.adverse_events.adverse_event_listing``) the columns the
    rules give: study_day (counted from the subject's first dose, day 1, no day 0: the timeline's
    axis; AESTDY as given stays in start_day, counted from RFSTDTC),
    related (the AEREL group), preferred_term (AEDECOD, else AETERM), treatment_emergent,
    criteria (the seriousness criteria flagged Y), new (first held by a cut after
    ``compare_cut_id``; False where there is nothing to compare) and changed (held by that cut
    and altered by a later one)."""
    frame = events.copy()
    if frame.empty:
        for column in (
            "study_day",
            "related",
            "preferred_term",
            "treatment_emergent",
            "criteria",
            "new",
            "changed",
        ):
            frame[column] = pd.Series(dtype=object)
        return frame
    frame["study_day"] = pd.array(
        [
            study_day(as_date(s), as_date(d))
            for s, d in zip(frame["start_date"], frame["first_dose_date"], strict=True)
        ],
        dtype="Int64",
    )
    if "start_day" in frame:
        frame["start_day"] = pd.array(
            [None if is_missing(v) else int(v) for v in frame["start_day"]], dtype="Int64"
        )
    frame["related"] = frame["relationship"].map(classify_relationship)
    frame["preferred_term"] = [
        given_text(d) or t for d, t in zip(frame["decoded_term"], frame["term"], strict=True)
    ]
    frame["treatment_emergent"] = [
        is_treatment_emergent(sd, as_date(s), fd, as_date(f), given_text(flag))
        for sd, s, fd, f, flag in zip(
            frame["start_dtc"],
            frame["start_date"],
            frame["first_dose_dtc"],
            frame["first_dose_date"],
            frame["treatment_emergent_flag"]
            if "treatment_emergent_flag" in frame
            else [None] * len(frame),
            strict=True,
        )
    ]
    frame["criteria"] = _criteria(frame)
    frame["new"] = (
        frame["first_cut_id"].fillna(0).astype(int) > compare_cut_id
        if compare_cut_id is not None
        else False
    )
    frame["changed"] = (
        ~frame["new"] & (frame["updated_cut_id"].fillna(0).astype(int) > compare_cut_id)
        if compare_cut_id is not None and "updated_cut_id" in frame
        else False
    )
    return frame


def _criteria(frame: pd.DataFrame) -> list[str]:
    """``seriousness_criteria`` of each row, computed once per distinct combination of the flag
    columns (a handful), not once per event: at 250,000 AEs the per-row dicts took seconds."""
    flags = [column for column in SERIOUSNESS_FLAGS if column in frame]
    if not flags:
        return [seriousness_criteria(dict.fromkeys(SERIOUSNESS_FLAGS.values()))] * len(frame)
    combination = frame[flags].groupby(flags, dropna=False, sort=False).ngroup().to_numpy()
    first_rows = pd.Series(range(len(frame))).groupby(combination).first()
    texts = {
        group: seriousness_criteria(
            {label: row.get(column) for column, label in SERIOUSNESS_FLAGS.items()}
        )
        for group, row in zip(
            first_rows.index,
            frame[flags].iloc[first_rows.to_numpy()].to_dict("records"),
            strict=True,
        )
    }
    return [texts[group] for group in combination.tolist()]


# The listing's columns as shown and downloaded, in order, with SDTM names where there is one.
LISTING_LABELS = {
    "new": "New",
    "changed": "Changed",
    "usubjid": "USUBJID",
    "site_id": "SITEID",
    "arm": "Arm",
    "preferred_term": "Term",
    "body_system": "AEBODSYS",
    "start_dtc": "AESTDTC",
    "study_day": "Study day",  # from the first dose (day 1), as the timeline counts
    "start_day": "AESTDY",  # as given: from RFSTDTC
    "end_dtc": "AEENDTC",
    "outcome": "AEOUT",
    "severity": "AESEV",
    "grade": "AETOXGR",
    "serious": "AESER",
    "criteria": "Seriousness criteria",
    "related": "Related",
    "relationship": "AEREL",
    "action": "AEACN",
    "treatment_emergent": "Treatment-emergent",
    "term": "AETERM",
    "decoded_term": "AEDECOD",
    "seq": "AESEQ",
}
# The listing's columns on screen: a header in words, and behind the header's help icon what the
# column holds in SDTM terms. Downloads (CSV, Excel, the pack's workbook) keep the SDTM names of
# ``LISTING_LABELS`` on purpose: a data manager matches the rows against the datasets by them.
LISTING_HEADERS: dict[str, tuple[str, str]] = {
    "New": ("New", "First held by a data cut after the compared cut"),
    "Changed": ("Changed", "Held by the compared cut and altered by a later one"),
    "USUBJID": ("Subject", "USUBJID: the unique subject identifier"),
    "SITEID": ("Site", "SITEID"),
    "Arm": ("Arm", "ACTARM, the actual arm (else ARM, the planned arm)"),
    "Term": ("Preferred term", "AEDECOD, the dictionary-derived term (else the verbatim AETERM)"),
    "AEBODSYS": ("Body system", "AEBODSYS: the system organ class"),
    "AESTDTC": ("Start date", "AESTDTC: the start date and time, as given"),
    "Study day": ("Study day", "Counted from the first dose (day 1; no day 0), as the timeline"),
    "AESTDY": ("Start day (as given)", "AESTDY: the study day as given, counted from RFSTDTC"),
    "AEENDTC": ("End date", "AEENDTC: the end date and time, as given"),
    "AEOUT": ("Outcome", "AEOUT"),
    "AESEV": ("Severity", "AESEV"),
    "AETOXGR": ("Toxicity grade", "AETOXGR: the CTCAE grade"),
    "AESER": ("Serious", "AESER"),
    "Seriousness criteria": ("Seriousness criteria", "The AES* flags set to Y"),
    "Related": ("Related", "AEREL grouped: related, not related or unknown"),
    "AEREL": ("Relationship (as recorded)", "AEREL"),
    "AEACN": ("Action taken", "AEACN: the action taken with the study treatment"),
    "Treatment-emergent": ("Treatment-emergent", "Started on or after the first dose"),
    "AETERM": ("Verbatim term", "AETERM: the reported term"),
    "AEDECOD": ("Dictionary term", "AEDECOD"),
    "AESEQ": ("Sequence", "AESEQ: the record's sequence number"),
}
# Left out of a listing where no row has a value (e.g. AETOXGR in a study graded by AESEV only).
OPTIONAL_LISTING_COLUMNS = (
    "site_id",
    "grade",
    "decoded_term",
    "body_system",
    "action",
    "seq",
    "start_day",
)


def listing_table(derived: pd.DataFrame, *, show_new: bool) -> pd.DataFrame:
    """A derived listing (``derive_listing``) as shown and downloaded: ``LISTING_LABELS`` columns
    in that order and named so; optional columns that are empty throughout are left out, and the
    New and Changed columns where there is no earlier cut to compare with (Changed also where no
    event changed: most cuts only add). A listing pooled for a blinded user has no arm column,
    and gets none."""
    keep = [
        c
        for c in LISTING_LABELS
        if c in derived.columns
        and (c not in ("new", "changed") or show_new)
        and not (c == "changed" and not derived[c].any())
        and not (
            c in OPTIONAL_LISTING_COLUMNS
            and derived[c].map(lambda v: is_missing(v) or v == "").all()
        )
    ]
    return derived[keep].rename(columns=LISTING_LABELS).reset_index(drop=True)
