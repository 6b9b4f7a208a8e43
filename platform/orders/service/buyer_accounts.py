"""Buyer accounts: a person who buys sees every order placed with their email, across storefronts,
once they have proven the email is theirs.

- Signing up makes (or, proven by its password, reuses) a person (kernel.people) and gives them a
  buyer membership in their own account scope (the organization id is the person's id, role
  `payer`: reads only; no buyer organization exists there, so its routes find nothing), a
  personal key (and later logins: `POST /v1/auth/api-keys` or a browser session for that scope),
  and mails a single-use confirmation link (only its SHA-256 is stored; it expires).
- Until the link is used, `orders_of` refuses (403 `buyer-account-not-confirmed`): anyone may sign
  up with any email, so the email's orders are shown only to whoever reads its mailbox.
- The orders are the buyer's own data: shown in full, as the buyer's order view shows them.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel import locking, mail, people
from kernel.accounts import Person
from kernel.auth import IssuedKey, Principal, Role
from kernel.clock import clock
from kernel.errors import AppError, Conflict, Forbidden, NotFound
from kernel.settings import Settings
from orders.models import BuyerAccount, Order
from orders.service.order_links import hash_token

CONFIRMATION_TTL = timedelta(hours=48)
ACCOUNT_ROLE = "payer"  # the buyer role that only reads


class AccountNotConfirmed(Forbidden):
    type = "buyer-account-not-confirmed"
    title = "Confirm your email first"


class NoBuyerAccount(NotFound):
    """The caller may read buyer accounts, but its person has none: nothing there (404), as for
    an id that does not exist."""

    type = "no-buyer-account"
    title = "This person has no buyer account"


class ConfirmationGone(AppError):
    status = 410
    type = "buyer-account-confirmation-gone"
    title = "This confirmation link was used or has expired"


@dataclass(frozen=True, slots=True)
class SignedUp:
    person: Person
    account: BuyerAccount
    key: IssuedKey


def sign_up(session: Session, settings: Settings, email: str, name: str, password: str) -> SignedUp:
    """A buyer account for the person with `email` (new, or an existing person proven by their
    password), its key, and the confirmation mail (sent after the commit)."""
    person = people.person_for(session, email, name, password)
    if session.scalar(select(BuyerAccount.id).where(BuyerAccount.person_id == person.id)) is not None:
        raise Conflict(f"{person.email} has a buyer account already: log in with its password")
    people.add_membership(session, person, Role.BUYER, person.id, ACCOUNT_ROLE)
    token = secrets.token_urlsafe(32)
    account = BuyerAccount(person_id=person.id, email=person.email, token_hash=hash_token(token),
                           token_expires_at=clock.now() + CONFIRMATION_TTL)
    session.add(account)
    session.flush()
    key = people.issue_personal_key(session, person.id, Role.BUYER, person.id, None, "buyer account")
    base = settings.public_base_url.rstrip("/")
    mail.queue(session, person.email, "Confirm your email to see your orders", (
        "You created a buyer account on the marketplace. Confirm that this email is yours to see every\n"
        "order placed with it, in every storefront:\n\n"
        f"  {base}/buyer-account/confirm?token={token}\n\n"
        "Or with the API:\n"
        f"  curl -X POST {base}/v1/buyer-accounts/confirm -H 'Content-Type: application/json' \\\n"
        f"       -d '{{\"token\": \"{token}\"}}'\n\n"
        f"The link works once and expires at {account.token_expires_at:%Y-%m-%d %H:%M} UTC. If you did not "
        "sign up, ignore this email: nobody sees your orders without it.\n"
    ), kind="buyer_account_confirmation")
    return SignedUp(person, account, key)


def confirm(session: Session, token: str) -> BuyerAccount:
    """Use the emailed link: the account's email is confirmed (once; the link then stops working)."""
    account = locking.lock(session, select(BuyerAccount).where(
        BuyerAccount.token_hash == hash_token(token))).scalar_one_or_none()
    if account is None:
        raise NotFound("no buyer account confirmation with this token: check the link")
    if account.token_expires_at is None or account.token_expires_at <= clock.now():
        raise ConfirmationGone("this confirmation link has expired")
    account.confirmed_at, account.token_hash, account.token_expires_at = clock.now(), None, None
    session.flush()
    return account


def account_of(session: Session, principal: Principal) -> BuyerAccount:
    found = session.scalars(select(BuyerAccount).where(BuyerAccount.person_id == principal.person_id)).one_or_none() \
        if principal.person_id is not None else None
    if found is None:
        raise NoBuyerAccount("this key's person has no buyer account: POST /v1/buyer-accounts")
    return found


def orders_of(session: Session, principal: Principal, *, after: uuid.UUID | None, limit: int) -> list[Order]:
    """Every order placed with the account's confirmed email, newest first, `limit` after the
    cursor's order id."""
    account = account_of(session, principal)
    if account.confirmed_at is None:
        raise AccountNotConfirmed(f"confirm {account.email} with the link mailed to it first")
    stmt = select(Order).where(Order.buyer_email == account.email).order_by(Order.id.desc()).limit(limit)
    if after is not None:
        stmt = stmt.where(Order.id < after)
    return list(session.scalars(stmt))
