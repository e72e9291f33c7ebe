"""What the admin asks of the audit trail (``queries.audit.audit_events``)."""

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class AuditFilter:
    """What the admin asked for; empty fields filter nothing. Dates are UTC days, both included."""

    emails: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    study_id: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
