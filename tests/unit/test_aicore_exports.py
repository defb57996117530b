"""The aicore package's public surface and its documented error tree stay in step with the code."""

from __future__ import annotations

import ast
import importlib
import inspect

import embedding_operator.aicore as aicore
from embedding_operator.aicore import errors


def test_all_lists_exactly_the_public_names() -> None:
    # NB: the names load lazily (aicore/__init__.py); the TYPE_CHECKING imports are what mypy and
    # readers see, `_HOME` is what runs: both must be exactly __all__, and every name resolves.
    tree = ast.parse(inspect.getsource(aicore))
    typed = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    }
    assert set(aicore.__all__) == typed == set(aicore._HOME)
    for name in aicore.__all__:
        home = importlib.import_module(aicore._HOME[name], aicore.__name__)
        assert getattr(aicore, name) is getattr(home, name), name


def test_error_tree_in_docstring_names_every_error_class() -> None:
    classes = [
        cls
        for cls in vars(errors).values()
        if inspect.isclass(cls) and issubclass(cls, errors.AICoreError)
    ]
    assert len(classes) >= 10
    doc = errors.__doc__ or ""
    for cls in classes:
        assert f"── {cls.__name__} " in doc or cls is errors.AICoreError, cls.__name__
        assert cls.__name__ in aicore.__all__, cls.__name__
