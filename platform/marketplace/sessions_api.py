"""HTTP routes for browser sessions: log in and out, a person's sessions, the TOTP second factor
and password resets by email. Thin: the rules are in kernel.sessions, kernel.totp and
kernel.password_reset. Split from marketplace.people_api (the people, their organizations and
keys), whose shapes for passwords and TOTP codes it shares."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, EmailStr, Field, SecretStr

from kernel import password_reset, sessions, totp
from kernel.accounts import Person
from kernel.auth import Role
from kernel.deps import (
    CurrentPrincipal,
    DbSession,
    NoStore,
    PublicRateLimit,
    PublicWriteAudit,
    StrictQuery,
    client_address,
)
from kernel.errors import Forbidden, NotFound
from kernel.schemas import StrictModel
from marketplace.people_api import Password, RuntimeDep, TotpCode

router = APIRouter(dependencies=[StrictQuery])


# --- browser sessions ---------------------------------------------------------------------------



class LoginIn(StrictModel):
    email: EmailStr
    password: SecretStr = Field(max_length=200)
    totp_code: TotpCode = None
    organization_id: uuid.UUID | None = Field(default=None, description="which of your organizations to act for "
                                                                        "(default: the first you joined)")


class SessionOut(BaseModel):
    id: uuid.UUID
    organization_kind: Role
    organization_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    address: str | None
    user_agent: str | None


class LoginOut(SessionOut):
    csrf_token: str = Field(description=f"send it in {sessions.CSRF_HEADER} with every request that changes "
                                        "something (the session cookie alone is refused)")


def _session_out(row: sessions.BrowserSession) -> SessionOut:
    return SessionOut.model_validate(row, from_attributes=True)


@router.post("/v1/sessions", status_code=201, response_model=LoginOut, tags=["sessions"],
             dependencies=[PublicRateLimit, NoStore])
def log_in(body: LoginIn, request: Request, response: Response, session: DbSession, runtime: RuntimeDep,
           audit: PublicWriteAudit) -> LoginOut:
    """Public: log in with email and password. Sets the session cookie (HttpOnly, SameSite=Lax,
    Secure in production; a new one at every login) and returns the CSRF token. Failed logins
    slow down per account and per address (429 with Retry-After)."""
    made = sessions.login(
        session, runtime.store, email=str(body.email), password=body.password.get_secret_value(),
        organization_id=body.organization_id, address=client_address(request),
        user_agent=request.headers.get("user-agent"), ttl_hours=runtime.settings.session_ttl_hours,
        replaces=request.cookies.get(sessions.COOKIE), totp_code=body.totp_code,
        production=runtime.settings.environment == "production",
    )
    response.set_cookie(
        sessions.COOKIE, made.token, max_age=runtime.settings.session_ttl_hours * 3600, httponly=True,
        samesite="lax", secure=runtime.settings.environment == "production", path="/",
    )
    audit.actor(made.row.person_id, (made.row.organization_kind, made.row.organization_id))
    audit.object("session", made.row.id)
    return LoginOut(**_session_out(made.row).model_dump(), csrf_token=made.row.csrf_token)


@router.get("/v1/sessions", response_model=list[SessionOut], tags=["sessions"])
def list_sessions(session: DbSession, principal: CurrentPrincipal) -> list[SessionOut]:
    """Your open sessions (every browser you are logged in on)."""
    if principal.person_id is None:
        return []
    return [_session_out(row) for row in sessions.list_sessions(session, principal.person_id)]


@router.delete("/v1/sessions/current", status_code=204, tags=["sessions"],
               responses={404: {"description": "the request was made with an API key, not a session"}})
def log_out(session: DbSession, principal: CurrentPrincipal, response: Response) -> None:
    """Log out: this session ends at once and the cookie is cleared."""
    if principal.session_id is None or principal.person_id is None:
        raise NotFound("this request was not made with a session")
    sessions.revoke(session, principal.person_id, principal.session_id)
    response.delete_cookie(sessions.COOKIE, path="/")


@router.delete("/v1/sessions/{session_id}", response_model=SessionOut, tags=["sessions"])
def revoke_session(session_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> SessionOut:
    """End one of your sessions (a browser you left logged in)."""
    if principal.person_id is None:
        raise NotFound(f"no session {session_id}")
    return _session_out(sessions.revoke(session, principal.person_id, session_id))


# --- TOTP ---------------------------------------------------------------------------------------


class TotpStartOut(BaseModel):
    secret: str = Field(description="base32; add it to an authenticator app (or scan otpauth_uri as a QR code)")
    otpauth_uri: str


class TotpCodeIn(StrictModel):
    totp_code: str = Field(pattern=r"^[0-9]{6}$", description="the app's current code")


def _me_person(session: DbSession, principal: CurrentPrincipal) -> Person:
    person = session.get(Person, principal.person_id) if principal.person_id else None
    if person is None:
        raise Forbidden("an organization key has no person: use your own key or session")
    return person


@router.post("/v1/me/totp", response_model=TotpStartOut, tags=["sessions"], dependencies=[NoStore])
def start_totp(session: DbSession, principal: CurrentPrincipal) -> TotpStartOut:
    """Step 1 of turning on the TOTP second factor: a new secret (not on until confirmed)."""
    secret, uri = totp.start(_me_person(session, principal))
    return TotpStartOut(secret=secret, otpauth_uri=uri)


@router.post("/v1/me/totp/confirm", status_code=204, tags=["sessions"])
def confirm_totp(body: TotpCodeIn, session: DbSession, principal: CurrentPrincipal) -> None:
    """Step 2: a first code from the app turns TOTP on; logins then need a code as well."""
    totp.confirm(_me_person(session, principal), body.totp_code)


@router.post("/v1/me/totp/disable", status_code=204, tags=["sessions"])
def disable_totp(body: TotpCodeIn, session: DbSession, principal: CurrentPrincipal) -> None:
    """Turn TOTP off (a current code proves the app is still yours)."""
    totp.turn_off(_me_person(session, principal), body.totp_code)


# --- password reset ------------------------------------------------------------------------------


class ResetRequestIn(StrictModel):
    email: EmailStr


class ResetConfirmIn(StrictModel):
    token: str = Field(min_length=10, max_length=200, description="from the email")
    password: Password


@router.post("/v1/password-resets", status_code=202, tags=["sessions"], dependencies=[PublicRateLimit],
             responses={202: {"description": "if the email has an account, a reset link is on its way"}})
def request_password_reset(body: ResetRequestIn, session: DbSession, runtime: RuntimeDep,
                           audit: PublicWriteAudit) -> dict[str, str]:
    """Public: email a single-use reset link (valid one hour). The answer is the same whether or
    not the email has an account."""
    person_id = password_reset.request_reset(session, runtime.store, runtime.settings, str(body.email))
    audit.object("person", person_id)  # the caller stays anonymous: asking proves nothing
    return {"status": "if this email has an account, a reset link is on its way"}


@router.post("/v1/password-resets/confirm", status_code=204, tags=["sessions"], dependencies=[PublicRateLimit],
             responses={404: {"description": "no reset link with this token"}})
def confirm_password_reset(body: ResetConfirmIn, session: DbSession, audit: PublicWriteAudit) -> None:
    """Public: set a new password with the emailed token (once). Every browser session of the
    person ends; log in again."""
    person = password_reset.confirm_reset(session, body.token, body.password.get_secret_value())
    audit.actor(person.id, None)
    audit.object("person", person.id)
