"""HTTP routes for people: who am I, members and invitations of each organization, people's own
API keys, accepting an invitation, and the audit log (browser sessions, TOTP and password resets:
marketplace.sessions_api). Thin: the rules are in kernel.people,
kernel.permissions and kernel.audit_log. Lives in the assembly because an operator managing a
seller's or affiliate's members needs to know which one an id is (marketplace.subjects)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, EmailStr, Field, SecretStr

from kernel import audit_log, people, permissions, sessions
from kernel.accounts import Invitation, Membership, Person
from kernel.auth import ApiKey, IssuedKey, Role
from kernel.deps import (
    CurrentPrincipal,
    DbSession,
    NoStore,
    PublicRateLimit,
    PublicWriteAudit,
    StrictQuery,
    client_address,
    get_runtime,
)
from kernel.errors import NotFound, Unprocessable
from kernel.runtime import Runtime
from kernel.schemas import Page, StrictModel
from marketplace.subjects import organization_kind, organization_name

router = APIRouter(dependencies=[StrictQuery])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Password = Annotated[SecretStr, Field(min_length=10, max_length=200, description="at least 10 characters")]
PersonName = Annotated[str, Field(min_length=1, max_length=200)]
TotpCode = Annotated[str | None, Field(default=None, pattern=r"^[0-9]{6}$",
                                      description="the authenticator app's code, when TOTP is on")]


# --- shapes --------------------------------------------------------------------------------------


class OrganizationMembershipOut(BaseModel):
    organization_id: uuid.UUID
    organization_kind: Role
    role: str
    created_at: datetime


class PersonOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    memberships: list[OrganizationMembershipOut]


class MeOut(BaseModel):
    key_id: uuid.UUID
    key_kind: Literal["organization", "personal"] = Field(
        description="organization: a key of the organization itself (full role); personal: a person's key")
    organization_kind: Role
    organization_id: uuid.UUID
    organization_name: str = Field(description="the seller's or affiliate's name, or the operator team")
    role: str
    permissions: list[str]
    person: PersonOut | None


class MemberOut(BaseModel):
    person_id: uuid.UUID
    email: str
    name: str
    role: str
    joined_at: datetime


class RoleChange(StrictModel):
    role: str = Field(max_length=16, description="a role of the organization's kind (see GET /v1/me)")


class InvitationCreate(StrictModel):
    email: EmailStr
    role: str = Field(max_length=16)


class InvitationOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    organization_kind: Role
    email: str
    role: str
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class InvitationAccept(StrictModel):
    token: str = Field(min_length=10, max_length=200, description="from the invitation email")
    name: PersonName | None = Field(default=None, description="needed when you have no account yet")
    password: Password = Field(description="your new password, or your existing account's")


class PersonalKeyCreate(StrictModel):
    role: str | None = Field(default=None, max_length=16,
                             description="at most the calling key's role; default: the calling key's")
    name: str = Field(default="", max_length=100)


class PasswordKeyCreate(StrictModel):
    email: EmailStr
    password: SecretStr = Field(max_length=200)
    organization_id: uuid.UUID
    role: str | None = Field(default=None, max_length=16,
                             description="at most your role; default: the key follows your role")
    name: str = Field(default="", max_length=100)
    totp_code: TotpCode = None


FOLLOWS = "null: the key follows your role in the organization"


class PersonalKeyOut(BaseModel):
    id: uuid.UUID
    prefix: str
    organization_kind: Role
    organization_id: uuid.UUID
    role: str | None = Field(description=FOLLOWS)
    name: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedPersonalKeyOut(BaseModel):
    id: uuid.UUID
    key: str = Field(description="shown once: store it now, it cannot be read again")
    prefix: str
    organization_kind: Role
    organization_id: uuid.UUID
    role: str | None = Field(description=FOLLOWS)


class AcceptedOut(BaseModel):
    person_id: uuid.UUID
    membership: OrganizationMembershipOut
    api_key: IssuedPersonalKeyOut


class AuditEventOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor_type: str
    person_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    session_id: uuid.UUID | None
    organization_kind: str | None
    organization_id: uuid.UUID | None
    action: str
    object_type: str | None
    object_id: str | None
    changes: dict[str, object]
    address: str | None
    user_agent: str | None
    request_id: str | None


def _membership_out(row: Membership) -> OrganizationMembershipOut:
    return OrganizationMembershipOut(organization_id=row.organization_id, organization_kind=Role(row.organization_kind),
                         role=row.role, created_at=row.created_at)


def _person_out(session: DbSession, person: Person) -> PersonOut:
    return PersonOut(id=person.id, email=person.email, name=person.name,
                     memberships=[_membership_out(m) for m in people.memberships_of(session, person.id)])


def _issued_out(issued: IssuedKey, organization_id: uuid.UUID, role: str | None) -> IssuedPersonalKeyOut:
    return IssuedPersonalKeyOut(id=issued.id, key=issued.key, prefix=issued.prefix, organization_kind=issued.role,
                                organization_id=organization_id, role=role)


def _personal_key_out(row: ApiKey) -> PersonalKeyOut:
    return PersonalKeyOut(
        id=row.id, prefix=row.prefix, organization_kind=Role(row.role),
        organization_id=row.organization_id or permissions.OPERATOR_TEAM_ID,
        role=row.org_role, name=row.name, created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _invitation_out(row: Invitation) -> InvitationOut:
    return InvitationOut.model_validate(row, from_attributes=True)


# --- me and my keys ------------------------------------------------------------------------------


@router.get("/v1/me", response_model=MeOut, tags=["people"])
def read_me(session: DbSession, principal: CurrentPrincipal) -> MeOut:
    """Who the key you are using is: its organization, role and permissions, and its person (a
    personal key) with all their memberships. An organization key has no person."""
    person = session.get(Person, principal.person_id) if principal.person_id else None
    return MeOut(
        key_id=principal.key_id, key_kind="personal" if principal.person_id else "organization",
        organization_kind=principal.role, organization_id=principal.organization_id,
        organization_name=organization_name(session, principal.role, principal.organization_id),
        role=principal.effective_role, permissions=sorted(principal.permissions),
        person=_person_out(session, person) if person is not None else None,
    )


@router.get("/v1/me/api-keys", response_model=list[PersonalKeyOut], tags=["people"])
def list_my_keys(session: DbSession, principal: CurrentPrincipal) -> list[PersonalKeyOut]:
    """Your personal keys, for every organization (secrets are never shown again)."""
    if principal.person_id is None:
        return []
    return [_personal_key_out(row) for row in people.list_personal_keys(session, principal.person_id)]


@router.post("/v1/me/api-keys", status_code=201, response_model=IssuedPersonalKeyOut, tags=["people"],
             dependencies=[NoStore])
def create_my_key(body: PersonalKeyCreate, session: DbSession, principal: CurrentPrincipal) -> IssuedPersonalKeyOut:
    """A personal key for this organization, with the calling key's role or a narrower one (e.g.
    a `viewer` key for a dashboard). Shown once. For another organization, use its own key or
    POST /v1/auth/api-keys."""
    issued = people.create_personal_key(session, principal, body.role, body.name)
    return _issued_out(issued, principal.organization_id, body.role or principal.org_role)


@router.delete("/v1/me/api-keys/{key_id}", response_model=PersonalKeyOut, tags=["people"])
def revoke_my_key(key_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> PersonalKeyOut:
    """Revoke one of your personal keys (any organization)."""
    if principal.person_id is None:
        raise NotFound(f"no API key {key_id}")
    return _personal_key_out(people.revoke_personal_key(session, principal.person_id, key_id))


@router.post("/v1/auth/api-keys", status_code=201, response_model=IssuedPersonalKeyOut, tags=["people"],
             dependencies=[PublicRateLimit, NoStore])
def create_key_with_password(
    body: PasswordKeyCreate, session: DbSession, request: Request, runtime: RuntimeDep, audit: PublicWriteAudit,
) -> IssuedPersonalKeyOut:
    """Public: your email and password buy a personal key for one organization you belong to
    (role: at most yours). Failures slow down per account and per address, as for a login."""
    address = client_address(request)  # X-Forwarded-For only from a trusted proxy (kernel.client)
    with sessions.throttled(runtime.store, str(body.email), address):  # the same back-off as a login
        issued = people.key_by_password(session, body.email, body.password.get_secret_value(),
                                        body.organization_id, body.role, body.name, totp_code=body.totp_code,
                                        production=runtime.settings.environment == "production")
    row = session.get(ApiKey, issued.id)
    assert row is not None and row.person_id is not None
    audit.actor(row.person_id, (issued.role.value, body.organization_id))
    audit.object("api_key", issued.id)
    return _issued_out(issued, body.organization_id, row.org_role)


# --- invitations ---------------------------------------------------------------------------------


@router.post("/v1/invitations/accept", status_code=201, response_model=AcceptedOut, tags=["people"],
             dependencies=[PublicRateLimit, NoStore], responses={404: {"description": "no invitation with this token"}})
def accept_invitation(body: InvitationAccept, session: DbSession, audit: PublicWriteAudit) -> AcceptedOut:
    """Public: use an invitation (once). Without an account, send your name and a new password;
    with one, its password. You join with the invited role and get a personal key (shown once)."""
    accepted = people.accept_invitation(session, body.token, body.name, body.password.get_secret_value())
    invitation = accepted.invitation
    audit.actor(accepted.person.id, (invitation.organization_kind, invitation.organization_id))
    audit.object("invitation", invitation.id)
    return AcceptedOut(person_id=accepted.person.id, membership=_membership_out(accepted.membership),
                       api_key=_issued_out(accepted.key, invitation.organization_id, None))


# --- members of an organization -----------------------------------------------------------------

ORG = "/v1/organizations/{organization_id}"


@router.get(ORG + "/members", response_model=list[MemberOut], tags=["people"])
def list_members(organization_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> list[MemberOut]:
    """The organization's people and their roles (your own organization; operators: any)."""
    people.organization_scope(session, principal, organization_id, organization_kind)
    return [MemberOut(person_id=m.person.id, email=m.person.email, name=m.person.name, role=m.membership.role,
                      joined_at=m.membership.created_at) for m in people.list_members(session, organization_id)]


@router.patch(ORG + "/members/{person_id}", response_model=MemberOut, tags=["people"])
def change_member_role(
    organization_id: uuid.UUID, person_id: uuid.UUID, body: RoleChange, session: DbSession,
    principal: CurrentPrincipal,
) -> MemberOut:
    """Change a member's role. Only an owner grants or takes the owner role; the last owner stays."""
    kind = people.organization_scope(session, principal, organization_id, organization_kind)
    member = people.change_role(session, principal, organization_id, kind, person_id, body.role)
    return MemberOut(person_id=member.person.id, email=member.person.email, name=member.person.name,
                     role=member.membership.role, joined_at=member.membership.created_at)


@router.delete(ORG + "/members/{person_id}", status_code=204, tags=["people"])
def remove_member(
    organization_id: uuid.UUID, person_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal
) -> None:
    """Remove a member: their keys for this organization stop working at once."""
    kind = people.organization_scope(session, principal, organization_id, organization_kind)
    people.remove_member(session, principal, organization_id, kind, person_id)


@router.get(ORG + "/invitations", response_model=list[InvitationOut], tags=["people"])
def list_invitations(
    organization_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal
) -> list[InvitationOut]:
    """Invitations sent, newest first (pending, accepted, revoked or expired)."""
    people.organization_scope(session, principal, organization_id, organization_kind)
    return [_invitation_out(row) for row in people.list_invitations(session, organization_id)]


@router.post(ORG + "/invitations", status_code=201, response_model=InvitationOut, tags=["people"])
def invite(
    organization_id: uuid.UUID, body: InvitationCreate, session: DbSession, principal: CurrentPrincipal,
    runtime: RuntimeDep,
) -> InvitationOut:
    """Invite someone by email with a role. The email carries a single-use link that expires
    (INVITATION_TTL_HOURS); without SMTP configured, `marketplace mail` shows it."""
    kind = people.organization_scope(session, principal, organization_id, organization_kind)
    sent = people.invite(session, runtime.settings, principal, organization_id, kind, str(body.email), body.role,
                         organization_name(session, kind, organization_id))
    return _invitation_out(sent.invitation)


@router.delete(ORG + "/invitations/{invitation_id}", response_model=InvitationOut, tags=["people"])
def revoke_invitation(
    organization_id: uuid.UUID, invitation_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal
) -> InvitationOut:
    """Revoke a pending invitation: its link stops working."""
    people.organization_scope(session, principal, organization_id, organization_kind)
    return _invitation_out(people.revoke_invitation(session, organization_id, invitation_id))


# --- the audit log -------------------------------------------------------------------------------


def audit_filter(
    object_type: Annotated[str | None, Query(max_length=60)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    person_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=120, description='e.g. "POST /v1/sub-orders/{sub_order_id}/ship"')]
    = None,
    since: Annotated[AwareDatetime | None, Query(description="from this time (inclusive), with a time zone")] = None,
    until: Annotated[AwareDatetime | None, Query(description="before this time, with a time zone")] = None,
    organization_id: Annotated[uuid.UUID | None, Query(description="operators: one organization")] = None,
) -> audit_log.AuditFilter:
    return audit_log.AuditFilter(organization_id, object_type, object_id, person_id, action, _utc(since, "since"),
                                 _utc(until, "until"))


def _utc(value: datetime | None, name: str) -> datetime | None:
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC instant
        raise Unprocessable(f"{name} is out of range") from None


AuditFilterDep = Annotated[audit_log.AuditFilter, Depends(audit_filter)]


@router.get("/v1/audit-events", response_model=Page[AuditEventOut], tags=["audit log"])
def list_audit_events(
    session: DbSession, principal: CurrentPrincipal, flt: AuditFilterDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AuditEventOut]:
    """Who did what, newest first: operators see every organization, owners and admins their own."""
    rows, next_cursor = audit_log.list_page(session, audit_log.scoped_filter(principal, flt), cursor=cursor,
                                            limit=limit)
    return Page(items=[AuditEventOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)


@router.get("/v1/audit-events/export", tags=["audit log"], response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "the filtered log, oldest first"}})
def export_audit_events(session: DbSession, principal: CurrentPrincipal, flt: AuditFilterDep) -> Response:
    """The same events (same filters) as CSV, oldest first (at most 100,000 rows: narrow by time)."""
    body = "".join(audit_log.iter_csv(session, audit_log.scoped_filter(principal, flt)))
    return Response(body, media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'})
