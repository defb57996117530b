"""Prometheus metrics of the operator: what it reconciled, how long that took, how AI Core answered.

One `Metrics` object per process owns every metric, registered on the registry it is given (a
fresh `CollectorRegistry` in tests, the default one — which also carries the process and GC
collectors — in the running operator). The reconciler and the AI Core client only call its
methods; nothing else imports prometheus_client, and `serve` is the only place a socket is opened.

Series (all prefixed `embedding_operator_`):

- `reconciliations_total{backend,result}`: result is the outcome's state (ready, progressing,
  stalled, suspended), or `error` when the pass raised or hit an internal error.
- `reconcile_duration_seconds{backend}`: one reconcile pass, including the status write.
- `aicore_request_duration_seconds{endpoint,method,status}`: every HTTP exchange with AI Core and
  its XSUAA, by endpoint *template* (`/lm/deployments/{deployment}`, so IDs never become label
  values); status is the HTTP code, or `none` when no response arrived.
- `embeddingmodels{backend,phase}`: objects by the phase their last reconcile wrote; an object
  leaves it when its deletion completes. Every phase is exported (0 included) so alerts on e.g.
  `phase="Failed"` have a series to read before the first failure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.spec import Backend
from embedding_operator.api.status import Phase

PREFIX = "embedding_operator"
ERROR = "error"
"""The `result` label of a pass that raised, or that a backend bug turned into InternalError."""

UNKNOWN_BACKEND = "unknown"
"""The `backend` label when the spec does not parse (kept bounded: never the raw user value)."""

# NB: an AI Core reconcile makes several sequential API calls, each possibly retried with back-off,
# so passes of tens of seconds are normal; the default buckets stop at 10 s.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def backend_label(raw: object) -> str:
    """A bounded `backend` label value for whatever `spec.backend` holds."""
    values = {b.value for b in Backend}
    return raw if isinstance(raw, str) and raw in values else UNKNOWN_BACKEND


def result_label(outcome: Outcome | None) -> str:
    """The `result` label: the outcome's state, or `error` for a pass that raised or hit a bug."""
    if outcome is None or outcome.reason == Reason.INTERNAL_ERROR:
        return ERROR
    return outcome.state


@dataclass(frozen=True)
class _Tracked:
    backend: str
    phase: str


class _PhaseCollector(Collector):
    """`embeddingmodels{backend,phase}`, counted at scrape time from the last phase of each object.

    A collector rather than a Gauge so that the count is always derived from one table: an object
    can never be counted in two phases or linger after it is forgotten.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # NB: scrapes run on the HTTP server's thread
        self._objects: dict[str, _Tracked] = {}

    def set(self, uid: str, backend: str, phase: str) -> None:
        with self._lock:
            self._objects[uid] = _Tracked(backend, phase)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._objects.pop(uid, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            tracked = list(self._objects.values())
        counts: dict[tuple[str, str], int] = {(b.value, p.value): 0 for b in Backend for p in Phase}
        for obj in tracked:
            counts[(obj.backend, obj.phase)] = counts.get((obj.backend, obj.phase), 0) + 1
        family = GaugeMetricFamily(
            f"{PREFIX}_embeddingmodels",
            "EmbeddingModel objects by the phase their last reconcile reported.",
            labels=["backend", "phase"],
        )
        for (backend, phase), count in sorted(counts.items()):
            family.add_metric([backend, phase], count)
        yield family


class Metrics:
    """Every metric the operator exports, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconciliations = Counter(
            f"{PREFIX}_reconciliations",
            "Reconcile passes by backend and result.",
            ["backend", "result"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Duration of one reconcile pass, including the status write.",
            ["backend"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.aicore_requests = Histogram(
            f"{PREFIX}_aicore_request_duration_seconds",
            "AI Core (and XSUAA) HTTP exchanges by endpoint template, method and status code "
            "('none' when no response arrived).",
            ["endpoint", "method", "status"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._phases = _PhaseCollector()
        registry.register(self._phases)

    def reconciled(
        self, uid: str, *, backend: str, outcome: Outcome | None, seconds: float
    ) -> None:
        """Record one reconcile pass; `outcome` is what it wrote to status, None if it raised."""
        self.reconciliations.labels(backend=backend, result=result_label(outcome)).inc()
        self.reconcile_duration.labels(backend=backend).observe(seconds)
        if outcome is not None:  # else nothing was written: the gauge keeps the last phase
            self._phases.set(uid, backend, outcome.phase.value)

    def deleting(self, uid: str, *, backend: str) -> None:
        self._phases.set(uid, backend, Phase.DELETING.value)

    def forget(self, uid: str) -> None:
        """The object is gone (its finalizer was released): drop it from the phase gauge."""
        self._phases.forget(uid)

    def aicore_response(
        self, endpoint: str, method: str, status: int | None, seconds: float
    ) -> None:
        """The AI Core client's `on_response` hook."""
        self.aicore_requests.labels(
            endpoint=endpoint, method=method, status=str(status) if status is not None else "none"
        ).observe(seconds)


def serve(metrics: Metrics, port: int, address: str = "0.0.0.0") -> WSGIServer:
    """Serve `/metrics` on a daemon thread for the life of the process (or until `shutdown()`)."""
    server, _ = start_http_server(port, addr=address, registry=metrics.registry)
    return server
