"""Leader election on a coordination.k8s.io Lease, so two replicas never both act.

kopf has no election (its peering only *freezes* operators of equal priority), so this module does
what client-go's `leaderelection` package does, on the same Lease fields and with the same
defaults (15 s lease, 10 s renew deadline, 2 s retry):

- `acquire()` waits until the Lease is free, expired or already ours, then takes it with an
  update guarded by `resourceVersion` (two candidates racing get one 409; the loser retries).
- Expiry is judged by *our* clock: a holder is dead when its record has not changed for a whole
  lease duration since we first saw it, so clock skew between nodes does not matter.
- `hold()` renews every retry period; when renewals fail for the renew deadline it calls
  `on_lost`, and the process exits non-zero (as controller-runtime does): a pod that may have
  been replaced must not act any more, and a restart is the one clean way back to standby.
- `release()` on a clean shutdown empties the holder, so a rolling update hands over at once
  instead of after a lease duration.

The operator acquires before kopf starts any watch or handler (runner.py), so a standby replica
makes no API calls besides reading the Lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from embedding_operator.settings import _float

log = logging.getLogger(__name__)

LEASE_NAME = "embedding-operator"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class ElectionSettings:
    """Timings (seconds), each from the environment like every other operator setting."""

    lease_duration: float = field(
        default_factory=lambda: _float("EMB_LEASE_DURATION_SECONDS", 15.0)
    )
    """How long a standby waits after the last renewal it saw before it takes over."""
    renew_deadline: float = field(
        default_factory=lambda: _float("EMB_RENEW_DEADLINE_SECONDS", 10.0)
    )
    """How long the leader keeps trying to renew before it gives up and exits."""
    retry_period: float = field(default_factory=lambda: _float("EMB_RETRY_PERIOD_SECONDS", 2.0))
    """How often the leader renews and a standby looks."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise SystemExit(
                "leader election needs 0 < EMB_RETRY_PERIOD_SECONDS < EMB_RENEW_DEADLINE_SECONDS "
                f"< EMB_LEASE_DURATION_SECONDS, got {self.retry_period:g} / "
                f"{self.renew_deadline:g} / {self.lease_duration:g}"
            )


def default_identity() -> str:
    """The pod's name (a restarted container reclaims its own Lease at once), else host_pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def default_namespace(watched: list[str]) -> str:
    """The operator's own namespace: $POD_NAMESPACE, the ServiceAccount's, or the one watched."""
    if ns := os.environ.get("POD_NAMESPACE"):
        return ns
    if SA_NAMESPACE_FILE.is_file():
        return SA_NAMESPACE_FILE.read_text().strip()
    return watched[0] if len(watched) == 1 else "default"


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElection:
    """One candidate for the Lease `namespace/name`."""

    def __init__(
        self,
        kube: AsyncClient,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        settings: ElectionSettings | None = None,
        monotonic: Callable[[], float] = lambda: asyncio.get_running_loop().time(),
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.settings = settings or ElectionSettings()
        self._monotonic = monotonic
        # What we last saw of someone else's record, and when (our clock): see module doc.
        self._observed: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0
        self.leading = False

    def __str__(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def acquire(self) -> None:
        """Return once we hold the Lease (waits for ever while another live holder renews)."""
        waiting_logged = failing_logged = False
        while True:
            try:
                holder = await asyncio.wait_for(
                    self._try_acquire_or_renew(), timeout=self.settings.renew_deadline
                )
            except ApiError as error:
                # NB: 403 is also how a terminating namespace refuses new objects; that one passes.
                if error.status.code == 403 and "being terminated" not in str(error.status.message):
                    raise SystemExit(
                        f"may not use {self}: {error.status.message}; grant create, and get/update "
                        f"on leases/{self.name}, in namespace {self.namespace} "
                        "(manifests/install/base/leader-election.yaml)"
                    ) from None
                holder = f"(error: {error.status.code} {error.status.message})"
            except Exception as error:  # noqa: BLE001 - the API server may not be up yet
                holder = f"(error: {type(error).__name__}: {error})"
            if holder.startswith("(error") if holder else False:
                if not failing_logged:  # NB: one line per outage, not one per retry
                    log.warning("cannot read %s yet %s; retrying", self, holder)
                    failing_logged = True
                await asyncio.sleep(self.settings.retry_period)
                continue
            if holder is None:
                self.leading = True
                log.info("acquired %s as %s; starting to reconcile", self, self.identity)
                return
            if not waiting_logged:  # NB: one line per wait, not one per retry
                log.info("standby: %s is held by %s; waiting for it to expire", self, holder)
                waiting_logged = True
            await asyncio.sleep(self.settings.retry_period)

    async def hold(self, on_lost: Callable[[str], None]) -> None:
        """Renew until cancelled; call `on_lost(reason)` when the renew deadline passes."""
        last_renewal = self._monotonic()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            # NB: one attempt may use what is left of the renew deadline (client-go's renew
            # context): a slow API server or a busy event loop is not yet a lost Lease.
            left = self.settings.renew_deadline - (self._monotonic() - last_renewal)
            try:
                holder = await asyncio.wait_for(
                    self._try_acquire_or_renew(), timeout=max(self.settings.retry_period, left)
                )
            except Exception as error:  # noqa: BLE001 - any failure counts against the deadline
                holder = f"(renewal failed: {type(error).__name__}: {error})"
            if holder is None:
                last_renewal = self._monotonic()
                continue
            if holder.startswith("(") and self._monotonic() - last_renewal < (
                self.settings.renew_deadline
            ):
                continue  # an outage: keep trying until the deadline
            self.leading = False
            on_lost(f"lost {self} to {holder}")
            return

    async def release(self) -> None:
        """Give the Lease up (clean shutdown), so a standby takes over without waiting."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.kube.get(Lease, self.name, namespace=self.namespace)
            if lease.spec is None or lease.spec.holderIdentity != self.identity:
                return
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            lease.spec.renewTime = _now()
            await self.kube.replace(lease)
            log.info("released %s", self)
        except Exception as error:  # noqa: BLE001 - best effort: the Lease expires anyway
            log.warning("could not release %s (%s); it expires by itself", self, error)

    async def _try_acquire_or_renew(self) -> str | None:
        """One attempt. None: we hold the Lease now; else who holds it."""
        now = _now()
        try:
            lease = await self.kube.get(Lease, self.name, namespace=self.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            return await self._create(now)
        spec = lease.spec or LeaseSpec()
        holder = spec.holderIdentity or None
        if holder is not None and holder != self.identity and not self._expired(spec):
            return holder
        transitions = spec.leaseTransitions or 0
        if holder != self.identity:
            transitions += 1
            spec.acquireTime = now
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = int(self.settings.lease_duration)
        spec.renewTime = now
        spec.leaseTransitions = transitions
        lease.spec = spec
        try:
            # NB: replace carries metadata.resourceVersion: a concurrent writer makes this a 409.
            await self.kube.replace(lease)
        except ApiError as error:
            if error.status.code == 409:
                return "(another candidate, concurrently)"
            raise
        return None

    def _expired(self, spec: LeaseSpec) -> bool:
        record = (spec.holderIdentity, str(spec.renewTime))
        now = self._monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
            return False
        duration = spec.leaseDurationSeconds or self.settings.lease_duration
        return now - self._observed_at > duration

    async def _create(self, now: datetime) -> str | None:
        lease = Lease(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=int(self.settings.lease_duration),
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            await self.kube.create(lease)
        except ApiError as error:
            if error.status.code == 409:
                return "(another candidate, concurrently)"
            raise
        return None


class RenewerThread(threading.Thread):
    """Renews the Lease from its own thread, event loop and API client.

    NB: on the operator's loop, hundreds of reconcile loops starting at once starved the renewal
    past its deadline and the leader exited (the fault suite's burst of 250); client-go renews
    from its own goroutine for the same reason.
    """

    def __init__(
        self, make_election: Callable[[], LeaderElection], on_lost: Callable[[str], None]
    ) -> None:
        super().__init__(name="lease-renewer", daemon=True)
        self._make_election = make_election
        self._on_lost = on_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        election = self._make_election()  # NB: its client belongs to this thread's loop
        election.leading = True
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(election.hold(self._on_lost))
        self._started.set()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        finally:
            await election.kube.close()

    def stop(self, seconds: float = 5.0) -> None:
        self._started.wait(seconds)
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self.join(seconds)
