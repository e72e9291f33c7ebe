"""A spreadsheet of a study's records (CSV or Excel .xlsx), without a data dictionary (issue #23).

The layout is REDCap's records export, which most hand-kept spreadsheets come close to: a header
row of field names, the record id first (or the column the mapping's ``[subject] id`` names), one
row per record (and per event, ``redcap_event_name``, where there are several), and the rows of a
repeating form (adverse events) marked by ``redcap_repeat_instrument`` and numbered by
``redcap_repeat_instance``. An .xlsx file is read from its first sheet. Answers are taken as
written: the mapping matches them as labels ("Female", "No"). Columns named for what identifies a
person (a name, initials, a birth date, an address, a phone, an e-mail) are dropped unread.
"""

import datetime as dt
from pathlib import Path
from zipfile import BadZipFile

from dashboard.importers.csvfile import csv_records, read_text
from dashboard.importers.edc import (
    DATA_ACCESS_GROUP,
    EVENT,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    Export,
    FieldDef,
    drop_identifying,
    records_from_rows,
    source,
)
from dashboard.importers.errors import fail


def _cell_text(value: object) -> str:
    """A spreadsheet cell as the text a CSV export would hold: dates as ISO dates, whole numbers
    without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(path: Path, label: str) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise fail("no such file", file=label) from None
    except (BadZipFile, KeyError, ValueError, OSError) as error:
        raise fail(f"cannot be read as an Excel .xlsx workbook ({error})", file=label) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise fail("has no sheet", file=label)
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def read_table(
    path: Path, *, record_id_field: str | None = None, label: str | None = None
) -> Export:
    """A records spreadsheet (.csv or .xlsx). Raises ImportFailure on a fatal problem."""
    label = label or path.name
    suffix = Path(label).suffix.lower() or path.suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(path, label)
    elif suffix == ".csv":
        rows = csv_records(read_text(path, label), label)
    else:
        raise fail("is not a spreadsheet: give a .csv or an Excel .xlsx file", file=label)
    header = [h.strip() for h in next((r for r in rows if any(c.strip() for c in r)), [])]
    if not header or not header[0]:
        raise fail(
            "is empty or its first column has no name: the first row names the fields", file=label
        )
    record_id_field = record_id_field or header[0]
    _, records = records_from_rows(rows, label=label, record_id_field=record_id_field)
    bookkeeping = {EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, DATA_ACCESS_GROUP}
    fields = {
        name: FieldDef(name=name, form="", field_type="text")
        for name in header
        if name and name not in bookkeeping
    }
    warnings: list[str] = []
    records, dropped = drop_identifying(fields, records, list(fields), warnings)
    for name in dropped:
        fields.pop(name, None)
    return Export(
        fields=fields,
        records=records,
        sources=[source(path, "spreadsheet", len(records), label)],
        record_id_field=record_id_field,
        warnings=warnings,
        dropped=dropped,
        has_dictionary=False,
        format_name="spreadsheet",
    )
