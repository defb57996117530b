"""Shared pytest wiring: each fixture family lives in its own plugin module under tests/fixtures,
and the tiers are enforced: a test's folder and its markers must agree."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import pytest

TESTS = Path(__file__).resolve().parent

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.aicore",
    "tests.fixtures.aicore_operator",
    "tests.fixtures.operator",
    "tests.fixtures.images",
    "tests.fixtures.argocd",
    "tests.fixtures.infinity",
    "tests.fixtures.js_sdk",
    "tests.fixtures.logs",
    "tests.fixtures.node",
    "tests.fixtures.helm",
]


def pytest_configure(config: pytest.Config) -> None:
    # NB: Python's default SIGTERM ends pytest without tearing fixtures down, so a CI timeout
    # or `kill` left session clusters (API server, etcd, the node) behind. As KeyboardInterrupt,
    # pytest stops the way Ctrl-C stops it: every fixture's teardown runs.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # One teardown, however often it is sent. NB: a handler, not SIG_IGN, which every process
    # the teardown starts would inherit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """tests/unit is the pure tier (`make test-fast`): no integration/slow markers there, and
    every test under tests/integration or tests/e2e carries `integration`."""
    wrong = []
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        marks = {m.name for m in item.iter_markers()} & {"integration", "slow"}
        if tier == "unit" and marks:
            wrong.append(f"{item.nodeid}: marked {sorted(marks)}; move it to tests/integration")
        elif tier in ("integration", "e2e") and "integration" not in marks:
            wrong.append(f"{item.nodeid}: add pytestmark = pytest.mark.integration")
    if wrong:
        raise pytest.UsageError("tests in the wrong tier:\n" + "\n".join(wrong))
