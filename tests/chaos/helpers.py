"""What the fault-suite cases share: counting remote objects per model, waiting for convergence."""

from __future__ import annotations

import time
from typing import Any

import yaml

from tests.fixtures.aicore_operator import model
from tests.fixtures.cluster import wait_until

# NB: shorter than the defaults (15/10/2) so the case is quick, long enough for a loaded
# 2-core machine where one renewal can take seconds.
FAST_LEASE = {
    "EMB_LEASE_DURATION_SECONDS": "8",
    "EMB_RENEW_DEADLINE_SECONDS": "6",
    "EMB_RETRY_PERIOD_SECONDS": "1",
}


def apply_models(kubectl: Any, namespace: str, names: list[str], **spec: Any) -> None:
    # NB: in chunks: one apply of 250 objects can outlast kubectl's timeout on a busy machine.
    for i in range(0, len(names), 25):
        docs = [model(name, **spec) for name in names[i : i + 25]]
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def models(kubectl: Any, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json("get", "emb", "-n", namespace)["items"]
    return items


def running(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("aicore", {}).get("deploymentStatus") == "RUNNING"


def wait_all_running(kubectl: Any, namespace: str, count: int, timeout: float) -> float:
    """Seconds until `count` models report a RUNNING deployment."""
    started = time.monotonic()
    wait_until(
        lambda: sum(running(o) for o in models(kubectl, namespace)) == count,
        what=f"{count} models RUNNING",
        timeout=timeout,
    )
    return round(time.monotonic() - started, 1)


def remote_counts(aicore: Any, objs: list[dict[str, Any]]) -> dict[str, int]:
    """Duplicates: remote objects beyond one per model (active deployments only).

    NB: one list per kind, matched in memory by the rules of `aicore_operator.owned`: a list
    per model and kind took minutes with 250 models."""
    listed = {kind: all_remote(aicore, kind) for kind in ("artifacts", "configurations")}
    listed["deployments"] = [
        d
        for d in all_remote(aicore, "deployments")
        if d["status"] in ("PENDING", "RUNNING", "UNKNOWN")
    ]
    dup = dict.fromkeys(listed, 0)
    for obj in objs:
        uid, prefix = (
            obj["metadata"]["uid"],
            f"{obj['metadata']['name']}-{obj['metadata']['uid'][:8]}-",
        )
        mine = {
            "artifacts": [
                a
                for a in listed["artifacts"]
                if {"key": "ext.ai.sap.com/embeddings.ai-uid", "value": uid} in a.get("labels", [])
            ],
            "configurations": [
                c for c in listed["configurations"] if c.get("name", "").startswith(prefix)
            ],
            "deployments": [
                d
                for d in listed["deployments"]
                if d.get("configurationName", "").startswith(prefix)
            ],
        }
        for kind, found in mine.items():
            dup[kind] += max(0, len(found) - 1)
    return dup


def all_remote(aicore: Any, kind: str) -> list[dict[str, Any]]:
    from tests.fixtures.aicore_operator import remote

    items: list[dict[str, Any]] = remote(aicore, f"{kind}?scenarioId=embedding-infinity")[
        "resources"
    ]
    return items


def lease_holder(kubectl: Any, namespace: str) -> str | None:
    proc = kubectl(
        "get", "lease", "embedding-operator", "-n", namespace,
        "-o", "jsonpath={.spec.holderIdentity}", check=False,
    )  # fmt: skip
    return proc.stdout.strip() or None if proc.returncode == 0 else None
