"""The ``study-monitor`` command (DESIGN.md contract): demo data and the headline figures as JSON."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from dashboard.config import database_url

if TYPE_CHECKING:  # named in annotations only
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from dashboard.access import CurrentUser
    from dashboard.importers.run import SdtmImportReport
    from dashboard.queries.scope import SiteScope
    from dashboard.views.context import ViewContext

# Only what defining the commands needs is imported here (typer, the standard library, the config):
# `study-monitor --help` then starts in a fraction of a second. Each command imports the database
# (sqlalchemy, sqlmodel, alembic), the queries and views (pandas), the demo builders and importers
# (scipy) and the pack (altair, reportlab, openpyxl) where it uses them, exception types included:
# importing all of it up front took over two seconds before any command ran.
# tests/test_cli_startup.py checks that asking for help imports none of them.

app = typer.Typer(
    help="Study-monitoring dashboard: load study data and print its headline figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

import_app = typer.Typer(
    help="Load study data: SDTM packages, ClinicalTrials.gov records and CTMS site tables.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

mapping_app = typer.Typer(
    help="Mapping files for REDCap, ODM and spreadsheet imports: draft one.", no_args_is_help=True
)
app.add_typer(mapping_app, name="mapping")

db_app = typer.Typer(help="The database schema: upgrade it, add a migration.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: DATABASE_URL, else the SQLite file under data/).",
        show_default=False,
    ),
]


# Every command that reads study data takes it (DESIGN.md security model): the figures that user may
# see, with the same scope the app gives them.
AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Run with this user's site scope (an e-mail of `study-monitor user list`).",
        show_default=False,
    ),
]


class DemoStudy(StrEnum):
    NCT06466850 = "NCT06466850"
    multisite = "multisite"
    scale = "scale"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _open(db: str | None) -> "Engine":
    """The engine of ``--db`` (else DATABASE_URL, else the SQLite file), its schema made sure of
    (created if the database is empty); a database whose schema is behind ends the command with
    the message that names ``study-monitor db upgrade``."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.db import SchemaError, ensure_schema, make_engine, shown_url

    engine = make_engine(db or database_url())
    try:
        ensure_schema(engine)
    except SchemaError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"cannot open {shown_url(engine)}: {getattr(error, 'orig', error)}")
    return engine


@app.command()
def demo(
    study: Annotated[
        DemoStudy, typer.Option("--study", help="Which demo study to create or refresh.")
    ] = DemoStudy.NCT06466850,
    subjects: Annotated[
        int, typer.Option("--subjects", min=1, help="Subjects of the scale study.")
    ] = 50_000,
    redcap_export: Annotated[
        Path | None,
        typer.Option(
            "--redcap-export",
            help="NCT06466850 only: also write it as a REDCap project's export (dictionary, "
            "records, ODM XML, spreadsheet, mapping) into this folder.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create or refresh a synthetic demo study (NCT06466850, DEMO-MULTI or DEMO-SCALE)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope, shown_url
    from dashboard.demo import (
        MULTISITE_STUDY_ID,
        SCALE_STUDY_ID,
        SEED_STUDY_ID,
        build_multisite_study,
        build_scale_study,
        build_seed_study,
    )

    engine = _open(db)
    try:
        with session_scope(engine) as session:
            if study is DemoStudy.NCT06466850:
                build_seed_study(session)
                study_id = SEED_STUDY_ID
                if redcap_export is not None:
                    from dashboard.demo_redcap import export_seed_redcap

                    session.flush()
                    export_seed_redcap(session, redcap_export)
            elif study is DemoStudy.multisite:
                build_multisite_study(session)
                study_id = MULTISITE_STUDY_ID
            else:
                build_scale_study(session, n_subjects=subjects)
                study_id = SCALE_STUDY_ID
            access.record(
                session,
                email=access.CLI_EMAIL,
                action=access.IMPORT,
                study_id=study_id,
                detail={"kind": "demo", **access.cli_detail()},
            )
    except SQLAlchemyError as error:
        _fail(
            f"could not write the demo study to {engine.url!r}: {error.__class__.__name__}: "
            f"{getattr(error, 'orig', error)}"
        )
    except OSError as error:
        _fail(f"cannot write the REDCap export to {redcap_export}: {error.strerror or error}")
    typer.echo(f"demo study {study_id} written to {shown_url(engine)} (synthetic data)")
    if redcap_export is not None:
        typer.echo(f"its REDCap-style export written to {redcap_export} (synthetic data)")


def _existing_database(url: str) -> "Engine":
    """The engine of a database the command only reads: a SQLite file that is not there is an
    error, not a new empty database."""
    from dashboard.db import make_engine, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        _fail(
            f"database file {path} does not exist: create it with `study-monitor demo` or an import"
        )
    return make_engine(url)


def _require_study_tables(engine: "Engine") -> None:
    """A database without this app's tables is refused, not given them (the command only reads);
    one behind or ahead of the code raises SchemaError."""
    from dashboard.db import ensure_schema, has_schema, shown_url

    if not has_schema(engine):
        _fail(
            f"{shown_url(engine)} holds no study data: create it with `study-monitor demo` "
            "or an import"
        )
    ensure_schema(engine)


@contextmanager
def _reading(engine: "Engine", study: str | None) -> Iterator["Session"]:
    """A session on ``engine`` for a command that reads a study: a database without this app's
    tables, a study it does not hold, an unknown cut or a refusal each end in a plain exit 2."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from dashboard.db import SchemaError, shown_url
    from dashboard.views.common import UnknownCutError, UnknownStudyError

    try:
        _require_study_tables(engine)
        with Session(engine) as session:
            yield session
    except SchemaError as error:
        _fail(str(error))
    except UnknownStudyError:
        _fail(f"no study {study!r} in {shown_url(engine)}")
    except UnknownCutError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"cannot read {shown_url(engine)}: {getattr(error, 'orig', error)}")


def _user_scope(user: "CurrentUser | None", study: str) -> "SiteScope":
    """The sites of ``study`` that --as USER may see (None: every site, or no --as); a study the
    user may not see is an error."""
    from dashboard import access

    if user is None:
        return None
    if not access.may_see_study(user, study):
        _fail(f"{user.email} has no access to study {study!r}")
    return access.allowed_sites(user, study)


@app.command()
def summary(
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study id (default: the only study in the database)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """The study's headline figures: screened, screen failures, enrolled, adverse events, the
    potential Hy's law cases (with --as EMAIL, at that user's sites only)."""
    from dashboard import access
    from dashboard.queries.studies import list_studies

    engine = _existing_database(db or database_url())
    with _reading(engine, study) as session:
        user = _as_user(session, as_email)
        if study is None:
            studies = [
                s
                for s in list_studies(session)["study_id"].tolist()
                if user is None or access.may_see_study(user, s)
            ]
            if len(studies) != 1:
                _fail(
                    "--study is needed: "
                    + (f"{user.email} may see " if user else "the database holds ")
                    + (", ".join(studies) if studies else "no study")
                )
            study = studies[0]
        # The Overview view's figures (its ``summary_figures``), without the rest of the view
        # (the forecast, the accrual chart, what changed since the last cut) no one prints here.
        from dashboard.views.common import study_frame
        from dashboard.views.labs import hys_law_candidates
        from dashboard.views.overview import summary_figures
        from dashboard.views.reader import Reader

        ctx = _view_context(session, user, study)
        read = Reader(session, ctx)
        figures = summary_figures(read, study_frame(read))
        # The potential Hy's law cases (issue #21), through the same context: the user's sites,
        # and the Labs page's rule (``labs.HYS_LAW_RULE``); an empty list without LB.
        figures["hys_law_candidates"] = hys_law_candidates(session, ctx)
        if figures["hys_law_candidates"] is None:
            typer.echo(
                f"warning: {study}'s laboratory figures are counted when a data cut is imported "
                "and its current cut was stored before they were: hys_law_candidates is null "
                "until the study is imported again",
                err=True,
            )
    if as_json:
        json.dump(figures, sys.stdout)
        sys.stdout.write("\n")
        return
    for key, value in figures.items():
        typer.echo(f"{key:30} {value}")


@app.command()
def report(
    study: Annotated[str, typer.Option("--study", help="Study id.")],
    out: Annotated[
        Path,
        typer.Option("--out", help="Folder for the PDF and the workbook (created if missing)."),
    ],
    since_cut: Annotated[
        int | None,
        typer.Option(
            "--since-cut",
            help="Mark what is new since this earlier data cut (default: the cut before the "
            "latest).",
            show_default=False,
        ),
    ] = None,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """The monitoring-meeting pack: OUT/<study>-pack-<cut>.pdf and .xlsx, what is new since an
    earlier data cut marked (with --as EMAIL, at that user's sites only). Prints the two paths."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope, shown_url
    from dashboard.report.files import check_writable, pack_stem, staged_files
    from dashboard.report.pack import build_pack
    from dashboard.report.pdf import pack_pdf
    from dashboard.report.workbook import pack_workbook

    engine = _existing_database(db or database_url())
    try:
        check_writable(out)
    except OSError as error:
        _fail(f"cannot write to {out}: {error.strerror or error}")
    with _reading(engine, study) as session:
        user = _as_user(session, as_email)
        pack = build_pack(session, _view_context(session, user, study, since_cut_id=since_cut))
    stem = pack_stem(pack)
    try:
        contents = {f"{stem}.pdf": pack_pdf(pack), f"{stem}.xlsx": pack_workbook(pack)}
    except Exception as error:  # a bug, not bad input: still say plainly that nothing was written
        typer.echo(
            f"error: the pack could not be laid out ({error.__class__.__name__}: {error}); "
            "nothing was written. Please report this with the study.",
            err=True,
        )
        raise typer.Exit(code=1) from None
    try:
        # The export is audited before the files get their names: an audit trail that cannot be
        # written stops the export, and the staged files are removed.
        with staged_files(out, contents) as paths, session_scope(engine) as session:
            access.record(
                session,
                email=access.CLI_EMAIL,
                action=access.EXPORT,
                study_id=study,
                sites=pack.scope,
                detail={
                    "kind": "monitoring pack",
                    "files": list(contents),
                    "since_cut": pack.since_cut.id if pack.since_cut else None,
                    **({"as": user.email} if user else {}),
                    **access.cli_detail(),
                },
            )
    except OSError as error:
        _fail(f"cannot write to {out}: {error.strerror or error}; nothing was written")
    except SQLAlchemyError as error:
        _fail(
            f"cannot record the export in the audit trail of {shown_url(engine)}: "
            f"{getattr(error, 'orig', error)}; nothing was written"
        )
    for written in paths:
        typer.echo(str(written))


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
    from dashboard import access
    from dashboard.importers.run import import_sdtm

    cutoff_date = None
    if cutoff:
        try:
            cutoff_date = dt.date.fromisoformat(cutoff)
        except ValueError:
            _fail(f"--cutoff {cutoff!r} is not a date (YYYY-MM-DD)")
    engine = _open(db)
    _report_import(
        lambda: import_sdtm(
            engine,
            path,
            study_id=study_id,
            cutoff=cutoff_date,
            replace=replace,
            audit_detail=access.cli_detail(),
        )
    )


def _report_import(run: Callable[[], "SdtmImportReport"]) -> None:
    """Run an import that makes a data cut and print its warnings and summary; bad input is one
    message and exit status 2, a bug one message and status 1: nothing written either way."""
    from dashboard.importers.errors import ImportFailure

    try:
        report = run()
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


def _import_edc(
    kind: str, files: dict[str, Path], mapping: Path, *, replace: bool, db: str | None
) -> None:
    """An EDC export through its mapping file (issue #23): the shared body of the three imports."""
    from dashboard import access
    from dashboard.importers.mapping import read_mapping
    from dashboard.importers.run import import_edc

    _report_import(
        lambda: import_edc(
            _open(db),
            kind,
            files,
            read_mapping(mapping),
            replace=replace,
            audit_detail=access.cli_detail(),
        )
    )


MappingOption = Annotated[
    Path,
    typer.Option(
        "--mapping",
        help="Mapping file (TOML): which fields are which (see `study-monitor mapping draft`).",
        show_default=False,
    ),
]
ReplaceOption = Annotated[
    bool, typer.Option("--replace", help="Replace the study's data even if few subjects match.")
]


@import_app.command("redcap")
def import_redcap_command(
    mapping: MappingOption,
    records: Annotated[
        Path | None,
        typer.Option("--records", help="Records export (CSV, raw data).", show_default=False),
    ] = None,
    dictionary: Annotated[
        Path | None,
        typer.Option(
            "--dictionary", help="The project's data dictionary (CSV).", show_default=False
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Pull both from the project's API instead (https://.../api/); the token is read "
            "from the environment variable --token-env names.",
            show_default=False,
        ),
    ] = None,
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding the API token.")
    ] = "REDCAP_API_TOKEN",
    replace: ReplaceOption = False,
    db: DbOption = None,
) -> None:
    """Import a REDCap project's records as a new data cut, through a mapping file: all or
    nothing. Fields marked "Identifier? y" (and fields named for a name, birth date, address,
    phone or e-mail) are dropped unread. Give the two downloaded files, or --url to pull them."""
    if url is None:
        if records is None or dictionary is None:
            _fail("give --records and --dictionary (the two downloaded files), or --url")
        _import_edc(
            "redcap",
            {"records": records, "dictionary": dictionary},
            mapping,
            replace=replace,
            db=db,
        )
        return
    if records is not None or dictionary is not None:
        _fail("--url pulls the records and the dictionary: give it without --records/--dictionary")
    token = os.environ.get(token_env, "")
    if not token.strip():
        # Never an option: a token on the command line is kept in the shell's history.
        _fail(f"{token_env} is not set: put the project's API token in it")
    from dashboard import access
    from dashboard.importers.mapping import read_mapping
    from dashboard.importers.run import import_redcap_api

    _report_import(
        lambda: import_redcap_api(
            _open(db),
            url,
            token,
            read_mapping(mapping),
            replace=replace,
            audit_detail=access.cli_detail(),
        )
    )


@import_app.command("odm")
def import_odm_command(
    path: Annotated[
        Path, typer.Argument(help="CDISC ODM 1.3 XML with metadata and data (REDCap, OpenClinica).")
    ],
    mapping: MappingOption,
    replace: ReplaceOption = False,
    db: DbOption = None,
) -> None:
    """Import a CDISC ODM 1.3 export as a new data cut, through a mapping file: all or nothing."""
    _import_edc("odm", {"odm": path}, mapping, replace=replace, db=db)


@import_app.command("table")
def import_table_command(
    path: Annotated[
        Path,
        typer.Argument(help="Spreadsheet (.csv or .xlsx, first sheet) in REDCap's records layout."),
    ],
    mapping: MappingOption,
    replace: ReplaceOption = False,
    db: DbOption = None,
) -> None:
    """Import a spreadsheet of records as a new data cut, through a mapping file: all or nothing.
    Answers are taken as written (labels)."""
    _import_edc("table", {"table": path}, mapping, replace=replace, db=db)


@mapping_app.command("draft")
def mapping_draft_command(
    dictionary: Annotated[Path, typer.Argument(help="A REDCap data dictionary (CSV).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the draft here (default: print it).", show_default=False),
    ] = None,
) -> None:
    """Propose a first mapping file (TOML) from a REDCap data dictionary's field names, types and
    choices: criteria, dates, adverse events, visits, baseline fields. Check every line."""
    from dashboard.importers.edc import read_dictionary
    from dashboard.importers.errors import ImportFailure
    from dashboard.importers.mapping_draft import draft_mapping

    try:
        fields, _record_id = read_dictionary(dictionary)
    except ImportFailure as failure:
        _fail(str(failure))
    text = draft_mapping(fields, dictionary=dictionary.name)
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists():
        _fail(f"{out} exists: give another --out, or remove it first")
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {out}: {error.strerror or error}")
    typer.echo(f"mapping drafted in {out}: check every line before importing with it")


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
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.importers.ctgov import RegistryRecordError
    from dashboard.importers.run import import_ctgov_path
    from dashboard.views.format import plural

    engine = _open(db)
    try:
        result = import_ctgov_path(engine, path, study_id=study_id)
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
        f"{plural(result.sites, 'site')}"
    )


@import_app.command("sites")
def import_sites_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="CTMS site table (.csv): SITEID and at least one of ACTIVATED, PLANNED, TARGET; "
            "NAME and COUNTRY optional.",
            show_default=False,
        ),
    ],
    study: Annotated[
        str | None,
        typer.Option("--study", help="Study id (default: the only study in the database)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Set the sites' activation dates and enrollment targets from a CTMS site table (CSV), one
    row per site, headers in any case: SITEID, ACTIVATED (the date the site actually opened,
    YYYY-MM-DD), PLANNED (the date it is planned to open, YYYY-MM-DD), TARGET (the site's
    enrollment target, a whole number), optionally NAME and COUNTRY. An empty cell keeps the
    stored value; sites the study does not have yet are added (planned, not yet open); sites not
    in the file are left as they are. The planned dates feed the site-level recruitment forecast;
    without an activation date a site counts from its first screening. All or nothing: a bad row
    (named by its row, the header being row 1, its column and value) writes nothing."""
    from dashboard import access
    from dashboard.importers.errors import ImportFailure
    from dashboard.importers.run import import_sites_path

    engine = _existing_database(db or database_url())
    try:
        result = import_sites_path(engine, path, study_id=study, audit_detail=access.cli_detail())
    except ImportFailure as failure:
        _fail(f"{failure}; nothing was written")
    except Exception as error:  # a bug, not bad input: still say plainly that nothing was written
        typer.echo(
            f"error: the import stopped unexpectedly ({error.__class__.__name__}: {error}); "
            "nothing was written. Please report this with the file.",
            err=True,
        )
        raise typer.Exit(code=1) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(result.summary_line())


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Upgrade the database's schema to the one this version reads (an empty database is
    created at it)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.db import SchemaError, make_engine, shown_url, upgrade_schema

    engine = make_engine(db or database_url())
    try:
        before, after = upgrade_schema(engine)
    except SchemaError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"could not upgrade {shown_url(engine)}: {getattr(error, 'orig', error)}")
    if before == after:
        typer.echo(f"{shown_url(engine)} is at schema revision {after}: nothing to do")
    else:
        typer.echo(
            f"{shown_url(engine)} upgraded from schema revision "
            f"{before or 'none (before migrations)'} to {after}"
        )


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the database's schema revision and the one this version reads."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard.db import make_engine, refusal, schema_state, shown_url

    engine = make_engine(db or database_url())
    try:
        state = schema_state(engine)
    except SQLAlchemyError as error:
        _fail(f"cannot read {shown_url(engine)}: {getattr(error, 'orig', error)}")
    if state.is_current or state.is_empty:
        status = "current" if state.is_current else "empty: any command creates the schema"
        typer.echo(
            f"{shown_url(engine)}: schema revision {state.revision or 'none'}, "
            f"latest {state.head} ({status})"
        )
    else:
        typer.echo(refusal(engine, state))


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the migration changes.")],
) -> None:
    """Write a new migration from the changes to dashboard/models.py (for developers: review the
    file it writes, then commit it with the model change)."""
    from dashboard.db import new_migration

    path = new_migration(message)
    # Alembic writes its own layout; the project's formatter and linter make it the project's.
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff:
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False)
        subprocess.run([ruff, "check", "--fix", "--quiet", str(path)], check=False)
    else:
        typer.echo("warning: ruff not found: format the migration with `ruff format`", err=True)
    typer.echo(f"wrote {path}: review it, then commit it with the model change")


# -- users (DESIGN.md security model) ------------------------------------------------------------

user_app = typer.Typer(
    help="Who may sign in: role, sites per study, unblinding. Changes are audited.",
    no_args_is_help=True,
)
app.add_typer(user_app, name="user")


# Spelled out rather than taken from dashboard.access, which would load the database modules for
# --help; tests/test_cli_startup.py checks they are access's roles, in models.ROLES's order.
class Role(StrEnum):
    admin = "admin"
    sponsor = "sponsor"
    monitor = "monitor"
    investigator = "investigator"


def _view_context(
    session: "Session",
    user: "CurrentUser | None",
    study_id: str,
    *,
    since_cut_id: int | None = None,
) -> "ViewContext":
    """What ``study_id`` is shown as to ``--as`` ``user``: their sites, and arms only if they may
    see them. Without ``--as``, every site and arm: whoever runs the command holds the database
    URL (as local mode does). Raises UnknownStudyError."""
    from dashboard.queries.studies import study_info
    from dashboard.views.common import UnknownStudyError
    from dashboard.views.context import ViewContext

    info = study_info(session, study_id=study_id)
    if info is None:
        raise UnknownStudyError(study_id)
    scope = _user_scope(user, study_id)
    return ViewContext.for_viewer(
        info,
        unblinded=user is None or user.unblinded,
        scope=scope,
        since_cut_id=since_cut_id,
        viewer_sites=scope,
    )


def _as_user(session: "Session", email: str | None) -> "CurrentUser | None":
    """The user of ``--as EMAIL`` (None without it); an unknown e-mail ends the command."""
    if email is None:
        return None
    from dashboard import access

    user = access.load_user(session, email=email)
    if user is None:
        _fail(f"no user {access.normalise_email(email)!r}: see `study-monitor user list`")
    return user


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Argument(help="The e-mail the user signs in with.")],
    role: Annotated[Role, typer.Option("--role", help="What the user may do.")],
    study: Annotated[
        str | None, typer.Option("--study", help="The study the --sites belong to.")
    ] = None,
    sites: Annotated[
        str | None,
        typer.Option(
            "--sites",
            help="SITEIDs of --study the user may see, comma-separated (replaces the user's "
            "sites in that study). Without a grant in a study, an investigator sees none of it "
            "and the other roles see every site.",
        ),
    ] = None,
    unblinded: Annotated[
        bool, typer.Option("--unblinded", help="May see by-arm figures of blinded studies.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a user, or update one (role and unblinding as given; sites of --study replaced)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope

    engine = _open(db)
    try:
        with session_scope(engine) as session:
            change = access.add_user(
                session,
                email=email,
                role=role.value,
                study_id=study,
                sites=(sites or "").split(","),
                unblinded=unblinded,
                actor=access.CLI_EMAIL,
                audit_detail=access.cli_detail(),
            )
    except ValueError as error:
        _fail(f"{error}; nothing was written")
    except SQLAlchemyError as error:
        _fail(f"the database refused the change: {getattr(error, 'orig', error)}")
    for warning in change.warnings:
        typer.echo(f"warning: {warning}")
    user = change.user
    typer.echo(
        f"user {user.email} {'added' if change.created else 'updated'}: {user.role}"
        f"{', unblinded' if user.unblinded else ''}; sites: {access.grants_text(user)}"
    )


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    db: DbOption = None,
) -> None:
    """Every user with their role, unblinding and sites."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from dashboard import access
    from dashboard.db import shown_url

    engine = _open(db)
    try:
        with Session(engine) as session:
            users = access.list_users(session)
    except SQLAlchemyError as error:
        _fail(f"cannot read {shown_url(engine)}: {getattr(error, 'orig', error)}")
    if as_json:
        json.dump(
            [
                {
                    "email": u.email,
                    "role": u.role,
                    "unblinded": u.unblinded,
                    "sites": {study: list(site_ids) for study, site_ids in u.grants},
                }
                for u in users
            ],
            sys.stdout,
        )
        sys.stdout.write("\n")
        return
    if not users:
        typer.echo("no users: add one with `study-monitor user add EMAIL --role ROLE`")
    for u in users:
        blinding = "unblinded" if u.unblinded else "blinded"
        typer.echo(f"{u.email:40} {u.role:13} {blinding:10} {access.grants_text(u)}")


@user_app.command("remove")
def user_remove(
    email: Annotated[str, typer.Argument(help="The user's e-mail.")],
    db: DbOption = None,
) -> None:
    """Remove a user and their sites: they can no longer sign in."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope

    engine = _open(db)
    try:
        with session_scope(engine) as session:
            removed = access.remove_user(
                session, email=email, actor=access.CLI_EMAIL, audit_detail=access.cli_detail()
            )
    except SQLAlchemyError as error:
        _fail(f"the database refused the change: {getattr(error, 'orig', error)}")
    if not removed:
        _fail(f"no user {access.normalise_email(email)!r}: see `study-monitor user list`")
    typer.echo(f"user {access.normalise_email(email)} removed")


kri_app = typer.Typer(
    help="Key risk indicators: every site's KRIs scored as gsm does (--study), or any table "
    "scored (`kri score`).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(kri_app, name="kri")


class ScoringMethod(StrEnum):
    gsm = "gsm"
    robust = "robust"
    exact = "exact"


class KriType(StrEnum):
    rate = "rate"
    binary = "binary"


MethodOption = Annotated[
    ScoringMethod,
    typer.Option(
        "--method",
        help="gsm: normal approximation with over-dispersion (gsm's default); robust: "
        "over-dispersion from winsorised z-scores (Spiegelhalter 2005); exact: Poisson or "
        "binomial mid-p limits, for small sites.",
    ),
]


@kri_app.callback()
def kri(
    context: typer.Context,
    study: Annotated[str | None, typer.Option("--study", help="Study id.")] = None,
    method: MethodOption = ScoringMethod.gsm,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Every site's key risk indicators: numerator, denominator, metric, score and flag (with
    --as EMAIL, that user's sites only). `study-monitor kri score FILE` scores a table."""
    if context.invoked_subcommand is not None:
        return
    if study is None:
        _fail("--study is needed (or `study-monitor kri score FILE` to score a table)")
    from dashboard.views.site_risk import SiteRiskOptions, build_site_risk

    engine = _existing_database(db or database_url())
    with _reading(engine, study) as session:
        user = _as_user(session, as_email)
        view = build_site_risk(
            session, _view_context(session, user, study), SiteRiskOptions(method=method.value)
        )
    found = view.kri_rows()
    if as_json:
        json.dump(found, sys.stdout)
        sys.stdout.write("\n")
        return
    for kri_status in view.kris:
        if kri_status.absent:
            typer.echo(f"{kri_status.definition.name}: not computed ({kri_status.absent})")
    for row in found:
        score = "-" if row["score"] is None else f"{row['score']:.2f}"
        flag = "-" if row["flag"] is None else row["flag"]
        typer.echo(
            f"{row['site']:10} {row['name']:40} {row['numerator']!s:>8} / "
            f"{row['denominator']!s:<10} score {score:>7}  flag {flag}"
        )


@kri_app.command("score")
def kri_score(
    file: Annotated[Path, typer.Argument(help="CSV with columns GroupID, Numerator, Denominator.")],
    kind: Annotated[KriType, typer.Option("--type", help="rate or binary (a proportion).")],
    thresholds: Annotated[
        str,
        typer.Option(
            "--thresholds",
            help="Four ascending cut points (low red, low amber, high amber, high red) or two "
            "(high side only).",
        ),
    ] = "-2,-1,2,3",
    min_denominator: Annotated[
        float | None,
        typer.Option("--min-denominator", help="No score below this denominator."),
    ] = None,
    min_numerator: Annotated[
        float | None, typer.Option("--min-numerator", help="No score below this numerator.")
    ] = None,
    method: MethodOption = ScoringMethod.gsm,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Score any table as gsm does: rows summed per GroupID, one object per group with group,
    numerator, denominator, metric, score and flag (score and flag null under a minimum)."""
    from dashboard.metrics.kri import Scoring, json_number, read_counts, score_groups

    try:
        cuts = tuple(float(t) for t in thresholds.split(","))
    except ValueError:
        _fail(f"--thresholds {thresholds!r}: give numbers separated by commas, e.g. -2,-1,2,3")
    try:
        scoring = Scoring(kind.value, cuts, min_denominator, min_numerator, method.value)
        counts = read_counts(file)
    except ValueError as error:
        _fail(str(error))
    scored = score_groups(counts, scoring)
    found = [
        {
            "group": row["group"],
            "numerator": json_number(row["numerator"]),
            "denominator": json_number(row["denominator"]),
            "metric": json_number(row["metric"]),
            "score": json_number(row["score"]),
            "flag": json_number(row["flag"]),
        }
        for row in scored.to_dict("records")
    ]
    if as_json:
        json.dump(found, sys.stdout)
        sys.stdout.write("\n")
        return
    for row in found:
        typer.echo(
            f"{row['group']:12} {row['numerator']!s:>10} / {row['denominator']!s:<12} "
            f"metric {row['metric']}  score {row['score']}  flag {row['flag']}"
        )


qtl_app = typer.Typer(
    help="Quality tolerance limits: set a study's limits, list them and their excursions, "
    "record an excursion's evaluation. Changes are audited.",
    no_args_is_help=True,
)
app.add_typer(qtl_app, name="qtl")


@qtl_app.command("set")
def qtl_set(
    study: Annotated[str, typer.Option("--study", help="Study id.")],
    parameter: Annotated[
        str,
        typer.Option("--parameter", help="qtl_eligibility or qtl_discontinuation."),
    ],
    p0: Annotated[float, typer.Option("--p0", help="The expected proportion, e.g. 0.03.")],
    z: Annotated[float, typer.Option("--z", help="Standard errors above p0 the limit lies.")] = 3.0,
    db: DbOption = None,
) -> None:
    """Set a QTL: a cut is over it when p > p0 + z sqrt(p0 (1 - p0) / N)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope
    from dashboard.quality import QualityError, set_limit

    engine = _open(db)
    try:
        with session_scope(engine) as session:
            opened = set_limit(
                session, study_id=study, parameter=parameter, p0=p0, z=z, email=access.CLI_EMAIL
            )
    except QualityError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"the database refused the change: {getattr(error, 'orig', error)}")
    typer.echo(f"{study}: {parameter} set to p0 {p0}, z {z}")
    for name in opened:
        typer.echo(f"the latest cut is over the new limit: excursion opened for {name}")


@qtl_app.command("list")
def qtl_list(
    study: Annotated[str, typer.Option("--study", help="Study id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """The study's QTLs on its latest cut, and their excursions."""
    from dashboard.views.site_risk import build_site_risk

    engine = _existing_database(db or database_url())
    with _reading(engine, study) as session:
        view = build_site_risk(session, _view_context(session, None, study))
    qtls = [
        {
            "parameter": q.definition.id,
            "name": q.definition.name,
            "p0": q.p0,
            "z": q.z,
            "proportion": q.latest["proportion"] if q.latest else None,
            "limit": q.latest["limit"] if q.latest else None,
            "over": q.over,
        }
        for q in view.qtls
    ]
    excursions = json.loads(view.excursions.to_json(orient="records", date_format="iso"))
    if as_json:
        json.dump({"qtls": qtls, "excursions": excursions}, sys.stdout)
        sys.stdout.write("\n")
        return
    for q in qtls:
        state = "OVER THE LIMIT" if q["over"] else "within the limit"
        typer.echo(
            f"{q['name']:25} p0 {q['p0']} z {q['z']}: {q['proportion']} against {q['limit']}, "
            f"{state}"
        )
    numbers = {c.id: c.number for c in view.frame.cuts}  # the JSON keeps the id; words a number
    for e in excursions:
        state = "closed" if e["closed"] else "open"
        cut = numbers.get(e["cut_id"], e["cut_id"])
        typer.echo(f"excursion {e['id']} ({e['parameter']}, cut {cut}): {state}")


@qtl_app.command("evaluate")
def qtl_evaluate(
    study: Annotated[str, typer.Option("--study", help="Study id.")],
    excursion: Annotated[int, typer.Argument(help="The excursion's number (`qtl list`).")],
    evaluation: Annotated[str, typer.Option("--evaluation", help="What was found.")],
    action: Annotated[str, typer.Option("--action", help="What was done about it.")],
    close: Annotated[bool, typer.Option("--close", help="Close the excursion.")] = False,
    db: DbOption = None,
) -> None:
    """Record an excursion's evaluation and action (and close it with --close)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope
    from dashboard.quality import QualityError, evaluate_excursion

    engine = _open(db)
    try:
        with session_scope(engine) as session:
            evaluate_excursion(
                session,
                study_id=study,
                excursion_id=excursion,
                evaluation=evaluation,
                action=action,
                close=close,
                email=access.CLI_EMAIL,
            )
    except QualityError as error:
        _fail(str(error))
    except SQLAlchemyError as error:
        _fail(f"the database refused the change: {getattr(error, 'orig', error)}")
    typer.echo(f"excursion {excursion} " + ("evaluated and closed" if close else "evaluated"))


review_app = typer.Typer(
    help="Review (issue #20): the review status and log of a study; marks and query messages, "
    "written with --as EMAIL's rights. Every mark and message is audited.",
    no_args_is_help=True,
)
app.add_typer(review_app, name="review")
StudyOption = Annotated[str, typer.Option("--study", help="Study id.")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@review_app.command("status")
def review_status(
    study: StudyOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Records per page, record type, site, review role and state, and queries per site and
    state (with --as EMAIL, at that user's sites only)."""
    from dashboard.views.review import status

    engine = _existing_database(db or database_url())
    with _reading(engine, study) as session:
        user = _as_user(session, as_email)
        found = status(session, _view_context(session, user, study), today=_today())
    figures = {"study_id": study, **found.as_json()}
    if as_json:
        json.dump(figures, sys.stdout)
        sys.stdout.write("\n")
        return
    needing = found.records[found.records["state"] != "reviewed"]
    totals = needing.groupby(["page", "entity", "role", "state"], as_index=False)["records"].sum()
    for page, entity, role, state, n in totals.itertuples(index=False):
        typer.echo(f"{page:16} {entity:8} {role:16} {state:22} {n}")
    queries = found.queries.groupby("state", as_index=False)["queries"].sum()
    for state, n in queries.itertuples(index=False):
        typer.echo(f"queries {state:10} {n}")


@review_app.command("export")
def review_export(
    study: StudyOption,
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Write the study's review log (marks and query messages, in the order written) as CSV
    (with --as EMAIL, that user's sites only; texts as that user may read them)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope, shown_url
    from dashboard.report.cells import csv_text
    from dashboard.report.files import check_writable, staged_files
    from dashboard.views.review import export

    engine = _existing_database(db or database_url())
    try:
        check_writable(out.parent)
    except OSError as error:
        _fail(f"cannot write to {out.parent}: {error.strerror or error}")
    with _reading(engine, study) as session:
        user = _as_user(session, as_email)
        ctx = _view_context(session, user, study)
        log = export(session, ctx)
    contents = {out.name: csv_text(log).encode("utf-8")}
    try:
        with staged_files(out.parent, contents), session_scope(engine) as session:
            access.record(
                session,
                email=access.CLI_EMAIL,
                action=access.EXPORT,
                study_id=study,
                sites=ctx.scope,
                detail={
                    "kind": "review log",
                    "files": [out.name],
                    "rows": len(log),
                    **({"as": user.email} if user else {}),
                    **access.cli_detail(),
                },
            )
    except OSError as error:
        _fail(f"cannot write to {out}: {error.strerror or error}; nothing was written")
    except SQLAlchemyError as error:
        _fail(
            f"cannot record the export in the audit trail of {shown_url(engine)}: "
            f"{getattr(error, 'orig', error)}; nothing was written"
        )
    typer.echo(f"{out} ({len(log)} rows)")


@contextmanager
def _reviewing(
    db: str | None, study: str, as_email: str | None
) -> Iterator[tuple["Session", "CurrentUser"]]:
    """A session that commits a review write, and the user it is written as: --as EMAIL, else
    the command line as an admin (whoever runs it holds the database URL). A refusal or a
    database error ends the command with exit 2, nothing written."""
    from sqlalchemy.exc import SQLAlchemyError

    from dashboard import access
    from dashboard.db import session_scope, shown_url
    from dashboard.review import ReviewRefused

    engine = _existing_database(db or database_url())
    try:
        _require_study_tables(engine)
        with session_scope(engine) as session:
            user = _as_user(session, as_email) or access.CurrentUser(
                email=access.CLI_EMAIL, role=access.ADMIN, unblinded=True
            )
            yield session, user
    except ReviewRefused as error:
        _fail(f"{error}; nothing was written")
    except SQLAlchemyError as error:
        _fail(f"{shown_url(engine)} refused the change: {getattr(error, 'orig', error)}")


@review_app.command("mark")
def review_mark(
    study: StudyOption,
    entity: Annotated[str, typer.Option("--entity", help="subject, ae, ie or ds.")],
    keys: Annotated[
        list[str], typer.Option("--key", help="A record's natural key (repeat for several).")
    ],
    role: Annotated[str, typer.Option("--role", help="medical-monitor, cra or data-manager.")],
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Withdraw the marks instead.")
    ] = False,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Mark records reviewed in a review role (or withdraw the marks)."""
    from dashboard.review import mark

    with _reviewing(db, study, as_email) as (session, user):
        written = mark(
            session,
            user=user,
            study_id=study,
            entity=entity,
            keys=keys,
            role=role,
            reviewed=not withdraw,
        )
    typer.echo(f"{written} {'marks withdrawn' if withdraw else 'marked reviewed'} as {role}")


@review_app.command("query")
def review_query(
    study: StudyOption,
    entity: Annotated[str, typer.Option("--entity", help="subject, ae, ie or ds.")],
    key: Annotated[str, typer.Option("--key", help="The record's natural key.")],
    audience: Annotated[
        str, typer.Option("--audience", help="site, data-management or medical-monitor.")
    ],
    text: Annotated[str, typer.Option("--text", help="The question.")],
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Raise a query on one record; prints its number."""
    from dashboard.review import open_query

    with _reviewing(db, study, as_email) as (session, user):
        number = open_query(
            session,
            user=user,
            study_id=study,
            entity=entity,
            key=key,
            audience=audience,
            text=text,
        )
    typer.echo(f"query {number} opened")


def _post(
    kind: str, study: str, query: int, text: str, as_email: str | None, db: str | None
) -> None:
    from dashboard.review import post

    with _reviewing(db, study, as_email) as (session, user):
        post(session, user=user, study_id=study, thread_id=query, kind=kind, text=text)
    done = {"answer": "answered", "close": "closed", "reopen": "reopened"}[kind]
    typer.echo(f"query {query} {done}")


QueryOption = Annotated[int, typer.Option("--query", help="The query's number.")]
TextOption = Annotated[str, typer.Option("--text", help="The message.")]


@review_app.command("answer")
def review_answer(
    study: StudyOption,
    query: QueryOption,
    text: TextOption,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Answer a query."""
    _post("answer", study, query, text, as_email, db)


@review_app.command("close")
def review_close(
    study: StudyOption,
    query: QueryOption,
    text: TextOption,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Close a query, with a message."""
    _post("close", study, query, text, as_email, db)


@review_app.command("reopen")
def review_reopen(
    study: StudyOption,
    query: QueryOption,
    text: TextOption,
    as_email: AsOption = None,
    db: DbOption = None,
) -> None:
    """Reopen a closed or answered query, with a message."""
    _post("reopen", study, query, text, as_email, db)


if __name__ == "__main__":  # pragma: no cover
    app()
