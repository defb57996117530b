"""Each fault mode of the local AI Core does what docs/aicore-local.md says, switched at run time
through `POST /_emulator/faults` (via the fixture's admin helper)."""

from __future__ import annotations

import time

import httpx
import pytest
from ai_api_client_sdk.exception import AIAPIAuthorizationException
from ai_api_client_sdk.models.status import Status
from ai_api_client_sdk.models.target_status import TargetStatus
from ai_core_sdk.ai_core_v2_client import AICoreV2Client

from tests.fixtures.aicore import AICoreAdmin, LocalAICore
from tests.fixtures.aicore_sdk import command_config, sdk_client, wait_status
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def client(aicore: LocalAICore) -> AICoreV2Client:
    # NB: per test, because test_early_token_expiry invalidates every cached token.
    return sdk_client(aicore)


def meta(aicore: LocalAICore, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{aicore.url}/v2/lm/meta", headers=headers, timeout=30)


def test_latency(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    headers = aicore.headers()
    aicore_faults.set_faults(latency={"seconds": 0.6, "path": "^/v2/lm/meta$"})
    start = time.monotonic()
    assert meta(aicore, headers).status_code == 200
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    other = httpx.get(f"{aicore.url}/v2/lm/scenarios", headers=headers)
    assert other.status_code == 200 and time.monotonic() - start < 0.6  # path filter applies


def test_rate_limit_for_the_next_requests(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    headers = aicore.headers()
    aicore_faults.set_faults(rate_limit={"count": 2, "retry_after": 3})
    statuses = [meta(aicore, headers) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["retry-after"] == "3"
    assert statuses[0].json()["error"]["code"] == "429"
    assert aicore_faults.faults()["rate_limit"]["fired"] == 2


def test_rate_limit_as_a_rate(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    headers = aicore.headers()
    aicore_faults.set_faults(rate_limit={"rate": 0.5, "retry_after": 1})
    codes = [meta(aicore, headers).status_code for _ in range(6)]
    assert codes.count(429) == 3 and codes.count(200) == 3


def test_sdk_retries_a_429_after_retry_after(
    client: AICoreV2Client, aicore_faults: AICoreAdmin
) -> None:
    client.meta.get()  # token cached, so only the meta call meets the fault
    aicore_faults.set_faults(rate_limit={"count": 1, "retry_after": 1, "path": "^/v2/lm/meta$"})
    start = time.monotonic()
    assert client.meta.get().runtime_identifier == "aicore"
    assert time.monotonic() - start >= 1.0  # urllib3 honoured Retry-After
    assert aicore_faults.faults()["rate_limit"]["fired"] == 1


def test_server_errors(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    headers = aicore.headers()
    aicore_faults.set_faults(server_error={"count": 2, "status": 502, "path": "^/v2/lm/"})
    assert [meta(aicore, headers).status_code for _ in range(3)] == [502, 502, 200]


def test_dropped_connections(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    headers = aicore.headers()
    aicore_faults.set_faults(drop_connection={"count": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        meta(aicore, headers)
    assert meta(aicore, headers).status_code == 200


def test_early_token_expiry(
    aicore: LocalAICore, aicore_faults: AICoreAdmin, client: AICoreV2Client
) -> None:
    headers = aicore.headers()
    client.meta.get()
    assert meta(aicore, headers).status_code == 200
    assert aicore_faults.expire_tokens() >= 2
    assert meta(aicore, headers).status_code == 401
    # The SDK cached its token too: it gets the 401 like any client would.
    with pytest.raises(AIAPIAuthorizationException):
        client.meta.get()
    assert meta(aicore, aicore.headers()).status_code == 200  # a new token works


def test_short_token_lifetime(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    aicore_faults.set_faults(token_lifetime_seconds=1)
    token = httpx.post(
        f"{aicore.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(aicore.service_key["clientid"], aicore.service_key["clientsecret"]),
    ).json()
    assert token["expires_in"] == 1
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert meta(aicore, headers).status_code == 200
    wait_until(lambda: meta(aicore, headers).status_code == 401, timeout=5, what="token expiry")


def test_slow_pending(client: AICoreV2Client, aicore_faults: AICoreAdmin) -> None:
    aicore_faults.set_faults(pending_seconds=2, runtime="noop")
    dep_id = client.deployment.create(command_config(client, "slow-pending")).id
    start = time.monotonic()
    wait_status(client, dep_id, Status.PENDING, timeout=10)
    wait_status(client, dep_id, Status.RUNNING, timeout=20)
    assert time.monotonic() - start >= 1.5
    client.deployment.modify(dep_id, target_status=TargetStatus.STOPPED)
    wait_status(client, dep_id, Status.STOPPED)
    client.deployment.delete(dep_id)


def test_next_deployment_goes_dead(client: AICoreV2Client, aicore_faults: AICoreAdmin) -> None:
    aicore_faults.set_faults(
        dead_next={"count": 1, "message": "node pool exhausted"}, runtime="noop"
    )
    first = client.deployment.create(command_config(client, "dead-1")).id
    dead = wait_status(client, first, Status.DEAD)
    assert dead.status_message == "node pool exhausted"
    second = client.deployment.create(command_config(client, "dead-2")).id
    assert wait_status(client, second, Status.RUNNING, Status.DEAD).status == Status.RUNNING
    client.deployment.delete(first)
    client.deployment.modify(second, target_status=TargetStatus.STOPPED)
    wait_status(client, second, Status.STOPPED)
    client.deployment.delete(second)


def test_noop_runtime(
    aicore: LocalAICore, client: AICoreV2Client, aicore_faults: AICoreAdmin
) -> None:
    aicore_faults.set_runtime("noop")
    dep_id = client.deployment.create(command_config(client, "noop")).id
    dep = wait_status(client, dep_id, Status.RUNNING)
    assert aicore_faults.predictor(dep_id) == {"baseUrl": None, "pid": None}
    r = httpx.post(f"{dep.deployment_url}/v1/embeddings", headers=aicore.headers(), json={})
    assert r.status_code == 503 and "noop" in r.json()["error"]["message"]
    client.deployment.modify(dep_id, target_status=TargetStatus.STOPPED)
    wait_status(client, dep_id, Status.STOPPED)
    client.deployment.delete(dep_id)


def test_invalid_fault_spec_names_the_field(aicore: LocalAICore) -> None:
    r = httpx.post(f"{aicore.url}/_emulator/faults", json={"rate_limit": {"rate": 2}})
    assert r.status_code == 400 and "rate_limit.rate" in r.json()["error"]["message"]
    r = httpx.post(f"{aicore.url}/_emulator/faults", json={"latencyy": {}})
    assert r.status_code == 400 and "latencyy" in r.json()["error"]["message"]
