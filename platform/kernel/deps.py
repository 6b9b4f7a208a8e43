"""FastAPI dependencies: the unit of work, the caller's principal, rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from kernel import audit_log, auth, permissions, ratelimit, sessions
from kernel.auth import Principal, Role
from kernel.client import client_address as resolve_client_address
from kernel.db import session_scope
from kernel.errors import Unauthorized, Unprocessable
from kernel.runtime import Runtime
from kernel.settings import Settings

# Dependencies that never block are `async def` on purpose: FastAPI runs a plain `def`
# dependency in the thread pool, and each such hop costs more than the dependency itself
# (measured on the checkout path: see loadtests/README.md).


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Settings:
    return runtime.settings


def db_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (scope="function"),
    so a failed commit is a failed request, never a 200 for data that was not stored."""
    with session_scope(runtime.sessions) as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer mk_...`")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PAYEE_ACTS_ATTR = "_marketplace_payee_acts"
F = TypeVar("F", bound=Callable[..., Any])


def payee_acts(acts: bool) -> Callable[[F], F]:
    """Mark an endpoint for the rejected-payee rule (kernel.auth.refuse_rejected_payee) where its
    HTTP method says the wrong thing: `payee_acts(True)` on a GET that hands out a secret,
    `payee_acts(False)` on a write a rejected payee keeps (revoking its own keys). Unmarked
    endpoints act when their method is not GET, HEAD or OPTIONS."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _PAYEE_ACTS_ATTR, acts)
        return endpoint

    return mark


def endpoint_acts(endpoint: Callable[..., Any] | None, method: str) -> bool:
    """Whether a call of `endpoint` with `method` acts, for the rejected-payee rule (and the
    OpenAPI document, which lists `payee-rejected` only where it can be answered)."""
    marked = getattr(endpoint, _PAYEE_ACTS_ATTR, None)
    return method.upper() not in SAFE_METHODS if marked is None else bool(marked)


def _acts(request: Request) -> bool:
    return endpoint_acts(getattr(request.scope.get("route"), "endpoint", None), request.method)


def current_principal(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    key = credentials.credentials if credentials is not None else ""
    cookie = request.cookies.get(sessions.COOKIE) if not key else None
    if not key and not cookie:
        raise Unauthorized("missing API key: send Authorization: Bearer <key> (or log in: POST /v1/sessions)")
    settings = runtime.settings
    client = client_address(request)
    # An address that keeps sending bad keys or cookies is refused before the lookup (no database work).
    ratelimit.refuse_if_failing(runtime.store, client, settings.auth_failures_per_minute)
    try:
        if cookie:
            principal = sessions.principal_from_cookie(session, cookie, request.method,
                                                       request.headers.get(sessions.CSRF_HEADER))
        else:
            principal = auth.authenticate(session, key)
    except Unauthorized:
        ratelimit.record_failure(runtime.store, client, settings.auth_failures_per_minute)
        raise
    request.state.principal = principal  # for the request's log line
    ratelimit.enforce(runtime.store, f"key:{principal.key_id}", settings.rate_limit_per_key_per_minute)
    if principal.role in auth.PAYEE_ROLES and _acts(request):
        auth.refuse_rejected_payee(session, principal, request.app.state.subject_rejected)
    return principal


async def authorized_principal(
    request: Request, session: DbSession, principal: Annotated[Principal, Depends(current_principal)]
) -> AsyncIterator[Principal]:
    """The one authorization check (kernel.permissions) for every principal, and the audit event
    of every write that succeeds, added to the request's transaction before it commits (scope
    "function": this closes before db_session does; a handler that raises records nothing)."""
    path = getattr(request.scope.get("route"), "path", request.url.path)
    permissions.authorize(principal.permissions, request.method, path, principal.role.value)
    if request.method in audit_log.SAFE_METHODS:  # reads record nothing: no work on their path
        yield principal
        return
    audit = audit_log.RequestAudit.start(request, path, session)
    yield principal
    await audit.finish(session, principal)


CurrentPrincipal = Annotated[Principal, Depends(authorized_principal, scope="function")]


async def audit_public_write(request: Request, session: DbSession) -> AsyncIterator[audit_log.RequestAudit]:
    """For writes without a principal (applications, invitations): the same audit event, whose
    actor the handler may name (`audit.actor(...)`)."""
    path = getattr(request.scope.get("route"), "path", request.url.path)
    audit = audit_log.RequestAudit.start(request, path, session)
    yield audit
    await audit.finish(session, None)


PublicWriteAudit = Annotated[audit_log.RequestAudit, Depends(audit_public_write, scope="function")]


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """Dependency factory: the caller must hold one of `roles` (else 403)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        auth.require_role(principal, *roles)
        return principal

    return dependency


OperatorPrincipal = Annotated[Principal, Depends(require(Role.OPERATOR))]
SellerPrincipal = Annotated[Principal, Depends(require(Role.SELLER))]
AffiliatePrincipal = Annotated[Principal, Depends(require(Role.AFFILIATE))]


def client_address(request: Request) -> str:
    """The client's address by the one rule of kernel.client (X-Forwarded-For only from
    settings.trusted_proxies)."""
    return resolve_client_address(request.scope, request.app.state.runtime.settings.trusted_proxies)


async def no_store(response: Response) -> None:
    """Responses that carry a secret (an API key, a webhook secret) must not be kept by any cache."""
    response.headers["Cache-Control"] = "no-store"


NoStore = Depends(no_store)


async def public_rate_limit(request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]) -> None:
    """Public (no key) endpoints are limited per client address. The store call (Redis) blocks,
    so it runs in the thread pool; with the limit off (0) there is nothing to wait for."""
    limit = runtime.settings.rate_limit_public_per_minute
    if limit <= 0:
        return
    await run_in_threadpool(ratelimit.enforce, runtime.store, f"ip:{client_address(request)}", limit)


PublicRateLimit = Depends(public_rate_limit)


def _query_names(dependant: Dependant) -> set[str]:
    names = {str(field.alias) for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_NAMES_ATTR = "_marketplace_query_names"  # memoized on the route object: its query parameter names


async def reject_unknown_query_params(request: Request) -> None:
    """A misspelt filter (`?sellr_id=`) is a 422, not a silently unfiltered list: the rule
    StrictModel applies to bodies. Routers add it; the referral redirect does not (a link
    carries whatever campaign parameters the affiliate likes). `async` (no thread-pool hop) and
    a request without a query string costs one check: this runs on every checkout."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        names: frozenset[str] | None = getattr(route, _NAMES_ATTR, None)
        if names is None:
            names = frozenset(_query_names(route.dependant))
            setattr(route, _NAMES_ATTR, names)
        unknown = sorted(set(request.query_params) - names)
        if unknown:
            raise Unprocessable(f"unknown query parameter(s): {', '.join(unknown)}")


StrictQuery = Depends(reject_unknown_query_params)
