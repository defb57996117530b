"""The import contracts (pyproject.toml [tool.importlinter], run by `make lint`) keep watching
every module: a new module must get a layer, and the pure core must stay in the I/O ban.

The contracts themselves are import-linter's job (transitive, third-party packages included);
these tests only stop the configuration from drifting away from the code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "embedding_operator"


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    return {f"embedding_operator.{n}" for n in names}


def test_every_operator_module_has_a_layer():
    layered = {
        name.strip() for layer in contracts()["layers"]["layers"] for name in layer.split("|")
    }
    assert top_level_modules() - layered == set()
    assert layered - top_level_modules() == set(), "a layer names a module that is gone"


def test_the_pure_core_is_banned_from_io_libraries_and_the_shell():
    pure = contracts()["pure-core"]
    for module in ("api", "plan", "serving", "report", "redact"):
        assert f"embedding_operator.{module}" in pure["source_modules"]
    for banned in ("kopf", "lightkube", "httpx", "embedding_operator.backends"):
        assert banned in pure["forbidden_modules"]


def test_make_lint_runs_the_contracts():
    lint = (ROOT / "Makefile").read_text().split("\nlint:")[1].split("\n\n")[0]
    assert "lint-imports" in lint
