"""Products and their levels/variants: create, edit, publish, archive, stock.

Rules:
* A seller sees and changes only its own products; another seller's product id is a 404 (never
  a 403: ids must not leak). An operator sees and may change every product.
* Prices are integer minor units > 0 in a currency of `kernel.money` (so 2 or 0 decimals);
  every variant of a product has the product's currency. SKUs are unique per seller.
* Nothing is deleted: products are archived (read-only from then on), variants deactivated.
* Every change bumps `product.version`, recomputes `min_price_amount` and drops the product's
  cache entry after commit (`_changed`, the one place that does all three).

Locking: every write first locks the product row (SELECT ... FOR UPDATE), then touches
variants. The version and min price are derived from the whole variant set, so two concurrent
edits of one product must not interleave. Products before variants is the global lock order
(kernel.locking), which every other path that locks these rows follows too.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.errors import (
    InsufficientStock,
    InvalidProduct,
    ProductArchived,
    ProductNotFound,
    ProductNotPublishable,
    SellerNotApproved,
    SellerNotFound,
    SkuTaken,
    VariantNotFound,
)
from catalog.models import Product, ProductStatus, Seller, SellerStatus, Variant
from catalog.schemas import (
    CatalogProductOut,
    CatalogVariantOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    StockChange,
    VariantIn,
    VariantOut,
    VariantUpdate,
)
from catalog.service import cache
from kernel.auth import Principal
from kernel.cache import Store
from kernel.db import new_id
from kernel.schemas import decode_cursor, encode_cursor, money

# --- shapes -------------------------------------------------------------------------------------


def variant_out(variant: Variant, product_version: int) -> VariantOut:
    return VariantOut(
        id=variant.id, product_id=variant.product_id, sku=variant.sku, name=variant.name,
        position=variant.position, price=money(variant.price_amount, variant.currency), stock=variant.stock,
        active=variant.active, weight_grams=variant.weight_grams, product_version=product_version,
        created_at=variant.created_at,
        updated_at=variant.updated_at,
    )


def product_out(product: Product) -> ProductOut:
    from_price = None if product.min_price_amount is None else money(product.min_price_amount, product.currency)
    return ProductOut(
        id=product.id, seller_id=product.seller_id, name=product.name, description=product.description,
        category=product.category, tags=list(product.tags or []), currency=product.currency,
        status=ProductStatus(product.status), requires_shipping=product.requires_shipping, version=product.version,
        from_price=from_price, variants=[variant_out(v, product.version) for v in product.variants],
        created_at=product.created_at, updated_at=product.updated_at,
    )


def catalog_out(product: ProductOut, seller_name: str) -> CatalogProductOut:
    """The public shape: active variants only."""
    variants = [
        CatalogVariantOut(id=v.id, sku=v.sku, name=v.name, price=v.price, stock=v.stock, in_stock=v.stock > 0)
        for v in product.variants if v.active
    ]
    if product.from_price is None:
        raise ProductNotFound(f"product {product.id} has nothing for sale")
    return CatalogProductOut(
        id=product.id, seller_id=product.seller_id, seller_name=seller_name, name=product.name,
        description=product.description, category=product.category, tags=product.tags, currency=product.currency,
        from_price=product.from_price, in_stock=any(v.in_stock for v in variants), version=product.version,
        variants=variants, created_at=product.created_at, updated_at=product.updated_at,
    )


# --- helpers ------------------------------------------------------------------------------------


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Lower-case, trimmed, without duplicates, in the order given."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.strip().lower(), None)
    return [tag for tag in seen if tag]


def _check_variants(product_currency: str, variants: Sequence[VariantIn]) -> None:
    skus: set[str] = set()
    for index, variant in enumerate(variants):
        if variant.price.currency != product_currency:
            raise InvalidProduct(
                f"variants[{index}] ({variant.sku}) is priced in {variant.price.currency}; "
                f"every variant of this product is priced in {product_currency}"
            )
        if variant.sku in skus:
            raise InvalidProduct(f"SKU {variant.sku} appears twice in this request")
        skus.add(variant.sku)


def _check_skus_free(session: Session, seller_id: uuid.UUID, skus: Sequence[str]) -> None:
    taken = sorted(session.scalars(select(Variant.sku).where(Variant.seller_id == seller_id, Variant.sku.in_(skus))))
    if taken:
        raise SkuTaken(f"SKU already used by another of your variants: {', '.join(taken)}", skus=taken)


def _flush_skus(session: Session, skus: Sequence[str]) -> None:
    """Flush; a concurrent request that took one of these SKUs first surfaces as the same 409."""
    try:
        session.flush()
    except IntegrityError:
        raise SkuTaken(f"SKU already used by another of your variants: {', '.join(skus)}", skus=list(skus)) from None


def _min_active_price(product: Product) -> int | None:
    prices = [v.price_amount for v in product.variants if v.active]
    return min(prices) if prices else None


def _changed(session: Session, product: Product) -> None:
    """After any change to a product, its variants or their stock: new version, fresh min price,
    flushed, and its cache entry dropped once the transaction commits. The caller holds the
    product's row lock, so reading and bumping the version in Python is safe."""
    product.version += 1
    product.min_price_amount = _min_active_price(product)
    session.flush()
    cache.invalidate_after_commit(session, [product.id])


def _owned(principal: Principal, product: Product | None, product_id: uuid.UUID) -> Product:
    if product is None or not (principal.is_operator or product.seller_id == principal.subject_id):
        raise ProductNotFound(f"no product {product_id}")
    return product


def _for_write(session: Session, principal: Principal, product_id: uuid.UUID, *, archived_ok: bool = False) -> Product:
    """The product, row-locked (see the module docstring), if the caller may change it."""
    product = _owned(principal, session.get(Product, product_id, with_for_update=True), product_id)
    if product.status == ProductStatus.ARCHIVED and not archived_ok:
        raise ProductArchived(f"product {product_id} is archived; archived products are read-only")
    return product


def _variant_of(product: Product, variant_id: uuid.UUID) -> Variant:
    for variant in product.variants:
        if variant.id == variant_id:
            return variant
    raise VariantNotFound(f"product {product.id} has no variant {variant_id}")


def _new_variant(product: Product, data: VariantIn, position: int) -> Variant:
    return Variant(
        id=new_id(), product_id=product.id, seller_id=product.seller_id, sku=data.sku, name=data.name,
        position=position, price_amount=data.price.amount, currency=data.price.currency, stock=data.stock,
        active=data.active, weight_grams=data.weight_grams,
    )


# --- writes -------------------------------------------------------------------------------------


def create_product(session: Session, seller_id: uuid.UUID, data: ProductCreate) -> Product:
    """A draft product with its variants, all or nothing (any bad variant creates nothing)."""
    if session.get(Seller, seller_id) is None:
        raise SellerNotFound(f"no seller {seller_id}")
    _check_variants(data.currency, data.variants)
    skus = [v.sku for v in data.variants]
    _check_skus_free(session, seller_id, skus)
    product = Product(
        id=new_id(), seller_id=seller_id, name=data.name, description=data.description, category=data.category,
        tags=normalize_tags(data.tags), currency=data.currency, status=ProductStatus.DRAFT.value, version=1,
        requires_shipping=data.requires_shipping,
    )
    product.variants = [_new_variant(product, v, position) for position, v in enumerate(data.variants)]
    product.min_price_amount = _min_active_price(product)
    session.add(product)
    _flush_skus(session, skus)  # a new product has no cache entry to drop
    return product


def update_product(session: Session, principal: Principal, product_id: uuid.UUID, data: ProductUpdate) -> Product:
    product = _for_write(session, principal, product_id)
    sent = data.model_fields_set
    if "name" in sent:
        if data.name is None:
            raise InvalidProduct("name cannot be null")
        product.name = data.name
    if "description" in sent:
        product.description = data.description or ""
    if "category" in sent:
        product.category = data.category
    if "tags" in sent:
        product.tags = normalize_tags(data.tags or [])
    if "requires_shipping" in sent:
        if data.requires_shipping is None:
            raise InvalidProduct("requires_shipping cannot be null")
        product.requires_shipping = data.requires_shipping
    _changed(session, product)
    return product


def add_variant(session: Session, principal: Principal, product_id: uuid.UUID, data: VariantIn) -> Variant:
    product = _for_write(session, principal, product_id)
    _check_variants(product.currency, [data])
    _check_skus_free(session, product.seller_id, [data.sku])
    position = max((v.position for v in product.variants), default=-1) + 1
    variant = _new_variant(product, data, position)
    product.variants.append(variant)
    _flush_skus(session, [data.sku])
    _changed(session, product)
    return variant


def update_variant(
    session: Session, principal: Principal, product_id: uuid.UUID, variant_id: uuid.UUID, data: VariantUpdate
) -> Variant:
    product = _for_write(session, principal, product_id)
    variant = _variant_of(product, variant_id)
    sent = data.model_fields_set
    if "name" in sent:
        if data.name is None:
            raise InvalidProduct("name cannot be null")
        variant.name = data.name
    if "price" in sent:
        if data.price is None:
            raise InvalidProduct("price cannot be null")
        if data.price.currency != product.currency:
            raise InvalidProduct(f"this product is priced in {product.currency}, not {data.price.currency}")
        variant.price_amount = data.price.amount
    if "active" in sent:
        if data.active is None:
            raise InvalidProduct("active cannot be null")
        variant.active = data.active
        if product.status == ProductStatus.PUBLISHED and not any(v.active for v in product.variants):
            raise ProductNotPublishable(
                "this is the last active variant of a published product; unpublish the product first"
            )
    if "weight_grams" in sent:
        if data.weight_grams is None:
            raise InvalidProduct("weight_grams cannot be null")
        variant.weight_grams = data.weight_grams
    _changed(session, product)
    return variant


def change_stock(
    session: Session, principal: Principal, product_id: uuid.UUID, variant_id: uuid.UUID, change: StockChange
) -> Variant:
    """Add/remove units (`delta`) or set the level (`set`) with one conditional UPDATE, so a
    concurrent checkout reservation is never lost and stock never goes below zero."""
    product = _for_write(session, principal, product_id)
    variant = _variant_of(product, variant_id)
    stmt = update(Variant).where(Variant.id == variant.id)
    if change.delta is not None:
        stmt = stmt.where(Variant.stock + change.delta >= 0).values(stock=Variant.stock + change.delta)
    else:
        stmt = stmt.values(stock=change.set_)
    new_stock = session.execute(
        stmt.returning(Variant.stock).execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.refresh(variant, ["stock", "updated_at"])
    if new_stock is None:
        raise InsufficientStock(
            f"stock of {variant.sku} is {variant.stock}; removing {-(change.delta or 0)} would make it negative",
            stock=variant.stock,
        )
    _changed(session, product)
    return variant


def publish(session: Session, principal: Principal, product_id: uuid.UUID) -> Product:
    product = _for_write(session, principal, product_id)
    seller_status = session.scalar(select(Seller.status).where(Seller.id == product.seller_id))
    if seller_status != SellerStatus.APPROVED:
        raise SellerNotApproved("only an approved seller's products can be published; wait for an operator")
    if not any(v.active for v in product.variants):
        raise ProductNotPublishable("a product needs at least one active variant to be published")
    if product.status != ProductStatus.PUBLISHED:
        product.status = ProductStatus.PUBLISHED.value
        _changed(session, product)
    return product


def unpublish(session: Session, principal: Principal, product_id: uuid.UUID) -> Product:
    product = _for_write(session, principal, product_id)
    if product.status != ProductStatus.DRAFT:
        product.status = ProductStatus.DRAFT.value
        _changed(session, product)
    return product


def archive(session: Session, principal: Principal, product_id: uuid.UUID) -> Product:
    """Out of the catalog for good and read-only; kept because orders refer to it."""
    product = _for_write(session, principal, product_id, archived_ok=True)
    if product.status != ProductStatus.ARCHIVED:
        product.status = ProductStatus.ARCHIVED.value
        _changed(session, product)
    return product


# --- reads ----------------------------------------------------------------------------------------


def list_page(
    session: Session,
    principal: Principal,
    *,
    seller_id: uuid.UUID | None,
    status: ProductStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Product], str | None]:
    """A seller's own products (an operator: everyone's, or one seller's), oldest first."""
    stmt = select(Product).order_by(Product.id).limit(limit + 1)
    if not principal.is_operator:
        if seller_id is not None and seller_id != principal.subject_id:
            return [], None  # another seller's products: nothing to see, and no hint they exist
        seller_id = principal.subject_id
    if seller_id is not None:
        stmt = stmt.where(Product.seller_id == seller_id)
    if status is not None:
        stmt = stmt.where(Product.status == status.value)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Product.id > after)
    rows = list(session.scalars(stmt))
    return rows[:limit], encode_cursor(rows[limit - 1].id) if len(rows) > limit else None


@lru_cache(maxsize=1)
def _stock_levels_stmt() -> Any:
    """Built once (it runs whenever a product's stock entry is missing)."""
    return select(Variant.id, Variant.stock, Variant.updated_at).where(Variant.product_id == bindparam("pid"))


def _levels_of(product: ProductOut) -> cache.StockLevels:
    return {v.id: cache.StockLevel(v.stock, v.updated_at) for v in product.variants}


def _with_stock(entry: cache.CachedProduct, levels: cache.StockLevels) -> cache.CachedProduct:
    """The entry (freshly parsed, so ours to change) with the stock entry's levels laid over its
    variants: stock moves on every order, the product entry only on catalog writes."""
    for variant in entry.product.variants:
        level = levels.get(variant.id)
        if level is not None:
            variant.stock, variant.updated_at = level.stock, level.updated_at
    return entry


def _cached_entry(
    session: Session, store: Store, ttl_seconds: int, product_id: uuid.UUID
) -> cache.CachedProduct | None:
    entry, levels = cache.read(store, product_id)
    return _completed(session, store, ttl_seconds, product_id, entry, levels)


def _completed(
    session: Session, store: Store, ttl_seconds: int, product_id: uuid.UUID,
    entry: cache.CachedProduct | None, levels: cache.StockLevels | None,
) -> cache.CachedProduct | None:
    """What the cache read gave, completed from the database (and written back) where missing."""
    if entry is not None:
        if levels is None:  # stock dropped (or expired) alone: one small SELECT, not a rebuild
            rows = session.connection().execute(_stock_levels_stmt(), {"pid": product_id}).all()
            levels = {row[0]: cache.StockLevel(row[1], row[2]) for row in rows}
            cache.write_stock(store, product_id, levels, ttl_seconds)
        return _with_stock(entry, levels)
    row = session.execute(
        select(Product, Seller.name, Seller.status).join(Seller, Seller.id == Product.seller_id)
        .where(Product.id == product_id)
    ).first()
    if row is None:
        return None
    product, seller_name, seller_status = row
    entry = cache.CachedProduct(product=product_out(product), seller_name=seller_name, seller_status=seller_status)
    cache.write(store, entry, ttl_seconds)
    cache.write_stock(store, product_id, _levels_of(entry.product), ttl_seconds)
    return entry


def product_view(
    session: Session, store: Store, ttl_seconds: int, principal: Principal, product_id: uuid.UUID
) -> ProductOut:
    """The owner's (or an operator's) view of a product, from the cache when it holds it."""
    entry = _cached_entry(session, store, ttl_seconds, product_id)
    if entry is None or not (principal.is_operator or entry.product.seller_id == principal.subject_id):
        raise ProductNotFound(f"no product {product_id}")
    return entry.product


def catalog_view(session: Session, store: Store, ttl_seconds: int, product_id: uuid.UUID) -> CatalogProductOut:
    """A published product of an approved seller, as the catalog shows it (cached)."""
    view = _catalog_out(_cached_entry(session, store, ttl_seconds, product_id))
    if view is None:
        raise ProductNotFound(f"no published product {product_id}")
    return view


def catalog_views(
    session: Session, store: Store, ttl_seconds: int, product_ids: Sequence[uuid.UUID]
) -> list[CatalogProductOut]:
    """`catalog_view` for several products (a storefront page), in order, leaving out those not
    for sale; the cache is read for all of them in one round trip."""
    views = []
    for product_id, (entry, levels) in zip(product_ids, cache.read_many(store, product_ids), strict=True):
        view = _catalog_out(_completed(session, store, ttl_seconds, product_id, entry, levels))
        if view is not None:
            views.append(view)
    return views


def _catalog_out(entry: cache.CachedProduct | None) -> CatalogProductOut | None:
    if (
        entry is None or entry.product.status != ProductStatus.PUBLISHED
        or entry.seller_status != SellerStatus.APPROVED
    ):
        return None
    return catalog_out(entry.product, entry.seller_name)
