"""A CTMS site table (issue #22): each site's actual and planned activation dates and its target.

A CSV file, one row per site, headers in any case (surrounding spaces ignored):

- ``SITEID`` (required): the site, as the study data name it;
- ``ACTIVATED``: the date the site actually opened (YYYY-MM-DD), may be empty;
- ``PLANNED``: the date it is planned to open (YYYY-MM-DD), may be empty;
- ``TARGET``: the site's enrollment target, a whole number of 0 or more, may be empty;
- ``NAME`` and ``COUNTRY``, optional.

At least one of ACTIVATED, PLANNED and TARGET must be a column. ``read_site_table`` reads and checks
the whole file without a database: any problem raises ImportFailure naming the file, the row (as a
spreadsheet numbers it: the header is row 1), the column and the value, and nothing is written.
``apply_site_table`` then writes it in the caller's session (the caller commits): the study's sites
in the file get what the file gives (an empty cell keeps the stored value), sites in the file the
study does not have are added (planned sites, not yet open), sites not in the file are left as
they are. The planned dates feed the site-level recruitment forecast; a site with no activation
date counts from its first screening.
"""

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, func, select

from dashboard.db import lock_study_for_writing
from dashboard.importers.csvfile import csv_records, read_text
from dashboard.importers.errors import fail
from dashboard.models import DataCut, Site, Study

SITEID = "SITEID"
ACTIVATED = "ACTIVATED"
PLANNED = "PLANNED"
TARGET = "TARGET"
NAME = "NAME"
COUNTRY = "COUNTRY"
COLUMNS = (SITEID, ACTIVATED, PLANNED, TARGET, NAME, COUNTRY)
VALUE_COLUMNS = (ACTIVATED, PLANNED, TARGET)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
_LARGEST_TARGET = 2**31 - 1  # the database's integer


@dataclass(frozen=True)
class SiteRow:
    """One site of the file; None where the column is absent or the cell empty (keep as stored)."""

    row: int  # as a spreadsheet numbers it: the header is row 1
    site_id: str
    activated_on: dt.date | None = None
    planned_activation_on: dt.date | None = None
    planned_enrollment: int | None = None
    name: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class SiteTable:
    """A site table read and checked: its rows, and what was not read (warnings)."""

    file: str  # as messages name it
    columns: dict[str, str]  # COLUMNS found -> the header as written
    rows: tuple[SiteRow, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SitesImportResult:
    """What one import did to the study's sites."""

    study_id: str
    updated: int  # sites of the study the file changed
    unchanged: int  # sites of the study the file names with nothing new
    added: int  # sites the study did not have
    added_open: int  # of which the file gives an activation date
    warnings: tuple[str, ...] = ()

    def summary_line(self) -> str:
        """One line for a person: "Sites of S: 3 updated, 2 added (planned, not yet open)."."""
        parts = [f"{self.updated} updated"]
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        added = f"{self.added} added"
        not_open = self.added - self.added_open
        if self.added and not self.added_open:
            added += " (planned, not yet open)"
        elif self.added and not not_open:
            added += " (already open)"
        elif self.added:
            added += f" ({not_open} planned, not yet open)"
        parts.append(added)
        return f"Sites of {self.study_id}: {', '.join(parts)}."


# -- reading ---------------------------------------------------------------------------------------


def _header(record: list[str], label: str, row: int) -> dict[str, int]:
    """The known columns of the header row and their positions; fatal without SITEID or without
    any of ACTIVATED, PLANNED and TARGET, or where a known column appears twice."""
    positions: dict[str, int] = {}
    for position, heading in enumerate(record):
        name = heading.strip().upper()
        if name not in COLUMNS:
            continue
        if name in positions:
            raise fail(
                f"column {name} appears twice (columns {positions[name] + 1} and "
                f"{position + 1}): keep one",
                file=label,
                row=row,
                column=heading.strip(),
            )
        positions[name] = position
    shown = ", ".join(repr(h) for h in record)
    hint = (
        "; separate the columns with commas"
        if len(record) == 1 and any(c in record[0] for c in ";\t|")
        else ""
    )
    if SITEID not in positions:
        raise fail(f"has no {SITEID} column (the header row is {shown}){hint}", file=label, row=row)
    if not any(name in positions for name in VALUE_COLUMNS):
        raise fail(
            f"has none of the columns {', '.join(VALUE_COLUMNS)} (the header row is {shown}): "
            "the file gives no activation date or target to import",
            file=label,
            row=row,
        )
    return positions


def _date(value: str, *, label: str, row: int, column: str) -> dt.date:
    if not _ISO_DATE.fullmatch(value):
        raise fail(
            f"{value!r} is not a date: write dates as YYYY-MM-DD (e.g. 2025-03-14)",
            file=label,
            row=row,
            column=column,
        )
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise fail(
            f"{value!r} is not a date of the calendar ({error})",
            file=label,
            row=row,
            column=column,
        ) from None


def _target(value: str, *, label: str, row: int, column: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(value):
        raise fail(
            f"{value!r} is not a whole number of 0 or more: a site's enrollment target is a count "
            "of subjects (e.g. 12)",
            file=label,
            row=row,
            column=column,
        )
    number = int(value)
    if number > _LARGEST_TARGET:
        raise fail(
            f"{value!r} is too large for an enrollment target", file=label, row=row, column=column
        )
    return number


def _cell(record: list[str], positions: dict[str, int], name: str) -> str | None:
    """The cell of column ``name`` without surrounding spaces; None where absent or empty."""
    position = positions.get(name)
    if position is None or position >= len(record):
        return None
    return record[position].strip() or None


def read_site_table(path: Path, *, label: str | None = None) -> SiteTable:
    """Read and check the site table at ``path`` (messages name it ``label``, else the path as
    given). Raises ImportFailure on the first fatal problem; touches no database."""
    label = label or str(path)
    records = csv_records(read_text(path, label), label)
    numbered = [
        (row, record)
        for row, record in enumerate(records, start=1)
        if any(cell.strip() for cell in record)  # blank rows are skipped, and counted
    ]
    if not numbered:
        raise fail(f"is empty: a site table starts with a header row naming {SITEID}", file=label)
    header_row, header = numbered[0]
    positions = _header(header, label, header_row)
    headings = {name: header[position].strip() for name, position in positions.items()}
    ignored = [h.strip() for h in header if h.strip() and h.strip().upper() not in COLUMNS]
    warnings = (
        [
            f"{label}: column{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} not read "
            f"(the columns read are {', '.join(COLUMNS)})"
        ]
        if ignored
        else []
    )

    rows: list[SiteRow] = []
    first_row: dict[str, int] = {}
    for row, record in numbered[1:]:
        extra = [cell for cell in record[len(header) :] if cell.strip()]
        if extra:
            raise fail(
                f"has {len(record)} cells, the header {len(header)}: {extra[0]!r} is beyond the "
                "last column",
                file=label,
                row=row,
            )

        site_id = _cell(record, positions, SITEID)
        if site_id is None:
            raise fail(
                f"{SITEID} is empty: every row names its site",
                file=label,
                row=row,
                column=headings[SITEID],
            )
        if site_id in first_row:
            raise fail(
                f"{SITEID} {site_id!r} is repeated (row {first_row[site_id]} has it too): give "
                "each site one row",
                file=label,
                row=row,
                column=headings[SITEID],
            )
        first_row[site_id] = row
        activated, planned, target = (
            _cell(record, positions, name) for name in (ACTIVATED, PLANNED, TARGET)
        )
        rows.append(
            SiteRow(
                row=row,
                site_id=site_id,
                activated_on=None
                if activated is None
                else _date(activated, label=label, row=row, column=headings[ACTIVATED]),
                planned_activation_on=None
                if planned is None
                else _date(planned, label=label, row=row, column=headings[PLANNED]),
                planned_enrollment=None
                if target is None
                else _target(target, label=label, row=row, column=headings[TARGET]),
                name=_cell(record, positions, NAME),
                country=_cell(record, positions, COUNTRY),
            )
        )
    return SiteTable(file=label, columns=headings, rows=tuple(rows), warnings=tuple(warnings))


# -- writing -------------------------------------------------------------------------------------

_FIELDS = ("activated_on", "planned_activation_on", "planned_enrollment", "name", "country")


def choose_study(session: Session, study_id: str | None) -> str:
    """The study the table is for: ``study_id`` where it is stored, else the only stored study.
    Raises ImportFailure for an unknown study, or where none is named and there is not one."""
    stored = list(session.exec(select(col(Study.study_id)).order_by(col(Study.study_id))).all())
    if study_id is not None:
        if study_id not in stored:
            raise fail(
                f"there is no study {study_id!r} in the database (it holds "
                f"{', '.join(stored) or 'no study'}): import the study first"
            )
        return study_id
    if len(stored) == 1:
        return stored[0]
    if not stored:
        raise fail("the database holds no study: import the study's data or registry record first")
    raise fail(f"the database holds several studies ({', '.join(stored)}): name one with --study")


def latest_cutoff(session: Session, study_id: str) -> tuple[int, dt.date | None] | None:
    """The number of the study's latest data cut (1..n) and its cut-off date; None without one."""
    count = session.exec(
        select(func.count()).select_from(DataCut).where(col(DataCut.study_id) == study_id)
    ).one()
    if not count:
        return None
    cutoff = session.exec(
        select(col(DataCut.cutoff_date))
        .where(col(DataCut.study_id) == study_id)
        .order_by(col(DataCut.id).desc())
        .limit(1)
    ).first()
    return int(count), cutoff


def apply_site_table(
    session: Session, table: SiteTable, *, study_id: str | None = None
) -> SitesImportResult:
    """Write ``table`` to the sites of ``study_id`` (default: the only stored study) in
    ``session``; the caller commits. Raises ImportFailure for an unknown study."""
    study_id = choose_study(session, study_id)
    lock_study_for_writing(session, study_id)
    existing = {
        site.site_id: site
        for site in session.exec(select(Site).where(col(Site.study_id) == study_id)).all()
    }
    warnings = list(table.warnings)
    number, cutoff = latest_cutoff(session, study_id) or (0, None)
    if cutoff is not None:
        warnings += [
            f"{table.file}, row {row.row}, column {table.columns[ACTIVATED]}: site {row.site_id} "
            f"activated on {row.activated_on}, after the data cut-off of {study_id}'s latest data "
            f"cut (cut {number}, {cutoff}): check the date"
            for row in table.rows
            if row.activated_on is not None and row.activated_on > cutoff
        ]
    updated = unchanged = added = added_open = 0
    for row in table.rows:
        site = existing.get(row.site_id)
        if site is None:
            site = Site(study_id=study_id, site_id=row.site_id)
            added += 1
            added_open += row.activated_on is not None
        before = tuple(getattr(site, name) for name in _FIELDS)
        for name in _FIELDS:
            value = getattr(row, name)
            if value is not None:
                setattr(site, name, value)
        if row.site_id in existing:
            if tuple(getattr(site, name) for name in _FIELDS) == before:
                unchanged += 1
            else:
                updated += 1
        session.add(site)
    session.flush()
    return SitesImportResult(
        study_id=study_id,
        updated=updated,
        unchanged=unchanged,
        added=added,
        added_open=added_open,
        warnings=tuple(warnings),
    )
