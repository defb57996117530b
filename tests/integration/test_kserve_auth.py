"""spec.kserve.auth end to end, short of a kubelet: a real infinity process started by image/run.sh
with the key in its environment (what the predictor pod gets from the secretKeyRef), the real API
server holding the Secret, the EmbeddingModel and the rendered InferenceService, the operator's
reconcile shell with the real KServe backend and serving check, `embedding-operator embed` and
the OpenAI client.

The test stands in for two things a node would do: KServe's controller (it writes the
InferenceService status, as in test_kserve_reconcile.py) and the pod roll after a rotation (it
restarts infinity with the Secret's new value when the operator changed the pod annotation).
`check_auth_enforced` (tests/fixtures/kserve_example.py) is what the real predictor pod must do
too: tests/e2e/test_kserve_auth_node.py runs it against KServe's pod on the node.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from embedding_operator.backends.kserve import KServeBackend, explain_401, http_checker
from embedding_operator.cli import main
from embedding_operator.kube import make_client
from embedding_operator.plan.kserve import API_KEY_ENV, API_KEY_VERSION_ANNOTATION
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings
from tests.fixtures import kserve_example as kx
from tests.fixtures.cluster import Kubectl
from tests.fixtures.images import SERVED_NAME, free_port, wait_healthy
from tests.fixtures.kserve_example import check_auth_enforced
from tests.fixtures.kserve_status import READY, get_isvc, kserve_reports

pytestmark = pytest.mark.integration

RUN_SH = Path(__file__).resolve().parents[2] / "image" / "run.sh"
SECRET = "minilm-api-key"
KEY_1 = "k1-" + "a" * 40
KEY_2 = "k2-" + "b" * 40


class Infinity:
    """run.sh as the predictor container runs it, with INFINITY_API_KEY from "the Secret"."""

    def __init__(self, venv: Path, model_dir: Path, tmp: Path) -> None:
        self.venv, self.model_dir, self.tmp = venv, model_dir, tmp
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "infinity.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, key: str) -> None:
        env = {
            "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
            "HOME": str(self.tmp),
            "MODEL_SERVE_NAME": SERVED_NAME,
            "MODEL_DIR": str(self.model_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "ARG": "--no-model-warmup",
            "INFINITY_HOME": str(self.tmp / "infinity-home"),
            API_KEY_ENV: key,
        }
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                [str(RUN_SH)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_healthy(
            self.url, 180, alive=lambda: self.proc is not None and self.proc.poll() is None
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, key: str) -> None:
        self.stop()
        self.start(key)


@pytest.fixture
def infinity(infinity_venv: Path, minilm_dir: Path, tmp_path: Path) -> Iterator[Infinity]:
    server = Infinity(infinity_venv, minilm_dir, tmp_path)
    try:
        yield server
    finally:
        server.stop()
        text = server.log.read_text() if server.log.exists() else ""
        assert KEY_1 not in text and KEY_2 not in text, "infinity logged the API key"


def put_secret(kubectl: Kubectl, namespace: str, key: str) -> None:
    kx.put_api_key(kubectl, namespace, SECRET, key)


def model(kubectl: Kubectl, namespace: str, name: str = "minilm") -> None:
    kubectl.apply(
        {
            "apiVersion": "embeddings.ai/v1alpha1",
            "kind": "EmbeddingModel",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "backend": "kserve",
                "model": {
                    "name": SERVED_NAME,
                    "uri": "hf://sentence-transformers/all-MiniLM-L6-v2",
                    "dimensions": 384,
                },
                "kserve": {"auth": {"apiKeySecretRef": {"name": SECRET}}},
            },
        }
    )


def shell_pass(kubeconfig: str, kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """One reconcile pass of the operator's shell (real backend, real check); the object after."""

    async def run() -> None:
        client = make_client(kubeconfig)
        try:
            shell = Reconciler(
                client, {"kserve": KServeBackend(client)}, Settings(), lambda b, e: None
            )
            body = kubectl.json("get", "emb", name, "-n", namespace)
            await shell.reconcile(body, logging.getLogger("test.auth"))
        finally:
            await client.close()

    asyncio.run(run())
    obj: dict[str, Any] = kubectl.json("get", "emb", name, "-n", namespace)
    return obj


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def stalled(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")


@pytest.mark.slow
def test_authenticated_endpoint_from_secret_to_401_to_rotation(
    kubectl: Kubectl,
    kubeconfig: str,
    namespace: str,
    kserve_crds: object,
    crd: str,
    infinity: Infinity,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import openai

    put_secret(kubectl, namespace, KEY_1)
    infinity.start(KEY_1)
    check_auth_enforced(f"{infinity.url}/v1", KEY_1)

    # The operator renders the key as a secretKeyRef only: never its value.
    model(kubectl, namespace)
    shell_pass(kubeconfig, kubectl, namespace, "minilm")
    isvc = get_isvc(kubectl, namespace, "minilm")
    container = isvc["spec"]["predictor"]["containers"][0]
    assert {
        "name": API_KEY_ENV,
        "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "apiKey"}},
    } in container["env"]
    assert KEY_1 not in json.dumps(isvc)
    version_1 = kubectl.json("get", "secret", SECRET, "-n", namespace)["metadata"][
        "resourceVersion"
    ]
    assert isvc["spec"]["predictor"]["annotations"][API_KEY_VERSION_ANNOTATION] == version_1

    # KServe says Ready at the real server: the serving check sends the key and verifies.
    kserve_reports(kubectl, namespace, "minilm", conditions=READY, url=infinity.url)
    obj = shell_pass(kubeconfig, kubectl, namespace, "minilm")
    assert (ready(obj)["status"], ready(obj)["reason"]) == ("True", "ServingVerified"), obj
    assert obj["status"]["serving"]["dimensions"] == 384
    endpoint = obj["status"]["endpoint"]
    assert KEY_1 not in json.dumps(obj)

    # Users: `embedding-operator embed` reads the key from the same Secret; the OpenAI client
    # sends it as api_key (docs/kserve.md#authentication).
    assert main(["embed", "--kubeconfig", kubeconfig, "-n", namespace, "minilm", "hi"]) == 0
    assert capsys.readouterr().out == "1 vector x 384 dimensions\n"
    client = openai.OpenAI(base_url=endpoint, api_key=KEY_1)
    result = client.embeddings.create(model=SERVED_NAME, input=["hello"])
    assert len(result.data[0].embedding) == 384
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=endpoint, api_key="wrong").embeddings.create(
            model=SERVED_NAME, input=["hello"]
        )

    # Rotation: a new key in the Secret changes the pod annotation (the pods roll) ...
    put_secret(kubectl, namespace, KEY_2)
    obj = shell_pass(kubeconfig, kubectl, namespace, "minilm")
    isvc = get_isvc(kubectl, namespace, "minilm")
    version_2 = isvc["spec"]["predictor"]["annotations"][API_KEY_VERSION_ANNOTATION]
    assert version_2 != version_1
    assert ready(obj)["status"] == "False"  # waiting for KServe to roll it out
    # ... while the old pod still has the old key, the check sends the new one and says why.
    obj = shell_pass(kubeconfig, kubectl, namespace, "minilm")
    assert ready(obj)["reason"] == "ServingCheckFailed", obj
    assert "401" in ready(obj)["message"] and KEY_2 not in json.dumps(obj)
    # The rolled pod starts with the Secret's new value: Ready again, on the new key only.
    infinity.restart(KEY_2)
    obj = shell_pass(kubeconfig, kubectl, namespace, "minilm")
    assert (ready(obj)["status"], ready(obj)["reason"]) == ("True", "ServingVerified"), obj
    check_auth_enforced(endpoint, KEY_2)
    assert main(["embed", "--kubeconfig", kubeconfig, "-n", namespace, "minilm", "hi"]) == 0
    assert capsys.readouterr().out == "1 vector x 384 dimensions\n"

    # The serving check itself: without a key a 401 names spec.kserve.auth.
    unauthenticated = explain_401(asyncio.run(http_checker(30)(endpoint, SERVED_NAME)), None)
    assert unauthenticated.error is not None and "set spec.kserve.auth" in unauthenticated.error


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (None, f"Secret {{ns}}/{SECRET} (spec.kserve.auth.apiKeySecretRef) not found"),
        ({"other": "eA=="}, "has no key 'apiKey' (it has: other)"),
        ({"apiKey": base64.b64encode(b"s3cret\n").decode()}, "without a trailing newline"),
    ],
    ids=["missing", "wrong-key", "trailing-newline"],
)
def test_unusable_key_is_stalled_before_anything_is_applied(
    kubectl: Kubectl,
    kubeconfig: str,
    namespace: str,
    kserve_crds: object,
    crd: str,
    secret: dict[str, str] | None,
    fragment: str,
) -> None:
    if secret is not None:
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": namespace},
                "data": secret,
            }
        )
    model(kubectl, namespace)
    obj = shell_pass(kubeconfig, kubectl, namespace, "minilm")
    assert stalled(obj)["reason"] == "SecretNotFound"
    assert fragment.format(ns=namespace) in stalled(obj)["message"]
    assert "s3cret" not in json.dumps(obj)
    assert not kubectl.exists("inferenceservices.serving.kserve.io", "minilm", "-n", namespace)
