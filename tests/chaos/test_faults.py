"""Scenarios that already held in the adversarial run, kept so they keep holding: SIGKILL loops
during creation and deletion, AI Core error/latency/token storms, and an AI Core restart (its
state is kept: an outage, not a reset). Figures: models, kills, duplicates, orphans, seconds to
converge, AI Core requests per minute."""

from __future__ import annotations

import random
import re
import time

import httpx
import pytest

from tests.chaos.helpers import (
    all_remote,
    apply_models,
    models,
    remote_counts,
    wait_all_running,
)
from tests.fixtures.cluster import free_port, wait_until

pytestmark = pytest.mark.integration


def aicore_requests(port: int) -> int:
    """Total AI Core exchanges the operator has made (its own metrics)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return int(
        sum(
            float(m.group(1))
            for m in re.finditer(
                r"^embedding_operator_aicore_request_duration_seconds_count\{[^}]*\} (\S+)$",
                text,
                re.M,
            )
        )
    )


def orphans(aicore, prefixes: tuple[str, ...]) -> int:
    return sum(
        1
        for d in all_remote(aicore, "deployments")
        if d.get("configurationName", "").startswith(prefixes)
    )


@pytest.mark.chaos_long
def test_kill_loops_during_create_and_delete(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    rng = random.Random(15)
    aicore_faults.set_runtime("noop")
    aicore_faults.set_faults(latency={"seconds": 0.1})
    n, kills_create, kills_delete = 20, 30, 20
    operator = start_operator(namespace)
    apply_models(kubectl, namespace, [f"k{i}" for i in range(n)])
    for _ in range(kills_create):
        time.sleep(rng.uniform(0.5, 2.0))
        operator.kill()
        operator.start()
    aicore_faults.set_faults(latency={"seconds": 0})
    started = time.monotonic()
    wait_all_running(kubectl, namespace, n, timeout=300)
    figures["seconds_to_converge_after_kills"] = round(time.monotonic() - started, 1)
    objs = models(kubectl, namespace)
    figures["duplicates"] = sum(remote_counts(aicore, objs).values())
    prefixes = tuple(f"{o['metadata']['name']}-{o['metadata']['uid'][:8]}-" for o in objs)

    aicore_faults.set_faults(latency={"seconds": 0.1})
    kubectl("delete", "emb", "--all", "-n", namespace, "--wait=false")
    for _ in range(kills_delete):
        time.sleep(rng.uniform(0.3, 1.0))
        operator.kill()
        operator.start()
    aicore_faults.set_faults(latency={"seconds": 0})
    wait_until(lambda: not models(kubectl, namespace), what="all deleted", timeout=300)
    figures["models"] = n
    figures["kills"] = kills_create + kills_delete
    figures["orphans"] = orphans(aicore, prefixes)
    assert figures["duplicates"] == 0
    assert figures["orphans"] == 0


STORMS = {
    "429": {"rate_limit": {"rate": 0.3, "retry_after": 1}},
    "503": {"server_error": {"rate": 0.3, "status": 503}},
    "drop": {"drop_connection": {"rate": 0.2}},
    "latency": {"latency": {"seconds": 1.0}},
    "tokens": {"token_lifetime_seconds": 3},
}


@pytest.mark.chaos_long
@pytest.mark.parametrize("storm", list(STORMS))
def test_storms_converge_without_duplicates(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures, storm
):
    aicore_faults.set_runtime("noop")
    n = 10
    port = free_port()
    start_operator(namespace, args=[f"--metrics-port={port}"])
    aicore_faults.set_faults(**STORMS[storm])
    t0, r0 = time.monotonic(), aicore_requests(port)
    apply_models(kubectl, namespace, [f"s{i}" for i in range(n)])
    wait_all_running(kubectl, namespace, n, timeout=300)
    converged = time.monotonic() - t0
    # Requests per minute once settled: polling, not a retry storm.
    r1 = aicore_requests(port)
    time.sleep(30)
    settled_rate = (aicore_requests(port) - r1) * 2
    aicore_faults.clear_faults()
    aicore_faults.set_runtime("noop")
    figures["storm"] = storm
    figures["models"] = n
    figures["seconds_to_converge"] = round(converged, 1)
    figures["requests_to_converge"] = r1 - r0
    figures["requests_per_minute_settled"] = settled_rate
    figures["duplicates"] = sum(remote_counts(aicore, models(kubectl, namespace)).values())
    assert figures["duplicates"] == 0
    # 5 s ready polls (FAST_POLLING) of 10 models, one GET each, plus the serving checks.
    assert settled_rate < n * 12 * 3


def test_a_token_expiry_storm_is_survived(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    """Fast case: every token is invalidated while models are being created."""
    aicore_faults.set_runtime("noop")
    n = 5
    start_operator(namespace)
    apply_models(kubectl, namespace, [f"t{i}" for i in range(n)])
    for _ in range(5):
        time.sleep(0.5)
        aicore_faults.expire_tokens()
    figures["seconds_to_converge"] = wait_all_running(kubectl, namespace, n, timeout=120)
    figures["models"] = n
    figures["duplicates"] = sum(remote_counts(aicore, models(kubectl, namespace)).values())
    assert figures["duplicates"] == 0
