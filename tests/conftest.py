"""Shared pytest wiring: each fixture family lives in its own plugin module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.aicore",
    "tests.fixtures.operator",
    "tests.fixtures.images",
    "tests.fixtures.node",
]
