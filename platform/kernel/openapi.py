"""The OpenAPI document, made accurate and small in one place (the assembly calls `install_openapi`).

FastAPI documents what a route returns on success; what it can answer with an error it only
knows where a route says so. Rather than a hand-kept list on each of ~100 routes (which would
drift), the errors are read from the code:

* every `AppError` the endpoint, its dependencies (authentication, role checks, rate limits,
  strict query parameters) and the project functions they call can raise (`raised_errors`);
* 422 wherever FastAPI validates something (parameters or a body);
* 400 where the request has a path or query (a NUL in either is refused before routing).

So a public route lists no 401/403, `/healthz` lists no error, a 409 appears where a service
raises a conflict, and each error response says which problem `type`s it carries. Every error
response refers to ONE problem-details schema (`#/components/schemas/ProblemDetail`) instead of a copy
of it (the document was 640 KB of copies).

Operations without an explicit `summary` get the first sentence of their docstring instead of
FastAPI's title-cased function name ("Accept", "Balances").
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from kernel.auth import PayeeRejected
from kernel.deps import endpoint_acts
from kernel.errors import PROBLEM_CONTENT_TYPE, AppError, ProblemDetail, problem_schema

PROBLEM_REF = f"#/components/schemas/{ProblemDetail.__name__}"

# What each status means for a client, whatever the route (the problem types follow it).
STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed",
    401: "Missing, unknown or revoked API key",
    403: "The key's role may not do this",
    404: "Not found (or not yours)",
    409: "Conflicts with the current state",
    413: "The body is too large",
    415: "Unsupported content type",
    422: "The body or parameters are invalid",
    429: "Rate limit exceeded; see Retry-After",
    502: "The payment rail did not answer as expected",
    503: "A service the platform needs is unavailable",
}


def install_openapi(app: FastAPI, packages: Iterable[str]) -> None:
    """Replace `app.openapi` with one that refines FastAPI's document (once, then cached).
    `packages`: the top-level packages whose code is read for the errors it raises."""
    roots = frozenset(packages)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes, tags=app.openapi_tags, servers=app.servers,
            )
            refine(schema, app, roots)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def refine(schema: dict[str, Any], app: FastAPI, roots: frozenset[str]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem_schema(PROBLEM_REF.rsplit("/", 1)[0] + "/{model}"))
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        dependant: Dependant = context.dependant
        errors = set(raised_errors_of_route(dependant, roots))
        if not dependant.path_params and 404 not in (context.responses or {}):
            # A 404 without an id in the path comes from a look-up that cannot miss (the caller's own
            # seller or affiliate: keys exist only for existing ones, which are never deleted); a
            # route that looks up an id from its body or query declares `responses={404: ...}`.
            errors = {error for error in errors if error.status != 404}
        validates = bool(_request_params(dependant)) or context.body_field is not None
        has_body = context.body_field is not None
        if dependant.path_params or _query_params(dependant):
            # RequestContextMiddleware refuses a NUL (%00) in the path or query before routing.
            errors.add(_NulInRequest)
        for method in context.methods or ():
            operation = schema["paths"][context.path_format][method.lower()]
            if context.summary is None and operation.get("description"):
                operation["summary"] = summary_of(operation["description"])
            # A rejected payee's key still reads: `payee-rejected` only where the call acts.
            acts = endpoint_acts(route.endpoint, method)
            method_errors = errors if acts else {error for error in errors if error is not PayeeRejected}
            if has_body:
                method_errors = {*method_errors, _BodyTooLarge}
            _document_errors(operation, method_errors, validates, has_body)
    _restore_examples(components, roots)
    paths = json.dumps(schema["paths"])
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 schemas, replaced above
        if f'/{unused}"' not in paths:
            components.pop(unused, None)


def _restore_examples(components: dict[str, Any], roots: frozenset[str]) -> None:
    """Models' examples as written: FastAPI drops every null from the document (exclude_none), and
    an example of a model with nullable fields would then not validate against its own schema."""
    for model in _models(BaseModel):
        extra = model.model_config.get("json_schema_extra")
        if (model.__module__.split(".")[0] in roots and isinstance(extra, dict) and "examples" in extra
                and model.__name__ in components):
            components[model.__name__]["examples"] = extra["examples"]


def _models(base: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in base.__subclasses__():
        yield sub
        yield from _models(sub)


def _document_errors(
    operation: dict[str, Any], errors: set[type[AppError]], validates: bool, has_body: bool
) -> None:
    types_by_status: dict[int, set[str]] = {}
    for error in errors:
        types_by_status.setdefault(error.status, set()).add(error.type)
    if validates:
        types_by_status.setdefault(422, set()).add("validation-error")
    if has_body:
        types_by_status.setdefault(422, set()).add("invalid-json")
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # FastAPI's own 422 (HTTPValidationError) is not what the API answers: the handlers answer
    # problem details.
    responses.pop("422", None)
    for code, response in responses.items():
        # Error responses a route declares itself are problem details too (a declared body other
        # than a problem, like readyz's 503, stays); say which types they carry.
        if code[0] not in "45":
            continue
        content = response.get("content")
        if content is None or any(_refers_to_problem(media) for media in content.values()):
            response["content"] = _problem_content()
        if int(code) in types_by_status:
            description = response.get("description") or STATUS_DESCRIPTIONS.get(int(code), "Error")
            response["description"] = f"{description}. {_types(types_by_status[int(code)])}"
    for status in sorted(types_by_status):
        responses.setdefault(str(status), {
            "description": f"{STATUS_DESCRIPTIONS.get(status, 'Error')}. {_types(types_by_status[status])}",
            "content": _problem_content(),
        })


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}}


def _types(problem_types: set[str]) -> str:
    return "Problem `type`: " + ", ".join(f"`{t}`" for t in sorted(problem_types))


def _refers_to_problem(media: dict[str, Any]) -> bool:
    return bool(media.get("schema", {}).get("$ref", "").endswith("/" + ProblemDetail.__name__))


class _NulInRequest(AppError):
    """Documents `kernel.middleware`'s refusal of a NUL (%00) in the path or query string, which
    happens before any route runs (so no route's code raises it)."""

    status = 400
    type = "bad-request"


class _BodyTooLarge(AppError):
    """Documents `kernel.middleware`'s 413 for a body past settings.max_request_body_bytes, which
    is answered before any route runs (so no route's code raises it)."""

    status = 413
    type = "payload-too-large"


def _query_params(dependant: Dependant) -> list[Any]:
    return [*dependant.query_params, *(p for sub in dependant.dependencies for p in _query_params(sub))]


def _request_params(dependant: Dependant) -> list[Any]:
    params = [*dependant.path_params, *dependant.query_params, *dependant.header_params, *dependant.cookie_params]
    for sub in dependant.dependencies:
        params += _request_params(sub)
    return params


_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)(?<!etc)\.(\s|$)")


SUMMARY_MAX = 72


def summary_of(description: str) -> str:
    """The first sentence of a docstring, on one line, without its full stop; a long one is cut
    at its first clause break (a list, a parenthesis, a colon) so it reads as a title."""
    paragraph = " ".join(description.strip().split("\n\n")[0].split())
    match = _SENTENCE_END.search(paragraph)
    sentence = paragraph[:match.start()] if match else paragraph.rstrip(".")
    if len(sentence) <= SUMMARY_MAX:
        return sentence
    breaks = [at for at in _clause_breaks(sentence) if 12 <= at <= SUMMARY_MAX]  # past "Operator: "
    if breaks:
        return sentence[:breaks[-1]]
    return sentence[:sentence.rfind(" ", 0, SUMMARY_MAX)] + " …"  # no break: cut at a word


def _clause_breaks(sentence: str) -> Iterator[int]:
    """Where a clause break starts, outside parentheses and `code`."""
    depth, code = 0, False
    for at, char in enumerate(sentence):
        if char == "`":
            code = not code
        elif not code and char == "(":
            if depth == 0 and sentence[at - 1:at] == " ":
                yield at - 1
            depth += 1
        elif not code and char == ")":
            depth = max(0, depth - 1)
        elif not code and depth == 0 and sentence[at:at + 2] in (": ", "; ", ", "):
            yield at


# --- which errors a route can raise -------------------------------------------------------------


def raised_errors_of_route(dependant: Dependant, roots: frozenset[str]) -> frozenset[type[AppError]]:
    calls = [d.call for d in _dependants(dependant) if d.call is not None]
    return raised_errors(calls, roots)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def raised_errors(functions: Iterable[Callable[..., Any]], roots: frozenset[str]) -> frozenset[type[AppError]]:
    """Every AppError subclass raised by `functions` or by the project functions they call or refer
    to, transitively. Read from the source: what a name in a `raise` or a call resolves to in the
    function's module (and closure). Calls through instances (`self.x()`, `runtime.rail.y()`) are
    not followed; an error raised in a branch that cannot run for a route is still listed (the
    document may say a little more than happens, not less than the code can raise)."""
    seen: set[types.FunctionType] = set()
    todo = [fn for call in functions if (fn := _project_function(call, roots)) is not None]
    found: set[type[AppError]] = set()
    while todo:
        function = todo.pop()
        if function in seen:
            continue
        seen.add(function)
        errors, callees = _read(function, roots)
        found |= errors
        todo.extend(callees)
    return frozenset(found)


def _project_function(obj: Any, roots: frozenset[str]) -> types.FunctionType | None:
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType) and (obj.__module__ or "").split(".")[0] in roots:
        return obj
    return None


@cache
def _read(function: types.FunctionType, roots: frozenset[str]) -> tuple[frozenset[type[AppError]], tuple[Any, ...]]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return frozenset(), ()
    namespace = dict(function.__globals__)
    with contextlib.suppress(TypeError, ValueError):
        namespace.update(inspect.getclosurevars(function).nonlocals)
    errors: set[type[AppError]] = set()
    callees: list[types.FunctionType] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            error = _as_error(_resolve(target, namespace))
            if error is not None:
                errors.add(error)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
            callee = _project_function(_resolve(node, namespace), roots)
            if callee is not None and callee is not function:
                callees.append(callee)
    return frozenset(errors), tuple(callees)


def _resolve(node: ast.expr, namespace: dict[str, Any]) -> Any:
    """What a dotted name refers to, looking only into modules and classes (never an instance's
    attributes: a property may do work)."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        if isinstance(base, types.ModuleType) or inspect.isclass(base):
            return inspect.getattr_static(base, node.attr, None) if inspect.isclass(base) \
                else getattr(base, node.attr, None)
    return None


def _as_error(obj: Any) -> type[AppError] | None:
    """An AppError class, or the AppError class a factory function says it returns."""
    if inspect.isclass(obj) and issubclass(obj, AppError):
        return obj
    if isinstance(obj, types.FunctionType):
        annotation = obj.__annotations__.get("return")
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, obj.__globals__)
            except Exception:
                return None
        if inspect.isclass(annotation) and issubclass(annotation, AppError):
            return annotation
    return None


__all__ = ["PROBLEM_REF", "ProblemDetail", "install_openapi", "raised_errors", "refine", "summary_of"]
