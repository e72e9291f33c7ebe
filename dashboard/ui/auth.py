"""Sign-in (Streamlit's native OIDC), the user of each run, and the audit of what they do.

With an ``[auth]`` section in ``.streamlit/secrets.toml`` every visitor signs in through the
configured OpenID Connect provider (``st.login``), and the signed-in e-mail must be in the user
table (``study-monitor user add``): anyone else sees a plain "no access" page and nothing more.
Without ``[auth]`` the app runs in local mode as an admin and says so in the sidebar and on every
page, but only where the user table is empty and ``STUDY_MONITOR_REQUIRE_SIGN_IN`` is not set. It
fails closed: a secrets file that exists but does not parse, or local mode with users in the table,
stops the app with a plain message (``access.refusal``).

``dashboard/app.py`` calls ``signed_in_user()`` first in every run; pages read the user from their
``PageContext`` (``ctx.user``), and the pages only some roles may open call ``require_page``.
"""

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError
from streamlit.errors import StreamlitSecretNotFoundError

from dashboard import access
from dashboard.access import CurrentUser
from dashboard.config import database_url, sign_in_required
from dashboard.db import BUSY_MESSAGE, is_busy
from dashboard.markdown import plain
from dashboard.queries.audit import audit_choices, audit_events
from dashboard.results.audit import AuditFilter
from dashboard.ui import loaders
from dashboard.ui.shell import optional_context

USER_KEY = "_current_user"  # the user of this run (set again on every run)
_AUDITED_KEY = "_sign_in_audited"  # the e-mail whose sign-in this session has recorded

T = TypeVar("T")


def read_secrets() -> tuple[bool, str | None]:
    """Whether ``[auth]`` is in the secrets, and what is wrong with a secrets file that exists but
    cannot be read (None where nothing is). No secrets file at all is no problem: local mode.

    Streamlit reads ``~/.streamlit/secrets.toml``, ``.streamlit/secrets.toml`` in the folder it
    runs from and beside ``dashboard/app.py`` (its ``secrets.files`` option), and raises one
    error type for a missing file and one that does not parse; only its "no secrets found" is
    taken for absence, anything else fails closed.
    """
    try:
        return "auth" in st.secrets, None
    except StreamlitSecretNotFoundError as error:
        if error.error_id == "no-secrets-found":
            return False, None
        found = error.exec_kwargs
        if "path" in found and "error" in found:
            return False, f"{found['path']} does not parse ({found['error']})"
        return False, str(error)
    except OSError as error:  # a file that is there but cannot be opened (permissions, a folder)
        return False, f"{error.filename or 'a secrets file'}: {error.strerror or error}"


def auth_configured() -> bool:
    """Whether ``[auth]`` is in the secrets (a secrets file that cannot be read: False)."""
    return read_secrets()[0]


def _count_users(db_url: str) -> int | None:
    """How many users the user table holds; None where it cannot be read."""
    try:
        with loaders.session_for(db_url) as session:
            return access.count_users(session)
    except SQLAlchemyError:
        return None


def _refuse(message: str) -> NoReturn:
    st.title("Study monitor")
    st.error(message)
    st.stop()


def _providers() -> list[str | None]:
    """The providers to offer: None for the one in ``[auth]`` itself, else each named
    ``[auth.NAME]`` section (``st.login("NAME")``)."""
    section: Any = st.secrets["auth"]
    if "client_id" in section:
        return [None]
    return [name for name, value in section.items() if hasattr(value, "get")]


def _sign_in_page() -> None:
    st.title("Study monitor")
    st.markdown(
        "Sign in with your organisation's account to see the study data. What you see depends "
        "on the role and sites an administrator gave your account."
    )
    providers = _providers()
    if not providers:
        st.error(
            "The [auth] section names no provider: give it client_id, client_secret and "
            "server_metadata_url, or add [auth.NAME] sections (see README, Sign-in and access)."
        )
    for provider in providers:
        label = "Sign in" if provider is None else f"Sign in with {provider}"
        if st.button(label, type="primary", key=f"sign_in_{provider or 'default'}"):
            if provider is None:
                st.login()
            else:
                st.login(provider)


def _no_access_page(email: str) -> None:
    st.title("No access")
    st.markdown(
        f"You are signed in as **{plain(email)}**, but this account has no access to the study "
        "monitor. Ask an administrator to add it."
    )
    if st.button("Sign out"):
        st.logout()


def _audit_sign_in_once(db_url: str, email: str, action: str) -> None:
    """One sign-in (or refusal) per session and e-mail, not one per rerun."""
    if st.session_state.get(_AUDITED_KEY) == email:
        return
    access.record_event(loaders.engine_for(db_url), email=email, action=action)
    st.session_state[_AUDITED_KEY] = email


def signed_in_user() -> CurrentUser:
    """The user of this run. Where there is none (not signed in, not in the user table, or the user
    table cannot be read) this draws the sign-in, no-access or error page and stops the run."""
    st.session_state.pop(USER_KEY, None)  # never a user left from an earlier run
    configured, secrets_problem = read_secrets()
    if secrets_problem is not None or not configured:
        # Local mode is decided here, before any page: the user table is read only when there is
        # no [auth] (users in it mean sign-in was meant to be on).
        users = None if secrets_problem or sign_in_required() else _count_users(database_url())
        refused = access.refusal(
            secrets_problem=None if secrets_problem is None else plain(secrets_problem),
            auth_configured=configured,
            sign_in_required=sign_in_required(),
            users=users,
        )
        if refused is not None:
            _refuse(refused)
        user = access.LOCAL_USER
    elif not st.user.is_logged_in:
        _sign_in_page()
        st.stop()
    else:
        db_url = database_url()
        email = access.normalise_email(str(st.user.get("email") or ""))
        try:
            with loaders.session_for(db_url) as session:
                found = access.load_user(session, email=email) if email else None
            # A provider that says the address is unverified gives no proof of who this is.
            if found is None or st.user.get("email_verified") is False:
                _audit_sign_in_once(db_url, email or "(no e-mail)", access.SIGN_IN_REFUSED)
                _no_access_page(email or "an account without an e-mail address")
                st.stop()
            _audit_sign_in_once(db_url, found.email, access.SIGN_IN)
        except SQLAlchemyError as error:
            if is_busy(error):  # an import's write lock outlasted the wait: nothing is broken
                st.error(f"{BUSY_MESSAGE[0].upper()}{BUSY_MESSAGE[1:]}.")
                st.stop()
            st.error(
                f"The user table cannot be read ({error.__class__.__name__}): nobody can be "
                "signed in. Create the database with `study-monitor demo` or an import."
            )
            st.stop()
        user = found
    st.session_state[USER_KEY] = user
    _account_box(user)
    return user


def _account_box(user: CurrentUser) -> None:
    if user.local:
        st.sidebar.caption(
            "**Local mode**: no sign-in configured, you act as an admin. Configure `[auth]` in "
            "`.streamlit/secrets.toml` to require sign-in."
        )
        return
    st.sidebar.caption(f"Signed in as **{plain(user.email)}** ({user.role})")
    if st.sidebar.button("Sign out", key="sign_out"):
        st.logout()


def run_user() -> CurrentUser:
    """The user ``signed_in_user`` found for this run; stops the page if there is none."""
    user = st.session_state.get(USER_KEY)
    if not isinstance(user, CurrentUser):
        st.stop()
    return user


def require_page(page: str) -> CurrentUser:
    """The user of this run, if their role may open ``page``; else a plain message and the page
    stops. Pages check this themselves: the navigation leaves them out, but that is no lock."""
    user = run_user()
    if page not in access.allowed_pages(user.role):
        st.title("Not available")
        st.error(f"This page is not open to the {user.role} role.")
        st.stop()
    return user


def audited(build: Callable[[], T], *, file_name: str, rows: int | None = None) -> Callable[[], T]:
    """``build`` (a download's data callable) with one "export" audit event written when it runs,
    naming the user, study and site scope of this run.

    Streamlit calls a download's data callable on click, outside the script run (so no session
    state there): everything the audit event needs is taken now, as plain values.
    """
    user = run_user()
    context = optional_context()
    db_url = context.db_url if context else database_url()
    engine = loaders.engine_for(db_url)
    study_id = context.study_id if context else None
    sites = context.scope if context else None
    detail: dict[str, Any] = {"file": file_name}
    if rows is not None:
        detail["rows"] = rows

    def build_and_record() -> T:
        access.record_event(
            engine,
            email=user.email,
            action=access.EXPORT,
            study_id=study_id,
            sites=sites,
            detail=detail,
        )
        return build()

    return build_and_record


# Not cached: the audit trail grows with every action, and an admin reading it wants all of it.
def load_audit(db_url: str, wanted: AuditFilter, limit: int) -> tuple[pd.DataFrame, int]:
    with loaders.session_for(db_url) as session:
        return audit_events(session, wanted=wanted, limit=limit)


def load_audit_choices(db_url: str) -> tuple[list[str], list[str], list[str]]:
    with loaders.session_for(db_url) as session:
        return audit_choices(session)
