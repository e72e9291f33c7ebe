"""Quality tolerance limits, the write side: a study's limits as someone sets them, and what was
found and done about an excursion. Each change is a row of its own (the latest limit is in force;
an excursion keeps who evaluated it and when) and an audit event in the same transaction."""

import datetime as dt

from sqlmodel import Session, col, select

from dashboard import access
from dashboard.metrics.kri_catalogue import QTL_BY_ID
from dashboard.models import QtlExcursion, QualityToleranceLimit, Study
from dashboard.precomputed import open_excursions


class QualityError(ValueError):
    """A limit or an evaluation that cannot be recorded, with the reason in plain words."""


def set_limit(
    session: Session, *, study_id: str, parameter: str, p0: float, z: float, email: str
) -> list[str]:
    """Set a QTL of the study (a new row; the latest is in force), audited, and open an excursion
    if the latest cut is now over it. Returns the parameters an excursion was opened for."""
    if session.get(Study, study_id) is None:
        raise QualityError(f"no study {study_id!r}")
    if parameter not in QTL_BY_ID:
        raise QualityError(f"no QTL parameter {parameter!r}: one of {', '.join(sorted(QTL_BY_ID))}")
    if not 0 < p0 < 1:
        raise QualityError(f"--p0 must be a proportion between 0 and 1, not {p0}")
    if not z > 0:
        raise QualityError(f"--z must be a positive number of standard errors, not {z}")
    session.add(
        QualityToleranceLimit(
            study_id=study_id,
            parameter=parameter,
            p0=p0,
            z=z,
            set_by=email,
            set_at=dt.datetime.now(dt.UTC),
        )
    )
    access.record(
        session,
        email=email,
        action="qtl-set",
        study_id=study_id,
        detail={"parameter": parameter, "p0": p0, "z": z, **access.cli_detail()},
    )
    session.flush()
    return open_excursions(session, study_id)


def evaluate_excursion(
    session: Session,
    *,
    study_id: str,
    excursion_id: int,
    evaluation: str,
    action: str,
    close: bool,
    email: str,
) -> QtlExcursion:
    """Record what was found and done about an excursion (and close it, if asked), audited."""
    excursion = session.exec(
        select(QtlExcursion).where(
            col(QtlExcursion.id) == excursion_id, col(QtlExcursion.study_id) == study_id
        )
    ).first()
    if excursion is None:
        raise QualityError(f"study {study_id!r} has no QTL excursion {excursion_id}")
    if excursion.closed:
        raise QualityError(f"excursion {excursion_id} is closed already")
    if not evaluation.strip() or not action.strip():
        raise QualityError("an evaluation needs what was found and what was done")
    excursion.evaluation = evaluation.strip()
    excursion.action = action.strip()
    excursion.evaluated_by = email
    excursion.evaluated_at = dt.datetime.now(dt.UTC)
    excursion.closed = close
    session.add(excursion)
    access.record(
        session,
        email=email,
        action="qtl-evaluate",
        study_id=study_id,
        detail={
            "excursion": excursion_id,
            "parameter": excursion.parameter,
            "evaluation": excursion.evaluation,
            "action": excursion.action,
            "closed": close,
        },
    )
    session.flush()
    return excursion
