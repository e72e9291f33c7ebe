"""Studies, sites and data cuts: who and what a page is about."""

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.models import IMPORT_ACTION, AuditEvent, DataCut, Site, Study
from dashboard.queries.scope import SiteScope, rows, site_in_scope
from dashboard.results.studies import CutInfo, StudyInfo


def list_studies(session: Session) -> pd.DataFrame:
    """Every study. Columns: study_id, registry_id, title."""
    stmt = select(col(Study.study_id), col(Study.registry_id), col(Study.title)).order_by(
        col(Study.study_id)
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["study_id", "registry_id", "title"])


def study_info(session: Session, *, study_id: str) -> StudyInfo | None:
    """The study's registry facts, or None if there is no such study."""
    study = session.get(Study, study_id)
    if study is None:
        return None
    return StudyInfo(**{name: getattr(study, name) for name in StudyInfo.__dataclass_fields__})


def data_cuts(session: Session, *, study_id: str) -> list[CutInfo]:
    """The study's data cuts, oldest first, numbered 1..n (ids are counted across all studies)."""
    stmt = (
        select(
            col(DataCut.id),
            col(DataCut.loaded_at),
            col(DataCut.cutoff_date),
            col(DataCut.label),
            col(DataCut.row_counts),
            col(DataCut.warnings),
            col(DataCut.source),
        )
        .where(col(DataCut.study_id) == study_id)
        .order_by(col(DataCut.id))
    )
    found = rows(session.execute(stmt))
    return [
        CutInfo(
            id=row["id"],
            loaded_at=row["loaded_at"],
            cutoff_date=row["cutoff_date"],
            label=row["label"],
            domains=tuple(sorted(row["row_counts"] or {})),
            warnings=tuple(row["warnings"] or ()),
            number=number,
            total=len(found),
            files=tuple(str(s.get("file")) for s in row["source"] or ()),
            records=sum((row["row_counts"] or {}).values()),
        )
        for number, row in enumerate(found, start=1)
    ]


def sites(session: Session, *, study_id: str, scope: SiteScope = None) -> pd.DataFrame:
    """The study's sites in scope. Columns: site_id, name, country, activated_on, planned_enrollment."""
    columns = ["site_id", "name", "country", "activated_on", "planned_enrollment"]
    stmt = (
        select(*(col(getattr(Site, name)) for name in columns))
        .where(site_in_scope(study_id=study_id, scope=scope))
        .order_by(col(Site.site_id))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)


def site_count(session: Session, *, study_id: str, scope: SiteScope = None) -> int:
    """Number of the study's sites in scope."""
    stmt = (
        select(func.count()).select_from(Site).where(site_in_scope(study_id=study_id, scope=scope))
    )
    return int(session.execute(stmt).scalar_one())


def site_countries(session: Session, *, study_id: str) -> pd.DataFrame:
    """Each site of the study with its country. Columns: site_id, country."""
    stmt = (
        select(col(Site.site_id), col(Site.country))
        .where(col(Site.study_id) == study_id)
        .order_by(col(Site.site_id))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["site_id", "country"])


def latest_import(session: Session, *, study_id: str) -> int | None:
    """The id of the study's latest import in the audit trail (None: none recorded). A registry
    record or a site table changes a study without a data cut; this changes with them too."""
    stmt = select(func.max(col(AuditEvent.id))).where(
        col(AuditEvent.study_id) == study_id, col(AuditEvent.action) == IMPORT_ACTION
    )
    found = session.execute(stmt).scalar_one_or_none()
    return int(found) if found is not None else None
