"""One real node for the local control plane: containerd + kubelet + kube-scheduler.

Node mode (`Cluster(..., node=True)`, `python -m testcluster up --node`) turns the envtest-style
control plane into a one-node cluster on which pods really run:

- containerd 2.2 built from its Go module (`go install`, cached per version), runc and the CNI
  plugins from Debian (`runc`, `containernetworking-plugins`);
- kubelet and kube-scheduler from the same testcluster binary (same Kubernetes release);
- a pause image built locally from `build/pause/linux/pause.c` of the same Kubernetes module (no
  registry is reachable), imported into containerd as `registry.k8s.io/pause:3.10.2`;
- a CNI bridge of our own (`tcnode0`, 10.86.0.0/24, no masquerade): pods get an IP the host can
  reach, and nothing leaves this machine. The bridge address is also the node's InternalIP (the
  kubelet refuses loopback), and the kubelet serves on it only.

Everything lives under `<state_dir>/node/` and one cgroup root (`/testcluster-node`); `stop()`
kills the pods' processes, unmounts every mount under the state dir, removes the cgroups, the
bridge and the state. Only one node runs per machine (a fixed bridge and subnet): a second start
fails with the state dir of the first, or waits its turn for up to `$TESTCLUSTER_NODE_WAIT`
seconds (a pytest session holds the node for its whole life, so parallel sessions queue).

containerd's image store is the one thing kept between sessions, like kind's node image: its root
lives in the cache (`containerd-root-<version>`), so a multi-GB serving image is imported once per
build, not once per session. `stop()` deletes every container and sandbox from it first and marks
it clean; a store whose last node did not stop cleanly is wiped at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from testcluster import clusternet
from testcluster.build import kubernetes_version
from testcluster.errors import ClusterError
from testcluster.gobuild import cache_dir, ensure_go_tool, go_executable, module_source

CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
CONTAINERD_VERSION = "v2.2.9"
CONTAINERD_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr")
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"
#: containerd's namespace for Kubernetes (CRI) images and containers.
K8S_NAMESPACE = "k8s.io"

NODE_NAME = "testcluster-node"
BRIDGE = "tcnode0"
POD_SUBNET = "10.86.0.0/24"
NODE_IP = "10.86.0.1"  # the bridge's address: pods' gateway and the node's InternalIP
CGROUP_ROOT = "/testcluster-node"
CNI_BIN_DIR = Path("/usr/lib/cni")
RUNC = "/usr/sbin/runc"

CONTAINERD, KUBELET, SCHEDULER = "containerd", "kubelet", "kube-scheduler"
PROXY, COREDNS = clusternet.PROXY, clusternet.COREDNS
#: The cluster DNS server (CoreDNS on the node IP, port 53): the kubelet's clusterDNS.
CLUSTER_DNS = NODE_IP
KUBELET_USER = f"system:node:{NODE_NAME}"
SCHEDULER_USER = "system:kube-scheduler"

#: Controllers a registered node needs on top of the envtest pair: node lifecycle (else the node
#: keeps its not-ready taint), Deployments, service accounts for pods, EndpointSlices for
#: Services, the kube-root-ca.crt ConfigMap every projected token volume reads, pod GC, and the
#: PersistentVolume binder (static PVs: a model on a hostPath PV is the offline `pvc://` source).
NODE_CONTROLLERS = (
    "persistentvolume-binder-controller",
    "node-lifecycle-controller",
    "deployment-controller",
    "replicaset-controller",
    "serviceaccount-controller",
    "endpointslice-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "taint-eviction-controller",
)

_STATE = "node.json"
_OWNER = "node.owner"  # in the cache dir: which state dir runs the machine's one node
_SESSION_LOCK = "node.session.lock"  # in the cache dir: held by the process whose node runs
_CLEAN = ".stopped-clean"  # in the kept containerd root: no container or sandbox is left in it
#: Seconds a start waits for another node on this machine to stop (0: fail at once).
WAIT_ENV = "TESTCLUSTER_NODE_WAIT"
#: The phase (seconds) a start spent waiting for another node to stop.
QUEUE_PHASE = "node-queue"


# --- builds and images ---------------------------------------------------------------------------


def containerd_dir(version: str = CONTAINERD_VERSION) -> Path:
    return cache_dir() / f"containerd-{version}"


def containerd_root(version: str = CONTAINERD_VERSION) -> Path:
    """containerd's root (image content, snapshots, metadata), kept between node sessions."""
    return cache_dir() / f"containerd-root-{version}"


def ensure_containerd(version: str = CONTAINERD_VERSION, *, quiet: bool = False) -> Path:
    """containerd, its runc shim and ctr, built with `go install` once per version."""
    target = containerd_dir(version)
    if all((target / b).is_file() for b in CONTAINERD_BINARIES):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"containerd-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((target / b).is_file() for b in CONTAINERD_BINARIES):
            return target
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        log_path = target.parent / f"{target.name}.build.log"
        pkgs = [f"{CONTAINERD_MODULE}/cmd/{b}@{version}" for b in CONTAINERD_BINARIES]
        env = dict(os.environ, GOBIN=str(tmp))
        env.setdefault("GOTOOLCHAIN", "local")
        if not quiet:
            print(f"testcluster: building containerd {version} (1-3 min); log: {log_path}")
        with log_path.open("w") as log:
            proc = subprocess.run(
                [go_executable(), "install", "-trimpath", "-ldflags=-s -w", *pkgs],
                env=env,
                cwd=target.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ClusterError(
                f"step 'go install containerd {version}' failed (exit {proc.returncode}); "
                f"see the log: {log_path}"
            )
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def _kubernetes_module_dir() -> Path:
    return module_source("k8s.io/kubernetes", str(kubernetes_version()))


def ensure_pause_archive() -> Path:
    """A docker-archive tarball of the pause image, built once from Kubernetes' pause.c."""
    version = kubernetes_version()
    target = cache_dir() / f"pause-{version}.tar"
    if target.is_file():
        return target
    source = _kubernetes_module_dir() / "build" / "pause" / "linux" / "pause.c"
    work = cache_dir() / f"pause.tmp-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        binary = work / "pause"
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise ClusterError("step 'build pause': no C compiler (apt-get install gcc libc6-dev)")
        proc = subprocess.run(
            [cc, "-Os", "-static", "-o", str(binary), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(f"step 'build pause': {proc.stderr.strip()[-500:]}")
        subprocess.run(["strip", str(binary)], check=False, capture_output=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(scratch_image(PAUSE_IMAGE, {"pause": binary.read_bytes()}, ["/pause"]))
        os.replace(tmp, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def scratch_image(
    ref: str, files: dict[str, bytes], entrypoint: list[str], user: str = "65535:65535"
) -> bytes:
    """A one-layer `docker save` archive (what `ctr images import` reads) of a `FROM scratch`
    image holding `files` (mode 0755) at the root."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            layer.addfile(info, io.BytesIO(data))
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": user, "Entrypoint": entrypoint},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in (
            (config_name, config),
            (layer_name, layer_bytes),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _gunzip_if_needed(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# --- the node ------------------------------------------------------------------------------------


@dataclass
class _NodeState:
    binary: str
    containerd_dir: str
    pids: dict[str, int] = field(default_factory=dict)
    created_device_plugins_dir: bool = False
    coredns: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    service_cidr: str = ""


def check_prerequisites() -> None:
    """Root, runc and the CNI plugins: say which Debian package is missing."""
    if os.geteuid() != 0:
        raise ClusterError("node mode needs root (kubelet, containerd, network bridge)")
    missing = []
    if not Path(RUNC).is_file():
        missing.append("runc")
    if not all((CNI_BIN_DIR / p).is_file() for p in ("bridge", "host-local", "loopback")):
        missing.append("containernetworking-plugins")
    if shutil.which("ip") is None:
        missing.append("iproute2")
    missing += clusternet.check_prerequisites()
    if missing:
        raise ClusterError(
            f"node mode needs the Debian packages {' '.join(missing)}: "
            f"apt-get install -y {' '.join(missing)} (or `make node-deps`)"
        )


class Node:
    """The node processes of one cluster, rooted in `<state_dir>/node`."""

    #: The address pods (and hostNetwork pods with ClusterFirstWithHostNet) resolve names at:
    #: `<svc>.<ns>.svc.cluster.local` from CoreDNS, port 53.
    cluster_dns = CLUSTER_DNS
    cluster_domain = clusternet.CLUSTER_DOMAIN

    def __init__(self, state_dir: Path, log_dir: Path) -> None:
        self.root = state_dir / "node"
        self.state_dir = state_dir
        self.log_dir = log_dir
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._session_lock: io.TextIOWrapper | None = None
        #: `leftovers()` as taken by `stop()` before it handed the machine to the next session.
        self.left_behind: list[str] = []

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def ctr_path(self) -> Path:
        return containerd_dir() / "ctr"

    def ctr(self, *args: str, input: bytes | None = None, timeout: float = 600) -> str:
        """Run `ctr -n k8s.io ARGS` against this node's containerd; stdout, or a ClusterError."""
        proc = subprocess.run(
            [str(self.ctr_path), "-a", str(self.socket), "-n", K8S_NAMESPACE, *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)}: {proc.stderr.decode().strip()[-500:]}")
        return proc.stdout.decode()

    def import_podman_image(self, image: str, aliases: tuple[str, ...] = ()) -> bool:
        """Import a podman image (and extra names for it) unless containerd has this build.

        `podman save` streams a docker archive straight into `ctr images import`; the podman
        image id is recorded as a containerd label, so an unchanged image is not imported again.
        Returns True if it imported."""
        podman = shutil.which("podman")
        if podman is None:
            raise ClusterError("step 'import image': podman is not installed (make podman)")
        inspect = subprocess.run(
            [podman, "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            check=False,
        )
        if inspect.returncode != 0:
            raise ClusterError(f"step 'import image': podman has no image {image}: build it first")
        image_id = inspect.stdout.strip()
        image, aliases = _normalized(image), tuple(_normalized(a) for a in aliases)
        names = (image, *aliases)
        label = "embeddings.ai/podman-id"
        have = self.ctr("images", "ls", "-q", f'labels."{label}"=={image_id}').split()
        if image in have:  # this build is in the (kept) store: at most a new name for it
            for alias in (a for a in aliases if a not in have):
                self.ctr("images", "tag", "--force", image, alias)
                self.ctr("images", "label", alias, f"{label}={image_id}")
            return False
        save = subprocess.Popen(
            [podman, "save", "--format", "docker-archive", image], stdout=subprocess.PIPE
        )
        assert save.stdout is not None
        try:
            proc = subprocess.run(
                [str(self.ctr_path), "-a", str(self.socket), "-n", K8S_NAMESPACE,
                 "images", "import", "-"],
                stdin=save.stdout,
                capture_output=True,
                check=False,
            )  # fmt: skip
        finally:
            save.stdout.close()
            save.wait()
        if proc.returncode != 0 or save.returncode != 0:
            raise ClusterError(f"step 'import {image}': {proc.stderr.decode()[-500:]}")
        for alias in aliases:
            self.ctr("images", "tag", "--force", image, alias)
        for name in names:
            self.ctr("images", "label", name, f"{label}={image_id}")
        return True

    def images(self) -> set[str]:
        return set(self.ctr("images", "ls", "-q").split())

    def import_archive(self, archive: Path | bytes) -> None:
        """Import a `podman save`/`docker save` archive (path or bytes) into the node."""
        data = archive if isinstance(archive, bytes) else Path(archive).read_bytes()
        self.ctr("images", "import", "--no-unpack=false", "-", input=_gunzip_if_needed(data))

    # -- state ---------------------------------------------------------------------------------

    def _state(self) -> _NodeState | None:
        try:
            return _NodeState(**json.loads((self.root / _STATE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _save(self, state: _NodeState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / (_STATE + ".tmp")
        tmp.write_text(json.dumps(state.__dict__, indent=2) + "\n")
        os.replace(tmp, self.root / _STATE)

    def _argv0(self, state: _NodeState, component: str) -> tuple[str, str | None]:
        if component == CONTAINERD:
            return str(Path(state.containerd_dir) / "containerd"), None
        if component == COREDNS:
            return state.coredns, None
        return state.binary, component

    def alive(self) -> dict[str, bool]:
        state = self._state()
        if state is None:
            return {}
        result = {}
        for component, pid in state.pids.items():
            proc = self._procs.get(component)
            if proc is not None and proc.pid == pid:
                result[component] = proc.poll() is None
            else:
                exe, sub = self._argv0(state, component)
                result[component] = _running(pid, exe, sub)
        return result

    # -- start ---------------------------------------------------------------------------------

    def start(
        self,
        *,
        binary: str,
        server: str,
        ca_file: Path,
        kubelet_token: str,
        scheduler_token: str,
        proxy_token: str,
        dns_token: str,
        service_cidr: str,
        kubeconfig: Callable[[str, str, str], str],
        detach: bool,
        deadline: float,
        spawn: Callable[[list[str], str, Path, bool], subprocess.Popen[bytes]],
    ) -> dict[str, float]:
        """Start containerd, kubelet, kube-scheduler, kube-proxy and CoreDNS; per-step seconds.

        `wait_networking` then waits until kube-proxy and CoreDNS answer."""
        check_prerequisites()
        started = time.monotonic()
        phases: dict[str, float] = {}
        self._claim()
        # NB: `deadline` bounds the start, not the wait for our turn at the machine's one node.
        phases[QUEUE_PHASE] = round(time.monotonic() - started, 2)
        deadline += phases[QUEUE_PHASE]
        ctrd = ensure_containerd()
        coredns = ensure_go_tool(clusternet.COREDNS_TOOL, quiet=False)
        state = _NodeState(
            binary=binary,
            containerd_dir=str(ctrd),
            coredns=str(coredns),
            service_cidr=service_cidr,
        )
        state.created_device_plugins_dir = not Path("/var/lib/kubelet").exists()
        self._save(state)
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "manifests"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        _prepare_kept_root(containerd_root())
        _bridge_up(service_cidr)
        _make_cgroups(CGROUP_ROOT)
        (self.root / "cni/net.d/10-testcluster.conflist").write_text(self._cni_config(service_cidr))
        (self.root / "containerd/config.toml").write_text(self._containerd_config())

        def run(component: str, argv: list[str]) -> None:
            proc = spawn(argv, component, self.log_dir / f"{component}.log", detach)
            self._procs[component] = proc
            state.pids[component] = proc.pid
            self._save(state)

        run(
            CONTAINERD,
            [str(ctrd / "containerd"), "--config", str(self.root / "containerd/config.toml")],
        )
        self._wait(CONTAINERD, lambda: _socket_answers(self.socket), deadline)
        if PAUSE_IMAGE not in self.images():
            self.import_archive(ensure_pause_archive())
        phases[CONTAINERD] = round(time.monotonic() - started, 2)
        # Containers may appear in the kept store from here on: until stop() empties it again, a
        # crash must make the next start wipe it (a failed start before this keeps the images).
        (containerd_root() / _CLEAN).unlink(missing_ok=True)

        kubelet_kc = self.root / "kubelet/kubeconfig"
        _write_private(kubelet_kc, kubeconfig(KUBELET_USER, kubelet_token, "kubelet"))
        scheduler_kc = self.root / "kube-scheduler.kubeconfig"
        _write_private(scheduler_kc, kubeconfig(SCHEDULER_USER, scheduler_token, "kube-scheduler"))
        config = self.root / "kubelet/config.yaml"
        config.write_text(self._kubelet_config(ca_file))
        # fmt: off
        run(KUBELET, [binary, KUBELET,
            f"--config={config}",
            f"--kubeconfig={kubelet_kc}",
            f"--root-dir={self.root / 'kubelet/root'}",
            f"--cert-dir={self.root / 'kubelet/pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ])
        run(SCHEDULER, [binary, SCHEDULER,
            f"--kubeconfig={scheduler_kc}",
            f"--authentication-kubeconfig={scheduler_kc}",
            f"--authorization-kubeconfig={scheduler_kc}",
            "--leader-elect=false",
            "--secure-port=0",
            "--profiling=false",
        ])
        # fmt: on
        phases[KUBELET] = round(time.monotonic() - started, 2)

        proxy_kc = self.root / "kube-proxy.kubeconfig"
        _write_private(proxy_kc, kubeconfig(clusternet.PROXY_USER, proxy_token, "kube-proxy"))
        healthz, metrics, ready = _free_port(), _free_port(), _free_port()
        state.ports = {"kube-proxy-healthz": healthz, "coredns-ready": ready}
        proxy_config = self.root / "kube-proxy.yaml"
        proxy_config.write_text(
            clusternet.proxy_config(
                kubeconfig=proxy_kc,
                node_name=NODE_NAME,
                node_ip=NODE_IP,
                pod_cidr=POD_SUBNET,
                healthz=healthz,
                metrics=metrics,
            )
        )
        run(PROXY, [binary, PROXY, f"--config={proxy_config}", "--v=1"])
        dns_kc = self.root / "coredns.kubeconfig"
        _write_private(dns_kc, kubeconfig(clusternet.COREDNS_USER, dns_token, "coredns"))
        corefile = self.root / "Corefile"
        corefile.write_text(
            clusternet.corefile(
                bind=NODE_IP, kubeconfig=dns_kc, context="coredns", ready_port=ready
            )
        )
        run(COREDNS, [str(coredns), "-conf", str(corefile)])
        return phases

    def wait_networking(self, deadline: float) -> None:
        """Until kube-proxy has synced its rules and CoreDNS has read the API (both /ready)."""
        state = self._state()
        assert state is not None, "start() first"
        port = state.ports
        self._wait(
            PROXY, lambda: _http_ok(f"http://127.0.0.1:{port['kube-proxy-healthz']}/healthz"),
            deadline,
        )  # fmt: skip
        self._wait(
            COREDNS, lambda: _http_ok(f"http://127.0.0.1:{port['coredns-ready']}/ready"), deadline
        )

    def _claim(self) -> None:
        """Become the machine's one node: hold the session lock, then take over the owner file.

        The lock lives as long as this process's node, so a second pytest session waits here
        (up to $TESTCLUSTER_NODE_WAIT s) instead of failing; a node started by a process that has
        exited (`up --detach`) is recognised by its live processes instead."""
        cache_dir().mkdir(parents=True, exist_ok=True)
        wait = float(os.environ.get(WAIT_ENV) or 0)
        deadline = time.monotonic() + wait
        lock = (cache_dir() / _SESSION_LOCK).open("w")
        try:
            while True:
                busy = (
                    self._other_node()
                    if _try_lock(lock)
                    else "another node cluster (its session holds the lock)"
                )
                if busy is None:
                    break
                fcntl.flock(lock, fcntl.LOCK_UN)
                if time.monotonic() >= deadline:
                    raise ClusterError(
                        f"{busy} runs on this machine: one node per machine (fixed bridge "
                        f"{BRIDGE}); stop it first, or set {WAIT_ENV}=SECONDS to wait for it"
                    )
                time.sleep(3)
        except BaseException:
            lock.close()
            raise
        self._session_lock = lock

    def _other_node(self) -> str | None:
        """A live node of another state dir (a dead one is cleaned up here); None if free."""
        owner = cache_dir() / _OWNER
        with (cache_dir() / "node.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                other = Path(owner.read_text().strip())
            except OSError:
                other = None
            if other is not None and other != self.state_dir and (other / "node" / _STATE).exists():
                other_node = Node(other, self.log_dir)
                if any(other_node.alive().values()):
                    return (
                        f"another node cluster (state {other}; "
                        f"`python -m testcluster down --dir {other}`)"
                    )
                other_node.stop()  # a dead one: clean its leftovers so ours can start
            owner.write_text(f"{self.state_dir}\n")
        return None

    def _wait(self, component: str, ready: Callable[[], bool], deadline: float) -> None:
        while not ready():
            if not self.alive().get(component, False):
                raise ClusterError(
                    f"step 'start {component}': it exited; log: {self.log_dir / component}.log\n"
                    + _tail(self.log_dir / f"{component}.log")
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"step 'start {component}' timed out; log: {self.log_dir / component}.log"
                )
            time.sleep(0.2)

    def _cni_config(self, service_cidr: str) -> str:
        return json.dumps(
            {
                "cniVersion": "1.0.0",
                "name": "testcluster",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": BRIDGE,
                        "isGateway": True,
                        "ipMasq": False,  # nothing leaves this machine
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                            # NB: without a route a pod has only its subnet: a ClusterIP was
                            # "network unreachable" in the pod (the host reached it). Only the
                            # service range, no default route: pods reach nothing off the node.
                            "routes": [{"dst": service_cidr, "gw": NODE_IP}],
                            "dataDir": str(self.root / "cni/ipam"),
                        },
                    }
                ],
            },
            indent=2,
        )

    def _containerd_config(self) -> str:
        c = self.root / "containerd"
        runtime = 'plugins."io.containerd.cri.v1.runtime"'
        return f"""version = 3
root = "{containerd_root()}"
state = "{c / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[{runtime}]
  # NB: this VM lacks CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{runtime}.containerd]
  default_runtime_name = "runc"

[{runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{runtime}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  SystemdCgroup = false

[{runtime}.cni]
  bin_dirs = ["{CNI_BIN_DIR}"]
  conf_dir = "{self.root / "cni/net.d"}"
  max_conf_num = 1

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{PAUSE_IMAGE}"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""

    def _kubelet_config(self, ca_file: Path) -> str:
        healthz = _free_port()
        port = _free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # kubelet 1.36 refuses cgroup v1 unless told; this VM is cgroup v1 (hybrid).
            "failCgroupV1": False,
            "failSwapOn": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": CGROUP_ROOT,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "imageServiceEndpoint": f"unix://{self.socket}",
            "address": NODE_IP,
            "port": port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz,
            "readOnlyPort": 0,
            "staticPodPath": str(self.root / "manifests"),
            "podLogsDir": str(self.root / "pod-logs"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca_file)},
            },
            "authorization": {"mode": "Webhook"},
            "evictionHard": {
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "memory.available": "100Mi",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "clusterDomain": clusternet.CLUSTER_DOMAIN,
            "clusterDNS": [CLUSTER_DNS],
            # kube-proxy runs in nftables mode: the kubelet's iptables chains would serve no one
            # and outlive the node (iptables-nft keeps them in the machine's tables).
            "makeIPTablesUtilChains": False,
            "resolvConf": "/etc/resolv.conf",
            "maxPods": 50,
            "registerWithTaints": [],
            "nodeStatusReportFrequency": "10s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "volumeStatsAggPeriod": "0s",
        }
        return json.dumps(config, indent=2)

    # -- stop ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 20.0) -> None:
        """Stop everything the node started and remove every trace of it (idempotent)."""
        state = self._state()
        if state is None and not self.root.exists():
            return  # never started here: the machine-wide parts (bridge, cgroups) are not ours
        if state is not None:
            for component in (COREDNS, PROXY, SCHEDULER, KUBELET):
                pid = state.pids.get(component)
                if pid is not None:
                    _terminate(pid, *self._argv0(state, component), timeout=timeout)
        # The pods' processes: everything in our cgroup tree (the kubelet no longer restarts them).
        for pid in _cgroup_pids(CGROUP_ROOT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if state is not None:
            pid = state.pids.get(CONTAINERD)
            if pid is not None:
                if self.alive().get(CONTAINERD):
                    self._empty_kept_root()
                _terminate(pid, *self._argv0(state, CONTAINERD), timeout=timeout)
        # Shims outlive containerd by design; ours name our socket's address.
        for pid in _shims(str(self.root / "containerd")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._procs.clear()
        _unmount_under(self.root)
        _remove_cgroups(CGROUP_ROOT)
        _bridge_down()  # its routes (the pod subnet, the service range) go with it
        clusternet.cleanup()
        if state is not None and state.created_device_plugins_dir:
            # NB: the kubelet hard-codes /var/lib/kubelet/device-plugins; remove it if we made it.
            shutil.rmtree("/var/lib/kubelet", ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)
        owner = cache_dir() / _OWNER
        with contextlib.suppress(OSError):
            if Path(owner.read_text().strip()) == self.state_dir:
                owner.unlink()
        # What is left is judged while the machine is still ours: once the lock is released the
        # next session's node may take the bridge and cgroups (and would be counted as ours).
        self.left_behind = self.leftovers()
        if self._session_lock is not None:
            self._session_lock.close()  # releases the flock: the next session may start
            self._session_lock = None

    def _empty_kept_root(self) -> None:
        """Delete every container and sandbox from the kept store, then mark it clean.

        Only images stay: the next session's kubelet and CRI plugin find no ghosts of pods that
        lived in this session's etcd."""
        try:
            for cid in self.ctr("containers", "ls", "-q", timeout=60).split():
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    self.ctr("tasks", "delete", "--force", cid, timeout=30)
                self.ctr("containers", "delete", cid, timeout=60)
        except (ClusterError, subprocess.TimeoutExpired):
            return  # not marked clean: the next start wipes the store
        (containerd_root() / _CLEAN).touch()

    def leftovers(self) -> list[str]:
        """What of this node is still on the machine (empty after a clean stop)."""
        found = []
        kept = str(containerd_root())
        mounts = [m for m in _mounts() if m.startswith((str(self.root), kept))]
        if mounts:
            found.append(f"mounts: {mounts[:3]}")
        for controller in _cgroup_controllers():
            if (controller / CGROUP_ROOT.lstrip("/")).exists():
                found.append(f"cgroup {controller / CGROUP_ROOT.lstrip('/')}")
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            found.append(f"bridge {BRIDGE}")
        if _shims(str(self.root / "containerd")):
            found.append("containerd shims")
        if self.root.exists():
            found.append(f"directory {self.root}")
        found += clusternet.leftovers()
        procs = _processes_naming(str(self.root))
        if procs:
            found.append(f"processes {procs[:5]}")
        return found


# --- host plumbing -------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    """An image name as the CRI plugin spells it (`busybox:1` → `docker.io/library/busybox:1`).

    A short name tagged with `ctr` stays short, and the CRI then fails every container of that
    image id with "image docker.io/library/…: not found"; in a kept store, for good."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def _try_lock(lock: io.TextIOWrapper) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _prepare_kept_root(root: Path) -> None:
    """Use the kept containerd root only if its last node emptied it; else start it afresh."""
    clean = root / _CLEAN
    if root.exists() and not clean.exists():
        _unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)  # a crashed session's containers: not worth saving
    root.mkdir(parents=True, exist_ok=True)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    if stat[stat.rfind(")") + 2 :].startswith("Z"):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _running(pid: int, exe: str, sub: str | None) -> bool:
    argv = _cmdline(pid)
    if not argv or argv[0] != exe:
        return False
    return sub is None or (len(argv) > 1 and argv[1] == sub)


def _terminate(pid: int, exe: str, sub: str | None, *, timeout: float) -> None:
    if not _running(pid, exe, sub):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not _running(pid, exe, sub):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def _shims(containerd_root: str) -> list[int]:
    """containerd-shim-runc-v2 processes started by the containerd rooted in `containerd_root`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if (
            argv
            and argv[0].endswith("containerd-shim-runc-v2")
            and any(containerd_root in a for a in argv)
        ):
            pids.append(int(entry.name))
    return pids


def _cgroup_controllers() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # cgroup v2: one tree
        return [base]
    return [p for p in base.iterdir() if p.is_dir() and not p.is_symlink()]


def _walk_cgroups(root: Path) -> Iterator[Path]:
    """All cgroup directories under `root`, deepest first."""
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.is_dir():
            yield from _walk_cgroups(child)
    yield root


def _cgroup_pids(cgroup_root: str) -> set[int]:
    pids: set[int] = set()
    for controller in _cgroup_controllers():
        for group in _walk_cgroups(controller / cgroup_root.lstrip("/")):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (group / "cgroup.procs").read_text().split())
    return pids


def _make_cgroups(cgroup_root: str) -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy before it starts."""
    for controller in _cgroup_controllers():
        group = controller / cgroup_root.lstrip("/")
        group.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):  # cgroup v1 cpuset: empty until copied
            parent, child = controller / name, group / name
            if parent.exists() and child.exists() and not child.read_text().strip():
                child.write_text(parent.read_text())


def _remove_cgroups(cgroup_root: str) -> None:
    for _ in range(50):
        left = False
        for controller in _cgroup_controllers():
            for group in _walk_cgroups(controller / cgroup_root.lstrip("/")):
                try:
                    group.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left = True
        if not left:
            return
        for pid in _cgroup_pids(cgroup_root):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _mounts() -> list[str]:
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            points.append(point)
    return points


def _unmount_under(root: Path) -> None:
    prefix = str(root)
    for _ in range(5):
        inside = sorted(
            (m for m in _mounts() if m == prefix or m.startswith(prefix + "/")),
            key=len,
            reverse=True,
        )
        if not inside:
            return
        for point in inside:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ClusterError(f"step 'ip {' '.join(args)}': {proc.stderr.strip()}")
    return proc


def _bridge_up(service_cidr: str) -> None:
    """The pods' bridge, made before the kubelet starts: its address is the node's IP.

    The service range is routed onto it too: the host reaches ClusterIPs from the node IP, and a
    packet to a ClusterIP kube-proxy does not rewrite stays on the bridge (never the default
    route off this machine)."""
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        _ip("link", "add", BRIDGE, "type", "bridge")
    prefix = POD_SUBNET.split("/")[1]
    if NODE_IP not in _ip("-4", "addr", "show", "dev", BRIDGE).stdout:
        _ip("addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    _ip("route", "replace", service_cidr, "dev", BRIDGE, "src", NODE_IP)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _processes_naming(root: str) -> list[str]:
    """Processes whose command line names a path under `root` (kubelet, kube-proxy, CoreDNS...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if any(root in a for a in argv[1:]):
                found.append(f"{entry.name} {Path(argv[0]).name}")
    return found


def _bridge_down() -> None:
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        _ip("link", "del", BRIDGE, check=False)
