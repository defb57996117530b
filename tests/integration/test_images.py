"""The built images, run the way AI Core and a restricted pod run them: the serving image as
65534:65534 with a read-only root filesystem, a /tmp tmpfs and the model mounted read-only at
/mnt/models, serving all-MiniLM-L6-v2 like sentence-transformers; the operator image as a non-root
user with a read-only root filesystem. Podman stands in for the kubelet (docs/images.md)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.images import (
    PODMAN_RUN_FLAGS,
    RESTRICTED_FLAGS,
    SERVED_NAME,
    assert_serves_minilm,
    free_port,
    wait_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def image_config(image: str) -> dict[str, Any]:
    proc = podman("image", "inspect", image)
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = json.loads(proc.stdout)[0]["Config"]
    return config


class Container:
    """A detached container removed on exit; logs are printed when a test fails."""

    def __init__(self, image: str, env: dict[str, str], *flags: str) -> None:
        self.name = f"images-test-{uuid.uuid4().hex[:8]}"
        env_flags = [f for k, v in env.items() for f in ("-e", f"{k}={v}")]
        self.args = ["run", "-d", "--name", self.name, *PODMAN_RUN_FLAGS, *flags, *env_flags, image]

    def __enter__(self) -> Container:
        proc = podman(*self.args)
        assert proc.returncode == 0, proc.stderr
        return self

    def running(self) -> bool:
        proc = podman("inspect", "--format", "{{.State.Running}}", self.name)
        return proc.stdout.strip() == "true"

    def logs(self) -> str:
        proc = podman("logs", self.name)
        return proc.stdout + proc.stderr

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            print(self.logs()[-6000:])
        podman("rm", "-f", "-t", "10", self.name)


@pytest.fixture
def serving_env() -> Iterator[dict[str, str]]:
    # The environment the ServingTemplate / InferenceService renders (manifests/aicore).
    yield {
        "MODEL_SERVE_NAME": SERVED_NAME,
        "STORAGE_URI": "ai://default/models/all-minilm-l6-v2",
        "BATCH_SIZE": "32",
        "URL_PRE_FIX": "/v1",
        "PORT": str(free_port()),
    }


def test_serving_image_serves_minilm_as_ai_core_runs_it(
    serving_image: str,
    minilm_dir: Path,
    minilm_reference: list[list[float]],
    serving_env: dict[str, str],
) -> None:
    port = serving_env["PORT"]
    start = time.monotonic()
    with Container(
        serving_image, serving_env, *RESTRICTED_FLAGS, "-v", f"{minilm_dir}:/mnt/models:ro"
    ) as c:
        wait_healthy(f"http://127.0.0.1:{port}", 240, alive=c.running)
        print(f"serving container healthy {time.monotonic() - start:.1f} s after podman run")
        assert_serves_minilm(f"http://127.0.0.1:{port}", SERVED_NAME, minilm_reference)
        logs = c.logs()
    assert "DO_NOT_TRACK=1 registered" in logs
    assert "Read-only file system" not in logs


def test_serving_image_rejects_a_bad_value_before_starting(
    serving_image: str, minilm_dir: Path, serving_env: dict[str, str]
) -> None:
    proc = podman(
        "run",
        "--rm",
        *PODMAN_RUN_FLAGS,
        *RESTRICTED_FLAGS,
        "-v",
        f"{minilm_dir}:/mnt/models:ro",
        *("-e", f"MODEL_SERVE_NAME={SERVED_NAME}", "-e", "BATCH_SIZE=lots"),
        serving_image,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("run.sh: BATCH_SIZE='lots' is invalid")


def test_serving_image_without_model_names_model_dir(serving_image: str) -> None:
    proc = podman(
        "run",
        "--rm",
        *PODMAN_RUN_FLAGS,
        *RESTRICTED_FLAGS,
        *("-e", f"MODEL_SERVE_NAME={SERVED_NAME}"),
        serving_image,
    )
    assert proc.returncode == 2
    assert "MODEL_DIR='/mnt/models' does not exist" in proc.stderr


def test_serving_image_config(serving_image: str) -> None:
    config = image_config(serving_image)
    assert config["User"] == "65534:65534"
    assert config["Entrypoint"] == ["/usr/local/bin/run.sh"]
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["DO_NOT_TRACK"] == "1"
    assert env["INFINITY_HOME"].startswith("/tmp/")
    assert env["HF_HOME"].startswith("/tmp/")
    # Build-only inputs never reach the image's runtime config.
    assert not {"PIP_CERT", "WHEELHOUSE"} & env.keys()


def test_serving_image_has_the_locked_packages(serving_image: str) -> None:
    proc = podman(
        "run",
        "--rm",
        *PODMAN_RUN_FLAGS,
        *RESTRICTED_FLAGS,
        "--entrypoint",
        "pip",
        serving_image,
        *("freeze", "--all", "--exclude", "pip"),
    )
    assert proc.returncode == 0, proc.stderr
    lock = Path(__file__).resolve().parents[2] / "image" / "requirements.txt"
    pins = {
        line.split()[0].lower().replace("_", "-")
        for line in lock.read_text().splitlines()
        if line[:1].isalnum()
    }
    installed = {line.lower().replace("_", "-") for line in proc.stdout.split()}
    assert installed == pins


def test_operator_image_runs_non_root_read_only(operator_image: str) -> None:
    config = image_config(operator_image)
    user = config["User"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert config["Entrypoint"] == ["/opt/operator/bin/embedding-operator"]

    flags = [*PODMAN_RUN_FLAGS, "--read-only", "--cap-drop", "all"]
    flags += ["--security-opt", "no-new-privileges", "--user", "65532:65532"]
    helped = podman("run", "--rm", *flags, operator_image, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "embedding-operator" in helped.stdout and "run" in helped.stdout
    # A subcommand that imports the whole API package and renders the CRD from it.
    crd = podman("run", "--rm", *flags, operator_image, "crd")
    assert crd.returncode == 0, crd.stderr
    assert "kind: CustomResourceDefinition" in crd.stdout
    assert "embeddingmodels.embeddings.ai" in crd.stdout
