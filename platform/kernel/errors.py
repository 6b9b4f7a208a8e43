"""One error base class carrying its HTTP status and a stable problem type (RFC 9457).

Domain errors subclass `AppError` at the top of their service module; the handlers in
`install_error_handlers` turn every error (ours, validation, routing, unexpected) into an
`application/problem+json` body with no stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from kernel.cache import STORE_OUTAGES

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://marketplace.example/problems/"

log = structlog.get_logger(__name__)


class AppError(Exception):
    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class NotFound(AppError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    type = "conflict"
    title = "Conflict"


class Unprocessable(AppError):
    status = 422
    type = "unprocessable"
    title = "Request cannot be processed"


class Unauthorized(AppError):
    status = 401
    type = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    type = "forbidden"
    title = "Forbidden"


class RateLimited(AppError):
    status = 429
    type = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    type = "service-unavailable"
    title = "Service unavailable"


def problem(status: int, type_: str, title: str, detail: str, instance: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    return body


def problem_response(
    status: int, type_: str, title: str, detail: str, request: Request,
    headers: dict[str, str] | None = None, **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem(status, type_, title, detail, request.url.path, **extra),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


_STATUS_TYPES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation error"),
    429: ("rate-limited", "Too many requests"),
}


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        cleaned.append({
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        })
    return cleaned


def _json_syntax_detail(error: Any, body: Any) -> str:
    """What the JSON parser said and where, as an editor shows it (line and column), instead of
    pydantic's "body.32: JSON decode error"."""
    loc = error.get("loc", ())
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    reason = str((error.get("ctx") or {}).get("error") or "it cannot be parsed")
    detail = f"the request body is not valid JSON: {reason}"
    if position is not None:
        text = body if isinstance(body, str) else ""
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        detail += f" at line {line}, column {column} (character {position})"
    return detail


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Starlette's 405 names only the first route's methods; HTTP wants every method the path has.
    Each method is probed through the app's own route matching (included routers too)."""
    return [
        method for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status, exc.type, exc.title, exc.detail, request, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        if raw and raw[0].get("type") == "json_invalid":
            detail = _json_syntax_detail(raw[0], exc.body)
            return problem_response(422, "invalid-json", "The request body is not valid JSON", detail, request,
                                    errors=[{"loc": ["body"], "msg": detail, "type": "json_invalid"}])
        errors = _jsonable_errors(raw)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        return problem_response(
            422, "validation-error", "Validation error", f"{where}: {first['msg']}", request, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's 400 "There was an error parsing the body" for bytes that are not UTF-8: a
            # JSON body that cannot be read, so the same answer as any other broken JSON.
            detail = f"the request body is not valid JSON: it is not UTF-8 text (byte {exc.__cause__.start})"
            return problem_response(422, "invalid-json", "The request body is not valid JSON", detail, request,
                                    errors=[{"loc": ["body"], "msg": detail, "type": "json_invalid"}])
        type_, title = _STATUS_TYPES.get(exc.status_code, ("http-error", "HTTP error"))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(exc.status_code, type_, title, str(exc.detail), request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette sends this response outside every middleware: add what the request context
        # middleware adds to all others (the request id the log line carries, nosniff).
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        headers = {"X-Content-Type-Options": "nosniff", **({"X-Request-ID": request_id} if request_id else {})}
        if isinstance(exc, STORE_OUTAGES):
            # Redis down or restarting: a condition to retry, not a bug. A write may still have
            # committed (an after-commit cache invalidation can be what failed): say how to retry safely.
            log.warning("store_unavailable", path=request.url.path, error=str(exc))
            return problem_response(
                503, "service-unavailable", "Service unavailable",
                "The platform's cache and counters (Redis) did not answer. Retry shortly; a write sent with an "
                "Idempotency-Key is safe to retry.",
                request, headers={**headers, "Retry-After": "5"},
            )
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(
            500, "internal-error", "Internal error",
            "An unexpected error occurred; it has been logged with this request's id.", request, headers=headers,
        )


class FieldError(BaseModel):
    """One invalid part of a request: where (`loc`), what is wrong (`msg`), pydantic's error type."""

    loc: list[str] = Field(examples=[["body", "items", "0", "quantity"]])
    msg: str = Field(examples=["Input should be greater than or equal to 1"])
    type: str = Field(examples=["greater_than_equal"])


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, the body of every error response (`application/problem+json`).
    `type` is stable: branch on it, not on `detail`. Some problems add fields of their own
    (an out-of-stock problem names the `sku` and what is `available`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{
            "type": PROBLEM_BASE + "out-of-stock", "title": "Not enough stock", "status": 409,
            "detail": "not enough stock of LUMEN-PRO: 3 left, the cart asks for 4",
            "instance": "/v1/storefronts/makers-guild/orders",
            "variant_id": "01a2063a-5b1e-7c3d-9e8f-0123456789ab", "sku": "LUMEN-PRO", "available": 3,
        }]},
    )

    type: str = Field(description="a URI naming the kind of problem; stable", examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(description="a short human summary of the type")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request, in plain words")
    instance: str = Field(description="the request path")
    errors: list[FieldError] | None = Field(
        default=None, description="validation problems (422): every invalid part of the request")


def problem_schema(ref_template: str) -> dict[str, Any]:
    """The problem-details schema and the schemas it refers to, as OpenAPI components."""
    schema = ProblemDetail.model_json_schema(ref_template=ref_template, mode="serialization")
    components: dict[str, Any] = schema.pop("$defs", {})
    components[ProblemDetail.__name__] = schema
    return components
