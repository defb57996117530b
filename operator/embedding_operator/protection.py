"""In-use protection for service-key Secrets, as Kubernetes protects a PVC a pod uses.

A model's finalizer needs its service key to stop the AI Core deployment. Deleting a namespace
deletes the Secret and the models at once, and a terminating namespace forbids creating the
Secret again: without protection the finalizers wait for ever, and removing them by hand leaks a
RUNNING deployment (issue 15 item 3). So the operator puts the finalizer `SECRET_FINALIZER` on
every Secret an AI Core model references, the way the pvc-protection controller adds
`kubernetes.io/pvc-protection` to a claim a pod mounts: the Secret may be deleted, but it stays
readable (Terminating) until the last model using it has been finalized; that finalize removes
the Secret's finalizer and the Secret goes.

The finalizer is added and removed with JSON patches that name the exact list entry and test
the resourceVersion, so a concurrent writer makes the patch fail (and the next pass retry)
instead of dropping another controller's finalizer. Nothing else about the Secret is touched.

NB: the operator is the one leader (leader.py), so which models have finished their deletion
is known in this process: two models finalized at the same moment do not each wait for the
other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from embedding_operator.api.spec import FINALIZER, GROUP
from embedding_operator.kube import EmbeddingModelResource

log = logging.getLogger(__name__)

SECRET_FINALIZER = f"{GROUP}/secret-in-use"
# How long a Secret seen protected is not looked at again (a finalizer removed by hand is put
# back within this time).
RECHECK_SECONDS = 300.0


def secret_of(body: Any) -> str | None:
    """The service-key Secret an AI Core model uses, or None."""
    spec = body.get("spec") or {}
    if spec.get("backend") != "aicore":
        return None
    name = ((spec.get("aicore") or {}).get("secretRef") or {}).get("name")
    return str(name) if name else None


class SecretProtection:
    def __init__(self, kube: AsyncClient) -> None:
        self.kube = kube
        self._checked: dict[tuple[str, str], float] = {}
        self._finalized: set[str] = set()  # uids whose remote clean-up is complete
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._using: dict[str, str] = {}  # uid -> the Secret last protected for it
        self._warned = False

    async def use(self, namespace: str, uid: str, name: str) -> None:
        """Each pass: protect the Secret model `uid` uses; release the one it used before
        (spec.aicore.secretRef changed) if no other model needs that one."""
        previous = self._using.get(uid)
        await self.protect(namespace, name)
        self._using[uid] = name
        if previous is not None and previous != name:
            await self._release_if_unused(namespace, previous)

    async def protect(self, namespace: str, name: str) -> None:
        """Ensure the Secret carries our finalizer. Quiet when it is missing (the backend
        reports that) or when the operator may not patch Secrets (warned once)."""
        key = (namespace, name)
        if time.monotonic() - self._checked.get(key, -RECHECK_SECONDS) < RECHECK_SECONDS:
            return
        try:
            secret = await self.kube.get(Secret, name, namespace=namespace)
            finalizers = list(secret.metadata.finalizers or []) if secret.metadata else []
            if SECRET_FINALIZER not in finalizers:
                if secret.metadata and secret.metadata.deletionTimestamp:
                    return  # NB: the API server refuses new finalizers on a deleting object
                await self._patch(
                    secret,
                    [{"op": "add", "path": "/metadata/finalizers/-", "value": SECRET_FINALIZER}]
                    if finalizers
                    else [
                        {"op": "add", "path": "/metadata/finalizers", "value": [SECRET_FINALIZER]}
                    ],
                )
                log.info("Secret %s/%s: added %s (in use)", namespace, name, SECRET_FINALIZER)
        except ApiError as error:
            if error.status.code == 403 and not self._warned:
                self._warned = True
                log.warning(
                    "may not patch Secret %s/%s, so it is not protected while in use: grant "
                    "'patch' on secrets (manifests/install)",
                    namespace,
                    name,
                )
            return
        self._checked[key] = time.monotonic()

    async def release(self, namespace: str, name: str, uid: str) -> None:
        """Model `uid` is finalized: drop the Secret's finalizer if no other model needs it."""
        self._finalized.add(uid)
        self._using.pop(uid, None)
        await self._release_if_unused(namespace, name)

    async def _release_if_unused(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        async with self._locks.setdefault(key, asyncio.Lock()):
            users = [
                m
                for m in await self._models(namespace)
                if secret_of(m) == name
                and m["metadata"]["uid"] not in self._finalized
                and (
                    not m["metadata"].get("deletionTimestamp")
                    or FINALIZER in (m["metadata"].get("finalizers") or [])
                )
            ]
            if users:
                return
            try:
                secret = await self.kube.get(Secret, name, namespace=namespace)
            except ApiError as error:
                if error.status.code == 404:
                    return
                raise
            finalizers = list(secret.metadata.finalizers or []) if secret.metadata else []
            if SECRET_FINALIZER not in finalizers:
                return
            index = finalizers.index(SECRET_FINALIZER)
            await self._patch(
                secret,
                [
                    {
                        "op": "test",
                        "path": f"/metadata/finalizers/{index}",
                        "value": SECRET_FINALIZER,
                    },
                    {"op": "remove", "path": f"/metadata/finalizers/{index}"},
                ],
            )
            self._checked.pop(key, None)
            log.info(
                "Secret %s/%s: removed %s (no model uses it)", namespace, name, SECRET_FINALIZER
            )

    async def _models(self, namespace: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async for obj in self.kube.list(EmbeddingModelResource, namespace=namespace):
            found.append(obj.to_dict())  # type: ignore[no-untyped-call]
        return found

    async def _patch(self, secret: Secret, ops: list[dict[str, Any]]) -> None:
        assert secret.metadata is not None and secret.metadata.name is not None
        guard = {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": secret.metadata.resourceVersion,
        }
        await self.kube.patch(
            Secret,
            secret.metadata.name,
            [guard, *ops],
            namespace=secret.metadata.namespace,
            patch_type=PatchType.JSON,
        )
