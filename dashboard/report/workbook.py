"""Excel workbooks: the monitoring pack's listings, and any single table a page offers for download.

Every sheet is written the same way: the header on row 1, frozen, with filters on; dates as Excel
dates (day numbers with a date format), numbers as numbers, text as text: every text is a shared
string, never a formula, so a text that starts like one (``report.cells``) stays text.

The file is written here, not cell by cell through openpyxl: at 250,000 AEs by 24 columns its
per-cell objects took minutes. Each column's kind (text, number, date, ...) is decided once over
the whole column, text is escaped once per distinct value (Excel's shared-strings table), and the
rows are streamed into the zip in chunks, so memory stays bounded by a chunk.
"""

import datetime as dt
import io
import math
import zipfile
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from dashboard.report.pack import MonitoringPack

EXCEL_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_MAX_ROWS = 1_048_576  # Excel's limit, header included
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
SITE_RISK_SHEET = "Site risk"  # each site in view and computed KRI: counts, metric, score, flag
# Review (issue #20): the SAEs the medical monitor has not reviewed, and the queries not closed.
UNREVIEWED_SAE_SHEET = "Unreviewed SAEs"
OPEN_QUERY_SHEET = "Open queries"
# Laboratory safety (issue #21): the shift tables' cells, long; the potential Hy's law cases.
LAB_SHIFT_SHEET = "Lab shifts"
HYS_LAW_SHEET = "Hy's law"
SAE_SHEET = "SAEs"  # contract: a sheet of this name, header on row 1, one row per serious AE
_WIDTH_SAMPLE = 500  # rows read to size the columns
_CHUNK = 20_000  # rows turned into XML at a time
_INVALID_TITLE = str.maketrans({c: " " for c in "[]:*?/\\"})
_EPOCH = pd.Timestamp("1899-12-30")  # Excel's day 0 (for every date after February 1900)
# The cell styles of styles.xml, by their index in cellXfs.
_HEADER_STYLE, _DATE_STYLE, _DATETIME_STYLE = 1, 2, 3

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def sheet_title(name: str) -> str:
    """A valid sheet name: Excel's forbidden characters replaced, at most 31 characters."""
    return name.translate(_INVALID_TITLE).strip()[:31] or "Sheet"


def excel_value(value: object) -> object:
    """A pandas/numpy/SQL value as the workbook stores it: None for every kind of missing, plain
    numbers, ``datetime.date`` for a date (a midnight Timestamp is a date), text without the
    control characters XML cannot hold."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)  # Excel has no time zones
        return value.date() if value.time() == dt.time(0) else value
    if isinstance(value, bool | int | float | dt.date):
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


class _SharedStrings:
    """Excel's shared-strings table: each distinct text once, escaped once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.index)
        return found

    def xml(self) -> Iterator[str]:
        yield _XML + f'<sst xmlns="{_MAIN}" uniqueCount="{len(self.index)}">'
        for text in self.index:
            space = ' xml:space="preserve"' if text != text.strip() else ""
            yield f"<si><t{space}>{escape(text)}</t></si>"
        yield "</sst>"


def _column_kind(series: pd.Series) -> str:
    """How a column is written, decided once over the whole column: "text", "number", "bool",
    "date" (days), "datetime" (a date, or a date and time where the time is not midnight), or
    "mixed" (each value on its own, through ``excel_value``)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    return {
        "string": "text",
        "empty": "text",
        "date": "date",
        "datetime": "datetime",
        "datetime64": "datetime",
        "integer": "number",
        "floating": "number",
        "mixed-integer-float": "number",
        "boolean": "bool",
    }.get(inferred, "mixed")


def _number_text(value: object) -> str | None:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    # openpyxl's own rendering (a whole float as an integer), so figures read back as before.
    return f"{number:.16g}" if math.isfinite(number) else None


def _days(values: pd.Series) -> list[float | None]:
    """Dates or date-times as Excel day numbers (time as the fraction of a day)."""
    stamps = pd.to_datetime(values.astype(object), utc=False, errors="coerce")
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    days = (stamps - _EPOCH) / pd.Timedelta(days=1)
    return [None if math.isnan(d) else d for d in days.tolist()]


def _tails(series: pd.Series, kind: str, strings: _SharedStrings) -> list[str | None]:
    """Each value's cell after its reference (type, style, value; None: no cell), for a chunk
    of a column of ``kind``."""
    if kind == "text":
        codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
        texts = [ILLEGAL_CHARACTERS_RE.sub("", str(u)) for u in uniques]
        # The distinct values only are cleaned and indexed; the rows pick theirs by code.
        tails = [f' t="s"><v>{strings.add(t)}</v></c>' if t else None for t in texts] + [None]
        return [tails[c] for c in codes.tolist()]
    if kind == "number":
        values = series.astype(object).where(series.notna(), None).tolist()
        return [
            None if v is None or (n := _number_text(v)) is None else f"><v>{n}</v></c>"
            for v in values
        ]
    if kind == "bool":
        values = series.astype(object).where(series.notna(), None).tolist()
        return [None if v is None else f' t="b"><v>{int(bool(v))}</v></c>' for v in values]
    if kind in ("date", "datetime"):
        return [_date_tail(d) for d in _days(series)]
    return [_mixed_tail(excel_value(v), strings) for v in series.tolist()]


def _date_tail(days: float | None) -> str | None:
    """A day number's cell: a date where it is a whole day (midnight), else a date and time."""
    if days is None:
        return None
    if days == int(days):
        return f' s="{_DATE_STYLE}"><v>{int(days)}</v></c>'
    return f' s="{_DATETIME_STYLE}"><v>{days!r}</v></c>'


def _mixed_tail(value: object, strings: _SharedStrings) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        number = _number_text(value)
        return None if number is None else f"><v>{number}</v></c>"
    if isinstance(value, dt.date):
        return _date_tail(_days(pd.Series([value]))[0])
    return f' t="s"><v>{strings.add(str(value))}</v></c>'


def _width(values: Iterable[object]) -> float:
    longest = max((len(str(v)) for v in values if v is not None), default=0)
    return float(min(max(longest + 2, 8), 60))


def _sheet_xml(frame: pd.DataFrame, strings: _SharedStrings) -> Iterator[str]:
    """A sheet's XML in pieces: header on row 1, frozen, filters on; rows beyond Excel's limit
    are left out and a last row says how many."""
    columns = [str(c) for c in frame.columns]
    room = EXCEL_MAX_ROWS - 2  # the header and the note row
    shown = frame if len(frame) <= room else frame.head(room)
    letters = [get_column_letter(j) for j in range(1, len(columns) + 1)]
    last = f"{letters[-1]}{len(shown) + 1}" if columns else "A1"
    yield _XML + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><dimension ref="A1:{last}"/>'
    yield (
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" '
        'sqref="A2"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
    )
    if columns:
        sample = shown.head(_WIDTH_SAMPLE)
        widths = [
            max(_width([name]), _width(excel_value(v) for v in sample.iloc[:, j]))
            for j, name in enumerate(columns)
        ]
        yield (
            "<cols>"
            + "".join(
                f'<col min="{j}" max="{j}" width="{w}" customWidth="1"/>'
                for j, w in enumerate(widths, start=1)
            )
            + "</cols>"
        )
    yield "<sheetData>"
    if columns:
        yield (
            '<row r="1">'
            + "".join(
                f'<c r="{letter}1" s="{_HEADER_STYLE}" t="s"><v>{strings.add(name)}</v></c>'
                for letter, name in zip(letters, columns, strict=True)
            )
            + "</row>"
        )
    kinds = [_column_kind(shown.iloc[:, j]) for j in range(len(columns))]
    for start in range(0, len(shown), _CHUNK):
        chunk = shown.iloc[start : start + _CHUNK]
        numbers = [str(n) for n in range(start + 2, start + 2 + len(chunk))]
        cells = [
            [
                "" if tail is None else f'<c r="{letter}{n}"{tail}'
                for n, tail in zip(numbers, _tails(chunk.iloc[:, j], kind, strings), strict=True)
            ]
            for j, (letter, kind) in enumerate(zip(letters, kinds, strict=True))
        ]
        yield "".join(
            f'<row r="{n}">{"".join(row)}</row>'
            for n, row in zip(numbers, zip(*cells, strict=True), strict=True)
        )
    if len(shown) < len(frame):
        note = f"{len(frame) - len(shown)} more rows not listed: Excel's row limit"
        yield f'<row r="{len(shown) + 2}"><c r="A{len(shown) + 2}" t="s"><v>{strings.add(note)}</v></c></row>'
    yield "</sheetData>"
    if columns:
        yield f'<autoFilter ref="A1:{last}"/>'
    yield (
        '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>'
        "</worksheet>"
    )


_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">'
    f'<numFmts count="2"><numFmt numFmtId="164" formatCode="{DATE_FORMAT}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATETIME_FORMAT}"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><color rgb="FFFFFFFF"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FF1F3B5A"/></patternFill></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" '
    'applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _filter_name(index: int, name: str, frame: pd.DataFrame) -> str:
    """The hidden name Excel gives a sheet's filtered range (``index`` counts sheets from 0)."""
    rows = min(len(frame), EXCEL_MAX_ROWS - 2) + 1
    quoted = name.replace("'", "''")
    ref = f"'{quoted}'!$A$1:${get_column_letter(len(frame.columns))}${rows}"
    return (
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
        f"{escape(ref)}</definedName>"
    )


def workbook_bytes(sheets: list[tuple[str, pd.DataFrame]], *, title: str | None = None) -> bytes:
    """An .xlsx file of ``sheets`` (title, frame), each written as ``_sheet_xml`` says."""
    strings = _SharedStrings()
    names: list[str] = []
    for name, _ in sheets:
        name = sheet_title(name)
        while name in names:  # Excel refuses two sheets of one name
            name = f"{name[:28]}_{len(names)}"
        names.append(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for n, (_, frame) in enumerate(sheets, start=1):
            with archive.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as part:
                for piece in _sheet_xml(frame, strings):
                    part.write(piece.encode("utf-8"))
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            for piece in strings.xml():
                part.write(piece.encode("utf-8"))
        archive.writestr("xl/styles.xml", _STYLES)
        sheet_list = "".join(
            f'<sheet name={quoteattr(name)} sheetId="{n}" r:id="rId{n}"/>'
            for n, name in enumerate(names, start=1)
        )
        filters = "".join(
            _filter_name(n, name, frame)
            for n, (name, (_, frame)) in enumerate(zip(names, sheets, strict=True))
            if len(frame.columns)
        )
        archive.writestr(
            "xl/workbook.xml",
            _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><workbookPr/>'
            '<bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{sheet_list}</sheets>"
            + (f"<definedNames>{filters}</definedNames>" if filters else "")
            + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>',
        )
        count = len(sheets)
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            _XML
            + f'<Relationships xmlns="{_PKG_REL}">'
            + "".join(
                f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" '
                f'Target="worksheets/sheet{n}.xml"/>'
                for n in range(1, count + 1)
            )
            + f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{count + 2}" Type="{_REL}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>',
        )
        archive.writestr(
            "_rels/.rels",
            _XML + f'<Relationships xmlns="{_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_REL}/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>',
        )
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        archive.writestr(
            "docProps/core.xml",
            _XML + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<dc:creator>study-monitor</dc:creator>"
            + (f"<dc:title>{escape(title)}</dc:title>" if title else "")
            + f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified>'
            "</cp:coreProperties>",
        )
        archive.writestr(
            "docProps/app.xml",
            _XML + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
            'extended-properties"><Application>study-monitor</Application></Properties>',
        )
        sheet_types = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for n in range(1, count + 1)
        )
        office = "application/vnd.openxmlformats-officedocument"
        archive.writestr(
            "[Content_Types].xml",
            _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{office}.spreadsheetml.sheet.'
            'main+xml"/>'
            + sheet_types
            + f'<Override PartName="/xl/styles.xml" ContentType="{office}.spreadsheetml.styles'
            '+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{office}.spreadsheetml.'
            'sharedStrings+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
            'package.core-properties+xml"/>'
            f'<Override PartName="/docProps/app.xml" ContentType="{office}.extended-properties'
            '+xml"/></Types>',
        )
    return buffer.getvalue()


def excel_bytes(frame: pd.DataFrame, *, sheet: str) -> bytes:
    """One table as an .xlsx file (a page's "Download Excel")."""
    return workbook_bytes([(sheet, frame)])


def pack_workbook(pack: MonitoringPack) -> bytes:
    """The pack's workbook: the headline figures, then one sheet per listing and table (the SAE
    sheet named ``SAE_SHEET``)."""
    sheets: list[tuple[str, pd.DataFrame]] = [
        ("Summary", pack.headline),
        ("Subjects", pack.subjects),
        ("Sites", pack.sites),  # the Enrollment page's table (none for a one-site viewer)
        ("Screen failures", pack.screen_failures),
        ("Failures by criterion", pack.failures_table),
        ("Table 1", pack.table_one),
        ("AE summary", pack.ae_summary),
        ("AEs by SOC and PT", pack.ae_terms.rename(columns={"level": "Level"})),
        ("AEs", pack.adverse_events),
        (SAE_SHEET, pack.saes),
        (LAB_SHIFT_SHEET, pack.lab_safety.shift_sheet),
        (HYS_LAW_SHEET, pack.lab_safety.hys_law_cases),
        (SITE_RISK_SHEET, pack.site_risk_scores),
        (UNREVIEWED_SAE_SHEET, pack.review_saes),
        (OPEN_QUERY_SHEET, pack.review_queries),
    ]
    return workbook_bytes(
        sheets, title=f"Monitoring pack: {pack.study.study_id}, data {pack.cut_label}"
    )
