"""Storefronts: the owner's storefronts and listings, and the public views buyers read (the
storefront, and on `buyer_router` its products)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from affiliates.api.common import AffiliateOrOperator, Cursor, Limit, RuntimeDep
from affiliates.api.views import listing_out, storefront_out
from affiliates.schemas import (
    ListingIn,
    ListingOut,
    StorefrontCreate,
    StorefrontDirectoryOut,
    StorefrontOut,
    StorefrontPublicOut,
    StorefrontSellerOut,
    StorefrontUpdate,
)
from affiliates.service import storefronts, traffic, visitors
from affiliates.service.common import subject
from catalog.schemas import CatalogProductOut
from kernel.db import session_scope
from kernel.deps import AffiliatePrincipal, DbSession, PublicRateLimit, StrictQuery, client_address
from kernel.runtime import Runtime
from kernel.schemas import Page

router = APIRouter(dependencies=[StrictQuery])
buyer_router = APIRouter()  # the buyers' hot routes: affiliates.api says why a router of their own


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
                               product_count=len(entry.listings), logo_url=entry.logo_url,
                               brand_color=entry.brand_color,
                               sellers=[StorefrontSellerOut(id=i, name=n) for i, n in entry.sellers])


@router.get("/v1/storefront-directory", response_model=Page[StorefrontDirectoryOut], tags=["storefronts"],
            dependencies=[PublicRateLimit])
def storefront_directory(session: DbSession, cursor: Cursor = None, limit: Limit = 50) -> Page[StorefrontDirectoryOut]:
    """Public: the storefronts of approved market makers, oldest first, with their branding."""
    rows, next_cursor = storefronts.directory(session, cursor=cursor, limit=limit)
    return Page(items=[StorefrontDirectoryOut(
        slug=s.slug, name=s.name, description=s.description, currency=s.currency, affiliate_name=affiliate_name,
        logo_url=s.logo_url, brand_color=s.brand_color) for s, affiliate_name in rows], next_cursor=next_cursor)


# The buyers' hot reads (listing, product) and the referral redirect open their own unit of work
# inside the handler instead of taking the `DbSession` dependency (FastAPI runs that sync
# generator dependency in the thread pool apart from the handler: two hops per request), and the
# two reads return their JSON as a ready Response (FastAPI would validate the model again and
# serialise it in another hop). `response_model` still documents the shape.


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(by_alias=True).encode(), media_type="application/json")


@buyer_router.get("/v1/storefronts/{slug}/products", response_model=Page[CatalogProductOut], tags=["storefronts"],
            dependencies=[PublicRateLimit, StrictQuery])
def public_storefront_products(
    slug: str, request: Request, runtime: RuntimeDep, cursor: Cursor = None, limit: Limit = 50,
    q: Annotated[str | None, Query(max_length=200, description="words in the name or description")] = None,
    seller_id: Annotated[uuid.UUID | None, Query(description="only this seller's products")] = None,
) -> Response:
    """Public: the storefront's products for sale, in listing order, with variants and prices;
    `q` and `seller_id` narrow it (keep them while paging). Listing changes show at once; catalog
    changes as soon as the catalog's cache entry is dropped (on commit; at worst after the
    catalog cache TTL)."""
    with session_scope(runtime.sessions) as session:
        items, next_cursor = storefronts.public_products(
            session, runtime.store, runtime.settings.catalog_cache_ttl_seconds, slug, cursor=cursor, limit=limit,
            q=(q or "").strip() or None, seller_id=seller_id)
    if cursor is None:  # a visit opens the first page (the funnel: affiliates.service.traffic)
        traffic.count_visit(runtime.store, slug, _visitor(request, runtime))
    return _json(Page[CatalogProductOut](items=items, next_cursor=next_cursor))


@buyer_router.get("/v1/storefronts/{slug}/products/{product_id}", response_model=CatalogProductOut,
            tags=["storefronts"], dependencies=[PublicRateLimit, StrictQuery])
def public_storefront_product(slug: str, product_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> Response:
    """Public: one product of the storefront."""
    with session_scope(runtime.sessions) as session:
        product = storefronts.public_product(session, runtime.store, runtime.settings.catalog_cache_ttl_seconds,
                                             slug, product_id)
    traffic.count_product_view(runtime.store, slug, product_id, _visitor(request, runtime))
    return _json(product)


def _visitor(request: Request, runtime: Runtime) -> visitors.Visitor:
    """Who opened the page, as the referral redirect knows visitors (bots and prefetches apart)."""
    return visitors.identify(secret=runtime.visitor_hash_key, client=client_address(request),
                             user_agent=request.headers.get("user-agent"),
                             cookie=request.cookies.get(visitors.VISITOR_COOKIE), headers=request.headers)


@router.get("/v1/storefronts/{slug}/settings", response_model=StorefrontOut, tags=["storefronts"])
def read_storefront_settings(slug: str, session: DbSession, principal: AffiliateOrOperator) -> StorefrontOut:
    """Owner: the storefront with its settings (another affiliate's is a 404)."""
    return storefront_out(storefronts.owned(session, principal, slug))


@router.patch("/v1/storefronts/{slug}", response_model=StorefrontOut, tags=["storefronts"])
def update_storefront(slug: str, body: StorefrontUpdate, session: DbSession,
                      principal: AffiliateOrOperator) -> StorefrontOut:
    """Owner: change name, description, splits, logo (`logo_url`, https) or colour (`brand_color`,
    `#rrggbb` that white text reads on, contrast 4.5:1) (only the fields sent; null clears the
    logo or colour)."""
    return storefront_out(storefronts.update(session, principal, slug, body))


@router.post("/v1/storefronts/{slug}/listings", status_code=201, response_model=ListingOut, tags=["storefronts"])
def add_listing(slug: str, body: ListingIn, session: DbSession, principal: AffiliateOrOperator) -> ListingOut:
    """Owner: list a product. 409 `not-program-member` unless you are an approved member of its
    seller's program; 409 `product-not-listable` when it is not for sale or in another currency."""
    return listing_out(storefronts.add_listing(session, principal, slug, body.product_id))


@router.get("/v1/storefronts/{slug}/listings", response_model=Page[ListingOut], tags=["storefronts"])
def list_listings(slug: str, session: DbSession, principal: AffiliateOrOperator, cursor: Cursor = None,
                  limit: Limit = 50) -> Page[ListingOut]:
    """Owner: the products the storefront lists, oldest listing first (another affiliate's is a 404)."""
    rows, next_cursor = storefronts.list_listings(session, principal, slug, cursor=cursor, limit=limit)
    return Page(items=[listing_out(r) for r in rows], next_cursor=next_cursor)


@router.delete("/v1/storefronts/{slug}/listings/{product_id}", status_code=204, tags=["storefronts"])
def remove_listing(slug: str, product_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator) -> None:
    """Owner: stop listing a product."""
    storefronts.remove_listing(session, principal, slug, product_id)
