"""AI Core backend: observe → plan → act for one EmbeddingModel; thin I/O around plan.aicore.

- observe: the service key (read from its Secret through the Kubernetes boundary, shared per
  Secret for one poll interval), then this object's slice of the tenant's shared view
  (aicore_view.py): its deployments always, template/artifacts/configurations only when something
  is to be made.
- plan: `plan.aicore.plan` decides everything (pure, table-tested).
- act: execute the plan's actions, record each write in the view, observe again (from the view,
  no extra call) and re-plan until a plan asks for nothing.

Every error ends in `retry.classify` (one retry policy); a Ready object rides out transient ones
for `Settings.ready_grace` seconds. Remote IDs go to status; nothing from the service key does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from lightkube import AsyncClient

from embedding_operator.aicore import (
    AICoreClient,
    AICoreError,
    ClientSettings,
    Conflict,
    NotFound,
    RetrySettings,
    Unauthorized,
    parse_service_key,
)
from embedding_operator.aicore.models import (
    Artifact,
    Configuration,
    Deployment,
    DeploymentStatus,
    TargetStatus,
)
from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import EmbeddingModelSpec
from embedding_operator.api.status import AICoreStatus
from embedding_operator.backends.aicore_view import Shared, TenantView
from embedding_operator.backends.base import Event, Finalized, ReconcileContext, Reconciled
from embedding_operator.kube import SecretProblem, kube_error, read_secret_key
from embedding_operator.plan.aicore import (
    Action,
    CheckServing,
    CreateArtifact,
    CreateConfiguration,
    CreateDeployment,
    DeleteDeployment,
    FetchLogs,
    Names,
    Observed,
    PatchConfiguration,
    Plan,
    StopDeployment,
    hold_ready,
    names_for,
    needs_lookup,
    owned_deployments,
    plan,
    plan_finalize,
    plan_finalize_unanswered,
)
from embedding_operator.plan.serving_check import CheckResult
from embedding_operator.probe import Probe
from embedding_operator.retry import classify
from embedding_operator.serving import MODEL_ARTIFACT, image_of, parameter_bindings
from embedding_operator.settings import Settings

#: The operator's AI Core client: short per-request budget, so a frozen AI Core shows
#: AICoreUnavailable within about half a minute instead of minutes (60 s × 5 attempts).
OPERATOR_CLIENT = ClientSettings(
    connect_timeout=5.0, read_timeout=10.0, retry=RetrySettings(max_attempts=3)
)
INF = float("inf")
#: Planning rounds per pass: artifact → configuration → deployment → record, plus a check.
MAX_ROUNDS = 6

#: async (url, served model name, headers) -> CheckResult; probe.Probe, or a test's stand-in.
ServingProbe = Callable[[str, str, Mapping[str, str]], Awaitable[CheckResult]]


@dataclass
class _Tenant:
    """One service key: its client, and one shared view per resource group."""

    client: AICoreClient
    passes: asyncio.Semaphore
    views: dict[str, TenantView] = field(default_factory=dict)
    secrets: set[tuple[str, str]] = field(default_factory=set)

    def view(self, resource_group: str) -> TenantView:
        view = self.views.get(resource_group)
        if view is None:
            view = self.views[resource_group] = TenantView(self.client, resource_group)
        return view


class AICoreBackend:
    """Reconciles `backend: aicore` objects. One instance per operator."""

    def __init__(
        self,
        kube: AsyncClient,
        settings: Settings,
        *,
        probe: ServingProbe | None = None,
        client_factory: Callable[..., AICoreClient] = AICoreClient,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self._own_probe: Probe | None = None
        if probe is None:
            probe = self._own_probe = Probe(settings.serving_check_timeout)
        self.probe: ServingProbe = probe
        self.client_factory = client_factory
        self._tenants: dict[str, _Tenant] = {}  # service-key fingerprint → tenant
        self._secret_reads: dict[tuple[str, str, str], Shared[bytes | SecretProblem]] = {}
        self._by_secret: dict[tuple[str, str], str] = {}  # (namespace, name) → fingerprint
        self._failing: dict[str, datetime] = {}  # uid → first transient failure of a streak
        self._failures: dict[str, int] = {}

    async def close(self) -> None:
        for tenant in self._tenants.values():
            await tenant.client.aclose()
        self._tenants.clear()
        if self._own_probe is not None:
            await self._own_probe.aclose()

    # -- observe: credentials ----------------------------------------------------------------

    async def _secret(self, namespace: str, name: str, key: str) -> bytes:
        """The Secret's value, read at most once per pending interval per Secret."""
        cache_key = (namespace, name, key)
        shared = self._secret_reads.get(cache_key)
        if shared is None:

            async def fetch() -> bytes | SecretProblem:
                try:
                    return await read_secret_key(self.kube, namespace, name, key)
                except SecretProblem as problem:
                    return problem  # cached like a value: a missing Secret is re-read in time

            shared = self._secret_reads[cache_key] = Shared(fetch)
        value = await shared.get(self.settings.intervals.pending)
        if isinstance(value, SecretProblem):
            raise value
        return value

    async def _tenant(self, namespace: str, spec: EmbeddingModelSpec) -> _Tenant:
        assert spec.aicore is not None
        ref = spec.aicore.secret_ref
        content = await self._secret(namespace, ref.name, ref.key)
        fingerprint = hashlib.sha256(content).hexdigest()
        tenant = self._tenants.get(fingerprint)
        if tenant is None:
            try:
                key = parse_service_key(content)
            except AICoreError as error:
                raise SecretProblem(
                    Reason.SERVICE_KEY_INVALID,
                    f"Secret {namespace}/{ref.name} key '{ref.key}': {error}",
                ) from None
            slots = self.settings.aicore_max_connections
            tenant = self._tenants[fingerprint] = _Tenant(
                self.client_factory(key, settings=replace(OPERATOR_CLIENT, max_connections=slots)),
                asyncio.Semaphore(slots),
            )
        secret = (namespace, ref.name)
        old = self._by_secret.get(secret)
        if old is not None and old != fingerprint:
            await self._release(secret, old)  # rotated: drop the old token with the old client
        self._by_secret[secret] = fingerprint
        tenant.secrets.add(secret)
        return tenant

    async def _release(self, secret: tuple[str, str], fingerprint: str) -> None:
        tenant = self._tenants.get(fingerprint)
        if tenant is None:
            return
        tenant.secrets.discard(secret)
        if not tenant.secrets:
            del self._tenants[fingerprint]
            await tenant.client.aclose()

    # -- observe: remote state ---------------------------------------------------------------

    async def _observe(
        self,
        view: TenantView,
        ctx: ReconcileContext,
        names: Names,
        max_age: float,
        serving: CheckResult | None = None,
        logs: str | None = None,
        lookup_age: float | None = None,
    ) -> Observed:
        aicore = ctx.spec.aicore
        assert aicore is not None
        scenario = aicore.scenario_id
        deployments = await view.deployments(scenario).owned(names.configuration_prefix, max_age)
        owned = owned_deployments(deployments, names)
        observed = Observed(
            status=ctx.status,
            generation=ctx.ref.generation,
            deployments=tuple(owned),
            serving=serving,
            logs=logs,
            failing_since=self._failing.get(ctx.ref.uid),
        )
        previous = ctx.status.aicore or AICoreStatus()
        if not needs_lookup(ctx.spec, names, previous, owned):
            return observed
        pending = self.settings.intervals.pending if lookup_age is None else lookup_age
        template = await view.template(scenario, aicore.executable_id, pending)
        artifacts = await view.artifacts(scenario).owned(names.artifact, pending)
        configurations = await view.configurations(scenario).owned(
            names.configuration_prefix, pending
        )
        return replace(
            observed,
            template=template,
            artifacts=tuple(artifacts),
            configurations=tuple(configurations),
        )

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled:
        assert ctx.spec.aicore is not None
        uid = ctx.ref.uid
        try:
            tenant = await self._tenant(ctx.ref.namespace, ctx.spec)
            async with asyncio.timeout(self.settings.pass_timeout) as budget:
                result = await self._reconcile(ctx, tenant, budget)
        except (AICoreError, SecretProblem, TimeoutError) as error:
            return self._failed(ctx, error)
        except Exception as error:
            if kube_error(error) is None:
                raise  # a bug: the shell reports it as InternalError
            return self._failed(ctx, error)
        self._failures.pop(uid, None)
        return result

    def _failed(self, ctx: ReconcileContext, error: BaseException) -> Reconciled:
        uid = ctx.ref.uid
        failures = self._failures[uid] = self._failures.get(uid, 0) + 1
        verdict = classify(error, self.settings.intervals, ctx.now, failures=failures)
        previous = ctx.status.aicore or AICoreStatus()
        outcome = verdict.outcome
        events: list[Event] = []
        if verdict.gone:
            # Recorded IDs AI Core no longer knows: back to find-or-create, from a fresh view.
            events.append(
                Event.warning("RemoteStateLost", f"{error}; looking for or creating it again")
            )
            for tenant in self._tenants.values():
                for view in tenant.views.values():
                    view.invalidate()
            previous = AICoreStatus(resource_group=previous.resource_group)
        if verdict.transient:
            since = self._failing.setdefault(uid, ctx.now)
            outcome = hold_ready(ctx.status, outcome, since, ctx.now, self.settings.ready_grace)
        return Reconciled(
            outcome,
            requeue_after=verdict.delay,
            endpoint=ctx.status.endpoint if outcome.state == "ready" else None,
            aicore=previous,
            events=events,
        )

    @contextlib.asynccontextmanager
    async def _turn(self, tenant: _Tenant, budget: asyncio.Timeout) -> AsyncIterator[None]:
        """A pass that acts waits for one of the tenant's slots; the wait is not pass time.

        NB: with every pass's requests queued together, each of 500 first passes waited behind
        all the others' requests, ran past the pass timeout and backed off (bench/RESULTS.md).
        A pass that has its turn makes its few requests at once; passes that only read the
        shared view never wait here.
        """
        loop = asyncio.get_running_loop()
        when = budget.when()
        left = None if when is None else when - loop.time()
        budget.reschedule(None)
        async with tenant.passes:
            if left is not None:
                budget.reschedule(loop.time() + left)
            yield

    async def _reconcile(
        self, ctx: ReconcileContext, tenant: _Tenant, budget: asyncio.Timeout
    ) -> Reconciled:
        spec = ctx.spec
        aicore = spec.aicore
        assert aicore is not None
        view = tenant.view(aicore.resource_group)
        names = names_for(ctx.ref, spec)
        intervals = self.settings.intervals
        phase = ctx.status.phase
        max_age = intervals.ready if phase in ("Ready", "Suspended") else intervals.pending
        observed = await self._observe(view, ctx, names, max_age)
        events: list[Event] = []
        done: list[Action] = []
        async with contextlib.AsyncExitStack() as turn:
            for _ in range(MAX_ROUNDS):
                decided = plan(
                    spec,
                    names,
                    observed,
                    ctx.now,
                    intervals=intervals,
                    grace=self.settings.ready_grace,
                )
                events += decided.events
                for line in decided.details:
                    ctx.logger.debug("plan: %s", line)
                # NB: an action AI Core did not take (a state conflict) is tried again next
                # pass, not in a tight loop within this one.
                if not decided.actions or decided.actions == done:
                    break
                if not done:
                    await turn.enter_async_context(self._turn(tenant, budget))
                done = decided.actions
                serving, logs = observed.serving, observed.logs
                for action in decided.actions:
                    result = await self._act(view, ctx, names, action, events)
                    if isinstance(action, CheckServing):
                        serving = result if isinstance(result, CheckResult) else None
                    elif isinstance(action, FetchLogs):
                        logs = str(result)
                # NB: from the view as it is: this pass's writes are in it, and waiting for a
                # fresh list here (holding a turn) made 500 first passes take minutes.
                observed = await self._observe(view, ctx, names, INF, serving, logs, lookup_age=INF)
        if decided.failing:
            self._failing.setdefault(ctx.ref.uid, ctx.now)
        else:
            self._failing.pop(ctx.ref.uid, None)
        return self._result(spec, decided, events)

    def _result(self, spec: EmbeddingModelSpec, decided: Plan, events: list[Event]) -> Reconciled:
        serving = decided.serving
        if serving is not None:
            serving.image = image_of(spec)
        return Reconciled(
            decided.outcome,
            requeue_after=decided.requeue,
            endpoint=decided.endpoint,
            aicore=decided.status,
            serving=serving,
            events=events,
        )

    # -- act -----------------------------------------------------------------------------------

    async def _act(
        self,
        view: TenantView,
        ctx: ReconcileContext,
        names: Names,
        action: Action,
        events: list[Event],
    ) -> object:
        spec = ctx.spec
        aicore = spec.aicore
        assert aicore is not None
        client, rg, scenario = view.client, aicore.resource_group, aicore.scenario_id
        if isinstance(action, CreateArtifact):

            async def find_artifact() -> str | None:
                found = await client.find_artifacts(
                    scenario, resource_group=rg, name=names.artifact, labels=names.labels
                )
                match = [a for a in found if a.url == spec.model.uri]
                return match[0].id if match else None

            created = await client.create_artifact(
                resource_group=rg,
                name=names.artifact,
                url=spec.model.uri,
                scenario_id=scenario,
                description=f"{spec.model.name} for EmbeddingModel {ctx.ref}",
                labels=names.labels,
                find=find_artifact,
            )
            view.artifacts(scenario).put(
                Artifact(
                    id=created.id,
                    name=names.artifact,
                    kind="model",
                    url=spec.model.uri,
                    scenario_id=scenario,
                )
            )
            events.append(Event.normal("ArtifactCreated", f"AI Core artifact {created.id}"))
            return created.id
        if isinstance(action, CreateConfiguration):

            async def find_configuration() -> str | None:
                found = await client.find_configurations(
                    scenario,
                    resource_group=rg,
                    executable_ids=[aicore.executable_id],
                    name=names.configuration,
                )
                return found[0].id if found else None

            created = await client.create_configuration(
                resource_group=rg,
                name=names.configuration,
                scenario_id=scenario,
                executable_id=aicore.executable_id,
                parameter_bindings={b["key"]: b["value"] for b in parameter_bindings(spec)},
                artifact_bindings={MODEL_ARTIFACT: action.artifact_id},
                find=find_configuration,
            )
            view.configurations(scenario).put(
                Configuration(
                    id=created.id,
                    name=names.configuration,
                    scenario_id=scenario,
                    executable_id=aicore.executable_id,
                )
            )
            events.append(
                Event.normal(
                    "ConfigurationCreated",
                    f"AI Core configuration {names.configuration} ({created.id})",
                )
            )
            return created.id
        if isinstance(action, CreateDeployment):
            listing = view.deployments(scenario)
            before = {d.id for d in await listing.owned(names.configuration_prefix, float("inf"))}

            async def find_deployment() -> str | None:
                fresh = await client.list_deployments(resource_group=rg, scenario_id=scenario)
                match = [
                    d
                    for d in owned_deployments(fresh, names)
                    if d.configuration_id == action.configuration_id and d.id not in before
                ]
                return match[-1].id if match else None

            created = await client.create_deployment(
                action.configuration_id, resource_group=rg, ttl=aicore.ttl, find=find_deployment
            )
            listing.put(
                Deployment(
                    id=created.id,
                    configuration_id=action.configuration_id,
                    configuration_name=names.configuration,
                    status=created.status or DeploymentStatus.UNKNOWN,
                    deployment_url=created.deployment_url or "",
                    created_at=ctx.now,
                )
            )
            events.append(Event.normal("DeploymentCreated", f"AI Core deployment {created.id}"))
            return created.id
        listing = view.deployments(scenario)
        if isinstance(action, PatchConfiguration):
            await client.patch_deployment(
                action.deployment_id, resource_group=rg, configuration_id=action.configuration_id
            )
            if (old := listing.get(action.deployment_id)) is not None:
                listing.put(
                    old.model_copy(
                        update={
                            "configuration_id": action.configuration_id,
                            "configuration_name": names.configuration,
                            "latest_running_configuration_id": old.configuration_id,
                        }
                    )
                )
            return None
        if isinstance(action, StopDeployment):
            try:
                await client.stop_deployment(action.deployment_id, resource_group=rg)
            except NotFound:
                listing.remove(action.deployment_id)
                return None
            except Conflict:
                return None  # e.g. still UNKNOWN: AI Core cannot stop it yet; next pass
            if (old := listing.get(action.deployment_id)) is not None:
                listing.put(old.model_copy(update={"target_status": TargetStatus.STOPPED}))
            return None
        if isinstance(action, DeleteDeployment):
            # NB: one idempotency rule for every delete: a 404 means it is already gone.
            try:
                await client.delete_deployment(action.deployment_id, resource_group=rg)
            except NotFound:
                pass
            except Conflict:
                return None  # still stopping: the next pass deletes it
            listing.remove(action.deployment_id)
            return None
        if isinstance(action, CheckServing):
            headers = await client.inference_headers(rg)
            return await self.probe(action.url, spec.model.name, headers)
        if isinstance(action, FetchLogs):
            try:
                entries = await client.get_deployment_logs(
                    action.deployment_id, resource_group=rg, top=20
                )
            except AICoreError:
                return "(logs unavailable)"
            return "\n".join(entry.msg for entry in entries[-10:])
        raise AssertionError(f"unknown action {action!r}")

    # -- delete ------------------------------------------------------------------------------

    async def finalize(self, ctx: ReconcileContext) -> Finalized:
        spec = ctx.spec
        aicore = spec.aicore
        assert aicore is not None
        previous = ctx.status.aicore or AICoreStatus()
        if aicore.deletion_policy == "Orphan":
            decided = plan_finalize(spec, previous, [])
            return Finalized(done=True, message=decided.message, events=decided.events)
        try:
            try:
                tenant = await self._tenant(ctx.ref.namespace, spec)
            except SecretProblem as problem:
                # NB: deleting a namespace deletes the Secret and the model together; the client
                # made from the last good read still holds a token source, so use it.
                fingerprint = self._by_secret.get((ctx.ref.namespace, aicore.secret_ref.name))
                cached = self._tenants.get(fingerprint) if fingerprint else None
                if cached is not None:
                    tenant = cached
                elif not _created_remotely(previous):
                    return Finalized(done=True, message="nothing was created on AI Core")
                else:
                    return _blocked(ctx, previous, problem.message, self.settings)
            view = tenant.view(aicore.resource_group)
            names = names_for(ctx.ref, spec)
            listing = view.deployments(aicore.scenario_id)
            try:
                owned = owned_deployments(
                    # NB: a fresh list (shared by concurrent deletions): done means AI Core agrees.
                    await listing.owned(names.configuration_prefix, 0.0),
                    names,
                )
            except Unauthorized:
                # NB: a key AI Core never accepted cannot have created anything.
                if not _created_remotely(previous):
                    return Finalized(done=True, message="nothing was created on AI Core")
                return _blocked(
                    ctx, previous, "AI Core rejects the service key's credentials", self.settings
                )
            decided = plan_finalize(spec, previous, owned)
            for action in decided.actions:
                await self._act(view, ctx, names, action, [])
        except (AICoreError, TimeoutError) as error:
            verdict = classify(error, self.settings.intervals, ctx.now)
            waiting = plan_finalize_unanswered(
                ctx.ref,
                spec,
                previous,
                verdict.outcome.message,
                deletion_started=ctx.deletion_started,
                now=ctx.now,
                deadline=self.settings.deletion_deadline,
            )
            return Finalized(
                done=False,
                stalled=waiting.stalled,
                message=waiting.message,
                retry_after=verdict.delay,
            )
        self._forget(ctx.ref.uid)
        return Finalized(
            done=decided.done,
            message=decided.message,
            retry_after=self.settings.intervals.pending,
            events=decided.events,
        )

    def _forget(self, uid: str) -> None:
        self._failing.pop(uid, None)
        self._failures.pop(uid, None)


# -- deletion that cannot proceed (issue 15 item 3) --------------------------------------------


def _created_remotely(previous: AICoreStatus) -> bool:
    return bool(previous.artifact_id or previous.configuration_id or previous.deployment_id)


def _blocked(
    ctx: ReconcileContext, previous: AICoreStatus, why: str, settings: Settings
) -> Finalized:
    """Stalled: the deployment cannot be stopped without a working key; say how to unblock."""
    assert ctx.spec.aicore is not None
    ref = ctx.spec.aicore.secret_ref
    dep = previous.deployment_id or "(none recorded)"
    return Finalized(
        done=False,
        stalled=True,
        message=(
            f"cannot stop AI Core deployment {dep}: {why}. Fix: put a working service key in "
            f"Secret {ctx.ref.namespace}/{ref.name} (key '{ref.key}'); or stop and delete "
            f"deployment {dep} in resource group '{ctx.spec.aicore.resource_group}' yourself "
            f"(AI Launchpad or the AI API), then remove the finalizer: kubectl patch emb "
            f"{ctx.ref.name} -n {ctx.ref.namespace} --type=merge "
            """-p '{"metadata":{"finalizers":null}}'"""
        ),
        retry_after=settings.intervals.stalled,
    )
