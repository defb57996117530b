"""KServe runtime: each deployment becomes an InferenceService in the emulator's namespace of a
real cluster (from `--kubeconfig` or $KUBECONFIG), run by KServe's own controller, as AI Core
runs it.

One InferenceService per deployment, named after the deployment id; an update re-applies it
(server-side apply, so KServe rolls the predictor's Deployment in place) and the new generation
is serving once KServe reports Ready for the new spec and a pod of that generation is ready.
The model comes offline from the emulator's object store directory, which this runtime offers to
the cluster as one hostPath PersistentVolume + PVC (`ai://` artifacts render as `pvc://…`).
The gateway forwards to the ready pod's IP (no kube-proxy or cluster DNS is assumed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, PersistentVolume, PersistentVolumeClaim, Pod

from ..inferenceservice import (
    DEPLOYMENT_LABEL,
    GENERATION_LABEL,
    RESOURCE_GROUP_LABEL,
    Observation,
    assess,
    inference_service,
    kserve_storage_uri,
)
from ..templates import ServingTemplate
from .base import LogSink, Predictor, PredictorFailed, PredictorSpec

log = logging.getLogger("aicore_local")

InferenceService = create_namespaced_resource(
    "serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices"
)
FIELD_MANAGER = "aicore-local"
DEFAULT_NAMESPACE = "aicore-local"
POLL_S = 1.0
API_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
LOG_TIMEOUT = httpx2.Timeout(30.0, connect=10.0, read=None)
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"


def _api_message(error: BaseException) -> str:
    if isinstance(error, ApiError):
        return str(error.status.message or error.status.reason or error)
    if isinstance(error, httpx2.HTTPStatusError):
        return f"HTTP {error.response.status_code}: {error.response.text[:300]}"
    return f"cannot reach the Kubernetes API server: {type(error).__name__}: {error}"


def _plain(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


@dataclass
class KServeRuntime:
    objectstore_root: Path
    kubeconfig: Path | None = None
    namespace: str = DEFAULT_NAMESPACE
    name: str = "kserve"
    copies_model: bool = False  # KServe's own storage initializer mounts it
    owner: dict[str, int] = field(default_factory=dict)  # deployment id -> generation it runs
    _client: AsyncClient | None = None
    _log_client: AsyncClient | None = None
    _ready: bool = False

    @property
    def volume(self) -> str:
        """PV/PVC name: one per object store directory, so two emulators never share one."""
        digest = hashlib.sha256(str(self.objectstore_root).encode()).hexdigest()[:10]
        return f"aicore-objectstore-{digest}"

    def _config(self) -> KubeConfig:
        return KubeConfig.from_file(self.kubeconfig) if self.kubeconfig else KubeConfig.from_env()

    def client(self) -> AsyncClient:
        if self._client is None:
            self._client = AsyncClient(
                config=self._config(),
                namespace=self.namespace,
                field_manager=FIELD_MANAGER,
                timeout=API_TIMEOUT,
            )
        return self._client

    def log_client(self) -> AsyncClient:
        """A second client for following logs: a quiet container must not time the stream out."""
        if self._log_client is None:
            self._log_client = AsyncClient(
                config=self._config(), namespace=self.namespace, timeout=LOG_TIMEOUT
            )
        return self._log_client

    def render(
        self,
        template: ServingTemplate,
        parameters: dict[str, str],
        artifact_urls: dict[str, str],
        *,
        deployment_id: str,
        resource_group: str,
        generation: int,
        docker_registry_secrets: set[str],
    ) -> dict[str, Any]:
        """The InferenceService of one generation (raises RenderError)."""
        urls = {
            k: kserve_storage_uri(v, self.objectstore_root, self.volume)
            for k, v in artifact_urls.items()
        }
        return inference_service(
            template,
            parameters,
            urls,
            name=deployment_id,
            namespace=self.namespace,
            labels={
                DEPLOYMENT_LABEL: deployment_id,
                RESOURCE_GROUP_LABEL: resource_group,
                GENERATION_LABEL: str(generation),
            },
            docker_registry_secrets=docker_registry_secrets,
        )

    async def _ensure_platform(self) -> None:
        """The namespace and the object store volume (idempotent, once per emulator run)."""
        if self._ready:
            return
        client = self.client()
        self.objectstore_root.mkdir(parents=True, exist_ok=True)
        await client.apply(Namespace(metadata=ObjectMeta(name=self.namespace)), force=True)
        await client.apply(
            cast(
                PersistentVolume,
                PersistentVolume.from_dict(
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolume",
                        "metadata": {
                            "name": self.volume,
                            "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
                        },
                        "spec": {
                            "capacity": {"storage": "100Gi"},
                            "accessModes": ["ReadOnlyMany"],
                            "persistentVolumeReclaimPolicy": "Retain",
                            "storageClassName": "",
                            "hostPath": {"path": str(self.objectstore_root), "type": "Directory"},
                            "claimRef": {"namespace": self.namespace, "name": self.volume},
                        },
                    }
                ),
            ),
            force=True,
        )
        await client.apply(
            cast(
                PersistentVolumeClaim,
                PersistentVolumeClaim.from_dict(
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": {"name": self.volume, "namespace": self.namespace},
                        "spec": {
                            "accessModes": ["ReadOnlyMany"],
                            "storageClassName": "",
                            "volumeName": self.volume,
                            "resources": {"requests": {"storage": "100Gi"}},
                        },
                    }
                ),
            ),
            force=True,
        )
        self._ready = True

    async def start(self, spec: PredictorSpec, log: LogSink) -> Predictor:
        if spec.manifest is None:
            raise PredictorFailed("kserve runtime: no InferenceService was rendered")
        try:
            await self._ensure_platform()
            log(f"applying InferenceService {self.namespace}/{spec.deployment_id}", "stdout")
            await self.client().apply(InferenceService.from_dict(spec.manifest), force=True)
        except ApiError as exc:
            # NB: KServe's admission webhooks answer here (their message names the field).
            raise PredictorFailed(
                f"KServe refused the InferenceService: {_api_message(exc)}"
            ) from exc
        except httpx2.HTTPError as exc:
            raise PredictorFailed(
                f"cannot create the InferenceService: {_api_message(exc)}"
            ) from exc
        self.owner[spec.deployment_id] = spec.generation
        port = 8080
        for c in spec.manifest["spec"]["predictor"].get("containers") or []:
            for p in c.get("ports") or []:
                port = int(p.get("containerPort", port))
                break
            break
        return KServePredictor(self, spec.deployment_id, spec.generation, port, log)

    async def observe(self, name: str, generation: int) -> tuple[Observation, list[dict[str, Any]]]:
        client = self.client()
        try:
            isvc: dict[str, Any] | None = _plain(
                await client.get(InferenceService, name, namespace=self.namespace)
            )
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            isvc = None
        pods = [
            _plain(p)
            async for p in client.list(Pod, namespace=self.namespace, labels={ISVC_POD_LABEL: name})
        ]
        return assess(isvc, pods, generation), pods

    async def delete(self, name: str, within_s: float = 60.0) -> None:
        client = self.client()
        with contextlib.suppress(ApiError):
            await client.delete(InferenceService, name, namespace=self.namespace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            try:
                await client.get(InferenceService, name, namespace=self.namespace)
            except ApiError as exc:
                if exc.status.code == 404:
                    return
            await asyncio.sleep(POLL_S)
        log.warning("InferenceService %s/%s still there after %ss", self.namespace, name, within_s)

    async def pod_log(self, pod: str, container: str) -> AsyncIterator[str]:
        async for line in self.log_client().log(
            pod, namespace=self.namespace, container=container, follow=True
        ):
            yield line


class KServePredictor:
    """One generation of a deployment's InferenceService, seen through KServe and its pods."""

    def __init__(
        self, runtime: KServeRuntime, name: str, generation: int, port: int, log: LogSink
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.generation = generation
        self.port = port
        self._log = log
        self.pod_ip: str | None = None
        self.last_lines: list[str] = []
        self.failure: str | None = None  # why a serving generation failed (the statusMessage)
        self._followed: set[tuple[str, str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()

    @property
    def base_url(self) -> str | None:
        return f"http://{self.pod_ip}:{self.port}" if self.pod_ip else None

    def _sink(self, line: str, stream: str) -> None:
        self.last_lines = [*self.last_lines[-4:], line]
        self._log(line, stream)

    def _follow_logs(self, pods: list[dict[str, Any]]) -> None:
        """Stream each started container of this generation into the deployment's logs."""
        for pod in pods:
            meta = pod.get("metadata") or {}
            if meta.get("labels", {}).get(GENERATION_LABEL) != str(self.generation):
                continue
            status = pod.get("status") or {}
            for cs in status.get("containerStatuses") or []:
                state = cs.get("state") or {}
                if not (state.get("running") or state.get("terminated")):
                    continue
                key = (meta["name"], cs["name"], int(cs.get("restartCount", 0)))
                if key in self._followed:
                    continue
                self._followed.add(key)
                task = asyncio.create_task(self._pump(meta["name"], cs["name"]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _pump(self, pod: str, container: str) -> None:
        with contextlib.suppress(ApiError, httpx2.HTTPError):
            async for line in self.runtime.pod_log(pod, container):
                self._sink(line.rstrip("\n"), "stdout")

    async def _look(self) -> Observation:
        try:
            seen, pods = await self.runtime.observe(self.name, self.generation)
        except (ApiError, httpx2.HTTPError) as exc:
            return Observation("PENDING", _api_message(exc))
        self._follow_logs(pods)
        return seen

    async def wait_ready(self, within_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        seen = Observation("PENDING")
        while loop.time() < deadline:
            seen = await self._look()
            if seen.status == "RUNNING":
                self.pod_ip = seen.pod_ip
                return
            if seen.status == "DEAD":
                raise PredictorFailed(seen.message)
            await asyncio.sleep(POLL_S)
        raise PredictorFailed(f"predictor not ready after {within_s:.0f}s: {seen.message}")

    async def wait_exit(self) -> int | None:
        """Watch the serving generation: follow a replaced pod's IP, return when it fails."""
        while not self._stopped.is_set():
            seen = await self._look()
            if seen.status == "RUNNING":
                self.pod_ip = seen.pod_ip
            elif seen.status == "DEAD":
                self.failure = seen.message
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), POLL_S * 2)
        return 0

    async def stop(self) -> None:
        self._stopped.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # NB: an update re-applied the same InferenceService; only its current owner deletes it.
        if self.runtime.owner.get(self.name) == self.generation:
            self.runtime.owner.pop(self.name, None)
            try:
                await self.runtime.delete(self.name)
            except (ApiError, httpx2.HTTPError) as exc:
                log.warning(
                    "could not delete InferenceService %s: %s", self.name, _api_message(exc)
                )
