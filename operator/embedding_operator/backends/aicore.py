"""AI Core backend: observe → plan → act for one EmbeddingModel, level-triggered.

Every pass re-reads the service-key Secret by name (so a missing or rotated Secret is picked up
without watching Secrets), checks the scenario and executable, finds-or-creates the artifact and
the configuration by their deterministic names, then lets `plan.aicore.plan_deployment` pick one
step for the deployment. Remote IDs go to status; nothing from the service key does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from embedding_operator.aicore import (
    AICoreClient,
    AICoreError,
    AICoreRequestError,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    ServiceKeyError,
    Unauthorized,
    parse_service_key,
)
from embedding_operator.aicore.models import Deployment, TargetStatus
from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.spec import FINALIZER, AICoreSpec, EmbeddingModelSpec
from embedding_operator.api.status import AICoreStatus, Phase, ServingStatus
from embedding_operator.backends.base import (
    Event,
    Finalized,
    ReconcileContext,
    Reconciled,
)
from embedding_operator.plan.aicore import (
    ACTIVE,
    Names,
    StepKind,
    names_for,
    owned_deployments,
    pick_current,
    plan_cleanup,
    plan_deployment,
)
from embedding_operator.redact import redact
from embedding_operator.serving import MODEL_ARTIFACT, image_of, parameter_bindings
from embedding_operator.settings import Settings

SERVING_CHECK_INPUT = "embedding-operator serving check"


class Stall(Exception):
    """A condition a person must fix; carries the reason and an actionable message."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _CachedClient:
    fingerprint: str
    client: AICoreClient


ServingChecker = Callable[[str, dict[str, str], str, float], Awaitable[int]]


class HttpServingChecker:
    """POSTs one embedding request and returns the vector size; raises on any failure.

    NB: one shared httpx client: building a client per check (TLS context included) costs more
    CPU than the request itself once hundreds of models are polled.
    """

    def __init__(self) -> None:
        self._http = httpx.AsyncClient()

    async def __call__(self, url: str, headers: dict[str, str], model: str, seconds: float) -> int:
        response = await self._http.post(
            f"{url}/embeddings",
            headers=headers,
            json={"model": model, "input": [SERVING_CHECK_INPUT]},
            timeout=seconds,
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"HTTP {response.status_code} from {url}/embeddings: {redact(response.text)[:200]}"
            )
        data = response.json()["data"][0]["embedding"]
        if isinstance(data, str):  # base64 encoding_format
            return len(base64.b64decode(data)) // 4
        return len(data)

    async def aclose(self) -> None:
        await self._http.aclose()


class AICoreBackend:
    """Reconciles `backend: aicore` objects. One instance per operator."""

    def __init__(
        self,
        kube: AsyncClient,
        settings: Settings,
        *,
        checker: ServingChecker | None = None,
        client_factory: Callable[..., AICoreClient] = AICoreClient,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self._own_checker: HttpServingChecker | None = None
        if checker is None:
            checker = self._own_checker = HttpServingChecker()
        self.checker: ServingChecker = checker
        self.client_factory = client_factory
        self._clients: dict[tuple[str, str], _CachedClient] = {}

    async def close(self) -> None:
        for cached in self._clients.values():
            await cached.client.aclose()
        self._clients.clear()
        if self._own_checker is not None:
            await self._own_checker.aclose()

    # -- observe: credentials ----------------------------------------------------------------

    async def _client(self, namespace: str, aicore: AICoreSpec) -> AICoreClient:
        ref = aicore.secret_ref
        where = f"Secret {namespace}/{ref.name}"
        try:
            secret = await self.kube.get(Secret, ref.name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                raise Stall(
                    Reason.SECRET_NOT_FOUND,
                    f"{where} not found: create it with the AI Core service key under key "
                    f"'{ref.key}', e.g. kubectl create secret generic {ref.name} -n {namespace} "
                    f"--from-file={ref.key}=service-key.json",
                ) from None
            if error.status.code == 403:
                raise Stall(
                    Reason.SECRET_NOT_FOUND,
                    f"the operator may not read {where}: grant it 'get' on that Secret "
                    "(see manifests/ RBAC)",
                ) from None
            raise
        raw = (secret.data or {}).get(ref.key)
        if raw is None:
            keys = ", ".join(sorted((secret.data or {}).keys())) or "none"
            raise Stall(
                Reason.SECRET_NOT_FOUND,
                f"{where} has no key '{ref.key}' (it has: {keys}): put the service-key JSON "
                "under that key or set spec.aicore.secretRef.key",
            )
        content = base64.b64decode(raw)
        fingerprint = hashlib.sha256(content).hexdigest()
        cache_key = (namespace, ref.name)
        cached = self._clients.get(cache_key)
        if cached and cached.fingerprint == fingerprint:
            return cached.client
        try:
            key = parse_service_key(content)
        except ServiceKeyError as error:
            raise Stall(Reason.SERVICE_KEY_INVALID, f"{where} key '{ref.key}': {error}") from None
        if cached:  # rotated: drop the old token along with the old client
            await cached.client.aclose()
        client = self.client_factory(key)
        self._clients[cache_key] = _CachedClient(fingerprint, client)
        return client

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled:
        spec = ctx.spec
        assert spec.aicore is not None  # the CRD's CEL rule guarantees it
        aicore = spec.aicore
        previous = ctx.status.aicore or AICoreStatus()
        try:
            client = await self._client(ctx.ref.namespace, aicore)
            return await self._reconcile(ctx, client, aicore, previous)
        except Stall as stall:
            return Reconciled(
                Outcome.stalled(stall.reason, stall.message),
                requeue_after=self.settings.intervals.stalled,
                aicore=previous,
            )
        except Unauthorized:
            return Reconciled(
                Outcome.stalled(
                    Reason.AUTHENTICATION_FAILED,
                    f"AI Core rejected the credentials in Secret {ctx.ref.namespace}/"
                    f"{aicore.secret_ref.name}: check clientid/clientsecret/url or rotate the key",
                ),
                requeue_after=self.settings.intervals.stalled,
                aicore=previous,
            )
        except InvalidRequest as error:
            return Reconciled(
                Outcome.stalled(Reason.AICORE_REJECTED, f"AI Core rejected a request: {error}"),
                requeue_after=self.settings.intervals.stalled,
                aicore=previous,
            )
        except (AICoreRequestError, ServerError, RateLimited, Conflict) as error:
            return Reconciled(
                Outcome.progressing(Reason.AICORE_UNAVAILABLE, f"retrying: {error}"),
                requeue_after=self.settings.intervals.pending,
                aicore=previous,
            )

    async def _check_template(self, client: AICoreClient, aicore: AICoreSpec) -> None:
        rg = aicore.resource_group
        try:
            await client.get_scenario(aicore.scenario_id, resource_group=rg)
        except NotFound:
            raise Stall(
                Reason.SCENARIO_NOT_FOUND,
                f"scenario '{aicore.scenario_id}' not found in resource group '{rg}': push "
                "manifests/aicore/serving-template.yaml to the git repository your AI Core "
                "application syncs, then refresh the application",
            ) from None
        try:
            await client.get_executable(aicore.scenario_id, aicore.executable_id, resource_group=rg)
        except NotFound:
            raise Stall(
                Reason.EXECUTABLE_NOT_FOUND,
                f"executable '{aicore.executable_id}' not found in scenario "
                f"'{aicore.scenario_id}': push manifests/aicore/serving-template.yaml "
                "(metadata.name is the executable id) to the repository your AI Core "
                "application syncs",
            ) from None

    async def _ensure_artifact(
        self, client: AICoreClient, spec: EmbeddingModelSpec, names: Names, events: list[Event]
    ) -> str:
        aicore = spec.aicore
        assert aicore is not None
        rg = aicore.resource_group

        async def find() -> str | None:
            found = await client.find_artifacts(
                aicore.scenario_id, resource_group=rg, name=names.artifact, labels=names.labels
            )
            match = [a for a in found if a.url == spec.model.uri]
            return match[0].id if match else None

        existing = await find()
        if existing:
            return existing
        created = await client.create_artifact(
            resource_group=rg,
            name=names.artifact,
            url=spec.model.uri,
            scenario_id=aicore.scenario_id,
            description=f"{spec.model.name} for EmbeddingModel {names.labels}",
            labels=names.labels,
            find=find,
        )
        events.append(Event.normal("ArtifactCreated", f"AI Core artifact {created.id}"))
        return created.id

    async def _ensure_configuration(
        self,
        client: AICoreClient,
        spec: EmbeddingModelSpec,
        names: Names,
        artifact_id: str,
        events: list[Event],
    ) -> str:
        aicore = spec.aicore
        assert aicore is not None
        rg = aicore.resource_group

        async def find() -> str | None:
            found = await client.find_configurations(
                aicore.scenario_id,
                resource_group=rg,
                executable_ids=[aicore.executable_id],
                name=names.configuration,
            )
            return found[0].id if found else None

        existing = await find()
        if existing:
            return existing
        created = await client.create_configuration(
            resource_group=rg,
            name=names.configuration,
            scenario_id=aicore.scenario_id,
            executable_id=aicore.executable_id,
            parameter_bindings={b["key"]: b["value"] for b in parameter_bindings(spec)},
            artifact_bindings={MODEL_ARTIFACT: artifact_id},
            find=find,
        )
        events.append(
            Event.normal(
                "ConfigurationCreated",
                f"AI Core configuration {names.configuration} ({created.id})",
            )
        )
        return created.id

    async def _observe_deployments(
        self,
        client: AICoreClient,
        aicore: AICoreSpec,
        names: Names,
        previous: AICoreStatus,
        settled: bool,
    ) -> list[Deployment]:
        """Our deployments: just the recorded one when settled, else a scan of the scenario
        (which also finds duplicates left by an interrupted create)."""
        if settled and previous.deployment_id:
            try:
                recorded = await client.get_deployment(
                    previous.deployment_id, resource_group=aicore.resource_group
                )
            except NotFound:
                pass
            else:
                return [recorded]
        return await self._owned(client, aicore, names)

    async def _owned(
        self, client: AICoreClient, aicore: AICoreSpec, names: Names
    ) -> list[Deployment]:
        deployments = await client.list_deployments(
            resource_group=aicore.resource_group, scenario_id=aicore.scenario_id
        )
        return owned_deployments(deployments, names)

    async def _reconcile(
        self,
        ctx: ReconcileContext,
        client: AICoreClient,
        aicore: AICoreSpec,
        previous: AICoreStatus,
    ) -> Reconciled:
        spec, rg, intervals = ctx.spec, aicore.resource_group, self.settings.intervals
        events: list[Event] = []
        names = names_for(ctx.ref, spec)
        # NB: the configuration name is a hash of everything it binds, so a recorded name equal to
        # the desired one means artifact and configuration are already right: steady-state polls
        # then cost one GET of the deployment instead of a scan of the whole scenario.
        settled = bool(
            previous.configuration_name == names.configuration
            and previous.configuration_id
            and previous.artifact_id
        )
        if settled:
            artifact_id, configuration_id = (
                str(previous.artifact_id),
                str(previous.configuration_id),
            )
        else:
            await self._check_template(client, aicore)
            artifact_id = await self._ensure_artifact(client, spec, names, events)
            configuration_id = await self._ensure_configuration(
                client, spec, names, artifact_id, events
            )
        owned = await self._observe_deployments(client, aicore, names, previous, settled)
        current = pick_current(owned, previous.deployment_id)
        step = plan_deployment(
            suspend=spec.suspend,
            desired_configuration_id=configuration_id,
            current=current,
            recorded_id=previous.deployment_id,
            was_suspended=ctx.status.phase == Phase.SUSPENDED,
        )
        events += step.events
        outcome = step.outcome
        deployment = current
        requeue = intervals.pending
        serving: ServingStatus | None = None

        if step.kind == StepKind.CREATE or step.kind == StepKind.REPLACE:
            if step.kind == StepKind.REPLACE and step.deployment_id:
                await client.delete_deployment(step.deployment_id, resource_group=rg)

            async def find() -> str | None:
                fresh = await self._owned(client, aicore, names)
                match = [
                    d
                    for d in fresh
                    if d.configuration_id == configuration_id and d.id != step.deployment_id
                ]
                return match[-1].id if match else None

            created = await client.create_deployment(
                configuration_id, resource_group=rg, ttl=aicore.ttl, find=find
            )
            events.append(Event.normal("DeploymentCreated", f"AI Core deployment {created.id}"))
            deployment = await client.get_deployment(created.id, resource_group=rg)
        elif step.kind == StepKind.PATCH and step.deployment_id:
            await client.patch_deployment(
                step.deployment_id, resource_group=rg, configuration_id=configuration_id
            )
        elif step.kind == StepKind.STOP and step.deployment_id:
            await client.patch_deployment(
                step.deployment_id, resource_group=rg, target_status=TargetStatus.STOPPED
            )
        elif step.kind == StepKind.VERIFY and current is not None:
            outcome, serving = await self._verify(client, spec, current)
            requeue = intervals.ready if outcome.state == "ready" else intervals.pending
        elif step.kind == StepKind.DONE:
            requeue = intervals.ready
        if step.fetch_logs and current is not None:
            requeue = intervals.stalled
            if previous.deployment_status != current.status.value:
                events.append(await self._dead_event(client, current, rg))

        # Deployments we no longer serve from (replaced, duplicates) are stopped, then deleted.
        if deployment is not None and not spec.suspend:
            cleanup = plan_cleanup(owned, keep=deployment.id)
            for dep_id in cleanup.stop:
                await client.stop_deployment(dep_id, resource_group=rg)
            for dep_id in cleanup.delete:
                if dep_id != step.deployment_id:
                    await client.delete_deployment(dep_id, resource_group=rg)

        endpoint = None
        # NB: during a rollout the old configuration keeps serving at the same URL, so the
        # endpoint stays published until the deployment stops.
        if (
            deployment is not None
            and deployment.deployment_url
            and deployment.status in ACTIVE
            and not spec.suspend
        ):
            endpoint = deployment.deployment_url.rstrip("/") + spec.serving.url_prefix
        status = AICoreStatus(
            artifact_id=artifact_id,
            configuration_id=configuration_id,
            configuration_name=names.configuration,
            deployment_id=deployment.id if deployment else None,
            deployment_status=deployment.status.value if deployment else None,
            target_status=(
                deployment.target_status.value if deployment and deployment.target_status else None
            ),
            status_message=(deployment.status_message if deployment else None),
            deployment_url=(deployment.deployment_url or None) if deployment else None,
            resource_group=rg,
        )
        if serving is not None:
            serving.image = image_of(spec)
        return Reconciled(
            outcome,
            requeue_after=requeue,
            endpoint=endpoint,
            aicore=status,
            serving=serving,
            events=events,
        )

    async def _verify(
        self, client: AICoreClient, spec: EmbeddingModelSpec, deployment: Deployment
    ) -> tuple[Outcome, ServingStatus]:
        assert spec.aicore is not None
        url = deployment.deployment_url.rstrip("/") + spec.serving.url_prefix
        headers = await client.inference_headers(spec.aicore.resource_group)
        try:
            dims = await self.checker(
                url, headers, spec.model.name, self.settings.serving_check_timeout
            )
        except Exception as error:  # noqa: BLE001 - any failure means "not serving yet"
            message = f"serving check failed: {type(error).__name__}: {str(error)[:300]}"
            return (
                Outcome.progressing(Reason.SERVING_CHECK_FAILED, message),
                ServingStatus(verified=False, message=message),
            )
        expected = spec.model.dimensions
        if expected is not None and dims != expected:
            message = (
                f"the deployment returns {dims}-dimensional embeddings but spec.model.dimensions "
                f"is {expected}: fix spec.model.dimensions or spec.model.uri"
            )
            return (
                Outcome.stalled(Reason.DIMENSION_MISMATCH, message),
                ServingStatus(dimensions=dims, verified=False, message=message),
            )
        return (
            Outcome.ready(
                Reason.SERVING_VERIFIED,
                f"deployment {deployment.id} serves {dims}-dimensional embeddings",
            ),
            ServingStatus(dimensions=dims, verified=True),
        )

    async def _dead_event(self, client: AICoreClient, deployment: Deployment, rg: str) -> Event:
        tail = ""
        try:
            logs = await client.get_deployment_logs(deployment.id, resource_group=rg, top=20)
            tail = "\n".join(entry.msg for entry in logs[-10:])
        except AICoreError:
            tail = "(logs unavailable)"
        return Event.warning(
            "DeploymentDead",
            f"AI Core deployment {deployment.id} is DEAD: {deployment.status_message or ''}\n"
            f"{tail}"[:1000],
        )

    # -- delete ------------------------------------------------------------------------------

    async def finalize(self, ctx: ReconcileContext) -> Finalized:
        aicore = ctx.spec.aicore
        assert aicore is not None
        previous = ctx.status.aicore or AICoreStatus()
        if aicore.deletion_policy == "Orphan":
            return Finalized(
                done=True,
                message="deletionPolicy Orphan",
                events=[
                    Event.normal(
                        "Orphaned",
                        f"left AI Core deployment {previous.deployment_id or '(none)'} running "
                        "(spec.aicore.deletionPolicy: Orphan)",
                    )
                ],
            )
        try:
            try:
                client = await self._client(ctx.ref.namespace, aicore)
            except Stall as stall:
                # NB: deleting a namespace deletes the Secret and the model together; the client
                # cached from the last pass still holds a token source, so use it.
                cached = self._clients.get((ctx.ref.namespace, aicore.secret_ref.name))
                if cached is not None:
                    client = cached.client
                elif not (
                    previous.artifact_id or previous.configuration_id or previous.deployment_id
                ):
                    return Finalized(done=True, message="nothing was created on AI Core")
                else:
                    return Finalized(
                        done=False,
                        message=f"cannot stop deployment {previous.deployment_id}: "
                        f"{stall.message}; or remove the finalizer {FINALIZER} to leave it "
                        "running",
                        retry_after=self.settings.intervals.stalled,
                    )
            owned = await self._owned(client, aicore, names_for(ctx.ref, ctx.spec))
        except (AICoreError, ApiError) as error:
            return Finalized(
                done=False,
                message=f"retrying: {error}",
                retry_after=self.settings.intervals.pending,
            )
        cleanup = plan_cleanup(owned, keep=None)
        rg = aicore.resource_group
        try:
            for dep_id in cleanup.stop:
                await client.stop_deployment(dep_id, resource_group=rg)
            for dep_id in cleanup.delete:
                try:
                    await client.delete_deployment(dep_id, resource_group=rg)
                except NotFound:
                    pass
        except AICoreError as error:
            return Finalized(
                done=False,
                message=f"retrying: {error}",
                retry_after=self.settings.intervals.pending,
            )
        if not owned:
            return Finalized(
                done=True,
                message="no AI Core deployment left",
                events=[Event.normal("Deleted", "AI Core deployments stopped and deleted")],
            )
        pending = ", ".join(d.id + "=" + d.status.value for d in owned)
        return Finalized(
            done=False,
            message=f"stopping and deleting AI Core deployments: {pending}",
            retry_after=self.settings.intervals.pending,
        )
