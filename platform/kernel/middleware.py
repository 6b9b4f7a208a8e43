"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path) that gives every
request an id (honouring an incoming `X-Request-ID`), binds it to the log context, echoes it
in the response, and records Prometheus request counts and latencies per route template."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import anyio.to_thread
import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.errors import PROBLEM_CONTENT_TYPE, problem
from kernel.metrics import HTTP_LATENCY, HTTP_REQUESTS, REQUEST_STATEMENTS, current_request_statements

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _size_thread_pool(scope: Scope) -> None:
        """At start-up (lifespan, in the server's event loop): cap the threads that run sync
        handlers at settings.server_threads (see Settings)."""
        app = scope.get("app")
        runtime = getattr(getattr(app, "state", None), "runtime", None)
        threads = getattr(getattr(runtime, "settings", None), "server_threads", None)
        if threads:
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                self._size_thread_pool(scope)
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            # No route, parameter or column takes a NUL character (PostgreSQL cannot store one):
            # answer before any handler tries.
            await _nul_refused(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status_holder: dict[str, Any] = {"status": 500}
        statements = [0]
        token = current_request_statements.set(statements)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, template, str(status_holder["status"])).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)
            REQUEST_STATEMENTS.labels(method, template).observe(statements[0])
            current_request_statements.reset(token)


async def _nul_refused(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        problem(400, "bad-request", "Bad request", "the path or query string contains a NUL (%00) character",
                scope["path"].replace("\x00", "%00")),
        status_code=400, media_type=PROBLEM_CONTENT_TYPE,
    )
    await response(scope, receive, send)
