"""The tables of people: a person, their memberships of organizations, invitations; and password
hashing (argon2id). The rules live in kernel.people; this module is what kernel.auth needs to
resolve a person's key (so auth does not import the services, which import auth).

An organization is a seller, an affiliate (their ids) or the operator team
(`permissions.OPERATOR_TEAM_ID`); the kernel cannot see the domains' tables, so a membership names
the organization by kind and id, without a foreign key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, TimestampMixin, new_id

# argon2-cffi's defaults are argon2id with RFC 9106's "low memory" parameters (64 MiB, t=3).
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    """Emails are unique case-insensitively: stored and compared lower-cased and trimmed."""
    return email.strip().lower()


class Person(TimestampMixin, Base):
    __tablename__ = "people"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # normalize_email(...)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200))  # never shown, never logged
    # TOTP second factor (kernel.totp): the base32 secret, when it was confirmed (NULL: not on),
    # and the last time step used (a code works once).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed_at: Mapped[datetime | None] = mapped_column()
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class Membership(TimestampMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "person_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    organization_kind: Mapped[str] = mapped_column(String(16))  # kernel.auth.Role value
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # a role of permissions.ROLES[kind]


class Invitation(TimestampMixin, Base):
    """An expiring, single-use invitation to join an organization. Only the token's SHA-256 is
    stored (the token has 256 bits of entropy, so a slow hash buys nothing)."""

    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    organization_kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    invited_by_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("people.id"))
    invited_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    accepted_by_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("people.id"))
    revoked_at: Mapped[datetime | None] = mapped_column()
