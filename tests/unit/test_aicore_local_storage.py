"""The emulator's storage initializer: artifact URLs that cannot be served kill the deployment
with a message (DEAD, as on AI Core) instead of crashing a background task or leaving its root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aicore_local.errors import ApiError
from aicore_local.lifecycle import parse_ttl
from aicore_local.model import ObjectStoreSecret
from aicore_local.storage import StorageError, initialize, resolve_artifact_url


def secret(name: str = "default") -> ObjectStoreSecret:
    return ObjectStoreSecret(
        name=name, type="S3", bucket=None, endpoint=None, region=None, path_prefix=None,
        verifyssl=None, usehttps=None, created_at=0.0,
    )  # fmt: skip


def test_a_dot_dot_url_is_not_resolved_outside_the_object_store(tmp_path: Path):
    url = "ai://default/models/../../../etc"
    assert resolve_artifact_url(url, tmp_path, lambda _: secret()) == url
    with pytest.raises(StorageError, match="'..' segment"):
        asyncio.run(initialize(url, tmp_path / "dest", lambda _: None))


def test_a_plain_url_resolves_below_the_secret_root(tmp_path: Path):
    resolved = resolve_artifact_url("ai://default/models/m", tmp_path, lambda _: secret())
    assert resolved == (tmp_path / "objectstore" / "default" / "models" / "m").as_uri()


def test_an_over_long_segment_is_a_storage_error_not_a_crash(tmp_path: Path):
    uri = (tmp_path / ("m" * 300)).as_uri()
    with pytest.raises(StorageError, match="cannot copy"):
        asyncio.run(initialize(uri, tmp_path / "dest", lambda _: None))


@pytest.mark.parametrize("ttl", ["9" * 5000 + "d", "1" * 7 + "m"])
def test_an_over_long_ttl_is_a_400_not_a_500(ttl: str):
    with pytest.raises(ApiError) as error:
        parse_ttl(ttl)
    assert error.value.status == 400
    assert "Invalid ttl" in str(error.value.message)
