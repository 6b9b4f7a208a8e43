"""Rendering the affiliates package's rows as API models: the one place that decides which
fields each response carries (several resource modules render memberships, coupons, clicks)."""

from __future__ import annotations

import uuid
from typing import Any

from affiliates.models import (
    Affiliate,
    AffiliateStatus,
    Click,
    Coupon,
    MembershipStatus,
    PlanVersion,
    Program,
    ProgramMembership,
    ReferralLink,
    Storefront,
    StorefrontListing,
)
from affiliates.schemas import (
    AffiliateOut,
    ClickOut,
    CouponOut,
    LinkOut,
    ListingOut,
    MembershipOut,
    PlanVersionOut,
    ProgramOut,
    SplitShareOut,
    StorefrontOut,
)


def _splits(raw: list[dict[str, Any]] | None) -> list[SplitShareOut] | None:
    if not raw:
        return None
    return [SplitShareOut(affiliate_id=uuid.UUID(str(s["affiliate_id"])), weight=int(s["weight"])) for s in raw]


def affiliate_out(affiliate: Affiliate) -> AffiliateOut:
    return AffiliateOut(
        id=affiliate.id, name=affiliate.name, email=affiliate.email, website=affiliate.website,
        audience=affiliate.audience, markets=list(affiliate.markets or []), status=AffiliateStatus(affiliate.status),
        status_reason=affiliate.status_reason, referral_code=affiliate.referral_code,
        recruited_by_affiliate_id=affiliate.recruited_by_affiliate_id, splits=_splits(affiliate.splits),
        payout_status=affiliate.payout_status, webhook_url=affiliate.webhook_url,
        created_at=affiliate.created_at, updated_at=affiliate.updated_at,
    )


def program_out(program: Program, current_version_id: uuid.UUID | None = None,
                seller_name: str | None = None) -> ProgramOut:
    return ProgramOut(
        id=program.id, seller_id=program.seller_id, seller_name=seller_name, terms=program.terms,
        requires_approval=program.requires_approval,
        attribution_window_days=program.attribution_window_days, holding_period_days=program.holding_period_days,
        coupon_discount_bps=program.coupon_discount_bps, current_plan_version_id=current_version_id,
        created_at=program.created_at, updated_at=program.updated_at,
    )


def membership_out(membership: ProgramMembership, affiliate_name: str | None = None) -> MembershipOut:
    return MembershipOut(
        id=membership.id, program_id=membership.program_id, affiliate_id=membership.affiliate_id,
        affiliate_name=affiliate_name, status=MembershipStatus(membership.status), reason=membership.reason,
        message=membership.message, decided_at=membership.decided_at, created_at=membership.created_at,
    )


def version_out(version: PlanVersion) -> PlanVersionOut:
    return PlanVersionOut(
        id=version.id, program_id=version.program_id, version=version.version,
        effective_from=version.effective_from, rules=version.rules, note=version.note, created_at=version.created_at,
    )


def storefront_out(storefront: Storefront) -> StorefrontOut:
    return StorefrontOut(
        id=storefront.id, affiliate_id=storefront.affiliate_id, slug=storefront.slug, name=storefront.name,
        description=storefront.description, currency=storefront.currency, splits=_splits(storefront.splits),
        logo_url=storefront.logo_url, brand_color=storefront.brand_color,
        created_at=storefront.created_at, updated_at=storefront.updated_at,
    )


def listing_out(listing: StorefrontListing) -> ListingOut:
    return ListingOut.model_validate(listing, from_attributes=True)


def link_out(link: ReferralLink, base_url: str, clicks: int) -> LinkOut:
    return LinkOut(
        id=link.id, affiliate_id=link.affiliate_id, code=link.code, url=f"{base_url.rstrip('/')}/r/{link.code}",
        target_url=link.target_url, product_id=link.product_id, storefront_id=link.storefront_id,
        active=link.active, clicks=clicks, created_at=link.created_at,
    )


def coupon_out(coupon: Coupon, discount_bps: int) -> CouponOut:
    return CouponOut(
        id=coupon.id, code=coupon.code, program_id=coupon.program_id, seller_id=coupon.seller_id,
        affiliate_id=coupon.affiliate_id, discount_bps=discount_bps, active=coupon.active, created_at=coupon.created_at,
    )


def click_out(click: Click) -> ClickOut:
    return ClickOut(id=click.id, link_id=click.link_id, storefront_id=click.storefront_id, referer=click.referer,
                    created_at=click.created_at)
