"""Reading SDTM datasets: SAS transport (.xpt), CSV and CDISC Dataset-JSON 1.1 (.json).

Every reader returns the same shape: a DataFrame with upper-case column names and object values that
are ``str`` (stripped, never empty), ``float`` or ``None``. Blanks and SAS missing values become None.
Numeric SDTM variables (``--SEQ``, ``AGE``, ``--STRESN``, ``VISITNUM``, ``--DY`` ...) are made
floats, and ``--DTC`` values are checked as ISO 8601 (DESIGN.md, "What is fatal"):

- a key that is not a number (``--SEQ``; ``VISITNUM`` in SV and TV; ``TAETORD`` in TA) is fatal,
  named by file, record and column: a key that cannot be read is as good as missing; so is a key
  that is not finite (``inf``, Dataset-JSON ``NaN``), and a ``--SEQ`` or ``TAETORD`` that is not a
  whole number (``2.7``: storing it as 2 would key the record on a number it does not have);
- a number stored in an integer column (``--SEQ``, ``--DY``, ``--STDY``, ``--ENDY``, ``VISITDY``,
  ``TAETORD``) that the column cannot hold is fatal: ``INTEGER_RANGE`` (PostgreSQL's INTEGER is
  32-bit; SQLite would take more), so both databases give the same answer;
- text holding a NUL byte (or half of a UTF-16 pair) is fatal in an identifying column
  (``TEXT_KEYS``) and elsewhere has those characters removed, with one warning per file and
  column: PostgreSQL refuses such text, SQLite stores it;
- ``NA`` and ``.`` (R's and SAS's missing values written as text) in a numeric column are missing,
  said once per file and column;
- any other value that is not a number, any number that is not finite or (in an integer column)
  not whole, and any ``--DTC`` that is not an ISO 8601 date (or names a day or time that does not
  exist, or a year outside ``results.dates``' window) is kept as text (a number that is not finite
  or not whole: unknown) with one warning per file and column (how many, and the first record and
  value): its number or date is unknown downstream.
"""

import codecs
import hashlib
import io
import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat

from dashboard.importers import xport
from dashboard.importers.errors import fail
from dashboard.results.dates import InvalidDateError, parse_dtc

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
    "DV",
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
# Numeric keys (SDTMIG natural keys the importer uses): a text value there is fatal. --SEQ in every
# domain; the others where they are keys.
_NUMERIC_KEYS = {"SV": {"VISITNUM"}, "TV": {"VISITNUM"}, "TA": {"TAETORD"}}
# Variables the model stores in INTEGER columns (models.py: seq, start_day, planned_day ...), and
# what such a column holds: PostgreSQL's INTEGER is 32-bit (SQLite's is 64-bit; the smaller range
# is checked so that both databases take the same packages).
_INTEGER_NAMES = {"VISITDY", "TAETORD"}
_INTEGER_SUFFIXES = ("SEQ", "DY", "STDY", "ENDY")
INTEGER_RANGE = (-(2**31), 2**31 - 1)
# Text values R and SAS write for a missing number: read as missing, said once per column.
_MISSING_MARKERS = ("NA", ".")
# Columns that identify a record (a subject, a study, a test, an arm): a NUL byte there is fatal,
# since removing it could make two records one. Elsewhere it is removed with a warning.
TEXT_KEYS = {"STUDYID", "USUBJID", "SUBJID", "SITEID", "ARMCD", "ACTARMCD", "TSPARMCD", "IETESTCD"}
_TEXT_KEY_SUFFIXES = ("TESTCD",)
# What PostgreSQL refuses in text: NUL, and lone UTF-16 surrogates (Dataset-JSON "\ud800").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Columns that identify people: dropped with a warning, never stored (DESIGN.md security model).
# Matched on the name without underscores or spaces: a person's name or initials (FULLNAME,
# PATIENT_NAME, SUBJINITIALS, INVNAM ...). SDTM variables that merely end in NAM are kept: QNAM
# (the SUPP-- qualifier's name), --NAM (the laboratory or vendor, LBNAM), and so are IDVAR,
# IDVARVAL, TSPARM, --TEST, ARMNRS, DOMAIN and a site's name.
_PERSON = (
    r"(?:SUBJ|SUBJECT|PAT|PATIENT|PT|INV|INVEST|INVESTIGATOR|PI|PHYS|PHYSICIAN|PERSON|CONTACT|"
    r"FULL|FIRST|LAST|SUR|GIVEN|MIDDLE|MAIDEN|FAMILY|BIRTH)"
)
_IDENTIFYING = re.compile(
    rf"^(?:(?:{_PERSON}|F|L|M)?NAMES?|{_PERSON}NAM|{_PERSON}?INITIALS?|{_PERSON}?INITS?)$"
)
_ROW_NUMBER_COLUMN = re.compile(r"^(UNNAMED: ?\d+|INDEX|ROW|ROWNUM|ROW_NUMBER|OBS)?$")


@dataclass
class _Tally:
    """A warning about some of a column's records, counted over every part of the file read so
    far: a file read in chunks says it once, with its count and first record in the whole file."""

    count: int
    record: int
    value: Any
    say: Callable[[int, int, Any], str]  # (count, first record, its value) -> the warning


@dataclass
class Dataset:
    """One SDTM dataset as read from one file: the whole file, or (``read_in_chunks``) one chunk
    of its records at a time."""

    domain: str
    path: Path
    frame: pd.DataFrame
    sha256: str
    offset: int = 0  # records of the file before the frame's first one
    # Warnings in the order they arose: a text said once, or a tally counted over every chunk.
    notes: dict[Any, str | _Tally] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def warnings(self) -> list[str]:
        return [
            note if isinstance(note, str) else note.say(note.count, note.record, note.value)
            for note in self.notes.values()
        ]

    def warn(self, message: str) -> None:
        """A warning said once for the file, however many chunks repeat it."""
        self.notes.setdefault(message, message)

    def tally(
        self, key: Any, count: int, record: int, value: Any, say: Callable[[int, int, Any], str]
    ) -> None:
        """Add ``count`` records to the warning ``key``; ``record`` (of the frame) is the first
        one, kept where it is the first in the file."""
        known = self.notes.get(key)
        if isinstance(known, _Tally):
            known.count += count
        else:
            self.notes[key] = _Tally(count, self.offset + record, value, say)

    def record(self, number: int) -> int:
        """The frame's record ``number`` (1-based) as the file's record number."""
        return self.offset + number


# SDTMIG 3.x, 4.1.7: a large findings domain may ship split into datasets named by the domain code
# and up to two more characters (lbch, lbhe, lbur; qscg), each with DOMAIN = LB; their SUPP--
# datasets follow the file (supplbch).
_SPLIT_FINDINGS = re.compile(rf"^({'|'.join(FINDINGS_DOMAINS)})[A-Z0-9]{{1,2}}$")


def _domain_of(path: Path) -> str | None:
    """``DM.xpt`` / ``dm.csv`` / ``suppdm.json`` / ``lbch.xpt`` -> ``DM`` / ``DM`` / ``SUPPDM`` /
    ``LB``; None for a name that is no SDTM dataset's."""
    stem = path.stem.upper()
    if stem in MAPPED_DOMAINS or stem.startswith("SUPP") or re.fullmatch(r"[A-Z]{2}", stem):
        return stem
    split = _SPLIT_FINDINGS.fullmatch(stem)
    return split.group(1) if split else None


def find_datasets(folder: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """The dataset files of each domain in ``folder`` (file names in any case): one file, or the
    files of a split findings domain (``lbch``, ``lbhe`` ... for LB) in name order; and notes on
    files left aside (another format of the same dataset, a data file whose name is no SDTM
    dataset's: named, never skipped silently)."""
    if not folder.is_dir():
        raise fail("is not a folder of SDTM datasets", file=str(folder))
    by_stem: dict[str, list[Path]] = {}
    notes: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIX_PREFERENCE:
            continue  # define.xml, a reviewer's guide: not datasets
        if _domain_of(path) is None:
            notes.append(f"{path.name}: not an SDTM dataset's name, not read")
            continue
        _check_regular_file(path)
        by_stem.setdefault(path.stem.upper(), []).append(path)
    chosen: dict[str, list[Path]] = {}
    for paths in by_stem.values():
        paths.sort(key=lambda p: SUFFIX_PREFERENCE.index(p.suffix.lower()))
        domain = _domain_of(paths[0])
        assert domain is not None
        chosen.setdefault(domain, []).append(paths[0])
        if len(paths) > 1:
            notes.append(
                f"{paths[0].stem.upper()} comes as {', '.join(p.name for p in paths)}: "
                f"read {paths[0].name} only"
            )
    return chosen, notes


def _check_regular_file(path: Path) -> None:
    """A dataset's name on something that is not a file is fatal: skipping it would read as "no AE
    domain" and record every AE as removed. A symlink to a regular file is read like the file."""
    try:
        mode = path.stat().st_mode  # follows a symlink
    except OSError as error:
        what = "a symlink to nothing" if path.is_symlink() else "not readable"
        raise fail(
            f"is {what} ({error.strerror}): a dataset must be a file", file=path.name
        ) from None
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    target = f" (a symlink to {os.readlink(path)})" if path.is_symlink() else ""
    raise fail(f"is {kind}{target}, not a file: a dataset must be a file", file=path.name)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_xpt(path: Path) -> pd.DataFrame:
    """A whole transport file (a large one read in parts and joined, ``_XPT_CHUNKED_FROM``)."""
    records = _XPT_CHUNK_RECORDS if path.stat().st_size >= _XPT_CHUNKED_FROM else None
    return pd.concat(list(_xpt_parts(path, records)), ignore_index=True)


# A transport file this large is read in parts of this many records even when it is wanted whole:
# pyreadstat builds a whole file's values as Python objects before its frame (1.2 GB of peak
# memory for a 1,400,000-record LB whose frame takes 250 MB); in parts the peak is the frame's and
# one part's. A version 5 file's parts are read by ``xport``, others' by pyreadstat, which finds
# each part by reading the file from its start.
_XPT_CHUNKED_FROM = 64 << 20  # bytes
_XPT_CHUNK_RECORDS = 300_000


def _xpt_parts(path: Path, records: int | None) -> Iterator[pd.DataFrame]:
    """The transport file's records ``records`` at a time (all at once where None); the first
    part even where it is empty (it names the columns). Once every part is read, a file that was
    cut short is fatal (``_check_xpt_complete``). In parts, a version 5 file is read by
    ``xport``, which seeks to each part; anything else by pyreadstat."""
    layout = xport.layout_of(path) if records is not None else None
    if records is not None and layout is not None:
        yield from xport.read_parts(path, layout, records)
        _check_xpt_complete(path, layout.records, layout.record_length)
        return
    offset = record_length = 0
    while True:
        frame, meta = _read_xpt_part(path, offset, records)
        record_length = sum(meta.variable_storage_width.values())
        if offset == 0 or len(frame):
            yield frame
        offset += len(frame)
        if records is None or len(frame) < records:
            break
    _check_xpt_complete(path, offset, record_length)


def _read_xpt_part(path: Path, offset: int, records: int | None) -> tuple[pd.DataFrame, Any]:
    """A transport file's text is UTF-8 where it is valid UTF-8 (pyreadstat.write_xport and newer
    tools write it), else cp1252 (what CDISC files carry: curly quotes in TS). Reading cp1252 first
    would turn UTF-8 letters into two characters each ("é" into "Ã©") without an error. A file
    read in parts is decided part by part. pyreadstat reads 0 as 0.0, where pandas.read_sas gives
    5.4e-79."""
    limit = records or 0  # pyreadstat: 0 reads every record
    try:
        return pyreadstat.read_xport(
            str(path), encoding="utf-8", row_offset=offset, row_limit=limit
        )
    except Exception as error:  # pyreadstat raises its own types for truncated or foreign files
        if "encoding" not in str(error):
            raise fail(f"cannot be read as SAS transport (.xpt): {error}", file=path.name) from None
    try:
        return pyreadstat.read_xport(
            str(path), encoding="cp1252", row_offset=offset, row_limit=limit
        )
    except Exception as error:
        raise fail(f"cannot be read as SAS transport (.xpt): {error}", file=path.name) from None


# The header line before a transport file's records (version 5, and 8/9).
_XPT_OBS_HEADERS = (
    b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!",
    b"HEADER RECORD*******OBSV8   HEADER RECORD!!!!!!!",
)
_XPT_MEMBER_HEADER = b"HEADER RECORD*******MEMB"  # MEMBER (v5) or MEMBV8: a further dataset
_XPT_LINE = 80


def _check_xpt_complete(path: Path, rows: int, record_length: int) -> None:
    """Fatal where a transport file was cut short: pyreadstat reads the whole records of a
    truncated file and drops the rest without a word (the CDISC pilot's ae.xpt cut anywhere gives
    its first records and no error).

    A transport file is made of 80-byte lines; its records (``record_length`` bytes each, the sum
    of the variables' widths) follow the OBS header line, and the last line is padded with blanks.
    So the bytes after the header must be ``rows`` records plus less than one line of blanks; any
    other size is a cut. A cut that falls exactly where a record ends on a line's end (every
    lcm(80, record length) bytes; every 80 records of the pilot's AE) leaves a file that is
    indistinguishable from a complete one: version 5 transport files do not store their number of
    records. The store's mass-removal rule catches those against an earlier cut."""
    if record_length <= 0:
        return
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
        starts = [i for i in (head.find(h) for h in _XPT_OBS_HEADERS) if i >= 0]
        if not starts or starts[0] % _XPT_LINE:
            return  # a layout this check does not know; pyreadstat read it
        data_start = min(starts) + _XPT_LINE
        size = handle.seek(0, io.SEEK_END)
        data_bytes = size - data_start
        complete = rows * record_length
        handle.seek(data_start + complete)
        tail = handle.read(_XPT_LINE) if data_bytes >= complete else b""
    if tail.startswith(_XPT_MEMBER_HEADER):
        return  # a file of several datasets: pyreadstat reads the first, which ends here
    padding = data_bytes - complete
    if data_bytes % _XPT_LINE == 0 and 0 <= padding < _XPT_LINE and not tail.strip(b" \0"):
        return
    partial = min(max(padding, 0), record_length)
    where = (
        f"inside record {rows + 1} ({partial} of its {record_length} bytes are there)"
        if partial
        else f"after record {rows:,}, not on a whole 80-byte line as a complete file does"
    )
    raise fail(
        f"cannot be read as SAS transport (.xpt): the file is cut short {where}; only its first "
        f"{rows:,} records could be read: copy or export it again",
        file=path.name,
        record=rows + 1 if partial else None,
    )


def _csv_parts(path: Path, records: int | None) -> Iterator[pd.DataFrame]:
    """A CSV file's records ``records`` at a time (all at once where None), every value as text;
    the first part even where it is empty. Checked as UTF-8 first, without holding the file."""
    _check_utf8(path)
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}
    try:
        if records is None:
            yield pd.read_csv(path, **options)
            return
        with pd.read_csv(path, chunksize=records, **options) as reader:
            first = True
            for frame in reader:
                first = False
                yield frame
            if first:  # a header and no record
                yield pd.read_csv(path, nrows=0, **options)
    except (pd.errors.ParserError, ValueError) as error:
        raise fail(f"cannot be read as CSV: {error}", file=path.name) from None


def _check_utf8(path: Path) -> None:
    """Fatal where a CSV file is not UTF-8 (naming the line) or holds nothing but blanks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, blank = 1, True
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                # error.object: the bytes decoded, the block and any character begun before it
                line += error.object[: error.start].count(b"\n")
                raise fail(
                    f"is not UTF-8 text (byte 0x{error.object[error.start]:02x} on line {line}); "
                    "save it as UTF-8",
                    file=path.name,
                ) from None
            line += block.count(b"\n")
            blank = blank and not text.lstrip("\ufeff").strip()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise fail(
                f"is not UTF-8 text (it ends inside a character, line {line}); save it as UTF-8",
                file=path.name,
            ) from None
    if blank:
        raise fail("is empty", file=path.name)


def _read_dataset_json(path: Path) -> pd.DataFrame:
    try:
        # NaN, Infinity and -Infinity (not JSON, but Python's json reads them) are kept as the
        # text they are: a NaN key is not a blank key, and the number checks name them.
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=str)
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


def _clean_column(values: pd.Series) -> pd.Series:
    """``_clean_value`` of every value, as an object column (None where blank or missing). A
    column of numbers is cleaned at once, a column of text once per distinct value (an LB of a
    million records holds a few thousand; the cleaned text is then one object per value, which
    keeps the frame small). Other columns (Dataset-JSON's mixed values) are cleaned value by value,
    since 1, 1.0 and True are one key to a dict."""
    if values.dtype.kind == "f":
        return pd.Series(
            values.astype(object).where(values.notna(), None), index=values.index, dtype=object
        )
    objects = values.astype(object)
    if set(map(type, pd.unique(objects))) <= {str, type(None)}:
        return per_distinct(objects, _clean_value)
    out = objects.map(_clean_value)
    # Series.map turns None into NaN where every value is a number or missing: undo that.
    return pd.Series(out.astype(object).where(out.notna(), None), index=values.index, dtype=object)


def per_distinct(values: pd.Series, convert: Callable[[Any], Any]) -> pd.Series:
    """``convert`` of every value, computed once per distinct value (an LB of a million records
    holds a few thousand), as an object column: None stays None, never NaN. Blanks (None, NaN)
    are one value, ``convert(None)``. By factorizing rather than by ``Series.map``, which under
    pandas 3 builds each text column as Arrow strings and back (a quarter of a chunk's time)."""
    codes, distinct = pd.factorize(values.to_numpy(dtype=object))
    table = np.empty(len(distinct) + 1, dtype=object)
    table[:-1] = [convert(value) for value in distinct]
    table[-1] = convert(None)  # code -1, a blank
    return pd.Series(table[codes], index=values.index, dtype=object)


def _is_numeric_variable(column: str) -> bool:
    return column in _NUMERIC_NAMES or (len(column) > 2 and column[2:] in _NUMERIC_SUFFIXES)


def read_dataset(domain: str, path: Path) -> Dataset:
    """Read and normalise one dataset file; fatal problems raise ImportFailure."""
    frame = next(_frames(path, None))
    dataset = Dataset(domain=domain, path=path, frame=frame, sha256=sha256_of(path))
    _normalise(dataset)
    return dataset


def _frames(path: Path, records: int | None) -> Iterator[pd.DataFrame]:
    """The file's records as frames of ``records`` records (the whole file as one frame where
    None); Dataset-JSON is always one frame: JSON cannot be read in parts without another parser."""
    if path.stat().st_size == 0:
        raise fail("is empty (0 bytes)", file=path.name)
    suffix = path.suffix.lower()
    if suffix == ".xpt":
        return _xpt_parts(path, records) if records else iter([_read_xpt(path)])
    if suffix == ".csv":
        return _csv_parts(path, records)
    return iter([_read_dataset_json(path)])


# A findings domain is read, checked and stored this many records at a time (``read_in_chunks``):
# a million LB records held at once, as Python objects, took gigabytes.
CHUNK_RECORDS = 200_000


def read_in_chunks(domain: str, path: Path, records: int | None = None) -> Iterator[Dataset]:
    """The dataset ``records`` (``CHUNK_RECORDS``) records at a time, each chunk normalised and checked as
    ``read_dataset`` does a whole file: one Dataset, its frame each chunk in turn, its ``offset``
    the records before it (fatal problems and warnings name the record in the file), its warnings
    counted over the chunks read so far. Dataset-JSON is read whole (one chunk)."""
    parts = _frames(path, records or CHUNK_RECORDS)
    dataset = Dataset(domain=domain, path=path, frame=pd.DataFrame(), sha256=sha256_of(path))
    for frame in parts:
        size = len(frame)
        dataset.frame = frame
        _normalise(dataset)
        yield dataset
        dataset.offset += size  # the chunk as read: its user may have dropped records since


def _normalise(dataset: Dataset) -> None:
    frame = dataset.frame
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        columns = "column" if len(duplicated) == 1 else "columns"
        raise fail(f"has the {columns} {', '.join(duplicated)} twice", file=dataset.name)
    for column in list(frame.columns):
        if _ROW_NUMBER_COLUMN.fullmatch(column):
            frame = frame.drop(columns=column)
            dataset.warn(f"{dataset.name}: column {column or '(unnamed)'} of row numbers dropped")
        elif _IDENTIFYING.fullmatch(re.sub(r"[^A-Z0-9]", "", column)):
            frame = frame.drop(columns=column)
            dataset.warn(f"{dataset.name}: column {column} identifies people and was not loaded")
    frame = pd.DataFrame(
        {column: _clean_column(values) for column, values in frame.items()}, index=frame.index
    )
    unstorable = any(
        _is_unstorable(value) for column in frame.columns for value in pd.unique(frame[column])
    )
    for column in frame.columns:
        if unstorable and frame[column].map(_is_unstorable).any():
            frame[column] = _storable_text(dataset, frame[column], column)
        if _is_numeric_variable(column):
            frame[column] = _numbers(dataset, frame[column], column)
        elif column.endswith("DTC"):
            _check_dates(dataset, frame[column], column)
    dataset.frame = frame.reset_index(drop=True)


def _is_numeric_key(domain: str, column: str) -> bool:
    return (len(column) > 2 and column[2:] == "SEQ") or column in _NUMERIC_KEYS.get(domain, ())


def _is_integer_variable(column: str) -> bool:
    return column in _INTEGER_NAMES or (len(column) > 2 and column[2:] in _INTEGER_SUFFIXES)


def _is_text_key(column: str) -> bool:
    return column in TEXT_KEYS or column.endswith(_TEXT_KEY_SUFFIXES)


def _is_unstorable(value: Any) -> bool:
    return isinstance(value, str) and bool(_UNSTORABLE.search(value))


def _storable_text(dataset: Dataset, values: pd.Series, column: str) -> pd.Series:
    """Text without NUL bytes or lone surrogates: fatal in an identifying column, else removed
    with one warning for the column."""
    found = [
        (record, value)
        for record, value in enumerate(values, start=1)
        if isinstance(value, str) and _UNSTORABLE.search(value)
    ]
    record, value = found[0]
    if _is_text_key(column):
        raise fail(
            f"{value!r} holds a NUL byte or an invalid character, and {column} identifies a record",
            file=dataset.name,
            record=dataset.record(record),
            column=column,
        )
    name = dataset.name
    dataset.tally(
        (column, "unstorable"),
        len(found),
        record,
        value,
        lambda count, record, value: (
            f"{name} column {column}: {_count(count)} with NUL bytes or invalid characters "
            f"(first at record {record}: {value!r}); those characters were removed"
        ),
    )
    cleaned = [
        (_UNSTORABLE.sub("", v).strip() or None) if isinstance(v, str) else v for v in values
    ]
    return pd.Series(cleaned, index=values.index, dtype=object)  # None stays None, not NaN


def _numbers(dataset: Dataset, values: pd.Series, column: str) -> pd.Series:
    """The column as floats (None where blank or unknown); text that is not a number, a number
    that is not finite, and (in --SEQ and TAETORD) one that is not whole is fatal in a key and
    otherwise unknown, with one warning for the column; a number an integer column cannot hold is
    fatal."""
    is_key = _is_numeric_key(dataset.domain, column)
    is_integer = _is_integer_variable(column)
    if _all_storable_numbers(values, is_integer=is_integer):
        return values  # nothing to read, warn about or refuse: the common case, at once
    numbers: list[Any] = []
    unreadable: list[tuple[int, Any]] = []
    unknown: list[tuple[int, Any]] = []  # numbers, but not finite (or not whole where stored whole)
    markers: Counter[str] = Counter()
    for record, value in enumerate(values, start=1):
        if isinstance(value, str) and value.upper() in _MISSING_MARKERS:
            markers[value] += 1
            numbers.append(None)
            continue
        number = _as_number(value)
        if number is _NOT_A_NUMBER:
            if is_key:
                raise fail(
                    f"{value!r} is not a number, and {column} is a key of {dataset.domain}",
                    file=dataset.name,
                    record=dataset.record(record),
                    column=column,
                )
            unreadable.append((record, value))
            numbers.append(value)
            continue
        if number is None:
            numbers.append(None)
            continue
        problem = _number_problem(number, is_integer=is_integer)
        if (
            problem == "too big"
            or (problem == "not finite" and is_key)
            or (problem == "not whole" and is_key)
        ):
            raise fail(
                _number_message(value, number, problem, column, dataset.domain),
                file=dataset.name,
                record=dataset.record(record),
                column=column,
            )
        if problem:
            unknown.append((record, value))
            numbers.append(None)
        else:
            numbers.append(number)
    name = dataset.name
    for marker, count in markers.items():
        dataset.tally(
            (column, "marker", marker),
            count,
            1,
            marker,
            lambda count, _record, marker: (
                f"{name} column {column}: {_count(count)} {marker!r} read as missing"
            ),
        )
    if unreadable:
        record, value = unreadable[0]
        dataset.tally(
            (column, "not a number"),
            len(unreadable),
            record,
            value,
            lambda count, record, value: (
                f"{name} column {column}: {_values(count)} not a number (first at record "
                f"{record}: {value!r}); kept as text, the number is unknown"
            ),
        )
    if unknown:
        record, value = unknown[0]
        kind = "not a finite whole number" if is_integer else "not a finite number"
        dataset.tally(
            (column, "unknown number"),
            len(unknown),
            record,
            value,
            lambda count, record, value: (
                f"{name} column {column}: {_values(count)} {kind} (first at record {record}: "
                f"{value!r}); the number is unknown"
            ),
        )
    # An object column, so a missing number stays None instead of becoming NaN.
    return pd.Series(numbers, index=values.index, dtype=object)


def _all_storable_numbers(values: pd.Series, *, is_integer: bool) -> bool:
    """Whether every value is a blank (None) or a float the model can store as it is: finite, and
    in an integer column whole and in ``INTEGER_RANGE``. Where not, ``_numbers`` reads the values
    one by one, with its warnings and refusals."""
    if not values.map(lambda v: v is None or type(v) is float).all():
        return False
    numbers = values.to_numpy(dtype=float, na_value=np.nan)  # None as NaN
    known = numbers[~np.isnan(numbers)]
    if not np.isfinite(known).all():
        return False
    if not is_integer:
        return True
    low, high = INTEGER_RANGE
    return bool(((known >= low) & (known <= high) & (known == np.round(known))).all())


def _number_problem(number: float, *, is_integer: bool) -> str | None:
    """What keeps a number out of the model: "not finite", "too big" (for the integer column) or
    "not whole" (in an integer column); None when it can be stored."""
    if not math.isfinite(number):
        return "not finite"
    if not is_integer:
        return None
    if not INTEGER_RANGE[0] <= number <= INTEGER_RANGE[1]:
        return "too big"
    return None if number.is_integer() else "not whole"


def _number_message(value: Any, number: float, problem: str, column: str, domain: str) -> str:
    shown = value if isinstance(value, str) else f"{number:g}"
    if problem == "too big":
        low, high = INTEGER_RANGE
        return (
            f"{shown} does not fit the database's integer column for {column} ({low:,} to {high:,})"
        )
    what = "a finite number" if problem == "not finite" else "a whole number"
    return f"{shown!r} is not {what}, and {column} is a key of {domain}"


def _check_dates(dataset: Dataset, values: pd.Series, column: str) -> None:
    """Warn (once for the column) about --DTC values that are not ISO 8601 dates; they stay text."""
    problems: dict[str, str] = {}
    for value in pd.unique(values.dropna()):
        try:
            parse_dtc(str(value))
        except InvalidDateError as error:
            problems[str(value)] = str(error)
    if not problems:
        return
    records = [n for n, v in enumerate(values, start=1) if v is not None and str(v) in problems]
    first = values.iloc[records[0] - 1]
    name = dataset.name
    dataset.tally(
        (column, "date"),
        len(records),
        records[0],
        problems[str(first)],
        lambda count, record, problem: (
            f"{name} column {column}: {_values(count)} not a valid ISO 8601 date (first at "
            f"record {record}: {problem}); kept as text, the date is unknown"
        ),
    )


def _values(count: int) -> str:
    return "1 value is" if count == 1 else f"{count:,} values are"


def _count(count: int) -> str:
    return "1 value" if count == 1 else f"{count:,} values"


_NOT_A_NUMBER = object()  # what _as_number gives for text that is not a number


def _as_number(value: Any) -> Any:
    """A float, None for a blank (or NaN), or ``_NOT_A_NUMBER``."""
    if value is None or isinstance(value, float):
        return value  # a float NaN is a SAS missing value, already None (_clean_value)
    try:
        # Text NaN ("NaN" in CSV, Dataset-JSON's NaN constant) stays NaN: not a blank, so a key
        # holding it is named (a SAS missing value is a float NaN and became None before).
        return float(str(value))
    except ValueError:
        return _NOT_A_NUMBER
