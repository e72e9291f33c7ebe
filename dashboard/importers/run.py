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
from dashboard.db import SchemaError, ensure_schema, session_scope
from dashboard.importers.ctgov import CtgovImportResult, import_ctgov_file
from dashboard.importers.errors import fail
from dashboard.importers.sdtm import Package, read_package
from dashboard.importers.store import StoreResult, store_package


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
            f"study {self.result.study_id}: data cut {self.result.cut_id} loaded "
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
    try:
        ensure_schema(engine)
        with session_scope(engine) as session:
            result = store_package(session, package, replace=replace)
            record(
                session,
                email=actor,
                action=IMPORT,
                study_id=result.study_id,
                detail={
                    "kind": "sdtm",
                    "cut_id": result.cut_id,
                    "domains": list(package.domains),
                    "replace": replace,
                    "warnings": len(package.warnings),
                    **(audit_detail or {}),
                },
            )
    except SchemaError as error:
        raise fail(str(error)) from None
    except SQLAlchemyError as error:
        raise fail(f"the database refused the import: {getattr(error, 'orig', error)}") from None
    return SdtmImportReport(
        result=result,
        domains=package.domains,
        row_counts=package.row_counts,
        warnings=tuple(package.warnings),
        cutoff_date=package.cutoff_date,
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
    with tempfile.TemporaryDirectory(prefix="sdtm-upload-") as folder:
        for name, content in files:
            # Only the base name: an uploaded name must not reach outside the folder.
            (Path(folder) / PurePath(name).name).write_bytes(content)
        return import_sdtm(
            engine,
            Path(folder),
            study_id=study_id,
            cutoff=cutoff,
            replace=replace,
            actor=actor,
            audit_detail={"files": sorted(PurePath(name).name for name, _ in files)},
        )


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
        path = Path(folder) / (PurePath(name).name or "record.json")
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
