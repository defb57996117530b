"""Async client for SAP AI Core: service key, token cache, typed resources and the error tree.

Import from here; the submodules are an implementation detail:

- ``servicekey``: ``ServiceKey``, ``parse_service_key``, ``load_service_key``
- ``settings``: ``ClientSettings``, ``RetrySettings``
- ``client``: ``AICoreClient``
- ``session``: the HTTP choke point under it (``FindExisting``, ``ResponseHook``)
- ``models``: typed AI API resources
- ``errors``: the error tree (drawn in its docstring)
"""

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
