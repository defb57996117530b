"""`python -m testcluster up|status|down`: detached start, idempotent `up`, clean `down`.

Starts its own second control plane in a temp dir (the session `cluster` fixture is not used), so
it runs only where the local binary exists; it never touches `.local/`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from testcluster import Cluster, ClusterError, built_binary
from tests.fixtures.cli import run_module
from tests.fixtures.cluster import KUBECTL

pytestmark = pytest.mark.integration


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module("testcluster", *args, timeout=180)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat[stat.rfind(")") + 2 :].startswith("Z")


def test_up_is_detached_idempotent_and_down_cleans_up(tmp_path: Path) -> None:
    try:
        built_binary()
    except ClusterError as exc:
        pytest.skip(str(exc))
    state = tmp_path / "cluster"
    paths = [
        f"--dir={state}",
        f"--kubeconfig={tmp_path / 'kubeconfig'}",
        f"--tester-kubeconfig={tmp_path / 'kubeconfig-tester'}",
        f"--log-dir={tmp_path / 'logs'}",
    ]
    pids: dict[str, int] = {}
    try:
        up = _cli("up", *paths)
        assert up.returncode == 0, up.stderr
        assert "ready in" in up.stdout
        assert "token" not in up.stdout.lower().replace("kubeconfig", "")

        # the processes outlived the `up` command and answer kubectl
        pids = json.loads((state / "state.json").read_text())["pids"]
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert all(_pid_alive(pid) for pid in pids.values())
        get_ns = subprocess.run(
            [KUBECTL, f"--kubeconfig={tmp_path / 'kubeconfig'}", "get", "ns", "kube-system"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert get_ns.returncode == 0, get_ns.stderr
        assert os.stat(tmp_path / "kubeconfig").st_mode & 0o077 == 0  # holds a token

        again = _cli("up", *paths)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert json.loads((state / "state.json").read_text())["pids"] == pids

        assert _cli("status", *paths).returncode == 0
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            assert (tmp_path / "logs" / f"{name}.log").stat().st_size > 0
    finally:
        down = _cli("down", *paths)
    assert down.returncode == 0, down.stderr
    assert not any(_pid_alive(pid) for pid in pids.values())
    assert not state.exists()
    assert not (tmp_path / "kubeconfig").exists()
    assert _cli("status", *paths).returncode == 1


def test_failed_start_names_the_step_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-testcluster"
    broken.write_text('#!/bin/sh\necho "cannot start $1: disk on fire" >&2\nexit 3\n')
    broken.chmod(0o755)
    monkeypatch.setenv("TESTCLUSTER_BIN", str(broken))
    cluster = Cluster(tmp_path / "cluster", log_dir=tmp_path / "logs")

    with pytest.raises(ClusterError) as err:
        cluster.start(timeout=10)

    message = str(err.value)
    assert "step 'etcd health'" in message
    # NB: etcd and the API server start together, so either may be the first seen to exit; the
    # message names that one, its log, and carries the log's tail.
    found = re.search(r"(etcd|kube-apiserver) exited during startup", message)
    assert found, message
    component = found.group(1)
    assert str(tmp_path / "logs" / f"{component}.log") in message
    assert f"cannot start {component}: disk on fire" in message
    assert not (tmp_path / "cluster").exists()  # a failed start leaves no state behind
