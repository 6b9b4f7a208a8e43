"""HTTP routes of the affiliates package: affiliates, programs and memberships, plan versions,
coupons, storefronts (owner and public), referral links and the click redirect, the commission
preview. Thin: each handler checks the caller's role, calls one service function, shapes the result.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from affiliates import stripe_events as _stripe_events  # noqa: F401  (registers the account.updated handler)
from affiliates.engine import Settlement
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
    AffiliateApplicationOut,
    AffiliateApply,
    AffiliateOut,
    AffiliateReject,
    AffiliateUpdate,
    AttributionOut,
    ClickOut,
    CommissionShareOut,
    CouponCreate,
    CouponOut,
    DailyClicksOut,
    LinkCreate,
    LinkOut,
    ListingIn,
    ListingOut,
    MembershipApply,
    MembershipDecision,
    MembershipOut,
    PartyTotalOut,
    PlanVersionIn,
    PlanVersionOut,
    PreviewIn,
    PreviewLineOut,
    PreviewOut,
    ProgramIn,
    ProgramOut,
    SplitShareOut,
    StorefrontCreate,
    StorefrontOut,
    StorefrontPublicOut,
    StorefrontUpdate,
)
from affiliates.service import applications, coupons, links, preview, programs, storefronts
from affiliates.service.common import subject
from catalog.schemas import CatalogProductOut
from kernel import people
from kernel.auth import Principal, Role
from kernel.db import autocommit_engine, session_scope
from kernel.deps import (
    AffiliatePrincipal,
    CurrentPrincipal,
    DbSession,
    OperatorPrincipal,
    PublicRateLimit,
    PublicWriteAudit,
    SellerPrincipal,
    StrictQuery,
    get_runtime,
    require,
)
from kernel.errors import ProblemDetail
from kernel.payout_accounts import PayoutAccountIn, PayoutAccountOut
from kernel.runtime import Runtime
from kernel.schemas import Page, money

router = APIRouter(dependencies=[StrictQuery])
# The public routes every buyer visit hits (a storefront's listing, a product, a referral link),
# in a router of their own that marketplace.app includes right after checkout: FastAPI tries
# routes in inclusion order, and behind the ~40 routes of `router` each match cost ~70 µs.
buyer_router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SellerOrOperator = Annotated[Principal, Depends(require(Role.SELLER, Role.OPERATOR))]
AffiliateOrOperator = Annotated[Principal, Depends(require(Role.AFFILIATE, Role.OPERATOR))]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
RAIL_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"model": ProblemDetail, "description": "Stripe refused or did not answer; nothing changed"}
}


# --- shaping ----------------------------------------------------------------------------------------


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


def program_out(program: Program, current_version_id: uuid.UUID | None = None) -> ProgramOut:
    return ProgramOut(
        id=program.id, seller_id=program.seller_id, terms=program.terms, requires_approval=program.requires_approval,
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


def _payout_out(setup: applications.PayoutSetup) -> PayoutAccountOut:
    affiliate = setup.affiliate
    return PayoutAccountOut(
        rail="stripe" if setup.rail == "stripe" else "manual", payout_status=affiliate.payout_status,
        stripe_account_id=affiliate.stripe_account_id, onboarding_url=setup.onboarding_url,
        bank_reference=affiliate.bank_reference,
    )


# --- affiliates ---------------------------------------------------------------------------------------


@router.post("/v1/affiliates", status_code=201, response_model=AffiliateApplicationOut, tags=["affiliates"],
             dependencies=[PublicRateLimit])
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
    affiliate = applications.get(session, subject(principal))
    return _payout_out(applications.PayoutSetup(affiliate, runtime.rail.name, None))


@router.get("/v1/affiliates/me/memberships", response_model=Page[MembershipOut], tags=["programs"])
def my_memberships(session: DbSession, principal: AffiliatePrincipal, cursor: Cursor = None,
                   limit: Limit = 50) -> Page[MembershipOut]:
    """The programs you applied to and where each application stands."""
    rows, next_cursor = programs.my_memberships(session, subject(principal), cursor=cursor, limit=limit)
    return Page(items=[membership_out(m) for m in rows], next_cursor=next_cursor)


@router.get("/v1/affiliates/me/clicks", response_model=Page[ClickOut], tags=["referral links"])
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


# --- programs, memberships, plan versions, coupons ------------------------------------------------------


@router.post("/v1/programs", status_code=201, response_model=ProgramOut, tags=["programs"])
def create_program(body: ProgramIn, session: DbSession, principal: SellerPrincipal) -> ProgramOut:
    """Seller: start your affiliate program (one per seller). Then add a commission plan with
    `POST /v1/programs/{id}/plan-versions`: until one is in force, members earn nothing."""
    return program_out(programs.create_program(session, subject(principal), body))


@router.get("/v1/programs", response_model=Page[ProgramOut], tags=["programs"])
def list_programs(session: DbSession, principal: CurrentPrincipal, seller_id: uuid.UUID | None = None,
                  cursor: Cursor = None, limit: Limit = 50) -> Page[ProgramOut]:
    """Programs of approved sellers, oldest first (what affiliates browse to find programs to join)."""
    rows, next_cursor = programs.list_programs(session, seller_id=seller_id, cursor=cursor, limit=limit)
    current = programs.current_versions(session, rows)
    return Page(items=[program_out(p, current.get(p.id)) for p in rows], next_cursor=next_cursor)


@router.get("/v1/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def read_program(program_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> ProgramOut:
    """A program's terms (any key)."""
    program = programs.get_program(session, program_id)
    return program_out(program, programs.current_versions(session, [program]).get(program.id))


@router.patch("/v1/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def update_program(program_id: uuid.UUID, body: ProgramIn, session: DbSession,
                   principal: SellerOrOperator) -> ProgramOut:
    """Seller: change terms, approval, attribution window, holding period or coupon discount
    (orders already placed keep theirs)."""
    program = programs.update_program(session, principal, program_id, body)
    return program_out(program, programs.current_versions(session, [program]).get(program.id))


@router.post("/v1/programs/{program_id}/memberships", status_code=201, response_model=MembershipOut,
             tags=["programs"])
def join_program(program_id: uuid.UUID, session: DbSession, principal: AffiliatePrincipal,
                 body: Annotated[MembershipApply | None, Body()] = None) -> MembershipOut:
    """Affiliate: apply to join. Approved at once when the program does not require approval."""
    return membership_out(programs.join(session, subject(principal), program_id, (body or MembershipApply()).message))


@router.get("/v1/programs/{program_id}/memberships", response_model=Page[MembershipOut], tags=["programs"])
def list_memberships(program_id: uuid.UUID, session: DbSession, principal: SellerOrOperator,
                     status: MembershipStatus | None = None, cursor: Cursor = None,
                     limit: Limit = 50) -> Page[MembershipOut]:
    """Seller: who applied to or belongs to your program (another seller's program is a 404)."""
    rows, next_cursor = programs.list_memberships(session, principal, program_id, status=status, cursor=cursor,
                                                  limit=limit)
    return Page(items=[membership_out(m, name) for m, name in rows], next_cursor=next_cursor)


def _decide(decision: str) -> Any:
    def handler(program_id: uuid.UUID, membership_id: uuid.UUID, session: DbSession, principal: SellerOrOperator,
                body: Annotated[MembershipDecision | None, Body()] = None) -> MembershipOut:
        reason = (body or MembershipDecision()).reason
        return membership_out(programs.decide(session, principal, program_id, membership_id, decision, reason))

    handler.__name__ = f"{decision}_membership"
    handler.__doc__ = f"Seller: {decision} a membership of your program (optional reason)."
    return handler


for _decision in ("approve", "reject", "remove"):
    router.add_api_route(
        f"/v1/programs/{{program_id}}/memberships/{{membership_id}}/{_decision}", _decide(_decision),
        methods=["POST"], response_model=MembershipOut, tags=["programs"],
    )


@router.post("/v1/programs/{program_id}/plan-versions", status_code=201, response_model=PlanVersionOut,
             tags=["programs"])
def create_plan_version(program_id: uuid.UUID, body: PlanVersionIn, session: DbSession,
                        principal: SellerOrOperator) -> PlanVersionOut:
    """Seller: a new commission plan version, in force from `effective_from` (default now, never
    in the past) until the next version. Versions are never edited; every commission records the
    version that computed it."""
    return version_out(programs.create_plan_version(session, principal, program_id, body))


@router.get("/v1/programs/{program_id}/plan-versions", response_model=Page[PlanVersionOut], tags=["programs"])
def list_plan_versions(program_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal,
                       cursor: Cursor = None, limit: Limit = 50) -> Page[PlanVersionOut]:
    """Every version of the plan (the seller, operators and approved members)."""
    rows, next_cursor = programs.list_plan_versions(session, principal, program_id, cursor=cursor, limit=limit)
    return Page(items=[version_out(v) for v in rows], next_cursor=next_cursor)


@router.post("/v1/programs/{program_id}/coupons", status_code=201, response_model=CouponOut, tags=["coupons"])
def create_coupon(program_id: uuid.UUID, body: CouponCreate, session: DbSession,
                  principal: SellerOrOperator) -> CouponOut:
    """Seller: a coupon code tied to an approved member. Buyers get the program's coupon discount
    on your products; the order is attributed to the member (after storefront and click)."""
    coupon = coupons.create(session, principal, program_id, body.code, body.affiliate_id)
    return coupon_out(coupon, coupons.discount_bps(session, [coupon.program_id]).get(coupon.program_id, 0))


@router.get("/v1/programs/{program_id}/coupons", response_model=Page[CouponOut], tags=["coupons"])
def list_coupons(program_id: uuid.UUID, session: DbSession, principal: SellerOrOperator, cursor: Cursor = None,
                 limit: Limit = 50) -> Page[CouponOut]:
    rows, next_cursor = coupons.list_for(session, principal, program_id, cursor=cursor, limit=limit)
    bps = coupons.discount_bps(session, [program_id]).get(program_id, 0)
    return Page(items=[coupon_out(c, bps) for c in rows], next_cursor=next_cursor)


@router.post("/v1/programs/{program_id}/coupons/{coupon_id}/deactivate", response_model=CouponOut,
             tags=["coupons"])
def deactivate_coupon(program_id: uuid.UUID, coupon_id: uuid.UUID, session: DbSession,
                      principal: SellerOrOperator) -> CouponOut:
    coupon = coupons.deactivate(session, principal, program_id, coupon_id)
    return coupon_out(coupon, coupons.discount_bps(session, [program_id]).get(program_id, 0))


# --- storefronts --------------------------------------------------------------------------------------


@router.post("/v1/storefronts", status_code=201, response_model=StorefrontOut, tags=["storefronts"])
def create_storefront(body: StorefrontCreate, session: DbSession, principal: AffiliatePrincipal) -> StorefrontOut:
    """Affiliate: a storefront (unique slug). `splits`: how this storefront's commissions are
    shared (list yourself too), e.g. you 70 and a specialist 30."""
    return storefront_out(storefronts.create(session, subject(principal), body))


@router.get("/v1/storefronts", response_model=Page[StorefrontOut], tags=["storefronts"])
def list_storefronts(session: DbSession, principal: AffiliateOrOperator, cursor: Cursor = None,
                     limit: Limit = 50) -> Page[StorefrontOut]:
    """Your storefronts with their settings (an operator sees all)."""
    rows, next_cursor = storefronts.list_mine(session, principal, cursor=cursor, limit=limit)
    return Page(items=[storefront_out(s) for s in rows], next_cursor=next_cursor)


@router.get("/v1/storefronts/{slug}", response_model=StorefrontPublicOut, tags=["storefronts"],
            dependencies=[PublicRateLimit])
def public_storefront(slug: str, session: DbSession, runtime: RuntimeDep) -> StorefrontPublicOut:
    """Public: a storefront as buyers see it (cached)."""
    entry = storefronts.public_storefront(session, runtime.store, slug)
    return StorefrontPublicOut(slug=entry.slug, name=entry.name, description=entry.description,
                               currency=entry.currency, affiliate_name=entry.affiliate_name,
                               product_count=len(entry.listings))


# The buyers' hot reads (listing, product) and the referral redirect open their own unit of work
# inside the handler instead of taking the `DbSession` dependency (FastAPI runs that sync
# generator dependency in the thread pool apart from the handler: two hops per request), and the
# two reads return their JSON as a ready Response (FastAPI would validate the model again and
# serialise it in another hop). `response_model` still documents the shape.


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(by_alias=True).encode(), media_type="application/json")


@buyer_router.get("/v1/storefronts/{slug}/products", response_model=Page[CatalogProductOut], tags=["storefronts"],
            dependencies=[PublicRateLimit, StrictQuery])
def public_storefront_products(slug: str, runtime: RuntimeDep, cursor: Cursor = None,
                               limit: Limit = 50) -> Response:
    """Public: the storefront's products for sale, in listing order, with variants and prices.
    Listing changes show at once; catalog changes as soon as the catalog's cache entry is
    dropped (on commit; at worst after the catalog cache TTL)."""
    with session_scope(runtime.sessions) as session:
        items, next_cursor = storefronts.public_products(
            session, runtime.store, runtime.settings.catalog_cache_ttl_seconds, slug, cursor=cursor, limit=limit)
    return _json(Page[CatalogProductOut](items=items, next_cursor=next_cursor))


@buyer_router.get("/v1/storefronts/{slug}/products/{product_id}", response_model=CatalogProductOut,
            tags=["storefronts"], dependencies=[PublicRateLimit, StrictQuery])
def public_storefront_product(slug: str, product_id: uuid.UUID, runtime: RuntimeDep) -> Response:
    """Public: one product of the storefront."""
    with session_scope(runtime.sessions) as session:
        product = storefronts.public_product(session, runtime.store, runtime.settings.catalog_cache_ttl_seconds,
                                             slug, product_id)
    return _json(product)


@router.get("/v1/storefronts/{slug}/settings", response_model=StorefrontOut, tags=["storefronts"])
def read_storefront_settings(slug: str, session: DbSession, principal: AffiliateOrOperator) -> StorefrontOut:
    """Owner: the storefront with its settings (another affiliate's is a 404)."""
    return storefront_out(storefronts.owned(session, principal, slug))


@router.patch("/v1/storefronts/{slug}", response_model=StorefrontOut, tags=["storefronts"])
def update_storefront(slug: str, body: StorefrontUpdate, session: DbSession,
                      principal: AffiliateOrOperator) -> StorefrontOut:
    """Owner: change name, description or splits (only the fields sent)."""
    return storefront_out(storefronts.update(session, principal, slug, body))


@router.post("/v1/storefronts/{slug}/listings", status_code=201, response_model=ListingOut, tags=["storefronts"])
def add_listing(slug: str, body: ListingIn, session: DbSession, principal: AffiliateOrOperator) -> ListingOut:
    """Owner: list a product. 409 `not-program-member` unless you are an approved member of its
    seller's program; 409 `product-not-listable` when it is not for sale or in another currency."""
    return listing_out(storefronts.add_listing(session, principal, slug, body.product_id))


@router.get("/v1/storefronts/{slug}/listings", response_model=Page[ListingOut], tags=["storefronts"])
def list_listings(slug: str, session: DbSession, principal: AffiliateOrOperator, cursor: Cursor = None,
                  limit: Limit = 50) -> Page[ListingOut]:
    rows, next_cursor = storefronts.list_listings(session, principal, slug, cursor=cursor, limit=limit)
    return Page(items=[listing_out(r) for r in rows], next_cursor=next_cursor)


@router.delete("/v1/storefronts/{slug}/listings/{product_id}", status_code=204, tags=["storefronts"])
def remove_listing(slug: str, product_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator) -> None:
    """Owner: stop listing a product."""
    storefronts.remove_listing(session, principal, slug, product_id)


# --- referral links and clicks -------------------------------------------------------------------------


@router.post("/v1/referral-links", status_code=201, response_model=LinkOut, tags=["referral links"])
def create_link(body: LinkCreate, session: DbSession, principal: AffiliatePrincipal, runtime: RuntimeDep) -> LinkOut:
    """Affiliate: a referral link. Share `url`; each visit records a click and redirects to the
    target with an attribution token (`mk_ref` query parameter and cookie)."""
    link = links.create_link(session, principal, runtime.settings, body)
    return link_out(link, runtime.settings.public_base_url, 0)


@router.get("/v1/referral-links", response_model=Page[LinkOut], tags=["referral links"])
def list_links(session: DbSession, principal: AffiliateOrOperator, runtime: RuntimeDep, cursor: Cursor = None,
               limit: Limit = 50) -> Page[LinkOut]:
    rows, next_cursor = links.list_links(session, principal, cursor=cursor, limit=limit)
    totals = links.click_totals(session, [r.id for r in rows])
    base = runtime.settings.public_base_url
    return Page(items=[link_out(r, base, totals.get(r.id, 0)) for r in rows], next_cursor=next_cursor)


@router.get("/v1/referral-links/{link_id}", response_model=LinkOut, tags=["referral links"])
def read_link(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator, runtime: RuntimeDep) -> LinkOut:
    link = links.owned_link(session, principal, link_id)
    return link_out(link, runtime.settings.public_base_url, links.click_totals(session, [link.id]).get(link.id, 0))


@router.post("/v1/referral-links/{link_id}/deactivate", response_model=LinkOut, tags=["referral links"])
def deactivate_link(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator,
                    runtime: RuntimeDep) -> LinkOut:
    """The link stops redirecting (404); clicks already made keep attributing within their window."""
    link = links.deactivate(session, principal, link_id)
    return link_out(link, runtime.settings.public_base_url, links.click_totals(session, [link.id]).get(link.id, 0))


@router.get("/v1/referral-links/{link_id}/clicks/daily", response_model=list[DailyClicksOut],
            tags=["referral links"])
def link_daily_clicks(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator) -> list[DailyClicksOut]:
    """Clicks per UTC day (flushed counters; with Redis, up to a minute behind)."""
    return [DailyClicksOut(day=row.day.isoformat(), clicks=row.clicks)
            for row in links.daily_clicks(session, principal, link_id)]


@buyer_router.get("/r/{code}", status_code=302, tags=["referral links"], dependencies=[PublicRateLimit],
            response_class=RedirectResponse, responses={302: {"description": "to the link's target, with mk_ref"}})
def follow_link(code: str, request: Request, runtime: RuntimeDep) -> RedirectResponse:
    """Public: record a click and redirect to the target with the attribution token as the
    `mk_ref` query parameter and cookie (the last click replaces both)."""
    # On PostgreSQL with Redis counting the clicks, the click is one statement (links.record_click):
    # run it on an autocommit connection, so it is its own transaction (no BEGIN/COMMIT).
    settings = runtime.settings
    bind = None if settings.is_sqlite or not settings.redis_url else autocommit_engine(runtime.engine)
    with session_scope(runtime.sessions, bind=bind) as session:
        redirect = links.record_click(session, runtime.store, settings, code, referer=request.headers.get("referer"),
                                      user_agent=request.headers.get("user-agent"))
    response = RedirectResponse(redirect.location, status_code=302)
    if redirect.token is not None:
        response.set_cookie(links.COOKIE_NAME, redirect.token, max_age=links.COOKIE_MAX_AGE_SECONDS, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
    return response


# --- commission preview --------------------------------------------------------------------------------


@router.post("/v1/commissions/preview", response_model=PreviewOut, tags=["commissions"])
def preview_commissions(body: PreviewIn, session: DbSession, principal: CurrentPrincipal,
                        runtime: RuntimeDep) -> PreviewOut:
    """Every party's share of a cart exactly as checkout would compute it now (same engine, same
    catalog prices). A seller may preview carts of its own products; an affiliate only
    attribution to itself. Only an operator's preview reads the buyer's order history (the
    first-order bonus); others price the cart as the buyer's first order with each seller."""
    lines, settlement = preview.preview(session, runtime.store, runtime.settings, principal, body)
    return _preview_out(lines, settlement)


def _preview_out(lines: list[Any], settlement: Settlement) -> PreviewOut:
    currency = lines[0].currency
    out_lines = []
    for line, settled in zip(lines, settlement.lines, strict=True):
        out_lines.append(PreviewLineOut(
            variant_id=line.variant_id, product_id=line.product_id, seller_id=line.seller_id,
            quantity=line.quantity, unit_amount=money(line.unit_amount, currency), gross=money(settled.gross, currency),
            discount=money(settled.discount, currency), amount=money(settled.amount, currency),
            platform_fee=money(settled.platform_fee, currency),
            commissions=[CommissionShareOut(
                affiliate_id=c.affiliate_id, role=c.role, amount=money(c.amount, currency),
                program_id=c.program_id, plan_version_id=c.plan_version_id, funded_by=c.funded_by,
                holding_period_days=c.holding_period_days,
            ) for c in settled.commissions],
            seller_net=money(settled.seller_net, currency), plan_version_id=settled.plan_version_id,
            no_commission_reason=settled.no_commission_reason,
        ))
    a = settlement.attribution
    return PreviewOut(
        currency=currency,
        attribution=AttributionOut(affiliate_id=a.affiliate_id, source=a.source,
                                   storefront_id=a.storefront_id, click_id=a.click_id, coupon_id=a.coupon_id,
                                   self_referral=a.self_referral),
        lines=out_lines,
        total=money(sum(s.amount for s in settlement.lines), currency),
        platform_fee=money(sum(s.platform_fee for s in settlement.lines), currency),
        commissions=money(sum(s.commission_total for s in settlement.lines), currency),
        seller_net=money(sum(s.seller_net for s in settlement.lines), currency),
        parties=[PartyTotalOut(party_type=kind, party_id=pid, amount=money(amount, currency))
                 for kind, pid, amount in preview.party_totals(lines, settlement)],
        first_order_sellers=sorted(settlement.first_order_sellers),
    )
