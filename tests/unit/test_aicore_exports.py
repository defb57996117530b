"""The aicore package's public surface and its documented error tree stay in step with the code."""

from __future__ import annotations

import inspect

import embedding_operator.aicore as aicore
from embedding_operator.aicore import errors


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(aicore).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(aicore.__all__) == public


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
