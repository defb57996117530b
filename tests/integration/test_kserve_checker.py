"""The HTTP serving check against a real local HTTP server that answers like infinity
(tests/fixtures/infinity.py), a refused port and an unresolvable cluster-local name."""

from __future__ import annotations

import socket
import time

import pytest

from embedding_operator.backends.kserve import CHECK_INPUT, http_checker
from tests.fixtures.infinity import FakeInfinity

pytestmark = pytest.mark.integration


async def test_check_counts_dimensions(fake_infinity: FakeInfinity) -> None:
    result = await http_checker(5.0)(fake_infinity.url + "/v1", "all-minilm-l6-v2")
    assert (result.reachable, result.dimensions, result.error) == (True, 384, None)
    assert fake_infinity.requests == [{"model": "all-minilm-l6-v2", "input": [CHECK_INPUT]}]


async def test_check_reports_http_errors_as_reachable_failures(
    fake_infinity: FakeInfinity,
) -> None:
    fake_infinity.status = 503
    result = await http_checker(5.0)(fake_infinity.url + "/v1", "m")
    assert result.reachable and result.dimensions is None
    assert result.error is not None and "HTTP 503" in result.error


async def test_check_reports_a_wrong_route_as_failure(fake_infinity: FakeInfinity) -> None:
    result = await http_checker(5.0)(fake_infinity.url + "/openai/v1", "m")
    assert result.reachable and result.error is not None and "HTTP 404" in result.error


async def test_refused_connection_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        result = await http_checker(5.0)(f"http://127.0.0.1:{port}/v1", "m")
    assert not result.reachable and result.error is not None
    assert "not reachable" in result.error


async def test_unresolvable_cluster_local_name_is_unreachable() -> None:
    started = time.monotonic()
    result = await http_checker(5.0)("http://minilm-predictor.ml.svc.cluster.local/v1", "m")
    assert not result.reachable
    assert time.monotonic() - started < 30
