"""KServe's own artifacts, taken from its Go module: CRDs, default ConfigMap, webhook manifests and
the controller binary (`cmd/manager`).

The version is pinned (the one the operator's InferenceServices are tested against). `go mod
download` fetches the module into Go's module cache; the files the project needs are then copied
into the project cache, `~/.cache/embedding-operator/kserve-<version>/`, so a later run needs
neither the network nor the Go module cache. KServe's go.mod has replace directives, so `go
install …@version` cannot build it: the controller is the `KSERVE` tool below, built by the one
builder (gobuild.py) from a copy of the module (`go build ./cmd/manager`) as its own Makefile does,
and cached beside the manifests.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from testcluster.errors import ClusterError
from testcluster.gobuild import (
    GoTool,
    ensure_go_tool,
    module_source,
    tool_dir,
    tool_lock,
    tool_path,
)

#: KServe's controller (`cmd/manager`), cached in the same entry as the manifests copied below.
KSERVE = GoTool(
    name="kserve",
    module="github.com/kserve/kserve",
    version="v0.20.0",
    package="./cmd/manager",
    binary="manager",
    copy=("go.mod", "go.sum", "cmd", "pkg"),
    env=(("GOFLAGS", "-mod=mod"),),
    cold="2-4 min cold",
)
MODULE = KSERVE.module
VERSION = KSERVE.version

#: CRDs the controller watches (it exits if one is missing); the operator itself needs the first
#: three. Paths inside the module.
CRD_FILES = (
    "config/crd/full/serving.kserve.io_inferenceservices.yaml",
    "config/crd/full/serving.kserve.io_servingruntimes.yaml",
    "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
    "config/crd/full/serving.kserve.io_inferencegraphs.yaml",
    "config/crd/full/serving.kserve.io_trainedmodels.yaml",
    "config/crd/full/clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelcaches.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnamespacecaches.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnodegroups.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnodes.yaml",
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml",
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceserviceconfigs.yaml",
)
CONFIGMAP_FILE = "config/configmap/inferenceservice.yaml"
WEBHOOK_FILE = "config/webhook/manifests.yaml"
_ASSETS = (*CRD_FILES, CONFIGMAP_FILE, WEBHOOK_FILE)


def _tool(version: str) -> GoTool:
    return dataclasses.replace(KSERVE, version=version)


def kserve_dir(version: str = VERSION) -> Path:
    """The cache directory of one KServe version (it may not exist yet)."""
    return tool_dir(_tool(version))


def ensure_assets(version: str = VERSION) -> Path:
    """KServe's CRDs, ConfigMap and webhook manifests in the cache (copied once); the directory.

    Layout inside it mirrors the module (`config/crd/full/…`)."""
    target = kserve_dir(version)
    stamp = target / "assets.ok"
    if stamp.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # NB: the controller's build takes the same lock (gobuild.tool_lock): one writer per entry.
    with tool_lock(_tool(version)).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return target
        source = module_source(MODULE, version, KSERVE.env)
        for rel in _ASSETS:
            src, dst = source / rel, target / rel
            if not src.is_file():
                raise ClusterError(f"{MODULE}@{version} has no {rel}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        stamp.write_text(f"{MODULE}@{version}\n")
    return target


def crd_files(version: str = VERSION, *, plurals: tuple[str, ...] | None = None) -> list[Path]:
    """Paths of the cached CRD files: all of them, or those of the given resource plurals
    (e.g. `("inferenceservices",)`), in that order."""
    root = ensure_assets(version)
    files = {Path(rel).name: root / rel for rel in CRD_FILES}
    if plurals is None:
        return list(files.values())
    wanted = [f"serving.kserve.io_{plural}.yaml" for plural in plurals]
    unknown = [name for name in wanted if name not in files]
    if unknown:
        raise ClusterError(f"no KServe CRD file {', '.join(unknown)} in {MODULE}@{version}")
    return [files[name] for name in wanted]


def controller_binary(version: str = VERSION) -> Path:
    return tool_path(_tool(version))


def ensure_controller(version: str = VERSION, *, quiet: bool = False) -> Path:
    """The cached KServe controller (`cmd/manager`), built first if the cache lacks it."""
    ensure_assets(version)
    return ensure_go_tool(_tool(version), quiet=quiet)


# --- the controller, run against a local cluster -------------------------------------------------

#: The namespace KServe's controller lives in (its POD_NAMESPACE; the ConfigMap goes there).
NAMESPACE = "kserve"
CONFIGMAP_NAME = "inferenceservice-config"


def adapted_configmap(text: str) -> dict[str, Any]:
    """KServe's default ConfigMap, adapted to a cluster without Knative, Istio or an ingress.

    Standard mode by default (Deployments, no Knative); no Istio VirtualService and no Ingress
    (nothing routes them here); smaller default resources, because the node has two cores.
    """
    configmap = yaml.safe_load(text)
    data = configmap["data"]
    deploy = json.loads(data["deploy"])
    deploy["defaultDeploymentMode"] = "Standard"
    data["deploy"] = json.dumps(deploy, indent=2)
    ingress = json.loads(data["ingress"])
    ingress.update(disableIstioVirtualHost=True, disableIngressCreation=True)
    data["ingress"] = json.dumps(ingress, indent=2)
    isvc = json.loads(data["inferenceService"])
    isvc["resource"] = {
        "cpuLimit": "2",
        "memoryLimit": "2Gi",
        "cpuRequest": "100m",
        "memoryRequest": "256Mi",
    }
    data["inferenceService"] = json.dumps(isvc, indent=2)
    configmap["metadata"] = {"name": CONFIGMAP_NAME, "namespace": NAMESPACE}
    return dict(configmap)


def webhook_configurations(text: str, *, port: int, ca_pem: bytes) -> list[dict[str, Any]]:
    """KServe's webhook configurations pointed at the controller on 127.0.0.1:`port`.

    Upstream they name a Service (`clientConfig.service`); here the API server calls the URL
    directly, trusting the harness's own CA (no cert-manager)."""
    ca_bundle = base64.b64encode(ca_pem).decode()
    configs = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        doc["metadata"] = {"name": doc["metadata"]["name"]}
        for hook in doc.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": ca_bundle,
            }
            hook["timeoutSeconds"] = 30
        configs.append(doc)
    return configs


def _webhook_certs(directory: Path) -> bytes:
    """A CA and a 127.0.0.1 serving cert in `directory` (tls.crt/tls.key); the CA's PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"

    def openssl(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"step 'webhook certs': openssl {args[0]}: {proc.stderr[-300:]}")

    ec = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out")
    openssl(*ec, str(ca_key))
    # fmt: off
    openssl("req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "365",
            "-subj", "/CN=kserve-webhook-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", str(ca_crt))
    openssl(*ec, str(directory / "tls.key"))
    openssl("req", "-x509", "-new", "-key", str(directory / "tls.key"), "-sha256", "-days", "365",
            "-CA", str(ca_crt), "-CAkey", str(ca_key), "-subj", "/CN=kserve-webhook",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth",
            "-out", str(directory / "tls.crt"))
    # fmt: on
    ca_key.unlink()
    return ca_crt.read_bytes()


class Controller:
    """KServe's controller (`cmd/manager`) run on this machine against a local cluster.

    It runs as the cluster admin (no in-cluster ServiceAccount), in Standard mode, with its
    webhooks served from this process on a free port and registered by URL on 127.0.0.1.
    """

    def __init__(self, kubeconfig: Path, state_dir: Path, log_file: Path) -> None:
        self.kubeconfig = kubeconfig
        self.state_dir = state_dir
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    def kubectl(self, *args: str, input: str | None = None) -> str:
        proc = subprocess.run(
            [os.environ.get("KUBECTL", "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(f"step 'kubectl {args[0]}' (KServe): {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def install(self) -> None:
        """CRDs, namespace and the adapted ConfigMap (idempotent: server-side apply)."""
        root = ensure_assets()
        apply = (
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=testcluster",
            # NB: the API server validates (schema, webhooks); kubectl's own check would first
            # download the OpenAPI document, megabytes with KServe's CRDs, slow on a busy machine.
            "--validate=false",
        )
        for crd in crd_files():
            # NB: one CRD per request, retried: a few are megabytes of schema, and a busy API
            # server answers a batch of them with a request timeout.
            for attempt in range(3):
                try:
                    self.kubectl(*apply, "-f", str(crd))
                    break
                except ClusterError as exc:
                    if "Timeout" not in str(exc) or attempt == 2:
                        raise
        files = [a for f in crd_files() for a in ("-f", str(f))]
        self.kubectl("wait", "--for=condition=Established", "--timeout=180s", *files)
        self.kubectl(*apply, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE},
        }))  # fmt: skip
        configmap = adapted_configmap((root / CONFIGMAP_FILE).read_text())
        self.kubectl(*apply, "-f", "-", input=json.dumps(configmap))

    def start(self, *, timeout: float = 180.0) -> None:
        binary = ensure_controller()
        self.install()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmpdir = self.state_dir / "tmp"
        ca_pem = _webhook_certs(tmpdir / "k8s-webhook-server" / "serving-certs")
        webhook_port, probe_port = _free_ports(2)
        env = dict(
            os.environ,
            KUBECONFIG=str(self.kubeconfig),
            POD_NAMESPACE=NAMESPACE,
            TMPDIR=str(tmpdir),
        )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    str(binary),
                    "--metrics-addr=0",
                    f"--webhook-port={webhook_port}",
                    f"--health-probe-addr=127.0.0.1:{probe_port}",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        (self.state_dir / "pid").write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not _http_ok(f"http://127.0.0.1:{probe_port}/readyz"):
            if self._proc.poll() is not None:
                raise ClusterError(
                    f"step 'start KServe controller': it exited ({self._proc.returncode}); "
                    f"log: {self.log_file}\n{_tail(self.log_file)}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"step 'start KServe controller' timed out; log: {self.log_file}"
                )
            time.sleep(0.5)
        hooks = webhook_configurations(
            (ensure_assets() / WEBHOOK_FILE).read_text(), port=webhook_port, ca_pem=ca_pem
        )
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=testcluster",
            "--validate=false", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": hooks}),
        )  # fmt: skip

    def running(self) -> bool:
        pid = self._pid()
        return pid is not None and _is_manager(pid, controller_binary())

    def _pid(self) -> int | None:
        try:
            return int((self.state_dir / "pid").read_text())
        except (OSError, ValueError):
            return None

    def stop(self, *, timeout: float = 15.0, remove_webhooks: bool = True) -> None:
        """Stop the controller and remove its webhooks (they would refuse every write after;
        `remove_webhooks=False` when the whole cluster goes away anyway)."""
        if not self.state_dir.exists():
            return
        pid = self._pid()
        if pid is not None and _is_manager(pid, controller_binary()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _is_manager(pid, controller_binary()) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if remove_webhooks:
            names = {yaml.safe_load(d)["metadata"]["name"] for d in _docs(WEBHOOK_FILE)}
            for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired, OSError):
                    self.kubectl(
                        "delete", kind, *sorted(names), "--ignore-not-found", "--wait=false"
                    )
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _docs(rel: str) -> list[str]:
    text = (ensure_assets() / rel).read_text()
    return [d for d in text.split("\n---") if d.strip() and "kind:" in d]


def _is_manager(pid: int, binary: Path) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return argv0 == str(binary) and not stat[stat.rfind(")") + 2 :].startswith("Z")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
