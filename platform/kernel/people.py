"""People and their organizations: sign-up of an organization's owner, invitations, members and
their roles, and people's own API keys. The tables are in kernel.accounts; what each role may do
is in kernel.permissions.

Rules (each in one place below):
- An email is one person, case-insensitively.
- An organization always keeps at least one member in its top role (seller and affiliate:
  owner; operator team: admin) once it has people: the last one can be neither removed nor
  demoted.
- Owners and admins (and an organization key) manage members; an admin never grants the owner
  role nor changes or removes an owner. Operators with `members.manage` manage any organization's
  members (support: an owner who left).
- Invitations expire (settings.invitation_ttl_hours) and are used once; only the token's hash is
  stored; the token travels only in the email.
- A person's key acts for one organization either with their role there (following it) or with a
  fixed role no wider than the key that made it; never wider than the person's membership now
  (kernel.auth narrows it at every request).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from pydantic import Field, SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kernel import auth, mail, permissions, totp
from kernel.accounts import Invitation, Membership, Person, hash_password, normalize_email, verify_password
from kernel.auth import ApiKey, IssuedKey, Principal, Role
from kernel.clock import clock
from kernel.db import new_id
from kernel.errors import AppError, Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from kernel.schemas import StrictModel
from kernel.settings import Settings

OrganizationKindOf = Callable[[Session, uuid.UUID], Role | None]
"""Which kind of organization `id` is (seller, affiliate), None if none: the kernel cannot look
at the domains' tables, so the assembly passes this in (marketplace.subjects.organization_kind)."""


class EmailTaken(Conflict):
    type = "email-taken"
    title = "A person with this email exists"


class LastOwner(Conflict):
    type = "last-owner"
    title = "An organization keeps at least one owner"


class InvitationGone(AppError):
    status = 410
    type = "invitation-gone"
    title = "This invitation was used, revoked or has expired"


# --- people ------------------------------------------------------------------------------------


def find_person(session: Session, email: str) -> Person | None:
    return session.scalars(select(Person).where(Person.email == normalize_email(email))).first()


def create_person(session: Session, email: str, name: str, password: str) -> Person:
    email = normalize_email(email)
    if find_person(session, email) is not None:
        raise EmailTaken(f"a person with email {email} exists")
    person = Person(id=new_id(), email=email, name=name, password_hash=hash_password(password))
    session.add(person)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent sign-up with the same email won the race
        raise EmailTaken(f"a person with email {email} exists") from None
    return person


def person_for(session: Session, email: str, name: str | None, password: str) -> Person:
    """The person an email names, proven by their password; or a new person with that password."""
    person = find_person(session, email)
    if person is None:
        return create_person(session, email, name or "", password)
    if not verify_password(person.password_hash, password):
        raise Unauthorized(f"{normalize_email(email)} already has an account: send its password")
    return person


def membership_of(session: Session, organization_id: uuid.UUID, person_id: uuid.UUID, *,
                  lock: bool = False) -> Membership | None:
    stmt = select(Membership).where(Membership.organization_id == organization_id,
                                    Membership.person_id == person_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def add_membership(session: Session, person: Person, kind: Role, organization_id: uuid.UUID, role: str) -> Membership:
    if not permissions.is_role(kind, role):
        raise Unprocessable(f"{role!r} is not a {kind.value} role; one of {', '.join(permissions.ROLES[kind])}")
    if membership_of(session, organization_id, person.id) is not None:
        raise Conflict(f"{person.email} is already a member of this {kind.value}")
    row = Membership(id=new_id(), organization_id=organization_id, organization_kind=kind.value,
                     person_id=person.id, role=role)
    session.add(row)
    session.flush()
    return row


def sign_up_owner(
    session: Session, kind: Role, organization_id: uuid.UUID, email: str, name: str, password: str
) -> Person:
    """The person who applied for a new seller or affiliate becomes its owner (an existing
    person proves it with their password)."""
    person = person_for(session, email, name, password)
    add_membership(session, person, kind, organization_id, permissions.TOP_ROLE[kind])
    return person


class OwnerSignUp(StrictModel):
    """The fields an application adds to make its applicant the organization's owner (a person
    who can log in and invite teammates). Without `password` an application works as before:
    only the organization key."""

    password: SecretStr | None = Field(
        default=None, min_length=10, max_length=200,
        description="make the applicant (email) the owner: a person with this password (an existing "
                    "person: their password)")
    owner_name: str | None = Field(default=None, max_length=200, description="the owner's name (default: name)")


def sign_up_owner_if_asked(
    session: Session, kind: Role, organization_id: uuid.UUID, data: OwnerSignUp, email: str, name: str
) -> Person | None:
    if data.password is None:
        return None
    return sign_up_owner(session, kind, organization_id, email, data.owner_name or name,
                         data.password.get_secret_value())


def ensure_operator_admin(session: Session, email: str, name: str, password: str) -> Person | None:
    """The first operator admin (first start, CLI); None if the operator team has one already."""
    top = permissions.TOP_ROLE[Role.OPERATOR]
    if session.scalars(select(Membership.id).where(Membership.organization_id == permissions.OPERATOR_TEAM_ID,
                                                   Membership.role == top)).first() is not None:
        return None
    person = person_for(session, email, name, password)
    add_membership(session, person, Role.OPERATOR, permissions.OPERATOR_TEAM_ID, top)
    return person


# --- which organization a caller may manage ----------------------------------------------------


def organization_scope(
    session: Session, principal: Principal, organization_id: uuid.UUID, kind_of: OrganizationKindOf
) -> Role:
    """The kind of `organization_id` if the caller may act on its members: their own, or any for
    an operator (the route has already checked the permission). Anyone else's is a 404, like
    every object a caller does not own."""
    if organization_id == principal.organization_id:
        return principal.role
    if principal.is_operator:
        if organization_id == permissions.OPERATOR_TEAM_ID:
            return Role.OPERATOR
        kind = kind_of(session, organization_id)
        if kind is not None:
            return kind
    raise NotFound(f"no organization {organization_id}")


def _acting_role(principal: Principal, organization_id: uuid.UUID, kind: Role) -> str:
    """The caller's role in the organization it manages: an operator from outside acts as its top."""
    if principal.organization_id == organization_id:
        return principal.effective_role
    return permissions.TOP_ROLE[kind]


def _check_may_touch(principal: Principal, organization_id: uuid.UUID, kind: Role, current: str | None,
                     wanted: str | None) -> None:
    """An admin (not the top role) neither grants the top role nor changes or removes its holders."""
    top = permissions.TOP_ROLE[kind]
    if _acting_role(principal, organization_id, kind) == top:
        return
    if top in (current, wanted):
        raise Forbidden(f"only an {top} grants, changes or removes the {top} role")


def _top_count(session: Session, organization_id: uuid.UUID, kind: Role) -> int:
    """How many members hold the top role (the caller holds the organization's lock: _member)."""
    rows = session.scalars(select(Membership.id).where(
        Membership.organization_id == organization_id, Membership.role == permissions.TOP_ROLE[kind]))
    return len(list(rows))


# --- members -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    membership: Membership
    person: Person


def list_members(session: Session, organization_id: uuid.UUID) -> list[Member]:
    rows = session.execute(
        select(Membership, Person).join(Person, Person.id == Membership.person_id)
        .where(Membership.organization_id == organization_id).order_by(Membership.id)
    ).all()
    return [Member(m, p) for m, p in rows]


def _lock_members(session: Session, organization_id: uuid.UUID) -> None:
    """Every membership of the organization, locked in id order: changes to one organization's
    members run one at a time, so two demotions cannot each see the other owner and leave none,
    and no two of them lock the same rows in opposite orders (a deadlock)."""
    session.execute(select(Membership.id).where(Membership.organization_id == organization_id)
                    .order_by(Membership.id).with_for_update())


def _member(session: Session, organization_id: uuid.UUID, person_id: uuid.UUID) -> Member:
    _lock_members(session, organization_id)
    membership = membership_of(session, organization_id, person_id)
    person = session.get(Person, person_id) if membership is not None else None
    if membership is None or person is None:
        raise NotFound(f"person {person_id} is not a member of organization {organization_id}")
    return Member(membership, person)


def change_role(session: Session, principal: Principal, organization_id: uuid.UUID, kind: Role,
                person_id: uuid.UUID, role: str) -> Member:
    if not permissions.is_role(kind, role):
        raise Unprocessable(f"{role!r} is not a {kind.value} role; one of {', '.join(permissions.ROLES[kind])}")
    member = _member(session, organization_id, person_id)
    _check_may_touch(principal, organization_id, kind, member.membership.role, role)
    top = permissions.TOP_ROLE[kind]
    if member.membership.role == top and role != top and _top_count(session, organization_id, kind) <= 1:
        raise LastOwner(f"this is the last {top}: make someone else {top} first")
    member.membership.role = role
    session.flush()
    return member


def remove_member(session: Session, principal: Principal, organization_id: uuid.UUID, kind: Role,
                  person_id: uuid.UUID) -> Member:
    """Ends the membership and revokes the person's keys for this organization."""
    member = _member(session, organization_id, person_id)
    _check_may_touch(principal, organization_id, kind, member.membership.role, None)
    top = permissions.TOP_ROLE[kind]
    if member.membership.role == top and _top_count(session, organization_id, kind) <= 1:
        raise LastOwner(f"this is the last {top}: make someone else {top} first")
    now = clock.now()
    for key in session.scalars(select(ApiKey).where(ApiKey.person_id == person_id,
                                                    ApiKey.organization_id == organization_id,
                                                    ApiKey.revoked_at.is_(None))):
        key.revoked_at = now
    session.delete(member.membership)
    session.flush()
    return member


# --- invitations -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SentInvitation:
    invitation: Invitation
    token: str  # only for the email (and tests); never stored, never returned by the API


def invite(session: Session, settings: Settings, principal: Principal, organization_id: uuid.UUID, kind: Role,
           email: str, role: str, organization_name: str = "") -> SentInvitation:
    email = normalize_email(email)
    if not permissions.is_role(kind, role):
        raise Unprocessable(f"{role!r} is not a {kind.value} role; one of {', '.join(permissions.ROLES[kind])}")
    _check_may_touch(principal, organization_id, kind, None, role)
    existing = find_person(session, email)
    if existing is not None and membership_of(session, organization_id, existing.id) is not None:
        raise Conflict(f"{email} is already a member")
    token = secrets.token_urlsafe(32)
    row = Invitation(
        id=new_id(), organization_id=organization_id, organization_kind=kind.value, email=email, role=role,
        token_hash=_token_hash(token), expires_at=clock.now() + timedelta(hours=settings.invitation_ttl_hours),
        invited_by_person_id=principal.person_id, invited_by_key_id=principal.key_id,
    )
    session.add(row)
    session.flush()
    link = f"{settings.public_base_url.rstrip('/')}/invitations/accept?token={token}"
    where = organization_name or f"{kind.value} {organization_id}"
    body = (
        f"You are invited to join {where} on the marketplace as {role}.\n\n"
        f"Accept: {link}\n\n"
        "Or with the API:\n"
        f"  curl -X POST {settings.public_base_url.rstrip('/')}/v1/invitations/accept \\\n"
        f"       -H 'Content-Type: application/json' \\\n"
        f"       -d '{{\"token\": \"{token}\", \"name\": \"Your Name\", \"password\": \"...\"}}'\n\n"
        f"The invitation is for {email}, works once, and expires at {row.expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )
    mail.queue(session, email, f"Join {where} on the marketplace", body, kind="invitation")
    return SentInvitation(row, token)


def list_invitations(session: Session, organization_id: uuid.UUID) -> list[Invitation]:
    return list(session.scalars(select(Invitation).where(Invitation.organization_id == organization_id)
                                .order_by(Invitation.id.desc()).limit(200)))


def revoke_invitation(session: Session, organization_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
    row = session.get(Invitation, invitation_id, with_for_update=True)
    if row is None or row.organization_id != organization_id:
        raise NotFound(f"no invitation {invitation_id}")
    if row.accepted_at is None and row.revoked_at is None:
        row.revoked_at = clock.now()
    return row


@dataclass(frozen=True, slots=True)
class Accepted:
    person: Person
    membership: Membership
    key: IssuedKey
    invitation: Invitation


def accept_invitation(session: Session, token: str, name: str | None, password: str) -> Accepted:
    """Use an invitation once: a new person (name and password) or an existing one (their
    password) joins with the invited role, and gets a key for that organization (shown once)."""
    row = session.scalars(select(Invitation).where(Invitation.token_hash == _token_hash(token))
                          .with_for_update()).first()
    if row is None:
        raise NotFound("no such invitation: check the link")
    if row.accepted_at is not None or row.revoked_at is not None or row.expires_at <= clock.now():
        raise InvitationGone("this invitation was used, revoked or has expired: ask for a new one")
    person = person_for(session, row.email, name, password)
    kind = Role(row.organization_kind)
    membership = add_membership(session, person, kind, row.organization_id, row.role)
    row.accepted_at = clock.now()
    row.accepted_by_person_id = person.id
    key = issue_personal_key(session, person.id, kind, row.organization_id, None, "invitation")
    return Accepted(person, membership, key, row)


# --- people's keys -----------------------------------------------------------------------------


def issue_personal_key(session: Session, person_id: uuid.UUID, kind: Role, organization_id: uuid.UUID,
                       role: str | None, name: str) -> IssuedKey:
    """role None: the key follows its person's role in the organization (promotions included)."""
    subject = None if kind is Role.OPERATOR else organization_id
    return auth.issue_key(session, kind, subject, name[:100], person_id=person_id, org_role=role)


def create_personal_key(session: Session, principal: Principal, role: str | None, name: str) -> IssuedKey:
    """A key for the caller's person and organization, no wider than the calling key (without a
    role: the calling key's, which may be "follow my membership")."""
    if principal.person_id is None:
        raise Forbidden("an organization key has no person: make personal keys with your own key or password")
    if role is None:
        return issue_personal_key(session, principal.person_id, principal.role, principal.organization_id,
                                  principal.org_role, name)
    if not permissions.is_role(principal.role, role):
        raise Unprocessable(f"{role!r} is not a {principal.role.value} role; "
                            f"one of {', '.join(permissions.ROLES[principal.role])}")
    if not permissions.within(principal.role, role, principal.effective_role) or \
            not permissions.permissions_of(principal.role, role) <= principal.permissions:
        raise Forbidden(f"a {role} key would do more than the key you are using")
    return issue_personal_key(session, principal.person_id, principal.role, principal.organization_id, role, name)


def key_by_password(session: Session, email: str, password: str, organization_id: uuid.UUID, role: str | None,
                    name: str, *, totp_code: str | None = None, production: bool = False) -> IssuedKey:
    """A person proves who they are with their password and gets a key for one organization they
    belong to (role: at most their membership's)."""
    person = find_person(session, email)
    if person is None or not verify_password(person.password_hash, password):
        raise Unauthorized("wrong email or password")
    membership = membership_of(session, organization_id, person.id)
    if membership is None:
        raise NotFound(f"you are not a member of organization {organization_id}")
    kind = Role(membership.organization_kind)
    totp.check_second_factor(person, totp_code, kind=kind, role=membership.role, production=production)
    if role is None:  # the key follows the membership
        return issue_personal_key(session, person.id, kind, organization_id, None, name)
    if not permissions.is_role(kind, role):
        raise Unprocessable(f"{role!r} is not a {kind.value} role; one of {', '.join(permissions.ROLES[kind])}")
    if not permissions.within(kind, role, membership.role):
        raise Forbidden(f"a {role} key would do more than your role ({membership.role}) allows")
    return issue_personal_key(session, person.id, kind, organization_id, role, name)


def list_personal_keys(session: Session, person_id: uuid.UUID) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.person_id == person_id).order_by(ApiKey.id)))


def revoke_personal_key(session: Session, person_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.person_id != person_id:
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row


def memberships_of(session: Session, person_id: uuid.UUID) -> list[Membership]:
    return list(session.scalars(select(Membership).where(Membership.person_id == person_id).order_by(Membership.id)))
