"""The operator process's /metrics and JSON log lines during a full AI Core flow.

One EmbeddingModel goes through create → RUNNING (noop runtime: no infinity process, so it stays
Progressing on the serving check) → a token expiry AI Core makes the client recover from →
delete, against the real API server and the local AI Core. Then: the scrape shows the reconcile
counter, AI Core request durations by endpoint template, and the phase gauge (which drops the
object after deletion); every log line is one JSON object, kopf's object lines name the object,
and neither the service key's clientsecret nor any access token appears.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.cluster import wait_until
from tests.fixtures.manifests import embedding_model
from tests.fixtures.operator import free_port

pytestmark = pytest.mark.integration

SECRET = "aicore-service-key"
JWT = re.compile(r"ey[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{8,}\.")


def model() -> dict[str, Any]:
    return embedding_model(model_name="all-minilm-l6-v2", secret=SECRET)


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by sample name (e.g. `..._count`): [(labels, value)]."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return sum(v for lbl, v in samples.get(name, []) if labels.items() <= lbl.items())


def test_metrics_and_json_logs_through_an_ai_core_flow(
    kubectl, namespace, aicore, aicore_faults, start_operator
):
    aicore_faults.set_runtime("noop")
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    port = free_port()
    operator = start_operator(namespace, args=[f"--metrics-port={port}", "--log-format=json"])
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(model()))

    def running() -> dict[str, Any] | None:
        obj = kubectl.json("get", "emb", "m", "-n", namespace)
        remote = obj.get("status", {}).get("aicore", {}).get("deploymentStatus")
        return obj if remote == "RUNNING" else None

    wait_until(running, what="deploymentStatus RUNNING", timeout=120)
    # The next calls get 401 once; the client mints a new token and carries on.
    aicore_faults.expire_tokens()
    wait_until(
        lambda: value(
            scrape(port), "embedding_operator_aicore_request_duration_seconds_count", status="401"
        ),
        what="a 401 after the token expiry",
        timeout=60,
    )

    samples = scrape(port)
    assert value(samples, "embedding_operator_reconciliations_total", backend="aicore") > 0
    assert value(samples, "embedding_operator_reconcile_duration_seconds_count") > 0
    requests = "embedding_operator_aicore_request_duration_seconds_count"
    assert value(samples, requests, endpoint="/lm/deployments", method="GET", status="200") > 0
    assert value(samples, requests, endpoint="/lm/deployments", method="POST", status="202") == 1
    assert value(samples, requests, endpoint="/oauth/token", status="200") >= 2  # + the refresh
    endpoints = {lbl["endpoint"] for lbl, _ in samples[requests]}
    assert all("{" in e or e.count("/") <= 2 for e in endpoints), endpoints  # templates, no IDs
    gauge = "embedding_operator_embeddingmodels"
    assert value(samples, gauge, backend="aicore", phase="Progressing") == 1
    assert value(samples, gauge, backend="aicore") == 1  # in exactly one phase

    kubectl("delete", "emb", "m", "-n", namespace, "--timeout=120s", timeout=130)
    wait_until(
        lambda: value(scrape(port), gauge, backend="aicore") == 0,
        what="the deleted object to leave the phase gauge",
        timeout=30,
    )
    assert value(scrape(port), gauge, phase="Ready") == 0  # series stay, at zero

    operator.stop()
    output = operator.logs()
    records = []
    for line in output.splitlines():
        if line.strip():
            records.append(json.loads(line))  # every line is one JSON object
    assert {"timestamp", "level", "logger", "message"} <= records[0].keys()
    about = [r for r in records if r.get("name") == "m"]
    assert about and all(r["namespace"] == namespace for r in about)
    kopf_object_lines = [r for r in records if r["logger"] == "kopf.objects"]
    assert kopf_object_lines and all(r.get("name") == "m" for r in kopf_object_lines)
    # Our own loggers too: every AI Core call here was made for emb/m (bound by the handlers).
    aicore_lines = [r for r in records if r["logger"].startswith("embedding_operator.aicore")]
    assert aicore_lines and all(r.get("name") == "m" for r in aicore_lines), aicore_lines[:3]
    assert aicore.service_key["clientsecret"] not in output
    assert not JWT.search(output), "an access token reached the operator's log"
