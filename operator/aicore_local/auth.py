"""XSUAA-style OAuth2 client-credentials tokens for the emulator.

Tokens look like XSUAA's (a three-part JWT, so clients that peek at `exp` keep working) but are
validated by lookup, which lets a fault invalidate every issued token at once ("early expiry").
Client credentials arrive as form fields (what the SDK sends) or HTTP Basic (XSUAA takes both).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse

DEFAULT_TOKEN_LIFETIME_S = 43199  # XSUAA's usual 12 h (aicore-api.md §1.2)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    client_id: str
    client_secret: str
    lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
    identity_zone: str = "aicore-local"
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch s)

    def issue(self) -> tuple[str, int]:
        now = time.time()
        lifetime = int(self.lifetime_s)
        header = {"alg": "RS256", "typ": "JWT", "jku": "local"}
        payload = {
            "jti": uuid.uuid4().hex,
            "client_id": self.client_id,
            "cid": self.client_id,
            "zid": self.identity_zone,
            "grant_type": "client_credentials",
            "iat": int(now),
            "exp": int(now) + lifetime,
            "scope": ["uaa.resource"],
        }
        token = ".".join(
            (
                _b64url(json.dumps(header).encode()),
                _b64url(json.dumps(payload).encode()),
                _b64url(secrets.token_bytes(32)),
            )
        )
        self._purge(now)
        self._tokens[token] = now + lifetime
        return token, lifetime

    def valid(self, token: str) -> bool:
        expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.time()

    def invalidate_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def _purge(self, now: float) -> None:
        if len(self._tokens) > 1000:
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}

    def check_credentials(self, client_id: str, client_secret: str) -> bool:
        return hmac.compare_digest(client_id.encode(), self.client_id.encode()) and (
            hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        )

    def bearer_ok(self, request: Request) -> bool:
        value = request.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return scheme.lower() == "bearer" and self.valid(token.strip())

    async def token_endpoint(self, request: Request) -> JSONResponse:
        """POST /oauth/token (grant_type=client_credentials)."""
        # NB: parsed by hand; starlette's form parser needs python-multipart for this one endpoint.
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()
        }
        grant = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        client_secret = form.get("client_secret", "")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            # NB: RFC 6749 §2.3.1 form-encodes id and secret before Basic-encoding them.
            client_id, client_secret = unquote(user), unquote(password)
        if grant != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "only grant_type=client_credentials is supported",
                },
                status_code=400,
            )
        if not client_id or not self.check_credentials(client_id, client_secret):
            return JSONResponse(
                {"error": "unauthorized", "error_description": "Bad credentials"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="UAA/client"'},
            )
        token, lifetime = self.issue()
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": lifetime,
                "scope": "uaa.resource",
                "jti": uuid.uuid4().hex,
            }
        )
