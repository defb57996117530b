"""Real embeddings through the local AI Core: a deployment of all-MiniLM-L6-v2 runs a real infinity
server (image/run.sh with the infinity venv), and the OpenAI Python client reaches it through the
inference gateway with the same token and resource group as the AI API.

One module-scoped deployment is shared by the tests (each infinity start costs ~10 s and ~600 MB).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from ai_api_client_sdk.exception import AIAPINotFoundException
from ai_api_client_sdk.models.parameter_binding import ParameterBinding
from ai_api_client_sdk.models.status import Status
from ai_core_sdk.ai_core_v2_client import AICoreV2Client

from aicore_local.runtime.process import default_infinity_venv
from tests.fixtures.aicore import (
    INFINITY_EXECUTABLE,
    OPERATOR_TEMPLATES,
    TEST_SCENARIO,
    LocalAICore,
)
from tests.fixtures.aicore_sdk import MODEL, deploy_minilm, sdk_client, stop_and_delete, wait_status
from tests.fixtures.cluster import wait_until
from tests.fixtures.images import cosine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Kubernetes operators reconcile desired state.",
    "Embeddings map text to vectors.",
]


def reference_embeddings(model_dir: Path, sentences: list[str]) -> list[list[float]]:
    """sentence-transformers' own encoding, computed in the infinity venv (torch lives there)."""
    python = default_infinity_venv() / "bin" / "python"
    code = (
        "import json, sys\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(sys.argv[1], device='cpu')\n"
        "print(json.dumps(m.encode(json.loads(sys.argv[2])).tolist()))\n"
    )
    out = subprocess.run(
        [str(python), "-c", code, str(model_dir), json.dumps(sentences)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"},
    )
    vectors: list[list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return vectors


def openai_client(aicore: LocalAICore, deployment_url: str, suffix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=deployment_url + suffix,
        api_key="unused",  # the gateway wants the XSUAA token below, not an OpenAI key
        default_headers=aicore.headers(),
    )


@pytest.fixture(scope="module")
def client(aicore: LocalAICore) -> AICoreV2Client:
    return sdk_client(aicore)


@pytest.fixture(scope="module")
def minilm(aicore: LocalAICore, client: AICoreV2Client) -> Iterator[Any]:
    aicore.admin.clear_faults()
    dep = deploy_minilm(client, TEST_SCENARIO, INFINITY_EXECUTABLE, "modelArtifact", "minilm")
    yield dep
    with contextlib.suppress(AIAPINotFoundException):  # the last test deletes it
        stop_and_delete(client, dep.id)


def test_openai_client_gets_real_embeddings(aicore: LocalAICore, minilm: Any) -> None:
    result = openai_client(aicore, minilm.deployment_url).embeddings.create(
        model=MODEL, input=SENTENCES
    )
    got = [d.embedding for d in result.data]
    assert [len(v) for v in got] == [384, 384, 384]
    reference = reference_embeddings(aicore.objectstore_dir / "models" / MODEL, SENTENCES)
    for sentence, mine, theirs in zip(SENTENCES, got, reference, strict=True):
        assert cosine(mine, theirs) >= 0.999, sentence
    # Different sentences must not collapse onto one vector.
    assert cosine(got[0], got[1]) < 0.9


def test_gateway_forwards_both_paths_and_records_them(aicore: LocalAICore, minilm: Any) -> None:
    aicore.admin.clear_inference_calls()
    via_v1 = openai_client(aicore, minilm.deployment_url, "/v1")
    assert len(via_v1.embeddings.create(model=MODEL, input=["a"]).data) == 1
    # gen_ai_hub >= 7 posts to {deploymentUrl}/embeddings (aicore-api.md §6.2): the gateway
    # forwards it unchanged and the serving image (image/serve.py) answers it as /v1/embeddings.
    bare = httpx.post(
        f"{minilm.deployment_url}/embeddings",
        headers=aicore.headers(),
        json={"model": MODEL, "input": ["a"]},
        params={"api-version": "2025-03-01-preview"},
    )
    assert bare.status_code == 200 and len(bare.json()["data"][0]["embedding"]) == 384
    calls = [(c["method"], c["path"], c["status"]) for c in aicore.admin.inference_calls()]
    assert calls == [("POST", "/v1/embeddings", 200), ("POST", "/embeddings", 200)]
    models = httpx.get(f"{minilm.deployment_url}/v1/models", headers=aicore.headers())
    assert [m["id"] for m in models.json()["data"]] == [MODEL]


def test_gateway_checks_token_and_resource_group(aicore: LocalAICore, minilm: Any) -> None:
    url = f"{minilm.deployment_url}/v1/embeddings"
    body = {"model": MODEL, "input": ["a"]}
    assert httpx.post(url, json=body, headers={"AI-Resource-Group": "default"}).status_code == 401
    token = aicore.token()
    no_rg = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert no_rg.status_code == 400
    wrong_rg = httpx.post(
        url, json=body, headers={"Authorization": f"Bearer {token}", "AI-Resource-Group": "other"}
    )
    assert wrong_rg.status_code == 404


def test_logs_carry_the_predictor_output(client: AICoreV2Client, minilm: Any) -> None:
    entries = client.deployment.query_logs(minilm.id, top=5000).data.result
    text = "".join(e.msg for e in entries)
    assert "Copying contents of file://" in text  # storage initializer
    assert "Uvicorn running on http://127.0.0.1:" in text  # infinity itself


def test_configuration_update_serves_throughout(
    aicore: LocalAICore, client: AICoreV2Client, minilm: Any
) -> None:
    """PATCH configurationId with real infinity: the new server answers before the old stops."""
    old = client.configuration.get(minilm.configuration_id)
    new = client.configuration.create(
        name="minilm-batch-16",
        scenario_id=TEST_SCENARIO,
        executable_id=INFINITY_EXECUTABLE,
        parameter_bindings=[
            ParameterBinding("modelName", MODEL),
            ParameterBinding("batchSize", "16"),
        ],
        input_artifact_bindings=old.input_artifact_bindings,
    )
    old_pid = aicore.admin.predictor(minilm.id)["pid"]
    client.deployment.modify(minilm.id, configuration_id=new.id)
    oc = openai_client(aicore, minilm.deployment_url)
    requests = 0
    while client.deployment.get(minilm.id).status != Status.RUNNING:
        # Any failure raises here: the old server must keep answering until the switch.
        assert len(oc.embeddings.create(model=MODEL, input=["still served"]).data) == 1
        requests += 1
    assert requests > 0
    dep = client.deployment.get(minilm.id)
    assert dep.latest_running_configuration_id == new.id
    assert dep.deployment_url == minilm.deployment_url
    assert aicore.admin.predictor(minilm.id)["pid"] != old_pid
    models = httpx.get(f"{minilm.deployment_url}/v1/models", headers=aicore.headers()).json()
    assert models["data"][0]["stats"]["batch_size"] == 16  # the new configuration serves
    wait_until(lambda: not os.path.exists(f"/proc/{old_pid}"), what="old predictor to stop")


@pytest.mark.skipif(
    not (OPERATOR_TEMPLATES / "serving-template.yaml").is_file(),
    reason="manifests/aicore/serving-template.yaml has not been generated",
)
def test_operator_serving_template_serves_embeddings(
    aicore: LocalAICore, client: AICoreV2Client, minilm: Any
) -> None:
    """The generated ServingTemplate (manifests/aicore) deploys and answers like the test one."""
    executables = client.executable.query("embedding-infinity").resources
    exe = next(e for e in executables if e.id == "embedding-infinity")
    artifact_key = exe.input_artifacts[0].name
    dep = deploy_minilm(client, "embedding-infinity", exe.id, artifact_key, "operator-template")
    try:
        result = openai_client(aicore, dep.deployment_url).embeddings.create(
            model=MODEL, input=SENTENCES[:1]
        )
        reference = openai_client(aicore, minilm.deployment_url).embeddings.create(
            model=MODEL, input=SENTENCES[:1]
        )
        assert cosine(result.data[0].embedding, reference.data[0].embedding) >= 0.999
    finally:
        stop_and_delete(client, dep.id)


def test_killed_predictor_makes_the_deployment_dead(
    aicore: LocalAICore, client: AICoreV2Client, minilm: Any
) -> None:
    """Runs last: it ends the shared deployment."""
    pid = aicore.admin.predictor(minilm.id)["pid"]
    os.kill(pid, signal.SIGKILL)
    dead = wait_status(client, minilm.id, Status.DEAD)
    assert "exited with code -9" in dead.status_message
    r = httpx.post(f"{minilm.deployment_url}/v1/embeddings", headers=aicore.headers(), json={})
    assert r.status_code == 503
    client.deployment.delete(minilm.id)
    wait_until(
        lambda: minilm.id not in [d.id for d in client.deployment.query().resources],
        what="deletion",
    )
