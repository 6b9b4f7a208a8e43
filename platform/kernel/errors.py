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
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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
        type_, title = _STATUS_TYPES.get(exc.status_code, ("http-error", "HTTP error"))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(exc.status_code, type_, title, str(exc.detail), request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(
            500, "internal-error", "Internal error",
            "An unexpected error occurred; it has been logged with this request's id.", request,
        )


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": ProblemDetail.model_json_schema()}},
    }


# Documented on every route, so the OpenAPI says what clients must handle.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Bad request"),
    401: _problem_doc("Missing, unknown or revoked API key"),
    403: _problem_doc("The key's role may not do this"),
    404: _problem_doc("Not found (or not yours)"),
    409: _problem_doc("Conflicts with the current state"),
    422: _problem_doc("Validation error: the body or parameters are invalid"),
    429: _problem_doc("Rate limit exceeded; see Retry-After"),
}
