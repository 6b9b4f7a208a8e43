"""What checkout needs from the catalog: prices from the database (never from the client) and
stock reservations that cannot oversell.

The stock rule is written once (`_fits`, `_taken`) and comes in two forms:
* `take_stock` (and `reserve_stock` for one line): one conditional UPDATE per line
  (`stock = stock - q WHERE id = :id AND stock >= q`), in variant-id order: the row lock
  PostgreSQL takes for the UPDATE serialises concurrent reservations of one variant, and the
  condition is re-checked on the locked row, so stock never goes below zero (the CHECK
  constraint `stock >= 0` is the last line of defence). No SELECT ... FOR UPDATE round trip
  first. Variant-id order means two carts never wait on each other's rows in opposite orders.
* `cart_stock()`: the whole cart as SQLAlchemy Core CTEs that the checkout's one PostgreSQL
  statement composes (`CartStock`): same rule, same lock order, all or nothing.

Reservations do not bump `product.version`: the hot path would otherwise serialise every order on
the product row. Stock is shown, so after commit a reservation lowers the product's cached stock
levels to the ones its UPDATE returned, and giving stock back drops them (catalog.service.cache: the
cached product itself stays).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Integer, Uuid, any_, bindparam, cast, func, select, update
from sqlalchemy.orm import Session

from catalog.models import Product, ProductStatus, Seller, SellerStatus, Variant
from catalog.service.cache import StockLevel, drop_stock_after_commit, lower_stock_after_commit
from kernel.clock import clock
from kernel.pgsql import in_list, precompile, run_built


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
    weight_grams: int = 0  # for weight-band shipping
    seller_ships_with_profiles: bool = False  # checkout needs a shipping rate for this seller's part

    @property
    def product_published(self) -> bool:
        return self.product_status == ProductStatus.PUBLISHED

    @property
    def orderable(self) -> bool:
        """For sale: an active variant of a published product of an approved seller (stock aside)."""
        return self.variant_active and self.product_published and self.seller_status == SellerStatus.APPROVED


def checkout_variants(postgres: bool) -> Any:
    """SELECT what checkout needs of the variants among `:ids` (a list; on PostgreSQL one array):
    one join of variants, products and sellers. `load_variants_for_checkout` runs it; the checkout
    also reads it inside its first statement (orders.service.checkout). `variants_from_rows` reads the
    columns back."""
    return (
        select(
            Variant.id, Variant.product_id, Variant.seller_id, Variant.sku, Product.name, Variant.name,
            Variant.price_amount, Variant.currency, Variant.stock, Variant.active, Product.status,
            Seller.status, Product.version, Variant.weight_grams, Seller.ships_with_profiles,
        )
        .join(Product, Product.id == Variant.product_id)
        .join(Seller, Seller.id == Variant.seller_id)
        .where(in_list(Variant.id, "ids", postgres))
    )


_VARIANT_COLUMNS = 15  # checkout_variants' columns


def variants_from_rows(rows: Iterable[Sequence[Any]], start: int = 0) -> dict[uuid.UUID, VariantForCheckout]:
    """The variants in `rows`, whose columns from `start` on are `checkout_variants`' (a row
    without a variant, as an outer join returns it, is skipped)."""
    out: dict[uuid.UUID, VariantForCheckout] = {}
    for row in rows:
        (variant_id, product_id, seller_id, sku, product_name, variant_name, price, currency, stock, active,
         product_status, seller_status, product_version, weight, ships) = row[start:start + _VARIANT_COLUMNS]
        if variant_id is not None:
            out[variant_id] = VariantForCheckout(
                variant_id=variant_id, product_id=product_id, seller_id=seller_id, sku=sku,
                product_name=product_name, variant_name=variant_name, price_amount=price, currency=currency,
                stock=stock, variant_active=active, product_status=product_status, seller_status=seller_status,
                product_version=product_version, weight_grams=weight, seller_ships_with_profiles=ships,
            )
    return out


@lru_cache(maxsize=2)
def _checkout_variants_stmt(postgres: bool) -> Any:
    """Built once: building this join (and SQLAlchemy's cache key for it) on every checkout cost
    more CPU than running it (see loadtests/README.md). On PostgreSQL it is compiled to text once
    (`kernel.pgsql`), the ids bound as one array."""
    stmt = checkout_variants(postgres)
    return precompile(stmt) if postgres else stmt


def load_variants_for_checkout(
    session: Session, variant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, VariantForCheckout]:
    """The variants among `variant_ids` that exist, with everything checkout needs, in one SELECT
    joining variants, products and sellers. Unknown ids are simply absent from the result."""
    ids = sorted(set(variant_ids))
    if not ids:
        return {}
    return variants_from_rows(run_built(session, _checkout_variants_stmt, {"ids": ids}).all())


def reserve_stock(session: Session, variant_id: uuid.UUID, quantity: int) -> bool:
    """Take `quantity` units of a variant's stock if there are that many; False (and no change)
    if not. Atomic: one conditional UPDATE, safe under any concurrency."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    taken = take_stock(session, [(variant_id, quantity)], clock.now())
    if taken.short is not None:
        return False
    lower_stock_after_commit(session, taken.levels)
    return True


# The stock rule, for both forms below: a line fits when the variant has at least its quantity,
# and taking it lowers the stock by exactly that quantity (updated_at = the order's time).
def _fits(stock: Any, quantity: Any) -> Any:
    return stock >= quantity


def _taken(quantity: Any, now: Any) -> dict[str, Any]:
    return {"stock": Variant.stock - quantity, "updated_at": now}


@dataclass(frozen=True, slots=True)
class StockTaken:
    """What `take_stock` did: the levels its UPDATEs left (`{product_id: {variant_id:
    StockLevel}}`, for `lower_stock_after_commit` once the caller commits), or the first
    variant, in variant-id order, without enough stock (`short`; the caller rolls back the
    lines taken before it)."""

    levels: dict[uuid.UUID, dict[uuid.UUID, StockLevel]]
    short: uuid.UUID | None = None


@lru_cache(maxsize=1)
def _take_stmt() -> Any:
    return (
        update(Variant)
        .where(Variant.id == bindparam("variant_id"), _fits(Variant.stock, bindparam("quantity")))
        .values(**_taken(bindparam("quantity"), bindparam("now")))
        .returning(Variant.product_id, Variant.stock, Variant.updated_at)
        .execution_options(synchronize_session=False)
    )


def take_stock(session: Session, lines: Iterable[tuple[uuid.UUID, int]], now: datetime) -> StockTaken:
    """Take each line's units, in variant-id order (so two carts never wait on each other's rows
    in opposite orders), one conditional UPDATE per line, stopping at the first line that does
    not fit. The step-by-step form of `CartStock` (the portable checkout)."""
    levels: dict[uuid.UUID, dict[uuid.UUID, StockLevel]] = {}
    for variant_id, quantity in sorted(lines):
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        row = session.execute(_take_stmt(), {"variant_id": variant_id, "quantity": quantity, "now": now}).first()
        if row is None:
            return StockTaken(levels, short=variant_id)
        product_id, stock, updated_at = row
        levels.setdefault(product_id, {})[variant_id] = StockLevel(stock, updated_at)
    return StockTaken(levels)


@dataclass(frozen=True, slots=True)
class CartStock:
    """A whole cart's reservation, all or nothing, as CTEs of ONE PostgreSQL statement (the
    checkout adds its own, so a cart is checked, reserved and written in one round trip; see
    orders.service.checkout_pg). Parameters: `ids` (uuid[]) and `qs` (integer[]), one entry per variant,
    same order; `now`.

    `locked` (id, stock): the cart's variants, locked; `fits` (one row: ok): every line fits;
    `take(gate)`: the CTE `reserved` (id, product_id, stock, updated_at) of the rows taken, as
    updated, empty unless `gate` (a condition PostgreSQL evaluates once, e.g. `fits_gate` or
    "my key was claimed") holds.

    Why it cannot oversell or deadlock: the MATERIALIZED `locked` CTE takes the row locks in
    variant-id order (its LockRows sits above the sort) and reads each row's newest committed
    stock (READ COMMITTED re-reads a row updated since the statement's snapshot). `fits` reads
    every locked row, so all locks are held before the gate is evaluated and before the UPDATE
    touches a row; the UPDATE re-checks the rule on the row it holds. Two carts sharing variants
    therefore queue in the same order, and stock never goes below zero (the CHECK constraint
    `stock >= 0` stays the last line of defence)."""

    locked: Any
    wanted: Any
    fits: Any

    @property
    def fits_gate(self) -> Any:
        return select(self.fits.c.ok).scalar_subquery()

    def take(self, gate: Any) -> Any:
        return (
            update(Variant)
            .where(Variant.id == self.wanted.c.id, _fits(Variant.stock, self.wanted.c.q), gate)
            .values(**_taken(self.wanted.c.q, bindparam("now")))
            .returning(Variant.id, Variant.product_id, Variant.stock, Variant.updated_at)
            .cte("reserved")
        )


def cart_stock() -> CartStock:
    ids = cast(bindparam("ids"), ARRAY(Uuid()))
    quantities = cast(bindparam("qs"), ARRAY(Integer()))
    locked = (
        select(Variant.id, Variant.stock).where(Variant.id == any_(ids)).order_by(Variant.id).with_for_update()
        .cte("locked").prefix_with("MATERIALIZED")
    )
    pairs = func.unnest(ids, quantities).table_valued("id", "q").render_derived(name="w")
    wanted = select(pairs.c.id, pairs.c.q).cte("wanted")
    fits = (
        select((func.count() == func.cardinality(ids)).label("ok"))
        .select_from(locked.join(wanted, wanted.c.id == locked.c.id))
        .where(_fits(locked.c.stock, wanted.c.q))
        .cte("fits")
    )
    return CartStock(locked, wanted, fits)


def current_stock(session: Session, variant_id: uuid.UUID) -> int:
    """The stock of one variant now (0 for an unknown one)."""
    return session.scalar(select(Variant.stock).where(Variant.id == variant_id)) or 0


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
