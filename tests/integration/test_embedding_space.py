"""The embedding-space guard end to end, on both backends.

AI Core: the operator process against the real API server and the local AI Core, whose
deployments run real infinity. A pooling change (mean → cls) keeps the 384 dimensions — the case
where nothing would fail: it is held (Stalled, EmbeddingSpaceChange) without touching AI Core,
the old configuration keeps serving, and the confirm annotation rolls it out on a new one.

KServe: the reconcile shell with the real KServeBackend against the real API server (the test
stands in for KServe's controller, as in test_kserve_reconcile.py): a held change does not touch
the InferenceService at all; confirmed, it is applied.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
import yaml

from embedding_operator.backends.kserve import KServeBackend
from embedding_operator.kube import make_client
from embedding_operator.plan.embedding_space import CONFIRM_ANNOTATION
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings
from tests.fixtures.aicore_operator import SECRET, model, remote
from tests.fixtures.cluster import Kubectl, wait_until
from tests.fixtures.infinity import FakeInfinity
from tests.fixtures.kserve_status import MINILM, READY, create_model, get_isvc, kserve_reports
from tests.fixtures.manifests import get_emb as emb
from tests.fixtures.operator import wait_for_condition

pytestmark = pytest.mark.integration


def stalled(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")


def embedding(endpoint: str, headers: dict[str, str], text: str) -> list[float]:
    response = httpx.post(
        f"{endpoint}/embeddings",
        headers=headers,
        json={"model": "all-minilm-l6-v2", "input": [text]},
        timeout=60,
    )
    response.raise_for_status()
    vector: list[float] = response.json()["data"][0]["embedding"]
    return vector


@pytest.mark.slow
def test_aicore_pooling_change_is_held_until_confirmed_while_the_old_model_serves(
    kubectl, namespace, aicore, start_operator
):
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    start_operator(namespace)
    manifest = model(model={**model()["spec"]["model"], "pooling": "mean"})
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    obj = wait_for_condition(kubectl, namespace, "m", "Ready", timeout=300)
    space = obj["status"]["embeddingSpace"]
    assert space["pooling"] == "mean" and space["dimensions"] == 384
    assert space["uri"] == "ai://default/models/all-minilm-l6-v2"
    old_fp = space["fingerprint"]
    endpoint = obj["status"]["endpoint"]
    configuration = obj["status"]["aicore"]["configurationId"]
    mean_vector = embedding(endpoint, aicore.headers(), "the quick brown fox")

    # Same model, same 384 dimensions, other pooling: held, nothing remote changes.
    kubectl("patch", "emb", "m", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"model":{"pooling":"cls"}}}')  # fmt: skip
    obj = wait_for_condition(kubectl, namespace, "m", "Stalled", timeout=60)
    condition = stalled(obj)
    assert condition["reason"] == "EmbeddingSpaceChange"
    assert condition["observedGeneration"] == 2
    new_fp = condition["message"].split(f"{CONFIRM_ANNOTATION}=")[1].split()[0]
    assert old_fp in condition["message"] and new_fp != old_fp
    assert "spec.model.pooling mean -> cls" in condition["message"]
    assert obj["status"]["embeddingSpace"]["fingerprint"] == old_fp
    assert obj["status"]["endpoint"] == endpoint
    assert obj["status"]["aicore"]["configurationId"] == configuration
    deployment = remote(aicore, f"deployments/{obj['status']['aicore']['deploymentId']}")
    assert deployment["configurationId"] == configuration
    assert embedding(endpoint, aicore.headers(), "the quick brown fox") == pytest.approx(
        mean_vector, abs=1e-6
    )
    warnings = kubectl.json("get", "events", "-n", namespace)["items"]
    assert any(e["reason"] == "EmbeddingSpaceChange" for e in warnings)

    # The CLI computes the same fingerprint from the manifest, before anything is applied.
    from embedding_operator.api.spec import parse_spec
    from embedding_operator.plan.embedding_space import embedding_space

    assert embedding_space(parse_spec(emb(kubectl, namespace)["spec"])).fingerprint == new_fp

    # Confirmed: rolled out on a new configuration (bound to the new pooling).
    kubectl("annotate", "emb", "m", "-n", namespace, f"{CONFIRM_ANNOTATION}={new_fp}")
    wait_until(
        lambda: emb(kubectl, namespace)["status"]["aicore"]["configurationId"] != configuration,
        what="the confirmed change rolled out",
        timeout=60,
    )
    obj = wait_for_condition(kubectl, namespace, "m", "Ready", timeout=300)
    assert obj["status"]["embeddingSpace"]["fingerprint"] == new_fp
    assert obj["status"]["embeddingSpace"]["pooling"] == "cls"
    configuration = remote(aicore, f"configurations/{obj['status']['aicore']['configurationId']}")
    assert {"key": "pooling", "value": "cls"} in configuration["parameterBindings"]
    assert stalled(obj)["status"] == "False"
    assert len(embedding(obj["status"]["endpoint"], aicore.headers(), "the quick brown fox")) == 384


@pytest.fixture
def fake_infinity():
    server = FakeInfinity(dimensions=384)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_kserve_held_change_leaves_the_inference_service_untouched_until_confirmed(
    kubectl: Kubectl,
    kubeconfig: str,
    namespace: str,
    kserve_crds: object,
    crd: str,
    fake_infinity: FakeInfinity,
) -> None:
    client = make_client(kubeconfig)
    log = logging.getLogger("test.embedding_space")

    def body() -> dict[str, Any]:
        got: dict[str, Any] = kubectl.json("get", "embeddingmodel", "minilm", "-n", namespace)
        return got

    try:
        shell = Reconciler(client, {"kserve": KServeBackend(client)}, Settings(), lambda b, e: None)
        create_model(kubectl, namespace, "minilm", {})
        await shell.reconcile(body(), log)
        kserve_reports(kubectl, namespace, "minilm", conditions=READY, url=fake_infinity.url)
        await shell.reconcile(body(), log)
        space = body()["status"]["embeddingSpace"]
        assert space["uri"] == MINILM["uri"] and space["dimensions"] == 384
        before = get_isvc(kubectl, namespace, "minilm")["metadata"]

        # Another revision of the weights: held; the InferenceService is not written at all.
        create_model(kubectl, namespace, "minilm", {"model": {**MINILM, "revision": "v2"}})
        await shell.reconcile(body(), log)
        status = body()["status"]
        assert stalled(body())["reason"] == "EmbeddingSpaceChange"
        assert status["embeddingSpace"] == space
        assert status["endpoint"] == fake_infinity.url + "/v1"
        after = get_isvc(kubectl, namespace, "minilm")["metadata"]
        assert after["resourceVersion"] == before["resourceVersion"]

        # Confirmed (the annotation kubectl or git would set): applied, new space recorded.
        new_fp = stalled(body())["message"].split(f"{CONFIRM_ANNOTATION}=")[1].split()[0]
        kubectl("annotate", "emb", "minilm", "-n", namespace, f"{CONFIRM_ANNOTATION}={new_fp}")
        await shell.reconcile(body(), log)
        container = get_isvc(kubectl, namespace, "minilm")["spec"]["predictor"]["containers"][0]
        assert {"name": "REVISION", "value": "v2"} in container["env"]
        # Rolling out: the old space is still what clients get until KServe is Ready again.
        assert body()["status"]["embeddingSpace"] == space
        kserve_reports(kubectl, namespace, "minilm", conditions=READY, url=fake_infinity.url)
        await shell.reconcile(body(), log)
        assert body()["status"]["phase"] == "Ready"
        assert body()["status"]["embeddingSpace"]["fingerprint"] == new_fp
        assert body()["status"]["embeddingSpace"]["revision"] == "v2"
    finally:
        await client.close()
