"""Reading a CSV file people made or exported: UTF-8 (a byte-order mark is allowed), strict quoting,
every problem named by file and row as a spreadsheet numbers it (the header is row 1)."""

import csv
import io
from pathlib import Path

from dashboard.importers.errors import fail


def read_file(path: Path, label: str, *, kind: str = "a CSV file") -> bytes:
    """A file's bytes; fatal, plainly, where it is missing, a folder or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file", file=label) from None
    except IsADirectoryError:
        raise fail(f"is a folder, not {kind}", file=label) from None
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror or error})", file=label) from None


def read_text(path: Path, label: str) -> str:
    data = read_file(path, label)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = 1 + data[: error.start].count(b"\n")
        raise fail(
            f"is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); save it as "
            "UTF-8 CSV",
            file=label,
        ) from None


def csv_records(text: str, label: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error as error:
        raise fail(f"cannot be read as CSV: {error}", file=label, row=len(records) + 1) from None
    return records
