"""Key material for the local control plane: a CA, the API server's serving cert, the service
account signing key and the static bearer tokens.

Generated fresh for every cluster with the `openssl` CLI (present on every Debian machine), so the
package needs no crypto dependency. EC P-256 keys are used because they are generated instantly
(RSA would cost startup time) and kube-apiserver accepts them for serving and for ES256 service
account tokens.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testcluster.errors import ClusterError

#: The API server's names: loopback for us, the in-cluster names for pods that might someday run.
SERVER_SANS = ",".join(
    [
        "IP:127.0.0.1",
        "IP:10.0.0.1",
        "DNS:localhost",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ]
)


@dataclass(frozen=True)
class Identity:
    """A static-token user of the API server (one row of --token-auth-file)."""

    user: str
    token: str
    groups: tuple[str, ...] = ()

    def csv_row(self) -> str:
        groups = ",".join(self.groups)
        # format: token,user,uid,"group1,group2"
        return (
            f'{self.token},{self.user},{self.user},"{groups}"'
            if groups
            else (f"{self.token},{self.user},{self.user}")
        )


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files, all inside one directory."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise ClusterError("step 'generate keys': the `openssl` CLI is not installed")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(
            f"step 'generate keys': openssl {args[0]} failed: {proc.stderr.strip()[-500:]}"
        )


def _ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def generate(directory: Path, identities: list[Identity]) -> Pki:
    """Create the CA, serving cert, service account key pair and token file in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        token_file=directory / "tokens.csv",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    ca_key = directory / "ca.key"
    _ec_key(ca_key)
    # fmt: off
    _openssl(
        "req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "3650",
        "-subj", "/CN=testcluster-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out", str(pki.ca_cert),
    )
    _ec_key(pki.server_key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pki.server_key), "-sha256", "-days", "3650",
        "-CA", str(pki.ca_cert), "-CAkey", str(ca_key),
        "-subj", "/CN=kube-apiserver",
        "-addext", f"subjectAltName={SERVER_SANS}",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext", "extendedKeyUsage=serverAuth",
        "-out", str(pki.server_cert),
    )
    # The API server's client certificate towards a kubelet (logs, exec, port-forward in node mode).
    _ec_key(pki.kubelet_client_key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pki.kubelet_client_key), "-sha256", "-days", "3650",
        "-CA", str(pki.ca_cert), "-CAkey", str(ca_key),
        "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext", "extendedKeyUsage=clientAuth",
        "-out", str(pki.kubelet_client_cert),
    )
    # fmt: on
    ca_key.unlink()  # nothing else is ever signed; don't leave a CA key lying around
    _ec_key(pki.sa_key)
    _openssl("pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub))
    pki.token_file.touch(mode=0o600)
    pki.token_file.write_text("".join(i.csv_row() + "\n" for i in identities))
    return pki
