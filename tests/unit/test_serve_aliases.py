"""image/serve.py: the unprefixed OpenAI routes reach infinity's prefixed ones (gen_ai_hub 7.x
calls `{deploymentUrl}/embeddings`, the OpenAI client `{deploymentUrl}/v1/embeddings`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SERVE = Path(__file__).resolve().parents[2] / "image" / "serve.py"
spec = importlib.util.spec_from_file_location("image_serve", SERVE)
assert spec and spec.loader
serve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serve)


async def seen_path(prefix: str, scope: dict) -> str:
    paths: list[str] = []

    async def app(scope, receive, send):
        paths.append(scope["path"])

    await serve.alias_unprefixed(app, prefix)(scope, None, None)
    return paths[0]


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/embeddings", "/v1/embeddings"),
        ("/models", "/v1/models"),
        ("/v1/embeddings", "/v1/embeddings"),
        ("/health", "/health"),  # infinity serves health and metrics at the root anyway
        ("/metrics", "/metrics"),
        ("/embeddings/extra", "/embeddings/extra"),
    ],
)
async def test_unprefixed_routes_are_aliased(path, expected):
    assert await seen_path("/v1", {"type": "http", "path": path}) == expected


async def test_no_prefix_means_no_wrapping_and_lifespan_passes_through():
    async def app(scope, receive, send):
        pass

    assert serve.alias_unprefixed(app, "") is app
    assert await seen_path("/v1", {"type": "lifespan", "path": "/embeddings"}) == "/embeddings"
