"""Catalog tables: sellers (the supply side), products, and their levels/variants.

A variant (a level such as Basic / Pro, or a size) is what a buyer orders: it has the SKU,
the price (integer minor units + currency) and the stock. `seller_id` is repeated on the
variant so ownership checks and order routing need no join.

Nothing here is ever deleted: orders refer to sellers, products and variants (and snapshot the
name and price they bought), so a product is archived and a variant deactivated instead.

Full-text search on PostgreSQL uses a GIN expression index that exists only in the migration
(`ix_products_search` on `to_tsvector('simple', name || ' ' || description)`): SQLite has no
such index, and catalog.service.browse builds exactly that expression so the planner can use it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.payout_accounts import PayoutAccountStatus


class SellerStatus(enum.StrEnum):
    PENDING = "pending"  # applied, waiting for an operator
    APPROVED = "approved"
    REJECTED = "rejected"


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"  # never hard-deleted: orders refer to it


class Seller(TimestampMixin, Base):
    __tablename__ = "sellers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    website: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=SellerStatus.PENDING.value, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    payout_status: Mapped[str] = mapped_column(String(20), default=PayoutAccountStatus.NOT_STARTED.value)
    stripe_account_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Unix seconds of the last Stripe `account.updated` event applied: Stripe does not promise
    # delivery order, so an older event never undoes a newer one.
    stripe_account_synced_at: Mapped[int | None] = mapped_column(BigInteger)
    bank_reference: Mapped[str | None] = mapped_column(String(200))  # manual rail: where to wire money
    # The platform's webhook to this seller (order.created, sub_order.*, payout.paid ...).
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    # True while the seller has an active shipping profile (kept by catalog.service.shipping):
    # checkout then needs a chosen rate for the seller's part, and reads this with the cart.
    ships_with_profiles: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())


# Tags are a JSON array of lower-case strings; JSONB on PostgreSQL so `tags @> '["x"]'` can filter.
TagList = JSON().with_variant(JSONB(), "postgresql")


class Product(TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        # Catalog pages: published products by price (keyset pagination on (min_price, id)).
        Index("ix_products_status_min_price", "status", "min_price_amount", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    tags: Mapped[list[str]] = mapped_column(TagList, default=list)
    currency: Mapped[str] = mapped_column(String(3))  # every variant of a product shares it
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.DRAFT.value, index=True)
    # False for goods that are not shipped (software levels, services): a paid sale of them counts
    # as delivered at payment, which starts the holding periods (orders/service/settlement.py).
    requires_shipping: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Bumped by the catalog service on every change to the product, its variants or their stock
    # (not on order reservations); clients compare it to see that a product changed.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The lowest price among active variants (minor units of `currency`), kept by the catalog
    # service whenever a variant's price or active flag changes; NULL with no active variant.
    # Denormalised so catalog pages can sort and paginate by price with an index.
    min_price_amount: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())

    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", order_by="Variant.position", lazy="selectin"
    )


class Variant(TimestampMixin, Base):
    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("seller_id", "sku"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_amount > 0", name="price_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))  # the level: "Pro", "Enterprise", "XL"
    position: Mapped[int] = mapped_column(Integer, default=0)
    price_amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))  # weight-band shipping
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())

    product: Mapped[Product] = relationship(back_populates="variants")


class ShippingRateKind(enum.StrEnum):
    FLAT = "flat"  # `amount` once per sub-order
    PER_ITEM = "per_item"  # `amount` per unit of the seller's part
    WEIGHT_BAND = "weight_band"  # `amount` once, for a part weighing min..max grams (inclusive)


class ShippingProfile(TimestampMixin, Base):
    """A seller's shipping profile: where it ships (zones) and at which rates (catalog.service.shipping)."""

    __tablename__ = "shipping_profiles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    zones: Mapped[list[str]] = mapped_column(JSON)  # "US" (the whole country) or "US-CA" (one region)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    rates: Mapped[list[ShippingRate]] = relationship(order_by="ShippingRate.id", lazy="selectin")


class ShippingRate(TimestampMixin, Base):
    __tablename__ = "shipping_rates"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    profile_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipping_profiles.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units of the profile's currency
    min_weight_grams: Mapped[int | None] = mapped_column(Integer)
    max_weight_grams: Mapped[int | None] = mapped_column(Integer)
    # Free once the seller's part of the cart (its lines' amounts) reaches this; NULL: never free.
    free_over_amount: Mapped[int | None] = mapped_column(BigInteger)
