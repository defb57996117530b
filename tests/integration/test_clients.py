"""Clients against one operator-managed AI Core model (real infinity): the operator's own CLI,
the OpenAI Python client with a refreshing token, and SAP's gen_ai_hub.

One EmbeddingModel is deployed for the whole module (one infinity start on a 2-core machine):
`served` creates a namespace, the service-key Secret, an operator process and the object with
kubectl, waits for Ready, and tears it all down (the operator deletes the AI Core deployment).
Which path each client used is read from the local AI Core's record of gateway calls.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import openai
import pytest
import yaml

from tests.fixtures.aicore import LocalAICore
from tests.fixtures.cluster import REPO_ROOT, Kubectl, wait_until
from tests.fixtures.manifests import embedding_model
from tests.fixtures.operator import OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "aicore-service-key"
NAME = "clients"
# A served name no other test uses: gen_ai_hub resolves deployments by it across the tenant.
MODEL_NAME = "minilm-clients"
DIMS = 384


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py, so the documented code is the tested code."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest(name: str, model_name: str, secret: str) -> dict[str, Any]:
    return embedding_model(
        name,
        model_name=model_name,
        dimensions=DIMS,
        secret=secret,
        serving={"args": ["--no-model-warmup"]},
    )


@dataclass
class Served:
    namespace: str
    name: str
    endpoint: str
    deployment_id: str
    config_prefix: str  # `{name}-{uid8}-`: every configuration the operator makes for it
    kubeconfig: str


@pytest.fixture(scope="module")
def served(
    kubectl: Kubectl,
    kubeconfig: str,
    crd: str,
    aicore: LocalAICore,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    ns = f"t-clients-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    # NB: a Ready model is serving-checked on every ready poll; a long interval keeps the
    # operator's own requests out of the gateway record the tests assert on.
    quiet = {"EMB_POLL_READY_SECONDS": "3600"}
    operator = OperatorProcess(kubeconfig, [ns], tmp_path_factory.mktemp("op") / "op.log", quiet)
    try:
        kubectl(
            "create", "secret", "generic", SECRET, "-n", ns,
            f"--from-file=serviceKey={aicore.service_key_path}",
        )  # fmt: skip
        operator.start()
        kubectl(
            "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest(NAME, MODEL_NAME, SECRET))
        )
        kubectl(
            "wait", "--for=condition=Ready", f"emb/{NAME}", "-n", ns, "--timeout=300s", timeout=320
        )
        obj = kubectl.json("get", "emb", NAME, "-n", ns)
        status = obj["status"]
        yield Served(
            namespace=ns,
            name=NAME,
            endpoint=status["endpoint"],
            deployment_id=status["aicore"]["deploymentId"],
            config_prefix=f"{NAME}-{obj['metadata']['uid'][:8]}-",
            kubeconfig=kubeconfig,
        )
        # With the operator still running, so the AI Core deployment (and infinity) goes too.
        kubectl("delete", "emb", "--all", "-n", ns, "--timeout=120s", timeout=130)
    finally:
        operator.kill()
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


def calls(aicore: LocalAICore, deployment_id: str) -> list[tuple[str, str, int]]:
    return [
        (c["method"], c["path"], c["status"])
        for c in aicore.admin.inference_calls()
        if c.get("deploymentId", deployment_id) == deployment_id
    ]


def cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "embedding_operator.cli", "embed", "--kubeconfig",
         served.kubeconfig, "-n", served.namespace, *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_no_secrets(text: str, aicore: LocalAICore) -> None:
    assert aicore.service_key["clientsecret"] not in text
    assert "Bearer" not in text


def test_cli_embed_prints_vectors_and_json(served: Served, aicore: LocalAICore) -> None:
    aicore.admin.clear_inference_calls()
    text = cli(served, served.name, "hello", "world")
    assert text.returncode == 0, text.stderr
    assert text.stdout.strip() == f"2 vectors x {DIMS} dimensions"

    as_json = cli(served, served.name, "-o", "json", "hello")
    assert as_json.returncode == 0, as_json.stderr
    response = json.loads(as_json.stdout)
    assert response["model"] == MODEL_NAME
    assert [len(d["embedding"]) for d in response["data"]] == [DIMS]
    for out in (text, as_json):
        assert_no_secrets(out.stdout + out.stderr, aicore)
    # status.endpoint already carries the url prefix: the CLI posts to {deploymentUrl}/v1/...
    assert calls(aicore, served.deployment_id) == [("POST", "/v1/embeddings", 200)] * 2


def test_cli_embed_errors_name_the_problem(
    served: Served, kubectl: Kubectl, aicore: LocalAICore
) -> None:
    missing = cli(served, "no-such-model", "hello")
    assert missing.returncode == 1 and missing.stdout == ""
    assert f"EmbeddingModel {served.namespace}/no-such-model not found" in missing.stderr

    # A second object whose Secret does not exist: the operator stalls it without deploying.
    broken = manifest("broken", "broken-model", "no-such-secret")
    kubectl("apply", "-n", served.namespace, "-f", "-", input=yaml.safe_dump(broken))

    def ready_false() -> bool:
        obj = kubectl.json("get", "emb", "broken", "-n", served.namespace)
        conds = obj.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "False" for c in conds)

    wait_until(ready_false, what="emb/broken Ready=False", timeout=60)
    not_ready = cli(served, "broken", "hello")
    assert not_ready.returncode == 1
    assert f"EmbeddingModel {served.namespace}/broken is not Ready" in not_ready.stderr
    assert "reason SecretNotFound" in not_ready.stderr and "no-such-secret" in not_ready.stderr
    assert_no_secrets(not_ready.stderr, aicore)
    # Nothing reached AI Core, so deletion needs no Secret.
    kubectl("delete", "emb", "broken", "-n", served.namespace, "--timeout=60s", timeout=70)


def test_openai_client_with_refreshing_token_survives_revocation(
    served: Served, aicore: LocalAICore, aicore_faults: Any
) -> None:
    example = load_example("aicore_openai")
    client = example.aicore_openai(aicore.service_key, served.endpoint, "default")
    auth = client._client.auth
    assert isinstance(auth, example.AICoreTokenAuth)
    assert aicore.service_key["clientsecret"] not in repr(auth)

    # A client holding one fixed token, as `api_key=token` would: it cannot survive revocation.
    fixed = openai.OpenAI(
        base_url=served.endpoint,
        api_key=aicore.token(),
        default_headers={"AI-Resource-Group": "default"},
        max_retries=0,
    )
    aicore.admin.clear_inference_calls()
    first = client.embeddings.create(model=MODEL_NAME, input=["hello", "world"])
    assert [len(d.embedding) for d in first.data] == [DIMS, DIMS]
    assert len(fixed.embeddings.create(model=MODEL_NAME, input=["hello"]).data) == 1
    assert auth.fetched == 1

    assert aicore_faults.expire_tokens() >= 2  # every token the emulator issued is now invalid
    with pytest.raises(openai.AuthenticationError):
        fixed.embeddings.create(model=MODEL_NAME, input=["hello"])
    again = client.embeddings.create(model=MODEL_NAME, input=["hello", "world"])
    assert auth.fetched == 2  # one refresh, after the 401
    assert cosine(again.data[0].embedding, first.data[0].embedding) > 0.9999
    assert calls(aicore, served.deployment_id) == [
        ("POST", "/v1/embeddings", 200),
        ("POST", "/v1/embeddings", 200),
        ("POST", "/v1/embeddings", 401),
        ("POST", "/v1/embeddings", 401),
        ("POST", "/v1/embeddings", 200),
    ]


@pytest.fixture
def gen_ai_hub_scenario(served: Served) -> Iterator[ModuleType]:
    """The operator's scenario registered with gen_ai_hub (a class-wide list), then removed."""
    from gen_ai_hub.proxy.gen_ai_hub_proxy.client import GenAIHubProxyClient

    example = load_example("gen_ai_hub_embeddings")
    saved = list(GenAIHubProxyClient.foundational_model_scenarios)
    GenAIHubProxyClient.refresh_instance_cache()
    # Only this EmbeddingModel's configurations: other tests leave deployments in the scenario.
    example.register_scenario(config_names=f"{served.config_prefix}*")
    try:
        yield example
    finally:
        GenAIHubProxyClient.foundational_model_scenarios[:] = saved
        GenAIHubProxyClient.refresh_instance_cache()


def test_gen_ai_hub_resolves_by_model_name_and_gets_embeddings(
    served: Served, aicore: LocalAICore, gen_ai_hub_scenario: ModuleType
) -> None:
    from gen_ai_hub.proxy.gen_ai_hub_proxy.client import GenAIHubProxyClient
    from gen_ai_hub.proxy.native.openai import OpenAI

    key = aicore.service_key
    credentials = {
        "base_url": key["serviceurls"]["AI_API_URL"].rstrip("/") + "/v2",
        "auth_url": key["url"].rstrip("/") + "/oauth/token",
        "client_id": key["clientid"],
        "client_secret": key["clientsecret"],
        "resource_group": "default",
    }

    # Plain sap-ai-sdk-gen 7.4.1: finds the deployment by the `modelName` binding, then posts to
    # {deploymentUrl}/embeddings (it ignores prediction_url_suffix); the serving image answers
    # that path as well as /v1/embeddings (image/serve.py).
    plain = GenAIHubProxyClient(**credentials)
    deployment = plain.select_deployment(model_name=MODEL_NAME)
    assert deployment.deployment_id == served.deployment_id
    assert deployment.config_name.startswith(served.config_prefix)
    aicore.admin.clear_inference_calls()
    plain_result = OpenAI(proxy_client=plain, max_retries=0).embeddings.create(
        model_name=MODEL_NAME, input=["hello"]
    )
    assert [len(d.embedding) for d in plain_result.data] == [DIMS]
    assert calls(aicore, served.deployment_id) == [("POST", "/embeddings", 200)]

    # Honouring the suffix (examples/gen_ai_hub_embeddings.py) gives /v1/embeddings, the path
    # AI Core's samples route; both give the same vector.
    prefixed = gen_ai_hub_scenario.PrefixedProxyClient(**credentials)
    aicore.admin.clear_inference_calls()
    result = OpenAI(proxy_client=prefixed).embeddings.create(
        model_name=MODEL_NAME, input=["hello", "world"]
    )
    assert result.model == MODEL_NAME
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [DIMS, DIMS]
    assert cosine(vectors[0], vectors[1]) < 0.95  # two sentences, two different vectors
    assert calls(aicore, served.deployment_id) == [("POST", "/v1/embeddings", 200)]
    assert cosine(vectors[0], plain_result.data[0].embedding) > 0.9999

    # The same vector the plain HTTP path (the CLI) gets for the same text.
    via_cli = json.loads(cli(served, served.name, "-o", "json", "hello").stdout)
    assert cosine(vectors[0], via_cli["data"][0]["embedding"]) > 0.9999
