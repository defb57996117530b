"""The podman runtime: a deployment runs the real serving image, as AI Core's KServe would.

Runs only where podman and the image `localhost/embedding-infinity:dev` exist
(`make images` builds it); skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import openai
import pytest
from ai_api_client_sdk.exception import AIAPINotFoundException

from aicore_local.runtime.podman import image_exists, podman_available
from tests.fixtures.aicore import INFINITY_EXECUTABLE, TEST_SCENARIO, AICoreAdmin, LocalAICore
from tests.fixtures.aicore_sdk import MODEL, deploy_minilm, sdk_client, stop_and_delete

IMAGE = "localhost/embedding-infinity:dev"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not podman_available(), reason="podman is not installed (make podman)"),
    pytest.mark.skipif(
        podman_available() and not asyncio.run(image_exists(IMAGE)),
        reason=f"image {IMAGE} not built (make images)",
    ),
]


def test_podman_runtime_serves_embeddings(aicore: LocalAICore, aicore_faults: AICoreAdmin) -> None:
    aicore_faults.set_runtime("podman")
    client = sdk_client(aicore)
    dep: Any = deploy_minilm(client, TEST_SCENARIO, INFINITY_EXECUTABLE, "modelArtifact", "podman")
    try:
        oc = openai.OpenAI(
            base_url=dep.deployment_url + "/v1", api_key="unused", default_headers=aicore.headers()
        )
        result = oc.embeddings.create(model=MODEL, input=["served from the image"])
        assert len(result.data[0].embedding) == 384
    finally:
        with contextlib.suppress(AIAPINotFoundException):
            stop_and_delete(client, dep.id)
