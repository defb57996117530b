"""Parse and validate an AI Core service key (the JSON BTP hands out; reference/aicore-api.md §1.1).

Only the client-secret variant is supported: the X.509 variant (``certificate``/``key``/``certurl``)
is reported as unsupported rather than half-working. The official SDK's URL rules are copied:
``auth_url = url + /oauth/token`` and ``api_url = AI_API_URL + /v2`` unless already suffixed.

NB: pydantic's own ``ValidationError`` text includes the offending input values, and a service key
is a secret, so errors are rebuilt here from field locations only (and the model hides input in
errors as a second guard). ``ServiceKeyError`` messages name the field and the fix, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ServiceKeyError

_FIX = "use the complete JSON of an AI Core service key (BTP cockpit → instance → service keys)"


class ServiceUrls(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    ai_api_url: str = Field(alias="AI_API_URL", min_length=1)


class ServiceKey(BaseModel):
    """The client-credentials service key. ``clientsecret`` is a ``SecretStr`` (masked in repr)."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    clientid: str = Field(min_length=1)
    clientsecret: SecretStr
    url: str = Field(min_length=1)
    serviceurls: ServiceUrls
    identityzone: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("clientsecret")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @property
    def auth_url(self) -> str:
        """XSUAA token endpoint."""
        base = self.url.rstrip("/")
        return base if base.endswith("/oauth/token") else base + "/oauth/token"

    @property
    def api_url(self) -> str:
        """AI API base URL ending in ``/v2`` (AI API below ``/lm``, admin API below ``/admin``)."""
        base = self.serviceurls.ai_api_url.rstrip("/")
        return base if base.endswith("/v2") else base + "/v2"


def _loc(parts: tuple[int | str, ...]) -> str:
    names = ["AI_API_URL" if p == "AI_API_URL" else str(p) for p in parts]
    return ".".join(names)


def parse_service_key(data: str | bytes | Mapping[str, object]) -> ServiceKey:
    """Validate a service key given as JSON text or an already-decoded mapping.

    Accepts the bare key or the ``{"credentials": {...}}`` wrapper that some BTP CLIs print.
    """
    if isinstance(data, str | bytes):
        try:
            decoded: object = json.loads(data)
        except ValueError as exc:
            # NB: no chaining: JSONDecodeError keeps the whole document in ``.doc``.
            raise ServiceKeyError(
                f"AI Core service key is not valid JSON (line {getattr(exc, 'lineno', '?')}); "
                f"{_FIX}"
            ) from None
    else:
        decoded = dict(data)
    if not isinstance(decoded, dict):
        raise ServiceKeyError(f"AI Core service key must be a JSON object; {_FIX}")
    if isinstance(decoded.get("credentials"), dict) and "clientid" not in decoded:
        decoded = decoded["credentials"]
    assert isinstance(decoded, dict)
    if "clientsecret" not in decoded and ("certificate" in decoded or "certurl" in decoded):
        raise ServiceKeyError(
            "AI Core service key uses X.509 credentials (certificate/key/certurl), which are "
            "not supported; create a service key with a client secret instead"
        )
    try:
        return ServiceKey.model_validate(decoded)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            where = _loc(err["loc"])
            if err["type"] == "missing":
                problems.append(f"missing required field '{where}'")
            else:
                problems.append(f"field '{where}' is invalid ({err['msg']})")
        raise ServiceKeyError(
            "AI Core service key is invalid: " + "; ".join(problems) + f"; {_FIX}"
        ) from None


def load_service_key(path: str | Path) -> ServiceKey:
    """Read and validate a service key file (e.g. the mounted Secret)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServiceKeyError(
            f"cannot read AI Core service key file {path}: {exc.strerror}"
        ) from None
    return parse_service_key(text)
