"""The reconcile shell: object body in, one status patch and a few Events out.

Backends decide (they return a `Reconciled` value); this module only parses the object, picks
the backend, writes the status diff and posts Events. Any exception a backend lets through is a
bug or an outage: it is reported as `Reconciling` (reason InternalError) with the error text and
retried with back-off, so `kubectl get emb` shows the real cause instead of a silent retry loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pydantic
from lightkube import AsyncClient

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.spec import Backend as BackendName
from embedding_operator.api.spec import EmbeddingModelSpec, parse_spec
from embedding_operator.api.status import EmbeddingModelStatus
from embedding_operator.backends.base import (
    Backend,
    Event,
    Finalized,
    ObjectRef,
    ReconcileContext,
    Reconciled,
)
from embedding_operator.kube import patch_status
from embedding_operator.metrics import Metrics, backend_label
from embedding_operator.plan import embedding_space
from embedding_operator.redact import redact
from embedding_operator.report import (
    build_status,
    deleting_status,
    dump_status,
    merge_patch,
    redact_status,
    transition_events,
)
from embedding_operator.retry import classify, describe
from embedding_operator.settings import Settings

#: Status writes in flight at once; more wait here (FIFO). NB: not in the HTTP client's pool,
#: which re-scans its whole queue on every request start and end (py-spy at 500 objects).
STATUS_WRITES = 20

EventPoster = Callable[[Mapping[str, Any], Event], Awaitable[None] | None]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API server (e.g. "2026-12-01T14:00:00Z"), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def describe_validation_error(error: pydantic.ValidationError) -> str:
    """'spec.model.uri: String should match pattern …' lines, naming each field."""
    parts = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{loc}: {err['msg']}")
    return "; ".join(parts)


class Reconciler:
    """Drives backends for EmbeddingModel bodies; the only writer of their status."""

    def __init__(
        self,
        kube: AsyncClient,
        backends: Mapping[str, Backend],
        settings: Settings,
        post_event: EventPoster,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.kube = kube
        self.backends = backends
        self.settings = settings
        self.post_event = post_event
        self.clock = clock
        self.metrics = metrics
        self._failures: dict[str, int] = {}
        self._status_writes = asyncio.Semaphore(STATUS_WRITES)

    async def close(self) -> None:
        for backend in self.backends.values():
            closer = getattr(backend, "close", None)
            if closer is not None:
                await closer()

    def _context(
        self,
        body: Mapping[str, Any],
        spec: EmbeddingModelSpec,
        status: EmbeddingModelStatus,
        logger: Any,
    ) -> ReconcileContext:
        meta = body["metadata"]
        return ReconcileContext(
            ref=ObjectRef(
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta["uid"],
                generation=int(meta.get("generation") or 1),
            ),
            spec=spec,
            status=status,
            annotations=dict(meta.get("annotations") or {}),
            now=self.clock(),
            logger=logger,
            deletion_started=_parse_time(meta.get("deletionTimestamp")),
        )

    async def reconcile(self, body: Mapping[str, Any], logger: Any) -> float:
        """One level-triggered pass. Returns the seconds until the next pass."""
        started = time.monotonic()
        result: Reconciled | None = None
        try:
            result = await self._reconcile(body, logger)
            return result.requeue_after
        finally:
            if self.metrics is not None:
                # NB: `result` is None when the pass raised (e.g. the status write failed).
                self.metrics.reconciled(
                    body["metadata"]["uid"],
                    backend=backend_label((body.get("spec") or {}).get("backend")),
                    outcome=result.outcome if result is not None else None,
                    seconds=time.monotonic() - started,
                )

    async def _reconcile(self, body: Mapping[str, Any], logger: Any) -> Reconciled:
        meta = body["metadata"]
        uid = meta["uid"]
        # NB: kopf keeps a daemon's body current while a pass awaits; status must carry the
        # generation of the spec this pass read, or a slow pass over the old spec reports
        # Ready for a newer one (Argo CD showed a broken commit as Healthy for seconds).
        generation = int(meta.get("generation") or 1)
        previous = EmbeddingModelStatus.model_validate(body.get("status") or {})
        try:
            spec = parse_spec(dict(body.get("spec") or {}))
        except pydantic.ValidationError as error:
            result = Reconciled(
                Outcome.stalled(Reason.INVALID_SPEC, describe_validation_error(error)),
                requeue_after=self.settings.intervals.stalled,
            )
        else:
            # NB: the status parsed once per pass: every object's pass can be waiting on the
            # shared view at once (bench/RESULTS.md, "Operator memory").
            ctx = self._context(body, spec, previous, logger)
            # NB: before the backend, so a held change writes nothing remote and the deployment
            # that served keeps serving (and keeps its endpoint in status).
            held = embedding_space.guard(
                previous.embedding_space,
                spec,
                ctx.annotations,
                name=ctx.ref.name,
                namespace=ctx.ref.namespace,
            )
            if held is not None:
                result = Reconciled(
                    Outcome.stalled(Reason.EMBEDDING_SPACE_CHANGE, held.message),
                    requeue_after=self.settings.intervals.stalled,
                    endpoint=previous.endpoint,
                )
            else:
                result = await self._backend_pass(ctx, uid, logger)
                result.embedding_space = embedding_space.next_recorded(
                    previous.embedding_space,
                    spec,
                    ready=result.outcome.state == "ready",
                    served_dimensions=result.serving.dimensions if result.serving else None,
                )
        await self._write(body, previous, result, generation)
        return result

    async def _backend_pass(self, ctx: ReconcileContext, uid: str, logger: Any) -> Reconciled:
        backend = self.backends[BackendName(ctx.spec.backend)]
        try:
            result = await backend.reconcile(ctx)
            self._failures.pop(uid, None)
        except Exception as error:  # noqa: BLE001 - reported in status, retried with back-off
            failures = self._failures[uid] = self._failures.get(uid, 0) + 1
            verdict = classify(error, self.settings.intervals, ctx.now, failures=failures)
            if failures == 1 and not verdict.transient:
                logger.exception("reconcile failed (attempt %d)", failures)
            elif failures == 1:  # an outage: one line when it starts, then quiet
                logger.warning("reconcile failed: %s; retrying", describe(error))
            result = Reconciled(verdict.outcome, requeue_after=verdict.delay)
        return result

    async def finalize(self, body: Mapping[str, Any], logger: Any) -> Finalized:
        """Tear down remote objects; the caller keeps the finalizer until `done`."""
        previous = EmbeddingModelStatus.model_validate(body.get("status") or {})
        try:
            spec = parse_spec(dict(body.get("spec") or {}))
        except pydantic.ValidationError:
            # NB: an object that never validated never created anything remote.
            if self.metrics is not None:
                self.metrics.forget(body["metadata"]["uid"])
            return Finalized(done=True, message="invalid spec: nothing was created remotely")
        ctx = self._context(body, spec, previous, logger)
        result = await self.backends[BackendName(spec.backend)].finalize(ctx)
        for event in result.events:
            await self._post(body, event)
        if self.metrics is not None:
            if result.done:
                self.metrics.forget(ctx.ref.uid)
            else:
                self.metrics.deleting(ctx.ref.uid, backend=spec.backend)
        if not result.done:
            status = deleting_status(
                previous,
                result.message,
                generation=ctx.ref.generation,
                now=self.clock(),
                stalled=result.stalled,
            )
            await self._patch(body, previous, status)
            for event in transition_events(previous, status):
                await self._post(body, event)
        return result

    async def _write(
        self,
        body: Mapping[str, Any],
        previous: EmbeddingModelStatus,
        result: Reconciled,
        generation: int,
    ) -> None:
        status = build_status(previous, result, generation=generation, now=self.clock())
        status = await self._patch(body, previous, status)
        for event in [*result.events, *transition_events(previous, status)]:
            await self._post(body, event)

    async def _patch(
        self,
        body: Mapping[str, Any],
        previous: EmbeddingModelStatus,
        status: EmbeddingModelStatus,
    ) -> EmbeddingModelStatus:
        """Write `status` (redacted) as a diff against `previous`; returns what was written."""
        # NB: the one writer of status, so the one place every message is redacted; the Events
        # are derived from the redacted status, so a masked message does not differ on each pass.
        status = redact_status(status)
        patch = merge_patch(dump_status(previous), dump_status(status))
        if patch:
            meta = body["metadata"]
            async with self._status_writes:
                await patch_status(self.kube, meta["name"], meta["namespace"], patch)
        return status

    async def _post(self, body: Mapping[str, Any], event: Event) -> None:
        event = replace(event, message=redact(event.message))
        try:
            posted = self.post_event(body, event)
            if posted is not None:
                await posted
        except Exception:  # noqa: BLE001 - an Event is best effort; never fail a reconcile on it
            logging.getLogger(__name__).warning("could not post event %s", event.reason)
