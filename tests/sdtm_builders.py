"""Builders of small SDTM packages for importer tests: a valid base package and ways to break it.

The base package is synthetic (three subjects at two sites, one screen failure with an IE record),
written as CSV unless a test asks for another format.
"""

from pathlib import Path

import pandas as pd

BASE: dict[str, list[dict[str, object]]] = {
    "DM": [
        {
            "STUDYID": "TINY",
            "DOMAIN": "DM",
            "USUBJID": "TINY-01-001",
            "SUBJID": "001",
            "SITEID": "01",
            "RFICDTC": "2024-01-10",
            "RFSTDTC": "2024-01-20",
            "RFXSTDTC": "2024-01-20",
            "AGE": 61,
            "AGEU": "YEARS",
            "SEX": "F",
            "ARMCD": "A",
            "ARM": "Active",
            "ACTARMCD": "A",
            "ACTARM": "Active",
            "ARMNRS": "",
            "COUNTRY": "DEU",
        },
        {
            "STUDYID": "TINY",
            "DOMAIN": "DM",
            "USUBJID": "TINY-01-002",
            "SUBJID": "002",
            "SITEID": "01",
            "RFICDTC": "2024-02-01",
            "RFSTDTC": "",
            "RFXSTDTC": "",
            "AGE": 70,
            "AGEU": "YEARS",
            "SEX": "M",
            "ARMCD": "",
            "ARM": "",
            "ACTARMCD": "",
            "ACTARM": "",
            "ARMNRS": "SCREEN FAILURE",
            "COUNTRY": "DEU",
        },
        {
            "STUDYID": "TINY",
            "DOMAIN": "DM",
            "USUBJID": "TINY-02-003",
            "SUBJID": "003",
            "SITEID": "02",
            "RFICDTC": "2024-03",
            "RFSTDTC": "2024-03-15",
            "RFXSTDTC": "2024-03-15",
            "AGE": 55,
            "AGEU": "YEARS",
            "SEX": "F",
            "ARMCD": "P",
            "ARM": "Placebo",
            "ACTARMCD": "P",
            "ACTARM": "Placebo",
            "ARMNRS": "",
            "COUNTRY": "FRA",
        },
    ],
    "TS": [
        {"STUDYID": "TINY", "TSPARMCD": "REGID", "TSVAL": "NCT00000001"},
        {"STUDYID": "TINY", "TSPARMCD": "PLANSUB", "TSVAL": "10"},
        {"STUDYID": "TINY", "TSPARMCD": "TITLE", "TSVAL": "A tiny synthetic study"},
        {"STUDYID": "TINY", "TSPARMCD": "AGEMIN", "TSVAL": "P18Y"},
        {"STUDYID": "TINY", "TSPARMCD": "DCUTDTC", "TSVAL": "2024-06-30"},
    ],
    "TI": [
        {
            "STUDYID": "TINY",
            "IETESTCD": "INCL01",
            "IETEST": "Age 18 or older",
            "IECAT": "INCLUSION",
        },
        {"STUDYID": "TINY", "IETESTCD": "EXCL01", "IETEST": "Pregnancy", "IECAT": "EXCLUSION"},
    ],
    "IE": [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-002",
            "IESEQ": 1,
            "IETESTCD": "EXCL01",
            "IETEST": "Pregnancy",
            "IECAT": "EXCLUSION",
            "IEORRES": "Y",
            "IEDTC": "2024-02-01",
        },
    ],
    "DS": [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-002",
            "DSSEQ": 1,
            "DSTERM": "SCREEN FAILURE",
            "DSDECOD": "SCREEN FAILURE",
            "DSCAT": "DISPOSITION EVENT",
            "EPOCH": "SCREENING",
            "DSSTDTC": "2024-02-03",
        },
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "DSSEQ": 1,
            "DSTERM": "COMPLETED",
            "DSDECOD": "COMPLETED",
            "DSCAT": "DISPOSITION EVENT",
            "EPOCH": "FOLLOW-UP",
            "DSSTDTC": "2024-05-20",
        },
    ],
    "AE": [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "AESEQ": 1,
            "AETERM": "HEADACHE",
            "AEDECOD": "Headache",
            "AEBODSYS": "Nervous system disorders",
            "AESEV": "MILD",
            "AESER": "N",
            "AEREL": "POSSIBLY RELATED",
            "AESTDTC": "2024-01-22",
            "AEENDTC": "2024-01-23",
            "AESTDY": 3,
        },
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-02-003",
            "AESEQ": 1,
            "AETERM": "PNEUMONIA",
            "AEDECOD": "Pneumonia",
            "AEBODSYS": "Infections and infestations",
            "AESEV": "SEVERE",
            "AESER": "Y",
            "AEREL": "NOT RELATED",
            "AESTDTC": "2024-04",
            "AEENDTC": "",
            "AESTDY": "",
        },
    ],
    "VS": [
        {
            "STUDYID": "TINY",
            "USUBJID": "TINY-01-001",
            "VSSEQ": 1,
            "VSTESTCD": "WEIGHT",
            "VSTEST": "Weight",
            "VSSTRESN": 70.5,
            "VSSTRESC": "70.5",
            "VSSTRESU": "kg",
            "VISIT": "BASELINE",
            "VSDTC": "2024-01-20",
            "VSBLFL": "Y",
        },
    ],
}


def write_package(
    folder: Path,
    tables: dict[str, list[dict[str, object]]] | None = None,
    *,
    formats: dict[str, str] | None = None,
) -> Path:
    """Write ``tables`` (default: the base package) into ``folder`` as CSV (or as ``formats`` says:
    "csv", "xpt" or "json" per domain). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = BASE if tables is None else tables
    for domain, rows in tables.items():
        frame = pd.DataFrame(rows)
        kind = (formats or {}).get(domain, "csv")
        path = folder / f"{domain.lower()}.{kind}"
        if kind == "csv":
            frame.to_csv(path, index=False)
        elif kind == "xpt":
            import pyreadstat

            pyreadstat.write_xport(frame, str(path), table_name=domain, file_format_version=5)
        else:
            import json

            document = {
                "datasetJSONVersion": "1.1.0",
                "name": domain,
                "records": len(frame),
                "columns": [
                    {"itemOID": f"IT.{domain}.{c}", "name": c, "dataType": "string"}
                    for c in frame.columns
                ],
                "rows": frame.astype(object).where(frame.notna(), None).values.tolist(),
            }
            path.write_text(json.dumps(document), encoding="utf-8")
    return folder


def copy_of_base() -> dict[str, list[dict[str, object]]]:
    """A deep copy of the base package to change in one test."""
    return {domain: [dict(row) for row in rows] for domain, rows in BASE.items()}


# --- a real package cut back in time ----------------------------------------------------------

# The domains a truncated copy keeps: enough for the Enrollment page (subjects, dispositions,
# exposure, visits) and the trial design.
TRUNCATED_DOMAINS = ("dm", "ds", "ex", "sv", "ts", "ta", "te", "ti", "tv")
# DM columns that only exist once a subject is randomized (blanked for those randomized later).
_RANDOMIZATION_COLUMNS = (
    "RFSTDTC",
    "RFENDTC",
    "RFXSTDTC",
    "RFXENDTC",
    "RFPENDTC",
    "DTHDTC",
    "DTHFL",
    "ARMCD",
    "ARM",
    "ACTARMCD",
    "ACTARM",
    "ARMNRS",
    "ACTARMUD",
)


def _on_or_before(values: pd.Series, cutoff: str) -> pd.Series:
    """ISO 8601 text on or before ``cutoff`` (YYYY-MM-DD) by its first day; blanks are False."""
    text = values.fillna("").astype(str).str.strip()
    return (text != "") & (text.str[:10] <= cutoff)


def truncated_package(source: Path, folder: Path, *, cutoff: str, planned_subjects: int) -> Path:
    """Write ``source`` (an SDTM .xpt package) as it would have stood at ``cutoff`` (YYYY-MM-DD),
    as CSV in ``folder``, and return the folder.

    A subject is kept when screened by the cut-off (the earliest SV date, else the earliest DS
    date, else DMDTC: the pilot has no RFICDTC); records dated after it are dropped (undated ones
    kept). A kept subject randomized after the cut-off loses its arm and reference dates (screened,
    not yet enrolled), and a screen failure whose SCREEN FAILURE record comes later loses its
    Scrnfail arm (still in screening). TS gets DCUTDTC = ``cutoff`` and PLANSUB =
    ``planned_subjects``.
    """
    import pyreadstat

    frames = {}
    for name in TRUNCATED_DOMAINS:
        path = source / f"{name}.xpt"
        if path.is_file():
            frames[name], _ = pyreadstat.read_xport(str(path), encoding="cp1252")
    dm, ds, sv = frames["dm"], frames["ds"], frames["sv"]
    first_sv = sv[sv["SVSTDTC"].str.strip() != ""].groupby("USUBJID")["SVSTDTC"].min()
    first_ds = ds[ds["DSSTDTC"].str.strip() != ""].groupby("USUBJID")["DSSTDTC"].min()
    screened_on = dm["RFICDTC"].where(dm["RFICDTC"].str.strip() != "")
    screened_on = screened_on.fillna(dm["USUBJID"].map(first_sv))
    screened_on = screened_on.fillna(dm["USUBJID"].map(first_ds)).fillna(dm["DMDTC"])
    dm = dm[_on_or_before(screened_on, cutoff)].copy()
    later = ~_on_or_before(dm["RFSTDTC"], cutoff)
    failed_by_cut = set(
        ds.loc[
            (ds["DSDECOD"].str.upper() == "SCREEN FAILURE") & _on_or_before(ds["DSSTDTC"], cutoff),
            "USUBJID",
        ]
    )
    failure = dm["ARMCD"].str.upper() == "SCRNFAIL"
    undecided = (later & ~failure) | (failure & ~dm["USUBJID"].isin(failed_by_cut))
    for column in _RANDOMIZATION_COLUMNS:
        if column in dm.columns:
            dm.loc[undecided, column] = ""
    frames["dm"] = dm
    kept = set(dm["USUBJID"])
    dated = {"ds": "DSSTDTC", "ex": "EXSTDTC", "sv": "SVSTDTC"}
    for name, column in dated.items():
        frame = frames[name]
        blank = frame[column].fillna("").str.strip() == ""
        frames[name] = frame[
            frame["USUBJID"].isin(kept) & (blank | _on_or_before(frame[column], cutoff))
        ]
    ts = frames["ts"]
    ts = ts[~ts["TSPARMCD"].isin(["DCUTDTC", "PLANSUB", "ACTSUB"])]
    extra = pd.DataFrame(
        [
            {"STUDYID": ts["STUDYID"].iloc[0], "TSPARMCD": "DCUTDTC", "TSVAL": cutoff},
            {"STUDYID": ts["STUDYID"].iloc[0], "TSPARMCD": "PLANSUB", "TSVAL": planned_subjects},
        ]
    )
    frames["ts"] = pd.concat([ts, extra], ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder
