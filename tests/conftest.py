"""Shared pytest wiring: each fixture family lives in its own plugin module under tests/fixtures,
and the tiers are enforced: a test's folder and its markers must agree."""

from __future__ import annotations

from pathlib import Path

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
