"""Import rules that keep the core pure (architecture.md): checked on the source, like an
import-linter contract, so a violation fails the build instead of waiting for review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "operator"
IO_LIBRARIES = {"httpx", "kopf", "lightkube", "kubernetes", "aiohttp", "subprocess", "socket"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(pattern: str) -> list[Path]:
    return sorted(SRC.glob(pattern))


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


PURE = [
    *modules("embedding_operator/api/*.py"),
    *modules("embedding_operator/plan/*.py"),
    SRC / "embedding_operator/serving.py",
    SRC / "embedding_operator/report.py",
]


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_modules_do_no_io(path: Path):
    assert not top(imports_of(path)) & IO_LIBRARIES


@pytest.mark.parametrize(
    "path", modules("embedding_operator/aicore/*.py"), ids=lambda p: str(p.relative_to(SRC))
)
def test_aicore_client_knows_nothing_of_kubernetes(path: Path):
    assert not top(imports_of(path)) & {"kopf", "lightkube", "kubernetes"}
    assert not any(
        n.startswith("embedding_operator.")
        and not n.startswith("embedding_operator.aicore")
        and n != "embedding_operator.redact"
        for n in imports_of(path)
    )


@pytest.mark.parametrize(
    "path", modules("embedding_operator/**/*.py"), ids=lambda p: str(p.relative_to(SRC))
)
def test_operator_never_imports_the_local_ai_core(path: Path):
    assert "aicore_local" not in top(imports_of(path))
    assert "testcluster" not in top(imports_of(path))


@pytest.mark.parametrize(
    "path", modules("aicore_local/**/*.py"), ids=lambda p: str(p.relative_to(SRC))
)
def test_local_ai_core_never_imports_the_operator(path: Path):
    assert "embedding_operator" not in top(imports_of(path))


def test_only_handlers_and_runner_import_kopf():
    users = {
        str(p.relative_to(SRC))
        for p in modules("embedding_operator/**/*.py")
        if "kopf" in top(imports_of(p))
    }
    kopf_wiring = {"handlers.py", "runner.py", "login.py"}
    assert users <= {f"embedding_operator/{name}" for name in kopf_wiring}, users
