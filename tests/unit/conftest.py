"""The pure tier: a unit test that opens a network connection, binds a port or resolves a name
fails, naming where it belongs (tests/integration). Subprocesses and pipes stay allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"unit tests do no network I/O ({what}); move this to tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", _refuse("create_connection"))
    yield
