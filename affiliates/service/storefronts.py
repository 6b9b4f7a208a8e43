"""Storefronts: an affiliate's shop window of products from the programs it belongs to.

Owner endpoints see settings (splits); the public endpoints (`/v1/storefronts/{slug}...`) show
only what a buyer needs, from the cache described in storefront_cache.py. Another affiliate's
storefront is a 404 on every owner endpoint.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import (
    ListingNotFound,
    NotProgramMember,
    ProductNotListable,
    SlugTaken,
    StorefrontNotFound,
)
from affiliates.models import Affiliate, AffiliateStatus, Storefront, StorefrontListing
from affiliates.schemas import StorefrontCreate, StorefrontUpdate
from affiliates.service.common import approved_affiliate, checked_splits, page
from affiliates.service.programs import is_approved_member
from affiliates.service.storefront_cache import (
    CachedStorefront,
    invalidate_storefronts_after_commit,
    read,
    write,
)
from catalog.errors import ProductNotFound
from catalog.models import Product, ProductStatus, Seller, SellerStatus
from catalog.schemas import CatalogProductOut
from catalog.service import catalog_product, catalog_products, matching_product_ids
from kernel.auth import Principal
from kernel.cache import Store
from kernel.schemas import decode_cursor, encode_cursor

MAX_LISTINGS = 1000  # per storefront; bounds the cached listing list


def create(session: Session, affiliate_id: uuid.UUID, data: StorefrontCreate) -> Storefront:
    approved_affiliate(session, affiliate_id)
    if session.scalar(select(Storefront.id).where(Storefront.slug == data.slug)) is not None:
        raise SlugTaken(f"storefront slug {data.slug!r} is taken")
    storefront = Storefront(
        affiliate_id=affiliate_id, slug=data.slug, name=data.name, description=data.description,
        currency=data.currency, splits=checked_splits(session, affiliate_id, data.splits),
    )
    session.add(storefront)
    try:
        session.flush()
    except IntegrityError:
        raise SlugTaken(f"storefront slug {data.slug!r} is taken") from None
    return storefront


def owned(session: Session, principal: Principal, slug: str, *, lock: bool = False) -> Storefront:
    """The storefront if the caller owns it (or is an operator); anyone else's is a 404."""
    stmt = select(Storefront).where(Storefront.slug == slug)
    storefront = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if storefront is None or not (principal.is_operator or storefront.affiliate_id == principal.subject_id):
        raise StorefrontNotFound(f"no storefront {slug!r}")
    return storefront


def owned_by_id(session: Session, principal: Principal, storefront_id: uuid.UUID) -> Storefront:
    storefront = session.get(Storefront, storefront_id)
    if storefront is None or not (principal.is_operator or storefront.affiliate_id == principal.subject_id):
        raise StorefrontNotFound(f"no storefront {storefront_id}")
    return storefront


def update(session: Session, principal: Principal, slug: str, data: StorefrontUpdate) -> Storefront:
    storefront = owned(session, principal, slug, lock=True)
    sent = data.model_fields_set
    if "name" in sent and data.name is not None:
        storefront.name = data.name
    if "description" in sent:
        storefront.description = data.description or ""
    if "splits" in sent:
        storefront.splits = checked_splits(session, storefront.affiliate_id, data.splits)
    if "logo_url" in sent:
        storefront.logo_url = str(data.logo_url) if data.logo_url is not None else None
    if "brand_color" in sent:
        storefront.brand_color = data.brand_color
    session.flush()
    invalidate_storefronts_after_commit(session, [storefront.id])
    return storefront


def list_mine(session: Session, principal: Principal, *, cursor: str | None,
              limit: int) -> tuple[list[Storefront], str | None]:
    stmt = select(Storefront)
    if not principal.is_operator:
        stmt = stmt.where(Storefront.affiliate_id == principal.subject_id)
    return page(session, stmt, Storefront.id, cursor, limit)


# --- listings -------------------------------------------------------------------------------------


def add_listing(session: Session, principal: Principal, slug: str,
                product_id: uuid.UUID) -> StorefrontListing:
    """List a product: it must be published by an approved seller, in the storefront's
    currency, and the storefront's affiliate an approved member of the seller's program.
    Listing a product twice returns the existing listing. The storefront row is locked so the
    listing cap holds under concurrent adds."""
    storefront = owned(session, principal, slug, lock=True)
    approved_affiliate(session, storefront.affiliate_id)
    row = session.execute(
        select(Product.seller_id, Product.status, Product.currency, Seller.status)
        .join(Seller, Seller.id == Product.seller_id).where(Product.id == product_id)
    ).first()
    if row is None:
        raise ProductNotFound(f"no product {product_id}")
    seller_id, product_status, currency, seller_status = row
    if product_status != ProductStatus.PUBLISHED or seller_status != SellerStatus.APPROVED:
        raise ProductNotListable(f"product {product_id} is not for sale (it is {product_status})")
    if currency != storefront.currency:
        raise ProductNotListable(
            f"product {product_id} is priced in {currency}; this storefront sells in {storefront.currency}")
    if not is_approved_member(session, storefront.affiliate_id, seller_id):
        raise NotProgramMember(
            f"you are not an approved member of the affiliate program of seller {seller_id}; "
            "join it (POST /v1/programs/{program_id}/memberships) before listing its products",
            seller_id=str(seller_id),
        )
    existing = session.scalars(select(StorefrontListing).where(
        StorefrontListing.storefront_id == storefront.id, StorefrontListing.product_id == product_id)).first()
    if existing is not None:
        return existing
    count = session.scalar(select(func.count()).select_from(StorefrontListing).where(
        StorefrontListing.storefront_id == storefront.id)) or 0
    if count >= MAX_LISTINGS:
        raise ProductNotListable(f"a storefront lists at most {MAX_LISTINGS} products")
    listing = StorefrontListing(storefront_id=storefront.id, product_id=product_id, seller_id=seller_id)
    session.add(listing)
    session.flush()
    invalidate_storefronts_after_commit(session, [storefront.id])
    return listing


def remove_listing(session: Session, principal: Principal, slug: str, product_id: uuid.UUID) -> None:
    storefront = owned(session, principal, slug)
    deleted = session.execute(delete(StorefrontListing).where(
        StorefrontListing.storefront_id == storefront.id, StorefrontListing.product_id == product_id,
    ).execution_options(synchronize_session=False))
    if not deleted.rowcount:  # type: ignore[attr-defined]
        raise ListingNotFound(f"storefront {slug!r} does not list product {product_id}")
    invalidate_storefronts_after_commit(session, [storefront.id])


def list_listings(session: Session, principal: Principal, slug: str, *, cursor: str | None,
                  limit: int) -> tuple[list[StorefrontListing], str | None]:
    storefront = owned(session, principal, slug)
    stmt = select(StorefrontListing).where(StorefrontListing.storefront_id == storefront.id)
    return page(session, stmt, StorefrontListing.id, cursor, limit)


# --- public ---------------------------------------------------------------------------------------


def public_storefront(session: Session, store: Store, slug: str) -> CachedStorefront:
    """The storefront as buyers see it, from the cache (two SELECTs on a miss). A storefront of
    an affiliate that is not approved is a 404."""
    entry = read(store, slug)
    if entry is None:
        row = session.execute(
            select(Storefront, Affiliate.name, Affiliate.status)
            .join(Affiliate, Affiliate.id == Storefront.affiliate_id).where(Storefront.slug == slug)
        ).first()
        if row is None:
            raise StorefrontNotFound(f"no storefront {slug!r}")
        storefront, affiliate_name, affiliate_status = row
        listings = session.execute(
            select(StorefrontListing.id, StorefrontListing.product_id)
            .where(StorefrontListing.storefront_id == storefront.id).order_by(StorefrontListing.id)
        ).all()
        sellers = session.execute(
            select(Seller.id, Seller.name).where(Seller.id.in_(
                select(StorefrontListing.seller_id).where(StorefrontListing.storefront_id == storefront.id)
            )).order_by(Seller.name, Seller.id)
        ).all()
        entry = CachedStorefront(
            id=storefront.id, slug=storefront.slug, name=storefront.name, description=storefront.description,
            currency=storefront.currency, affiliate_id=storefront.affiliate_id, affiliate_name=affiliate_name,
            affiliate_status=affiliate_status, listings=[(row[0], row[1]) for row in listings],
            logo_url=storefront.logo_url, brand_color=storefront.brand_color,
            sellers=[(row[0], row[1]) for row in sellers],
        )
        write(store, entry)
    if entry.affiliate_status != AffiliateStatus.APPROVED:
        raise StorefrontNotFound(f"no storefront {slug!r}")
    return entry


def public_products(session: Session, store: Store, catalog_ttl_seconds: int, slug: str, *, cursor: str | None,
                    limit: int, q: str | None = None,
                    seller_id: uuid.UUID | None = None) -> tuple[list[CatalogProductOut], str | None]:
    """One page of the storefront's products that are for sale now (published, seller approved),
    in listing order, each with its active variants and prices. The cursor is the last listing
    id; products no longer for sale are left out (a page may then be shorter than `limit`).
    `q` (words in the name or description, the catalog's search rule) and `seller_id` narrow the
    listing with one SELECT over the listed ids; without them the page is read from the caches alone."""
    entry = public_storefront(session, store, slug)
    after = decode_cursor(cursor)
    listings = [item for item in entry.listings if after is None or item[0] > after]
    if (q or seller_id is not None) and listings:
        matching = matching_product_ids(session, [product_id for _, product_id in listings], q=q,
                                        seller_id=seller_id)
        listings = [item for item in listings if item[1] in matching]
    chunk = listings[:limit]
    products = catalog_products(session, store, catalog_ttl_seconds, [product_id for _, product_id in chunk])
    next_cursor = encode_cursor(chunk[-1][0]) if len(listings) > limit else None
    return products, next_cursor


def public_product(session: Session, store: Store, catalog_ttl_seconds: int, slug: str,
                   product_id: uuid.UUID) -> CatalogProductOut:
    entry = public_storefront(session, store, slug)
    if product_id not in {pid for _, pid in entry.listings}:
        raise ProductNotFound(f"storefront {slug!r} does not sell product {product_id}")
    return catalog_product(session, store, catalog_ttl_seconds, product_id)


def directory(session: Session, *, cursor: str | None, limit: int) -> tuple[list[tuple[Storefront, str]], str | None]:
    """The storefronts of approved affiliates with their affiliate's name, oldest first."""
    stmt = (select(Storefront, Affiliate.name).join(Affiliate, Affiliate.id == Storefront.affiliate_id)
            .where(Affiliate.status == AffiliateStatus.APPROVED))
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Storefront.id > after)
    rows = [(row[0], row[1]) for row in session.execute(stmt.order_by(Storefront.id).limit(limit + 1))]
    return rows[:limit], encode_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
