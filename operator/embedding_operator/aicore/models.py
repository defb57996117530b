"""Typed AI Core resources as the AI API returns them (reference/aicore-api.md §3).

camelCase on the wire, snake_case in Python; unknown fields are ignored so a newer AI Core cannot
break parsing. Only the fields the spec marks required (plus ``id``-like keys) are required here;
everything else has a default, because real servers omit fields the spec lists.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, extra="ignore", frozen=True
    )


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    DEAD = "DEAD"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def _missing_(cls, value: object) -> DeploymentStatus:
        # NB: a status added by a future AI Core must not make the deployment unreadable.
        return cls.UNKNOWN


class TargetStatus(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    DELETED = "DELETED"


class Label(_Model):
    key: str
    value: str


class Scenario(_Model):
    id: str
    name: str
    description: str | None = None
    labels: list[Label] = Field(default_factory=list)
    created_at: datetime | None = None
    modified_at: datetime | None = None


class ExecutableParameter(_Model):
    name: str
    type: str = "string"
    default: str | None = None
    description: str | None = None


class ExecutableArtifact(_Model):
    name: str
    kind: str | None = None
    description: str | None = None
    labels: list[Label] = Field(default_factory=list)


class Executable(_Model):
    id: str
    name: str
    scenario_id: str | None = None
    version_id: str | None = None
    deployable: bool = False
    description: str | None = None
    parameters: list[ExecutableParameter] = Field(default_factory=list)
    input_artifacts: list[ExecutableArtifact] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)
    created_at: datetime | None = None
    modified_at: datetime | None = None


class Artifact(_Model):
    id: str
    name: str
    kind: str
    url: str
    scenario_id: str
    description: str | None = None
    labels: list[Label] = Field(default_factory=list)
    configuration_id: str | None = None
    execution_id: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None

    def label(self, key: str) -> str | None:
        return next((label.value for label in self.labels if label.key == key), None)


class ParameterBinding(_Model):
    key: str
    value: str


class ArtifactBinding(_Model):
    key: str
    artifact_id: str


class Configuration(_Model):
    id: str
    name: str
    scenario_id: str
    executable_id: str
    parameter_bindings: list[ParameterBinding] = Field(default_factory=list)
    input_artifact_bindings: list[ArtifactBinding] = Field(default_factory=list)
    created_at: datetime | None = None

    def parameters(self) -> dict[str, str]:
        return {binding.key: binding.value for binding in self.parameter_bindings}


class Deployment(_Model):
    id: str
    configuration_id: str
    status: DeploymentStatus
    deployment_url: str = ""
    configuration_name: str | None = None
    executable_id: str | None = None
    scenario_id: str | None = None
    target_status: TargetStatus | None = None
    status_message: str | None = None
    last_operation: str | None = None
    """CREATE, UPDATE, DELETE, CASCADE-UPDATE; open-ended, hence a plain string."""
    latest_running_configuration_id: str | None = None
    ttl: str | None = None
    # NB: `details` and `statusDetails` (scaling, resources, status updater) are not kept: the
    # operator reads neither, and in the shared view of 1,000 deployments (aicore_view.py) they
    # were two thirds of the parsed models (5.0 → 1.7 KiB each; bench/RESULTS.md).
    created_at: datetime | None = None
    modified_at: datetime | None = None
    submission_time: datetime | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None


class LogEntry(_Model):
    timestamp: datetime | None = None
    msg: str = ""
    container: str | None = None
    pod: str | None = None
    stream: str | None = None


class Meta(_Model):
    """``GET /lm/meta``; only the version is interpreted, the rest is kept raw."""

    runtime_identifier: str | None = None
    runtime_api_version: str | None = None
    ai_api: dict[str, JsonValue] = Field(default_factory=dict)
    extensions: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def ai_api_version(self) -> str | None:
        version = self.ai_api.get("version")
        return version if isinstance(version, str) else None


class Created(_Model):
    """Answer to a create call (artifact, configuration or deployment).

    ``recovered`` is True when a retried POST found the object it had already created (through the
    caller's ``find``) instead of creating a second one; ``message`` then says so.
    """

    id: str
    message: str = ""
    url: str | None = None
    deployment_url: str | None = None
    status: DeploymentStatus | None = None
    ttl: str | None = None
    recovered: bool = False


class Accepted(_Model):
    """Answer to PATCH/DELETE of a deployment: ``{id, message}``."""

    id: str | None = None
    message: str = ""
