"""The local sandbox: control plane + local AI Core + the operator, and the main job on it.

    python scripts/sandbox.py demo   # everything up, one model to Ready, a real embedding, clean up
    python scripts/sandbox.py up     # the same, but leave it running for kubectl
    python scripts/sandbox.py down   # stop everything `up` started

Run through `make demo`, `make up`, `make down` (they install what is missing first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local"
KUBECONFIG = LOCAL / "kubeconfig"
SERVICE_KEY = LOCAL / "aicore-service-key.json"
OPERATOR_PID = LOCAL / "operator.pid"
OPERATOR_LOG = LOCAL / "logs" / "operator.log"
LIVENESS_PORT = int(os.environ.get("EMB_SANDBOX_LIVENESS_PORT", "8089"))
EXAMPLE = ROOT / "manifests" / "examples" / "aicore-minilm.yaml"
NAMESPACE = "default"
SECRET = "aicore-service-key"
PY = sys.executable


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=ROOT, text=True, capture_output=capture, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip() if capture else ""
        sys.exit(f"sandbox: `{' '.join(args)}` failed (exit {proc.returncode}) {detail}")
    return proc


def kubectl(
    *args: str, check: bool = True, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    return run("kubectl", f"--kubeconfig={KUBECONFIG}", *args, check=check, capture=capture)


def apply(manifest: str) -> None:
    """`kubectl apply` of one manifest (YAML or JSON) given as text."""
    subprocess.run(
        ["kubectl", f"--kubeconfig={KUBECONFIG}", "apply", "-f", "-"],
        input=manifest, text=True, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def install_crd() -> None:
    step("Installing the EmbeddingModel CRD")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/embeddingmodels.embeddings.ai")


def wait_ready(*, timeout: str, show: str, name: str = "sandbox") -> None:
    """Wait for emb/minilm to be Ready; if it is not, show `show` (kinds) and its conditions."""
    proc = kubectl(
        "wait", "--for=condition=Ready", "emb/minilm", "-n", NAMESPACE, f"--timeout={timeout}",
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        kubectl("get", show, "-n", NAMESPACE, "-o", "wide", check=False)
        kubectl("describe", "emb", "minilm", "-n", NAMESPACE, check=False)
        sys.exit(f"{name}: the model did not become Ready; see the conditions and Events above")


def operator_running() -> bool:
    try:
        os.kill(int(OPERATOR_PID.read_text()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def start_operator() -> None:
    if operator_running():
        print(f"operator already running (pid {OPERATOR_PID.read_text().strip()})")
        return
    OPERATOR_LOG.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG), "PYTHONPATH": str(ROOT / "operator")}
    with OPERATOR_LOG.open("ab") as log:
        proc = subprocess.Popen(
            [
                PY,
                "-m",
                "embedding_operator",
                "run",
                f"--liveness=http://127.0.0.1:{LIVENESS_PORT}/healthz",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this script, like a daemon
        )
    OPERATOR_PID.write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"sandbox: the operator exited with {proc.returncode}; see {OPERATOR_LOG}")
        try:
            if httpx.get(f"http://127.0.0.1:{LIVENESS_PORT}/healthz", timeout=1).status_code == 200:
                print(f"operator running (pid {proc.pid}, log {OPERATOR_LOG})")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"sandbox: the operator did not become live in 60 s; see {OPERATOR_LOG}")


def stop_operator() -> None:
    if not operator_running():
        OPERATOR_PID.unlink(missing_ok=True)
        return
    pid = int(OPERATOR_PID.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(60):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.kill(pid, signal.SIGKILL)
    OPERATOR_PID.unlink(missing_ok=True)
    print("operator stopped")


def up() -> None:
    step("Starting the local control plane (etcd, kube-apiserver, controller-manager)")
    run(PY, "-m", "testcluster", "up")
    step("Starting the local AI Core (template from manifests/aicore/, MiniLM in its object store)")
    run(PY, "-m", "aicore_local", "up")
    install_crd()
    step(f"Creating Secret {NAMESPACE}/{SECRET} from the local AI Core's service key")
    secret = kubectl(
        "create", "secret", "generic", SECRET, "-n", NAMESPACE,
        f"--from-file=serviceKey={SERVICE_KEY}", "--dry-run=client", "-o", "yaml",
        capture=True,
    ).stdout  # fmt: skip
    apply(secret)
    step("Starting the operator")
    start_operator()
    step(f"Applying {EXAMPLE.relative_to(ROOT)}")
    kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLE))
    step("Waiting for Ready (AI Core artifact -> configuration -> deployment -> serving check)")
    started = time.monotonic()
    wait_ready(timeout="600s", show="emb")
    print(f"Ready after {time.monotonic() - started:.0f} s")
    kubectl("get", "emb", "-n", NAMESPACE, "-o", "wide")


def embed() -> None:
    import openai

    step("Calling status.endpoint with the OpenAI client and an AI Core token")
    key = json.loads(SERVICE_KEY.read_text())
    token = httpx.post(
        key["url"].rstrip("/") + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(key["clientid"], key["clientsecret"]),
        timeout=30,
    ).json()["access_token"]
    obj = json.loads(
        kubectl("get", "emb", "minilm", "-n", NAMESPACE, "-o", "json", capture=True).stdout
    )
    endpoint = obj["status"]["endpoint"]
    client = openai.OpenAI(
        base_url=endpoint, api_key=token, default_headers={"AI-Resource-Group": "default"}
    )
    result = client.embeddings.create(
        model=obj["spec"]["model"]["name"], input=["Embedding models, declaratively."]
    )
    print(f"endpoint:       {endpoint}")
    print(f"embedding size: {len(result.data[0].embedding)}")


def down() -> None:
    step("Stopping the operator, the local AI Core and the control plane")
    stop_operator()
    run(PY, "-m", "aicore_local", "down", check=False)
    run(PY, "-m", "testcluster", "down", check=False)


def cli(
    doc: str,
    up: Callable[[], object],
    embed: Callable[[], None],
    down: Callable[[], None],
    clean_up: Callable[[], None],
    *,
    explore: str,
) -> int:
    """`demo` (up, embed, clean up, down; down also on failure), `up` (leave it running, print
    `explore`) or `down`: the one command line of both sandboxes."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    parser.add_argument("command", choices=["demo", "up", "down"])
    args = parser.parse_args()
    if args.command == "down":
        down()
        return 0
    started = time.monotonic()
    try:
        up()
        embed()
    except BaseException:
        if args.command == "demo":
            down()
        raise
    if args.command == "demo":
        clean_up()
        down()
        print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    else:
        print(
            f"\nEverything is running. Explore with:\n  export KUBECONFIG={KUBECONFIG}\n{explore}"
        )
    return 0


def clean_up() -> None:
    step("Cleaning up: deleting the model (the finalizer stops and deletes its deployment)")
    kubectl("delete", "emb", "minilm", "-n", NAMESPACE, "--timeout=120s")


#: What `up` prints to explore with, after `export KUBECONFIG=…`.
EXPLORE = (
    "  kubectl get emb -o wide\n"
    "  kubectl describe emb minilm\n"
    "  .venv/bin/embedding-operator embed minilm 'hello world'\n"
    "Stop with: make down"
)


def main() -> int:
    return cli(__doc__ or "", up, embed, down, clean_up, explore=EXPLORE)


if __name__ == "__main__":
    raise SystemExit(main())
