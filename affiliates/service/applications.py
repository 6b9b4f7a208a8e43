"""Affiliates (market makers): apply, get approved or rejected, keep a profile, and set up where
they are paid. Payout onboarding mirrors sellers (catalog.service.sellers):

* Stripe: an Express connected account created once (idempotency key
  `affiliate-account-{id}`) and a fresh hosted onboarding link per request; Stripe's signed
  `account.updated` webhook enables payouts (handler registered below).
* Manual: the affiliate sends a bank reference; an operator verifies it. A changed reference needs
  a new verification.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import (
    AffiliateExists,
    AffiliateNotApproved,
    AffiliateNotFound,
    InvalidInput,
    UnknownReferralCode,
)
from affiliates.models import Affiliate, AffiliateStatus, Storefront
from affiliates.schemas import AffiliateApply, AffiliateUpdate
from affiliates.service.commission import normalize_email
from affiliates.service.common import checked_splits, page
from affiliates.service.storefront_cache import invalidate_storefronts_after_commit
from kernel import auth, payout_accounts
from kernel.auth import IssuedKey, Role
from kernel.clock import clock
from kernel.db import new_id
from kernel.outbound import check_webhook_url
from kernel.payment_rail import PaymentRail
from kernel.payout_accounts import PayoutAccountIn, PayoutAccountStatus
from kernel.settings import Settings

log = structlog.get_logger(__name__)


def _referral_code() -> str:
    return secrets.token_hex(5).upper()  # 40 bits: unguessable enough for a recruiting code


def apply(session: Session, data: AffiliateApply) -> tuple[Affiliate, IssuedKey]:
    """A new application (pending) and its affiliate API key, shown once. With a recruiter's
    referral code, the recruiter is recorded (one level) and earns the plans' override."""
    email = normalize_email(str(data.email))
    if session.scalar(select(Affiliate.id).where(Affiliate.email == email)) is not None:
        raise AffiliateExists(f"an affiliate with email {email} already exists")
    recruiter_id = None
    if data.referral_code:
        recruiter_id = session.scalar(
            select(Affiliate.id).where(Affiliate.referral_code == data.referral_code.strip().upper())
        )
        if recruiter_id is None:
            raise UnknownReferralCode(f"no affiliate has referral code {data.referral_code!r}")
    affiliate = Affiliate(
        id=new_id(), name=data.name, email=email, website=str(data.website) if data.website else None,
        audience=data.audience, markets=list(dict.fromkeys(data.markets)), referral_code=_referral_code(),
        recruited_by_affiliate_id=recruiter_id,
    )
    session.add(affiliate)
    try:
        session.flush()
    except IntegrityError:  # a concurrent application with the same email won the race
        raise AffiliateExists(f"an affiliate with email {email} already exists") from None
    issued = auth.issue_key(session, Role.AFFILIATE, affiliate.id, f"affiliate {affiliate.name}"[:100])
    return affiliate, issued


def get(session: Session, affiliate_id: uuid.UUID, *, lock: bool = False) -> Affiliate:
    affiliate = session.get(Affiliate, affiliate_id, with_for_update=lock)
    if affiliate is None:
        raise AffiliateNotFound(f"no affiliate {affiliate_id}")
    return affiliate


def list_page(
    session: Session, *, status: AffiliateStatus | None, cursor: str | None, limit: int
) -> tuple[list[Affiliate], str | None]:
    stmt = select(Affiliate)
    if status is not None:
        stmt = stmt.where(Affiliate.status == status.value)
    return page(session, stmt, Affiliate.id, cursor, limit)


def approve(session: Session, affiliate_id: uuid.UUID) -> Affiliate:
    """Pending or rejected -> approved; approving an approved affiliate changes nothing.
    The row is locked so a concurrent reject does not interleave."""
    affiliate = get(session, affiliate_id, lock=True)
    if affiliate.status != AffiliateStatus.APPROVED:
        affiliate.status = AffiliateStatus.APPROVED.value
        affiliate.status_reason = None
        affiliate.decided_at = clock.now()
        session.flush()
        _invalidate_storefronts(session, affiliate.id)
    return affiliate


def reject(session: Session, affiliate_id: uuid.UUID, reason: str) -> Affiliate:
    """Pending -> rejected (with the reason the applicant sees). An approved affiliate may be
    rejected too: it then earns nothing on new orders (the engine checks the selling affiliate's
    status, and the affiliate leaves every split list it was a partner in), while commissions
    already earned stay in the ledger."""
    affiliate = get(session, affiliate_id, lock=True)
    if affiliate.status == AffiliateStatus.REJECTED and affiliate.status_reason == reason:
        return affiliate
    affiliate.status = AffiliateStatus.REJECTED.value
    affiliate.status_reason = reason
    affiliate.decided_at = clock.now()
    session.flush()
    _invalidate_storefronts(session, affiliate.id)
    _leave_splits(session, affiliate.id)
    return affiliate


def _leave_splits(session: Session, partner_id: uuid.UUID) -> None:
    """Take a rejected affiliate out of other affiliates' split lists (storefronts' and default
    ones), so it earns no split on new orders; the remaining partners share the pool by their
    weights, and a list left with its owner alone is cleared (the owner keeps the pool). Split
    lists are few and short, so they are filtered here rather than with JSON operators that
    differ between SQLite and PostgreSQL."""
    partner = str(partner_id)
    changed_storefronts: list[uuid.UUID] = []
    for row in [*session.scalars(select(Storefront).where(Storefront.splits.is_not(None))),
                *session.scalars(select(Affiliate).where(Affiliate.splits.is_not(None)))]:
        owner = row.affiliate_id if isinstance(row, Storefront) else row.id
        if owner == partner_id:
            continue  # its own lists: it earns nothing anyway while rejected, and may be approved again
        kept = [s for s in row.splits or [] if str(s["affiliate_id"]) != partner]
        if len(kept) == len(row.splits or []):
            continue
        row.splits = kept if len(kept) > 1 else None
        if isinstance(row, Storefront):
            changed_storefronts.append(row.id)
    session.flush()
    invalidate_storefronts_after_commit(session, changed_storefronts)


def _invalidate_storefronts(session: Session, affiliate_id: uuid.UUID) -> None:
    """The affiliate's status decides whether its storefronts are public."""
    invalidate_storefronts_after_commit(
        session, session.scalars(select(Storefront.id).where(Storefront.affiliate_id == affiliate_id)))


def update_profile(
    session: Session, affiliate_id: uuid.UUID, data: AffiliateUpdate, *, allow_private_webhook_hosts: bool = True
) -> Affiliate:
    affiliate = get(session, affiliate_id, lock=True)
    sent = data.model_fields_set
    for field in ("name", "audience"):
        if field in sent:
            value = getattr(data, field)
            if value is None:
                raise InvalidInput(f"{field} cannot be null")
            setattr(affiliate, field, value)
    if "markets" in sent:
        affiliate.markets = list(dict.fromkeys(data.markets or []))
    if "website" in sent:
        affiliate.website = str(data.website) if data.website else None
    if "webhook_url" in sent:
        affiliate.webhook_url = str(data.webhook_url) if data.webhook_url else None
        check_webhook_url(affiliate.webhook_url, allow_private_hosts=allow_private_webhook_hosts)
    if "splits" in sent:
        if data.splits and affiliate.status != AffiliateStatus.APPROVED:
            raise AffiliateNotApproved("splits can be set once an operator has approved you")
        affiliate.splits = checked_splits(session, affiliate.id, data.splits)
    session.flush()
    return affiliate


# --- payout onboarding ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutSetup:
    affiliate: Affiliate
    rail: str
    onboarding_url: str | None


def start_payout_onboarding(
    session: Session, rail: PaymentRail, settings: Settings, affiliate_id: uuid.UUID, data: PayoutAccountIn
) -> PayoutSetup:
    """Stripe: create the connected account once and return a fresh onboarding link. Manual:
    record the bank reference for an operator to verify. The affiliate row is locked
    (FOR UPDATE) across the Stripe calls so two concurrent requests cannot both create an
    account; the idempotency key covers a retry after our commit failed."""
    affiliate = get(session, affiliate_id, lock=True)
    if affiliate.status != AffiliateStatus.APPROVED:
        raise AffiliateNotApproved("payout onboarding starts once an operator has approved you")
    url = payout_accounts.start_onboarding(rail, settings, affiliate, "affiliate", data)
    session.flush()
    return PayoutSetup(affiliate, rail.name, url)


def verify_manual_payout_account(session: Session, rail: PaymentRail, affiliate_id: uuid.UUID) -> Affiliate:
    """Operator, manual rail: the bank details were checked; payouts may be sent."""
    affiliate = get(session, affiliate_id, lock=True)
    payout_accounts.verify_manual(rail, affiliate, "affiliate")
    session.flush()
    return affiliate


def apply_stripe_account_update(session: Session, account: dict[str, Any], event_created: int) -> Affiliate | None:
    """Stripe's `account.updated` for an affiliate's connected account (None if not an
    affiliate's: the sellers' handler takes those). The row is locked so a concurrent
    onboarding request does not overwrite the new status; an event older than the last one
    applied is ignored (Stripe does not deliver in order)."""
    affiliate = session.scalars(
        select(Affiliate).where(Affiliate.stripe_account_id == account.get("id")).with_for_update()
    ).first()
    if affiliate is None:
        return None
    payout_accounts.apply_account_update(affiliate, account, event_created)
    session.flush()
    return affiliate
    affiliate.stripe_account_synced_at = event_created
    enabled = account.get("payouts_enabled") is True
    affiliate.payout_status = (
        PayoutAccountStatus.PAYOUTS_ENABLED if enabled else PayoutAccountStatus.ONBOARDING
    ).value
    session.flush()
    return affiliate
