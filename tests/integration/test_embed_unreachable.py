"""`embedding-operator embed` when the Kubernetes API server cannot be reached: a real refused
connection (loopback port 9), a one-line error naming the API server, no token echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedding_operator.cli import main

pytestmark = pytest.mark.integration


def test_main_reports_unreachable_api_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    code = main(["embed", "m", "--kubeconfig", str(kubeconfig), "hello"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("error: cannot reach the Kubernetes API server")
    assert "not-a-real-token" not in err
