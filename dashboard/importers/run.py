"""One import, all or nothing: read and check the package, then store it in one transaction, with
its audit event (who imported what) in the same transaction."""

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.access import CLI_EMAIL, IMPORT, record
from dashboard.db import (
    BUSY_MESSAGE,
    SchemaError,
    ensure_schema,
    has_schema,
    is_busy,
    session_scope,
    shown_url,
)
from dashboard.importers.ctgov import CtgovImportResult, RegistryRecordError, import_ctgov_file
from dashboard.importers.edc import Export, read_redcap
from dashboard.importers.edc_package import MappingEffect, build_package, mapping_effect
from dashboard.importers.errors import ImportFailure, fail
from dashboard.importers.mapping import Mapping, parse_mapping
from dashboard.importers.readers import SUFFIX_PREFERENCE
from dashboard.importers.sdtm import Package, read_package
from dashboard.importers.sites import SitesImportResult, apply_site_table, read_site_table
from dashboard.importers.store import StoreResult, store_package
from dashboard.importers.table import read_table
from dashboard.models import DataCut


@dataclass(frozen=True)
class SdtmImportReport:
    result: StoreResult
    domains: tuple[str, ...]
    row_counts: dict[str, int]
    warnings: tuple[str, ...]
    cutoff_date: dt.date | None

    def summary_lines(self) -> list[str]:
        """What a person reads after an import (the CLI prints these; the Import page shows them)."""
        counts = ", ".join(f"{d} {self.row_counts[d]}" for d in self.domains)
        changes = "; ".join(
            f"{entity}: " + ", ".join(f"{n} {kind}" for kind, n in numbers.items())
            for entity, numbers in self.result.changes.items()
        )
        return [
            f"study {self.result.study_id}: data cut {self.result.cut_number} loaded "
            f"(cut-off {self.cutoff_date or 'unknown'})",
            f"records: {counts}",
            f"changes since the previous cut: {changes}",
        ]


def import_sdtm(
    engine: Engine,
    folder: Path,
    *,
    study_id: str | None = None,
    cutoff: dt.date | None = None,
    replace: bool = False,
    actor: str = CLI_EMAIL,
    audit_detail: dict[str, Any] | None = None,
) -> SdtmImportReport:
    """Import the SDTM package in ``folder`` as a new DataCut. Raises ImportFailure (nothing written)
    on a fatal problem in the input. ``actor`` is who the audit event names."""
    package: Package = read_package(folder, study_id=study_id, cutoff=cutoff)
    return _store(
        engine,
        package,
        replace=replace,
        actor=actor,
        detail={"kind": "sdtm", **(audit_detail or {})},
    )


def _store(
    engine: Engine,
    package: Package,
    *,
    replace: bool,
    actor: str,
    detail: dict[str, Any],
    sources: list[dict[str, Any]] | None = None,
) -> SdtmImportReport:
    """Store a read package as a new data cut with its audit event, in one transaction.
    ``sources``: the files the cut names where they are not the package's (an EDC export)."""
    try:
        ensure_schema(engine)
        with session_scope(engine) as session:
            result = store_package(session, package, replace=replace)
            if sources is not None:
                cut = session.get(DataCut, result.cut_id)
                assert cut is not None
                cut.source = sources
            record(
                session,
                email=actor,
                action=IMPORT,
                study_id=result.study_id,
                detail={
                    "kind": detail.get("kind", "sdtm"),
                    "cut_id": result.cut_id,
                    "domains": list(package.domains),
                    "replace": replace,
                    "warnings": len(package.warnings),
                    **detail,
                },
            )
    except SchemaError as error:
        raise fail(str(error)) from None
    except SQLAlchemyError as error:
        if is_busy(error):  # another import held the write lock longer than the wait
            raise fail(BUSY_MESSAGE) from None
        raise fail(f"the database refused the import: {getattr(error, 'orig', error)}") from None
    return SdtmImportReport(
        result=result,
        domains=package.domains,
        row_counts=package.row_counts,
        warnings=tuple(package.warnings),
        cutoff_date=package.cutoff_date,
    )


# An EDC export's formats (issue #23): what the CLI and the Import page offer.
EDC_FORMATS = {
    "redcap": "REDCap export (records CSV + data dictionary CSV)",
    "odm": "CDISC ODM 1.3 XML (REDCap, OpenClinica)",
    "table": "Spreadsheet (.csv or .xlsx)",
}
# The files each format is read from, by role: read_edc_export's ``files`` keys.
EDC_ROLES = {"redcap": ("records", "dictionary"), "odm": ("odm",), "table": ("table",)}


def read_edc_export(
    kind: str,
    files: dict[str, Path],
    *,
    labels: dict[str, str] | None = None,
    record_id_field: str | None = None,
) -> Export:
    """Read an EDC export: ``files`` by role (redcap: records, dictionary; odm: odm; table:
    table). Raises ImportFailure; touches no database."""
    labels = labels or {}
    if kind == "redcap":
        return read_redcap(
            files["records"],
            files["dictionary"],
            records_label=labels.get("records"),
            dictionary_label=labels.get("dictionary"),
        )
    if kind == "odm":
        from dashboard.importers.odm import read_odm

        return read_odm(files["odm"], label=labels.get("odm"))
    if kind == "table":
        return read_table(
            files["table"], record_id_field=record_id_field, label=labels.get("table")
        )
    raise fail(f"unknown export format {kind!r} (one of {', '.join(EDC_FORMATS)})")


def import_redcap_api(
    engine: Engine,
    url: str,
    token: str,
    mapping: Mapping,
    *,
    replace: bool = False,
    actor: str = CLI_EMAIL,
    audit_detail: dict[str, Any] | None = None,
) -> SdtmImportReport:
    """Pull a REDCap project's data dictionary and records from its API and import them as a
    download of the two would be. The token is used for the two requests and kept nowhere: the
    data cut and the audit trail name the address only."""
    from dashboard.importers.redcap_api import pull_project

    with tempfile.TemporaryDirectory(prefix="redcap-api-") as folder:
        pulled = pull_project(url, token, Path(folder))
        return import_edc(
            engine,
            "redcap",
            pulled.files,
            mapping,
            labels=pulled.labels,
            replace=replace,
            actor=actor,
            audit_detail={"api": pulled.url, **(audit_detail or {})},
        )


def preview_edc(
    kind: str, files: dict[str, Path], mapping: Mapping, *, labels: dict[str, str] | None = None
) -> MappingEffect:
    """What the mapping does with the export, nothing written (the Import page shows it)."""
    export = read_edc_export(kind, files, labels=labels, record_id_field=mapping.record_id)
    return mapping_effect(export, mapping)


def import_edc(
    engine: Engine,
    kind: str,
    files: dict[str, Path],
    mapping: Mapping,
    *,
    labels: dict[str, str] | None = None,
    replace: bool = False,
    actor: str = CLI_EMAIL,
    audit_detail: dict[str, Any] | None = None,
) -> SdtmImportReport:
    """Import an EDC export through its mapping as a new data cut of the mapping's study: read,
    checked and mapped first, then stored all or nothing. Raises ImportFailure (nothing written)."""
    export = read_edc_export(kind, files, labels=labels, record_id_field=mapping.record_id)
    with tempfile.TemporaryDirectory(prefix="edc-sdtm-") as folder:
        package = build_package(export, mapping, Path(folder))
        return _store(
            engine,
            package,
            replace=replace,
            actor=actor,
            sources=list(export.sources),
            detail={
                "kind": kind,
                "files": [str(s["file"]) for s in export.sources],
                "mapping": mapping.file,
                "identifying_fields_dropped": list(export.dropped),
                **(audit_detail or {}),
            },
        )


def import_sdtm_files(
    engine: Engine,
    files: Sequence[tuple[str, bytes]],
    *,
    study_id: str | None = None,
    cutoff: dt.date | None = None,
    replace: bool = False,
    actor: str = CLI_EMAIL,
) -> SdtmImportReport:
    """Import uploaded dataset files (name, content) as one package: the Import page's entry.

    The files are written to a temporary folder that is gone when the import ends, so the app keeps
    no local state (DESIGN.md: several stateless replicas may serve it).
    """
    if not files:
        raise fail("no files were uploaded: add the package's datasets (at least DM)")
    names = [upload_name(name) for name, _content in files]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise fail(f"two uploaded files are named {repeated[0]}: upload each dataset once")
    with tempfile.TemporaryDirectory(prefix="sdtm-upload-") as folder:
        for name, (_given, content) in zip(names, files, strict=True):
            (Path(folder) / name).write_bytes(content)
        return import_sdtm(
            engine,
            Path(folder),
            study_id=study_id,
            cutoff=cutoff,
            replace=replace,
            actor=actor,
            audit_detail={"files": sorted(names)},
        )


def upload_name(given: str) -> str:
    """The file name an upload is stored under: its base name only, so that a name cannot reach
    outside the upload folder (``../../dm.xpt`` is ``dm.xpt``). A name with no file name in it
    (empty, ``.``, ``..``, ``/``, a folder's) is refused plainly."""
    name = PurePath(given.replace("\\", "/")).name if "\0" not in given else ""
    if name in ("", ".", ".."):
        raise fail(
            f"an uploaded file is named {given!r}, which is not a file name: name each file after "
            "its dataset (dm.xpt, ae.csv, ...)"
        )
    if PurePath(name).suffix.lower() not in SUFFIX_PREFERENCE:
        raise fail(
            "is not a dataset file: upload SAS transport (.xpt), CSV (.csv) or Dataset-JSON "
            "(.json) files",
            file=name,
        )
    return name


def describe_failure(error: BaseException) -> str:
    """What the Import page says when an import fails, whatever failed: the importer's own message
    for bad input, else what failed in plain words (no traceback). Nothing was written either
    way: the import is one transaction."""
    if isinstance(error, ImportFailure | RegistryRecordError):
        return str(error)
    if isinstance(error, SQLAlchemyError):
        if is_busy(error):
            return BUSY_MESSAGE
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()
        return (
            f"the database refused the import ({type(error).__name__}: {cause[0] if cause else ''})"
        )
    if isinstance(error, OSError):
        return f"the uploaded files could not be stored or read ({error.strerror or error})"
    return f"the import failed ({type(error).__name__}: {error})"


def import_ctgov_upload(
    engine: Engine,
    name: str,
    content: bytes,
    *,
    study_id: str | None = None,
    actor: str = CLI_EMAIL,
) -> CtgovImportResult:
    """Import an uploaded registry record, in one transaction. Raises RegistryRecordError."""
    with tempfile.TemporaryDirectory(prefix="ctgov-upload-") as folder:
        base = PurePath(name.replace("\\", "/")).name
        path = Path(folder) / (base if base not in ("", ".", "..") else "record.json")
        path.write_bytes(content)
        return import_ctgov_path(engine, path, study_id=study_id, actor=actor)


def import_ctgov_path(
    engine: Engine, path: Path, *, study_id: str | None = None, actor: str = CLI_EMAIL
) -> CtgovImportResult:
    """Import a registry record file with its audit event, in one transaction (the CLI's and the
    Import page's entry). Raises RegistryRecordError; SQLAlchemyError where the database refuses."""
    ensure_schema(engine)
    with session_scope(engine) as session:
        result = import_ctgov_file(session, path, study_id=study_id)
        record(
            session,
            email=actor,
            action=IMPORT,
            study_id=result.study_id,
            detail={"kind": "ctgov", "file": path.name, "created": result.created},
        )
    return result


def import_sites_path(
    engine: Engine,
    path: Path,
    *,
    study_id: str | None = None,
    actor: str = CLI_EMAIL,
    audit_detail: dict[str, Any] | None = None,
) -> SitesImportResult:
    """Import a CTMS site table (``importers.sites``) with its audit event, in one transaction:
    the file is read and checked first, then written all or nothing. Raises ImportFailure
    (nothing written) on a problem in the file, an unknown study or a database that refuses."""
    table = read_site_table(path)
    try:
        if not has_schema(engine):
            raise fail(
                f"{shown_url(engine)} holds no study: import the study's data or registry record "
                "first"
            )
        ensure_schema(engine)
        with session_scope(engine) as session:
            result = apply_site_table(session, table, study_id=study_id)
            record(
                session,
                email=actor,
                action=IMPORT,
                study_id=result.study_id,
                detail={
                    "kind": "sites",
                    "file": path.name,
                    "rows": len(table.rows),
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "added": result.added,
                    "warnings": len(result.warnings),
                    **(audit_detail or {}),
                },
            )
    except SchemaError as error:
        raise fail(str(error)) from None
    except SQLAlchemyError as error:
        if is_busy(error):
            raise fail(BUSY_MESSAGE) from None
        raise fail(f"the database refused the import: {getattr(error, 'orig', error)}") from None
    return result


def _saved_uploads(
    folder: Path, kind: str, uploads: dict[str, tuple[str, bytes]]
) -> tuple[dict[str, Path], dict[str, str]]:
    """Uploaded export files (role -> (name, content)) written into ``folder``: their paths and
    the names messages give them."""
    if kind not in EDC_ROLES:
        raise fail(f"unknown export format {kind!r} (one of {', '.join(EDC_FORMATS)})")
    missing = [role for role in EDC_ROLES[kind] if role not in uploads]
    if missing:
        raise fail(f"no {' and no '.join(missing)} file was uploaded: {EDC_FORMATS[kind]} needs it")
    paths, labels = {}, {}
    for role in EDC_ROLES[kind]:
        name, content = uploads[role]
        base = PurePath(name.replace("\\", "/")).name
        base = base if base not in ("", ".", "..") and "\0" not in base else f"{role}.upload"
        path = Path(folder) / f"{role}-{base}"
        path.write_bytes(content)
        paths[role], labels[role] = path, base
    return paths, labels


def preview_edc_uploads(
    kind: str, uploads: dict[str, tuple[str, bytes]], mapping: tuple[str, bytes]
) -> MappingEffect:
    """The Import page's preview of an upload: what the mapping reads, nothing written."""
    with tempfile.TemporaryDirectory(prefix="edc-upload-") as folder:
        paths, labels = _saved_uploads(Path(folder), kind, uploads)
        return preview_edc(kind, paths, _uploaded_mapping(mapping), labels=labels)


def import_edc_uploads(
    engine: Engine,
    kind: str,
    uploads: dict[str, tuple[str, bytes]],
    mapping: tuple[str, bytes],
    *,
    replace: bool = False,
    actor: str = CLI_EMAIL,
) -> SdtmImportReport:
    """The Import page's entry for an EDC export: the uploads live in a temporary folder for the
    length of the import only (the app keeps no local state)."""
    with tempfile.TemporaryDirectory(prefix="edc-upload-") as folder:
        paths, labels = _saved_uploads(Path(folder), kind, uploads)
        return import_edc(
            engine,
            kind,
            paths,
            _uploaded_mapping(mapping),
            labels=labels,
            replace=replace,
            actor=actor,
        )


def _uploaded_mapping(mapping: tuple[str, bytes]) -> Mapping:
    name, content = mapping
    label = PurePath(name.replace("\\", "/")).name or "mapping"
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text", file=label) from None
    return parse_mapping(text, file=label)
