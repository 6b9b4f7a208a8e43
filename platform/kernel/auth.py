"""API keys: random, shown once, stored hashed, revocable, scoped to one principal.

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

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.errors import Forbidden, NotFound, Unauthorized, Unprocessable

KEY_PREFIX = "mk_"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    SELLER = "seller"
    AFFILIATE = "affiliate"


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    revoked_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    role: Role
    subject_id: uuid.UUID | None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: uuid.UUID
    key: str  # the only time the secret exists in clear
    prefix: str
    role: Role
    subject_id: uuid.UUID | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, role: Role, subject_id: uuid.UUID | None, name: str = "") -> IssuedKey:
    if role is not Role.OPERATOR and subject_id is None:
        raise ValueError(f"a {role} key must act for a {role}")
    prefix = KEY_PREFIX + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(key_hash=hash_key(key), prefix=prefix, role=role.value, subject_id=subject_id, name=name)
    session.add(row)
    session.flush()
    return IssuedKey(row.id, key, prefix, role, subject_id)


def authenticate(session: Session, key: str) -> Principal:
    if not key.startswith(KEY_PREFIX):
        raise Unauthorized("malformed API key")
    row = session.execute(
        select(ApiKey.id, ApiKey.role, ApiKey.subject_id, ApiKey.revoked_at).where(
            ApiKey.key_hash == hash_key(key)
        )
    ).first()
    if row is None:
        raise Unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise Unauthorized("this API key was revoked")
    return Principal(row.id, Role(row.role), row.subject_id)


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


def _a(word: str) -> str:
    """`word` with its indefinite article: "an operator", "a seller"."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"this action needs {_a(allowed)} key; yours is {_a(principal.role.value)} key")


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
