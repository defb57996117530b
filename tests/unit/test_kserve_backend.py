"""How the KServe backend maps API errors from applying an InferenceService (table).

The full reconcile runs against a real API server in tests/integration/test_kserve_reconcile.py;
this covers responses the local control plane cannot produce (webhook denials, RBAC).
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from lightkube import ApiError

from embedding_operator.api.conditions import Reason
from embedding_operator.backends.kserve import refusal

REQUEST = httpx2.Request("PATCH", "https://127.0.0.1:6443/apis/serving.kserve.io/v1beta1/x")


def status_error(code: int, message: str) -> httpx2.HTTPStatusError:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }
    return ApiError(request=REQUEST, response=httpx2.Response(code, json=body, request=REQUEST))


def text_error(code: int, text: str) -> httpx2.HTTPStatusError:
    response = httpx2.Response(code, text=text, request=REQUEST)
    return httpx2.HTTPStatusError(text, request=REQUEST, response=response)


WEBHOOK = (
    'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: '
    "update rejected: deploymentMode cannot be changed from 'RawDeployment' to 'Standard'"
)


@pytest.mark.parametrize(
    ("error", "reason", "fragment"),
    [
        (text_error(404, "404 page not found"), Reason.KSERVE_NOT_INSTALLED, "install KServe"),
        (
            status_error(422, 'InferenceService "m" is invalid: spec.predictor.x: Invalid'),
            Reason.INFERENCE_SERVICE_REJECTED,
            "spec.predictor.x: Invalid",
        ),
        (status_error(400, WEBHOOK), Reason.INFERENCE_SERVICE_REJECTED, "cannot be changed"),
        (status_error(403, WEBHOOK), Reason.INFERENCE_SERVICE_REJECTED, "denied the request"),
        # Our own RBAC or an outage: not the user's to fix, raised for the shell to retry.
        (status_error(403, 'inferenceservices is forbidden: User "system:x"'), None, ""),
        (status_error(500, "etcdserver: request timed out"), None, ""),
        (status_error(409, "conflict"), None, ""),
    ],
    ids=["no-crd", "invalid", "webhook-400", "webhook-403", "rbac", "5xx", "conflict"],
)
def test_apply_errors(
    error: httpx2.HTTPStatusError,
    reason: Reason | None,
    fragment: str,
) -> None:
    outcome = refusal(error, recheck_seconds=30)
    if reason is None:
        assert outcome is None
        return
    assert outcome is not None
    assert (outcome.state, outcome.reason) == ("stalled", reason)
    assert fragment in outcome.message
