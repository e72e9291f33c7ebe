"""A REDCap project pulled from its server's API (issue #23's optional part).

Two exports, the same a person downloads by hand: the data dictionary (``content=metadata``) and
the records as raw codes, one row per record, event and repeat instance, with data access groups
(``content=record``, ``type=flat``, ``rawOrLabel=raw``). They are written into a folder and read by
``edc.read_redcap``, so a pull and a download are held to the same rules.

The token comes from an environment variable, is sent only in the body of an HTTPS POST (plain
HTTP is allowed to this machine only, where nothing leaves it), and is never stored, logged or
shown: any text from the server is cleared of it before it becomes a message.
"""

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dashboard.importers.errors import fail

TOKEN_VARIABLE = "REDCAP_API_TOKEN"
# Seconds to wait for each answer: a large project's records take a while to export.
TIMEOUT = 300
# Parameters of REDCap's "Export Records" method: what "CSV / Microsoft Excel (raw data)" gives.
RECORD_EXPORT = {
    "content": "record",
    "format": "csv",
    "type": "flat",
    "rawOrLabel": "raw",
    "rawOrLabelHeaders": "raw",
    "exportCheckboxLabel": "false",
    "exportSurveyFields": "false",
    "exportDataAccessGroups": "true",
    "returnFormat": "json",
}
METADATA_EXPORT = {"content": "metadata", "format": "csv", "returnFormat": "json"}


@dataclass(frozen=True)
class PulledProject:
    """The two exports as files, and the names messages and the data cut give them."""

    files: dict[str, Path]  # role (records, dictionary) -> path
    labels: dict[str, str]  # role -> e.g. "records.csv from https://redcap.example.org/api/"
    url: str  # the address asked, with no user, password, query or fragment


def api_address(url: str) -> str:
    """The API address to ask, refused where the token would travel unencrypted or where the
    address carries what should not be stored (a user or password, a query)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise fail(
            f"--url {url!r} is not a web address: give the project's API address, such as "
            "https://redcap.example.org/api/"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise fail(
            "--url must be the bare API address (no user, password or query): the token goes in "
            f"the {TOKEN_VARIABLE} environment variable"
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise fail(
            f"--url {url!r} is plain HTTP: the token would cross the network unencrypted; "
            "use the server's https:// address"
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pull_project(url: str, token: str, folder: Path, *, timeout: float = TIMEOUT) -> PulledProject:
    """Export the project's data dictionary and records from REDCap's API into ``folder``.
    Raises ImportFailure (naming the address, never the token) when the server cannot be reached,
    refuses the token, or answers with something other than a CSV export."""
    address = api_address(url)
    token = token.strip()
    if not token:
        raise fail(f"no API token: put the project's token in {TOKEN_VARIABLE}")
    files, labels = {}, {}
    for role, name, parameters in (
        ("dictionary", "dictionary.csv", METADATA_EXPORT),
        ("records", "records.csv", RECORD_EXPORT),
    ):
        body = _post(address, {"token": token, **parameters}, token, timeout)
        path = folder / name
        path.write_bytes(body)
        files[role], labels[role] = path, f"{name} from {address}"
    return PulledProject(files=files, labels=labels, url=address)


def _post(address: str, form: dict[str, str], token: str, timeout: float) -> bytes:
    request = urllib.request.Request(
        address,
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Accept": "text/csv, application/json"},
        method="POST",
    )
    what = f"the {form['content']} export"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        said = _clear(_server_error(error.read()), token)
        if error.code in (401, 403):
            raise fail(
                f"the REDCap server at {address} refused the token in {TOKEN_VARIABLE} for "
                f"{what} (HTTP {error.code}{': ' + said if said else ''}): check the token and "
                "that it has API export rights on the project"
            ) from None
        raise fail(
            f"the REDCap server at {address} answered HTTP {error.code} to {what}"
            f"{': ' + said if said else ''}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise fail(
            f"cannot reach the REDCap server at {address}: {_clear(str(reason), token)}"
        ) from None
    if kind in ("text/html", "application/json") or body.lstrip()[:1] in (b"<", b"{"):
        said = _clear(_server_error(body), token)
        raise fail(
            f"{address} did not answer {what} with CSV"
            f"{' (' + said + ')' if said else ''}: is it the project's API address, ending in "
            "/api/?"
        )
    return body


def _server_error(body: bytes) -> str:
    """REDCap's own words for a refusal: ``{"error": "..."}``, shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return ""
    said = parsed.get("error") if isinstance(parsed, dict) else None
    return str(said).strip()[:200] if said else ""


def _clear(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text
