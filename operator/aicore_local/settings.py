"""Emulator settings: one documented dataclass, filled by `python -m aicore_local serve`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .auth import DEFAULT_TOKEN_LIFETIME_S


@dataclass
class Settings:
    data_dir: Path
    """Root of the emulator's files: objectstore/<secret>/…, deployments/<id>/<gen>/, pids/."""
    public_url: str
    """AI_API_URL as clients see it (scheme://host:port); deploymentUrl is built from it."""
    client_id: str
    client_secret: str
    template_dirs: list[Path] = field(default_factory=list)
    """Directories of ServingTemplate YAML: the stand-in for the git repository AI Core syncs."""
    runtime: str = "process"
    """Default predictor runtime: process | shared | podman | noop | kserve (switchable through
    faults)."""
    kubeconfig: Path | None = None
    """Cluster of the kserve runtime; None: $KUBECONFIG (or ~/.kube/config)."""
    kserve_namespace: str = "aicore-local"
    """Namespace the kserve runtime puts its InferenceServices and object store volume in."""
    infinity_venv: Path | None = None
    """Venv whose bin/ goes first on the predictor's PATH (process runtime)."""
    entrypoint: Path | None = None
    """The image entrypoint stand-in; default <repo>/image/run.sh, else an infinity_emb fallback."""
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
    state_conflict_status: int = 412
    """HTTP status of a lifecycle state conflict (the spec allows 400 or 412; unconfirmed)."""
    unknown_s: float = 0.5
    """How long a new deployment stays UNKNOWN before PENDING."""
    stopping_s: float = 0.2
    """Extra time a stopping deployment stays STOPPING after its predictor is gone."""
    delete_s: float = 0.5
    """How long a deleted deployment stays visible with targetStatus DELETED."""
    ready_timeout_s: float = 600.0
    """A predictor that is not healthy by then makes the deployment DEAD."""
    rg_provision_s: float = 1.0
    """How long a new resource group stays PROVISIONING."""
    persist: bool = True
    """Keep objects in <data_dir>/state.json across restarts (persistence.py)."""
    save_interval_s: float = 0.2
    """How often background changes (deployment status) are written; API writes save at once."""
    sync_interval_s: float = 30.0
    """Periodic template re-sync (AI Core syncs about every 3 min); 0 disables it."""
