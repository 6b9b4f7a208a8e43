"""Password reset by email: a single-use token (only its SHA-256 stored) that expires after
`RESET_TTL`, sent through the mail outbox. Asking never says whether the email has an account.
Using it sets the new password and ends every browser session of the person (whoever knew the
old password is logged out); personal API keys stay (revoke them in GET /v1/me/api-keys)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel import mail, ratelimit
from kernel.accounts import Person, hash_password, normalize_email
from kernel.cache import Store
from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.errors import AppError, NotFound
from kernel.sessions import BrowserSession
from kernel.settings import Settings

RESET_TTL = timedelta(hours=1)
RESETS_PER_ACCOUNT_PER_MINUTE = 3


class ResetTokenGone(AppError):
    status = 410
    type = "password-reset-gone"
    title = "This password reset link was used or has expired"


class PasswordReset(TimestampMixin, Base):
    __tablename__ = "password_resets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(session: Session, store: Store, settings: Settings, email: str) -> uuid.UUID | None:
    """Mail a reset link if `email` is a person's; the caller answers the same either way.
    Returns the person's id (for the audit log), None if there is none."""
    email = normalize_email(email)
    ratelimit.enforce(store, f"password-reset:{email}", RESETS_PER_ACCOUNT_PER_MINUTE)
    person = session.scalars(select(Person).where(Person.email == email)).first()
    if person is None:
        return None
    token = secrets.token_urlsafe(32)
    row = PasswordReset(id=new_id(), person_id=person.id, token_hash=_hash(token),
                        expires_at=clock.now() + RESET_TTL)
    session.add(row)
    base = settings.public_base_url.rstrip("/")
    body = (
        "Someone (we hope you) asked to reset your marketplace password.\n\n"
        f"Choose a new one: {base}/password-reset?token={token}\n\n"
        "Or with the API:\n"
        f"  curl -X POST {base}/v1/password-resets/confirm -H 'Content-Type: application/json' \\\n"
        f"       -d '{{\"token\": \"{token}\", \"password\": \"...\"}}'\n\n"
        f"The link works once and expires at {row.expires_at:%Y-%m-%d %H:%M} UTC. "
        "If you did not ask, ignore this email: your password stays as it is.\n"
    )
    mail.queue(session, person.email, "Reset your marketplace password", body, kind="password_reset")
    return person.id


def confirm_reset(session: Session, token: str, password: str) -> Person:
    row = session.scalars(select(PasswordReset).where(PasswordReset.token_hash == _hash(token))
                          .with_for_update()).first()
    if row is None:
        raise NotFound("no such password reset: check the link")
    if row.used_at is not None or row.expires_at <= clock.now():
        raise ResetTokenGone("this link was used or has expired: ask for a new one")
    person = session.get(Person, row.person_id)
    assert person is not None
    now = clock.now()
    # In the global lock order (kernel.locking): the person's reset links, the person, then the
    # person's sessions. Any other link still open for this person dies with this one.
    session.execute(update(PasswordReset).where(PasswordReset.person_id == person.id,
                                                PasswordReset.used_at.is_(None)).values(used_at=now))
    row.used_at = now
    person.password_hash = hash_password(password)
    session.flush()
    session.execute(update(BrowserSession).where(BrowserSession.person_id == person.id,
                                                 BrowserSession.revoked_at.is_(None)).values(revoked_at=now))
    return person
