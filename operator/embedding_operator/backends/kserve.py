"""The KServe backend: observe the InferenceService, apply the rendered one, report KServe's word.

One pass is `get → render → server-side apply → observe the workload → assess → (serving check)`.
Observing the workload reads what KServe made: the predictor Deployment (`<name>-predictor`, get)
and its pods (list by KServe's labels), because KServe's own status says neither why a predictor
pod cannot start nor that a rollout is still under way (plan/kserve.py: `Workload`). Without the
RBAC for them (an older install) the pass goes on with KServe's word alone. Server-side apply with
our field manager (`embedding-operator`, forced) owns exactly the fields `plan.kserve.render`
writes, so KServe's own fields (its finalizer, status, defaults its webhook adds) are left alone
and a changed spec updates the object in place. Deletion needs no work here: the controller owner
reference lets Kubernetes' garbage collector delete the InferenceService with the EmbeddingModel.

Construction (done once by runtime.py):

    KServeBackend(client)                      # settings from the environment
    KServeBackend(client, settings)            # explicit settings
    KServeBackend(client, checker=fake_check)  # tests: any async (url, model) -> CheckResult

With spec.kserve.auth, each pass reads the API-key Secret by name (apikey.py): a missing or unusable
key is Stalled/SecretNotFound before anything is applied, its resourceVersion goes on the pods (a
rotated key rolls them) and the serving check sends the key as a bearer token.

Errors: 404 on apply means the InferenceService API is not served (KServe not installed) and
becomes Stalled/KServeNotInstalled, re-checked every `intervals.stalled`; 400/422 and webhook
denials become Stalled/InferenceServiceRejected with the API server's message. Anything else
(5xx, connection errors, RBAC) is raised for the shell to report and retry with back-off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx2  # lightkube's HTTP client: its non-JSON errors are httpx2 errors, not ApiError
from lightkube import AsyncClient
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.status import KServeStatus, ServingStatus
from embedding_operator.apikey import ApiKey, ApiKeyUnavailable, read_api_key
from embedding_operator.backends.base import (
    Event,
    Finalized,
    ReconcileContext,
    Reconciled,
)
from embedding_operator.kube import FIELD_MANAGER, kube_error
from embedding_operator.plan.kserve import (
    EVENT_CREATED,
    EVENT_UPDATED,
    ISVC_API_VERSION,
    ISVC_GROUP,
    ISVC_KIND,
    ISVC_PLURAL,
    ISVC_VERSION,
    Workload,
    assess,
    foreign_owner,
    mode_change_refused,
    predictor_deployment_name,
    predictor_pod_selector,
    render,
    spec_problem,
)
from embedding_operator.plan.serving_check import (
    CheckResult,
    check_due,
    check_interval,
    judge_serving,
    reuse_serving,
)
from embedding_operator.probe import CHECK_INPUT, Probe
from embedding_operator.settings import Settings

InferenceService = create_namespaced_resource(ISVC_GROUP, ISVC_VERSION, ISVC_KIND, ISVC_PLURAL)

#: async (base_url_with_prefix, served_model_name[, headers]) -> CheckResult; the headers (the
#: API key's Authorization) are passed only for objects with spec.kserve.auth.
ServingChecker = Callable[..., Awaitable[CheckResult]]

__all__ = ["CHECK_INPUT", "KServeBackend", "explain_401", "http_checker", "refusal"]
#: How long a Ready object keeps its last check before the next request, in seconds.
CHECK_INTERVAL = 600.0


def http_checker(timeout: float = 30.0) -> Probe:
    """The real serving check: the shared probe (probe.py), reachability decided by the caller."""
    return Probe(timeout)


def explain_401(result: CheckResult, api_key: ApiKey | None) -> CheckResult:
    """A 401 from the serving check says what to do about the key (spec.kserve.auth)."""
    if not result.error or " returned HTTP 401" not in result.error:
        return result
    hint = (
        "the server wants an API key: set spec.kserve.auth"
        if api_key is None
        else "the key in spec.kserve.auth's Secret is not the one the pods run with: after a "
        "rotation, wait for the new pods"
    )
    return replace(result, error=f"{result.error} ({hint})")


class KServeBackend:
    """Reconciles `backend: kserve` EmbeddingModels into InferenceServices.

    `client` is the operator's lightkube AsyncClient (shared, not closed here); `settings` gives
    the requeue intervals and the serving-check timeout; `checker` replaces the HTTP serving check.
    """

    def __init__(
        self,
        client: AsyncClient,
        settings: Settings | None = None,
        *,
        checker: ServingChecker | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or Settings()
        self._own_probe: Probe | None = None
        if checker is None:
            checker = self._own_probe = Probe(self.settings.serving_check_timeout)
        self.checker: ServingChecker = checker

    async def close(self) -> None:
        if self._own_probe is not None:
            await self._own_probe.aclose()

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled:
        ref, spec = ctx.ref, ctx.spec
        problem = spec_problem(spec)
        if problem is not None:
            return self._result(Outcome.stalled(Reason.INVALID_SPEC, problem))

        api_key: ApiKey | None = None
        auth = spec.kserve_or_default.auth
        if auth is not None:
            try:
                api_key = await read_api_key(self.client, ref.namespace, auth.api_key_secret_ref)
            except ApiKeyUnavailable as error:
                return self._result(Outcome.stalled(error.reason, error.message))

        live = await self._get(ref.name, ref.namespace)
        if live is not None:
            conflict = foreign_owner(ref, live)
            if conflict is not None:
                return self._result(conflict)

        desired = render(ref, spec, live, api_key_version=api_key.version if api_key else None)
        try:
            applied = await self.client.apply(
                InferenceService.from_dict(desired), field_manager=FIELD_MANAGER, force=True
            )
        except httpx2.HTTPStatusError as error:
            refused = refusal(error, self.settings.intervals.stalled)
            if refused is None:
                raise
            return self._result(refused)
        applied_obj = _plain(applied)

        events: list[Event] = []
        generation = _generation(applied_obj)
        if live is None:
            events.append(
                Event.normal(EVENT_CREATED, f"created InferenceService {ref.namespace}/{ref.name}")
            )
        elif generation != _generation(live):
            events.append(
                Event.normal(
                    EVENT_UPDATED,
                    f"updated InferenceService {ref.namespace}/{ref.name} "
                    f"(generation {generation})",
                )
            )

        workload = Workload() if spec.suspend else await self._workload(ref.name, ref.namespace)
        found = assess(spec, applied_obj, workload)
        outcome, serving = found.outcome, None
        if outcome.state == "ready" and events:
            # NB: KServe's Ready still describes the previous spec right after our write, and its
            # status.observedGeneration cannot tell (in Standard mode it copies the Deployment's),
            # so give KServe one poll to react instead of reporting Ready.
            outcome = Outcome.progressing(
                Reason.CREATING if live is None else Reason.UPDATING,
                f"applied InferenceService {ref.name}; waiting for KServe to roll it out",
            )
        elif outcome.state == "ready":
            outcome, serving = await self._verify(ctx, found.check_url, api_key)

        refused_mode = mode_change_refused(spec, live)
        if refused_mode is not None:
            outcome = Outcome.stalled(Reason.INFERENCE_SERVICE_REJECTED, refused_mode)

        return self._result(
            outcome,
            endpoint=found.endpoint,
            kserve=found.kserve,
            serving=serving,
            events=events,
        )

    async def _verify(
        self, ctx: ReconcileContext, url: str | None, api_key: ApiKey | None = None
    ) -> tuple[Outcome, ServingStatus | None]:
        """Ready per KServe: one real embedding request decides (at most once per interval)."""
        subject, previous = f"InferenceService {ctx.ref.name}", ctx.status
        if url is None:
            missing = CheckResult(reachable=False, error="KServe reports no URL")
            return judge_serving(ctx.spec, subject, missing, ctx.now)
        interval = check_interval(ctx.spec, CHECK_INTERVAL, ctx.ref.uid)
        if previous.serving is not None and not check_due(
            previous, ctx.ref.generation, ctx.now, interval
        ):
            return reuse_serving(subject, previous.serving), None
        if api_key is None:
            result = await self.checker(url, ctx.spec.model.name)
        else:
            result = await self.checker(url, ctx.spec.model.name, api_key.headers())
        return judge_serving(ctx.spec, subject, explain_401(result, api_key), ctx.now)

    async def finalize(self, ctx: ReconcileContext) -> Finalized:
        # The InferenceService carries a controller owner reference: the garbage collector
        # deletes it (and KServe its children) once the EmbeddingModel is gone.
        return Finalized(
            done=True,
            message=f"InferenceService {ctx.ref.name} is deleted by garbage collection",
        )

    async def _get(self, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(InferenceService, name, namespace=namespace)
        except httpx2.HTTPStatusError as raw:
            # NB: 404 is also what a cluster without the KServe CRD answers; apply tells the two
            # apart (it succeeds when only the object is missing).
            error = kube_error(raw)
            if error is not None and error.code == 404:
                return None
            raise
        return _plain(obj)

    async def _workload(self, name: str, namespace: str) -> Workload:
        """The predictor Deployment and pods KServe made; what RBAC or the mode hides is absent."""
        deployment: dict[str, Any] | None = None
        pods: list[dict[str, Any]] = []
        try:
            found = await self.client.get(
                Deployment, predictor_deployment_name(name), namespace=namespace
            )
            deployment = found.to_dict()
        except Exception as raw:  # noqa: BLE001 - only the API's 403/404 are expected here
            _expected(raw)
        try:
            labels: dict[str, Any] = dict(predictor_pod_selector(name))
            async for pod in self.client.list(Pod, namespace=namespace, labels=labels):
                pods.append(pod.to_dict())
        except Exception as raw:  # noqa: BLE001 - only the API's 403/404 are expected here
            _expected(raw)
        return Workload(deployment=deployment, pods=pods)

    def _result(
        self,
        outcome: Outcome,
        *,
        endpoint: str | None = None,
        kserve: KServeStatus | None = None,
        serving: ServingStatus | None = None,
        events: list[Event] | None = None,
    ) -> Reconciled:
        intervals = self.settings.intervals
        requeue = {
            "ready": intervals.ready,
            "suspended": intervals.ready,
            "progressing": intervals.pending,
            "stalled": intervals.stalled,
        }[outcome.state]
        return Reconciled(
            outcome,
            requeue_after=requeue,
            endpoint=endpoint,
            kserve=kserve,
            serving=serving,
            events=events or [],
        )


def refusal(error: httpx2.HTTPStatusError, recheck_seconds: float) -> Outcome | None:
    """The Stalled outcome for an apply the user must fix, or None for errors to retry.

    404 on apply means the InferenceService resource is not served at all (no KServe CRD);
    400/422 and admission-webhook denials (KServe's validator may answer 403) carry the API
    server's reason. Anything else (RBAC, 409, 5xx) is for the shell's back-off.
    """
    mapped = kube_error(error)
    assert mapped is not None
    code, message = mapped.code, mapped.message
    if code == 404:
        return Outcome.stalled(
            Reason.KSERVE_NOT_INSTALLED,
            f"the InferenceService API ({ISVC_API_VERSION}) is not served by this cluster: "
            "install KServe (its CRDs and controller); the operator checks again every "
            f"{recheck_seconds:.0f}s",
        )
    if code in (400, 422) or (code == 403 and "admission webhook" in message):
        return Outcome.stalled(
            Reason.INFERENCE_SERVICE_REJECTED,
            f"the API server refused the InferenceService: {message}",
        )
    return None


def _expected(raw: BaseException) -> None:
    """Swallow 404 (Knative mode: no such Deployment) and 403 (no RBAC for it); raise the rest."""
    error = kube_error(raw)
    if error is None or error.code not in (403, 404):
        raise raw


def _plain(obj: Any) -> dict[str, Any]:
    """A generic lightkube object as a plain dict (what the pure functions read)."""
    if isinstance(obj, Mapping):
        data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        return dict(data)
    raise TypeError(f"unexpected {type(obj).__name__} from the API")


def _generation(obj: Mapping[str, Any]) -> int | None:
    meta = obj.get("metadata") or {}
    value = meta.get("generation") if isinstance(meta, Mapping) else None
    return int(value) if isinstance(value, int) else None
