"""What checkout needs from the catalog: prices from the database (never from the client) and
stock reservations that cannot oversell.

`reserve_stock` is one conditional UPDATE (`stock = stock - q WHERE id = :id AND stock >= q`):
the row lock PostgreSQL takes for the UPDATE serialises concurrent reservations of one variant,
and the condition is re-checked on the locked row, so stock never goes below zero (the CHECK
constraint `stock >= 0` is the last line of defence). No SELECT ... FOR UPDATE round trip first.
Callers reserving several variants do it in variant-id order so two carts never wait on each
other's rows in opposite orders (deadlock).

Reservations do not bump `product.version`: the hot path would otherwise serialise every order on
the product row. Stock is shown, so after commit a reservation lowers the product's cached stock
levels to the ones its UPDATE returned, and giving stock back drops them (catalog.cache: the
cached product itself stays).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import any_, bindparam, select, update
from sqlalchemy.orm import Session

from catalog.cache import StockLevel, drop_stock_after_commit, lower_stock_after_commit
from catalog.models import Product, ProductStatus, Seller, SellerStatus, Variant
from kernel.pgsql import is_postgres, precompile


@dataclass(frozen=True, slots=True)
class VariantForCheckout:
    """A variant as checkout prices it. `price_amount` is minor units of `currency`."""

    variant_id: uuid.UUID
    product_id: uuid.UUID
    seller_id: uuid.UUID
    sku: str
    product_name: str
    variant_name: str
    price_amount: int
    currency: str
    stock: int
    variant_active: bool
    product_status: str
    seller_status: str
    product_version: int

    @property
    def product_published(self) -> bool:
        return self.product_status == ProductStatus.PUBLISHED

    @property
    def orderable(self) -> bool:
        """For sale: an active variant of a published product of an approved seller (stock aside)."""
        return self.variant_active and self.product_published and self.seller_status == SellerStatus.APPROVED


@lru_cache(maxsize=2)
def _checkout_variants_stmt(postgres: bool) -> Any:
    """Built once: building this join (and SQLAlchemy's cache key for it) on every checkout cost
    more CPU than running it (see loadtests/README.md). On PostgreSQL it is compiled to text once
    (`kernel.pgsql`), the ids bound as one array."""
    ids = Variant.id == any_(bindparam("ids")) if postgres else Variant.id.in_(bindparam("ids", expanding=True))
    stmt = (
        select(
            Variant.id, Variant.product_id, Variant.seller_id, Variant.sku, Product.name, Variant.name,
            Variant.price_amount, Variant.currency, Variant.stock, Variant.active, Product.status,
            Seller.status, Product.version,
        )
        .join(Product, Product.id == Variant.product_id)
        .join(Seller, Seller.id == Variant.seller_id)
        .where(ids)
    )
    return precompile(stmt) if postgres else stmt


def load_variants_for_checkout(
    session: Session, variant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, VariantForCheckout]:
    """The variants among `variant_ids` that exist, with everything checkout needs, in one SELECT
    joining variants, products and sellers. Unknown ids are simply absent from the result."""
    ids = sorted(set(variant_ids))
    if not ids:
        return {}
    if is_postgres(session):
        rows = _checkout_variants_stmt(True).run(session, {"ids": ids}).all()
    else:
        # Core execution on the session's connection: columns, not entities, so no ORM compile state.
        rows = session.connection().execute(_checkout_variants_stmt(False), {"ids": ids}).all()
    return {
        row[0]: VariantForCheckout(
            variant_id=row[0], product_id=row[1], seller_id=row[2], sku=row[3], product_name=row[4],
            variant_name=row[5], price_amount=row[6], currency=row[7], stock=row[8], variant_active=row[9],
            product_status=row[10], seller_status=row[11], product_version=row[12],
        )
        for row in rows
    }


def reserve_stock(session: Session, variant_id: uuid.UUID, quantity: int) -> bool:
    """Take `quantity` units of a variant's stock if there are that many; False (and no change)
    if not. Atomic: one conditional UPDATE, safe under any concurrency."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    row = session.execute(
        update(Variant)
        .where(Variant.id == variant_id, Variant.stock >= quantity)
        .values(stock=Variant.stock - quantity)
        .returning(Variant.product_id, Variant.stock, Variant.updated_at)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    product_id, stock, updated_at = row
    lower_stock_after_commit(session, {product_id: {variant_id: StockLevel(stock, updated_at)}})
    return True


def reserve_cart_ctes(gate: str = "(SELECT ok FROM fits)", gate_ctes: str = "") -> str:
    """A whole cart's reservation, all or nothing, as CTEs for ONE PostgreSQL statement (the
    checkout appends its own inserts, so a cart is checked, reserved and written in one round
    trip; see orders.checkout). Parameters: %(ids)s uuid[] and %(qs)s integer[] (one
    entry per variant, same order), %(now)s.

    CTEs: `locked` (id, stock) of the cart's variants, locked; `fits` (one row: ok) true when
    every line fits; `reserved` (id, product_id, stock, updated_at) of the rows taken, as
    updated, empty unless `gate` (an SQL condition evaluated once, e.g. `(SELECT ok FROM fits)`
    or "my key was claimed") holds.
    `gate_ctes`: CTEs the gate reads (text starting with ", "), placed before `reserved`.

    Why it cannot oversell or deadlock: the MATERIALIZED `locked` CTE takes the row locks in
    variant-id order (its LockRows sits above the sort) and reads each row's newest committed
    stock (READ COMMITTED re-reads a row updated since the statement's snapshot). `fits` reads
    every locked row, so all locks are held before the gate is evaluated and before the UPDATE
    touches a row; the UPDATE re-checks `stock >= q` on the row it holds. Two carts sharing
    variants therefore queue in the same order, and stock never goes below zero (the CHECK
    constraint `stock >= 0` stays the last line of defence)."""
    return f"""
locked AS MATERIALIZED (
    SELECT id, stock FROM variants WHERE id = ANY(%(ids)s::uuid[]) ORDER BY id FOR UPDATE
), wanted AS (
    SELECT w.id, w.q FROM unnest(%(ids)s::uuid[], %(qs)s::integer[]) AS w(id, q)
), fits AS (
    SELECT count(*) = cardinality(%(ids)s::uuid[]) AS ok
    FROM locked JOIN wanted ON wanted.id = locked.id WHERE locked.stock >= wanted.q
){gate_ctes}, reserved AS (
    UPDATE variants AS v SET stock = v.stock - wanted.q, updated_at = %(now)s
    FROM wanted WHERE v.id = wanted.id AND v.stock >= wanted.q AND {gate}
    RETURNING v.id, v.product_id, v.stock, v.updated_at
)"""


def release_stock(session: Session, variant_id: uuid.UUID, quantity: int) -> None:
    """Give `quantity` units back (a cancelled or refunded order line). Atomic increment."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    product_id = session.execute(
        update(Variant)
        .where(Variant.id == variant_id)
        .values(stock=Variant.stock + quantity)
        .returning(Variant.product_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if product_id is not None:
        drop_stock_after_commit(session, [product_id])
