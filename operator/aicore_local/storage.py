"""The object store stand-in and KServe's storage initializer.

Each object store secret maps to a local directory: `<data>/objectstore/<secret>/<pathPrefix>/`,
or the directory named by a `file://` endpoint on the secret (an emulator extension). An artifact
`ai://<secret>/<path>` resolves below it. The storage initializer copies the resolved STORAGE_URI
into the deployment's own `/mnt/models` stand-in, as KServe does before the predictor starts.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from .model import ObjectStoreSecret


class StorageError(Exception):
    """The model could not be fetched; the message becomes the deployment's statusMessage."""


def secret_root(data_dir: Path, secret: ObjectStoreSecret) -> Path:
    if secret.endpoint and secret.endpoint.startswith("file://"):
        root = Path(unquote(urlparse(secret.endpoint).path))
    else:
        root = data_dir / "objectstore" / secret.name
    if secret.path_prefix:
        root = root / secret.path_prefix.strip("/")
    return root


def resolve_artifact_url(
    url: str, data_dir: Path, lookup: Callable[[str], ObjectStoreSecret | None]
) -> str:
    """`ai://secret/path` -> `file:///…` when the secret exists; anything else is returned as is
    (the storage initializer reports it when the deployment starts, as on real AI Core)."""
    parsed = urlparse(url)
    if parsed.scheme != "ai":
        return url
    secret = lookup(parsed.netloc)
    if secret is None or ".." in parsed.path.split("/"):
        return url  # NB: never a file:// path outside the secret's root; `initialize` refuses it
    return (secret_root(data_dir, secret) / parsed.path.lstrip("/")).as_uri()


async def initialize(storage_uri: str | None, dest: Path, log: Callable[[str], None]) -> None:
    """Copy the model into `dest` (created empty when there is no STORAGE_URI)."""
    if not storage_uri:
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
        return
    parsed = urlparse(storage_uri)
    if ".." in parsed.path.split("/"):
        # NB: the path would resolve outside the object store secret's root.
        raise StorageError(
            f"storage initializer: {storage_uri} has a '..' segment; an artifact must name a "
            "path inside its object store secret"
        )
    if parsed.scheme == "ai":
        raise StorageError(
            f"storage initializer: object store secret '{parsed.netloc}' of {storage_uri} does "
            "not exist in the deployment's resource group"
        )
    if parsed.scheme != "file":
        raise StorageError(
            f"storage initializer: scheme '{parsed.scheme}' of STORAGE_URI is not available in "
            "the local AI Core (use an ai://<objectStoreSecret>/<path> artifact)"
        )
    log(f"Copying contents of {storage_uri} to local")
    try:
        await asyncio.to_thread(_copy, Path(unquote(parsed.path)), dest, storage_uri)
    except OSError as error:  # e.g. ENAMETOOLONG: the deployment dies, as on AI Core
        raise StorageError(
            f"storage initializer: cannot copy {storage_uri}: {error.strerror}"
        ) from None
    log(f"Successfully copied {storage_uri} to {dest}")


def _copy(src: Path, dest: Path, storage_uri: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    elif src.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.name)
    else:
        raise StorageError(f"storage initializer: {storage_uri} does not exist in the object store")
