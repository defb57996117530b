"""One authenticated connection to AI Core: the ``request`` choke point every call goes through.

``request`` joins the URL, adds ``Authorization`` and ``AI-Resource-Group``, retries with back-off,
refreshes the token once on a 401, maps errors to ``errors.py``'s tree and reports each exchange to
the optional ``on_response(endpoint_template, method, status, seconds)`` hook (``status`` is None
when no response arrived), so metrics can be attached without touching the client. The token call
itself goes through it too (same timeouts, retries and metrics).

Retry rules (``settings.RetrySettings``):

- GET, DELETE and PATCH (always sent with the same body) are idempotent and are retried on
  connection errors, timeouts and 429/502/503/504, honouring ``Retry-After``.
- A POST is retried only when it provably did not take effect: the connection was never
  established, or the caller passed ``find`` (a lookup by the object's deterministic name or
  labels) and it found nothing. When ``find`` finds the object, its id comes back as ``Found``
  and the client returns ``Created(recovered=True)`` instead of creating a duplicate.
  NB: 429/502/503/504 on a POST do not prove absence (a gateway may answer after forwarding).

NB: AI Core lists are paged with ``$top``/``$skip``; whether ``count`` is the total or the page
length is unconfirmed (reference §2), so paging stops on a short page, never on ``count``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from embedding_operator.redact import redact, remember

from .auth import TokenCache
from .errors import (
    AICoreError,
    AICoreRequestError,
    AICoreResponseError,
    status_error,
    truncate,
)
from .models import Accepted, Created
from .servicekey import ServiceKey
from .settings import ClientSettings, backoff_delay, parse_retry_after

log = logging.getLogger("embedding_operator.aicore")

ResponseHook = Callable[[str, str, int | None, float], None]
"""``(endpoint_template, method, status or None, seconds)``, called after every HTTP exchange."""

FindExisting = Callable[[], Awaitable[str | None]]
"""Looks up the object a POST was creating; returns its id, or None if it does not exist."""

Sleep = Callable[[float], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)


class _Page(BaseModel, Generic[M]):
    """One page of an AI Core list (`count` and other fields are not used)."""

    resources: list[M]


@functools.cache
def _page_type(model: type[M]) -> type[_Page[M]]:
    return _Page[model]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Found:
    """What a POST's ``find`` located after a failed attempt."""

    id: str


class Session:
    """Owns the httpx client and the token cache; the typed client is built on top of it."""

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
        remember(service_key.clientsecret.get_secret_value())  # masked at every exit from now on
        self._settings = settings or ClientSettings()
        self._on_response = on_response
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                self._settings.read_timeout,
                connect=self._settings.connect_timeout,
                pool=self._settings.pool_timeout,
            ),
            limits=httpx.Limits(max_connections=self._settings.max_connections),
        )
        # NB: requests queue here, not in httpx's pool: httpcore re-scans its whole queue on
        # every request start and end, so 500 objects waiting for 100 connections spent a tenth
        # of the operator's CPU there (py-spy, bench/RESULTS.md); a semaphore wakes one waiter.
        self._slots = asyncio.Semaphore(self._settings.max_connections)
        self._tokens = TokenCache(self._fetch_token, clock=clock)

    def __repr__(self) -> str:
        return f"<Session {self._key.api_url}>"

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def api_url(self) -> str:
        return self._key.api_url

    async def token(self) -> str:
        return await self._tokens.get()

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._key.clientid,
            "client_secret": self._key.clientsecret.get_secret_value(),
        }
        # NB: minting a token twice is harmless, so the token POST counts as idempotent.
        response = await self.request(
            "POST", "/oauth/token", url=self._key.auth_url, data=form, authenticate=False
        )
        assert isinstance(response, httpx.Response)
        body = self.read_json(response, "POST")
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 3600) if isinstance(body, dict) else None
        if isinstance(token, str):
            remember(token)
        if not isinstance(token, str) or not isinstance(expires_in, int | float):
            raise AICoreResponseError(
                "XSUAA token response lacks access_token/expires_in; check the service key's url"
            )
        return token, float(expires_in)

    def _secrets(self) -> list[str]:
        return [self._key.clientsecret.get_secret_value(), *self._tokens.recent_tokens()]

    def _observe(self, template: str, method: str, status: int | None, started: float) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(template, method, status, self._clock() - started)
        except Exception:
            log.exception("AI Core on_response hook failed for %s %s", method, template)

    async def request(
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
    ) -> httpx.Response | Found:
        """Send one logical call (with its retries); return the 2xx response or what ``find`` found.

        ``template`` is the endpoint relative to ``…/v2`` with ``{name}`` placeholders, filled from
        ``path_params`` (quoted); ``url`` overrides it for the token endpoint.
        """
        if resource_group is not None and not resource_group.strip():
            raise ValueError("resource_group must name an AI Core resource group, e.g. 'default'")
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
            try:
                async with self._slots:
                    started = self._clock()
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
                    return Found(found)
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

    def read_json(self, response: httpx.Response, method: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise AICoreResponseError(
                f"AI Core answered {method} {response.url.path} with a non-JSON body: "
                f"{truncate(redact(response.text, self._secrets()), 120)}"
            ) from None

    def _parse_page(self, model: type[M], response: httpx.Response) -> list[M]:
        # NB: pydantic parses the JSON bytes itself; json.loads plus model_validate per item
        # was a quarter of the operator's CPU at 500 objects (the view's lists, py-spy).
        try:
            return _page_type(model).model_validate_json(response.content).resources
        except ValidationError:
            pass  # the slow path below says what is wrong
        body = self.read_json(response, "GET")
        resources = body.get("resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            raise AICoreResponseError(
                f"AI Core answered GET {response.url.path} without a 'resources' list"
            )
        return [self.parse(model, r, "GET", response.url.path) for r in resources]

    def parse(self, model: type[M], data: object, method: str, path: str) -> M:
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

    async def get_model(
        self,
        model: type[M],
        template: str,
        *,
        resource_group: str | None,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> M:
        response = await self.request(
            "GET", template, path_params=path_params, resource_group=resource_group, params=params
        )
        assert isinstance(response, httpx.Response)
        return self.parse(model, self.read_json(response, "GET"), "GET", response.url.path)

    async def get_list(
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
            response = await self.request(
                "GET",
                template,
                path_params=path_params,
                resource_group=resource_group,
                params=query,
            )
            assert isinstance(response, httpx.Response)
            resources = self._parse_page(model, response)
            items.extend(resources)
            # A page longer than $top means the server ignored paging: we already have it all.
            if not paged or len(resources) != top:
                return items
            skip += top

    async def create(
        self,
        template: str,
        body: Mapping[str, object],
        *,
        resource_group: str,
        find: FindExisting | None,
    ) -> Created:
        result = await self.request(
            "POST", template, resource_group=resource_group, json=body, find=find
        )
        if isinstance(result, Found):
            return Created(id=result.id, message="found after a failed attempt", recovered=True)
        return self.parse(Created, self.read_json(result, "POST"), "POST", result.url.path)

    async def modify(
        self, method: str, deployment_id: str, body: object, *, resource_group: str
    ) -> Accepted:
        response = await self.request(
            method,
            "/lm/deployments/{id}",
            path_params={"id": deployment_id},
            resource_group=resource_group,
            json=body,
        )
        assert isinstance(response, httpx.Response)
        data = self.read_json(response, method) if response.content else {}
        return self.parse(Accepted, data, method, response.url.path)
