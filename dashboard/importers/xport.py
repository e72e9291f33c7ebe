"""The records of a SAS transport file (XPORT version 5) read a chunk at a time, straight from
the file.

pyreadstat reads a part of a transport file by parsing the file from its start (readstat skips
the records before the part one by one): an LB of 1,400,000 records read in parts of 200,000
parsed 5.6 million records, and building each part as a pandas frame of Arrow strings took as long
again. A version 5 file's records are fixed-width, so a part is a slice of bytes: this reader
parses the header (each variable's type, width and position, from its NAMESTR record), then reads
the records ``records`` at a time with numpy, numbers converted from IBM floating point, each
distinct text decoded once. Anything else (version 8, a header it does not know, a file of several
datasets) gives ``layout_of`` None, and the caller reads with pyreadstat. The values equal
pyreadstat's on every transport file of the shared data (tests/test_xport.py).
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

_LINE = 80
_LIBRARY = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"
_MEMBER = b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
_NAMESTR = b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!"
_OBS = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"
_NUMERIC, _TEXT = 1, 2
# A missing number: its first byte "." (0x2e), "_" (0x5f) or A-Z (.A-.Z), every other byte zero.
_MISSING_FIRST_BYTES = np.array([0x2E, 0x5F, *range(0x41, 0x5B)], dtype=np.uint8)


@dataclass(frozen=True)
class Variable:
    name: str
    is_text: bool
    width: int
    position: int  # of its bytes in a record


@dataclass(frozen=True)
class Layout:
    variables: tuple[Variable, ...]
    record_length: int
    data_start: int  # the file offset of the first record
    records: int  # how many the file holds (the last line's blank padding left out)


def layout_of(path: Path) -> Layout | None:
    """The file's variables and records where it is a version 5 file of one dataset with the
    header this reader knows; None otherwise."""
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
        size = handle.seek(0, 2)
    if not head.startswith(_LIBRARY) or head[3 * _LINE :].find(_MEMBER) != 0:
        return None
    member = head[3 * _LINE : 4 * _LINE]
    namestr_length = int(member[74:78]) if member[74:78].strip().isdigit() else 0
    namestr_at = 7 * _LINE
    if namestr_length not in (136, 140) or not head[namestr_at:].startswith(_NAMESTR):
        return None
    count = int(head[namestr_at + 54 : namestr_at + 58])
    start = namestr_at + _LINE
    end = start + count * namestr_length
    obs_at = end + (-end % _LINE)
    if len(head) < obs_at + _LINE or not head[obs_at:].startswith(_OBS):
        return None
    variables = []
    for n in range(count):
        namestr = head[start + n * namestr_length : start + (n + 1) * namestr_length]
        kind, _hash, width = struct.unpack(">hhh", namestr[0:6])
        (position,) = struct.unpack(">i", namestr[84:88])
        if kind not in (_NUMERIC, _TEXT) or width <= 0 or (kind == _NUMERIC and width > 8):
            return None
        name = namestr[8:16].decode("ascii", "replace").strip()
        variables.append(Variable(name, kind == _TEXT, width, position))
    record_length = max((v.position + v.width for v in variables), default=0)
    if record_length <= 0 or head.find(_MEMBER, obs_at) >= 0:
        return None  # no record to read, or a second dataset in the file
    data_start = obs_at + _LINE
    records = (size - data_start) // record_length
    with path.open("rb") as handle:
        # The last line is padded with blanks: a "record" of blanks there is padding.
        while records and data_start + records * record_length > size - _LINE:
            handle.seek(data_start + (records - 1) * record_length)
            if handle.read(record_length).strip(b" "):
                break
            records -= 1
    return Layout(tuple(variables), record_length, data_start, records)


def read_parts(path: Path, layout: Layout, records: int) -> Iterator[pd.DataFrame]:
    """The file's records, ``records`` at a time, as pyreadstat gives them: numbers as floats
    (NaN where missing), text as str without trailing blanks. The first part even where the file
    holds none (it names the columns). Text is read as UTF-8 where a part's texts are valid UTF-8,
    else as cp1252."""
    with path.open("rb") as handle:
        handle.seek(layout.data_start)
        done = 0
        while True:
            count = min(records, layout.records - done)
            data = handle.read(count * layout.record_length)
            block = np.frombuffer(data, dtype=np.uint8).reshape(count, layout.record_length)
            if done == 0 or count:
                yield pd.DataFrame(
                    {v.name: _values(block, v) for v in layout.variables}, copy=False
                )
            done += count
            if done >= layout.records:
                return


def _values(block: np.ndarray, variable: Variable) -> np.ndarray:
    part = np.ascontiguousarray(block[:, variable.position : variable.position + variable.width])
    if variable.is_text:
        return _texts(part.view(f"S{variable.width}").ravel())
    return _ibm_numbers(part)


def _texts(raw: np.ndarray) -> np.ndarray:
    distinct, codes = np.unique(raw, return_inverse=True)
    stripped = [value.rstrip(b" ") for value in distinct.tolist()]
    try:
        texts = [value.decode("utf-8") for value in stripped]
    except UnicodeDecodeError:
        texts = [value.decode("cp1252", "replace") for value in stripped]
    table = np.empty(len(texts), dtype=object)
    table[:] = texts
    return table[codes.ravel()]


def _ibm_numbers(part: np.ndarray) -> np.ndarray:
    """IBM System/360 floating point (a sign bit, a 7-bit base-16 exponent biased by 64, a 56-bit
    fraction; shorter widths are the leading bytes) as float64, correctly rounded."""
    rows, width = part.shape
    padded = np.zeros((rows, 8), dtype=np.uint8)
    padded[:, :width] = part
    bits = padded.view(">u8").ravel().astype(np.uint64)
    fraction = (bits & np.uint64(0x00FFFFFFFFFFFFFF)).astype(np.float64)
    exponent = ((bits >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64) - 64
    values = np.ldexp(fraction, (4 * exponent - 56).astype(np.int32))
    values[(bits >> np.uint64(63)).astype(bool)] *= -1
    missing = np.isin(padded[:, 0], _MISSING_FIRST_BYTES) & ~padded[:, 1:].any(axis=1)
    values[missing] = np.nan
    return values
