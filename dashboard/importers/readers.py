"""Reading SDTM datasets: SAS transport (.xpt), CSV and CDISC Dataset-JSON 1.1 (.json).

Every reader returns the same shape: a DataFrame with upper-case column names and object values that
are ``str`` (stripped, never empty), ``float`` or ``None``. Blanks and SAS missing values become None.
Numeric SDTM variables (``--SEQ``, ``AGE``, ``--STRESN``, ``VISITNUM``, ``--DY`` ...) are made
floats, and ``--DTC`` values are checked as ISO 8601: a value that breaks either is fatal, named by
file, record and column.
"""

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat

from dashboard.importers.dates import InvalidDateError, parse_dtc
from dashboard.importers.errors import fail

# The domains the importer maps; SUPP-- datasets are read and reported, not mapped yet.
MAPPED_DOMAINS = (
    "DM",
    "TS",
    "TI",
    "TA",
    "TV",
    "IE",
    "DS",
    "AE",
    "EX",
    "SV",
    "VS",
    "LB",
    "QS",
    "SC",
    "MK",
)
FINDINGS_DOMAINS = ("VS", "LB", "QS", "SC", "MK")
SUFFIX_PREFERENCE = (".xpt", ".json", ".csv")  # where one domain comes in several formats

# Variables that must be numbers, by exact name or by suffix after the two-letter domain prefix.
_NUMERIC_NAMES = {"AGE", "VISITNUM", "VISITDY", "EXDOSE", "TAETORD"}
_NUMERIC_SUFFIXES = ("SEQ", "STRESN", "DY", "STDY", "ENDY")
# Columns that identify people: dropped with a warning, never stored (DESIGN.md security model).
_IDENTIFYING = re.compile(
    r"^(INVNAM|INVNAME|NAME|SUBJNAME|PATNAME|PTNAME|FIRSTNAME|LASTNAME|FNAME|LNAME|"
    r"INIT|INITIAL|INITIALS|SUBJINIT|PTINIT|PATINIT)$"
)
_ROW_NUMBER_COLUMN = re.compile(r"^(UNNAMED: ?\d+|INDEX|ROW|ROWNUM|ROW_NUMBER|OBS)?$")


@dataclass
class Dataset:
    """One SDTM dataset as read from one file."""

    domain: str
    path: Path
    frame: pd.DataFrame
    sha256: str
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def _domain_of(path: Path) -> str | None:
    """``DM.xpt`` / ``dm.csv`` / ``suppdm.json`` -> ``DM`` / ``DM`` / ``SUPPDM``."""
    if path.suffix.lower() not in SUFFIX_PREFERENCE:
        return None
    stem = path.stem.upper()
    if stem in MAPPED_DOMAINS or stem.startswith("SUPP") or re.fullmatch(r"[A-Z]{2}", stem):
        return stem
    return None


def find_datasets(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The dataset file of each domain in ``folder`` (file names in any case), and notes on files
    left aside (another format of the same domain, domains not mapped)."""
    if not folder.is_dir():
        raise fail("is not a folder of SDTM datasets", file=str(folder))
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        domain = _domain_of(path) if path.is_file() else None
        if domain:
            found.setdefault(domain, []).append(path)
    chosen: dict[str, Path] = {}
    notes: list[str] = []
    for domain, paths in found.items():
        paths.sort(key=lambda p: SUFFIX_PREFERENCE.index(p.suffix.lower()))
        chosen[domain] = paths[0]
        if len(paths) > 1:
            notes.append(
                f"{domain} comes as {', '.join(p.name for p in paths)}: read {paths[0].name} only"
            )
    return chosen, notes


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_xpt(path: Path) -> pd.DataFrame:
    # CDISC transport files carry cp1252 bytes (curly quotes in TS); pyreadstat reads 0 as 0.0,
    # where pandas.read_sas gives 5.4e-79.
    try:
        frame, _meta = pyreadstat.read_xport(str(path), encoding="cp1252")
    except Exception as error:  # pyreadstat raises its own types for truncated or foreign files
        raise fail(f"cannot be read as SAS transport (.xpt): {error}", file=path.name) from None
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise fail(
            f"is not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line}); save it as UTF-8",
            file=path.name,
        ) from None
    if not text.strip():
        raise fail("is empty", file=path.name)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise fail(f"cannot be read as CSV: {error}", file=path.name) from None


def _read_dataset_json(path: Path) -> pd.DataFrame:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise fail(f"is not JSON: {error}", file=path.name) from None
    if not isinstance(document, dict) or not isinstance(document.get("columns"), list):
        raise fail("is not CDISC Dataset-JSON (no 'columns' list)", file=path.name)
    columns = [str(c.get("name", "")) if isinstance(c, dict) else "" for c in document["columns"]]
    if not all(columns):
        raise fail("has a column without a name", file=path.name)
    rows = document.get("rows", [])
    if not isinstance(rows, list):
        raise fail("has 'rows' that is not a list", file=path.name)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(columns):
            raise fail(
                f"has {len(row) if isinstance(row, list) else 'no'} values where the columns say "
                f"{len(columns)}",
                file=path.name,
                record=number,
            )
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _clean_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and math.isnan(value):
        return None  # SAS missing values (. and .A-.Z) arrive as NaN
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    return str(value)


def _is_numeric_variable(column: str) -> bool:
    return column in _NUMERIC_NAMES or (len(column) > 2 and column[2:] in _NUMERIC_SUFFIXES)


def read_dataset(domain: str, path: Path) -> Dataset:
    """Read and normalise one dataset file; fatal problems raise ImportFailure."""
    if path.stat().st_size == 0:
        raise fail("is empty (0 bytes)", file=path.name)
    suffix = path.suffix.lower()
    if suffix == ".xpt":
        frame = _read_xpt(path)
    elif suffix == ".csv":
        frame = _read_csv(path)
    else:
        frame = _read_dataset_json(path)
    dataset = Dataset(domain=domain, path=path, frame=frame, sha256=sha256_of(path))
    _normalise(dataset)
    return dataset


def _normalise(dataset: Dataset) -> None:
    frame = dataset.frame
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise fail(f"has the column(s) {', '.join(duplicated)} twice", file=dataset.name)
    for column in list(frame.columns):
        if _ROW_NUMBER_COLUMN.fullmatch(column):
            frame = frame.drop(columns=column)
            dataset.warnings.append(
                f"{dataset.name}: column {column or '(unnamed)'} of row numbers dropped"
            )
        elif _IDENTIFYING.fullmatch(column):
            frame = frame.drop(columns=column)
            dataset.warnings.append(
                f"{dataset.name}: column {column} identifies people and was not loaded"
            )
    frame = frame.astype(object).map(_clean_value) if len(frame) else frame.astype(object)
    # DataFrame.map turns None back into NaN in columns it infers as numeric: undo that.
    frame = frame.astype(object).where(frame.notna(), None)
    for column in frame.columns:
        if _is_numeric_variable(column):
            # An object column, so a missing number stays None instead of becoming NaN.
            frame[column] = pd.Series(
                [
                    _as_number(value, dataset.name, record, column)
                    for record, value in enumerate(frame[column], start=1)
                ],
                index=frame.index,
                dtype=object,
            )
        elif column.endswith("DTC"):
            for record, value in enumerate(frame[column], start=1):
                if value is not None:
                    try:
                        parse_dtc(str(value))
                    except InvalidDateError as error:
                        raise fail(
                            str(error), file=dataset.name, record=record, column=column
                        ) from None
    dataset.frame = frame.reset_index(drop=True)


def _as_number(value: Any, file: str, record: int, column: str) -> float | None:
    if value is None or isinstance(value, float):
        return value
    try:
        number = float(str(value))
    except ValueError:
        raise fail(f"{value!r} is not a number", file=file, record=record, column=column) from None
    if math.isnan(number):
        return None
    return number
