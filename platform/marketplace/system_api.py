"""Health, readiness and API key management."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, computed_field
from sqlalchemy import text

from kernel import auth, installation, outbound
from kernel.auth import Role
from kernel.clock import clock
from kernel.deps import CurrentPrincipal, DbSession, NoStore, OperatorPrincipal, get_runtime, payee_acts
from kernel.errors import Forbidden, Unauthorized
from kernel.metrics import exposition_registry
from kernel.runtime import Runtime
from kernel.schemas import StrictModel
from marketplace import bootstrap
from marketplace.subjects import subject_exists
from web import home

router = APIRouter()


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class ApiIndex(BaseModel):
    name: str
    version: str
    docs: str = Field(description="the interactive API docs (Swagger UI)")
    openapi: str = Field(description="the OpenAPI document")
    health: str = Field(description="liveness: the process answers")
    readiness: str = Field(description="readiness: the database (and Redis, when configured) answer")
    authentication: str


@router.get("/", response_model=ApiIndex, tags=["system"],
            responses={200: {"content": {"text/html": {}}, "description": "a browser gets the start page"}})
async def index(request: Request) -> ApiIndex | Response:
    """Where to start: the API docs, the OpenAPI document, health and readiness. A browser
    (asking for text/html) gets the start page: the storefronts, the logins, the docs."""
    if "text/html" in request.headers.get("accept", ""):
        return await home.landing(request)
    root = request.scope.get("root_path", "").rstrip("/")
    return ApiIndex(
        name=request.app.title, version=request.app.version, docs=f"{root}/docs",
        openapi=root + (request.app.openapi_url or "/openapi.json"), health=f"{root}/healthz",
        readiness=f"{root}/readyz", authentication="Authorization: Bearer <api key> (`marketplace serve` prints "
        "an operator key at first start; `marketplace keys create` makes more)",
    )


@router.get("/healthz", response_model=Health, tags=["system"])
def healthz() -> Health:
    """The process is alive (no dependencies are touched)."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Readiness, tags=["system"],
    responses={503: {"model": Readiness, "description": "a dependency does not answer"}},
)
def readyz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Response:
    """The database and (when configured) Redis answer; 503 names the part that failed."""
    checks: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if runtime.settings.redis_url:
        try:
            runtime.store.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", tags=["system"], response_class=Response, include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition. With METRICS_TOKEN set, only a scraper sending it as a bearer token
    reads it (route names and traffic are not for the public)."""
    token = request.app.state.runtime.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token.get_secret_value()}".encode()):
            raise Unauthorized("send the metrics token: Authorization: Bearer <METRICS_TOKEN>")
    return Response(generate_latest(exposition_registry()), media_type=CONTENT_TYPE_LATEST)


class KeyCreate(StrictModel):
    role: Role
    subject_id: uuid.UUID | None = Field(default=None, description="the seller or affiliate the key acts for")
    name: str = Field(default="", max_length=100)


class KeyOut(BaseModel):
    id: uuid.UUID
    prefix: str
    role: Role
    subject_id: uuid.UUID | None
    name: str
    created_at: datetime
    revoked_at: datetime | None
    person_id: uuid.UUID | None = Field(default=None, description="a personal key's owner; null: an organization key")
    org_role: str | None = Field(default=None, description="a personal key's fixed role; null: an organization "
                                                            "key's full role, or a personal key following its owner's")

    @computed_field(description="organization: the organization's own key (full role); personal: a person's")
    def key_kind(self) -> str:
        return "organization" if self.person_id is None else "personal"


class IssuedKeyOut(BaseModel):
    id: uuid.UUID
    key: str = Field(description="shown once: store it now, it cannot be read again")
    prefix: str
    role: Role
    subject_id: uuid.UUID | None


@router.post("/v1/api-keys", status_code=201, response_model=IssuedKeyOut, tags=["api keys"], dependencies=[NoStore])
def create_key(body: KeyCreate, session: DbSession, principal: OperatorPrincipal) -> IssuedKeyOut:
    """Operator: issue a key for an operator, seller or affiliate. The key is shown once."""
    auth.check_key_subject(session, body.role, body.subject_id, subject_exists)
    issued = auth.issue_key(session, body.role, body.subject_id, body.name)
    return IssuedKeyOut(
        id=issued.id, key=issued.key, prefix=issued.prefix, role=issued.role, subject_id=issued.subject_id
    )


@router.get("/v1/api-keys", response_model=list[KeyOut], tags=["api keys"])
def list_keys(session: DbSession, principal: CurrentPrincipal) -> list[KeyOut]:
    """Your own keys (an operator sees every key). Secrets are never shown again."""
    return [KeyOut.model_validate(row, from_attributes=True) for row in auth.list_keys(session, principal)]


@router.delete("/v1/api-keys/{key_id}", response_model=KeyOut, tags=["api keys"])
@payee_acts(False)  # a rejected payee may still revoke its own keys
def revoke_key(key_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> KeyOut:
    """Revoke a key at once; requests with it get 401 from now on."""
    row = auth.revoke_key(session, principal, key_id)
    return KeyOut.model_validate(row, from_attributes=True)


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="verify each delivery's Marketplace-Signature with it (HMAC-SHA256)")
    signature_header: str = "Marketplace-Signature"
    scheme: str = 't=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>'


@router.get("/v1/webhook-secret", response_model=WebhookSecretOut, tags=["webhooks"], dependencies=[NoStore])
@payee_acts(True)  # hands out a secret: a rejected payee gets none
def webhook_secret(
    principal: CurrentPrincipal, session: DbSession, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> WebhookSecretOut:
    """A seller's or affiliate's own secret for verifying the webhooks the platform sends it."""
    if principal.role not in (Role.SELLER, Role.AFFILIATE) or principal.subject_id is None:
        raise Forbidden("webhook secrets belong to sellers and affiliates")
    platform_secret = installation.webhook_signing_secret(session, runtime.settings)
    secret = outbound.recipient_secret(platform_secret, principal.role.value, principal.subject_id)
    return WebhookSecretOut(secret=secret)


# --- the ledger audit ----------------------------------------------------------------------------

AUDIT_FINDINGS_SHOWN = 100


class AuditCheckOut(BaseModel):
    name: str
    passed: bool
    finding_count: int
    findings: list[str] = Field(description=f"the first {AUDIT_FINDINGS_SHOWN} findings")


class LedgerAuditOut(BaseModel):
    passed: bool = Field(description="every check passed")
    ran_at: datetime
    checks: list[AuditCheckOut]


@router.get("/v1/ledger/audit", response_model=LedgerAuditOut, tags=["system"], dependencies=[NoStore])
def ledger_audit(session: DbSession, principal: OperatorPrincipal) -> LedgerAuditOut:
    """Operator: run `marketplace ledger audit` now and say, check by check, whether it passed
    (every balance recomputed from the journal, every invariant of orders and payouts). Each check
    is SQL returning only the rows that break it; it reads the whole journal (seconds per million
    entries: see loadtests/README.md), so call it on demand, not in a loop."""
    checks = [
        AuditCheckOut(name=name, passed=not findings, finding_count=len(findings),
                      findings=[finding.detail for finding in findings[:AUDIT_FINDINGS_SHOWN]])
        for name, findings in bootstrap.audit_ledger_by_check(session)
    ]
    return LedgerAuditOut(passed=all(check.passed for check in checks), ran_at=clock.now(), checks=checks)
