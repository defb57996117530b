"""AICoreClient against httpx.MockTransport: retries, auth refresh, error mapping, paging, bodies.

``Fake`` is a scripted AI Core: each (method, path) has a queue of responders (the last one repeats)
and every request is recorded, so tests assert what went over the wire. Sleep and clock are fakes,
so back-off is asserted exactly and no test waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from embedding_operator.aicore import (
    AICoreClient,
    AICoreError,
    AICoreRequestError,
    AICoreResponseError,
    ClientSettings,
    Conflict,
    DeploymentStatus,
    NotFound,
    RateLimited,
    RetrySettings,
    ServerError,
    TargetStatus,
    Unauthorized,
    parse_service_key,
)
from embedding_operator.aicore.auth import refresh_after

SECRET = "client-secret-4f9a7c"
API = "https://api.ai.example.test"
AUTH = "https://tenant.authentication.example.test"
RG = "rg-emb"
TS = "2026-01-01T00:00:00Z"

Responder = Callable[[httpx.Request], httpx.Response]


def reply(
    status: int = 200, body: Any = None, *, text: str | None = None, **headers: str
) -> Responder:
    def respond(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body if body is not None else {}, headers=headers)

    return respond


def fail(exc_type: type[httpx.TransportError], message: str = "boom") -> Responder:
    def respond(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return respond


class Fake:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Responder]] = {}
        self.requests: list[httpx.Request] = []
        self.tokens: list[str] = []
        self.expires_in = 3600
        self.token_route: list[Responder] = []
        """One-shot responders for the token endpoint; when empty, a fresh token is issued."""

    def on(self, method: str, path: str, *responders: Responder) -> None:
        self.routes[(method, "/v2" + path)] = list(responders)

    def api_requests(self, method: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if r.url.path.startswith("/v2") and (method is None or r.method == method)
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            if self.token_route:
                return self.token_route.pop(0)(request)
            token = f"eyJhbGciOiJSUzI1NiJ9.eyJ0b2tlbiI6{len(self.tokens) + 1}x.c2lnbmF0dXJlLXZhbHVl"
            self.tokens.append(token)
            return httpx.Response(
                200, json={"access_token": token, "expires_in": self.expires_in, "jti": "j"}
            )
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"error": {"code": "404", "message": "no route"}})
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


SERVICE_KEY = parse_service_key(
    {
        "clientid": "sb-client!b1|aicore!b2",
        "clientsecret": SECRET,
        "url": AUTH,
        "serviceurls": {"AI_API_URL": API},
    }
)
NO_JITTER = ClientSettings(retry=RetrySettings(jitter=0, max_attempts=4))


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(fake: Fake, clock: Clock) -> AsyncIterator[AICoreClient]:
    async with AICoreClient(
        SERVICE_KEY,
        settings=NO_JITTER,
        transport=httpx.MockTransport(fake),
        clock=clock,
        sleep=clock.sleep,
    ) as c:
        yield c


def deployment(
    id: str = "d0123456789abcde", status: str = "RUNNING", **extra: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "configurationId": "c1",
        "configurationName": "emb",
        "scenarioId": "byom",
        "status": status,
        "targetStatus": "RUNNING",
        "deploymentUrl": f"{API}/v2/inference/deployments/{id}",
        "createdAt": TS,
        "modifiedAt": TS,
        **extra,
    }


def artifact(id: str, name: str = "a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "id": id,
        "name": name,
        "kind": "model",
        "url": "ai://default/m",
        "scenarioId": "byom",
        "labels": [{"key": k, "value": v} for k, v in (labels or {}).items()],
        "createdAt": TS,
        "modifiedAt": TS,
    }


# -- headers and token cache ---------------------------------------------------------------------


async def test_headers_token_form_and_caching(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(200, deployment("d1")))
    fake.on("GET", "/lm/meta", reply(200, {"aiApi": {"version": "2.31.0"}}))
    got = await client.get_deployment("d1", resource_group=RG)
    await client.get_deployment("d1", resource_group=RG)
    meta = await client.meta()

    assert got.id == "d1" and got.status is DeploymentStatus.RUNNING
    assert meta.ai_api_version == "2.31.0"
    token_requests = [r for r in fake.requests if r.url.path == "/oauth/token"]
    assert len(token_requests) == 1  # cached
    form = dict(httpx.QueryParams(token_requests[0].content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "sb-client!b1|aicore!b2",
        "client_secret": SECRET,
    }
    first, _, meta_request = fake.api_requests()
    assert first.headers["Authorization"] == f"Bearer {fake.tokens[0]}"
    assert first.headers["AI-Resource-Group"] == RG
    assert first.headers["AI-Client-Type"] == "embedding-operator"
    assert "AI-Resource-Group" not in meta_request.headers  # /lm/meta is tenant-level
    assert fake.tokens[0] not in repr(client)


async def test_concurrent_calls_share_one_token_fetch(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(200, deployment("d1")))
    await asyncio.gather(*(client.get_deployment("d1", resource_group=RG) for _ in range(5)))
    assert len(fake.tokens) == 1


@pytest.mark.parametrize(
    ("expires_in", "refresh_at"),
    [(43199, 38879.1), (7199, 6479.1), (3600, 3240), (600, 300), (60, 30)],
)
def test_refresh_after(expires_in: float, refresh_at: float) -> None:
    assert refresh_after(expires_in) == pytest.approx(refresh_at)


async def test_token_refreshed_before_expiry(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(200, deployment("d1")))
    await client.get_deployment("d1", resource_group=RG)
    clock.now += 3239  # refresh_after(3600) == 3240
    await client.get_deployment("d1", resource_group=RG)
    assert len(fake.tokens) == 1
    clock.now += 2
    await client.get_deployment("d1", resource_group=RG)
    assert len(fake.tokens) == 2
    assert fake.api_requests()[-1].headers["Authorization"] == f"Bearer {fake.tokens[1]}"


async def test_401_refreshes_token_once_then_succeeds(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(401, text="Jwt expired"), reply(200, deployment()))
    got = await client.get_deployment("d1", resource_group=RG)
    assert got.status is DeploymentStatus.RUNNING
    assert len(fake.tokens) == 2
    auth = [r.headers["Authorization"] for r in fake.api_requests()]
    assert auth == [f"Bearer {fake.tokens[0]}", f"Bearer {fake.tokens[1]}"]


async def test_persistent_401_raises_unauthorized_after_one_refresh(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(401, text="Unauthorized"))
    with pytest.raises(Unauthorized) as info:
        await client.get_deployment("d1", resource_group=RG)
    assert info.value.status == 401 and not info.value.retryable
    assert len(fake.api_requests()) == 2 and len(fake.tokens) == 2
    assert clock.sleeps == []


async def test_401_on_post_is_retried_after_refresh(client: AICoreClient, fake: Fake) -> None:
    fake.on("POST", "/lm/deployments", reply(401), reply(202, {"id": "d9", "message": "ok"}))
    created = await client.create_deployment("c1", resource_group=RG)
    assert created.id == "d9" and not created.recovered


async def test_token_endpoint_rejection_is_unauthorized_without_retry(
    client: AICoreClient, fake: Fake
) -> None:
    fake.token_route = [
        reply(401, {"error": "unauthorized", "error_description": "Bad credentials"}),
    ]
    with pytest.raises(Unauthorized, match=r"POST /oauth/token failed: HTTP 401.*Bad credentials"):
        await client.meta()
    assert len(fake.requests) == 1


async def test_token_endpoint_503_is_retried(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.token_route = [reply(503), reply(503)]
    fake.on("GET", "/lm/meta", reply(200, {}))
    await client.meta()
    assert clock.sleeps == [0.5, 1.0]


async def test_token_response_without_token_is_a_response_error(
    client: AICoreClient, fake: Fake
) -> None:
    fake.token_route = [reply(200, {"expires_in": 1})]
    with pytest.raises(AICoreResponseError, match="access_token"):
        await client.meta()


# -- retries -------------------------------------------------------------------------------------


async def test_429_honours_retry_after(client: AICoreClient, fake: Fake, clock: Clock) -> None:
    fake.on(
        "GET",
        "/lm/deployments/d1",
        reply(429, {"error": {"code": "429", "message": "slow"}}, **{"Retry-After": "3"}),
        reply(200, deployment("d1")),
    )
    await client.get_deployment("d1", resource_group=RG)
    assert clock.sleeps == [3.0]


async def test_5xx_retried_with_backoff_then_success(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.on(
        "GET", "/lm/deployments/d1", reply(503), reply(502), reply(504), reply(200, deployment())
    )
    await client.get_deployment("d1", resource_group=RG)
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert len(fake.api_requests()) == 4


async def test_retries_exhausted_raise_the_last_error(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.on("DELETE", "/lm/deployments/d1", reply(503, {"error": {"code": "503", "message": "m"}}))
    with pytest.raises(ServerError) as info:
        await client.delete_deployment("d1", resource_group=RG)
    assert info.value.retryable and info.value.status == 503
    assert len(fake.api_requests()) == 4 and len(clock.sleeps) == 3


async def test_500_is_not_retried(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(500), reply(200, deployment()))
    with pytest.raises(ServerError):
        await client.get_deployment("d1", resource_group=RG)
    assert len(fake.api_requests()) == 1


async def test_long_retry_after_is_handed_to_the_caller(
    client: AICoreClient, fake: Fake, clock: Clock
) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(429, **{"Retry-After": "600"}))
    with pytest.raises(RateLimited) as info:
        await client.get_deployment("d1", resource_group=RG)
    assert info.value.retry_after == 600.0 and info.value.retryable
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
async def test_get_retried_on_transport_errors(
    client: AICoreClient, fake: Fake, exc_type: type[httpx.TransportError]
) -> None:
    fake.on("GET", "/lm/deployments/d1", fail(exc_type), reply(200, deployment()))
    got = await client.get_deployment("d1", resource_group=RG)
    assert got.id == "d0123456789abcde"


async def test_transport_error_exhausted_is_request_error_chained(
    client: AICoreClient, fake: Fake
) -> None:
    fake.on("GET", "/lm/deployments/d1", fail(httpx.ReadTimeout, "timed out"))
    with pytest.raises(AICoreRequestError) as info:
        await client.get_deployment("d1", resource_group=RG)
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert "GET /v2/lm/deployments/d1 failed without a response: ReadTimeout" in str(info.value)


@pytest.mark.parametrize(
    "first",
    [reply(503), reply(504), reply(429, **{"Retry-After": "1"}), fail(httpx.ReadTimeout)],
    ids=["503", "504", "429", "read-timeout"],
)
async def test_post_not_retried_without_proof(
    client: AICoreClient, fake: Fake, clock: Clock, first: Responder
) -> None:
    fake.on("POST", "/lm/artifacts", first, reply(201, {"id": "a1", "message": "ok", "url": "u"}))
    with pytest.raises(AICoreError) as info:
        await client.create_artifact(
            resource_group=RG, name="a", url="ai://default/a", scenario_id="byom"
        )
    assert info.value.retryable
    assert len(fake.api_requests("POST")) == 1 and clock.sleeps == []


async def test_post_retried_when_connection_never_established(
    client: AICoreClient, fake: Fake
) -> None:
    fake.on(
        "POST",
        "/lm/artifacts",
        fail(httpx.ConnectError, "refused"),
        reply(201, {"id": "a1", "message": "Artifact acknowledged", "url": "ai://default/a"}),
    )
    created = await client.create_artifact(
        resource_group=RG, name="a", url="ai://default/a", scenario_id="byom"
    )
    assert (created.id, created.url, created.recovered) == ("a1", "ai://default/a", False)


async def test_post_with_find_retries_when_absent_and_recovers_when_present(
    client: AICoreClient, fake: Fake
) -> None:
    lookups: list[str] = []

    async def absent() -> str | None:
        lookups.append("absent")
        return None

    fake.on("POST", "/lm/configurations", reply(504), reply(201, {"id": "c1", "message": "ok"}))
    created = await client.create_configuration(
        resource_group=RG, name="n", scenario_id="s", executable_id="e", find=absent
    )
    assert created.id == "c1" and lookups == ["absent"]

    async def present() -> str | None:
        return "c-existing"

    fake.on("POST", "/lm/configurations", reply(502), reply(201, {"id": "dup", "message": "ok"}))
    recovered = await client.create_configuration(
        resource_group=RG, name="n", scenario_id="s", executable_id="e", find=present
    )
    assert recovered.id == "c-existing" and recovered.recovered
    assert len(fake.api_requests("POST")) == 3  # 2 for the first create, 1 for the second


async def test_post_4xx_never_consults_find(client: AICoreClient, fake: Fake) -> None:
    async def find() -> str | None:
        raise AssertionError("find must not run for a 400")

    fake.on("POST", "/lm/deployments", reply(400, {"error": {"code": "x", "message": "bad"}}))
    with pytest.raises(AICoreError, match="HTTP 400"):
        await client.create_deployment("c1", resource_group=RG, find=find)


# -- error mapping through the client ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (404, {"error": {"code": "404", "message": "Deployment not found"}}, NotFound),
        (412, {"error": {"code": "01010076", "message": "cannot be changed"}}, Conflict),
        (400, {"error": {"code": "01010076", "message": "cannot be changed"}}, Conflict),
    ],
)
async def test_patch_errors_map(
    client: AICoreClient, fake: Fake, status: int, body: dict[str, Any], cls: type[Exception]
) -> None:
    fake.on("PATCH", "/lm/deployments/d1", reply(status, body))
    with pytest.raises(cls):
        await client.stop_deployment("d1", resource_group=RG)
    assert len(fake.api_requests()) == 1


async def test_unreadable_success_bodies(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments/d1", reply(200, text="<html>ok</html>"))
    with pytest.raises(AICoreResponseError, match="non-JSON"):
        await client.get_deployment("d1", resource_group=RG)
    fake.on("GET", "/lm/deployments", reply(200, {"count": 0}))
    with pytest.raises(AICoreResponseError, match="resources"):
        await client.list_deployments(resource_group=RG)
    fake.on("GET", "/lm/deployments/d2", reply(200, {"id": "d2"}))
    with pytest.raises(AICoreResponseError, match="configurationId"):
        await client.get_deployment("d2", resource_group=RG)


# -- paging and query parameters -----------------------------------------------------------------


def paged(items: list[dict[str, Any]], *, ignore_paging: bool = False) -> Responder:
    def respond(request: httpx.Request) -> httpx.Response:
        top = int(request.url.params["$top"])
        skip = int(request.url.params["$skip"])
        page = items if ignore_paging else items[skip : skip + top]
        return httpx.Response(200, json={"count": len(items), "resources": page})

    return respond


@pytest.mark.parametrize(
    ("total", "ignore_paging", "pages"),
    [(0, False, 1), (999, False, 1), (1000, False, 2), (2500, False, 3), (2500, True, 1)],
)
async def test_pagination(
    fake: Fake, clock: Clock, total: int, ignore_paging: bool, pages: int
) -> None:
    items = [deployment(f"d{i:015d}") for i in range(total)]
    fake.on("GET", "/lm/deployments", paged(items, ignore_paging=ignore_paging))
    async with AICoreClient(
        SERVICE_KEY,
        settings=ClientSettings(retry=RetrySettings(jitter=0), page_size=1000),
        transport=httpx.MockTransport(fake),
        clock=clock,
        sleep=clock.sleep,
    ) as client:
        got = await client.list_deployments(resource_group=RG, scenario_id="byom")
    assert [d.id for d in got] == [d["id"] for d in items]
    requests = fake.api_requests()
    assert len(requests) == pages
    assert [r.url.params["$skip"] for r in requests] == [str(1000 * i) for i in range(pages)]
    assert all(r.url.params["$top"] == "1000" for r in requests)


async def test_one_request_lists_ten_thousand(client: AICoreClient, fake: Fake) -> None:
    # AI Core's own default page: a settled tenant of up to 10,000 deployments is one list call.
    items = [deployment(f"d{i:015d}") for i in range(9999)]
    fake.on("GET", "/lm/deployments", paged(items))
    got = await client.list_deployments(resource_group=RG, scenario_id="byom")
    assert len(got) == 9999
    assert [r.url.params["$top"] for r in fake.api_requests()] == ["10000"]


async def test_list_deployments_query(client: AICoreClient, fake: Fake) -> None:
    fake.on("GET", "/lm/deployments", reply(200, {"count": 0, "resources": []}))
    await client.list_deployments(
        resource_group=RG,
        scenario_id="byom",
        configuration_id="c1",
        status=DeploymentStatus.RUNNING,
        executable_ids=["infinity", "x2"],
    )
    params = fake.api_requests()[0].url.params
    assert params["scenarioId"] == "byom" and params["configurationId"] == "c1"
    assert params["status"] == "RUNNING" and params["executableIds"] == "infinity,x2"


async def test_find_artifacts_filters_on_server_and_rechecks_locally(
    client: AICoreClient, fake: Fake
) -> None:
    wanted = {"ext.ai.sap.com/uid": "u1", "ext.ai.sap.com/note": "a,b"}
    fake.on(
        "GET",
        "/lm/artifacts",
        paged(
            [
                artifact("a1", "m", wanted),
                artifact("a2", "m", {"ext.ai.sap.com/uid": "u2"}),
                artifact("a3", "m-other", wanted),
            ]
        ),
    )
    found = await client.find_artifacts("byom", resource_group=RG, name="m", labels=wanted)
    assert [a.id for a in found] == ["a1"]
    params = fake.api_requests()[0].url.params
    assert params["scenarioId"] == "byom" and params["name"] == "m"
    assert params["artifactLabelSelector"] == (
        "ext.ai.sap.com/uid=u1,ext.ai.sap.com/note=a{comma}b"
    )


async def test_find_configurations_by_exact_name(client: AICoreClient, fake: Fake) -> None:
    configs = [
        {"id": f"c{i}", "name": name, "scenarioId": "byom", "executableId": "infinity"}
        for i, name in enumerate(["emb-1", "emb-10", "emb-1"])
    ]
    fake.on("GET", "/lm/configurations", paged(configs))
    found = await client.find_configurations(
        "byom", resource_group=RG, executable_ids=["infinity"], name="emb-1"
    )
    assert [c.id for c in found] == ["c0", "c2"]
    assert fake.api_requests()[0].url.params["executableIds"] == "infinity"


async def test_create_bodies(client: AICoreClient, fake: Fake) -> None:
    fake.on("POST", "/lm/artifacts", reply(201, {"id": "a1", "message": "m", "url": "u"}))
    fake.on("POST", "/lm/configurations", reply(201, {"id": "c1", "message": "m"}))
    fake.on(
        "POST",
        "/lm/deployments",
        reply(
            202,
            {
                "id": "d1",
                "message": "Deployment scheduled.",
                "deploymentUrl": "",
                "status": "UNKNOWN",
            },
        ),
    )
    await client.create_artifact(
        resource_group=RG,
        name="bge",
        url="ai://default/bge",
        scenario_id="byom",
        labels={"ext.ai.sap.com/uid": "u1"},
        description="d",
    )
    await client.create_configuration(
        resource_group=RG,
        name="emb",
        scenario_id="byom",
        executable_id="infinity",
        parameter_bindings={"modelName": "BAAI/bge-small-en-v1.5", "resourcePlan": "starter"},
        artifact_bindings={"modelArtifact": "a1"},
    )
    created = await client.create_deployment("c1", resource_group=RG, ttl="24h")
    assert created.status is DeploymentStatus.UNKNOWN and created.deployment_url == ""
    bodies = [json.loads(r.content) for r in fake.api_requests("POST")]
    assert bodies == [
        {
            "name": "bge",
            "kind": "model",
            "url": "ai://default/bge",
            "scenarioId": "byom",
            "description": "d",
            "labels": [{"key": "ext.ai.sap.com/uid", "value": "u1"}],
        },
        {
            "name": "emb",
            "scenarioId": "byom",
            "executableId": "infinity",
            "parameterBindings": [
                {"key": "modelName", "value": "BAAI/bge-small-en-v1.5"},
                {"key": "resourcePlan", "value": "starter"},
            ],
            "inputArtifactBindings": [{"key": "modelArtifact", "artifactId": "a1"}],
        },
        {"configurationId": "c1", "ttl": "24h"},
    ]


async def test_patch_and_delete(client: AICoreClient, fake: Fake, clock: Clock) -> None:
    fake.on(
        "PATCH",
        "/lm/deployments/d1",
        reply(503),
        reply(202, {"id": "d1", "message": "Deployment modification scheduled"}),
    )
    fake.on("DELETE", "/lm/deployments/d1", reply(202, text=""))
    accepted = await client.patch_deployment("d1", resource_group=RG, configuration_id="c2")
    assert accepted.message == "Deployment modification scheduled"
    assert clock.sleeps == [0.5]  # PATCH with the same body is idempotent
    await client.stop_deployment("d1", resource_group=RG)
    assert (await client.delete_deployment("d1", resource_group=RG)).id is None
    bodies = [json.loads(r.content) for r in fake.api_requests("PATCH")]
    assert bodies == [{"configurationId": "c2"}] * 2 + [{"targetStatus": "STOPPED"}]
    with pytest.raises(ValueError, match="exactly one"):
        await client.patch_deployment(
            "d1", resource_group=RG, configuration_id="c", target_status=TargetStatus.STOPPED
        )
    with pytest.raises(ValueError, match="exactly one"):
        await client.patch_deployment("d1", resource_group=RG)


async def test_empty_resource_group_is_refused_before_any_request(
    client: AICoreClient, fake: Fake
) -> None:
    with pytest.raises(ValueError, match="resource_group"):
        await client.get_deployment("d1", resource_group=" ")
    assert fake.requests == []


async def test_path_parameters_are_quoted(client: AICoreClient, fake: Fake) -> None:
    with pytest.raises(NotFound):
        await client.get_deployment("../admin", resource_group=RG)
    assert fake.api_requests()[0].url.raw_path == b"/v2/lm/deployments/..%2Fadmin"


async def test_logs(client: AICoreClient, fake: Fake) -> None:
    entry = {
        "timestamp": "2021-05-31T08:20:51.334+00:00",
        "msg": "Copying\n",
        "container": "storage-initializer",
        "pod": "p",
        "stream": "stderr",
    }
    fake.on("GET", "/lm/deployments/d1/logs", reply(200, {"data": {"result": [entry]}}))
    start = datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    logs = await client.get_deployment_logs("d1", resource_group=RG, top=10, start=start)
    assert logs[0].container == "storage-initializer" and logs[0].msg == "Copying\n"
    assert logs[0].timestamp == datetime(2021, 5, 31, 8, 20, 51, 334000, tzinfo=UTC)
    params = fake.api_requests()[0].url.params
    assert (params["$top"], params["$order"], params["start"]) == (
        "10",
        "asc",
        "2026-01-01T00:00:00Z",
    )
    fake.on("GET", "/lm/deployments/d1/logs", reply(200, {}))
    assert await client.get_deployment_logs("d1", resource_group=RG) == []
    with pytest.raises(ValueError, match="top"):
        await client.get_deployment_logs("d1", resource_group=RG, top=0)


# -- models --------------------------------------------------------------------------------------


async def test_deployment_model_is_tolerant(client: AICoreClient, fake: Fake) -> None:
    details = {
        "scaling": {
            "backendDetails": {"predictor": {"minReplicas": 0}},
            "backend_details": {"predictor": {"minReplicas": 0}},
        }
    }
    body = deployment(
        "d1",
        status="HIBERNATING",
        lastOperation="CASCADE-UPDATE",
        latestRunningConfigurationId="c0",
        details=details,
        ttl=None,
        brandNewField=True,
    )
    fake.on("GET", "/lm/deployments/d1", reply(200, body))
    got = await client.get_deployment("d1", resource_group=RG)
    assert got.status is DeploymentStatus.UNKNOWN  # unknown future status
    assert got.last_operation == "CASCADE-UPDATE"
    assert got.latest_running_configuration_id == "c0"
    assert got.target_status is TargetStatus.RUNNING
    assert "details" not in got.model_dump()  # not kept: the operator reads none of it


async def test_executables_and_scenario(client: AICoreClient, fake: Fake) -> None:
    exe = {
        "id": "infinity",
        "name": "infinity",
        "scenarioId": "byom",
        "versionId": "0.0.1",
        "deployable": True,
        "parameters": [{"name": "modelName", "type": "string", "default": "x"}],
        "inputArtifacts": [{"name": "modelArtifact", "kind": "model"}],
        "createdAt": "1970-01-01T00:00:00+00:00",
        "modifiedAt": TS,
    }
    fake.on("GET", "/lm/scenarios/byom/executables", reply(200, {"count": 1, "resources": [exe]}))
    fake.on("GET", "/lm/scenarios/byom/executables/infinity", reply(200, exe))
    fake.on("GET", "/lm/scenarios/byom", reply(200, {"id": "byom", "name": "BYOM"}))
    listed = await client.list_executables("byom", resource_group=RG)
    single = await client.get_executable("byom", "infinity", resource_group=RG)
    scenario = await client.get_scenario("byom", resource_group=RG)
    assert listed == [single]
    assert single.parameters[0].default == "x" and single.input_artifacts[0].name == "modelArtifact"
    assert scenario.name == "BYOM"
    assert "$top" not in fake.api_requests()[0].url.params  # executables are not paged


# -- metrics hook --------------------------------------------------------------------------------


async def test_on_response_hook(fake: Fake, clock: Clock) -> None:
    seen: list[tuple[str, str, int | None, float]] = []

    def hook(template: str, method: str, status: int | None, seconds: float) -> None:
        seen.append((template, method, status, seconds))
        if status == 503:
            raise RuntimeError("a broken hook must not break the client")

    fake.on(
        "GET", "/lm/deployments/d1", fail(httpx.ConnectError), reply(503), reply(200, deployment())
    )
    async with AICoreClient(
        SERVICE_KEY,
        settings=NO_JITTER,
        transport=httpx.MockTransport(fake),
        on_response=hook,
        clock=clock,
        sleep=clock.sleep,
    ) as client:
        await client.get_deployment("d1", resource_group=RG)
    assert [(t, m, s) for t, m, s, _ in seen] == [
        ("/oauth/token", "POST", 200),
        ("/lm/deployments/{id}", "GET", None),
        ("/lm/deployments/{id}", "GET", 503),
        ("/lm/deployments/{id}", "GET", 200),
    ]


# -- secrets never leak --------------------------------------------------------------------------


async def test_secret_and_tokens_never_in_logs_or_errors(
    fake: Fake, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole flow, with servers that echo credentials back in their error bodies."""
    caplog.set_level(logging.DEBUG)

    def echo(request: httpx.Request) -> httpx.Response:
        leaked = f"{request.headers.get('Authorization')} {request.content.decode()} {SECRET}"
        return httpx.Response(503, json={"error": {"code": "x", "message": leaked}})

    fake.token_route = [echo, reply(401, text=f"client_secret={SECRET} rejected")]
    errors: list[BaseException] = []
    async with AICoreClient(
        SERVICE_KEY,
        settings=ClientSettings(retry=RetrySettings(max_attempts=2, jitter=0)),
        transport=httpx.MockTransport(fake),
        clock=clock,
        sleep=clock.sleep,
    ) as client:
        with pytest.raises(Unauthorized) as info:
            await client.meta()  # token call: 503 echo (retried), then 401 echo
        errors.append(info.value)

        def echo_api(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                500, text=f"bad token {request.headers['Authorization']} secret {SECRET}"
            )

        fake.on("GET", "/lm/deployments/d1", reply(401), echo_api)
        fake.on("POST", "/lm/deployments", echo_api)
        fake.on("GET", "/lm/deployments", fail(httpx.ConnectError, f"refused {SECRET}"))
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: client.get_deployment("d1", resource_group=RG),
            lambda: client.create_deployment("c1", resource_group=RG),
            lambda: client.list_deployments(resource_group=RG),
        ]
        for call in calls:
            with pytest.raises(AICoreError) as caught:
                await call()
            errors.append(caught.value)
        token = await client.get_token()
        headers = await client.inference_headers(RG)
        assert headers["Authorization"] == f"Bearer {token}"
        reprs = [repr(client), repr(client._session._tokens), repr(SERVICE_KEY), str(SERVICE_KEY)]

    assert len(fake.tokens) >= 2
    texts = [caplog.text, *reprs]
    for error in errors:
        texts += [str(error), repr(error), *map(str, error.args)]
    for text in texts:
        assert SECRET not in text
        for issued in fake.tokens:
            assert issued not in text
    assert "retry" in caplog.text  # the log did capture the flow


# -- concurrency ---------------------------------------------------------------------------------


async def test_requests_beyond_max_connections_wait_in_the_client(fake: Fake, clock: Clock) -> None:
    """At most `max_connections` requests are in flight; the others wait their turn, none fails."""
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.url.path != "/v2/lm/deployments/d1":
            return fake(request)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json=deployment("d1"))

    async with AICoreClient(
        SERVICE_KEY,
        settings=ClientSettings(max_connections=3),
        transport=httpx.MockTransport(slow),
        clock=clock,
        sleep=clock.sleep,
    ) as client:
        got = await asyncio.gather(
            *(client.get_deployment("d1", resource_group=RG) for _ in range(12))
        )
    assert [d.id for d in got] == ["d1"] * 12
    assert peak == 3
