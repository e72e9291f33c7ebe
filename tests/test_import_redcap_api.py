"""`study-monitor import redcap --url`: a REDCap project pulled from its server's API (issue #23).

No REDCap server is reachable from here, so a local HTTP server answers as REDCap's API does
(POST to /api/, the token in the form body, ``{"error": ...}`` with HTTP 403 for a bad token, the
metadata export's own column names) and serves the shipped seed export. The pull must give the seed
demo's figures, and the token must never be stored, logged or printed."""

import csv
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.importers.edc import read_dictionary
from dashboard.importers.errors import ImportFailure
from dashboard.importers.redcap_api import api_address
from dashboard.models import AuditEvent, DataCut
from tests.browser_support import free_port
from tests.databases import new_database_url
from tests.test_import_edc import SHIPPED, _dump, _figures, _same

runner = CliRunner()
TOKEN = "0123456789ABCDEF0123456789ABCDEF"  # REDCap's tokens are 32 hexadecimal characters
# The metadata export's headings, in the order REDCap's API writes them.
API_HEADINGS = {
    "Variable / Field Name": "field_name",
    "Form Name": "form_name",
    "Section Header": "section_header",
    "Field Type": "field_type",
    "Field Label": "field_label",
    "Choices, Calculations, OR Slider Labels": "select_choices_or_calculations",
    "Field Note": "field_note",
    "Text Validation Type OR Show Slider Number": "text_validation_type_or_show_slider_number",
    "Text Validation Min": "text_validation_min",
    "Text Validation Max": "text_validation_max",
    "Identifier?": "identifier",
    "Branching Logic (Show field only if...)": "branching_logic",
    "Required Field?": "required_field",
    "Custom Alignment": "custom_alignment",
    "Question Number (surveys only)": "question_number",
    "Matrix Group Name": "matrix_group_name",
    "Matrix Ranking?": "matrix_ranking",
    "Field Annotation": "field_annotation",
}


def _api_dictionary() -> bytes:
    """The shipped data dictionary as the API's metadata export heads it."""
    rows = list(csv.reader(io.StringIO((SHIPPED / "dictionary.csv").read_text(encoding="utf-8"))))
    rows[0] = [API_HEADINGS[heading] for heading in rows[0]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


class FakeRedcap(BaseHTTPRequestHandler):
    """REDCap's API for one project: the exports this app asks for, nothing else."""

    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []  # (path, form) of every request

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("ascii")))
        self.seen.append((self.path, form))
        if self.path != "/api/":
            return self._send(200, "text/html", b"<html><body>REDCap login</body></html>")
        if form.get("token") != TOKEN:
            return self._error(403, "You do not have permissions to use the API")
        wanted = (form.get("content"), form.get("format"))
        if wanted == ("metadata", "csv"):
            return self._send(200, "text/csv", _api_dictionary())
        if wanted == ("record", "csv") and (
            form.get("type"),
            form.get("rawOrLabel"),
            form.get("exportDataAccessGroups"),
        ) == ("flat", "raw", "true"):
            return self._send(200, "text/csv", (SHIPPED / "records.csv").read_bytes())
        return self._error(400, f"this test server does not answer {form!r}")

    def _error(self, code: int, message: str) -> None:
        self._send(code, "application/json", json.dumps({"error": message}).encode())

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def redcap() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRedcap)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def demo_figures(demo_engine: Engine) -> dict[str, Any]:
    return _figures(demo_engine)


def _pull(url: str, db: str, *, token: str | None = TOKEN, more: tuple[str, ...] = ()) -> Any:
    mapping = str(SHIPPED / "mapping.toml")
    return runner.invoke(
        app,
        ["import", "redcap", "--url", url, "--mapping", mapping, "--db", db, *more],
        env={"REDCAP_API_TOKEN": token or ""},
        catch_exceptions=False,
    )


def test_the_api_dictionary_reads_as_the_download(tmp_path: Path) -> None:
    api = tmp_path / "metadata.csv"
    api.write_bytes(_api_dictionary())
    assert read_dictionary(api) == read_dictionary(SHIPPED / "dictionary.csv")


@pytest.fixture(scope="module")
def pulled(redcap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A database holding the seed study pulled from the API, and what the command printed."""
    FakeRedcap.seen.clear()
    url = new_database_url(tmp_path_factory.mktemp("api"), "pulled")
    result = _pull(f"{redcap}/api/", url)
    assert result.exit_code == 0, result.output
    return url, str(result.output)


def test_a_pull_gives_the_seed_demos_figures_and_keeps_no_token(
    redcap: str, pulled: tuple[str, str], demo_figures: dict[str, Any]
) -> None:
    url, output = pulled
    assert "data cut 1 loaded (cut-off 2025-11-30)" in output
    assert TOKEN not in output
    # Two requests, the token in the POST body only (an address ends up in logs).
    assert [(path, form["content"]) for path, form in FakeRedcap.seen[:2]] == [
        ("/api/", "metadata"),
        ("/api/", "record"),
    ]
    assert all(form["token"] == TOKEN for _path, form in FakeRedcap.seen[:2])
    engine = make_engine(url)
    try:
        _same(_figures(engine), demo_figures)
        with Session(engine) as session:
            (cut,) = session.exec(select(DataCut)).all()
            assert [s["file"] for s in cut.source] == [
                f"dictionary.csv from {redcap}/api/",
                f"records.csv from {redcap}/api/",
            ]
            (event,) = session.exec(select(AuditEvent)).all()
            assert event.detail["api"] == f"{redcap}/api/"
            assert event.detail["identifying_fields_dropped"] == ["dob", "initials"]
    finally:
        engine.dispose()
    assert TOKEN not in repr(_dump(url))
    if url.startswith("sqlite:///"):  # nor anywhere in the file, a free page included
        assert TOKEN.encode() not in Path(url.removeprefix("sqlite:///")).read_bytes()


def test_a_refused_token_is_said_without_the_token(redcap: str, pulled: tuple[str, str]) -> None:
    url, _output = pulled
    before = _dump(url)
    wrong = "FEDCBA9876543210FEDCBA9876543210"
    result = _pull(f"{redcap}/api/", url, token=wrong)
    assert result.exit_code == 2
    assert (
        f"the REDCap server at {redcap}/api/ refused the token in REDCAP_API_TOKEN for the "
        "metadata export (HTTP 403: You do not have permissions to use the API)"
    ) in result.output
    assert "nothing was written" in result.output
    assert wrong not in result.output
    assert _dump(url) == before


@pytest.mark.parametrize(
    ("address", "token", "more", "said"),
    [
        ("{redcap}/api/", None, (), "REDCAP_API_TOKEN is not set"),
        ("{redcap}/", TOKEN, (), "did not answer the metadata export with CSV"),
        ("http://redcap.example.org/api/", TOKEN, (), "is plain HTTP"),
        ("{redcap}/api/?token=x", TOKEN, (), "must be the bare API address"),
        ("redcap.example.org", TOKEN, (), "is not a web address"),
        ("http://127.0.0.1:{free}/api/", TOKEN, (), "cannot reach the REDCap server"),
        ("{redcap}/api/", TOKEN, ("--records", "r.csv"), "without --records/--dictionary"),
        ("{redcap}/api/", TOKEN, ("--token-env", "TRIAL_TOKEN"), "TRIAL_TOKEN is not set"),
    ],
    ids=[
        "no token",
        "not the API",
        "plain HTTP",
        "query",
        "no scheme",
        "no server",
        "and files",
        "other variable",
    ],
)
def test_a_pull_that_cannot_be_made_is_said_plainly(
    redcap: str,
    pulled: tuple[str, str],
    address: str,
    token: str | None,
    more: tuple[str, ...],
    said: str,
) -> None:
    url, _output = pulled
    before = _dump(url)
    result = _pull(address.format(redcap=redcap, free=free_port()), url, token=token, more=more)
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert TOKEN not in result.output
    assert "Traceback" not in result.output
    assert _dump(url) == before


def test_the_address_kept_is_the_bare_one() -> None:
    assert api_address(" https://redcap.example.org/api/ ") == "https://redcap.example.org/api/"
    assert api_address("http://localhost:8080/api/") == "http://localhost:8080/api/"
    with pytest.raises(ImportFailure, match="user, password or query"):
        api_address("https://me:secret@redcap.example.org/api/")
