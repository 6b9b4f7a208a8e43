"""Browser sessions: a person logs in with email and password and gets a server-side session (a
row; the cookie holds a random token whose SHA-256 is stored), revocable and listed per person.

- The cookie (`mk_session`) is HttpOnly, SameSite=Lax, Secure in production, and a new token is
  made at every login (a token planted before login is never adopted: no fixation; a session the
  browser already had is revoked).
- A request authenticated by the cookie that changes something must carry the session's CSRF
  token in `X-CSRF-Token` (returned by the login); SameSite=Lax already keeps the cookie off
  cross-site POSTs, the token covers same-site attackers and old browsers.
- With TOTP on (kernel.totp), a login needs a code too; a wrong code counts as a failed login.
- Logins are throttled per account and per address: after `FREE_FAILURES` failures within an
  hour, each further try waits 2, 4, 8 ... seconds (at most 15 minutes) after the last failure.
- A session acts for one organization of the person (chosen at login) with their role there,
  resolved at every request like a person's key: removed from it, the session stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, and_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel import totp
from kernel.accounts import Membership, Person, normalize_email, verify_password
from kernel.auth import Principal, Role
from kernel.cache import STATE_PREFIX, Store
from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.errors import Forbidden, NotFound, RateLimited, Unauthorized

COOKIE = "mk_session"
CSRF_HEADER = "X-CSRF-Token"
FREE_FAILURES = 5
MAX_BACKOFF_SECONDS = 900
FAILURE_WINDOW_SECONDS = 3600


class BrowserSession(TimestampMixin, Base):
    __tablename__ = "browser_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # not a credential on its own: sent in a header
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id"), index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column()
    organization_kind: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- throttling --------------------------------------------------------------------------------


def _buckets(email: str, address: str) -> list[str]:
    return [f"{STATE_PREFIX}login-fail:account:{normalize_email(email)}", f"{STATE_PREFIX}login-fail:address:{address}"]


def backoff_seconds(failures: int) -> int:
    """How long after the last failure the next try must wait: nothing for the first few."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_BACKOFF_SECONDS, int(2 ** (failures - FREE_FAILURES + 1)))


def check_throttle(store: Store, email: str, address: str) -> None:
    now = time.time()
    for bucket in _buckets(email, address):
        raw_count, raw_last = store.get(bucket), store.get(bucket + ":last")
        if raw_count is None or raw_last is None:
            continue
        wait = backoff_seconds(int(raw_count)) - (now - float(raw_last))
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise RateLimited(f"too many failed logins: try again in {retry} s", headers={"Retry-After": str(retry)})


def _record_failure(store: Store, email: str, address: str) -> None:
    for bucket in _buckets(email, address):
        count = int(store.get(bucket) or 0) + 1
        store.set(bucket, str(count).encode(), FAILURE_WINDOW_SECONDS)
        store.set(bucket + ":last", str(time.time()).encode(), FAILURE_WINDOW_SECONDS)


def _clear_failures(store: Store, email: str) -> None:
    bucket = _buckets(email, "")[0]  # the account's; an address's count is not its to forgive
    store.delete(bucket, bucket + ":last")


@contextmanager
def throttled(store: Store, email: str, address: str) -> Iterator[None]:
    """Around anything that checks a password (a login, a key made with the password): refused
    while the account or address is backing off; a wrong password or code (Unauthorized) counts
    as a failure; success forgives the account's failures."""
    check_throttle(store, email, address)
    try:
        yield
    except Unauthorized:
        _record_failure(store, email, address)
        raise
    _clear_failures(store, email)


# --- login, logout -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSession:
    row: BrowserSession
    token: str  # for the cookie only


def login(
    session: Session, store: Store, *, email: str, password: str, organization_id: uuid.UUID | None,
    address: str, user_agent: str | None, ttl_hours: int, replaces: str | None = None,
    totp_code: str | None = None, production: bool = False,
) -> NewSession:
    with throttled(store, email, address):
        person = session.scalars(select(Person).where(Person.email == normalize_email(email))).first()
        if person is None or not verify_password(person.password_hash, password):
            raise Unauthorized("wrong email or password")
        stmt = select(Membership).where(Membership.person_id == person.id).order_by(Membership.id)
        if organization_id is not None:
            stmt = stmt.where(Membership.organization_id == organization_id)
        membership = session.scalars(stmt).first()
        if membership is None:
            raise Forbidden("you are not a member of that organization" if organization_id else
                            "you belong to no organization yet: accept an invitation first")
        totp.check_second_factor(person, totp_code, kind=Role(membership.organization_kind), role=membership.role,
                                 production=production)
    if replaces:  # the browser's previous session ends: one login, one session
        old = session.scalars(select(BrowserSession).where(BrowserSession.token_hash == _hash(replaces))).first()
        if old is not None and old.revoked_at is None:
            old.revoked_at = clock.now()
    token = secrets.token_urlsafe(32)
    row = BrowserSession(
        id=new_id(), token_hash=_hash(token), csrf_token=secrets.token_urlsafe(24), person_id=person.id,
        organization_id=membership.organization_id, organization_kind=membership.organization_kind,
        expires_at=clock.now() + timedelta(hours=ttl_hours), address=address[:64],
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return NewSession(row, token)


def authenticate(session: Session, token: str) -> tuple[Principal, str]:
    """The principal a session cookie stands for, and the session's CSRF token."""
    found = session.execute(
        select(BrowserSession, Membership.role)
        .outerjoin(Membership, and_(Membership.person_id == BrowserSession.person_id,
                                    Membership.organization_id == BrowserSession.organization_id))
        .where(BrowserSession.token_hash == _hash(token))
    ).first()
    if found is None:
        raise Unauthorized("unknown session: log in again")
    row, member_role = found
    if row.revoked_at is not None or row.expires_at <= clock.now():
        raise Unauthorized("this session ended: log in again")
    if member_role is None:
        raise Unauthorized("you are no longer a member of this session's organization")
    kind = Role(row.organization_kind)
    subject = None if kind is Role.OPERATOR else row.organization_id
    principal = Principal(row.id, kind, subject, None, row.person_id, member_role, session_id=row.id)
    return principal, row.csrf_token


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(f"send the session's CSRF token in {CSRF_HEADER} (from the login response)")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def principal_from_cookie(session: Session, token: str, method: str, csrf_sent: str | None) -> Principal:
    """A request authenticated by the session cookie: its principal, after the CSRF check for
    anything but a read."""
    principal, csrf = authenticate(session, token)
    if method.upper() not in SAFE_METHODS:
        check_csrf(csrf, csrf_sent)
    return principal


def list_sessions(session: Session, person_id: uuid.UUID) -> list[BrowserSession]:
    return list(session.scalars(select(BrowserSession).where(
        BrowserSession.person_id == person_id, BrowserSession.revoked_at.is_(None),
        BrowserSession.expires_at > clock.now()).order_by(BrowserSession.id.desc())))


def revoke(session: Session, person_id: uuid.UUID, session_id: uuid.UUID) -> BrowserSession:
    row = session.get(BrowserSession, session_id)
    if row is None or row.person_id != person_id:
        raise NotFound(f"no session {session_id}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row
