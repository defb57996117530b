"""AI Core backend end to end: the operator process, the real API server, the local AI Core with
real infinity processes — driven through kubectl exactly as a user would."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import yaml

from tests.fixtures.aicore_operator import (
    SECRET,
    assert_no_secrets,
    events,
    model,
    owned,
    remote,
    wait_for_remote_status,
)
from tests.fixtures.cluster import wait_until
from tests.fixtures.manifests import get_emb
from tests.fixtures.operator import wait_for_condition

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_lifecycle_ready_rollout_suspend_resume_delete(kubectl, namespace, aicore, start_operator):
    import openai

    operator = start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))

    # 0. No service-key Secret yet → Stalled, saying what to create; creating it is enough.
    obj = wait_for_condition(kubectl, namespace, "m", "Stalled")
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "SecretNotFound" and SECRET in stalled["message"]
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip

    # 1. → Ready without touching the object, and `kubectl wait` (what users run) returns.
    kubectl(
        "wait", "--for=condition=Ready", "emb/m", "-n", namespace, "--timeout=300s", timeout=320
    )
    obj = get_emb(kubectl, namespace)
    status = obj["status"]
    assert status["phase"] == "Ready"
    assert obj["metadata"]["generation"] == 1
    assert status["serving"]["dimensions"] == 384 and status["serving"]["verified"] is True
    deployment_id = status["aicore"]["deploymentId"]
    endpoint = status["endpoint"]
    assert endpoint == f"{aicore.url}/v2/inference/deployments/{deployment_id}/v1"
    config_1 = status["aicore"]["configurationId"]

    # The OpenAI client reaches real embeddings at status.endpoint with an AI Core token.
    client = openai.OpenAI(
        base_url=endpoint,
        api_key=aicore.token(),
        default_headers={"AI-Resource-Group": "default"},
    )
    result = client.embeddings.create(model="all-minilm-l6-v2", input=["hello", "world"])
    assert [len(d.embedding) for d in result.data] == [384, 384]

    # 2. batchSize change while a client keeps sending: same deployment and URL, new
    #    configuration, Ready again, and not a single failed request.
    failures: list[str] = []
    sent = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal sent
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.post(
                        f"{endpoint}/embeddings",
                        headers=aicore.headers(),
                        json={"model": "all-minilm-l6-v2", "input": ["rolling"]},
                    )
                    if r.status_code != 200 or len(r.json()["data"][0]["embedding"]) != 384:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                sent += 1
                time.sleep(0.2)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        kubectl("patch", "emb", "m", "-n", namespace, "--type=merge",
                "-p", '{"spec":{"serving":{"batchSize":16}}}')  # fmt: skip
        wait_until(
            lambda: get_emb(kubectl, namespace)["status"]["aicore"]["configurationId"] != config_1,
            what="a new configuration",
            timeout=60,
        )
        obj = wait_for_condition(kubectl, namespace, "m", "Ready", timeout=300)
    finally:
        stop.set()
        thread.join(timeout=60)
    status = obj["status"]
    assert status["observedGeneration"] == 2
    assert status["aicore"]["deploymentId"] == deployment_id
    assert status["endpoint"] == endpoint
    assert status["aicore"]["configurationId"] != config_1
    configuration = remote(aicore, f"configurations/{status['aicore']['configurationId']}")
    assert {"key": "batchSize", "value": "16"} in configuration["parameterBindings"]
    assert sent > 5 and failures == [], f"{len(failures)} of {sent} requests failed: {failures[:3]}"

    # 3. suspend → Suspended and STOPPED remotely.
    kubectl("patch", "emb", "m", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    obj = wait_until(
        lambda: (o := get_emb(kubectl, namespace))["status"].get("phase") == "Suspended" and o,
        what="phase Suspended",
        timeout=120,
    )
    assert remote(aicore, f"deployments/{deployment_id}")["status"] == "STOPPED"
    assert "endpoint" not in obj["status"]

    # 4. resume → Ready on a new deployment; the endpoint changes and status says so.
    kubectl(
        "patch", "emb", "m", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    obj = wait_for_condition(kubectl, namespace, "m", "Ready", timeout=300)
    new_id = obj["status"]["aicore"]["deploymentId"]
    assert new_id != deployment_id
    assert obj["status"]["endpoint"].endswith(f"/deployments/{new_id}/v1")
    assert any(e["reason"] == "Resuming" for e in events(kubectl, namespace))

    # 5. delete → the object disappears; AI Core has no deployment left for it.
    kubectl("delete", "emb", "m", "-n", namespace, "--timeout=120s", timeout=130)
    assert owned(aicore, "deployments", obj) == []

    assert_no_secrets(operator.logs(), aicore)
    assert_no_secrets(json.dumps(events(kubectl, namespace)), aicore)


def test_operator_killed_during_creation_leaves_exactly_one_of_each(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    # No infinity process needed here: deployments reach RUNNING without one.
    aicore_faults.set_runtime("noop")
    # Slow AI Core down so the kill lands between the create calls.
    aicore_faults.set_faults(latency={"seconds": 0.3})
    operator = start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    wait_until(
        lambda: any(e["reason"] == "ArtifactCreated" for e in events(kubectl, namespace)),
        what="the artifact to be created",
        timeout=60,
    )
    operator.kill()
    aicore_faults.set_faults(latency={"seconds": 0})
    start_operator(namespace)
    obj = wait_for_remote_status(kubectl, namespace, "RUNNING", timeout=120)
    assert len(owned(aicore, "artifacts", obj)) == 1
    assert len(owned(aicore, "configurations", obj)) == 1
    assert len(owned(aicore, "deployments", obj)) == 1


def test_deployment_deleted_behind_the_operators_back_is_recreated(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    aicore_faults.set_runtime("noop")
    start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    running = wait_for_remote_status(kubectl, namespace, "RUNNING", timeout=120)
    old = running["status"]["aicore"]["deploymentId"]
    url = f"{aicore.url}/v2/lm/deployments/{old}"
    httpx.patch(url, headers=aicore.headers(), json={"targetStatus": "STOPPED"}).raise_for_status()

    def stopped_or_gone() -> bool:
        # NB: the operator may see STOPPED first and replace (delete) it before we look again.
        response = httpx.get(url, headers=aicore.headers())
        return response.status_code == 404 or response.json().get("status") == "STOPPED"

    wait_until(stopped_or_gone, what="the remote stop")
    deleted = httpx.delete(url, headers=aicore.headers())
    assert deleted.status_code in (200, 202, 404), deleted.text

    obj = wait_until(
        lambda: (
            (o := get_emb(kubectl, namespace))["status"]["aicore"].get("deploymentId")
            not in (None, old)
            and o
        ),
        what="a new deployment",
        timeout=60,
    )
    warnings = [e for e in events(kubectl, namespace) if e["type"] == "Warning"]
    # AI Core deletes only stopped deployments, so the operator may see the stop before the delete.
    assert any(
        e["reason"] in ("DeploymentMissing", "DeploymentStopped") and old in e["message"]
        for e in warnings
    ), warnings
    # NB: the replaced deployment is stopped, then deleted, on the operator's next passes.
    wait_until(
        lambda: len(owned(aicore, "deployments", obj)) == 1,
        what="exactly one owned deployment left",
        timeout=60,
    )


def test_converges_through_rate_limits_server_errors_and_slow_pending(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    aicore_faults.set_runtime("noop")
    aicore_faults.set_faults(
        rate_limit={"rate": 0.3, "retry_after": 1},
        server_error={"rate": 0.2, "status": 503},
        pending_seconds=5,
    )
    start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    obj = wait_for_remote_status(kubectl, namespace, "RUNNING", timeout=180)
    fired = aicore_faults.faults()
    assert fired["rate_limit"]["fired"] > 0 and fired["server_error"]["fired"] > 0
    aicore_faults.clear_faults()  # the test's own look-ups below must not hit them
    assert len(owned(aicore, "deployments", obj)) == 1


def test_dead_deployment_is_stalled_with_reason_and_logs(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    aicore_faults.set_runtime("noop")
    aicore_faults.set_faults(
        dead_next={"count": 1, "message": "OOMKilled: predictor ran out of memory"}
    )
    start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    obj = wait_for_condition(kubectl, namespace, "m", "Stalled", timeout=120)
    stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "DeploymentDead"
    assert "OOMKilled" in stalled["message"]
    dead = [e for e in events(kubectl, namespace) if e["reason"] == "DeploymentDead"]
    assert dead and dead[0]["type"] == "Warning"

    # A spec change gives a new configuration and replaces the DEAD deployment.
    kubectl(
        "patch",
        "emb",
        "m",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"serving":{"batchSize":8}}}',
    )
    wait_for_remote_status(kubectl, namespace, "RUNNING")
    assert len(owned(aicore, "deployments", obj)) == 1


def test_orphan_deletion_policy_leaves_the_deployment_running_and_says_so(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    aicore_faults.set_runtime("noop")
    start_operator(namespace)
    body = model()
    body["spec"]["aicore"]["deletionPolicy"] = "Orphan"
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    obj = wait_for_remote_status(kubectl, namespace, "RUNNING")
    deployment_id = obj["status"]["aicore"]["deploymentId"]
    kubectl("delete", "emb", "m", "-n", namespace, "--timeout=60s", timeout=70)
    assert remote(aicore, f"deployments/{deployment_id}")["status"] == "RUNNING"
    orphaned = [e for e in events(kubectl, namespace) if e["reason"] == "Orphaned"]
    assert orphaned and deployment_id in orphaned[0]["message"]


def test_deleting_secret_and_model_together_still_cleans_up(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    """What `kubectl delete namespace` does: the Secret may go before the model's finalizer."""
    aicore_faults.set_runtime("noop")
    start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    obj = wait_for_remote_status(kubectl, namespace, "RUNNING")
    # NB: the Secret's in-use finalizer keeps it (Terminating) until the model is finalized.
    kubectl("delete", "secret", SECRET, "-n", namespace, "--wait=false")
    kubectl("delete", "emb", "m", "-n", namespace, "--timeout=60s", timeout=70)
    assert owned(aicore, "deployments", obj) == []
    wait_until(
        lambda: not kubectl.exists("secret", SECRET, "-n", namespace),
        what="the Secret gone once no model uses it",
        timeout=30,
    )


def test_a_deletion_that_needs_retries_is_progress_not_an_error(
    kubectl, namespace, aicore, aicore_faults, service_key_secret, start_operator
):
    """AI Core failing the stop for a while: the finalizer retries and says what it waits for,
    at INFO; kopf's per-retry "Handler 'finalize' failed temporarily" is no ERROR line and no
    Event."""
    aicore_faults.set_runtime("noop")
    operator = start_operator(namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))
    obj = wait_for_remote_status(kubectl, namespace, "RUNNING")
    # More 503s than the client's own retries absorb in one pass: the deletion takes passes.
    aicore_faults.set_faults(server_error={"count": 12, "path": "^/v2/lm/deployments/[^/]+$"})
    kubectl("delete", "emb", "m", "-n", namespace, "--timeout=120s", timeout=130)
    assert owned(aicore, "deployments", obj) == []
    assert aicore_faults.faults()["server_error"]["fired"] == 12
    lines = operator.logs().splitlines()
    waits = [line for line in lines if "deletion waits: " in line]
    assert waits and all("[INFO" in line for line in waits), waits[:3]
    assert [line for line in lines if "failed temporarily" in line] == []
    kopf_events = [
        (e["type"], e["message"])
        for e in events(kubectl, namespace)
        if e["reason"] == "Logging" or e["type"] not in ("Normal", "Warning")
    ]
    assert kopf_events == []
