"""A small OpenID Connect provider on loopback, for the sign-in tests: discovery, authorize, token
and JWKS endpoints, an RS256-signed id_token, nothing outside the machine.

It signs in whoever ``email`` names at the moment the browser reaches ``/authorize`` (no login
form: the test decides who signs in). It still checks what a real provider checks, so the app's
half of the flow is exercised for real: the client id and secret, the redirect URI, the one-time
code, PKCE (S256) where the client sends a challenge, and it returns the nonce the client sent.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CLIENT_ID = "study-monitor"
CLIENT_SECRET = "loopback-client-secret"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(number: int) -> str:
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


@dataclass
class _Grant:
    email: str
    nonce: str | None
    redirect_uri: str
    code_challenge: str | None


@dataclass
class OidcProvider:
    """Start with ``start()``; ``issuer`` is its base URL. Set ``email`` to choose who signs in."""

    email: str = "nobody@example.org"
    key_id: str = "loopback-key-1"
    issued: list[dict[str, Any]] = field(default_factory=list)  # the id_token claims handed out
    _key: rsa.RSAPrivateKey = field(init=False)
    _grants: dict[str, _Grant] = field(default_factory=dict, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # A key made for this run: nothing signed with it outlives the tests.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> "OidcProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test output is for the tests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- endpoints ---------------------------------------------------------------------------

    def _metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def _jwks(self) -> dict[str, Any]:
        public = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.key_id,
                    "n": _int_b64url(public.n),
                    "e": _int_b64url(public.e),
                }
            ]
        }

    def _get(self, request: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            _json(request, 200, self._metadata())
        elif url.path == "/jwks":
            _json(request, 200, self._jwks())
        elif url.path == "/authorize":
            self._authorize(request, query)
        else:
            _json(request, 404, {"error": "not_found"})

    def _authorize(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            _json(request, 400, {"error": "unauthorized_client"})
            return
        if "openid" not in query.get("scope", "").split():
            _json(request, 400, {"error": "invalid_scope"})
            return
        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            email=self.email,
            nonce=query.get("nonce"),
            redirect_uri=redirect_uri,
            code_challenge=query.get("code_challenge"),
        )
        back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        request.send_response(302)
        request.send_header("Location", f"{redirect_uri}?{urllib.parse.urlencode(back)}")
        request.end_headers()

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        if urllib.parse.urlsplit(request.path).path != "/token":
            _json(request, 404, {"error": "not_found"})
            return
        length = int(request.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(request.rfile.read(length).decode("utf-8")))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            decoded = base64.b64decode(basic.removeprefix("Basic ")).decode("utf-8")
            client_id, _, client_secret = (urllib.parse.unquote(p) for p in decoded.partition(":"))
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            _json(request, 401, {"error": "invalid_client"})
            return
        grant = self._grants.pop(form.get("code", ""), None)  # a code is good once
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or form.get("redirect_uri") != grant.redirect_uri
        ):
            _json(request, 400, {"error": "invalid_grant"})
            return
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "").encode("ascii")
            if _b64url(hashlib.sha256(verifier).digest()) != grant.code_challenge:
                _json(request, 400, {"error": "invalid_grant", "error_description": "PKCE"})
                return
        _json(
            request,
            200,
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self._id_token(grant),
            },
        )

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": hashlib.sha256(grant.email.encode()).hexdigest()[:16],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "email": grant.email,
            "email_verified": True,
            "name": grant.email.split("@")[0],
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        self.issued.append(claims)
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key_id}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


def _json(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode("utf-8")
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.send_header("Cache-Control", "no-store")
    request.end_headers()
    request.wfile.write(data)
