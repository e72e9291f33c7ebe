"""Map an SDTM package onto the data model: a ``Package`` of plain row dicts, checked, not yet stored.

The figure definitions of DESIGN.md decide who is screened, screen-failed and enrolled
(``metrics.population``); this module only gathers the inputs. What is fatal and what is a warning
follows DESIGN.md's contract: fatal are no DM, a missing key column, duplicate USUBJID in DM,
duplicate USUBJID + AESEQ in AE, a record whose USUBJID is not in DM, and a file that cannot be read;
everything else is a warning stored on the DataCut. Issue #17 adds, as readings of those: two DM
USUBJIDs that differ only in case, spaces or invisible characters are duplicates (a near match is
named where a subject is not in DM); a STUDYID other than DM's is fatal (a package is one study's
snapshot); so are a blank ``--study-id``, a study id shaped like an NCT id that is not one, and a
``--cutoff`` outside the plausible years. The readers check keys, numbers and text
(``readers``).
"""

import datetime as dt
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dashboard.importers.errors import fail
from dashboard.importers.readers import (
    FINDINGS_DOMAINS,
    INTEGER_RANGE,
    Dataset,
    find_datasets,
    per_distinct,
    read_dataset,
    read_in_chunks,
)
from dashboard.metrics.population import DispositionEvent, classify_subject, subject_status
from dashboard.metrics.visits import is_conditional_visit
from dashboard.results.dates import (
    EARLIEST_YEAR,
    duration_in_years,
    known_date,
    latest_year,
    parse_dtc,
)
from dashboard.views.format import plural

# Key columns per domain: a file without them cannot be mapped (fatal).
REQUIRED_COLUMNS = {
    "DM": ("USUBJID",),
    "TS": ("TSPARMCD", "TSVAL"),
    "TI": ("IETESTCD", "IECAT"),
    "TA": ("ARMCD",),
    "TV": ("VISITNUM",),
    "IE": ("USUBJID", "IETESTCD"),
    "DS": ("USUBJID", "DSDECOD"),
    "AE": ("USUBJID", "AETERM"),
    "DV": ("USUBJID", "DVTERM"),
    "EX": ("USUBJID", "EXTRT"),
    "SV": ("USUBJID", "VISIT"),
    **{d: ("USUBJID", f"{d}TESTCD") for d in FINDINGS_DOMAINS},
}
# What a dashboard figure cannot be without (shown on the pages instead of a zero).
DOMAIN_PURPOSE = {
    "IE": "failures by criterion unknown",
    "TI": "criteria wording unknown",
    "DS": "screen failures by DS and completion/discontinuation unknown",
    "AE": "adverse events unknown",
    "EX": "exposure unknown (safety counts use every AE)",
    "SV": "visits unknown",
    "DV": "protocol deviations unknown (protocol-deviation KRIs are not computed)",
}
# How important a deviation is, from DVCAT / DVSCAT wording (SDTM has no standard flag for it):
# the negative wording first, since "NON-IMPORTANT" contains "IMPORTANT".
_NOT_IMPORTANT_WORDS = ("NON-IMPORTANT", "NOT IMPORTANT", "MINOR")
_IMPORTANT_WORDS = ("MAJOR", "IMPORTANT", "CRITICAL")
_NOT_MET = {"INCLUSION": {"N", "NO"}, "EXCLUSION": {"Y", "YES"}}
_OPEN_LABEL = {"", "NONE", "OPEN", "OPEN LABEL", "OPEN-LABEL"}
# A study id written as a ClinicalTrials.gov id must be one: NCT and eight digits.
_NCT_LIKE = re.compile(r"NCT[0-9]*", re.IGNORECASE)
_NCT_ID = re.compile(r"NCT[0-9]{8}")
_INVISIBLE = ("Cc", "Cf", "Zs", "Zl", "Zp")  # controls, zero-width and format characters, spaces
_NEAR = "differs only in case, spaces or invisible characters"
# TS parameters that say how the study is blinded: TBLIND (SDTM controlled terminology), then the
# names seen in older or home-made TS datasets.
_BLINDING_PARAMETERS = ("TBLIND", "BLIND", "BLINDING", "MASKING")
_UNKNOWN_BLINDING = (
    "blinding unknown, treated as blinded (figures by arm only for unblinded users) until the "
    "registry record or an admin says the study is open label"
)
# An age written out ("50 years", "50 Years", "18 months") or a bare number of years ("50").
_AGE_WORDS = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:(year|month|week|day)s?)?$", re.IGNORECASE)
_PER_YEAR = {"year": 1.0, "month": 12.0, "week": 52.1775, "day": 365.25}


@dataclass
class Package:
    """Everything one SDTM package holds for the model, as plain dicts keyed by model column."""

    study_id: str
    study: dict[str, Any]
    sites: list[dict[str, Any]]
    arms: list[dict[str, Any]]
    criteria: list[dict[str, Any]]  # code, protocol_version, category, text, seq
    subjects: list[dict[str, Any]]  # with "siteid" instead of site_pk
    eligibility: list[dict[str, Any]]  # with usubjid, code, protocol_version
    dispositions: list[dict[str, Any]]  # with usubjid, natural_key
    # The findings domains' files, read while they are stored (``stream_findings``): an LB can
    # hold millions of records. Their warnings, row counts and sources join the package's then.
    # A domain shipped split (lbch, lbhe, lbur) has several files, read in turn.
    findings_files: dict[str, list[Path]]
    adverse_events: list[dict[str, Any]]  # with usubjid, natural_key
    deviations: list[dict[str, Any]]  # with usubjid
    exposures: list[dict[str, Any]]  # with usubjid
    visits: list[dict[str, Any]]  # with usubjid
    domains: tuple[str, ...]
    sources: list[dict[str, Any]]
    row_counts: dict[str, int]
    cutoff_date: dt.date | None
    warnings: list[str] = field(default_factory=list)
    # TV: the planned visits (visit_num, visit, arm_code, planned_day, start_rule, is_conditional);
    # empty without TV, and then the study keeps the schedule it has.
    planned_visits: list[dict[str, Any]] = field(default_factory=list)
    # What reading the findings needs from the rest: DM's USUBJIDs (by ``_subject_key``) and
    # STUDYIDs, whether the cut-off is the latest date in the data, the files' order.
    subject_keys: dict[str, str] = field(default_factory=dict)
    study_ids: set[str] = field(default_factory=set)
    cutoff_from_data: bool = False
    file_order: list[str] = field(default_factory=list)
    # Findings domains without a baseline flag (--BLFL, --LOBXFL): known once they are read.
    unflagged_findings: set[str] = field(default_factory=set)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        # A whole number as an integer (a numeric id 1000000 is "1000000", not "1e+06").
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _int(value: Any) -> int | None:
    """A number as an integer; None for a blank or for text the reader kept (not a number)."""
    return int(value) if isinstance(value, float) and math.isfinite(value) else None


def _records(dataset: Dataset) -> Iterable[tuple[int, dict[str, Any]]]:
    """(1-based record number, row as dict) for every record."""
    columns = list(dataset.frame.columns)
    for number, values in enumerate(dataset.frame.itertuples(index=False, name=None), start=1):
        yield number, dict(zip(columns, values, strict=True))


class _SeenRecords:
    """Exact duplicate records of one file, read whole or in chunks: every record's 64-bit hash
    of its values as text is kept (8 bytes a record, where the records themselves are gone), and
    a record whose hash was seen before is a repeat. Two different records share a hash with a
    chance of about n² / 2⁶⁵: 1 in 10 million for a million records."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.repeats = 0
        self.first_repeats: list[int] = []  # record numbers in the file, the first ten

    def drop_repeats(self, dataset: Dataset) -> None:
        frame = dataset.frame
        if frame.empty:
            return
        text = pd.DataFrame({column: per_distinct(values, str) for column, values in frame.items()})
        hashes = pd.util.hash_pandas_object(text, index=False).to_numpy()
        repeated = pd.Series(hashes).duplicated(keep="first").to_numpy()
        if len(self.hashes):
            repeated = repeated | np.isin(hashes, self.hashes)
        self.hashes = np.concatenate([self.hashes, hashes[~repeated]])
        if repeated.any():
            numbers = np.flatnonzero(repeated) + 1
            self.repeats += len(numbers)
            shown = numbers[: 10 - len(self.first_repeats)]
            self.first_repeats += [dataset.record(int(n)) for n in shown]
            dataset.frame = frame[~repeated].reset_index(drop=True)

    def warn(self, dataset: Dataset, warnings: list[str]) -> None:
        if self.repeats:
            shown = ", ".join(map(str, self.first_repeats))
            warnings.append(
                f"{dataset.name}: {plural(self.repeats, 'exact duplicate record')} kept once "
                f"(records {shown}{' ...' if self.repeats > 10 else ''})"
            )


def _drop_exact_duplicates(dataset: Dataset, warnings: list[str]) -> None:
    seen = _SeenRecords()
    seen.drop_repeats(dataset)
    seen.warn(dataset, warnings)


def read_package(
    folder: Path, *, study_id: str | None = None, cutoff: dt.date | None = None
) -> Package:
    """Read, check and map the SDTM datasets in ``folder``. Raises ImportFailure on a fatal problem."""
    if cutoff is not None and not EARLIEST_YEAR <= cutoff.year <= latest_year():
        raise fail(
            f"--cutoff {cutoff} is not a plausible date (year outside "
            f"{EARLIEST_YEAR}-{latest_year()})"
        )
    paths, warnings = find_datasets(folder)
    if "DM" not in paths:
        raise fail("no DM dataset (dm.xpt, dm.csv or dm.json): DM is required", file=str(folder))
    datasets: dict[str, Dataset] = {}
    findings_files = {d: files for d, files in paths.items() if d in FINDINGS_DOMAINS}
    for domain, files in paths.items():
        if domain in findings_files:
            continue
        # Only a findings domain is split across files (``find_datasets``).
        (path,) = files
        dataset = read_dataset(domain, path)
        warnings.extend(dataset.warnings)
        _check_required_columns(dataset)
        _drop_exact_duplicates(dataset, warnings)
        datasets[domain] = dataset
    unmapped = sorted(d for d in datasets if d not in REQUIRED_COLUMNS)
    if unmapped:
        warnings.append(f"read but not mapped yet: {', '.join(unmapped)}")
    for domain, purpose in DOMAIN_PURPOSE.items():
        if domain not in datasets:
            warnings.append(f"no {domain} domain: {purpose}")

    dm = datasets["DM"]
    resolved_study_id = _study_id(dm, study_id)
    usubjids = _check_dm_keys(dm)
    study_ids = _study_ids(dm)
    for dataset in datasets.values():
        if dataset.domain != "DM" and "USUBJID" in dataset.frame.columns:
            _check_subjects_known(dataset, usubjids)
        if dataset.domain != "DM":
            _check_same_study(dataset, study_ids)

    study = _study_from_ts(datasets.get("TS"), warnings)
    criteria = _criteria(datasets.get("TI"), datasets.get("IE"), warnings)
    ds_records = _dispositions(datasets.get("DS"), warnings)
    eligibility = _eligibility(datasets.get("IE"), criteria, warnings)
    row_counts = {domain: len(dataset.frame) for domain, dataset in datasets.items()}
    sources = [
        {"file": d.name, "domain": d.domain, "sha256": d.sha256, "records": len(d.frame)}
        for d in datasets.values()
    ]
    adverse_events = _adverse_events(datasets.get("AE"), warnings)
    deviations = _deviations(datasets.get("DV"), warnings)
    exposures = _exposures(datasets.get("EX"))
    visits = _visits(datasets.get("SV"), datasets.get("TV"), warnings)
    subjects = _subjects(dm, ds_records, visits, exposures, warnings)
    sites = _sites(subjects)
    arms = _arms(datasets.get("TA"), subjects)

    ts_cutoff = study.pop("cutoff_date", None)
    if ts_cutoff and cutoff and ts_cutoff != cutoff:
        warnings.append(f"TS DCUTDTC {ts_cutoff} is used as the cut-off, not --cutoff {cutoff}")
    # The latest date in the data is the cut-off only without TS DCUTDTC or --cutoff; the
    # findings' dates join it as they are read.
    cutoff_from_data = not (ts_cutoff or cutoff)
    cutoff_date = ts_cutoff or cutoff or _latest_date(datasets)
    return Package(
        study_id=resolved_study_id,
        study=study,
        sites=sites,
        arms=arms,
        criteria=criteria,
        subjects=subjects,
        eligibility=eligibility,
        dispositions=ds_records,
        findings_files=findings_files,
        adverse_events=adverse_events,
        deviations=deviations,
        exposures=exposures,
        visits=visits,
        domains=tuple(sorted([*datasets, *findings_files])),
        sources=sources,
        row_counts=row_counts,
        cutoff_date=cutoff_date,
        warnings=warnings,
        planned_visits=_planned_visits(datasets.get("TV"), warnings),
        subject_keys=usubjids,
        study_ids=study_ids,
        cutoff_from_data=cutoff_from_data,
        file_order=list(paths),
    )


def stream_findings(package: Package) -> Iterator[pd.DataFrame]:
    """The package's findings (``FINDING_COLUMNS``), a chunk of one domain's records at a time,
    each chunk checked as ``read_package`` checks a whole dataset (a fatal problem raises
    ImportFailure part-way: the caller writes in one transaction). Once every chunk is read, the
    package's warnings, row counts, sources and cut-off take in the findings domains."""
    latest: dt.date | None = None
    for domain, files in package.findings_files.items():
        records = 0  # the domain's, over its files
        for path in files:
            seen = _SeenRecords()
            in_file = 0
            dataset = None
            for dataset in read_in_chunks(domain, path):
                if path.stem.upper() != domain:  # first: another domain lacks LB's columns
                    _check_split_domain(dataset)
                if dataset.offset == 0:
                    _check_required_columns(dataset)
                    if domain != "SC" and not {f"{domain}BLFL", f"{domain}LOBXFL"} & set(
                        dataset.frame.columns
                    ):
                        package.unflagged_findings.add(domain)
                seen.drop_repeats(dataset)
                _check_subjects_known(dataset, package.subject_keys)
                _check_same_study(dataset, package.study_ids)
                if package.cutoff_from_data:
                    latest = _later(latest, _latest_date({domain: dataset}))
                in_file += len(dataset.frame)
                yield _findings(dataset)
            assert dataset is not None  # read_in_chunks gives a file's first chunk, empty or not
            package.warnings.extend(dataset.warnings)
            seen.warn(dataset, package.warnings)
            package.sources.append(
                {
                    "file": dataset.name,
                    "domain": domain,
                    "sha256": dataset.sha256,
                    "records": in_file,
                }
            )
            records += in_file
        package.row_counts[domain] = records
    # In the files' order, as a package read whole lists them.
    order = {domain: n for n, domain in enumerate(package.file_order)}
    package.row_counts = dict(sorted(package.row_counts.items(), key=lambda d: order[d[0]]))
    package.sources.sort(key=lambda source: order[source["domain"]])
    if package.cutoff_from_data:
        package.cutoff_date = _later(package.cutoff_date, latest)


def _check_split_domain(dataset: Dataset) -> None:
    """A file read as part of a split domain (``lbch.xpt`` as LB) must say so in DOMAIN: a file
    merely named like one would otherwise add its records to LB."""
    if "DOMAIN" not in dataset.frame.columns:
        return
    values = dataset.frame["DOMAIN"]
    others = values[values.notna() & (values != "") & (values != dataset.domain)]
    if len(others):
        record = dataset.record(int(others.index[0]) + 1)
        raise fail(
            f"DOMAIN is {others.iloc[0]!r}, not {dataset.domain}: a file named as part of a "
            f"split {dataset.domain} dataset must hold {dataset.domain} records",
            file=dataset.name,
            record=record,
        )


def _check_required_columns(dataset: Dataset) -> None:
    missing = [
        c for c in REQUIRED_COLUMNS.get(dataset.domain, ()) if c not in dataset.frame.columns
    ]
    if missing:
        raise fail(
            f"required column {', '.join(missing)} is missing",
            file=dataset.name,
            column=missing[0],
        )


def _study_id(dm: Dataset, given: str | None) -> str:
    if given is not None:
        given = given.strip()
        if not given or not given.isprintable():
            raise fail(
                f"--study-id {given!r} is blank or holds invisible characters: name the study"
            )
        _check_nct_like(given, "--study-id")
        return given
    if "STUDYID" not in dm.frame.columns:
        raise fail(
            "has no STUDYID column: name the study with --study-id", file=dm.name, column="STUDYID"
        )
    ids = sorted({str(v) for v in dm.frame["STUDYID"] if v is not None})
    if len(ids) != 1:
        raise fail(
            f"holds {len(ids)} study ids ({', '.join(ids) or 'none'}): name one with --study-id",
            file=dm.name,
            column="STUDYID",
        )
    _check_nct_like(ids[0], "STUDYID", file=dm.name, column="STUDYID")
    return ids[0]


def _check_nct_like(
    study_id: str, what: str, *, file: str | None = None, column: str | None = None
) -> None:
    if _NCT_LIKE.fullmatch(study_id) and not _NCT_ID.fullmatch(study_id):
        raise fail(
            f"{what} {study_id!r} looks like a ClinicalTrials.gov id but is not NCT followed by "
            "8 digits (e.g. NCT06466850)",
            file=file,
            column=column,
        )


def _subject_key(usubjid: str) -> str:
    """USUBJID as compared for near-duplicates: case, spaces and invisible characters (zero-width
    spaces, byte order marks, controls) ignored, compatibility forms (full-width letters) folded."""
    text = unicodedata.normalize("NFKC", usubjid)
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE).casefold()


def _check_dm_keys(dm: Dataset) -> dict[str, str]:
    """DM's USUBJIDs by their ``_subject_key``. A blank, a repeated USUBJID, and two that differ
    only in case, spaces or invisible characters (the same subject typed twice, or two subjects
    no one can tell apart) are fatal."""
    seen: dict[str, tuple[int, str]] = {}
    for number, row in _records(dm):
        usubjid = row["USUBJID"]
        if usubjid is None:
            raise fail("USUBJID is blank", file=dm.name, record=number, column="USUBJID")
        value = str(usubjid)
        key = _subject_key(value)
        if key in seen:
            first, other = seen[key]
            message = (
                f"duplicate USUBJID {value} (first in record {first})"
                if other == value
                else f"duplicate USUBJID {value!r}: record {first} has {other!r}, which {_NEAR}"
            )
            raise fail(message, file=dm.name, record=number, column="USUBJID")
        seen[key] = (number, value)
    return {key: value for key, (_, value) in seen.items()}


def _check_subjects_known(dataset: Dataset, usubjids: dict[str, str]) -> None:
    """Every record's USUBJID is one of DM's (``usubjids``: by ``_subject_key``)."""
    known = set(usubjids.values())
    distinct = pd.unique(dataset.frame["USUBJID"])
    if all(value is not None and str(value) in known for value in distinct):
        return  # the common case, checked once per subject; else find the first record below
    for n, value in enumerate(dataset.frame["USUBJID"], start=1):
        number = dataset.record(n)
        if value is None:
            raise fail("USUBJID is blank", file=dataset.name, record=number, column="USUBJID")
        if str(value) not in known:
            near = usubjids.get(_subject_key(str(value)))
            hint = f" (near match: DM has {near!r}, and {str(value)!r} {_NEAR})" if near else ""
            raise fail(
                f"subject {value} is not in DM{hint}",
                file=dataset.name,
                record=number,
                column="USUBJID",
            )


def _study_ids(dm: Dataset) -> set[str]:
    """DM's STUDYIDs (none where DM has no STUDYID column)."""
    if "STUDYID" not in dm.frame.columns:
        return set()
    return {str(v) for v in dm.frame["STUDYID"] if v is not None}


def _check_same_study(dataset: Dataset, dm_ids: set[str]) -> None:
    """Every record's STUDYID is DM's: a package mixing studies is not one study's snapshot."""
    if "STUDYID" not in dataset.frame.columns or not dm_ids:
        return
    values = dataset.frame["STUDYID"]
    other = values.notna() & ~values.astype(str).isin(dm_ids)
    if other.any():
        number = int(other.to_numpy().argmax()) + 1
        raise fail(
            f"STUDYID {str(values.iloc[number - 1])!r} is not DM's "
            f"({', '.join(map(repr, sorted(dm_ids)))})",
            file=dataset.name,
            record=dataset.record(number),
            column="STUDYID",
        )


def _study_from_ts(ts: Dataset | None, warnings: list[str]) -> dict[str, Any]:
    """Study fields from TS (first value of each parameter); unreadable values are warnings.

    Without TS, or without a blinding parameter in it, the study's blinding is not set: unknown,
    which counts as blinded (DESIGN.md security model), and a warning says so.
    """
    if ts is None:
        warnings.append(f"no TS domain: {_UNKNOWN_BLINDING}; no registry id, target or ages")
        return {}
    values: dict[str, str | None] = {}
    null_flavours: dict[str, str | None] = {}
    for _, row in _records(ts):
        code = _text(row["TSPARMCD"])
        if code and code not in values:
            values[code] = _text(row["TSVAL"])
            null_flavours[code] = _text(row.get("TSVALNF"))
    study: dict[str, Any] = {}
    if values.get("REGID"):
        study["registry_id"] = values["REGID"]
    for code, key in (
        ("TITLE", "title"),
        ("SPONSOR", "sponsor"),
        ("TPHASE", "phase"),
        ("INDIC", "condition"),
        ("TRT", "intervention"),
    ):
        if values.get(code):
            study[key] = values[code]
    if values.get("PLANSUB"):
        try:
            planned = int(float(str(values["PLANSUB"])))  # OverflowError for inf
            if not INTEGER_RANGE[0] <= planned <= INTEGER_RANGE[1]:
                raise ValueError("too big for the database's integer column")
            study["planned_enrollment"] = planned
        except (ValueError, OverflowError):
            warnings.append(f"TS PLANSUB {values['PLANSUB']!r} is not a number: kept out")
    for code, key in (("AGEMIN", "min_age"), ("AGEMAX", "max_age")):
        study[key] = _ts_age(code, values.get(code), warnings)
        if values.get(code) is None and null_flavours.get(code) == "PINF":
            study[key] = None  # positive infinity: no limit
    blinding_code = next((c for c in _BLINDING_PARAMETERS if values.get(c)), None)
    if blinding_code is None:
        warnings.append(f"{ts.name}: no TBLIND parameter: {_UNKNOWN_BLINDING}")
    else:
        blinding = str(values[blinding_code])
        study["masking"] = blinding
        study["is_blinded"] = blinding.strip().upper() not in _OPEN_LABEL
        if blinding_code != "TBLIND":
            warnings.append(
                f"{ts.name}: blinding read from {blinding_code} {blinding!r} (SDTM names it TBLIND)"
            )
    if values.get("RANDOM"):
        study["allocation"] = "RANDOMIZED" if values["RANDOM"] == "Y" else "NON_RANDOMIZED"
    if values.get("SEXPOP"):
        study["sex"] = {"BOTH": "ALL", "F": "FEMALE", "M": "MALE"}.get(
            str(values["SEXPOP"]), values["SEXPOP"]
        )
    design = [v for v in (values.get("INTMODEL"), values.get("TBLIND")) if v]
    if design:
        study["design"] = ", ".join(v.capitalize() for v in design)
    for code, key in (
        ("SSTDTC", "planned_start"),
        ("SENDTC", "planned_end"),
        ("DCUTDTC", "cutoff_date"),
    ):
        raw = values.get(code)
        try:
            parsed = parse_dtc(raw)
        except ValueError:
            warnings.append(f"TS {code} {raw!r} is not an ISO 8601 date: ignored")
            continue
        if parsed:
            study[key] = parsed
    return study


def _ts_age(code: str, raw: str | None, warnings: list[str]) -> float | None:
    """TS AGEMIN / AGEMAX in years: an ISO 8601 duration (``P50Y``) as SDTM has it, else an age
    written out (``50 years``, ``50 Years``, ``50``: read, with a warning); None where blank or
    unreadable (kept out, with a warning)."""
    try:
        return duration_in_years(raw)
    except ValueError:
        pass
    match = _AGE_WORDS.match((raw or "").strip())
    if match is None:
        limit = "min age" if code == "AGEMIN" else "max age"
        warnings.append(f"TS {code} {raw!r} is not an ISO 8601 duration: no {limit}")
        return None
    unit = (match.group(2) or "year").lower()
    years = float(match.group(1)) / _PER_YEAR[unit]
    warnings.append(
        f"TS {code} {raw!r} is not an ISO 8601 duration "
        f"(P{match.group(1)}{unit[0].upper()}) but was read: {years:g} years"
    )
    return years


def _criteria(ti: Dataset | None, ie: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    """Criteria from TI (one per code and protocol version); IE codes TI lacks are added from IE."""
    criteria: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    if ti is not None:
        for number, row in _records(ti):
            code = _text(row["IETESTCD"])
            if code is None:
                raise fail("IETESTCD is blank", file=ti.name, record=number, column="IETESTCD")
            version = _text(row.get("TIVERS")) or ""
            if (code, version) in seen:
                warnings.append(f"{ti.name}: criterion {code} {version} listed twice: kept once")
                continue
            seen.add((code, version))
            criteria.append(
                {
                    "code": code,
                    "protocol_version": version,
                    "category": (_text(row["IECAT"]) or "").upper(),
                    "text": _text(row.get("IETEST")) or _text(row.get("TIRL")) or code,
                    "seq": len(criteria) + 1,
                    "rule": _text(row.get("TIRL")),
                }
            )
    if ie is not None:
        codes = {c["code"] for c in criteria}
        # The first record of each code is enough (IE can hold 200,000 records of 20 codes).
        first_of_code = Dataset(
            domain=ie.domain,
            path=ie.path,
            frame=ie.frame.drop_duplicates("IETESTCD"),
            sha256=ie.sha256,
        )
        for _, row in _records(first_of_code):
            code = _text(row["IETESTCD"])
            if code and code not in codes:
                codes.add(code)
                criteria.append(
                    {
                        "code": code,
                        "protocol_version": "",
                        "category": (_text(row.get("IECAT")) or "").upper(),
                        "text": _text(row.get("IETEST")) or code,
                        "seq": len(criteria) + 1,
                        "rule": None,
                    }
                )
                warnings.append(f"criterion {code} is in IE but not in TI: wording taken from IE")
    return criteria


def _eligibility(
    ie: Dataset | None, criteria: list[dict[str, Any]], warnings: list[str]
) -> list[dict[str, Any]]:
    """One row per criterion a subject did not meet (IE semantics)."""
    if ie is None:
        return []
    versions: dict[str, list[str]] = defaultdict(list)
    category = {}
    for criterion in criteria:
        versions[criterion["code"]].append(criterion["protocol_version"])
        category[criterion["code"]] = criterion["category"]
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    several_versions: set[str] = set()
    # Per-record findings, one warning each kind (an IE holding every criterion, met or not, would
    # otherwise give a line per record).
    met: list[str] = []
    twice: list[str] = []
    # The columns it reads, as plain lists (a dict per record cost seconds at 200,000 records),
    # and each date parsed once (IEDTC repeats: screening days).
    frame = ie.frame
    blanks = [None] * len(frame)
    usubjids, codes, original, standard, dtcs = (
        frame[c].tolist() if c in frame.columns else blanks
        for c in ("USUBJID", "IETESTCD", "IEORRES", "IESTRESC", "IEDTC")
    )
    dates: dict[str | None, dt.date | None] = {}
    for number, (usubjid_value, code_value, orres, stresc, dtc) in enumerate(
        zip(usubjids, codes, original, standard, dtcs, strict=True), start=1
    ):
        usubjid, code = str(usubjid_value), _text(code_value)
        if code is None:
            raise fail("IETESTCD is blank", file=ie.name, record=number, column="IETESTCD")
        result = (_text(orres) or _text(stresc) or "").upper()
        cat = category.get(code, "")
        if result and cat in _NOT_MET and result not in _NOT_MET[cat]:
            met.append(
                f"{ie.name}, record {number}: {code} is recorded as met ({result}); "
                "IE holds criteria not met, so it is not counted"
            )
            continue
        # IE does not say which protocol version a subject was screened under: the latest version
        # that has the code is taken.
        version = versions[code][-1]
        if len(versions[code]) > 1:
            several_versions.add(code)
        if (usubjid, code) in seen:
            twice.append(f"{ie.name}, record {number}: {usubjid} fails {code} twice: kept once")
            continue
        seen.add((usubjid, code))
        assessed = _text(dtc)
        if assessed not in dates:
            dates[assessed] = known_date(assessed)
        rows.append(
            {
                "usubjid": usubjid,
                "code": code,
                "protocol_version": version,
                "result": _text(orres),
                "assessed_dtc": assessed,
                "assessed_date": dates[assessed],
                "natural_key": f"{usubjid}/{code}/{version}",
            }
        )
    for found, kind in ((met, "recorded as met"), (twice, "repeated")):
        if found:
            more = len(found) - 1
            warnings.append(found[0] + (f" (and {more:,} more {kind})" if more else ""))
    if several_versions:
        warnings.append(
            f"IE criteria {', '.join(sorted(several_versions))} exist in several protocol versions:"
            " counted under the latest"
        )
    return rows


def _keyed(rows: list[dict[str, Any]], file: str, warnings: list[str]) -> None:
    """Make natural keys unique: a repeated key gets a suffix and a warning."""
    counts: Counter[str] = Counter()
    for row in rows:
        key = row["natural_key"]
        counts[key] += 1
        if counts[key] > 1:
            row["natural_key"] = f"{key}#{counts[key]}"
    repeated = [k for k, n in counts.items() if n > 1]
    if repeated:
        warnings.append(
            f"{file}: {plural(len(repeated), 'key')} repeated ({', '.join(repeated[:5])}): "
            "all records kept"
        )


def _dispositions(ds: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    if ds is None:
        return []
    rows = []
    for _, row in _records(ds):
        dtc = _text(row.get("DSSTDTC")) or _text(row.get("DSDTC"))
        usubjid = str(row["USUBJID"])
        seq = _int(row.get("DSSEQ"))
        term = _text(row["DSDECOD"])
        rows.append(
            {
                "usubjid": usubjid,
                "seq": seq,
                "category": _text(row.get("DSCAT")),
                "term": term,
                "verbatim": _text(row.get("DSTERM")),
                "epoch": _text(row.get("EPOCH")),
                "dtc": dtc,
                "date": known_date(dtc),
                "natural_key": f"{usubjid}/{seq}" if seq is not None else f"{usubjid}/{term}/{dtc}",
            }
        )
    _keyed(rows, ds.name, warnings)
    return rows


def _column(frame: pd.DataFrame, name: str, convert: Any = None) -> pd.Series:
    """``convert`` (default ``_text``) of every value of a column, computed once per distinct
    value; all None where the column is missing."""
    if name not in frame.columns:
        return pd.Series(None, index=frame.index, dtype=object)
    return per_distinct(frame[name], convert or _text)


def _first_of(*columns: pd.Series) -> pd.Series:
    """Per record, the first column's value that is not None (``a or b`` of texts, which are never
    empty)."""
    result = columns[0]
    for column in columns[1:]:
        result = result.where(result.notna(), column)
    return result.astype(object).where(result.notna(), None)


FINDING_COLUMNS = (
    "usubjid",
    "domain",
    "test_code",
    "test",
    "location",
    "specimen",
    "position",
    "timepoint",
    "category",
    "fasting",
    "value_num",
    "value_text",
    "unit",
    "normal_low",
    "normal_high",
    "normal_indicator",
    "visit",
    "visit_number",
    "dtc",
    "date",
    "study_day",
    "is_baseline",
    "toxicity_grade",
)


def _findings(dataset: Dataset) -> pd.DataFrame:
    """The findings of one domain as columns (``FINDING_COLUMNS``): a frame, not a dict per record,
    since an LB can hold millions of records."""
    d, frame = dataset.domain, dataset.frame
    # SDTMIG 3.3 flags the baseline as --LOBXFL (last observation before exposure), older
    # versions as --BLFL: either one marks it.
    flags = [f for f in (f"{d}BLFL", f"{d}LOBXFL") if f in frame.columns]
    test_code = _column(frame, f"{d}TESTCD")
    dtc = _column(frame, f"{d}DTC")
    # Subject characteristics (SC) are baseline by nature; others by their flag.
    is_baseline = pd.Series(d == "SC", index=frame.index)
    for flag in flags:
        is_baseline |= _column(frame, flag) == "Y"
    return pd.DataFrame(
        {
            "usubjid": _column(frame, "USUBJID", str),
            "domain": np.full(len(frame), d, dtype=object),  # not an Arrow string column
            "test_code": test_code.where(test_code.notna(), ""),
            "test": _first_of(_column(frame, f"{d}TEST"), test_code).fillna(""),
            "location": _column(frame, f"{d}LOC"),
            "specimen": _column(frame, f"{d}SPEC"),
            "position": _column(frame, f"{d}POS"),
            "timepoint": _column(frame, f"{d}TPT"),
            "category": _column(frame, f"{d}CAT"),
            "fasting": _column(frame, f"{d}FAST"),
            "value_num": _column(frame, f"{d}STRESN", _float_or_none),
            "value_text": _first_of(
                _column(frame, f"{d}STRESC"),
                _column(frame, f"{d}ORRES"),
                _column(frame, f"{d}STRESN", _text_or_none),  # a value that is no number: kept
            ),
            "unit": _first_of(_column(frame, f"{d}STRESU"), _column(frame, f"{d}ORRESU")),
            "normal_low": _column(frame, f"{d}STNRLO", _number_or_none),
            "normal_high": _column(frame, f"{d}STNRHI", _number_or_none),
            "normal_indicator": _column(frame, f"{d}NRIND"),
            "visit": _column(frame, "VISIT"),
            "visit_number": _column(frame, "VISITNUM", _float_or_none),
            "dtc": dtc,
            "date": _column(frame, f"{d}DTC", known_date),
            "study_day": _column(frame, f"{d}DY", _int_or_none),
            "is_baseline": is_baseline.astype(bool),
            "toxicity_grade": _column(frame, f"{d}TOXGR"),
        },
        columns=list(FINDING_COLUMNS),
    )


def _float_or_none(value: Any) -> float | None:
    return value if isinstance(value, float) else None


def _number_or_none(value: Any) -> float | None:
    """A normal-range limit: a number, or a number written as text (a CSV or Dataset-JSON file
    may carry --STNRLO as text); anything else (``<5``) is no limit."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, float) and value.is_integer() else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Columns that number or identify an AE record rather than describe the event: records equal in
# every other column are the same event recorded more than once, or a real repeat.
_AE_RECORD_COLUMNS = {"AESEQ", "AESPID", "AEGRPID", "AEREFID", "AELNKID", "AELNKGRP"}


def _warn_repeated_events(ae: Dataset, warnings: list[str]) -> None:
    """One warning for AE records identical but for their sequence number (and sponsor ids): they
    are loaded, as they may be real repeated events, but a reviewer should know."""
    described = [c for c in ae.frame.columns if c.upper() not in _AE_RECORD_COLUMNS]
    repeated = ae.frame[described].astype(str).duplicated(keep="first")
    if not repeated.any():
        return
    numbers = [i + 1 for i in repeated[repeated].index]
    first = ", ".join(map(str, numbers[:5])) + (" ..." if len(numbers) > 5 else "")
    seqs = ""
    if "AESEQ" in ae.frame.columns:
        shown = [
            f"{_text(ae.frame.at[i, 'USUBJID'])} AESEQ {_text(ae.frame.at[i, 'AESEQ'])}"
            for i in repeated[repeated].index[:3]
        ]
        seqs = f"; first: {', '.join(shown)}"
    warnings.append(
        f"{ae.name}: {plural(len(numbers), 'record')} identical to an earlier one but for their "
        "sequence "
        f"(records {first}{seqs}): loaded, as they may be real repeated events; check the source"
    )


def _emergent_flags(ae: Dataset, warnings: list[str]) -> list[str | None]:
    """AETRTEM per record, kept where all or most records hold Y or N (then it is the study's
    treatment-emergent rule, ``metrics.ae_rules``); None for every record otherwise."""
    if "AETRTEM" not in ae.frame.columns:
        return [None] * len(ae.frame)
    values = [(_text(v) or "").strip().upper() for v in ae.frame["AETRTEM"]]
    flagged = sum(v in ("Y", "N") for v in values)
    if flagged * 2 <= len(values):
        warnings.append(
            f"{ae.name}: AETRTEM holds Y or N in only {flagged} of {len(values)} records: not used; "
            "treatment-emergent is derived (start on or after first dose)"
        )
        return [None] * len(values)
    others = len(values) - flagged
    warnings.append(
        f"{ae.name}: treatment-emergent as flagged by the sponsor (AETRTEM) for {flagged} of "
        f"{len(values)} records"
        + (
            f"; the {others} without Y or N are derived (start on or after first dose)"
            if others
            else ""
        )
    )
    return [v if v in ("Y", "N") else None for v in values]


def _adverse_events(ae: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    if ae is None:
        return []
    _warn_repeated_events(ae, warnings)
    flags = _emergent_flags(ae, warnings)
    rows = []
    seen: dict[tuple[str, int], int] = {}
    for number, row in _records(ae):
        usubjid = str(row["USUBJID"])
        seq = _int(row.get("AESEQ"))
        if seq is not None:
            if (usubjid, seq) in seen:
                raise fail(
                    f"duplicate AESEQ {seq} for {usubjid} (first in record {seen[(usubjid, seq)]})",
                    file=ae.name,
                    record=number,
                    column="AESEQ",
                )
            seen[(usubjid, seq)] = number
        start, end = _text(row.get("AESTDTC")), _text(row.get("AEENDTC"))
        term = _text(row["AETERM"]) or ""
        rows.append(
            {
                "usubjid": usubjid,
                "seq": seq,
                "term": term,
                "decoded_term": _text(row.get("AEDECOD")),
                "body_system": _text(row.get("AEBODSYS")),
                "severity": _text(row.get("AESEV")),
                "grade": _text(row.get("AETOXGR")),
                "serious": _text(row.get("AESER")),
                "serious_death": _text(row.get("AESDTH")),
                "serious_hospitalisation": _text(row.get("AESHOSP")),
                "serious_life_threatening": _text(row.get("AESLIFE")),
                "serious_disability": _text(row.get("AESDISAB")),
                "serious_congenital": _text(row.get("AESCONG")),
                "serious_other": _text(row.get("AESMIE")),
                "serious_cancer": _text(row.get("AESCAN")),
                "serious_overdose": _text(row.get("AESOD")),
                "relationship": _text(row.get("AEREL")),
                "outcome": _text(row.get("AEOUT")),
                "action": _text(row.get("AEACN")),
                "start_dtc": start,
                "start_date": known_date(start),
                "end_dtc": end,
                "end_date": known_date(end),
                "start_day": _int(row.get("AESTDY")),
                "treatment_emergent": flags[number - 1],
                "natural_key": f"{usubjid}/{seq}"
                if seq is not None
                else f"{usubjid}/{term}/{start}",
            }
        )
    _keyed(rows, ae.name, warnings)
    return rows


def _importance(category: str | None, subcategory: str | None) -> bool | None:
    """Whether DVCAT / DVSCAT call a deviation important: False where either says non-important
    or minor, else True where either says major, important or critical, else None (not said)."""
    wording = " ".join(w for w in (category, subcategory) if w).upper()
    if any(word in wording for word in _NOT_IMPORTANT_WORDS):
        return False
    if any(word in wording for word in _IMPORTANT_WORDS):
        return True
    return None


def _deviations(dv: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    if dv is None:
        return []
    rows = []
    for _, row in _records(dv):
        start = _text(row.get("DVSTDTC"))
        category, subcategory = _text(row.get("DVCAT")), _text(row.get("DVSCAT"))
        rows.append(
            {
                "usubjid": str(row["USUBJID"]),
                "seq": _int(row.get("DVSEQ")),
                "term": _text(row["DVTERM"]) or "",
                "decoded_term": _text(row.get("DVDECOD")),
                "category": category,
                "subcategory": subcategory,
                "important": _importance(category, subcategory),
                "start_dtc": start,
                "start_date": known_date(start),
            }
        )
    unsaid = sum(r["important"] is None for r in rows)
    if unsaid:
        warnings.append(
            f"DV: {unsaid:,} {'deviation' if unsaid == 1 else 'deviations'} with no importance in "
            "DVCAT/DVSCAT "
            "(counted as not important)"
        )
    return rows


def _exposures(ex: Dataset | None) -> list[dict[str, Any]]:
    if ex is None:
        return []
    rows = []
    for _, row in _records(ex):
        start, end = _text(row.get("EXSTDTC")), _text(row.get("EXENDTC"))
        rows.append(
            {
                "usubjid": str(row["USUBJID"]),
                "treatment": _text(row["EXTRT"]) or "",
                "dose": row["EXDOSE"] if isinstance(row.get("EXDOSE"), float) else None,
                "unit": _text(row.get("EXDOSU")),
                "route": _text(row.get("EXROUTE")),
                "start_dtc": start,
                "start_date": known_date(start),
                "end_dtc": end,
                "end_date": known_date(end),
            }
        )
    return rows


def _visits(sv: Dataset | None, tv: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    if sv is None:
        return []
    planned_day: dict[float, int | None] = {}
    if tv is not None and "VISITDY" in tv.frame.columns:
        for _, row in _records(tv):
            if row["VISITNUM"] is not None:
                planned_day.setdefault(row["VISITNUM"], _int(row.get("VISITDY")))
    rows = []
    seen: Counter[tuple[str, Any]] = Counter()
    for _, row in _records(sv):
        dtc = _text(row.get("SVSTDTC"))
        visit_num = row.get("VISITNUM")
        usubjid = str(row["USUBJID"])
        seen[(usubjid, visit_num if visit_num is not None else row["VISIT"])] += 1
        rows.append(
            {
                "usubjid": usubjid,
                "visit_num": visit_num,
                "visit": _text(row["VISIT"]) or "",
                "planned_day": _int(row.get("VISITDY"))
                if row.get("VISITDY") is not None
                else planned_day.get(visit_num)
                if visit_num is not None
                else None,
                "dtc": dtc,
                "date": known_date(dtc),
            }
        )
    repeated = [key for key, n in seen.items() if n > 1]
    if repeated:
        usubjid, visit = repeated[0]
        warnings.append(
            f"{sv.name}: {plural(len(repeated), 'visit')} recorded more than once (e.g. "
            f"{usubjid} visit {_text(visit)}): all records kept"
        )
    return rows


def _planned_visits(tv: Dataset | None, warnings: list[str]) -> list[dict[str, Any]]:
    """TV as the study's planned schedule: one row per VISITNUM and arm (ARMCD blank: every arm).
    A repeated VISITNUM for the same arm is kept once, with a warning."""
    if tv is None:
        return []
    planned: dict[tuple[float, str], dict[str, Any]] = {}
    repeated = 0
    for _, row in _records(tv):
        if row["VISITNUM"] is None:
            continue
        visit_num, arm_code = float(row["VISITNUM"]), _text(row.get("ARMCD")) or ""
        if (visit_num, arm_code) in planned:
            repeated += 1
            continue
        visit = _text(row.get("VISIT")) or f"VISIT {visit_num:g}"
        start_rule = _text(row.get("TVSTRL"))
        planned[(visit_num, arm_code)] = {
            "visit_num": visit_num,
            "visit": visit,
            "arm_code": arm_code,
            "planned_day": _int(row.get("VISITDY")),
            "start_rule": start_rule,
            "is_conditional": is_conditional_visit(visit, start_rule),
        }
    if repeated:
        warnings.append(
            f"{tv.name}: {plural(repeated, 'repeated VISITNUM')} for the same arm kept once"
        )
    return sorted(planned.values(), key=lambda v: (v["arm_code"], v["visit_num"]))


def _earliest(
    dates: Iterable[tuple[dt.date | None, str | None]],
) -> tuple[str | None, dt.date | None]:
    known = [(d, t) for d, t in dates if d is not None]
    if not known:
        return None, None
    day, text = min(known, key=lambda pair: pair[0])
    return text, day


def _subjects(
    dm: Dataset,
    dispositions: list[dict[str, Any]],
    visits: list[dict[str, Any]],
    exposures: list[dict[str, Any]],
    warnings: list[str],
) -> list[dict[str, Any]]:
    ds_by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in dispositions:
        ds_by_subject[record["usubjid"]].append(record)
    sv_by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in visits:
        sv_by_subject[record["usubjid"]].append(record)
    ex_by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in exposures:
        ex_by_subject[record["usubjid"]].append(record)
    subjects = []
    for _, row in _records(dm):
        usubjid = str(row["USUBJID"])
        ds_records = ds_by_subject.get(usubjid, [])
        consent = _text(row.get("RFICDTC"))
        # Screening date (DESIGN.md): RFICDTC, else the earliest SV date, else the earliest DS
        # date, else DMDTC.
        screening_dtc, screening_date = consent, known_date(consent)
        if screening_date is None:
            for candidates in (
                [(v["date"], v["dtc"]) for v in sv_by_subject.get(usubjid, [])],
                [(d["date"], d["dtc"]) for d in ds_records],
                [(known_date(_text(row.get("DMDTC"))), _text(row.get("DMDTC")))],
            ):
                screening_dtc, screening_date = _earliest(candidates)
                if screening_date is not None:
                    break
        first_dose_dtc = _text(row.get("RFXSTDTC"))
        if first_dose_dtc is None:
            first_dose_dtc, _ = _earliest(
                (e["start_date"], e["start_dtc"]) for e in ex_by_subject.get(usubjid, [])
            )
        enrollment_dtc = _text(row.get("RFSTDTC"))
        population = classify_subject(
            arm_code=_text(row.get("ARMCD")),
            arm=_text(row.get("ARM")),
            arm_not_assigned_reason=_text(row.get("ARMNRS")),
            has_screen_failure_disposition=any(
                (d["term"] or "").upper() == "SCREEN FAILURE" for d in ds_records
            ),
            enrollment_dtc=enrollment_dtc,
        )
        status = subject_status(
            population,
            [DispositionEvent(d["category"], d["term"], d["epoch"], d["date"]) for d in ds_records],
        )
        birth = known_date(_text(row.get("BRTHDTC")))
        age = row.get("AGE")
        subjects.append(
            {
                "usubjid": usubjid,
                "subjid": _text(row.get("SUBJID")),
                "siteid": _text(row.get("SITEID")),
                "screening_dtc": screening_dtc,
                "screening_date": screening_date,
                "consent_dtc": consent,
                "enrollment_dtc": enrollment_dtc,
                "enrollment_date": known_date(enrollment_dtc),
                "first_dose_dtc": first_dose_dtc,
                "first_dose_date": known_date(first_dose_dtc),
                "arm_code": _text(row.get("ARMCD")),
                "arm": _text(row.get("ARM")),
                "actual_arm_code": _text(row.get("ACTARMCD")),
                "actual_arm": _text(row.get("ACTARM")),
                "arm_not_assigned_reason": _text(row.get("ARMNRS")),
                "population": population,
                "status": status,
                "sex": _text(row.get("SEX")),
                "age": age if isinstance(age, float) else None,
                "age_unit": _text(row.get("AGEU")),
                # No direct identifiers: a birth date is cut to its year.
                "birth_year": birth.year if birth else None,
                "race": _text(row.get("RACE")),
                "ethnicity": _text(row.get("ETHNIC")),
                "country": _text(row.get("COUNTRY")),
            }
        )
    # Said only where something was cut: a BRTHDTC that is a year already loses nothing.
    if "BRTHDTC" in dm.frame.columns and any(
        known_date(v) is not None and len(v.strip()) > 4
        for v in dm.frame["BRTHDTC"]
        if isinstance(v, str)
    ):
        warnings.append(f"{dm.name}: BRTHDTC cut to the year of birth")
    return subjects


def _sites(subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One site per SITEID, with the country most of its subjects have."""
    countries: dict[str, Counter[str]] = defaultdict(Counter)
    for subject in subjects:
        if subject["siteid"] is not None:
            countries[subject["siteid"]][subject["country"] or ""] += 1
    return [
        {"site_id": site_id, "country": counter.most_common(1)[0][0] or None}
        for site_id, counter in sorted(countries.items())
    ]


def _arms(ta: Dataset | None, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Planned arms from TA (else DM), screen-failure and not-assigned pseudo-arms left out."""
    arms: dict[str, str] = {}
    sources = [(_text(r.get("ARMCD")), _text(r.get("ARM"))) for _, r in _records(ta)] if ta else []
    sources += [(s["arm_code"], s["arm"]) for s in subjects]
    for code, name in sources:
        if code and code.upper() not in ("SCRNFAIL", "NOTASSGN") and code not in arms:
            arms[code] = name or code
    return [{"arm_code": code, "arm": name} for code, name in arms.items()]


def _later(first: dt.date | None, second: dt.date | None) -> dt.date | None:
    return max(first, second) if first and second else first or second


def _latest_date(datasets: dict[str, Dataset]) -> dt.date | None:
    latest: dt.date | None = None
    for dataset in datasets.values():
        if dataset.domain == "TS":
            continue
        for column in dataset.frame.columns:
            if column.endswith("DTC"):
                for value in pd.unique(dataset.frame[column].dropna()):
                    day = known_date(str(value))
                    if day and (latest is None or day > latest):
                        latest = day
    return latest
