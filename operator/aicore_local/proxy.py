"""The inference gateway: `{AI_API_URL}/v2/inference/deployments/{id}/<path>` → the predictor.

It checks the bearer token and that AI-Resource-Group names the deployment's group, forwards the
path unchanged (so `/v1/embeddings` and gen_ai_hub's bare `/embeddings` reach the server as sent),
streams the answer back, and records every call so tests can assert which path a client used.
"""

from __future__ import annotations

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .errors import error_response
from .model import now
from .state import Emulator, InferenceCall

# Hop-by-hop headers, plus the gateway's own credentials that the model server must not see.
DROP_REQUEST_HEADERS = {
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "authorization",
    "ai-resource-group",
    "content-length",
}
DROP_RESPONSE_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class InferenceProxy:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def handle(self, request: Request) -> Response:
        did = request.path_params["deployment_id"]
        sub = "/" + request.path_params.get("path", "")
        target = request.url.path
        status = await self._forward_status(request, did)
        if isinstance(status, Response):
            self._record(did, request.method, sub, status.status_code)
            return status
        base = status
        url = base + sub
        if request.url.query:
            url += "?" + request.url.query
        headers = [
            (k, v) for k, v in request.headers.items() if k.lower() not in DROP_REQUEST_HEADERS
        ]
        upstream = self.client.build_request(
            request.method, url, headers=headers, content=await request.body()
        )
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            self._record(did, request.method, sub, 503)
            return error_response(
                503, f"Deployment {did} is not reachable: {type(exc).__name__}", target=target
            )
        self._record(did, request.method, sub, response.status_code)
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers={
                k: v for k, v in response.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS
            },
            background=BackgroundTask(response.aclose),
        )

    async def _forward_status(self, request: Request, did: str) -> Response | str:
        """The predictor's base URL, or the error response the gateway gives instead."""
        target = request.url.path
        if not self.emu.tokens.bearer_ok(request):
            return error_response(
                401,
                "Unauthorized: the bearer token is missing, invalid or expired",
                target=target,
                code="Unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="aicore"'},
            )
        rg = request.headers.get("ai-resource-group", "").strip()
        if not rg:
            return error_response(
                400, "Missing header AI-Resource-Group", target=target, code="MissingResourceGroup"
            )
        dep = self.emu.deployments.get(did)
        if dep is None or dep.resource_group != rg:
            return error_response(
                404, f"Deployment {did} not found in resource group {rg}", target=target
            )
        predictor = self.emu.lifecycle.serving.get(did)
        if predictor is None:
            return error_response(
                503,
                f"Deployment {did} is {dep.status}; it serves requests only while RUNNING",
                target=target,
            )
        if predictor.base_url is None:
            return error_response(
                503,
                f"Deployment {did} runs on the noop runtime: no predictor process serves it",
                target=target,
            )
        return predictor.base_url

    def _record(self, did: str, method: str, path: str, status: int) -> None:
        self.emu.inference_calls.append(InferenceCall(did, method, path, status, now()))

    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        prefix = "/v2/inference/deployments/{deployment_id}"
        return [
            Route(prefix + "/{path:path}", self.handle, methods=methods),
            Route(prefix, self.handle, methods=methods),
        ]
