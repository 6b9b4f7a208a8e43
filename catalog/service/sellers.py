"""Sellers: apply, get approved or rejected, keep their profile, and set up where they are paid.

Payout onboarding depends on the payment rail:

* Stripe: an Express connected account (created once: the idempotency key
  `seller-account-{seller_id}` makes a retried request return the same account) and a hosted
  Account Link; Stripe's signed `account.updated` webhook moves the seller to `payouts_enabled`
  (or back to `onboarding` if Stripe disables payouts later).
* Manual: the seller sends a bank reference; an operator verifies it. Changing the reference
  afterwards needs a new verification (money must not follow an unverified change).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.errors import (
    InvalidSeller,
    SellerEmailTaken,
    SellerNotApproved,
    SellerNotFound,
)
from catalog.models import Product, Seller, SellerStatus
from catalog.schemas import SellerApply, SellerUpdate
from catalog.service.cache import invalidate_after_commit
from kernel import auth, payout_accounts
from kernel.auth import IssuedKey, Role
from kernel.db import new_id
from kernel.outbound import check_webhook_url
from kernel.payment_rail import PaymentRail
from kernel.payout_accounts import PayoutAccountIn
from kernel.schemas import decode_cursor, encode_cursor
from kernel.settings import Settings

log = structlog.get_logger(__name__)


def _email(value: str) -> str:
    return value.strip().lower()


def apply(session: Session, data: SellerApply) -> tuple[Seller, IssuedKey]:
    """A new seller application (status pending) and its API key (role seller, shown once)."""
    email = _email(str(data.email))
    if session.scalar(select(Seller.id).where(Seller.email == email)) is not None:
        raise SellerEmailTaken(f"a seller with email {email} already exists")
    seller = Seller(
        id=new_id(), name=data.name, email=email, website=str(data.website) if data.website else None,
        description=data.description,
    )
    session.add(seller)
    try:
        session.flush()
    except IntegrityError:  # a concurrent application with the same email won the race
        raise SellerEmailTaken(f"a seller with email {email} already exists") from None
    issued = auth.issue_key(session, Role.SELLER, seller.id, f"seller {seller.name}"[:100])
    return seller, issued


def get(session: Session, seller_id: uuid.UUID, *, lock: bool = False) -> Seller:
    seller = session.get(Seller, seller_id, with_for_update=lock)
    if seller is None:
        raise SellerNotFound(f"no seller {seller_id}")
    return seller


def list_page(
    session: Session, *, status: SellerStatus | None, cursor: str | None, limit: int
) -> tuple[list[Seller], str | None]:
    """Sellers oldest first (ids are time-ordered), optionally of one status."""
    stmt = select(Seller).order_by(Seller.id).limit(limit + 1)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Seller.id > after)
    if status is not None:
        stmt = stmt.where(Seller.status == status.value)
    rows = list(session.scalars(stmt))
    return rows[:limit], encode_cursor(rows[limit - 1].id) if len(rows) > limit else None


def _invalidate_products_of(session: Session, seller_id: uuid.UUID) -> None:
    """The seller's name and status are part of every cached product of theirs."""
    invalidate_after_commit(session, session.scalars(select(Product.id).where(Product.seller_id == seller_id)))


def approve(session: Session, seller_id: uuid.UUID) -> Seller:
    """Pending or rejected -> approved (approving an approved seller changes nothing)."""
    seller = get(session, seller_id, lock=True)
    if seller.status != SellerStatus.APPROVED:
        seller.status = SellerStatus.APPROVED.value
        seller.status_reason = None
        session.flush()
        _invalidate_products_of(session, seller.id)
    return seller


def reject(session: Session, seller_id: uuid.UUID, reason: str) -> Seller:
    """Pending or approved -> rejected. A rejected seller's products leave the catalog at once
    (they are not unpublished: approving the seller again brings them back)."""
    seller = get(session, seller_id, lock=True)
    if seller.status == SellerStatus.REJECTED and seller.status_reason == reason:
        return seller
    seller.status = SellerStatus.REJECTED.value
    seller.status_reason = reason
    session.flush()
    _invalidate_products_of(session, seller.id)
    return seller


def update_profile(
    session: Session, seller_id: uuid.UUID, data: SellerUpdate, *, allow_private_webhook_hosts: bool = True
) -> Seller:
    """Change the fields that were sent (name, website, description, webhook_url)."""
    seller = get(session, seller_id, lock=True)
    sent = data.model_fields_set
    if "name" in sent:
        if data.name is None:
            raise InvalidSeller("name cannot be null")
        seller.name = data.name
    if "description" in sent:
        seller.description = data.description or ""
    if "website" in sent:
        seller.website = str(data.website) if data.website else None
    if "webhook_url" in sent:
        seller.webhook_url = str(data.webhook_url) if data.webhook_url else None
        check_webhook_url(seller.webhook_url, allow_private_hosts=allow_private_webhook_hosts)
    session.flush()
    if "name" in sent:
        _invalidate_products_of(session, seller.id)
    return seller


# --- payout onboarding --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutSetup:
    seller: Seller
    rail: str
    onboarding_url: str | None


def start_payout_onboarding(
    session: Session, rail: PaymentRail, settings: Settings, seller_id: uuid.UUID, data: PayoutAccountIn
) -> PayoutSetup:
    """Stripe: create the connected account once and return a fresh onboarding link (calling
    again is how a seller gets a new link when the old one expired). Manual: record the bank
    reference for an operator to verify.

    The seller row is locked (FOR UPDATE) across the Stripe calls so two concurrent requests
    cannot both create an account; the idempotency key covers a retry after our commit failed."""
    seller = get(session, seller_id, lock=True)
    if seller.status != SellerStatus.APPROVED:
        raise SellerNotApproved("payout onboarding starts once an operator has approved the seller")
    url = payout_accounts.start_onboarding(rail, settings, seller, "seller", data)
    session.flush()
    return PayoutSetup(seller, rail.name, url)


def verify_manual_payout_account(session: Session, rail: PaymentRail, seller_id: uuid.UUID) -> Seller:
    """Operator, manual rail: the bank details were checked; payouts may be sent."""
    seller = get(session, seller_id, lock=True)
    payout_accounts.verify_manual(rail, seller, "seller")
    session.flush()
    return seller


def apply_stripe_account_update(session: Session, account: dict[str, Any], event_created: int) -> Seller | None:
    """Stripe says what a connected account can do now. Events may arrive out of order: one
    older than the last applied is ignored. Returns the seller, or None if the account is not ours."""
    seller = session.scalars(
        select(Seller).where(Seller.stripe_account_id == account.get("id")).with_for_update()
    ).first()
    if seller is None:  # e.g. an affiliate's account: the affiliates domain handles the same event
        log.debug("stripe_account_not_a_seller", account=account.get("id"))
        return None
    if not payout_accounts.apply_account_update(seller, account, event_created):
        log.info("stripe_account_event_stale", seller_id=str(seller.id), account=account.get("id"))
    session.flush()
    return seller
