"""Image names as the node's CRI plugin spells them (testcluster.node._normalized)."""

from __future__ import annotations

import pytest

from testcluster.node import _normalized


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("busybox:1", "docker.io/library/busybox:1"),
        ("embedding-infinity:check", "docker.io/library/embedding-infinity:check"),
        ("team/app:2", "docker.io/team/app:2"),
        ("localhost/embedding-infinity:dev", "localhost/embedding-infinity:dev"),
        (
            "ghcr.io/embedding-operator/embedding-infinity:0.1.0",
            "ghcr.io/embedding-operator/embedding-infinity:0.1.0",
        ),
        ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
    ],
)
def test_names_are_normalised_like_the_cri(name: str, expected: str) -> None:
    assert _normalized(name) == expected
