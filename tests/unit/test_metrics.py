"""Metrics: what the reconciler records per pass, the phase gauge's life cycle, the AI Core hook,
each against a fresh CollectorRegistry (the `/metrics` endpoint, which opens a port, is
tests/integration/test_metrics_endpoint.py).

The reconciler runs for real with a stand-in backend and a stand-in Kubernetes client (only the
status patch is needed); the operator process with real AI Core traffic is covered by
tests/integration/test_metrics.py.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.backends.base import Finalized, Reconciled
from embedding_operator.metrics import Metrics
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings
from tests.fixtures.reconciler import FakeBackend, FakeKube, body

LOG = logging.getLogger("test")
RECONCILES = "embedding_operator_reconciliations_total"
DURATION = "embedding_operator_reconcile_duration_seconds"
AICORE = "embedding_operator_aicore_request_duration_seconds"
PHASES = "embedding_operator_embeddingmodels"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def reconciler(metrics: Metrics, backend: FakeBackend, kube: FakeKube) -> Reconciler:
    return Reconciler(
        kube,  # type: ignore[arg-type]
        {"kserve": backend, "aicore": backend},
        Settings(),
        post_event=lambda body, event: None,
        metrics=metrics,
    )


def count(registry: CollectorRegistry, backend: str, result: str) -> float:
    return registry.get_sample_value(RECONCILES, {"backend": backend, "result": result}) or 0.0


def phase(registry: CollectorRegistry, name: str, backend: str = "kserve") -> float | None:
    return registry.get_sample_value(PHASES, {"backend": backend, "phase": name})


@pytest.mark.parametrize(
    ("outcome", "result", "phase_name"),
    [
        (Outcome.ready(Reason.SERVING_VERIFIED, "ok"), "ready", "Ready"),
        (Outcome.progressing(Reason.CREATING, "creating"), "progressing", "Progressing"),
        (Outcome.stalled(Reason.KSERVE_NOT_INSTALLED, "install"), "stalled", "Failed"),
        (Outcome.suspended(Reason.SUSPENDED, "suspended"), "suspended", "Suspended"),
    ],
)
async def test_each_outcome_is_counted_timed_and_sets_the_phase(
    reconciler, backend, registry, outcome, result, phase_name
):
    backend.next = Reconciled(outcome, requeue_after=5)
    assert await reconciler.reconcile(body(), LOG) == 5
    assert count(registry, "kserve", result) == 1
    assert sum(count(registry, "kserve", r) for r in ("ready", "progressing", "stalled")) <= 1
    assert registry.get_sample_value(f"{DURATION}_count", {"backend": "kserve"}) == 1
    assert phase(registry, phase_name) == 1
    others = [p for p in ("Ready", "Progressing", "Failed", "Suspended") if p != phase_name]
    assert all(phase(registry, p) == 0 for p in others)


async def test_a_backend_exception_counts_as_error(reconciler, backend, registry):
    backend.next = RuntimeError("bug")
    await reconciler.reconcile(body(), LOG)
    assert count(registry, "kserve", "error") == 1
    assert count(registry, "kserve", "progressing") == 0
    # The status it wrote says Progressing (InternalError), and so does the gauge.
    assert phase(registry, "Progressing") == 1


async def test_a_failed_status_write_counts_as_error_and_keeps_the_last_phase(
    reconciler, kube, registry
):
    await reconciler.reconcile(body(), LOG)
    kube.fail = True
    with pytest.raises(RuntimeError):
        await reconciler.reconcile(body(), LOG)
    assert count(registry, "kserve", "ready") == 1
    assert count(registry, "kserve", "error") == 1
    assert registry.get_sample_value(f"{DURATION}_count", {"backend": "kserve"}) == 2
    assert phase(registry, "Ready") == 1


async def test_an_invalid_spec_is_stalled_under_its_backend(reconciler, registry):
    await reconciler.reconcile(body(backend="aicore", bogus=1), LOG)  # unknown field
    assert count(registry, "aicore", "stalled") == 1
    assert phase(registry, "Failed", backend="aicore") == 1


async def test_an_unknown_backend_value_is_not_a_label(reconciler, registry):
    await reconciler.reconcile(body(backend="not-a-backend"), LOG)
    assert count(registry, "unknown", "stalled") == 1
    assert count(registry, "not-a-backend", "stalled") == 0


async def test_objects_are_counted_once_each_and_dropped_when_deleted(
    reconciler, backend, registry
):
    await reconciler.reconcile(body("a"), LOG)
    await reconciler.reconcile(body("a"), LOG)
    await reconciler.reconcile(body("b"), LOG)
    assert phase(registry, "Ready") == 2

    backend.finalized = Finalized(done=False, message="stopping")
    await reconciler.finalize(body("a"), LOG)
    assert phase(registry, "Ready") == 1 and phase(registry, "Deleting") == 1

    backend.finalized = Finalized(done=True, message="gone")
    await reconciler.finalize(body("a"), LOG)
    assert phase(registry, "Ready") == 1 and phase(registry, "Deleting") == 0


def test_every_phase_of_every_backend_is_exported_before_any_object(registry, metrics):
    samples = {
        (s.labels["backend"], s.labels["phase"]): s.value
        for family in registry.collect()
        if family.name == PHASES
        for s in family.samples
    }
    assert samples[("aicore", "Failed")] == 0 and samples[("kserve", "Ready")] == 0
    assert len(samples) == 2 * 6


def test_aicore_hook_labels_by_template_method_and_status(registry, metrics):
    metrics.aicore_response("/lm/deployments/{deployment}", "GET", 200, 0.2)
    metrics.aicore_response("/lm/deployments/{deployment}", "GET", 200, 0.4)
    metrics.aicore_response("/lm/deployments", "POST", None, 5.0)
    labels = {"endpoint": "/lm/deployments/{deployment}", "method": "GET", "status": "200"}
    assert registry.get_sample_value(f"{AICORE}_count", labels) == 2
    assert registry.get_sample_value(f"{AICORE}_sum", labels) == pytest.approx(0.6)
    none = {"endpoint": "/lm/deployments", "method": "POST", "status": "none"}
    assert registry.get_sample_value(f"{AICORE}_count", none) == 1
    assert registry.get_sample_value(f"{AICORE}_bucket", {**none, "le": "2.5"}) == 0


async def test_without_metrics_the_reconciler_still_works(backend, kube):
    plain = Reconciler(kube, {"kserve": backend}, Settings(), post_event=lambda b, e: None)  # type: ignore[arg-type]
    assert await plain.reconcile(body(), LOG) == 60
    assert kube.patches
