"""Start, probe and stop a local control plane: etcd + kube-apiserver + kube-controller-manager.

An envtest-style cluster (no kubelet, so pods never run) built from upstream Go modules: it
validates objects, runs admission, RBAC, CEL and CRDs exactly like a real cluster, and the
controller manager runs only the garbage collector and the namespace controller, so cascading
deletion and namespace teardown behave as they do in production.

Everything lives in one state directory (keys, tokens, etcd data, `state.json` with the pids), the
processes are detached (they outlive the `up` command) and `stop()` reads the pids back, checks that
each still runs our binary, and terminates it.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from testcluster import clusternet, pki
from testcluster import kserve as kserve_mod
from testcluster import node as node_mod
from testcluster.build import built_binary
from testcluster.errors import ClusterError

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
#: Start order; stop runs in reverse.
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER)

#: Only the controllers whose behaviour the operator relies on: ownerReference cascading deletion
#: and namespace deletion. Names as kube-controller-manager 1.36 spells them (`--controllers`).
CONTROLLERS = ("garbage-collector-controller", "namespace-controller")

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"

ADMIN_USER = "admin"
TESTER_USER = "tester"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"

STATE_FILE = "state.json"
#: Everything start() creates inside the state directory (stop() removes exactly these).
_OWNED = (
    STATE_FILE,
    STATE_FILE + ".tmp",
    "pki",
    "etcd",
    "kubeconfig",
    "kubeconfig-tester",
    "kube-controller-manager.kubeconfig",
)


@dataclass
class _State:
    """What `up` leaves behind for `status` and `down` (no secrets: tokens stay in tokens.csv)."""

    binary: str
    server: str
    kubeconfig: str
    tester_kubeconfig: str
    log_dir: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    startup_seconds: float = 0.0
    #: seconds until each component was ready (startup profile for `up` and bench/)
    phases: dict[str, float] = field(default_factory=dict)
    #: node mode: kubelet + containerd + kube-scheduler run too (testcluster.node)
    node: bool = False


def _free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (bound together so the kernel cannot repeat one)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGKILL the child when the starting process dies.

    NB: SIGKILL, not SIGTERM: with its starter gone nobody waits for a graceful stop, and
    kube-apiserver's graceful shutdown hung for minutes when etcd got the same signal at the
    same moment (a pytest killed while queued for the node left it running).
    """
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _proc_matches(pid: int, binary: str, component: str) -> bool:
    """True if `pid` is a live (non-zombie) process running `binary component ...`.

    NB: checking the command line protects against pid reuse after a crash or reboot.
    """
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the field right after "(comm)"; comm itself may contain spaces
    if stat[stat.rfind(")") + 2 :].startswith("Z"):
        return False
    return len(argv) >= 2 and argv[0].decode() == binary and argv[1].decode() == component


def _reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _kubeconfig(server: str, ca_pem: bytes, user: str, token: str, context: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "testcluster",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "testcluster", "user": user, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(text)
    os.replace(tmp, path)


class Cluster:
    """One local control plane rooted in `state_dir`.

    `kubeconfig` (admin, group system:masters) and `tester_kubeconfig` (user `tester`, no RBAC
    bindings) default to files inside the state directory; logs go to `log_dir` (default
    `<state_dir>/../logs`), which `stop()` keeps for post-mortems.
    """

    def __init__(
        self,
        state_dir: Path | str,
        *,
        kubeconfig: Path | str | None = None,
        tester_kubeconfig: Path | str | None = None,
        log_dir: Path | str | None = None,
        node: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        #: node mode requested for the next start (a running cluster's mode is in its state)
        self.node_mode = node
        self.kubeconfig = Path(kubeconfig or self.state_dir / "kubeconfig").resolve()
        self.tester_kubeconfig = Path(
            tester_kubeconfig or self.state_dir / "kubeconfig-tester"
        ).resolve()
        self.log_dir = Path(log_dir or self.state_dir.parent / "logs").resolve()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.node = node_mod.Node(self.state_dir, self.log_dir)

    # -- paths and credentials -------------------------------------------------------------

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def ca_file(self) -> Path:
        """PEM CA bundle that verifies the API server's serving certificate."""
        return self.pki_dir / "ca.crt"

    def log_file(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def _state(self) -> _State | None:
        try:
            raw = json.loads((self.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        return _State(**raw)

    def _save(self, state: _State) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state.__dict__, indent=2) + "\n")
        os.replace(tmp, self.state_dir / STATE_FILE)

    def _token(self, user: str) -> str:
        try:
            rows = (self.pki_dir / "tokens.csv").read_text().splitlines()
        except OSError as exc:
            raise ClusterError(f"cluster in {self.state_dir} has no token file") from exc
        for row in rows:
            token, name, *_ = row.split(",")
            if name == user:
                return token
        raise ClusterError(f"no token for user {user!r} in {self.state_dir}")

    @property
    def admin_token(self) -> str:
        """Bearer token of `admin` (group system:masters)."""
        return self._token(ADMIN_USER)

    @property
    def tester_token(self) -> str:
        """Bearer token of `tester` (authenticated, but no RBAC bindings)."""
        return self._token(TESTER_USER)

    @property
    def server(self) -> str:
        """https URL of the running API server."""
        state = self._state()
        if state is None:
            raise ClusterError(f"no cluster state in {self.state_dir}; start it first")
        return state.server

    @property
    def startup_seconds(self) -> float:
        state = self._state()
        return state.startup_seconds if state else 0.0

    def kserve_controller(self) -> kserve_mod.Controller:
        """KServe's controller for this cluster (state in `<state_dir>/kserve`)."""
        return kserve_mod.Controller(
            self.kubeconfig, self.state_dir / "kserve", self.log_file("kserve-controller")
        )

    # -- probes ----------------------------------------------------------------------------

    def _get(self, url: str, *, token: str | None = None, timeout: float = 2.0) -> tuple[int, str]:
        ctx = (
            ssl.create_default_context(cafile=str(self.ca_file))
            if url.startswith("https")
            else None
        )
        req = urllib.request.Request(url)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (OSError, ssl.SSLError) as exc:
            return 0, str(exc)

    def _alive(self, state: _State) -> dict[str, bool]:
        alive = {}
        for component, pid in state.pids.items():
            proc = self._procs.get(component)
            if proc is not None and proc.pid == pid:
                # NB: our own child may not have exec'd yet (cmdline still shows python).
                alive[component] = proc.poll() is None
            else:
                alive[component] = _proc_matches(pid, state.binary, component)
        return alive

    def is_running(self, *, patience: float = 10.0) -> bool:
        """All three processes run and the API server answers /readyz.

        While the processes live, /readyz gets `patience` seconds: a busy machine must not make
        `up` mistake a slow cluster for a dead one (and restart it).
        """
        state = self._state()
        if state is None or set(state.pids) != set(COMPONENTS):
            return False
        if state.node and not all(self.node.alive().values()):
            return False
        deadline = time.monotonic() + patience
        while all(self._alive(state).values()):
            if self._get(f"{state.server}/readyz", token=self.admin_token)[0] == 200:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize start/stop of this state dir across processes (`make up` racing a test)."""
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.state_dir.with_name(self.state_dir.name + ".lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, timeout: float = 90.0, detach: bool = True) -> bool:
        """Start the control plane and wait until the API server is ready.

        Returns False if it was already running (nothing done), True if it was started.
        With `detach=False` the processes die with the calling process (for test fixtures).
        """
        with self._locked():
            if self.is_running():
                state = self._state()
                if state is not None and state.node != self.node_mode:
                    running = "with" if state.node else "without"
                    raise ClusterError(
                        f"a cluster {running} a node already runs in {self.state_dir}; "
                        "stop it first (`python -m testcluster down`)"
                    )
                return False
            self._stop()  # stale or half-started leftovers: clean slate
            self._start(timeout=timeout, detach=detach)
            return True

    def _start(self, *, timeout: float, detach: bool) -> None:
        binary = str(built_binary())
        last: ClusterError | None = None
        # NB: free ports are picked before the servers bind them; another process may win the
        # race. That shows up as "address already in use" and is worth one fresh try.
        for _ in range(3):
            try:
                self._start_once(binary, timeout=timeout, detach=detach)
                return
            except ClusterError as exc:
                last = exc
                self._stop()
                if "address already in use" not in str(exc):
                    raise
        assert last is not None
        raise last

    def _start_once(self, binary: str, *, timeout: float, detach: bool) -> None:
        started = time.monotonic()
        deadline = started + timeout
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        identities = [
            pki.Identity(ADMIN_USER, pki.new_token(), ("system:masters",)),
            pki.Identity(TESTER_USER, pki.new_token()),
            pki.Identity(CONTROLLER_MANAGER_USER, pki.new_token()),
        ]
        if self.node_mode:
            identities += [
                pki.Identity(node_mod.KUBELET_USER, pki.new_token(), ("system:nodes",)),
                pki.Identity(node_mod.SCHEDULER_USER, pki.new_token()),
                pki.Identity(clusternet.PROXY_USER, pki.new_token()),
                pki.Identity(clusternet.COREDNS_USER, pki.new_token()),
            ]
        keys = pki.generate(self.pki_dir, identities)
        etcd_port, etcd_peer_port, api_port = _free_ports(3)
        server = f"https://127.0.0.1:{api_port}"
        state = _State(
            binary=binary,
            server=server,
            kubeconfig=str(self.kubeconfig),
            tester_kubeconfig=str(self.tester_kubeconfig),
            log_dir=str(self.log_dir),
            ports={"etcd": etcd_port, "etcd-peer": etcd_peer_port, "kube-apiserver": api_port},
            started_at=time.time(),
            node=self.node_mode,
        )

        # etcd and the API server start together: the API server spends its first seconds
        # building its API handlers, and its etcd client retries until etcd answers.
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            state,
            ETCD,
            [
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-url={etcd_url}",
                f"--listen-peer-url=http://127.0.0.1:{etcd_peer_port}",
            ],
            detach=detach,
        )

        # fmt: off
        self._spawn(state, APISERVER, [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={self.pki_dir}",
            f"--tls-cert-file={keys.server_cert}",
            f"--tls-private-key-file={keys.server_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            f"--token-auth-file={keys.token_file}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={keys.sa_pub}",
            f"--service-account-signing-key-file={keys.sa_key}",
            # NB: the `kubernetes` Service's endpoints may not be loopback; skip that reconciler.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            *self._apiserver_mode_flags(keys),
        ], detach=detach)
        # fmt: on
        self._wait(
            state,
            "etcd health",
            lambda: self._get(f"{etcd_url}/health")[1].find('"health":"true"') >= 0,
            deadline,
        )
        state.phases[ETCD] = round(time.monotonic() - started, 2)
        ca_pem = keys.ca_cert.read_bytes()
        tokens = {i.user: i.token for i in identities}
        _write_private(
            self.kubeconfig,
            yaml.safe_dump(
                _kubeconfig(server, ca_pem, ADMIN_USER, tokens[ADMIN_USER], "testcluster")
            ),
        )
        _write_private(
            self.tester_kubeconfig,
            yaml.safe_dump(
                _kubeconfig(server, ca_pem, TESTER_USER, tokens[TESTER_USER], "testcluster-tester")
            ),
        )
        kcm_kubeconfig = self.state_dir / "kube-controller-manager.kubeconfig"
        _write_private(
            kcm_kubeconfig,
            yaml.safe_dump(
                _kubeconfig(
                    server,
                    ca_pem,
                    CONTROLLER_MANAGER_USER,
                    tokens[CONTROLLER_MANAGER_USER],
                    "kube-controller-manager",
                )
            ),
        )
        admin_token = tokens[ADMIN_USER]
        self._wait(
            state,
            "kube-apiserver /readyz",
            lambda: self._get(f"{server}/readyz", token=admin_token)[0] == 200,
            deadline,
        )
        state.phases[APISERVER] = round(time.monotonic() - started, 2)

        # fmt: off
        controllers = CONTROLLERS + (node_mod.NODE_CONTROLLERS if self.node_mode else ())
        self._spawn(state, CONTROLLER_MANAGER, [
            f"--kubeconfig={kcm_kubeconfig}",
            f"--controllers={','.join(controllers)}",
            f"--root-ca-file={keys.ca_cert}",
            # Each controller acts as its own service account (TokenRequest), as in kubeadm
            # clusters, so RBAC for the GC and namespace controllers is the real bootstrap policy.
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--secure-port=0",  # no health endpoint needed; also skips authn delegation setup
            "--profiling=false",
        ], detach=detach)
        # fmt: on
        if self.node_mode:
            self._start_node(state, ca_pem, tokens, deadline, detach=detach)
        state.startup_seconds = round(time.monotonic() - started, 2)
        self._save(state)

    def _apiserver_mode_flags(self, keys: pki.Pki) -> list[str]:
        if not self.node_mode:
            # No kubelet, hence no pods to mount tokens into: ServiceAccount admission would
            # only reject pods whose service account does not exist yet.
            return ["--disable-admission-plugins=ServiceAccount"]
        return [
            f"--kubelet-client-certificate={keys.kubelet_client_cert}",
            f"--kubelet-client-key={keys.kubelet_client_key}",
            # The node's InternalIP is the pod bridge's address; its hostname may not resolve.
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _start_node(
        self,
        state: _State,
        ca_pem: bytes,
        tokens: dict[str, str],
        deadline: float,
        *,
        detach: bool,
    ) -> None:
        started = time.monotonic() - state.phases.get(APISERVER, 0.0)

        def kubeconfig(user: str, token: str, context: str) -> str:
            return yaml.safe_dump(_kubeconfig(state.server, ca_pem, user, token, context))

        def spawn(
            argv: list[str], component: str, log_path: Path, detach: bool
        ) -> subprocess.Popen[bytes]:
            return self._popen(argv, component, log_path, detach=detach)

        admin = tokens[ADMIN_USER]
        for obj in clusternet.coredns_rbac():
            self._create(state.server, admin, obj)
        phases = self.node.start(
            binary=state.binary,
            server=state.server,
            ca_file=self.ca_file,
            kubelet_token=tokens[node_mod.KUBELET_USER],
            scheduler_token=tokens[node_mod.SCHEDULER_USER],
            proxy_token=tokens[clusternet.PROXY_USER],
            dns_token=tokens[clusternet.COREDNS_USER],
            service_cidr=SERVICE_CLUSTER_IP_RANGE,
            kubeconfig=kubeconfig,
            detach=detach,
            deadline=deadline,
            spawn=spawn,
        )
        deadline += phases.get(node_mod.QUEUE_PHASE, 0.0)  # the wait for our turn is not start time
        for name, seconds in phases.items():
            state.phases[name] = round(seconds + state.phases.get(APISERVER, 0.0), 2)
        self._wait(
            state,
            f"node {node_mod.NODE_NAME} Ready",
            lambda: self._node_ready(state.server, admin),
            deadline,
        )
        state.phases["node-ready"] = round(time.monotonic() - started, 2)
        self.node.wait_networking(deadline)
        state.phases["kube-proxy+coredns"] = round(time.monotonic() - started, 2)

    def _create(self, server: str, token: str, obj: dict[str, Any]) -> None:
        """POST one cluster-scoped RBAC object (409: it exists, fine)."""
        plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}
        url = f"{server}/apis/rbac.authorization.k8s.io/v1/{plural[str(obj['kind'])]}"
        req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST")
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Content-Type", "application/json")
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx):
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise ClusterError(
                    f"step 'create {obj['kind']}': HTTP {exc.code} {exc.read()[:300]!r}"
                ) from exc

    def _node_ready(self, server: str, token: str) -> bool:
        if not all(self.node.alive().values()):
            dead = [c for c, ok in self.node.alive().items() if not ok]
            raise ClusterError(
                f"step 'node Ready': {', '.join(dead)} exited; logs in {self.log_dir}\n"
                + _log_tail(self.log_file(dead[0]))
            )
        code, body = self._get(f"{server}/api/v1/nodes/{node_mod.NODE_NAME}", token=token)
        if code != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _spawn(self, state: _State, component: str, args: list[str], *, detach: bool) -> None:
        proc = self._popen(
            [state.binary, component, *args], component, self.log_file(component), detach=detach
        )
        self._procs[component] = proc
        state.pids[component] = proc.pid
        self._save(state)

    def _popen(
        self, argv: list[str], component: str, log_path: Path, *, detach: bool
    ) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {component}\n".encode())
            log.flush()
            preexec: Callable[[], None] | None = None if detach else _die_with_parent
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,  # detached from our terminal and its Ctrl-C
                preexec_fn=preexec,  # only a prctl call: safe between fork and exec
            )

    def _wait(self, state: _State, step: str, ready: Callable[[], bool], deadline: float) -> None:
        while True:
            for component, alive in self._alive(state).items():
                if not alive:
                    raise ClusterError(
                        f"step '{step}': {component} exited during startup; "
                        f"log: {self.log_file(component)}\n"
                        f"{_log_tail(self.log_file(component))}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                last = list(state.pids)[-1]
                raise ClusterError(
                    f"step '{step}' timed out; log: {self.log_file(last)}\n"
                    f"{_log_tail(self.log_file(last))}"
                )
            time.sleep(0.1)

    def stop(self, *, timeout: float = 20.0) -> None:
        """Terminate every process of this cluster and remove the state directory.

        Safe to call when nothing runs. Removes the kubeconfigs too; keeps the logs.
        """
        with self._locked():
            self._stop(timeout=timeout)

    def _stop(self, *, timeout: float = 20.0) -> None:
        state = self._state()
        # KServe's controller (if `up --kserve` started one), then the node: their processes must
        # not outlive the API server they talk to.
        self.kserve_controller().stop(remove_webhooks=False)
        self.node.stop(timeout=timeout)
        if state is not None:
            # Controller manager first (it would only log errors otherwise), then the API
            # server, then etcd, so the API server can shut down cleanly against its storage.
            for component in reversed(COMPONENTS):
                pid = state.pids.get(component)
                if pid is not None:
                    self._terminate(pid, state.binary, component, timeout)
        for proc in self._procs.values():  # children from a failed start not yet in state
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._procs.clear()
        for path in (self.kubeconfig, self.tester_kubeconfig):
            path.unlink(missing_ok=True)
        # NB: remove only what we created: --dir might point at a directory with other content.
        for name in _OWNED:
            target = self.state_dir / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()  # only if now empty

    def _terminate(self, pid: int, binary: str, component: str, timeout: float) -> None:
        if not _proc_matches(pid, binary, component):
            _reap(pid)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not _proc_matches(pid, binary, component):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)

    def __enter__(self) -> Cluster:
        self.start(detach=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def status_lines(self) -> Iterator[str]:
        """Human-readable status, one fact per line (no secrets)."""
        state = self._state()
        if state is None:
            yield f"not running (no state in {self.state_dir})"
            return
        alive = self._alive(state)
        for component in COMPONENTS:
            pid = state.pids.get(component)
            yield f"{component:<24} pid {pid} {'running' if alive.get(component) else 'DEAD'}"
        if state.node:
            for component, ok in self.node.alive().items():
                yield f"{component:<24} {'running' if ok else 'DEAD'} (node {node_mod.NODE_NAME})"
        yield f"server                   {state.server}"
        profile = ", ".join(f"{c} {t:.1f}s" for c, t in state.phases.items())
        yield f"startup                  {state.startup_seconds:.1f}s ({profile})"
        yield f"kubeconfig (admin)       {state.kubeconfig}"
        yield f"kubeconfig (tester)      {state.tester_kubeconfig}"
        yield f"logs                     {state.log_dir}"
