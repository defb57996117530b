"""Async client for SAP AI Core: service key, token cache, typed resources and the error tree.

Import from here; the submodules are an implementation detail:

- ``servicekey``: ``ServiceKey``, ``parse_service_key``, ``load_service_key``
- ``settings``: ``ClientSettings``, ``RetrySettings``
- ``client``: ``AICoreClient``
- ``session``: the HTTP choke point under it (``FindExisting``, ``ResponseHook``)
- ``models``: typed AI API resources
- ``errors``: the error tree (drawn in its docstring)
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# NB: the typed models are pure, and the operator's pure plan (plan/aicore.py) imports them;
# importing `aicore.models` runs this file first, so the I/O submodules (httpx) load only when one
# of their names is used (PEP 562), and the pure core stays free of httpx even transitively.
if TYPE_CHECKING:
    from .client import AICoreClient
    from .errors import (
        AICoreError,
        AICoreRequestError,
        AICoreResponseError,
        AICoreStatusError,
        Conflict,
        InvalidRequest,
        NotFound,
        RateLimited,
        ServerError,
        ServiceKeyError,
        Unauthorized,
    )
    from .models import (
        Accepted,
        Artifact,
        ArtifactBinding,
        Configuration,
        Created,
        Deployment,
        DeploymentStatus,
        Executable,
        ExecutableArtifact,
        ExecutableParameter,
        Label,
        LogEntry,
        Meta,
        ParameterBinding,
        Scenario,
        TargetStatus,
    )
    from .servicekey import ServiceKey, load_service_key, parse_service_key
    from .session import FindExisting, ResponseHook
    from .settings import ClientSettings, RetrySettings

_HOME = {
    **dict.fromkeys(("AICoreClient",), ".client"),
    **dict.fromkeys(
        (
            "AICoreError",
            "AICoreRequestError",
            "AICoreResponseError",
            "AICoreStatusError",
            "Conflict",
            "InvalidRequest",
            "NotFound",
            "RateLimited",
            "ServerError",
            "ServiceKeyError",
            "Unauthorized",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "Accepted",
            "Artifact",
            "ArtifactBinding",
            "Configuration",
            "Created",
            "Deployment",
            "DeploymentStatus",
            "Executable",
            "ExecutableArtifact",
            "ExecutableParameter",
            "Label",
            "LogEntry",
            "Meta",
            "ParameterBinding",
            "Scenario",
            "TargetStatus",
        ),
        ".models",
    ),
    **dict.fromkeys(("ServiceKey", "load_service_key", "parse_service_key"), ".servicekey"),
    **dict.fromkeys(("FindExisting", "ResponseHook"), ".session"),
    **dict.fromkeys(("ClientSettings", "RetrySettings"), ".settings"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value  # NB: once per name, then a plain module attribute
    return value


__all__ = [
    "AICoreClient",
    "AICoreError",
    "AICoreRequestError",
    "AICoreResponseError",
    "AICoreStatusError",
    "Accepted",
    "Artifact",
    "ArtifactBinding",
    "ClientSettings",
    "Configuration",
    "Conflict",
    "Created",
    "Deployment",
    "DeploymentStatus",
    "Executable",
    "ExecutableArtifact",
    "ExecutableParameter",
    "FindExisting",
    "InvalidRequest",
    "Label",
    "LogEntry",
    "Meta",
    "NotFound",
    "ParameterBinding",
    "RateLimited",
    "ResponseHook",
    "RetrySettings",
    "Scenario",
    "ServerError",
    "ServiceKey",
    "ServiceKeyError",
    "TargetStatus",
    "Unauthorized",
    "load_service_key",
    "parse_service_key",
]
