"""kopf's login finds the API server in a pod the way client-go and lightkube do (login.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedding_operator.login import in_cluster_connection

POD_ENV = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}


@pytest.fixture
def account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("tok-1\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("team-a")
    return tmp_path


def test_pod_service_account_uses_the_service_host_and_port(account: Path) -> None:
    info = in_cluster_connection(POD_ENV, account)
    assert info is not None
    assert info.server == "https://10.0.0.1:6443"
    assert info.token == "tok-1"
    assert info.ca_path == str(account / "ca.crt")
    assert info.default_namespace == "team-a"


def test_ipv6_host_is_bracketed(account: Path) -> None:
    env = {**POD_ENV, "KUBERNETES_SERVICE_HOST": "fd00::1"}
    info = in_cluster_connection(env, account)
    assert info is not None and info.server == "https://[fd00::1]:6443"


def test_token_is_read_again_on_every_login(account: Path) -> None:
    assert (first := in_cluster_connection(POD_ENV, account)) and first.token == "tok-1"
    (account / "token").write_text("tok-2")  # the kubelet rotated it
    assert (second := in_cluster_connection(POD_ENV, account)) and second.token == "tok-2"


@pytest.mark.parametrize(
    "env",
    [
        {**POD_ENV, "KUBECONFIG": "/some/kubeconfig"},  # an explicit kubeconfig wins, as in kube.py
        {"KUBERNETES_SERVICE_PORT": "6443"},
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
        {},
    ],
    ids=["kubeconfig-set", "no-host", "no-port", "no-env"],
)
def test_not_in_a_pod(account: Path, env: dict[str, str]) -> None:
    assert in_cluster_connection(env, account) is None


def test_no_token_file_is_not_a_pod(tmp_path: Path) -> None:
    assert in_cluster_connection(POD_ENV, tmp_path) is None
