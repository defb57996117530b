"""The `shared` runtime of the local AI Core: deployments of one model share one real process.

The lifecycle cases run on the fake predictor (tests/data/aicore-fake, well under a second each);
one test starts one real infinity and proves two deployments of all-MiniLM-L6-v2 share it, both
answer a real 384-dimensional embedding through the gateway, and it stops with the last one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ai_api_client_sdk.models.status import Status
from ai_core_sdk.ai_core_v2_client import AICoreV2Client

from tests.fixtures.aicore import INFINITY_EXECUTABLE, TEST_SCENARIO, AICoreAdmin, LocalAICore
from tests.fixtures.aicore_sdk import (
    MODEL,
    command_config,
    deploy_minilm,
    sdk_client,
    stop_and_delete,
    wait_status,
)
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def client(aicore: LocalAICore) -> AICoreV2Client:
    return sdk_client(aicore)


@pytest.fixture
def shared(aicore_faults: AICoreAdmin) -> Iterator[AICoreAdmin]:
    aicore_faults.set_runtime("shared")
    yield aicore_faults


def deploy(client: AICoreV2Client, config_id: str, count: int) -> list[str]:
    ids = [str(client.deployment.create(config_id).id) for _ in range(count)]
    for dep_id in ids:
        wait_status(client, dep_id, Status.RUNNING, Status.DEAD)
    return ids


def pid_of(admin: AICoreAdmin, dep_id: str) -> int:
    return int(admin.predictor(dep_id)["pid"])


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_deployments_of_one_model_share_a_process_that_dies_under_all_of_them(
    aicore: LocalAICore, client: AICoreV2Client, shared: AICoreAdmin
) -> None:
    same = command_config(client, "shared-a")
    first, second = deploy(client, same, 2)
    (other,) = deploy(client, command_config(client, "shared-b"), 1)
    pid = pid_of(shared, first)
    assert pid_of(shared, second) == pid
    assert pid_of(shared, other) != pid  # another model: its own process
    for dep_id in (first, second):
        answer = httpx.post(
            f"{client.deployment.get(dep_id).deployment_url}/v1/embeddings",
            headers=aicore.headers(),
            json={"input": ["a"]},
        )
        assert answer.json()["served_by"] == "shared-a"
    os.kill(pid, signal.SIGKILL)
    for dep_id in (first, second):
        dead = wait_status(client, dep_id, Status.DEAD)
        assert "predictor exited with code -9" in dead.status_message
    assert wait_status(client, other, Status.RUNNING)  # untouched
    # A new deployment of the dead key starts a fresh process rather than attaching to the corpse.
    (third,) = deploy(client, same, 1)
    assert client.deployment.get(third).status == Status.RUNNING
    assert pid_of(shared, third) != pid
    for dep_id in (first, second, third, other):
        stop_and_delete(client, dep_id)


def test_a_process_that_fails_to_start_fails_every_deployment_attached(
    client: AICoreV2Client, shared: AICoreAdmin
) -> None:
    config = command_config(client, "shared-fail", failWith="model weights unreadable")
    deployments = deploy(client, config, 2)
    for dep_id in deployments:
        dead = client.deployment.get(dep_id)
        assert dead.status == Status.DEAD
        assert "model weights unreadable" in dead.status_message
        client.deployment.delete(dep_id)


@pytest.mark.slow
def test_two_deployments_share_one_real_infinity_that_stops_with_the_last(
    aicore: LocalAICore, client: AICoreV2Client, shared: AICoreAdmin
) -> None:
    deps: list[Any] = [
        deploy_minilm(client, TEST_SCENARIO, INFINITY_EXECUTABLE, "modelArtifact", f"shared-{i}")
        for i in range(2)
    ]
    pid = pid_of(shared, deps[0].id)
    assert pid_of(shared, deps[1].id) == pid

    def embed(dep: Any) -> list[float]:
        answer = httpx.post(
            f"{dep.deployment_url}/v1/embeddings",
            headers=aicore.headers(),
            json={"model": MODEL, "input": ["shared infinity"]},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        vector: list[float] = answer.json()["data"][0]["embedding"]
        return vector

    vectors = [embed(dep) for dep in deps]
    assert [len(v) for v in vectors] == [384, 384]
    assert vectors[0] == vectors[1]  # one model, one process
    stop_and_delete(client, deps[0].id)
    assert not gone(pid)
    assert len(embed(deps[1])) == 384
    stop_and_delete(client, deps[1].id)
    wait_until(lambda: gone(pid), what=f"the shared infinity (pid {pid}) to stop")
