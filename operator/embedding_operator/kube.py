"""Kubernetes API access for the operator's own writes (lightkube, async, httpx underneath).

kopf watches and runs handlers with its own API client; everything the operator writes itself —
status patches, child InferenceServices, reading referenced Secrets — goes through the one lightkube
client built here, so credentials come from the same kubeconfig or in-cluster ServiceAccount.
"""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from embedding_operator.api.spec import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "embedding-operator"

EmbeddingModelResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


def make_client(kubeconfig: str | None = None) -> AsyncClient:
    """A client from `kubeconfig` (path), else $KUBECONFIG / ~/.kube/config / in-cluster."""
    config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    return AsyncClient(config=config, field_manager=FIELD_MANAGER)


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
    except (ApiError, httpx2.HTTPStatusError) as error:
        # NB: for an unknown resource the API server answers a plain-text 404, which lightkube
        # raises as its HTTP client's error rather than as ApiError.
        code = error.status.code if isinstance(error, ApiError) else error.response.status_code
        if code == 404:
            raise CRDMissing(
                f"the CRD {PLURAL}.{GROUP} is not installed: kubectl apply -f crds/ "
                "(or kubectl apply -k manifests/install/overlays/...), then start the operator"
            ) from None
        raise
