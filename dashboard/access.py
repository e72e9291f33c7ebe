"""Who may see what (DESIGN.md security model): users, roles, site scope and the audit trail.

No streamlit here: the CLI (``study-monitor user ...``, ``--as EMAIL``) and the app
(``dashboard/ui/auth.py``) share these rules, so they never disagree about a user's scope.

The rules:

- A user is a signed-in e-mail (lower case) in the ``app_user`` table, with one of ``ROLES``.
- Site grants (``UserSite``) are per study. A study with grants shows only the granted sites. A study
  without grants shows every site to an admin, sponsor or monitor, and nothing to an investigator:
  an investigator sees only the studies and sites granted (REDCap's data access groups).
- The scope a page queries with is the user's allowed sites intersected with the sidebar's choice.
- Only admins import data and read the audit trail; every role sees the data pages (scoped).
- The audit trail is append-only: this module only ever adds to it (see ``models.AuditEvent``).
"""

import datetime as dt
import getpass
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from dashboard.db import session_scope
from dashboard.models import IMPORT_ACTION, ROLES, AuditEvent, Site, User, UserSite
from dashboard.queries.scope import SiteScope

ADMIN = "admin"
SPONSOR = "sponsor"
MONITOR = "monitor"
INVESTIGATOR = "investigator"

# Who an audit event names when nobody signed in: the app without [auth], and the command line.
LOCAL_EMAIL = "local"
CLI_EMAIL = "cli"

# Audit actions (AuditEvent.action).
SIGN_IN = "sign-in"
SIGN_IN_REFUSED = "sign-in-refused"  # a signed-in e-mail that is not in the user table
IMPORT = IMPORT_ACTION
EXPORT = "export"
USER_ADD = "user-add"
USER_CHANGE = "user-change"
USER_REMOVE = "user-remove"
# Review marks and query messages (dashboard.review, one action per kind of log row).
REVIEW_ACTIONS = (
    "review-mark",
    "review-unmark",
    "query-open",
    "query-answer",
    "query-close",
    "query-reopen",
)
ACTIONS = (
    SIGN_IN,
    SIGN_IN_REFUSED,
    IMPORT,
    EXPORT,
    USER_ADD,
    USER_CHANGE,
    USER_REMOVE,
    *REVIEW_ACTIONS,
)

# Page keys (the url_path of each page in dashboard/app.py; the Overview's is "").
DATA_PAGES = (
    "",
    "enrollment",
    "screen-failures",
    "baseline",
    "adverse-events",
    "labs",
    "site-risk",
    "queries",
    "subject",
)
IMPORT_PAGE = "import"
AUDIT_PAGE = "audit"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class CurrentUser:
    """The user a page or a CLI call runs for: a plain value (safe to keep in session state)."""

    email: str
    role: str
    unblinded: bool  # may see by-arm figures of a blinded study (``ViewContext.for_viewer``)
    local: bool = False  # the app runs without sign-in ([auth] not configured)
    # (study_id, granted SITEIDs) pairs: a tuple, so the value stays hashable.
    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def granted_sites(self, study_id: str) -> tuple[str, ...] | None:
        """The sites granted in ``study_id``; None where the study has no grant."""
        return next((sites for study, sites in self.grants if study == study_id), None)


# Local mode: one person on their own machine, who holds the database file anyway.
LOCAL_USER = CurrentUser(email=LOCAL_EMAIL, role=ADMIN, unblinded=True, local=True)


def normalise_email(email: str) -> str:
    """E-mails are compared in lower case (providers differ in the case they send)."""
    return email.strip().lower()


def may_see_study(user: CurrentUser, study_id: str) -> bool:
    """Whether the study appears at all for ``user``."""
    return user.role != INVESTIGATOR or user.granted_sites(study_id) is not None


def allowed_sites(user: CurrentUser, study_id: str) -> SiteScope:
    """The sites of ``study_id`` the user may see; None means every site.

    An investigator without a grant in the study gets the empty scope, which matches no subject: a
    caller that forgot ``may_see_study`` still shows nothing rather than everything.
    """
    granted = user.granted_sites(study_id)
    if granted is not None:
        return granted
    return () if user.role == INVESTIGATOR else None


def effective_scope(allowed: SiteScope, chosen: Iterable[str]) -> SiteScope:
    """The scope a page queries with: the sidebar's choice within what the user may see. No choice
    (or a choice of nothing allowed, which the sidebar never offers) means every allowed site."""
    picked = set(chosen)
    if not picked:
        return allowed
    if allowed is None:
        return tuple(sorted(picked))
    kept = picked & set(allowed)
    return tuple(sorted(kept)) if kept else allowed


def allowed_pages(role: str) -> tuple[str, ...]:
    """The pages (url_path keys) a role sees in its navigation and may open."""
    return (*DATA_PAGES, IMPORT_PAGE, AUDIT_PAGE) if role == ADMIN else DATA_PAGES


def can_import(role: str) -> bool:
    return role == ADMIN


def can_read_audit(role: str) -> bool:
    return role == ADMIN


# -- whether the app may run -----------------------------------------------------------------

LOCAL_MODE_WITH_USERS = (
    "Sign-in is not configured (no [auth] section in .streamlit/secrets.toml), but the user "
    "table has {users}: without sign-in every visitor would act as an admin, so the app does "
    "not run in local mode. Configure [auth] in .streamlit/secrets.toml (README, Sign-in and "
    "access), or remove the users with `study-monitor user remove EMAIL` "
    "(`study-monitor user list` lists them)."
)


def refusal(
    *,
    secrets_problem: str | None,
    auth_configured: bool,
    sign_in_required: bool,
    users: int | None,
) -> str | None:
    """Why the app must not run, as a plain message for the visitor; None where it may.

    It fails closed: a secrets file that exists but cannot be read (``secrets_problem``) is never
    taken for no file, since local mode makes every visitor an admin. Without ``[auth]`` the app
    runs in local mode only where no server asks for sign-in and the user table is empty: users in
    it say the app was meant to have sign-in. ``users`` is their number, None where the table
    could not be read (then nobody can tell, and the app does not run).
    """
    if secrets_problem is not None:
        return (
            f"The secrets file cannot be read, so sign-in cannot be set up: {secrets_problem}. "
            "Correct the file (or remove it to run in local mode) and reload the page."
        )
    if auth_configured:
        return None
    if sign_in_required:
        return (
            "Sign-in is required on this server (STUDY_MONITOR_REQUIRE_SIGN_IN) but no "
            "[auth] section is configured in .streamlit/secrets.toml."
        )
    if users is None:
        return (
            "Sign-in is not configured and the user table cannot be read, so the app cannot "
            "tell whether local mode (everyone an admin) is meant. Create the database with "
            "`study-monitor demo` or an import, or configure [auth] in .streamlit/secrets.toml."
        )
    if users:
        return LOCAL_MODE_WITH_USERS.format(users="1 user" if users == 1 else f"{users} users")
    return None


def count_users(session: Session) -> int:
    """How many users the user table holds."""
    return int(session.execute(select(func.count()).select_from(User)).scalar_one())


# -- users -------------------------------------------------------------------------------------


def load_user(session: Session, *, email: str) -> CurrentUser | None:
    """The user with this e-mail and their grants, or None if they are not in the user table."""
    email = normalise_email(email)
    user = session.get(User, email)
    if user is None:
        return None
    grants: dict[str, list[str]] = {}
    stmt = (
        select(col(UserSite.study_id), col(UserSite.site_id))
        .where(col(UserSite.email) == email)
        .order_by(col(UserSite.study_id), col(UserSite.site_id))
    )
    for study_id, site_id in session.execute(stmt):
        grants.setdefault(str(study_id), []).append(str(site_id))
    return CurrentUser(
        email=user.email,
        role=user.role,
        unblinded=user.unblinded,
        grants=tuple((study, tuple(sites)) for study, sites in grants.items()),
    )


@dataclass(frozen=True)
class UserChange:
    created: bool
    user: CurrentUser
    warnings: tuple[str, ...]


def add_user(
    session: Session,
    *,
    email: str,
    role: str,
    study_id: str | None = None,
    sites: Sequence[str] = (),
    unblinded: bool = False,
    actor: str,
    audit_detail: dict[str, Any] | None = None,
) -> UserChange:
    """Add a user, or update one: the role and unblinding are set as given, and with ``study_id``
    the user's sites in that study are replaced by ``sites`` (grants in other studies are kept).
    Raises ValueError for input that cannot be stored; the caller commits."""
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise ValueError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    site_ids = sorted({s.strip() for s in sites if s.strip()})
    if bool(study_id) != bool(site_ids):
        raise ValueError("--study and --sites go together: the sites are those of that study")
    existing = session.get(User, email)
    has_grants = existing is not None and bool(
        session.execute(
            select(col(UserSite.id)).where(col(UserSite.email) == email).limit(1)
        ).first()
    )
    if role == INVESTIGATOR and not study_id and not has_grants:
        raise ValueError("an investigator sees only granted sites: give --study ID --sites S1,S2")

    warnings: list[str] = []
    if study_id:
        known = set(
            session.execute(select(col(Site.site_id)).where(col(Site.study_id) == study_id))
            .scalars()
            .all()
        )
        if not known:
            warnings.append(f"study {study_id} has no sites in the database yet")
        else:
            unknown = [s for s in site_ids if s not in known]
            if unknown:
                warnings.append(f"not a site of {study_id} (yet): {', '.join(unknown)}")

    if existing is None:
        session.add(
            User(email=email, role=role, unblinded=unblinded, created_at=dt.datetime.now(dt.UTC))
        )
        session.flush()  # the grants below refer to it
    else:
        existing.role = role
        existing.unblinded = unblinded
        session.add(existing)
    if study_id:
        session.execute(
            delete(UserSite).where(col(UserSite.email) == email, col(UserSite.study_id) == study_id)
        )
        session.add_all(UserSite(email=email, study_id=study_id, site_id=s) for s in site_ids)
    session.flush()
    record(
        session,
        email=actor,
        action=USER_ADD if existing is None else USER_CHANGE,
        study_id=study_id,
        sites=site_ids or None,
        detail={"user": email, "role": role, "unblinded": unblinded, **(audit_detail or {})},
    )
    user = load_user(session, email=email)
    assert user is not None  # written just above
    return UserChange(created=existing is None, user=user, warnings=tuple(warnings))


def list_users(session: Session) -> list[CurrentUser]:
    """Every user with their grants, by e-mail."""
    emails = session.execute(select(col(User.email)).order_by(col(User.email))).scalars().all()
    return [u for e in emails if (u := load_user(session, email=e)) is not None]


def remove_user(
    session: Session, *, email: str, actor: str, audit_detail: dict[str, Any] | None = None
) -> bool:
    """Remove a user and their grants; False if there was no such user. The caller commits."""
    email = normalise_email(email)
    user = session.get(User, email)
    if user is None:
        return False
    session.execute(delete(UserSite).where(col(UserSite.email) == email))
    session.delete(user)
    session.flush()
    record(
        session,
        email=actor,
        action=USER_REMOVE,
        detail={"user": email, "role": user.role, **(audit_detail or {})},
    )
    return True


def grants_text(user: CurrentUser) -> str:
    """The user's sites for a person to read: "DEMO-MULTI: 101, 102" or what no grant means."""
    if user.grants:
        return "; ".join(f"{study}: {', '.join(sites)}" for study, sites in user.grants)
    return "no study" if user.role == INVESTIGATOR else "every site of every study"


# -- audit -------------------------------------------------------------------------------------


def record(
    session: Session,
    *,
    email: str,
    action: str,
    study_id: str | None = None,
    sites: Sequence[str] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit event to ``session`` (committed with the caller's transaction, so an import
    and its audit record are written together or not at all). ``sites`` is the scope in force:
    None means every site."""
    session.add(
        AuditEvent(
            at=dt.datetime.now(dt.UTC),
            email=email,
            action=action,
            study_id=study_id,
            sites=list(sites) if sites is not None else None,
            detail=detail or {},
        )
    )


def record_event(
    engine: Engine,
    *,
    email: str,
    action: str,
    study_id: str | None = None,
    sites: Sequence[str] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit event in a transaction of its own (sign-ins and downloads)."""
    with session_scope(engine) as session:
        record(session, email=email, action=action, study_id=study_id, sites=sites, detail=detail)


def cli_detail() -> dict[str, Any]:
    """What an audit event of the command line says about who ran it: it has no sign-in (whoever
    runs it holds the database URL), so the OS account, where there is one."""
    try:
        return {"os_user": getpass.getuser()}
    except (KeyError, OSError):  # no passwd entry (some containers)
        return {}
