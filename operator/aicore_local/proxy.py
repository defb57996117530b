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
from .runtime.base import Predictor
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
        # NB: idle connections expire before the predictor's own keep-alive (uvicorn's 5 s) ends
        # them: at httpx's default (also 5 s) a request on a connection the server had just
        # closed failed with ReadError and the gateway answered 503 (seen at 500 deployments on
        # one shared infinity).
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(300.0, connect=5.0),
            limits=httpx.Limits(max_connections=100, keepalive_expiry=1.0),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def handle(self, request: Request) -> Response:
        did = request.path_params["deployment_id"]
        sub = "/" + request.path_params.get("path", "")
        refused = self._refuse(request, did)
        if refused is not None:
            self._record(did, request.method, sub, refused.status_code)
            return refused
        lifecycle = self.emu.lifecycle
        predictor = lifecycle.acquire(did)
        if predictor is None or predictor.base_url is None:
            if predictor is not None:
                lifecycle.release(predictor)
            response = self._not_serving(request, did)
            self._record(did, request.method, sub, response.status_code)
            return response
        try:
            return await self._forward(request, did, sub, predictor)
        except BaseException:
            lifecycle.release(predictor)
            raise

    async def _forward(
        self, request: Request, did: str, sub: str, predictor: Predictor
    ) -> Response:
        """Forward to `predictor`; it is released once the response body has been sent."""
        url = f"{predictor.base_url}{sub}"
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
            self.emu.lifecycle.release(predictor)
            self._record(did, request.method, sub, 503)
            return error_response(
                503,
                f"Deployment {did} is not reachable: {type(exc).__name__}",
                target=request.url.path,
            )
        self._record(did, request.method, sub, response.status_code)

        async def done() -> None:
            await response.aclose()
            self.emu.lifecycle.release(predictor)

        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers={
                k: v for k, v in response.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS
            },
            background=BackgroundTask(done),
        )

    def _refuse(self, request: Request, did: str) -> Response | None:
        """The gateway's auth and routing checks; None when the request may pass."""
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
        return None

    def _not_serving(self, request: Request, did: str) -> Response:
        dep = self.emu.deployments.get(did)
        if did in self.emu.lifecycle.serving:
            message = f"Deployment {did} runs on the noop runtime: no predictor process serves it"
        else:
            status = dep.status if dep is not None else "gone"
            message = f"Deployment {did} is {status}; it serves requests only while RUNNING"
        return error_response(503, message, target=request.url.path)

    def _record(self, did: str, method: str, path: str, status: int) -> None:
        self.emu.inference_calls.append(InferenceCall(did, method, path, status, now()))

    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        prefix = "/v2/inference/deployments/{deployment_id}"
        return [
            Route(prefix + "/{path:path}", self.handle, methods=methods),
            Route(prefix, self.handle, methods=methods),
        ]
