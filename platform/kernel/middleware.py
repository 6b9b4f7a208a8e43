"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path) that gives every
request an id (honouring an incoming `X-Request-ID`), binds it to the log context, echoes it
in the response, and records Prometheus request counts and latencies per route template.

It is also the HTTP edge's one place for what holds for every request:
* a body larger than settings.max_request_body_bytes is refused with a 413 problem: at once when
  Content-Length says so, else as soon as the streamed (chunked) bytes pass the limit, so a
  30 MB body is never read whole;
* every response says `X-Content-Type-Options: nosniff`;
* one structured log line per request (`request`: method, path, status, duration_ms, client,
  principal kind and id; the request id is in the log context), when settings.log_requests.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import anyio.to_thread
import structlog
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.client import client_address
from kernel.errors import PROBLEM_CONTENT_TYPE, problem
from kernel.metrics import HTTP_LATENCY, HTTP_REQUESTS, REQUEST_STATEMENTS, current_request_statements
from kernel.settings import Settings

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
NOSNIFF = (b"x-content-type-options", b"nosniff")
log = structlog.get_logger("marketplace.http")


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the limit: FastAPI re-raises an
    HTTPException met while reading the body, and the app's handler answers the 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def _settings(scope: Scope) -> Settings | None:
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    return getattr(runtime, "settings", None)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_limited


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
        settings = _settings(scope)
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
                headers.append(NOSNIFF)
                message["headers"] = headers
            await send(message)

        try:
            limit = settings.max_request_body_bytes if settings is not None else None
            if "\x00" in scope["path"] or b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
                # No route, parameter or column takes a NUL character (PostgreSQL cannot store
                # one): answer before any handler tries.
                await _nul_refused(scope, receive, send_with_id)
            elif limit is None:
                await self.app(scope, receive, send_with_id)
            elif (_content_length(scope) or 0) > limit:
                await _too_large(scope, receive, send_with_id, limit)
            else:
                await self.app(scope, _limited(receive, limit), send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            status = status_holder["status"]
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(elapsed)
            REQUEST_STATEMENTS.labels(method, template).observe(statements[0])
            current_request_statements.reset(token)
            if settings is not None and settings.log_requests:
                _log_request(scope, settings, method, status, elapsed)


def _logged_path(scope: Scope) -> str:
    """The path as logged: a secret link's token (a `{token}` path parameter, such as an order's
    status link) stays out of the logs."""
    path: str = scope["path"]
    token = scope.get("path_params", {}).get("token")
    return path.replace(token, "{token}") if isinstance(token, str) and token else path


def _log_request(scope: Scope, settings: Settings, method: str, status: int, elapsed: float) -> None:
    principal = scope.get("state", {}).get("principal")
    kind = getattr(getattr(principal, "role", None), "value", None)
    subject = getattr(principal, "subject_id", None) or getattr(principal, "key_id", None)
    log.info(
        "request", method=method, path=_logged_path(scope), status=status, duration_ms=round(elapsed * 1000, 2),
        client=client_address(scope, settings.trusted_proxies), principal_kind=kind or "anonymous",
        principal_id=str(subject) if subject else None,
    )


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = JSONResponse(
        problem(413, "payload-too-large", "Payload too large",
                f"the request body is larger than the limit of {limit} bytes", scope["path"]),
        status_code=413, media_type=PROBLEM_CONTENT_TYPE,
    )
    await response(scope, receive, send)


async def _nul_refused(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        problem(400, "bad-request", "Bad request", "the path or query string contains a NUL (%00) character",
                scope["path"].replace("\x00", "%00")),
        status_code=400, media_type=PROBLEM_CONTENT_TYPE,
    )
    await response(scope, receive, send)
