"""Assembles the Starlette app: token endpoint, AI API, admin API, inference gateway, the
emulator's own `/_emulator/*` control endpoints (no auth, loopback only), and JSON error bodies
for unknown routes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api_admin, api_lm
from .endpoint import json_body
from .errors import error_response
from .faults import FaultMiddleware, FaultSpecError
from .proxy import InferenceProxy
from .settings import Settings
from .state import Emulator

log = logging.getLogger("aicore_local")


class SaveAfterWrites:
    """Saves the state after a successful write to the AI API, before the answer goes out:
    an object a client was told about is never lost by a restart. Concurrent writes share a
    save (`persistence.GroupCommit`)."""

    def __init__(self, app: ASGIApp, emu: Emulator) -> None:
        self.app = app
        self.emu = emu

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD")
            or not path.startswith("/v2/")
            or path.startswith("/v2/inference/")
        ):
            await self.app(scope, receive, send)
            return
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status < 400:
                    await self.emu.commits.commit()  # NB: before the client hears "created"
            await send(message)

        await self.app(scope, receive, capture)


def build_app(settings: Settings) -> Starlette:
    emu = Emulator(settings)
    proxy = InferenceProxy(emu)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "runtime": emu.faults.runtime})

    async def get_faults(request: Request) -> Response:
        return JSONResponse(emu.faults.wire())

    async def set_faults(request: Request) -> Response:
        body = await json_body(request)
        try:
            actions = emu.faults.configure(body)
        except FaultSpecError as exc:
            return error_response(400, str(exc), target=request.url.path, code="InvalidFault")
        result: dict[str, Any] = {}
        if "expire_tokens" in actions:
            result["expiredTokens"] = emu.tokens.invalidate_all()
        if "token_lifetime" in actions:
            emu.tokens.lifetime_s = float(body["token_lifetime_seconds"])
        log.info("faults set: %s", sorted(body))
        return JSONResponse({**emu.faults.wire(), **result})

    async def clear_faults(request: Request) -> Response:
        emu.faults.clear()
        emu.tokens.lifetime_s = settings.token_lifetime_s
        return JSONResponse(emu.faults.wire())

    async def get_calls(request: Request) -> Response:
        return JSONResponse({"calls": [c.wire() for c in emu.inference_calls]})

    async def clear_calls(request: Request) -> Response:
        emu.inference_calls.clear()
        return Response(status_code=204)

    async def get_templates(request: Request) -> Response:
        return JSONResponse(
            {
                "dirs": [str(d) for d in emu.template_dirs()],
                "executables": sorted(emu.templates),
                "errors": emu.template_errors,
            }
        )

    async def sync_templates(request: Request) -> Response:
        emu.sync_templates()
        return await get_templates(request)

    async def predictor_info(request: Request) -> Response:
        did = request.path_params["deployment_id"]
        predictor = emu.lifecycle.serving.get(did)
        if predictor is None:
            return error_response(404, f"no serving predictor for {did}", target=request.url.path)
        proc = getattr(predictor, "proc", None)
        return JSONResponse(
            {"baseUrl": predictor.base_url, "pid": proc.pid if proc is not None else None}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await emu.start()
        try:
            yield
        finally:
            await emu.shutdown()
            await proxy.aclose()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "Resource not found" if status == 404 else str(getattr(exc, "detail", exc))
        return error_response(status, message, target=request.url.path)

    routes: list[Route] = [
        Route("/oauth/token", emu.tokens.token_endpoint, methods=["POST"]),
        *api_lm.routes(emu),
        *api_admin.routes(emu),
        *proxy.routes(),
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/faults", get_faults, methods=["GET"]),
        Route("/_emulator/faults", set_faults, methods=["POST"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/inference-calls", get_calls, methods=["GET"]),
        Route("/_emulator/inference-calls", clear_calls, methods=["DELETE"]),
        Route("/_emulator/templates", get_templates, methods=["GET"]),
        Route("/_emulator/templates/sync", sync_templates, methods=["POST"]),
        Route("/_emulator/deployments/{deployment_id}/predictor", predictor_info, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(FaultMiddleware, faults=emu.faults),
            Middleware(SaveAfterWrites, emu=emu),
        ],
        exception_handlers={HTTPException: not_found},
    )
    app.state.emulator = emu
    return app
