"""The API key of an authenticated KServe endpoint (spec.kserve.auth), read from its Secret.

One key reader (on kube.py's one Secret read) for the two callers that must send the key: the
operator's serving check (backends/kserve.py) and `embedding-operator embed`. The Secret is read
by name on every use, so a rotated key is picked up without a watch on Secrets. The key never
appears in a message, a repr or an exception: errors name the Secret, the key name and the fix.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lightkube import AsyncClient

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import ApiKeySecretRef
from embedding_operator.kube import SecretProblem, read_secret

#: What infinity can compare against an `Authorization: Bearer` header: visible ASCII, no spaces.
#: A trailing newline (`echo key > file; --from-file`) would make every request a 401.
_TOKEN = re.compile(r"^[!-~]+$")


class ApiKeyUnavailable(SecretProblem):
    """The key cannot be read or used; the message says which Secret and how to fix it."""

    def __init__(self, message: str, reason: Reason = Reason.SECRET_NOT_FOUND) -> None:
        super().__init__(reason, message)


@dataclass(frozen=True)
class ApiKey:
    """The key and the Secret's resourceVersion (which rolls the pods when the key changes)."""

    value: str = field(repr=False)
    version: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


def where(namespace: str, ref: ApiKeySecretRef) -> str:
    return f"Secret {namespace}/{ref.name} (spec.kserve.auth.apiKeySecretRef)"


def create_hint(namespace: str, ref: ApiKeySecretRef) -> str:
    return (
        f"kubectl create secret generic {ref.name} -n {namespace} "
        f'--from-literal={ref.key}="$(openssl rand -hex 32)"'
    )


def api_key_from(
    data: Mapping[str, str] | None, version: str, namespace: str, ref: ApiKeySecretRef
) -> ApiKey:
    """The key from a Secret's (base64) `data`, checked to be usable as a bearer token."""
    raw = (data or {}).get(ref.key)
    if raw is None:
        keys = ", ".join(sorted((data or {}).keys())) or "none"
        raise ApiKeyUnavailable(
            f"{where(namespace, ref)} has no key '{ref.key}' (it has: {keys}): put the API key "
            "under that key or set spec.kserve.auth.apiKeySecretRef.key"
        )
    try:
        value = base64.b64decode(raw, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        value = ""
    if not _TOKEN.fullmatch(value):
        raise ApiKeyUnavailable(
            f"{where(namespace, ref)} key '{ref.key}' is empty or has whitespace, a newline or "
            "non-ASCII characters, which a bearer token cannot carry: store it without a "
            f"trailing newline, e.g. {create_hint(namespace, ref)}"
        )
    return ApiKey(value, version)


async def read_api_key(kube: AsyncClient, namespace: str, ref: ApiKeySecretRef) -> ApiKey:
    """Read the key through the one Secret read (kube.py); `ApiKeyUnavailable` for what a
    person fixes (a missing or unreadable Secret keeps its reason, e.g. SecretForbidden)."""
    try:
        secret = await read_secret(
            kube,
            namespace,
            ref.name,
            fix=f"create it, e.g. {create_hint(namespace, ref)}",
            field="spec.kserve.auth.apiKeySecretRef",
        )
    except SecretProblem as problem:
        raise ApiKeyUnavailable(problem.message, problem.reason) from None
    version = (secret.metadata.resourceVersion if secret.metadata else None) or ""
    return api_key_from(secret.data, version, namespace, ref)
