"""API keys: random, shown once, stored hashed, revocable, scoped to one principal.

Two kinds of key resolve to the same `Principal` and the same permission check
(kernel.permissions.authorize): an organization key (`person_id` NULL; every key made before
people existed) holds its kind's full role; a person's key acts for one organization with a role
no wider than the person's membership, and stops working when the membership ends.

A key looks like `mk_<8 prefix chars>_<32 secret chars>`. We store SHA-256 of the whole key
(the key has 190+ bits of entropy, so a slow hash buys nothing) and the prefix for display.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, and_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel import permissions
from kernel.accounts import Membership
from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.errors import Forbidden, NotFound, Unauthorized, Unprocessable

KEY_PREFIX = "mk_"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    SELLER = "seller"
    AFFILIATE = "affiliate"
    BUYER = "buyer"  # a buyer organization (orders.models.BuyerOrganization); people's keys only


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    revoked_at: Mapped[datetime | None] = mapped_column()
    # A person's key: whose it is, for which organization, with which role (NULL: an organization key).
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("people.id"), index=True)
    organization_id: Mapped[uuid.UUID | None] = mapped_column()
    org_role: Mapped[str | None] = mapped_column(String(16))


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    role: Role  # the organization's kind
    subject_id: uuid.UUID | None  # the seller or affiliate acted for (None: the operator team)
    org_role: str | None = None  # None: an organization key (full role), or a person's key following their role
    person_id: uuid.UUID | None = None  # a person's key: its owner
    member_role: str | None = None  # a person's key: the owner's role now (a key never exceeds it)
    session_id: uuid.UUID | None = None  # a browser session (kernel.sessions; key_id is then the session's id)

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def actor(self) -> str:
        """Who, for records that keep a name (a payout batch's creator and approver): the person
        behind a personal key or session, else the organization key."""
        return f"person:{self.person_id}" if self.person_id is not None else f"key:{self.key_id}"

    @property
    def organization_id(self) -> uuid.UUID:
        return self.subject_id if self.subject_id is not None else permissions.OPERATOR_TEAM_ID

    @property
    def effective_role(self) -> str:
        """The role this key acts with: an organization key's kind's top role; a person's key its
        own role, or the person's role when the key follows it or the role is now the narrower."""
        if self.member_role is None:
            return self.org_role or permissions.TOP_ROLE[self.role]
        if self.org_role is None or not permissions.within(self.role, self.org_role, self.member_role):
            return self.member_role
        return self.org_role

    @property
    def permissions(self) -> frozenset[str]:
        held = permissions.permissions_of(self.role, self.effective_role)
        if self.member_role is not None:  # a role lowered after the key was made lowers the key
            held &= permissions.permissions_of(self.role, self.member_role)
        return held


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: uuid.UUID
    key: str  # the only time the secret exists in clear
    prefix: str
    role: Role
    subject_id: uuid.UUID | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(
    session: Session, role: Role, subject_id: uuid.UUID | None, name: str = "", *,
    person_id: uuid.UUID | None = None, org_role: str | None = None,
) -> IssuedKey:
    """An organization key, or with `person_id` a person's key with `org_role` (kernel.people
    checks the role against the membership)."""
    if role is not Role.OPERATOR and subject_id is None:
        raise ValueError(f"a {role} key must act for a {role}")
    prefix = KEY_PREFIX + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(key_hash=hash_key(key), prefix=prefix, role=role.value, subject_id=subject_id, name=name,
                 person_id=person_id, org_role=org_role,
                 organization_id=None if person_id is None else subject_id or permissions.OPERATOR_TEAM_ID)
    session.add(row)
    session.flush()
    return IssuedKey(row.id, key, prefix, role, subject_id)


def authenticate(session: Session, key: str) -> Principal:
    if not key.startswith(KEY_PREFIX):
        raise Unauthorized("malformed API key")
    # One statement for both kinds: a person's key brings its owner's membership along.
    row = session.execute(
        select(ApiKey.id, ApiKey.role, ApiKey.subject_id, ApiKey.revoked_at, ApiKey.person_id, ApiKey.org_role,
               Membership.role.label("member_role"))
        .outerjoin(Membership, and_(Membership.person_id == ApiKey.person_id,
                                    Membership.organization_id == ApiKey.organization_id))
        .where(ApiKey.key_hash == hash_key(key))
    ).first()
    if row is None:
        raise Unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise Unauthorized("this API key was revoked")
    if row.person_id is not None and row.member_role is None:
        raise Unauthorized("this key's owner is no longer a member of its organization")
    return Principal(row.id, Role(row.role), row.subject_id, row.org_role, row.person_id, row.member_role)


def list_keys(session: Session, principal: Principal) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not principal.is_operator:
        stmt = stmt.where(ApiKey.subject_id == principal.subject_id, ApiKey.role == principal.role.value)
    return list(session.scalars(stmt))


def revoke_key(session: Session, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or not (
        principal.is_operator or (row.subject_id == principal.subject_id and row.role == principal.role.value)
    ):
        raise NotFound(f"no API key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row


class PayeeRejected(Forbidden):
    type = "payee-rejected"
    title = "Rejected by an operator"


PAYEE_ROLES = frozenset({Role.SELLER, Role.AFFILIATE})

SubjectRejected = Callable[[Session, Role, uuid.UUID], bool]
"""Whether the seller or affiliate with this id was rejected by an operator (the assembly passes
marketplace.subjects.subject_rejected: the kernel cannot read the domains' tables)."""


def refuse_rejected_payee(session: Session, principal: Principal, subject_rejected: SubjectRejected) -> None:
    """The one rule for rejected payees, sellers and affiliates alike: a rejected payee's key
    still reads what is its own (profile and status, orders, balances, payouts) and may revoke
    keys, but acts no more: every other write, and every read that hands out a secret, is 403
    `payee-rejected`. kernel.deps applies it to each request (see `current_principal`)."""
    if principal.role not in PAYEE_ROLES or principal.subject_id is None:
        return
    if subject_rejected(session, principal.role, principal.subject_id):
        raise PayeeRejected(
            f"this {principal.role.value} was rejected by an operator: its keys may read but not act"
        )


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"this action needs {permissions.with_article(allowed)} key; "
                        f"yours is {permissions.with_article(principal.role.value)} key")


SubjectExists = Callable[[Session, Role, uuid.UUID], bool]
"""Whether a seller or affiliate with this id exists: the kernel cannot look (the tables belong to
the domains above it), so the assembly passes it in (marketplace.subjects.subject_exists)."""


def check_key_subject(
    session: Session, role: Role, subject_id: uuid.UUID | None, subject_exists: SubjectExists
) -> None:
    """The one rule for what a new key acts for (API and CLI): an operator key for nobody, a
    seller or affiliate key for one that exists. Raises Unprocessable otherwise."""
    if role is Role.OPERATOR:
        if subject_id is not None:
            raise Unprocessable("an operator key does not act for a subject; leave subject_id out")
        return
    if subject_id is None:
        raise Unprocessable(f"a {role.value} key needs subject_id (the {role.value} it acts for)")
    if not subject_exists(session, role, subject_id):
        raise Unprocessable(f"there is no {role.value} {subject_id}")
