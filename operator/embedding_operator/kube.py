"""Kubernetes API access for the operator's own writes (lightkube, async, httpx underneath).

kopf watches and runs handlers with its own API client; everything the operator writes itself —
status patches, child InferenceServices, reading referenced Secrets — goes through the one lightkube
client built here, so credentials come from the same kubeconfig or in-cluster ServiceAccount.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient, KubeConfig
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
