"""Affiliates: apply, the operator's review (list, approve, reject, verify a manual payout
account), the caller's own profile and payout account, and the caller's memberships, clicks and
coupons (under `/v1/affiliates/me`, so before `/v1/affiliates/{affiliate_id}`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body

from affiliates.api.common import AffiliateOrOperator, Cursor, Limit, RuntimeDep
from affiliates.api.views import affiliate_out, click_out, coupon_out, membership_out
from affiliates.models import AffiliateStatus
from affiliates.schemas import (
    AffiliateApplicationOut,
    AffiliateApply,
    AffiliateOut,
    AffiliateReject,
    AffiliateUpdate,
    ClickOut,
    CouponOut,
    MembershipOut,
)
from affiliates.service import applications, coupons, links, programs
from affiliates.service.common import subject
from kernel import people
from kernel.auth import Role
from kernel.deps import (
    AffiliatePrincipal,
    DbSession,
    NoStore,
    OperatorPrincipal,
    PublicRateLimit,
    PublicWriteAudit,
    StrictQuery,
)
from kernel.errors import ProblemDetail
from kernel.payout_accounts import PayoutAccountIn, PayoutAccountOut
from kernel.schemas import Page

router = APIRouter(dependencies=[StrictQuery])
RAIL_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"model": ProblemDetail, "description": "Stripe refused or did not answer; nothing changed"}
}


def _payout_out(setup: applications.PayoutSetup) -> PayoutAccountOut:
    affiliate = setup.affiliate
    return PayoutAccountOut(
        rail="stripe" if setup.rail == "stripe" else "manual", payout_status=affiliate.payout_status,
        stripe_account_id=affiliate.stripe_account_id, onboarding_url=setup.onboarding_url,
        bank_reference=affiliate.bank_reference,
    )


@router.post("/v1/affiliates", status_code=201, response_model=AffiliateApplicationOut, tags=["affiliates"],
             dependencies=[PublicRateLimit, NoStore])
def apply_as_affiliate(body: AffiliateApply, session: DbSession, audit: PublicWriteAudit) -> AffiliateApplicationOut:
    """Public: apply as an affiliate (market maker). Returns the application (pending until an
    operator approves it) and the affiliate API key, shown once. `referral_code`: the code of the
    affiliate that recruited you. A second application with the same email is a 409. With
    `password`, the applicant (email) also becomes the affiliate's owner, a person who can invite
    teammates."""
    affiliate, issued = applications.apply(session, body)
    owner = people.sign_up_owner_if_asked(session, Role.AFFILIATE, affiliate.id, body, affiliate.email,
                                          affiliate.name)
    audit.actor(owner.id if owner else None, (Role.AFFILIATE.value, affiliate.id))
    audit.object("affiliate", affiliate.id)
    return AffiliateApplicationOut(affiliate=affiliate_out(affiliate), api_key=issued.key, api_key_id=issued.id,
                                   api_key_prefix=issued.prefix, owner_person_id=owner.id if owner else None)


@router.get("/v1/affiliates", response_model=Page[AffiliateOut], tags=["affiliates"])
def list_affiliates(session: DbSession, principal: OperatorPrincipal, status: AffiliateStatus | None = None,
                    cursor: Cursor = None, limit: Limit = 50) -> Page[AffiliateOut]:
    """Operator: affiliates, oldest first, optionally of one status (`pending` to review)."""
    rows, next_cursor = applications.list_page(session, status=status, cursor=cursor, limit=limit)
    return Page(items=[affiliate_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/affiliates/me", response_model=AffiliateOut, tags=["affiliates"])
def read_me(session: DbSession, principal: AffiliatePrincipal) -> AffiliateOut:
    """The calling affiliate's profile, status, referral code and default split."""
    return affiliate_out(applications.get(session, subject(principal)))


@router.patch("/v1/affiliates/me", response_model=AffiliateOut, tags=["affiliates"])
def update_me(
    body: AffiliateUpdate, session: DbSession, principal: AffiliatePrincipal, runtime: RuntimeDep
) -> AffiliateOut:
    """Change the fields sent. `splits`: your default commission split (list yourself too) for
    orders not made through a storefront with its own split."""
    return affiliate_out(applications.update_profile(
        session, subject(principal), body,
        allow_private_webhook_hosts=runtime.settings.webhooks_may_reach_private_hosts))


@router.post("/v1/affiliates/me/payout-account", response_model=PayoutAccountOut, tags=["affiliates"],
             responses=RAIL_FAILED)
def start_payout_onboarding(session: DbSession, principal: AffiliatePrincipal, runtime: RuntimeDep,
                            body: Annotated[PayoutAccountIn | None, Body()] = None) -> PayoutAccountOut:
    """Set up where you are paid (approved affiliates). Stripe: returns a hosted onboarding URL.
    Manual rail: send `bank_reference`; an operator verifies it."""
    setup = applications.start_payout_onboarding(session, runtime.rail, runtime.settings, subject(principal),
                                                 body or PayoutAccountIn())
    return _payout_out(setup)


@router.get("/v1/affiliates/me/payout-account", response_model=PayoutAccountOut, tags=["affiliates"])
def read_payout_account(session: DbSession, principal: AffiliatePrincipal, runtime: RuntimeDep) -> PayoutAccountOut:
    """Where your payout onboarding stands (the rail, and whether payouts are enabled)."""
    affiliate = applications.get(session, subject(principal))
    return _payout_out(applications.PayoutSetup(affiliate, runtime.rail.name, None))


@router.get("/v1/affiliates/me/memberships", response_model=Page[MembershipOut], tags=["programs"])
def my_memberships(session: DbSession, principal: AffiliatePrincipal, cursor: Cursor = None,
                   limit: Limit = 50) -> Page[MembershipOut]:
    """The programs you applied to and where each application stands."""
    rows, next_cursor = programs.my_memberships(session, subject(principal), cursor=cursor, limit=limit)
    return Page(items=[membership_out(m) for m in rows], next_cursor=next_cursor)


@router.get("/v1/affiliates/me/clicks", response_model=Page[ClickOut], tags=["referral links"],
            responses={404: {"description": "`link_id` names no link of yours"}})
def my_clicks(session: DbSession, principal: AffiliateOrOperator, link_id: uuid.UUID | None = None,
              cursor: Cursor = None, limit: Limit = 50) -> Page[ClickOut]:
    """Your clicks, oldest first (an operator sees everyone's), optionally of one link."""
    rows, next_cursor = links.list_clicks(session, principal, link_id=link_id, cursor=cursor, limit=limit)
    return Page(items=[click_out(c) for c in rows], next_cursor=next_cursor)


@router.get("/v1/affiliates/me/coupons", response_model=Page[CouponOut], tags=["coupons"])
def my_coupons(session: DbSession, principal: AffiliatePrincipal, cursor: Cursor = None,
               limit: Limit = 50) -> Page[CouponOut]:
    """Coupon codes sellers made for you."""
    rows, next_cursor = coupons.list_mine(session, subject(principal), cursor=cursor, limit=limit)
    bps = coupons.discount_bps(session, list({c.program_id for c in rows}))
    return Page(items=[coupon_out(c, bps.get(c.program_id, 0)) for c in rows], next_cursor=next_cursor)


@router.get("/v1/affiliates/{affiliate_id}", response_model=AffiliateOut, tags=["affiliates"])
def read_affiliate(affiliate_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> AffiliateOut:
    """Operator: one affiliate."""
    return affiliate_out(applications.get(session, affiliate_id))


@router.post("/v1/affiliates/{affiliate_id}/approve", response_model=AffiliateOut, tags=["affiliates"])
def approve_affiliate(affiliate_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> AffiliateOut:
    """Operator: approve an application (or a previously rejected affiliate)."""
    return affiliate_out(applications.approve(session, affiliate_id))


@router.post("/v1/affiliates/{affiliate_id}/reject", response_model=AffiliateOut, tags=["affiliates"])
def reject_affiliate(affiliate_id: uuid.UUID, body: AffiliateReject, session: DbSession,
                     principal: OperatorPrincipal) -> AffiliateOut:
    """Operator: reject with a reason the applicant sees. A rejected affiliate earns nothing on
    new orders and its storefronts go offline."""
    return affiliate_out(applications.reject(session, affiliate_id, body.reason))


@router.post("/v1/affiliates/{affiliate_id}/payout-account/verify", response_model=AffiliateOut,
             tags=["affiliates"])
def verify_payout_account(affiliate_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal,
                          runtime: RuntimeDep) -> AffiliateOut:
    """Operator, manual rail: the affiliate's bank details were checked; payouts may be sent."""
    return affiliate_out(applications.verify_manual_payout_account(session, runtime.rail, affiliate_id))
