"""The HTTP serving check against a real local HTTP server that answers like infinity.

`FakeInfinity` serves infinity's routes (`POST {prefix}/embeddings`, `GET /health`) with vectors
of a chosen size, on a free loopback port, in a background thread. The KServe integration tests
point an InferenceService's status.url at it to drive the backend end to end.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from embedding_operator.backends.kserve import CHECK_INPUT, http_checker


class FakeInfinity:
    """A loopback HTTP server with infinity's embedding API; `dimensions`/`status` can change."""

    def __init__(self, dimensions: int = 384, prefix: str = "/v1") -> None:
        self.dimensions = dimensions
        self.status = 200
        self.requests: list[dict[str, Any]] = []
        self.prefix = prefix
        app = Starlette(
            routes=[
                Route(f"{prefix}/embeddings", self._embeddings, methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.status != 200:
            return JSONResponse({"error": {"message": "boom", "code": self.status}}, self.status)
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1] * self.dimensions}
            for i, _ in enumerate(body["input"])
        ]
        return JSONResponse({"object": "list", "model": body.get("model"), "data": data})

    async def _health(self, request: Request) -> Response:
        return JSONResponse({"unix": time.time()})

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake infinity server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def fake_infinity() -> Iterator[FakeInfinity]:
    server = FakeInfinity()
    server.start()
    try:
        yield server
    finally:
        server.stop()


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
