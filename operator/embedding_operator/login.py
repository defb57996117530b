"""kopf's credentials: the same source the operator's lightkube client uses (kube.py).

Rule, in this order: $KUBECONFIG when set; else the pod's ServiceAccount (token, CA and namespace
mounted under /var/run/secrets/kubernetes.io/serviceaccount) at
https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, exactly as client-go and lightkube find
the API server in a pod; else ~/.kube/config.

NB: kopf's built-in service-account login ignores those two variables and always connects to
https://kubernetes.default.svc, which needs cluster DNS: it fails in a pod with hostNetwork and
dnsPolicy Default, and in any container that runs outside a cluster with a mounted token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_connection(
    environ: Mapping[str, str],
    account_dir: Path = SERVICE_ACCOUNT_DIR,
    *,
    trust_env: bool = False,
) -> kopf.ConnectionInfo | None:
    """The pod's ServiceAccount connection, or None outside a pod (or when KUBECONFIG is set)."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token_path = account_dir / "token"
    if environ.get("KUBECONFIG") or not host or not port or not token_path.is_file():
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    # NB: read on every login: kopf logs in again on a 401, and the kubelet rotates this file.
    token = token_path.read_text().strip()
    namespace_path = account_dir / "namespace"
    namespace = namespace_path.read_text().strip() if namespace_path.is_file() else None
    ca_path = account_dir / "ca.crt"
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(ca_path) if ca_path.is_file() else None,
        token=token or None,
        default_namespace=namespace or None,
        trust_env=trust_env,  # as kopf's own logins: honour proxy variables only if configured
    )


def connection(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's login handler (registered in handlers.py)."""
    connection = in_cluster_connection(os.environ, trust_env=settings.networking.trust_env)
    if connection is not None:
        return connection
    return kopf.login_with_kubeconfig(settings=settings, **kwargs)
