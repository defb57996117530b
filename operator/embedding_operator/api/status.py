"""The `EmbeddingModel` status: what the operator reports, and nothing the user must write.

Status is the UI: `kubectl get emb` columns, `kubectl wait --for=condition=Ready`, Argo CD health
and `kubectl describe` all read from here. Remote IDs are recorded so every step can resume after a
restart without creating a second remote object. No field ever holds a credential.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    # Status is written by the operator, so unknown keys (e.g. from a newer operator) are kept
    # rather than rejected when read back.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_enum_values=True
    )


class Phase(StrEnum):
    """One-word summary for printer columns; conditions carry the detail."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    SUSPENDED = "Suspended"
    FAILED = "Failed"
    DELETING = "Deleting"


class Condition(_Model):
    """metav1.Condition."""

    type: str = Field(description="Condition type: Ready, Reconciling or Stalled.")
    status: str = Field(pattern=r"^(True|False|Unknown)$", description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason; see docs/troubleshooting.md for each one.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int = Field(
        default=0, ge=0, description="metadata.generation this condition was computed for."
    )


class AICoreStatus(_Model):
    """What exists on AI Core for this object."""

    artifact_id: str | None = Field(default=None, description="AI Core artifact ID.")
    configuration_id: str | None = Field(default=None, description="Current configuration ID.")
    configuration_name: str | None = Field(default=None, description="Current configuration name.")
    deployment_id: str | None = Field(default=None, description="AI Core deployment ID.")
    deployment_status: str | None = Field(
        default=None,
        description="Remote status: UNKNOWN, PENDING, RUNNING, STOPPING, STOPPED, DEAD.",
    )
    target_status: str | None = Field(default=None, description="Remote targetStatus.")
    status_message: str | None = Field(
        default=None, max_length=4096, description="AI Core statusMessage."
    )
    deployment_url: str | None = Field(default=None, description="AI Core deploymentUrl.")
    resource_group: str | None = Field(default=None, description="Resource group used.")


class KServeStatus(_Model):
    """The InferenceService behind this object."""

    inference_service_name: str | None = Field(default=None, description="InferenceService name.")
    url: str | None = Field(default=None, description="InferenceService status.url.")


class ServingStatus(_Model):
    """Result of the operator's serving check (one real embedding request)."""

    dimensions: int | None = Field(default=None, description="Embedding size the server returned.")
    image: str | None = Field(default=None, description="Serving image in use.")
    verified: bool | None = Field(
        default=None, description="Whether the last serving check got a valid embedding."
    )
    message: str | None = Field(
        default=None, max_length=4096, description="Why the check was skipped or failed."
    )
    last_checked: str | None = Field(default=None, description="Time of the last check (RFC 3339).")


class EmbeddingSpaceStatus(_Model):
    """The embedding space the object served when it was last Ready (docs/embedding-space.md)."""

    fingerprint: str = Field(
        description=(
            "Short hash of uri, revision, pooling and output flags: store it beside your vector "
            "index; vectors are comparable only within one fingerprint."
        )
    )
    model: str = Field(description="Served model name (not part of the fingerprint).")
    uri: str = Field(description="spec.model.uri that served.")
    revision: str | None = Field(default=None, description="spec.model.revision that served.")
    pooling: str = Field(description="spec.model.pooling that served.")
    output_flags: list[str] = Field(
        default_factory=list,
        description="Output-changing flags from spec.serving.args, e.g. --embedding-dtype=int8.",
    )
    dimensions: int | None = Field(default=None, description="Embedding size served.")


class EmbeddingModelStatus(_Model):
    """Observed state."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status as a whole reflects."
    )
    phase: Phase | None = Field(default=None, description="Pending, Progressing, Ready, ...")
    endpoint: str | None = Field(
        default=None, description="Base URL for OpenAI-style clients (includes the url prefix)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="kstatus conditions: Ready, Reconciling, Stalled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    aicore: AICoreStatus | None = Field(default=None, description="AI Core backend state.")
    kserve: KServeStatus | None = Field(default=None, description="KServe backend state.")
    serving: ServingStatus | None = Field(default=None, description="Serving check result.")
    embedding_space: EmbeddingSpaceStatus | None = Field(
        default=None,
        description=(
            "The embedding space last served; a spec change to another space waits for "
            "confirmation (reason EmbeddingSpaceChange)."
        ),
    )
