"""HTTP routes of the catalog: sellers, products with their variants, and the public catalog.

Thin: each handler checks the caller's role, calls one service function and shapes the result.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from catalog.models import ProductStatus, Seller, SellerStatus
from catalog.schemas import (
    CatalogProductOut,
    CatalogSort,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    SellerApplicationOut,
    SellerApply,
    SellerOut,
    SellerReject,
    SellerUpdate,
    ShippingProfileIn,
    ShippingProfileOut,
    ShippingQuoteIn,
    ShippingQuoteOut,
    StockChange,
    VariantIn,
    VariantOut,
    VariantUpdate,
)
from catalog.service import browse, products, sellers, shipping
from kernel import people
from kernel.auth import Principal, Role
from kernel.deps import (
    CurrentPrincipal,
    DbSession,
    NoStore,
    OperatorPrincipal,
    PublicRateLimit,
    PublicWriteAudit,
    SellerPrincipal,
    StrictQuery,
    get_runtime,
    require,
)
from kernel.errors import ProblemDetail
from kernel.payout_accounts import PayoutAccountIn, PayoutAccountOut, PayoutAccountStatus
from kernel.runtime import Runtime
from kernel.schemas import Page

router = APIRouter(dependencies=[StrictQuery])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SellerOrOperator = Annotated[Principal, Depends(require(Role.SELLER, Role.OPERATOR))]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
RAIL_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"model": ProblemDetail, "description": "Stripe refused or did not answer; nothing changed"}
}


def _seller_id(principal: Principal) -> uuid.UUID:
    assert principal.subject_id is not None, "a seller key always acts for a seller"
    return principal.subject_id


def seller_out(seller: Seller) -> SellerOut:
    return SellerOut.model_validate(seller, from_attributes=True)


# --- sellers ------------------------------------------------------------------------------------


@router.post(
    "/v1/sellers", status_code=201, response_model=SellerApplicationOut, tags=["sellers"],
    dependencies=[PublicRateLimit, NoStore],
)
def apply_as_seller(body: SellerApply, session: DbSession, audit: PublicWriteAudit) -> SellerApplicationOut:
    """Public: apply to sell. Returns the seller (pending until an operator approves it) and its
    API key, shown once. A second application with the same email is a 409. With `password`, the
    applicant (email) also becomes the seller's owner, a person who can invite teammates."""
    seller, issued = sellers.apply(session, body)
    owner = people.sign_up_owner_if_asked(session, Role.SELLER, seller.id, body, seller.email, seller.name)
    audit.actor(owner.id if owner else None, (Role.SELLER.value, seller.id))
    audit.object("seller", seller.id)
    return SellerApplicationOut(
        seller=seller_out(seller), api_key=issued.key, api_key_id=issued.id, api_key_prefix=issued.prefix,
        owner_person_id=owner.id if owner else None,
    )


@router.get("/v1/sellers/me", response_model=SellerOut, tags=["sellers"])
def read_me(session: DbSession, principal: SellerPrincipal) -> SellerOut:
    """The calling seller's profile, status and payout status."""
    return seller_out(sellers.get(session, _seller_id(principal)))


@router.patch("/v1/sellers/me", response_model=SellerOut, tags=["sellers"])
def update_me(body: SellerUpdate, session: DbSession, principal: SellerPrincipal, runtime: RuntimeDep) -> SellerOut:
    """Change name, website, description or webhook_url (only the fields sent)."""
    return seller_out(sellers.update_profile(
        session, _seller_id(principal), body,
        allow_private_webhook_hosts=runtime.settings.webhooks_may_reach_private_hosts))


def _payout_out(setup: sellers.PayoutSetup) -> PayoutAccountOut:
    seller = setup.seller
    return PayoutAccountOut(
        rail="stripe" if setup.rail == "stripe" else "manual",
        payout_status=PayoutAccountStatus(seller.payout_status), stripe_account_id=seller.stripe_account_id,
        onboarding_url=setup.onboarding_url, bank_reference=seller.bank_reference,
    )


@router.post(
    "/v1/sellers/me/payout-account", response_model=PayoutAccountOut, tags=["sellers"], responses=RAIL_FAILED
)
def start_payout_onboarding(
    session: DbSession,
    principal: SellerPrincipal,
    runtime: RuntimeDep,
    body: Annotated[PayoutAccountIn | None, Body()] = None,
) -> PayoutAccountOut:
    """Set up where you are paid (approved sellers). With Stripe: returns a hosted onboarding URL
    (call again for a fresh one); Stripe's webhook enables payouts. Without Stripe: send
    `bank_reference`; an operator verifies it."""
    setup = sellers.start_payout_onboarding(
        session, runtime.rail, runtime.settings, _seller_id(principal), body or PayoutAccountIn()
    )
    return _payout_out(setup)


@router.get("/v1/sellers/me/payout-account", response_model=PayoutAccountOut, tags=["sellers"])
def read_payout_account(session: DbSession, principal: SellerPrincipal, runtime: RuntimeDep) -> PayoutAccountOut:
    """Where payout onboarding stands."""
    seller = sellers.get(session, _seller_id(principal))
    return _payout_out(sellers.PayoutSetup(seller, runtime.rail.name, None))


@router.get("/v1/sellers", response_model=Page[SellerOut], tags=["sellers"])
def list_sellers(
    session: DbSession,
    principal: OperatorPrincipal,
    status: SellerStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[SellerOut]:
    """Operator: sellers, oldest first, optionally of one status (e.g. `pending` to review)."""
    rows, next_cursor = sellers.list_page(session, status=status, cursor=cursor, limit=limit)
    return Page(items=[seller_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/v1/sellers/{seller_id}", response_model=SellerOut, tags=["sellers"])
def read_seller(seller_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> SellerOut:
    """Operator: one seller."""
    return seller_out(sellers.get(session, seller_id))


@router.post("/v1/sellers/{seller_id}/approve", response_model=SellerOut, tags=["sellers"])
def approve_seller(seller_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> SellerOut:
    """Operator: approve an application (or a previously rejected seller)."""
    return seller_out(sellers.approve(session, seller_id))


@router.post("/v1/sellers/{seller_id}/reject", response_model=SellerOut, tags=["sellers"])
def reject_seller(
    seller_id: uuid.UUID, body: SellerReject, session: DbSession, principal: OperatorPrincipal
) -> SellerOut:
    """Operator: reject an application, or suspend an approved seller (its products leave the catalog)."""
    return seller_out(sellers.reject(session, seller_id, body.reason))


@router.post("/v1/sellers/{seller_id}/payout-account/verify", response_model=SellerOut, tags=["sellers"])
def verify_payout_account(
    seller_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal, runtime: RuntimeDep
) -> SellerOut:
    """Operator, manual rail: the seller's bank details were checked; payouts may be sent."""
    return seller_out(sellers.verify_manual_payout_account(session, runtime.rail, seller_id))


# --- products -----------------------------------------------------------------------------------


@router.post("/v1/products", status_code=201, response_model=ProductOut, tags=["products"])
def create_product(body: ProductCreate, session: DbSession, principal: SellerPrincipal) -> ProductOut:
    """Create a draft product with at least one variant (level). All or nothing."""
    return products.product_out(products.create_product(session, _seller_id(principal), body))


@router.get("/v1/products", response_model=Page[ProductOut], tags=["products"])
def list_products(
    session: DbSession,
    principal: SellerOrOperator,
    seller_id: Annotated[uuid.UUID | None, Query(description="operator: one seller's products")] = None,
    status: ProductStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ProductOut]:
    """Your products (an operator: everyone's), oldest first, any status."""
    rows, next_cursor = products.list_page(
        session, principal, seller_id=seller_id, status=status, cursor=cursor, limit=limit
    )
    return Page(items=[products.product_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/v1/products/{product_id}", response_model=ProductOut, tags=["products"])
def read_product(
    product_id: uuid.UUID, session: DbSession, principal: SellerOrOperator, runtime: RuntimeDep
) -> ProductOut:
    """One of your products with all its variants (cached; every change shows at once)."""
    return products.product_view(
        session, runtime.store, runtime.settings.catalog_cache_ttl_seconds, principal, product_id
    )


@router.patch("/v1/products/{product_id}", response_model=ProductOut, tags=["products"])
def update_product(
    product_id: uuid.UUID, body: ProductUpdate, session: DbSession, principal: SellerOrOperator
) -> ProductOut:
    """Change name, description, category or tags (only the fields sent)."""
    return products.product_out(products.update_product(session, principal, product_id, body))


@router.post(
    "/v1/products/{product_id}/variants", status_code=201, response_model=VariantOut, tags=["products"]
)
def add_variant(
    product_id: uuid.UUID, body: VariantIn, session: DbSession, principal: SellerOrOperator
) -> VariantOut:
    """Add a level/variant (priced in the product's currency, with an SKU of its own)."""
    variant = products.add_variant(session, principal, product_id, body)
    return products.variant_out(variant, variant.product.version)


@router.patch(
    "/v1/products/{product_id}/variants/{variant_id}", response_model=VariantOut, tags=["products"]
)
def update_variant(
    product_id: uuid.UUID, variant_id: uuid.UUID, body: VariantUpdate, session: DbSession,
    principal: SellerOrOperator,
) -> VariantOut:
    """Change a variant's price, name or active flag. Orders already placed keep their price."""
    variant = products.update_variant(session, principal, product_id, variant_id, body)
    return products.variant_out(variant, variant.product.version)


@router.post(
    "/v1/products/{product_id}/variants/{variant_id}/stock", response_model=VariantOut, tags=["products"]
)
def change_stock(
    product_id: uuid.UUID, variant_id: uuid.UUID, body: StockChange, session: DbSession,
    principal: SellerOrOperator,
) -> VariantOut:
    """Change a variant's stock. `{"delta": n}` adds (or with n < 0 removes) units; `{"set": n}`
    sets the level. 409 if it would go below zero."""
    variant = products.change_stock(session, principal, product_id, variant_id, body)
    return products.variant_out(variant, variant.product.version)


@router.post("/v1/products/{product_id}/publish", response_model=ProductOut, tags=["products"])
def publish_product(product_id: uuid.UUID, session: DbSession, principal: SellerOrOperator) -> ProductOut:
    """Put the product in the catalog (approved sellers, at least one active variant)."""
    return products.product_out(products.publish(session, principal, product_id))


@router.post("/v1/products/{product_id}/unpublish", response_model=ProductOut, tags=["products"])
def unpublish_product(product_id: uuid.UUID, session: DbSession, principal: SellerOrOperator) -> ProductOut:
    """Take the product out of the catalog (back to draft)."""
    return products.product_out(products.unpublish(session, principal, product_id))


@router.post("/v1/products/{product_id}/archive", response_model=ProductOut, tags=["products"])
def archive_product(product_id: uuid.UUID, session: DbSession, principal: SellerOrOperator) -> ProductOut:
    """Retire the product for good: out of the catalog and read-only, never deleted (orders refer to it)."""
    return products.product_out(products.archive(session, principal, product_id))


# --- the public catalog ---------------------------------------------------------------------


@router.get("/v1/catalog/products", response_model=Page[CatalogProductOut], tags=["catalog"])
def search_catalog(
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=200, description="full-text search in name and description")] = None,
    seller_id: uuid.UUID | None = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    min_price: Annotated[int | None, Query(ge=0, le=10**12, description="minor units of `currency`")] = None,
    max_price: Annotated[int | None, Query(ge=0, le=10**12, description="minor units of `currency`")] = None,
    in_stock: bool | None = None,
    sort: CatalogSort = "newest",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CatalogProductOut]:
    """Any key: published products of approved sellers. Price filters match any active variant
    and need `currency`. Keep the same filters and sort while following `next_cursor`."""
    query = browse.CatalogQuery(
        q=q, seller_id=seller_id, category=category, tag=tag, currency=currency, min_price=min_price,
        max_price=max_price, in_stock=in_stock, sort=sort, cursor=cursor, limit=limit,
    )
    items, next_cursor = browse.search(session, query)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/v1/catalog/products/{product_id}", response_model=CatalogProductOut, tags=["catalog"])
def read_catalog_product(
    product_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal, runtime: RuntimeDep
) -> CatalogProductOut:
    """Any key: one published product (cached; every change shows at once)."""
    return products.catalog_view(session, runtime.store, runtime.settings.catalog_cache_ttl_seconds, product_id)


# --- shipping (catalog.service.shipping) --------------------------------------------------------


@router.post("/v1/shipping-profiles", status_code=201, response_model=ShippingProfileOut, tags=["shipping"])
def create_shipping_profile(
    body: ShippingProfileIn, session: DbSession, principal: SellerPrincipal
) -> ShippingProfileOut:
    """A shipping profile: the zones you ship to and the rates the buyer chooses from. While you
    have an active profile, every checkout must choose one of your rates for your part."""
    return shipping.profile_out(shipping.create_profile(session, _seller_id(principal), body))


@router.get("/v1/shipping-profiles", response_model=list[ShippingProfileOut], tags=["shipping"])
def list_shipping_profiles(session: DbSession, principal: SellerPrincipal) -> list[ShippingProfileOut]:
    """Your shipping profiles, archived ones included, oldest first."""
    return [shipping.profile_out(p) for p in shipping.list_profiles(session, _seller_id(principal))]


@router.post("/v1/shipping-profiles/{profile_id}/archive", response_model=ShippingProfileOut, tags=["shipping"])
def archive_shipping_profile(
    profile_id: uuid.UUID, session: DbSession, principal: SellerPrincipal
) -> ShippingProfileOut:
    """Stop a profile's rates for new orders (orders placed keep what they were charged)."""
    return shipping.profile_out(shipping.archive_profile(session, _seller_id(principal), profile_id))


@router.post("/v1/shipping/quote", response_model=ShippingQuoteOut, tags=["shipping", "checkout"],
             dependencies=[PublicRateLimit])
def quote_shipping(body: ShippingQuoteIn, session: DbSession) -> ShippingQuoteOut:
    """Each seller's shipping options for a cart and destination (public, changes nothing): checkout
    takes one `rate_id` per seller that has options (`shipping` in its body)."""
    items = [(item.variant_id, item.quantity) for item in body.items]
    return ShippingQuoteOut(sellers=shipping.quote(session, items, body.country, body.region))
