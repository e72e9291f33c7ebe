"""The Subject page's reads: one subject's record (arms read "blinded" for a viewer who sees
none) and the codes the picker offers."""

from sqlmodel import Session

from dashboard.queries import subject
from dashboard.results.subject import SubjectRecord
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader

__all__ = ["PICKER_LIMIT", "SubjectRecord", "codes", "record"]

# The subject picker lists at most this many codes (type part of a code to narrow it).
PICKER_LIMIT = 200


def record(session: Session, ctx: ViewContext, usubjid: str) -> SubjectRecord | None:
    return Reader(session, ctx)(subject.subject_record, usubjid=usubjid)


def codes(session: Session, ctx: ViewContext, contains: str) -> tuple[list[str], int]:
    """(codes containing ``contains``, at most ``PICKER_LIMIT``; how many match in all)."""
    return Reader(session, ctx)(subject.subject_codes, contains=contains, limit=PICKER_LIMIT)
