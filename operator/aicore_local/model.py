"""In-memory records of the emulated AI Core objects and their wire (camelCase JSON) shapes.

The wire shapes carry every field the official SDK's model constructors require (aicore-api.md §8);
several of those constructors take no `**kwargs`, so extra keys are as fatal as missing ones.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

DEPLOYMENT_STATUSES = ("PENDING", "RUNNING", "COMPLETED", "DEAD", "STOPPING", "STOPPED", "UNKNOWN")


def now() -> float:
    return time.time()


def rfc3339(ts: float | None) -> str | None:
    """`YYYY-MM-DDTHH:MM:SSZ`, the format recent real captures use."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_ms(ts: float) -> str:
    """Log timestamps: sub-second precision with `+00:00`, as real deployment logs show."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_deployment_id() -> str:
    return "d" + secrets.token_hex(8)[:15]


def labels_wire(labels: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in labels]


@dataclass
class ResourceGroup:
    id: str
    labels: list[tuple[str, str]]
    created_at: float
    status: str = "PROVISIONED"
    status_message: str = ""

    def wire(self) -> dict[str, Any]:
        return {
            "resourceGroupId": self.id,
            "tenantId": "aicore-local-tenant",
            "zoneId": "aicore-local-zone",
            "createdAt": rfc3339(self.created_at),
            "labels": labels_wire(self.labels),
            "status": self.status,
            "statusMessage": self.status_message,
            "servicePlan": "extended",
        }


@dataclass
class ObjectStoreSecret:
    name: str
    type: str
    bucket: str | None
    endpoint: str | None
    region: str | None
    path_prefix: str | None
    verifyssl: str | None
    usehttps: str | None
    created_at: float

    def wire(self) -> dict[str, Any]:
        meta = {
            "storage.ai.sap.com/type": self.type,
            "storage.ai.sap.com/bucket": self.bucket or "",
            "storage.ai.sap.com/endpoint": self.endpoint or "",
            "storage.ai.sap.com/region": self.region or "",
            "storage.ai.sap.com/pathPrefix": self.path_prefix or "",
        }
        if self.endpoint:
            meta["serving.kubeflow.org/s3-endpoint"] = self.endpoint
        return {"name": self.name, "metadata": meta}


@dataclass
class Artifact:
    id: str
    resource_group: str
    name: str
    kind: str
    url: str
    scenario_id: str
    description: str | None
    labels: list[tuple[str, str]]
    created_at: float

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "scenarioId": self.scenario_id,
            "createdAt": rfc3339(self.created_at),
            "modifiedAt": rfc3339(self.created_at),
        }
        if self.description is not None:
            out["description"] = self.description
        if self.labels:
            out["labels"] = labels_wire(self.labels)
        return out


@dataclass
class Configuration:
    id: str
    resource_group: str
    name: str
    scenario_id: str
    executable_id: str
    parameter_bindings: list[tuple[str, str]]
    artifact_bindings: list[tuple[str, str]]
    created_at: float

    def parameters(self) -> dict[str, str]:
        return dict(self.parameter_bindings)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scenarioId": self.scenario_id,
            "executableId": self.executable_id,
            "parameterBindings": [{"key": k, "value": v} for k, v in self.parameter_bindings],
            "inputArtifactBindings": [
                {"key": k, "artifactId": a} for k, a in self.artifact_bindings
            ],
            "createdAt": rfc3339(self.created_at),
        }


@dataclass
class LogEntry:
    timestamp: float
    msg: str
    container: str
    stream: str
    pod: str

    def wire(self) -> dict[str, Any]:
        return {
            "timestamp": rfc3339_ms(self.timestamp),
            "msg": self.msg,
            "container": self.container,
            "pod": self.pod,
            "stream": self.stream,
        }


@dataclass
class LogBuffer:
    """Recent log lines of one deployment (all its predictor generations)."""

    entries: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=20000))

    def add(self, msg: str, *, container: str, stream: str, pod: str) -> None:
        if not msg.endswith("\n"):
            msg += "\n"
        self.entries.append(LogEntry(now(), msg, container, stream, pod))


@dataclass
class Deployment:
    id: str
    resource_group: str
    configuration_id: str
    configuration_name: str
    scenario_id: str
    executable_id: str
    created_at: float
    ttl: str | None
    status: str = "UNKNOWN"
    target_status: str = "RUNNING"
    status_message: str | None = None
    last_operation: str = "CREATE"
    latest_running_configuration_id: str | None = None
    deployment_url: str = ""
    modified_at: float = 0.0
    submission_time: float | None = None
    start_time: float | None = None
    completion_time: float | None = None
    resource_plan: str | None = None
    min_replicas: int = 1
    max_replicas: int = 1
    running_replicas: int = 0
    generation: int = 0
    logs: LogBuffer = field(default_factory=LogBuffer)

    def touch(self) -> None:
        self.modified_at = now()

    def set_status(self, status: str, message: str | None = None) -> None:
        self.status = status
        if message is not None:
            self.status_message = message[:256]
        if status == "RUNNING":
            self.start_time = now()
        if status in ("DEAD", "STOPPED", "COMPLETED"):
            self.completion_time = now()
        self.touch()

    def details(self) -> dict[str, Any]:
        scaling = {
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "runningReplicas": self.running_replicas,
        }
        resources: dict[str, Any] = {"resourcePlan": self.resource_plan or "starter"}
        # NB: real captures carry both spellings (java-fixture hasStoppedDeployment.json).
        return {
            "scaling": {
                "backendDetails": {"predictor": scaling},
                "backend_details": {"predictor": scaling},
            },
            "resources": {
                "backendDetails": {"predictor": resources},
                "backend_details": {"predictor": resources},
            },
        }

    def status_details(self) -> dict[str, Any]:
        return (
            {"aiApiDetails": {}}
            if not self.status_message
            else {
                "aiApiDetails": {"statusUpdater": {"message": [{"message": self.status_message}]}}
            }
        )

    def wire(self, *, with_status_details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "deploymentUrl": self.deployment_url,
            "configurationId": self.configuration_id,
            "configurationName": self.configuration_name,
            "executableId": self.executable_id,
            "scenarioId": self.scenario_id,
            "status": self.status,
            "targetStatus": self.target_status,
            "lastOperation": self.last_operation,
            "ttl": self.ttl,
            "details": self.details(),
            "createdAt": rfc3339(self.created_at),
            "modifiedAt": rfc3339(self.modified_at),
            "submissionTime": rfc3339(self.submission_time),
        }
        # NB: AI Core leaves these keys out until they have a value (typed clients read a
        # present null as a value: the JavaScript SDK's types have no null for them).
        optional = {
            "latestRunningConfigurationId": self.latest_running_configuration_id,
            "startTime": rfc3339(self.start_time),
            "completionTime": rfc3339(self.completion_time),
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.status_message:
            out["statusMessage"] = self.status_message
        if with_status_details:
            out["statusDetails"] = self.status_details()
        return out

    def wire_status(self) -> dict[str, Any]:
        """`$select=status`: exactly the keys `DeploymentGetStatusResponse` accepts."""
        return {
            "id": self.id,
            "configurationId": self.configuration_id,
            "status": self.status,
            "createdAt": rfc3339(self.created_at),
            "modifiedAt": rfc3339(self.modified_at),
            "statusDetails": self.status_details(),
            "details": self.details(),
        }


@dataclass
class Repository:
    name: str
    url: str
    username: str
    created_at: float


@dataclass
class Application:
    name: str
    repository_url: str
    revision: str
    path: str
    created_at: float

    def template_dir(self) -> Path | None:
        """Emulator extension: a `file://` repository URL makes `<repo>/<path>` a template dir."""
        parsed = urlparse(self.repository_url)
        if parsed.scheme != "file":
            return None
        return Path(unquote(parsed.path)) / self.path.strip("/")
