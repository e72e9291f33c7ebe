"""Users of the access tests: one per role on the multisite demo, and the checks that a value
holds no subject of another site."""

import dataclasses
import io
import re
from typing import Any

import pandas as pd

from dashboard import access
from dashboard.db import make_engine, session_scope

MULTI = "DEMO-MULTI"
SEED = "NCT06466850"
INVESTIGATOR = "Investigator.101@Site.example"  # mixed case: e-mails are compared in lower case
INVESTIGATOR_SITE = "101"
MONITOR = "monitor@cro.example"
MONITOR_SITES = ("102", "103")
SPONSOR = "sponsor@pharma.example"
ADMIN = "admin@cro.example"
STRANGER = "stranger@elsewhere.example"  # signs in, but is not in the user table

# A DEMO-MULTI subject code names its site: DEMO-MULTI-<SITEID>-<number>.
SUBJECT_CODE = re.compile(r"DEMO-MULTI-(\d{3})-\d{4}")


def add_demo_users(url: str) -> None:
    """An investigator of site 101 (DEMO-MULTI only), a monitor of sites 102 and 103, a sponsor and
    an admin (every site of every study)."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        for email, role, study, sites in (
            (INVESTIGATOR, access.INVESTIGATOR, MULTI, (INVESTIGATOR_SITE,)),
            (MONITOR, access.MONITOR, MULTI, MONITOR_SITES),
            (SPONSOR, access.SPONSOR, None, ()),
            (ADMIN, access.ADMIN, None, ()),
        ):
            access.add_user(
                session, email=email, role=role, study_id=study, sites=sites, actor="tests"
            )
    engine.dispose()


def sites_named(value: Any) -> set[str]:
    """Every site a value names, through subject codes (in any text) and ``site_id`` columns:
    DataFrames, tuples, lists, dicts, dataclasses and text, looked through recursively."""
    found: set[str] = set()
    if isinstance(value, pd.DataFrame):
        for column in value.columns:
            series = value[column]
            if str(column).lower() in ("site_id", "siteid", "site"):
                found.update(str(s) for s in series.dropna())
            elif series.dtype == object:
                for cell in series.dropna():
                    found.update(sites_named(cell))
        found.update(SUBJECT_CODE.findall(" ".join(str(c) for c in value.columns)))
    elif isinstance(value, str):
        found.update(SUBJECT_CODE.findall(value))
    elif isinstance(value, bytes):
        found.update(SUBJECT_CODE.findall(value.decode("utf-8", errors="replace")))
    elif isinstance(value, dict):
        for item in value.values():
            found.update(sites_named(item))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found.update(sites_named(item))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            found.update(sites_named(getattr(value, field.name)))
    return found


def readable(name: str, data: Any) -> Any:
    """A downloaded file as something ``sites_named`` reads: CSV as a DataFrame, a workbook as
    its sheets, a PDF as its text; other files as they are."""
    if name.endswith(".csv"):
        return pd.read_csv(
            io.StringIO(data) if isinstance(data, str) else io.BytesIO(data), dtype=str
        )
    if name.endswith(".xlsx"):
        return pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str)
    if name.endswith(".pdf"):
        from pypdf import PdfReader

        return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    return data
