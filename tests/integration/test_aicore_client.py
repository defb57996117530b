"""The operator's AICoreClient against the local AI Core (operator/aicore_local, fixture `aicore`).

Covers the full artifact → configuration → deployment → patch → stop → delete flow and every
fault the emulator can inject (429 + Retry-After, 5xx, dropped connections, early token expiry,
short-lived tokens, slow PENDING, DEAD deployments, added latency). Deployments use the `noop`
runtime (no predictor process) so the lifecycle runs in about a second; the artifact points at a
tiny directory in the emulator's object store, not at a real model.

Each test that sets faults takes `aicore_faults`, which clears them afterwards; every remote name
carries a per-test uid so tests never see each other's objects in the shared `default` group.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from embedding_operator.aicore import (
    AICoreClient,
    AICoreRequestError,
    ClientSettings,
    Conflict,
    Deployment,
    DeploymentStatus,
    NotFound,
    RateLimited,
    RetrySettings,
    ServerError,
    load_service_key,
    parse_service_key,
)
from tests.fixtures.aicore import INFINITY_EXECUTABLE, TEST_SCENARIO, AICoreAdmin, LocalAICore

pytestmark = pytest.mark.integration

RG = "default"
LABEL = "ext.ai.sap.com/aicore-client-test"
T = TypeVar("T")


class Recorder:
    """`on_response` hook and `sleep` stand-in: remembers what the client did."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None, float]] = []
        self.sleeps: list[float] = []

    def __call__(self, template: str, method: str, status: int | None, seconds: float) -> None:
        self.calls.append((template, method, status, seconds))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)  # no real wait: the emulator does not enforce Retry-After

    def statuses(self, template: str, method: str = "GET") -> list[int | None]:
        return [s for t, m, s, _ in self.calls if t == template and m == method]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_client(
    aicore: LocalAICore, recorder: Recorder, *, retry: RetrySettings | None = None, **kw: Any
) -> AICoreClient:
    settings = ClientSettings(retry=retry or RetrySettings(jitter=0), **kw)
    return AICoreClient(
        parse_service_key(aicore.service_key),
        settings=settings,
        on_response=recorder,
        sleep=recorder.sleep,
    )


@pytest.fixture
async def client(aicore: LocalAICore, recorder: Recorder) -> AsyncIterator[AICoreClient]:
    async with make_client(aicore, recorder) as c:
        yield c


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def artifact_url(aicore: LocalAICore, uid: str) -> str:
    """A tiny model directory in the emulator's object store (secret `default`)."""
    model = aicore.objectstore_dir / "models" / f"client-test-{uid}"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    return f"ai://default/models/client-test-{uid}"


@pytest.fixture
def noop(aicore_faults: AICoreAdmin) -> AICoreAdmin:
    aicore_faults.set_runtime("noop")
    return aicore_faults


async def wait_for(probe: Callable[[], Awaitable[T | None]], what: str, within: float = 30.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_status(
    client: AICoreClient, dep_id: str, *wanted: DeploymentStatus, within: float = 30.0
) -> Deployment:
    async def probe() -> Deployment | None:
        dep = await client.get_deployment(dep_id, resource_group=RG)
        return dep if dep.status in wanted else None

    return await wait_for(probe, f"deployment {dep_id} to reach {wanted}", within)


async def retire(client: AICoreClient, dep_id: str) -> None:
    """Stop if needed, then delete, until the deployment is gone (cleanup for any state)."""

    async def probe() -> bool | None:
        try:
            dep = await client.get_deployment(dep_id, resource_group=RG)
        except NotFound:
            return True
        try:
            if dep.status in (DeploymentStatus.RUNNING, DeploymentStatus.PENDING):
                await client.stop_deployment(dep_id, resource_group=RG)
            elif dep.status is not DeploymentStatus.STOPPING:
                await client.delete_deployment(dep_id, resource_group=RG)
        except (Conflict, NotFound):
            pass  # raced a transition; look again
        return None

    await wait_for(probe, f"deployment {dep_id} to be deleted")


async def make_configuration(
    client: AICoreClient, uid: str, artifact_url: str, suffix: str = ""
) -> str:
    artifact = await client.create_artifact(
        resource_group=RG,
        name=f"client-{uid}{suffix}",
        url=artifact_url,
        scenario_id=TEST_SCENARIO,
        labels={LABEL: uid},
    )
    created = await client.create_configuration(
        resource_group=RG,
        name=f"client-cfg-{uid}{suffix}",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings={"modelName": f"model-{uid}{suffix}"},
        artifact_bindings={"modelArtifact": artifact.id},
    )
    return created.id


# -- the whole flow ------------------------------------------------------------------------------


async def test_full_flow(
    client: AICoreClient, noop: AICoreAdmin, uid: str, artifact_url: str
) -> None:
    meta = await client.meta()
    assert meta.ai_api_version
    scenario = await client.get_scenario(TEST_SCENARIO, resource_group=RG)
    assert scenario.id == TEST_SCENARIO
    executables = await client.list_executables(TEST_SCENARIO, resource_group=RG)
    exe = await client.get_executable(TEST_SCENARIO, INFINITY_EXECUTABLE, resource_group=RG)
    assert exe in executables and exe.deployable
    assert {"modelName", "resourcePlan"} <= {p.name for p in exe.parameters}
    assert [a.name for a in exe.input_artifacts] == ["modelArtifact"]

    # artifact: create, then find by name and by label, then get
    created = await client.create_artifact(
        resource_group=RG,
        name=f"client-{uid}",
        url=artifact_url,
        scenario_id=TEST_SCENARIO,
        labels={LABEL: uid},
        description="aicore client integration test",
    )
    assert created.url == artifact_url and not created.recovered
    by_name = await client.find_artifacts(TEST_SCENARIO, resource_group=RG, name=f"client-{uid}")
    by_label = await client.find_artifacts(TEST_SCENARIO, resource_group=RG, labels={LABEL: uid})
    assert [a.id for a in by_name] == [a.id for a in by_label] == [created.id]
    artifact = await client.get_artifact(created.id, resource_group=RG)
    assert (artifact.name, artifact.kind, artifact.label(LABEL)) == (f"client-{uid}", "model", uid)

    # configuration: create, find by exact name, get
    bindings = {"modelName": f"model-{uid}", "batchSize": "8"}
    config = await client.create_configuration(
        resource_group=RG,
        name=f"client-cfg-{uid}",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings=bindings,
        artifact_bindings={"modelArtifact": created.id},
    )
    found = await client.find_configurations(
        TEST_SCENARIO,
        resource_group=RG,
        executable_ids=[INFINITY_EXECUTABLE],
        name=f"client-cfg-{uid}",
    )
    assert [c.id for c in found] == [config.id]
    got_config = await client.get_configuration(config.id, resource_group=RG)
    assert got_config.parameters() == bindings
    assert got_config.input_artifact_bindings[0].artifact_id == created.id

    # deployment: create → RUNNING
    dep = await client.create_deployment(config.id, resource_group=RG, ttl="1h")
    assert dep.status is DeploymentStatus.UNKNOWN and dep.deployment_url == ""
    try:
        running = await wait_status(client, dep.id, DeploymentStatus.RUNNING, DeploymentStatus.DEAD)
        assert running.status is DeploymentStatus.RUNNING, running.status_message
        assert running.deployment_url.endswith(f"/v2/inference/deployments/{dep.id}")
        assert running.configuration_name == f"client-cfg-{uid}"
        assert running.latest_running_configuration_id == config.id
        listed = await client.list_deployments(
            resource_group=RG,
            scenario_id=TEST_SCENARIO,
            configuration_id=config.id,
            status=DeploymentStatus.RUNNING,
            executable_ids=[INFINITY_EXECUTABLE, "other"],
        )
        assert [d.id for d in listed] == [dep.id]

        with pytest.raises(Conflict) as conflict:
            await client.delete_deployment(dep.id, resource_group=RG)
        assert conflict.value.code == "01010076" and "RUNNING" in str(conflict.value)

        # patch: switch to a second configuration, same scenario and executable
        config2 = await make_configuration(client, uid, artifact_url, suffix="-v2")
        await client.patch_deployment(dep.id, resource_group=RG, configuration_id=config2)

        async def switched() -> Deployment | None:
            d = await client.get_deployment(dep.id, resource_group=RG)
            ok = (
                d.status is DeploymentStatus.RUNNING
                and d.latest_running_configuration_id == config2
            )
            return d if ok else None

        updated = await wait_for(switched, "the configuration switch")
        assert (
            updated.last_operation == "UPDATE" and updated.deployment_url == running.deployment_url
        )

        logs = await client.get_deployment_logs(dep.id, resource_group=RG, top=100)
        assert any("noop runtime" in entry.msg for entry in logs), logs

        # stop → STOPPED; a second stop is a state conflict
        await client.stop_deployment(dep.id, resource_group=RG)
        stopped = await wait_status(client, dep.id, DeploymentStatus.STOPPED)
        assert stopped.completion_time is not None
        with pytest.raises(Conflict):
            await client.stop_deployment(dep.id, resource_group=RG)

        # delete → gone
        accepted = await client.delete_deployment(dep.id, resource_group=RG)
        assert accepted.id == dep.id

        async def gone() -> bool | None:
            try:
                await client.get_deployment(dep.id, resource_group=RG)
            except NotFound:
                return True
            return None

        await wait_for(gone, "deletion")
    finally:
        await retire(client, dep.id)


async def test_not_found_and_service_key_file(aicore: LocalAICore, client: AICoreClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.get_artifact("00000000-0000-4000-8000-000000000000", resource_group=RG)
    assert info.value.status == 404
    key = load_service_key(Path(aicore.service_key_path))
    assert key.api_url == aicore.url + "/v2"


async def test_pagination(
    aicore: LocalAICore, recorder: Recorder, uid: str, artifact_url: str
) -> None:
    async with make_client(aicore, recorder, page_size=2) as client:
        ids = {
            (
                await client.create_artifact(
                    resource_group=RG,
                    name=f"page-{uid}-{i}",
                    url=artifact_url,
                    scenario_id=TEST_SCENARIO,
                    labels={LABEL: uid},
                )
            ).id
            for i in range(5)
        }
        found = await client.find_artifacts(TEST_SCENARIO, resource_group=RG, labels={LABEL: uid})
    assert {a.id for a in found} == ids
    assert recorder.statuses("/lm/artifacts") == [200, 200, 200]


# -- faults --------------------------------------------------------------------------------------


async def test_rate_limit_honours_retry_after(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, client: AICoreClient, recorder: Recorder
) -> None:
    await client.meta()  # token first, so the fault hits only the call under test
    aicore_faults.set_faults(rate_limit={"count": 2, "retry_after": 2, "path": "^/v2/lm/scenarios"})
    scenario = await client.get_scenario(TEST_SCENARIO, resource_group=RG)
    assert scenario.id == TEST_SCENARIO
    assert recorder.statuses("/lm/scenarios/{scenario}") == [429, 429, 200]
    assert recorder.sleeps == [2.0, 2.0]


async def test_rate_limit_outlasting_retries_raises_rate_limited(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, recorder: Recorder
) -> None:
    async with make_client(aicore, recorder, retry=RetrySettings(max_attempts=2)) as client:
        await client.meta()
        aicore_faults.set_faults(rate_limit={"count": 5, "path": "^/v2/lm/scenarios"})
        with pytest.raises(RateLimited) as info:
            await client.get_scenario(TEST_SCENARIO, resource_group=RG)
    assert info.value.retry_after == 1.0 and info.value.retryable
    assert recorder.statuses("/lm/scenarios/{scenario}") == [429, 429]


async def test_server_errors_retry_gets_but_not_blind_posts(
    aicore_faults: AICoreAdmin,
    client: AICoreClient,
    recorder: Recorder,
    uid: str,
    artifact_url: str,
) -> None:
    await client.meta()
    aicore_faults.set_faults(server_error={"count": 2, "status": 503, "path": "^/v2/lm/artifacts"})
    assert await client.find_artifacts(TEST_SCENARIO, resource_group=RG, labels={LABEL: uid}) == []
    assert recorder.statuses("/lm/artifacts") == [503, 503, 200]
    assert recorder.sleeps == [0.5, 1.0]

    name = f"post-{uid}"
    aicore_faults.set_faults(server_error={"count": 1, "status": 502, "path": "^/v2/lm/artifacts"})
    with pytest.raises(ServerError) as info:
        await client.create_artifact(
            resource_group=RG, name=name, url=artifact_url, scenario_id=TEST_SCENARIO
        )
    assert info.value.status == 502
    assert recorder.statuses("/lm/artifacts", "POST") == [502]

    async def find() -> str | None:
        found = await client.find_artifacts(TEST_SCENARIO, resource_group=RG, name=name)
        return found[0].id if found else None

    aicore_faults.set_faults(server_error={"count": 1, "status": 503, "path": "^/v2/lm/artifacts"})
    created = await client.create_artifact(
        resource_group=RG, name=name, url=artifact_url, scenario_id=TEST_SCENARIO, find=find
    )
    assert not created.recovered
    assert [
        a.id for a in await client.find_artifacts(TEST_SCENARIO, resource_group=RG, name=name)
    ] == [created.id]


async def test_dropped_connections(
    aicore_faults: AICoreAdmin,
    noop: AICoreAdmin,
    client: AICoreClient,
    recorder: Recorder,
    uid: str,
    artifact_url: str,
) -> None:
    config = await make_configuration(client, uid, artifact_url)
    aicore_faults.set_faults(drop_connection={"count": 1, "path": "^/v2/lm/deployments$"})
    assert await client.list_deployments(resource_group=RG, configuration_id=config) == []
    assert recorder.statuses("/lm/deployments") == [None, 200]

    # A POST whose connection dropped after sending may have taken effect: not retried blind.
    aicore_faults.set_faults(drop_connection={"count": 1, "path": "^/v2/lm/deployments$"})
    with pytest.raises(AICoreRequestError) as info:
        await client.create_deployment(config, resource_group=RG)
    assert "RemoteProtocolError" in str(info.value) or "ReadError" in str(info.value)

    async def find() -> str | None:
        existing = await client.list_deployments(resource_group=RG, configuration_id=config)
        return existing[0].id if existing else None

    aicore_faults.set_faults(drop_connection={"count": 1, "path": "^/v2/lm/deployments$"})
    created = await client.create_deployment(config, resource_group=RG, find=find)
    try:
        deployments = await client.list_deployments(resource_group=RG, configuration_id=config)
        assert [d.id for d in deployments] == [created.id]  # exactly one, no duplicate
    finally:
        await retire(client, created.id)


async def test_expired_token_is_refreshed_once(
    aicore_faults: AICoreAdmin, client: AICoreClient, recorder: Recorder
) -> None:
    await client.meta()
    assert aicore_faults.expire_tokens() >= 1
    await client.meta()
    assert recorder.statuses("/lm/meta") == [200, 401, 200]
    assert recorder.statuses("/oauth/token", "POST") == [200, 200]


async def test_short_lived_tokens_are_refreshed_before_expiry(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, recorder: Recorder
) -> None:
    aicore_faults.set_faults(token_lifetime_seconds=2)
    async with make_client(aicore, recorder) as client:
        await client.meta()
        await client.meta()
        assert recorder.statuses("/oauth/token", "POST") == [200]  # reused within its lifetime
        await asyncio.sleep(1.1)  # refresh_after(2) == 1 s: the client must fetch a new token
        await client.meta()
    assert recorder.statuses("/oauth/token", "POST") == [200, 200]
    assert 401 not in recorder.statuses("/lm/meta")


async def test_slow_pending(
    noop: AICoreAdmin, client: AICoreClient, uid: str, artifact_url: str
) -> None:
    noop.set_faults(pending_seconds=1.5)
    config = await make_configuration(client, uid, artifact_url)
    started = time.monotonic()
    dep = await client.create_deployment(config, resource_group=RG)
    try:
        pending = await wait_status(client, dep.id, DeploymentStatus.PENDING)
        assert pending.target_status is not None
        await wait_status(client, dep.id, DeploymentStatus.RUNNING)
        assert time.monotonic() - started >= 1.5  # held PENDING (noop alone takes ~0.2 s)
    finally:
        await retire(client, dep.id)


async def test_dead_deployment(
    noop: AICoreAdmin, client: AICoreClient, uid: str, artifact_url: str
) -> None:
    noop.set_faults(dead_next={"count": 1, "message": f"injected death {uid}"})
    config = await make_configuration(client, uid, artifact_url)
    dep = await client.create_deployment(config, resource_group=RG)
    try:
        dead = await wait_status(client, dep.id, DeploymentStatus.DEAD, DeploymentStatus.RUNNING)
        assert dead.status is DeploymentStatus.DEAD
        assert f"injected death {uid}" in (dead.status_message or "")
        with pytest.raises(Conflict):
            await client.stop_deployment(dep.id, resource_group=RG)
        await client.delete_deployment(dep.id, resource_group=RG)  # DEAD may be deleted
    finally:
        await retire(client, dep.id)


async def test_latency_and_read_timeout(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, recorder: Recorder
) -> None:
    async with make_client(aicore, recorder) as client:
        await client.meta()
        aicore_faults.set_faults(latency={"seconds": 0.5, "path": "^/v2/lm/meta"})
        await client.meta()
    slow = [s for t, _, status, s in recorder.calls if t == "/lm/meta" and status == 200]
    assert slow[1] >= 0.5  # the injected latency, measured by the on_response hook

    impatient = Recorder()
    async with make_client(
        aicore, impatient, retry=RetrySettings(max_attempts=2), read_timeout=0.1
    ) as client:
        with pytest.raises(AICoreRequestError, match="ReadTimeout") as info:
            await client.meta()
    assert info.value.retryable
    assert impatient.statuses("/lm/meta") == [None, None]


async def test_no_secret_or_token_in_logs(
    aicore: LocalAICore,
    aicore_faults: AICoreAdmin,
    client: AICoreClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [await client.get_token()]
    aicore_faults.expire_tokens()
    aicore_faults.set_faults(
        server_error={"count": 1, "path": "^/v2/lm/meta"},
        rate_limit={"count": 1, "path": "^/v2/lm/scenarios"},
    )
    await client.meta()
    await client.get_scenario(TEST_SCENARIO, resource_group=RG)
    with pytest.raises(NotFound) as info:
        await client.get_deployment("d000000000000000", resource_group=RG)
    tokens.append(await client.get_token())
    assert tokens[0] != tokens[1]
    secret = aicore.service_key["clientsecret"]
    for text in (caplog.text, str(info.value), repr(client)):
        assert secret not in text
        for token in tokens:
            assert token not in text
    assert "retry" in caplog.text
