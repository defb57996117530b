"""Async client for the AI Core AI API (``/v2/lm``): the only code that talks HTTP to AI Core.

Every call, the token call included, goes through ``_request``, the single choke point that joins
the URL, adds ``Authorization`` and ``AI-Resource-Group``, retries with back-off, refreshes the
token once on a 401, maps errors to ``errors.py``'s tree and reports each response to the optional
``on_response(endpoint_template, method, status, seconds)`` hook (``status`` is None when no
response arrived), so metrics can be attached without touching this module.

Retry rules (``settings.RetrySettings``):

- GET, DELETE and PATCH (always sent with the same body) are idempotent and are retried on
  connection errors, timeouts and 429/502/503/504, honouring ``Retry-After``.
- A POST is retried only when it provably did not take effect: the connection was never
  established, or the caller passed ``find`` (a lookup by the object's deterministic name or
  labels) and it found nothing. When ``find`` finds the object, that id is returned as
  ``Created(recovered=True)`` instead of creating a duplicate.

NB: AI Core lists are paged with ``$top``/``$skip``; whether ``count`` is the total or the page
length is unconfirmed (reference §2), so paging stops on a short page, never on ``count``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .auth import TokenCache
from .errors import (
    AICoreError,
    AICoreRequestError,
    AICoreResponseError,
    redact,
    status_error,
    truncate,
)
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
from .settings import ClientSettings, backoff_delay, parse_retry_after

log = logging.getLogger(__name__)

ResponseHook = Callable[[str, str, int | None, float], None]
"""``(endpoint_template, method, status or None, seconds)``, called after every HTTP exchange."""

FindExisting = Callable[[], Awaitable[str | None]]
"""Looks up the object a POST was creating; returns its id, or None if it does not exist."""

Sleep = Callable[[float], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class _Found:
    id: str


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
        self._key = service_key
        self._settings = settings or ClientSettings()
        self._on_response = on_response
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                self._settings.read_timeout, connect=self._settings.connect_timeout
            ),
        )
        self._tokens = TokenCache(self._fetch_token, clock=clock)

    def __repr__(self) -> str:
        return f"<AICoreClient {self._key.api_url}>"

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
        await self._http.aclose()

    # -- auth --------------------------------------------------------------------------------

    async def get_token(self) -> str:
        """A current bearer token (the inference endpoint accepts the same one). Do not log it."""
        return await self._tokens.get()

    async def inference_headers(self, resource_group: str) -> dict[str, str]:
        """Headers for calling a deployment's ``deploymentUrl`` (reference §6.1)."""
        return {
            "Authorization": f"Bearer {await self._tokens.get()}",
            "AI-Resource-Group": resource_group,
        }

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._key.clientid,
            "client_secret": self._key.clientsecret.get_secret_value(),
        }
        # NB: minting a token twice is harmless, so the token POST counts as idempotent.
        response = await self._request(
            "POST", "/oauth/token", url=self._key.auth_url, data=form, authenticate=False
        )
        assert isinstance(response, httpx.Response)
        body = self._json(response, "POST")
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 3600) if isinstance(body, dict) else None
        if not isinstance(token, str) or not isinstance(expires_in, int | float):
            raise AICoreResponseError(
                "XSUAA token response lacks access_token/expires_in; check the service key's url"
            )
        return token, float(expires_in)

    # -- the choke point ---------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [self._key.clientsecret.get_secret_value(), *self._tokens.recent_tokens()]

    def _observe(self, template: str, method: str, status: int | None, started: float) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(template, method, status, self._clock() - started)
        except Exception:
            log.exception("AI Core on_response hook failed for %s %s", method, template)

    async def _request(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        resource_group: str | None = None,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        data: Mapping[str, str] | None = None,
        url: str | None = None,
        authenticate: bool = True,
        find: FindExisting | None = None,
    ) -> httpx.Response | _Found:
        """Send one logical call (with its retries); return the 2xx response or what ``find`` found.

        ``template`` is the endpoint relative to ``…/v2`` with ``{name}`` placeholders, filled from
        ``path_params`` (quoted); ``url`` overrides it for the token endpoint.
        """
        if url is None:
            quoted = {k: quote(v, safe="") for k, v in (path_params or {}).items()}
            url = self._key.api_url + template.format(**quoted)
        path = httpx.URL(url).path
        retry = self._settings.retry
        idempotent = method != "POST" or not authenticate
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            headers = {"AI-Client-Type": self._settings.client_type}
            token = ""
            if authenticate:
                token = await self._tokens.get()
                headers["Authorization"] = f"Bearer {token}"
            if resource_group is not None:
                headers["AI-Resource-Group"] = resource_group
            started = self._clock()
            try:
                response = await self._http.request(
                    method, url, params=params, json=json, data=data, headers=headers
                )
            except httpx.TransportError as exc:
                self._observe(template, method, None, started)
                reason = truncate(redact(f"{type(exc).__name__}: {exc}", self._secrets()))
                error: AICoreError = AICoreRequestError(method, path, reason)
                # ConnectError/ConnectTimeout: the request never left this process.
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                retry_after = None
                cause: BaseException | None = exc
            else:
                self._observe(template, method, response.status_code, started)
                log.debug(
                    "AI Core %s %s -> %d (attempt %d)", method, path, response.status_code, attempt
                )
                if response.is_success:
                    return response
                if response.status_code == 401 and authenticate and not refreshed:
                    # The token may have been revoked or expired early: refresh once, not counted.
                    refreshed = True
                    attempt -= 1
                    self._tokens.invalidate(token)
                    log.info("AI Core %s %s -> 401; refreshing the token once", method, path)
                    continue
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                error = status_error(
                    method, path, response, secrets=self._secrets(), retry_after=retry_after
                )
                cause = None
                unsent = False
                if response.status_code not in retry.retry_statuses:
                    raise error
            if attempt >= retry.max_attempts:
                raise error from cause
            if not (idempotent or unsent):
                if find is None:
                    raise error from cause
                found = await find()
                if found is not None:
                    log.info("AI Core %s %s: found %s after a failed attempt", method, path, found)
                    return _Found(found)
            if retry_after is not None and retry_after > retry.max_retry_after:
                raise error from cause  # the caller should requeue rather than block that long
            delay = backoff_delay(retry, attempt, retry_after)
            log.warning(
                "AI Core %s %s failed (%s); retry %d/%d in %.2fs",
                method,
                path,
                error,
                attempt,
                retry.max_attempts - 1,
                delay,
            )
            await self._sleep(delay)

    def _json(self, response: httpx.Response, method: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise AICoreResponseError(
                f"AI Core answered {method} {response.url.path} with a non-JSON body: "
                f"{truncate(redact(response.text, self._secrets()), 120)}"
            ) from None

    def _parse(self, model: type[M], data: object, method: str, path: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '<body>'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise AICoreResponseError(
                f"AI Core answered {method} {path} with an unexpected {model.__name__}: {problems}"
            ) from None

    async def _get(
        self,
        model: type[M],
        template: str,
        *,
        resource_group: str | None,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> M:
        response = await self._request(
            "GET", template, path_params=path_params, resource_group=resource_group, params=params
        )
        assert isinstance(response, httpx.Response)
        return self._parse(model, self._json(response, "GET"), "GET", response.url.path)

    async def _list(
        self,
        model: type[M],
        template: str,
        *,
        resource_group: str,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        paged: bool = True,
    ) -> list[M]:
        top = self._settings.page_size
        items: list[M] = []
        skip = 0
        while True:
            query: dict[str, str | int] = dict(params or {})
            if paged:
                query.update({"$top": top, "$skip": skip})
            response = await self._request(
                "GET",
                template,
                path_params=path_params,
                resource_group=resource_group,
                params=query,
            )
            assert isinstance(response, httpx.Response)
            body = self._json(response, "GET")
            resources = body.get("resources") if isinstance(body, dict) else None
            if not isinstance(resources, list):
                raise AICoreResponseError(
                    f"AI Core answered GET {response.url.path} without a 'resources' list"
                )
            items.extend(self._parse(model, r, "GET", response.url.path) for r in resources)
            # A page longer than $top means the server ignored paging: we already have it all.
            if not paged or len(resources) != top:
                return items
            skip += top

    async def _create(
        self,
        template: str,
        body: Mapping[str, object],
        *,
        resource_group: str,
        find: FindExisting | None,
    ) -> Created:
        result = await self._request(
            "POST", template, resource_group=resource_group, json=body, find=find
        )
        if isinstance(result, _Found):
            return Created(id=result.id, message="found after a failed attempt", recovered=True)
        return self._parse(Created, self._json(result, "POST"), "POST", result.url.path)

    async def _modify(
        self, method: str, deployment_id: str, body: object, *, resource_group: str
    ) -> Accepted:
        response = await self._request(
            method,
            "/lm/deployments/{id}",
            path_params={"id": deployment_id},
            resource_group=resource_group,
            json=body,
        )
        assert isinstance(response, httpx.Response)
        data = self._json(response, method) if response.content else {}
        return self._parse(Accepted, data, method, response.url.path)

    # -- AI API ------------------------------------------------------------------------------

    async def meta(self) -> Meta:
        """``GET /lm/meta`` (no resource group); a cheap reachability and auth check."""
        return await self._get(Meta, "/lm/meta", resource_group=None)

    async def get_scenario(self, scenario_id: str, *, resource_group: str) -> Scenario:
        return await self._get(
            Scenario,
            "/lm/scenarios/{scenario}",
            resource_group=resource_group,
            path_params={"scenario": scenario_id},
        )

    async def list_executables(self, scenario_id: str, *, resource_group: str) -> list[Executable]:
        return await self._list(
            Executable,
            "/lm/scenarios/{scenario}/executables",
            resource_group=resource_group,
            path_params={"scenario": scenario_id},
            paged=False,
        )

    async def get_executable(
        self, scenario_id: str, executable_id: str, *, resource_group: str
    ) -> Executable:
        return await self._get(
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
        found = await self._list(
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
        return await self._create("/lm/artifacts", body, resource_group=resource_group, find=find)

    async def get_artifact(self, artifact_id: str, *, resource_group: str) -> Artifact:
        return await self._get(
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
        found = await self._list(
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
        return await self._create(
            "/lm/configurations", body, resource_group=resource_group, find=find
        )

    async def get_configuration(
        self, configuration_id: str, *, resource_group: str
    ) -> Configuration:
        return await self._get(
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
        return await self._list(
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
        return await self._create("/lm/deployments", body, resource_group=resource_group, find=find)

    async def get_deployment(self, deployment_id: str, *, resource_group: str) -> Deployment:
        return await self._get(
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
        return await self._modify("PATCH", deployment_id, body, resource_group=resource_group)

    async def stop_deployment(self, deployment_id: str, *, resource_group: str) -> Accepted:
        return await self.patch_deployment(
            deployment_id, resource_group=resource_group, target_status=TargetStatus.STOPPED
        )

    async def delete_deployment(self, deployment_id: str, *, resource_group: str) -> Accepted:
        """Schedule deletion (allowed for STOPPED, DEAD, UNKNOWN; a RUNNING one must stop first)."""
        return await self._modify("DELETE", deployment_id, None, resource_group=resource_group)

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
        response = await self._request(
            "GET",
            "/lm/deployments/{id}/logs",
            path_params={"id": deployment_id},
            resource_group=resource_group,
            params=params,
        )
        assert isinstance(response, httpx.Response)
        body = self._json(response, "GET")
        data = body.get("data") if isinstance(body, dict) else None
        result = data.get("result") if isinstance(data, dict) else None
        return [self._parse(LogEntry, r, "GET", response.url.path) for r in (result or [])]
