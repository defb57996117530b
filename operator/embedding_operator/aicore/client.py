"""Typed async client for the AI Core AI API (``/v2/lm``): the methods the operator backend calls.

Each method builds one request and parses the answer into ``models``; everything about HTTP
(auth, resource-group header, retries, error mapping, metrics) lives in ``session.Session``,
whose ``request`` is the single choke point. All resource methods take ``resource_group`` as a
keyword so it cannot be swapped with an id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType

import httpx

from .models import (
    Accepted,
    Artifact,
    Configuration,
    Created,
    Deployment,
    DeploymentStatus,
    Executable,
    LogEntry,
    Meta,
    Scenario,
    TargetStatus,
)
from .servicekey import ServiceKey
from .session import FindExisting, ResponseHook, Session, Sleep
from .settings import ClientSettings


def _label_selector(labels: Mapping[str, str]) -> str:
    if len(labels) > 10:
        raise ValueError("AI Core accepts at most 10 label selector expressions")
    # NB: a literal comma inside a value is spelled {comma} (reference §2, query-array style).
    return ",".join(f"{k}={v.replace(',', '{comma}')}" for k, v in labels.items())


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("log window timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AICoreClient:
    """Typed async access to one AI Core instance. Use as ``async with AICoreClient(key) as c``."""

    def __init__(
        self,
        service_key: ServiceKey,
        *,
        settings: ClientSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: ResponseHook | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = Session(
            service_key,
            settings=settings,
            transport=transport,
            on_response=on_response,
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"<AICoreClient {self._session.api_url}>"

    async def __aenter__(self) -> AICoreClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._session.aclose()

    async def get_token(self) -> str:
        """A current bearer token (the inference endpoint accepts the same one). Do not log it."""
        return await self._session.token()

    async def inference_headers(self, resource_group: str) -> dict[str, str]:
        """Headers for calling a deployment's ``deploymentUrl`` (reference §6.1)."""
        return {
            "Authorization": f"Bearer {await self._session.token()}",
            "AI-Resource-Group": resource_group,
        }

    async def meta(self) -> Meta:
        """``GET /lm/meta`` (no resource group); a cheap reachability and auth check."""
        return await self._session.get_model(Meta, "/lm/meta", resource_group=None)

    async def get_scenario(self, scenario_id: str, *, resource_group: str) -> Scenario:
        return await self._session.get_model(
            Scenario,
            "/lm/scenarios/{scenario}",
            resource_group=resource_group,
            path_params={"scenario": scenario_id},
        )

    async def list_executables(self, scenario_id: str, *, resource_group: str) -> list[Executable]:
        return await self._session.get_list(
            Executable,
            "/lm/scenarios/{scenario}/executables",
            resource_group=resource_group,
            path_params={"scenario": scenario_id},
            paged=False,
        )

    async def get_executable(
        self, scenario_id: str, executable_id: str, *, resource_group: str
    ) -> Executable:
        return await self._session.get_model(
            Executable,
            "/lm/scenarios/{scenario}/executables/{executable}",
            resource_group=resource_group,
            path_params={"scenario": scenario_id, "executable": executable_id},
        )

    async def find_artifacts(
        self,
        scenario_id: str,
        *,
        resource_group: str,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> list[Artifact]:
        """Artifacts of a scenario, filtered by exact name and/or all of ``labels``."""
        params: dict[str, str | int] = {"scenarioId": scenario_id}
        if name is not None:
            params["name"] = name
        if kind is not None:
            params["kind"] = kind
        if labels:
            params["artifactLabelSelector"] = _label_selector(labels)
        found = await self._session.get_list(
            Artifact, "/lm/artifacts", resource_group=resource_group, params=params
        )
        # NB: re-check locally; a server that treats `name` as a search term must not fool us.
        return [
            a
            for a in found
            if (name is None or a.name == name)
            and all(a.label(k) == v for k, v in (labels or {}).items())
        ]

    async def create_artifact(
        self,
        *,
        resource_group: str,
        name: str,
        url: str,
        scenario_id: str,
        kind: str = "model",
        description: str | None = None,
        labels: Mapping[str, str] | None = None,
        find: FindExisting | None = None,
    ) -> Created:
        body: dict[str, object] = {
            "name": name,
            "kind": kind,
            "url": url,
            "scenarioId": scenario_id,
        }
        if description is not None:
            body["description"] = description
        if labels:
            body["labels"] = [{"key": k, "value": v} for k, v in labels.items()]
        return await self._session.create(
            "/lm/artifacts", body, resource_group=resource_group, find=find
        )

    async def get_artifact(self, artifact_id: str, *, resource_group: str) -> Artifact:
        return await self._session.get_model(
            Artifact,
            "/lm/artifacts/{id}",
            resource_group=resource_group,
            path_params={"id": artifact_id},
        )

    async def find_configurations(
        self,
        scenario_id: str,
        *,
        resource_group: str,
        executable_ids: Sequence[str] | None = None,
        name: str | None = None,
    ) -> list[Configuration]:
        """Configurations of a scenario, optionally of given executables and with an exact name.

        NB: configurations carry no labels in the AI API (reference §3.3), so deterministic names
        are the only handle; ``$search`` semantics are unspecified, so names are matched here.
        """
        params: dict[str, str | int] = {"scenarioId": scenario_id}
        if executable_ids:
            params["executableIds"] = ",".join(executable_ids)
        found = await self._session.get_list(
            Configuration, "/lm/configurations", resource_group=resource_group, params=params
        )
        return [c for c in found if name is None or c.name == name]

    async def create_configuration(
        self,
        *,
        resource_group: str,
        name: str,
        scenario_id: str,
        executable_id: str,
        parameter_bindings: Mapping[str, str] | None = None,
        artifact_bindings: Mapping[str, str] | None = None,
        find: FindExisting | None = None,
    ) -> Created:
        """Create an (immutable) configuration; ``artifact_bindings``: input name → artifact id."""
        body = {
            "name": name,
            "scenarioId": scenario_id,
            "executableId": executable_id,
            "parameterBindings": [
                {"key": k, "value": v} for k, v in (parameter_bindings or {}).items()
            ],
            "inputArtifactBindings": [
                {"key": k, "artifactId": v} for k, v in (artifact_bindings or {}).items()
            ],
        }
        return await self._session.create(
            "/lm/configurations", body, resource_group=resource_group, find=find
        )

    async def get_configuration(
        self, configuration_id: str, *, resource_group: str
    ) -> Configuration:
        return await self._session.get_model(
            Configuration,
            "/lm/configurations/{id}",
            resource_group=resource_group,
            path_params={"id": configuration_id},
        )

    async def list_deployments(
        self,
        *,
        resource_group: str,
        scenario_id: str | None = None,
        configuration_id: str | None = None,
        status: DeploymentStatus | None = None,
        executable_ids: Sequence[str] | None = None,
    ) -> list[Deployment]:
        params: dict[str, str | int] = {}
        if scenario_id is not None:
            params["scenarioId"] = scenario_id
        if configuration_id is not None:
            params["configurationId"] = configuration_id
        if status is not None:
            params["status"] = status.value
        if executable_ids:
            params["executableIds"] = ",".join(executable_ids)
        return await self._session.get_list(
            Deployment, "/lm/deployments", resource_group=resource_group, params=params
        )

    async def create_deployment(
        self,
        configuration_id: str,
        *,
        resource_group: str,
        ttl: str | None = None,
        find: FindExisting | None = None,
    ) -> Created:
        """Schedule a deployment (202; status starts UNKNOWN). ``ttl`` like ``"24h"`` (≥10m)."""
        body: dict[str, object] = {"configurationId": configuration_id}
        if ttl is not None:
            body["ttl"] = ttl
        return await self._session.create(
            "/lm/deployments", body, resource_group=resource_group, find=find
        )

    async def get_deployment(self, deployment_id: str, *, resource_group: str) -> Deployment:
        return await self._session.get_model(
            Deployment,
            "/lm/deployments/{id}",
            resource_group=resource_group,
            path_params={"id": deployment_id},
        )

    async def patch_deployment(
        self,
        deployment_id: str,
        *,
        resource_group: str,
        target_status: TargetStatus | None = None,
        configuration_id: str | None = None,
    ) -> Accepted:
        """Stop (``target_status=STOPPED``) or switch configuration; exactly one of the two.

        NB: AI Core accepts only STOPPED as a target (no restart), and the official SDK refuses to
        send both fields at once because the server's behaviour for that is undefined.
        """
        if (target_status is None) == (configuration_id is None):
            raise ValueError(
                "patch_deployment needs exactly one of target_status, configuration_id"
            )
        body: dict[str, str] = (
            {"targetStatus": target_status.value}
            if target_status is not None
            else {"configurationId": str(configuration_id)}
        )
        return await self._session.modify(
            "PATCH", deployment_id, body, resource_group=resource_group
        )

    async def stop_deployment(self, deployment_id: str, *, resource_group: str) -> Accepted:
        return await self.patch_deployment(
            deployment_id, resource_group=resource_group, target_status=TargetStatus.STOPPED
        )

    async def delete_deployment(self, deployment_id: str, *, resource_group: str) -> Accepted:
        """Schedule deletion (allowed for STOPPED, DEAD, UNKNOWN; a RUNNING one must stop first)."""
        return await self._session.modify(
            "DELETE", deployment_id, None, resource_group=resource_group
        )

    async def get_deployment_logs(
        self,
        deployment_id: str,
        *,
        resource_group: str,
        top: int = 1000,
        start: datetime | None = None,
        end: datetime | None = None,
        order: str = "asc",
    ) -> list[LogEntry]:
        """Log lines of a deployment (AI Core's default window is the last hour)."""
        if not 1 <= top <= 5000:
            raise ValueError("get_deployment_logs: top must be between 1 and 5000")
        if order not in ("asc", "desc"):
            raise ValueError("get_deployment_logs: order must be 'asc' or 'desc'")
        params: dict[str, str | int] = {"$top": top, "$order": order}
        if start is not None:
            params["start"] = _rfc3339(start)
        if end is not None:
            params["end"] = _rfc3339(end)
        response = await self._session.request(
            "GET",
            "/lm/deployments/{id}/logs",
            path_params={"id": deployment_id},
            resource_group=resource_group,
            params=params,
        )
        assert isinstance(response, httpx.Response)
        body = self._session.read_json(response, "GET")
        data = body.get("data") if isinstance(body, dict) else None
        result = data.get("result") if isinstance(data, dict) else None
        return [self._session.parse(LogEntry, r, "GET", response.url.path) for r in (result or [])]
