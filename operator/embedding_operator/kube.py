"""The Kubernetes boundary: the operator's own client, status patches, Secret reads, one error map.

kopf watches and runs handlers with its own API client; everything the operator writes itself —
status patches, child InferenceServices, reading referenced Secrets — goes through the one lightkube
client built here, so credentials come from the same kubeconfig or in-cluster ServiceAccount.

lightkube raises two kinds of errors: `ApiError` when the API server answered with a JSON
`Status`, and its HTTP client's (httpx2) errors otherwise — a plain-text 404 for a resource the
server does not serve, a connection refused, a timeout. `kube_error` turns both into one
`KubeError(code, message)`, so no caller sorts them out again.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import GROUP, KIND, PLURAL, VERSION
from embedding_operator.redact import redact

FIELD_MANAGER = "embedding-operator"

EmbeddingModelResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


class KubeError(Exception):
    """A failed Kubernetes API call. `code` is the HTTP status, None when no answer came."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """No answer, a concurrent writer (409), throttled, or a server-side failure: retrying
        can help."""
        return self.code is None or self.code in (409, 429) or self.code >= 500


def kube_error(error: BaseException) -> KubeError | None:
    """The one mapping of lightkube's errors; None for anything that is not one."""
    if isinstance(error, KubeError):
        return error
    if isinstance(error, ApiError):
        return KubeError(error.status.code, error.status.message or str(error))
    if isinstance(error, httpx2.HTTPStatusError):
        return KubeError(error.response.status_code, redact(error.response.text)[:500])
    if isinstance(error, httpx2.HTTPError):
        return KubeError(None, f"cannot reach the Kubernetes API server: {type(error).__name__}")
    return None


#: lightkube's default is 10 s for everything, the wait for a free pooled connection included:
#: with hundreds of objects writing status at once, that wait failed passes although the API
#: server answered every request. Waiting in our own queue is not a failure; an API server that
#: does not answer (connect/read) still is.
TIMEOUT = httpx2.Timeout(30.0, connect=10.0, pool=None)


def make_client(kubeconfig: str | None = None) -> AsyncClient:
    """A client from `kubeconfig` (path), else $KUBECONFIG / ~/.kube/config / in-cluster."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    return AsyncClient(config=config, field_manager=FIELD_MANAGER, timeout=TIMEOUT)


async def patch_status(
    client: AsyncClient, name: str, namespace: str, status: dict[str, Any]
) -> None:
    """Merge-patch the status subresource (never spec, never metadata)."""
    await client.patch(
        EmbeddingModelResource.Status,
        name,
        {"status": status},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


class SecretProblem(Exception):
    """A referenced Secret cannot be used; `reason` and `message` say why and how to fix it."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def read_secret(
    client: AsyncClient, namespace: str, name: str, *, fix: str, field: str | None = None
) -> Secret:
    """The Secret namespace/name, the one read of a referenced Secret (service key, API key).

    404 and 403 are `SecretProblem`s a person fixes (`fix` says how to create it, `field` names
    the spec field that refers to it); other API failures (5xx, no connection) are raised as
    `KubeError` for the retry policy.
    """
    where = f"Secret {namespace}/{name}" + (f" ({field})" if field else "")
    try:
        return await client.get(Secret, name, namespace=namespace)
    except (ApiError, httpx2.HTTPError) as raw:
        error = kube_error(raw)
        assert error is not None
        if error.code == 404:
            raise SecretProblem(Reason.SECRET_NOT_FOUND, f"{where} not found: {fix}") from None
        if error.code == 403:
            raise SecretProblem(
                Reason.SECRET_FORBIDDEN,
                f"the operator may not read {where}: grant its ServiceAccount 'get' on Secrets "
                f"in namespace {namespace} (a Role and RoleBinding, see docs/install.md)",
            ) from None
        raise error from None


async def read_secret_key(client: AsyncClient, namespace: str, name: str, key: str) -> bytes:
    """The decoded AI Core service key under `key` in Secret namespace/name; `SecretProblem`
    says what is wrong."""
    where = f"Secret {namespace}/{name}"
    secret = await read_secret(
        client,
        namespace,
        name,
        fix=f"create it with the AI Core service key under key '{key}', e.g. kubectl create "
        f"secret generic {name} -n {namespace} --from-file={key}=service-key.json",
    )
    raw_value = (secret.data or {}).get(key)
    if raw_value is None:
        keys = ", ".join(sorted((secret.data or {}).keys())) or "none"
        raise SecretProblem(
            Reason.SECRET_NOT_FOUND,
            f"{where} has no key '{key}' (it has: {keys}): put the service-key JSON "
            "under that key or set spec.aicore.secretRef.key",
        )
    try:
        return base64.b64decode(raw_value, validate=True)
    except (binascii.Error, ValueError):
        raise SecretProblem(
            Reason.SERVICE_KEY_INVALID, f"{where} key '{key}' is not valid base64"
        ) from None


class CRDMissing(Exception):
    """Our CRD is not installed in the cluster."""


async def check_crd_served(client: AsyncClient, namespaces: list[str]) -> None:
    """Fail fast with the fix when the CRD is missing (kopf would idle, healthy but blind).

    NB: a list in the watched scope needs no RBAC beyond what the operator has anyway.
    """
    try:
        for namespace in namespaces or ["*"]:
            async for _ in client.list(EmbeddingModelResource, namespace=namespace, chunk_size=1):
                break
    except (ApiError, httpx2.HTTPError) as raw:
        error = kube_error(raw)
        assert error is not None
        if error.code == 404:
            raise CRDMissing(
                f"the CRD {PLURAL}.{GROUP} is not installed: kubectl apply -f crds/ "
                "(or kubectl apply -k manifests/install/overlays/...), then start the operator"
            ) from None
        raise
