"""The ``study-monitor`` command (DESIGN.md contract): demo data and the headline figures as JSON."""

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from dashboard.config import database_url
from dashboard.db import create_schema, has_schema, make_engine, session_scope, sqlite_path
from dashboard.demo import (
    MULTISITE_STUDY_ID,
    SCALE_STUDY_ID,
    SEED_STUDY_ID,
    build_multisite_study,
    build_scale_study,
    build_seed_study,
)
from dashboard.importers.ctgov import RegistryRecordError, import_ctgov_file
from dashboard.importers.errors import ImportFailure
from dashboard.importers.run import import_sdtm
from dashboard.queries.studies import list_studies
from dashboard.queries.summary import UnknownStudyError, study_summary

app = typer.Typer(
    help="Study-monitoring dashboard: load study data and print its headline figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

import_app = typer.Typer(
    help="Load study data: SDTM packages and ClinicalTrials.gov records.", no_args_is_help=True
)
app.add_typer(import_app, name="import")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: DATABASE_URL, else the SQLite file under data/).",
        show_default=False,
    ),
]


class DemoStudy(StrEnum):
    NCT06466850 = "NCT06466850"
    multisite = "multisite"
    scale = "scale"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def demo(
    study: Annotated[
        DemoStudy, typer.Option("--study", help="Which demo study to create or refresh.")
    ] = DemoStudy.NCT06466850,
    subjects: Annotated[
        int, typer.Option("--subjects", min=1, help="Subjects of the scale study.")
    ] = 50_000,
    db: DbOption = None,
) -> None:
    """Create or refresh a synthetic demo study (NCT06466850, DEMO-MULTI or DEMO-SCALE)."""
    engine = make_engine(db or database_url())
    try:
        create_schema(engine)
        with session_scope(engine) as session:
            if study is DemoStudy.NCT06466850:
                build_seed_study(session)
                study_id = SEED_STUDY_ID
            elif study is DemoStudy.multisite:
                build_multisite_study(session)
                study_id = MULTISITE_STUDY_ID
            else:
                build_scale_study(session, n_subjects=subjects)
                study_id = SCALE_STUDY_ID
    except SQLAlchemyError as error:
        _fail(
            f"could not write the demo study to {engine.url!r}: {error.__class__.__name__}: "
            f"{getattr(error, 'orig', error)}"
        )
    typer.echo(
        f"demo study {study_id} written to {engine.url.render_as_string(hide_password=True)}"
        " (synthetic data)"
    )


@app.command()
def summary(
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study id (default: the only study in the database)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """The study's headline figures: screened, screen failures, enrolled, adverse events."""
    url = db or database_url()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        _fail(
            f"database file {path} does not exist: create it with `study-monitor demo` or an import"
        )
    engine = make_engine(url)
    try:
        if not has_schema(engine):
            _fail(
                f"{engine.url.render_as_string(hide_password=True)} holds no study data: create it "
                "with `study-monitor demo` or an import"
            )
        with Session(engine) as session:
            if study is None:
                studies = list_studies(session)["study_id"].tolist()
                if len(studies) != 1:
                    _fail(
                        "--study is needed: the database holds "
                        + (", ".join(studies) if studies else "no study")
                    )
                study = studies[0]
            figures = study_summary(session, study_id=study)
    except UnknownStudyError:
        _fail(f"no study {study!r} in {engine.url.render_as_string(hide_password=True)}")
    except SQLAlchemyError as error:
        _fail(
            f"cannot read {engine.url.render_as_string(hide_password=True)}: "
            f"{getattr(error, 'orig', error)}"
        )
    if as_json:
        json.dump(figures, sys.stdout)
        sys.stdout.write("\n")
        return
    for key, value in figures.items():
        typer.echo(f"{key:30} {value}")


@import_app.command("sdtm")
def import_sdtm_command(
    path: Annotated[Path, typer.Argument(help="Folder of SDTM datasets (.xpt, .csv, .json).")],
    study_id: Annotated[
        str | None, typer.Option("--study-id", help="Study id to load under (default: STUDYID).")
    ] = None,
    cutoff: Annotated[
        str | None,
        typer.Option("--cutoff", help="Data cut-off date (YYYY-MM-DD) where TS has no DCUTDTC."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the study's data even if few subjects match.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Import an SDTM package as a new data cut: all or nothing."""
    cutoff_date = None
    if cutoff:
        try:
            cutoff_date = dt.date.fromisoformat(cutoff)
        except ValueError:
            _fail(f"--cutoff {cutoff!r} is not a date (YYYY-MM-DD)")
    engine = make_engine(db or database_url())
    try:
        report = import_sdtm(engine, path, study_id=study_id, cutoff=cutoff_date, replace=replace)
    except ImportFailure as failure:
        _fail(f"{failure}; nothing was written")
    except Exception as error:  # a bug, not bad input: still say plainly that nothing was written
        typer.echo(
            f"error: the import stopped unexpectedly ({error.__class__.__name__}: {error}); "
            "nothing was written. Please report this with the files.",
            err=True,
        )
        raise typer.Exit(code=1) from None
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")
    for line in report.summary_lines():
        typer.echo(line)


@import_app.command("ctgov")
def import_ctgov_command(
    path: Annotated[Path, typer.Argument(help="A ClinicalTrials.gov API v2 study record (.json).")],
    study_id: Annotated[
        str | None,
        typer.Option("--study-id", help="An existing study to enrich (default: the NCT id)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create or update a study from its registry record: facts, sites, criteria."""
    engine = make_engine(db or database_url())
    try:
        create_schema(engine)
        with session_scope(engine) as session:
            result = import_ctgov_file(session, path, study_id=study_id)
    except RegistryRecordError as error:
        _fail(f"{error}; nothing was written")
    except SQLAlchemyError as error:
        _fail(
            f"the database refused the import: {getattr(error, 'orig', error)}; nothing was written"
        )
    for warning in result.warnings:
        typer.echo(f"warning: {path.name}: {warning}")
    typer.echo(
        f"study {result.study_id} {'created' if result.created else 'updated'} from {path.name}: "
        f"{result.inclusion} inclusion and {result.exclusion} exclusion criteria, "
        f"{result.sites} site(s)"
    )


if __name__ == "__main__":  # pragma: no cover
    app()
