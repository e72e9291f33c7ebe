"""The Subject page's reads: one subject's record (arms read "blinded" for a viewer who sees
none) and the codes the picker offers."""

import dataclasses

from sqlmodel import Session

from dashboard.metrics.countries import country_label
from dashboard.queries import subject
from dashboard.results.subject import SubjectRecord
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader

__all__ = ["PICKER_LIMIT", "SubjectRecord", "codes", "record"]

# The subject picker lists at most this many codes (type part of a code to narrow it).
PICKER_LIMIT = 200


def record(session: Session, ctx: ViewContext, usubjid: str) -> SubjectRecord | None:
    """The subject's record, its country named ("Iran (IRN)", not the bare ISO code)."""
    found = Reader(session, ctx)(subject.subject_record, usubjid=usubjid)
    if found is None:
        return None
    return dataclasses.replace(found, country=country_label(found.country))


def codes(session: Session, ctx: ViewContext, contains: str) -> tuple[list[str], int]:
    """(codes containing ``contains``, at most ``PICKER_LIMIT``; how many match in all)."""
    return Reader(session, ctx)(subject.subject_codes, contains=contains, limit=PICKER_LIMIT)
