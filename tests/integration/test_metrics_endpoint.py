"""The `/metrics` endpoint on a real loopback port, and the operator's refusal of a bad
`--metrics-port` (a port in use, or out of range) with an error naming the flag."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry

from embedding_operator.metrics import Metrics, serve
from tests.fixtures.operator import free_port

pytestmark = pytest.mark.integration

AICORE = "embedding_operator_aicore_request_duration_seconds"
PHASES = "embedding_operator_embeddingmodels"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def test_metrics_endpoint_serves_the_registry(metrics):
    metrics.aicore_response("/lm/meta", "GET", 200, 0.01)
    server = serve(metrics, free_port(), "127.0.0.1")
    try:
        port = server.server_port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    assert f'{AICORE}_count{{endpoint="/lm/meta",method="GET",status="200"}} 1.0' in text
    assert "# TYPE embedding_operator_reconciliations_total counter" in text
    assert f'{PHASES}{{backend="aicore",phase="Ready"}} 0.0' in text


@pytest.mark.parametrize("taken", [True, False], ids=["port-in-use", "out-of-range"])
def test_a_bad_metrics_port_stops_the_operator_with_a_clear_error(taken):
    from embedding_operator.runner import run_operator

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1] if taken else 70000
        try:
            with pytest.raises(SystemExit, match="--metrics-port") as stop:
                run_operator(namespaces=["x"], liveness="", verbose=False, metrics_port=port)
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
    assert str(port) in str(stop.value)
