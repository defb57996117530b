"""The fault suite (issue 15): each case reproduces one failure scenario against the real API
server and the local AI Core on loopback, bounded in time, and prints its figures.

Cases marked `chaos_long` (kill loops, storms, bursts of hundreds of models) run only with
`make chaos` (`--chaos`); the rest also run in `make test`. Every case appends one JSON line of
figures to $CHAOS_RESULTS (default .local/chaos-results.jsonl), which docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import REPO_ROOT


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos", action="store_true", help="also run the long fault-suite cases")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_long: long fault-suite case (make chaos only)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--chaos"):
        return
    skip = pytest.mark.skip(reason="long fault-suite case: run `make chaos`")
    for item in items:
        if "chaos_long" in item.keywords:
            item.add_marker(skip)


class Figures:
    """The numbers one case reports: printed, and appended to the results file."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.values: dict[str, Any] = {}
        self.started = time.monotonic()

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def write(self) -> None:
        self.values.setdefault("wall_seconds", round(time.monotonic() - self.started, 1))
        line = json.dumps({"case": self.case, **self.values}, sort_keys=True)
        print(f"\nCHAOS {line}")
        path = Path(os.environ.get("CHAOS_RESULTS", REPO_ROOT / ".local" / "chaos-results.jsonl"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(line + "\n")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Any:
    fig = Figures(request.node.name)
    yield fig
    fig.write()


@pytest.fixture
def aicore_key(kubectl: Any, namespace: str, aicore: Any) -> str:
    """The local AI Core's service key as the Secret the test models reference."""
    from tests.fixtures.aicore_operator import SECRET

    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    return SECRET
