"""Checkout: the hot path. One request, one atomic write.

Steps, in order: look up the Idempotency-Key, price the cart from the catalog (never from the
client), attribute it, compute every party's share with the commission engine (the same one the
preview endpoint uses), then reserve stock and write the order routed into one sub-order per
seller. Any failure leaves nothing behind, the key included.

Round trips are the cost that counts here (loadtests/README.md). On PostgreSQL the reads are one
SELECT each and EVERYTHING written (key, stock, order, sub-orders, lines, commissions, the
affiliate's month-to-date counters) is ONE statement; the API runs it on an autocommit
connection (`kernel.db.autocommit_engine`), so that statement is the transaction: no
BEGIN/COMMIT round trips, and the stock rows are locked only while it runs, never while Python
works between statements (which, under load, is what made checkouts queue on popular variants).
SQLite (the embedded default) takes the same steps one statement at a time through the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

import orjson
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from affiliates import engine
from affiliates.service import record_attributed_sale, storefront_for_checkout
from catalog.service import (
    StockLevel,
    load_variants_for_checkout,
    lower_stock_after_commit,
    reserve_cart_ctes,
    reserve_stock,
)
from kernel.clock import clock
from kernel.db import new_id
from kernel.pgsql import driver_execute, is_postgres
from kernel.settings import Settings
from orders.errors import CartInvalid, IdempotencyKeyReused, OutOfStock
from orders.models import (
    Commission,
    IdempotencyKey,
    Order,
    OrderLine,
    OrderStatus,
    SubOrder,
    request_fingerprint,
)

MAX_LINES = 50
ACTIVE_ORDER_STATES = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.PAID.value)
MAX_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class CartItem:
    variant_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    items: Sequence[CartItem]
    buyer_email: str
    buyer_name: str
    shipping_address: dict[str, Any]
    idempotency_key: str
    storefront_slug: str | None = None
    coupon_code: str | None = None
    attribution_token: str | None = None
    canonical_body: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        payload = {"storefront": self.storefront_slug, "body": self.canonical_body}
        return request_fingerprint(payload)


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: Order
    replayed: bool


def _merge_items(items: Sequence[CartItem]) -> list[CartItem]:
    """Same variant twice in a cart is one line with the summed quantity (first position kept)."""
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.variant_id] = merged.get(item.variant_id, 0) + item.quantity
    return [CartItem(variant_id, quantity) for variant_id, quantity in merged.items()]


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the key lookup found: the order a committed twin made (a replay), or None; and, on
    PostgreSQL, the sellers this buyer already has live orders with (read in the same statement,
    for the commission engine's first-order rule)."""

    replay_of: uuid.UUID | None
    sellers_seen: frozenset[uuid.UUID] | None = None  # None: not read (SQLite: the engine's check runs)

    def first_order_check(self) -> engine.FirstOrderCheck | None:
        seen = self.sellers_seen
        if seen is None:
            return None  # place_order runs sellers_new_to_buyer's SELECT
        return lambda seller_ids, _email: set(seller_ids) - seen


# PostgreSQL, first statement: the key (a replay of a committed order returns at once, before the
# catalog is read: a replay answers even if the products changed since) and the buyer's earlier
# sellers. A twin still in flight is not visible here; the write statement's ON CONFLICT waits
# for it (see _WRITE_SQL).
_LOOKUP_SQL = """
SELECT k.request_hash, k.order_id,
       ARRAY(SELECT DISTINCT s.seller_id FROM orders o JOIN sub_orders s ON s.order_id = o.id
             WHERE o.buyer_email = %(buyer_email)s AND o.status = ANY(%(states)s))
FROM (SELECT 1) AS one
LEFT JOIN idempotency_keys k ON k.scope = %(scope)s AND k.key = %(key)s
"""


def _replayed(request: CheckoutRequest, request_hash: str, order_id: uuid.UUID) -> uuid.UUID:
    if request_hash != request.fingerprint():
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request; use a new key for a new order"
        )
    return order_id


def _lookup_key(session: Session, scope: str, request: CheckoutRequest) -> _Claim:
    """PostgreSQL: the committed order for this key, if any, and the buyer's earlier sellers."""
    request_hash, order_id, sellers = driver_execute(session, _LOOKUP_SQL, {
        "scope": scope, "key": request.idempotency_key, "buyer_email": request.buyer_email,
        "states": list(ACTIVE_ORDER_STATES),
    }).one()
    if order_id is not None:
        return _Claim(_replayed(request, request_hash, order_id))
    return _Claim(None, frozenset(sellers))


def _claim_key(session: Session, scope: str, request: CheckoutRequest, order_id: uuid.UUID) -> _Claim:
    """SQLite: insert the key row, or return the order id a committed twin already made
    (SQLite serialises writers, so there is no twin in flight)."""
    values = {
        "id": new_id(), "scope": scope, "key": request.idempotency_key,
        "request_hash": request.fingerprint(), "order_id": order_id, "created_at": clock.now(),
    }
    stmt = sqlite.insert(IdempotencyKey).values(values).on_conflict_do_nothing(index_elements=["scope", "key"])
    if session.execute(stmt.returning(IdempotencyKey.id)).first() is not None:
        return _Claim(None)
    return _Claim(_committed_twin(session, scope, request))


def _committed_twin(session: Session, scope: str, request: CheckoutRequest) -> uuid.UUID:
    existing = session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.order_id).where(
            IdempotencyKey.scope == scope, IdempotencyKey.key == request.idempotency_key
        )
    ).one()
    return _replayed(request, existing.request_hash, existing.order_id)


def sellers_new_to_buyer(session: Session, seller_ids: frozenset[uuid.UUID], buyer_email: str) -> set[uuid.UUID]:
    """The sellers this buyer has no earlier (unpaid or paid) order with: one SELECT. The
    commission engine's first-order bonus asks this."""
    if not seller_ids:
        return set()
    seen = session.scalars(
        select(SubOrder.seller_id).join(Order, Order.id == SubOrder.order_id).where(
            Order.buyer_email == buyer_email, Order.status.in_(ACTIVE_ORDER_STATES),
            SubOrder.seller_id.in_(seller_ids),
        ).distinct()
    )
    return set(seller_ids) - set(seen)


def place_order(session: Session, settings: Settings, request: CheckoutRequest) -> CheckoutResult:
    now = clock.now()
    items = _merge_items(request.items)
    if not items:
        raise CartInvalid("the cart is empty")
    if len(items) > MAX_LINES:
        raise CartInvalid(f"a cart holds at most {MAX_LINES} different items")
    for item in items:
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise CartInvalid(f"quantity of {item.variant_id} must be between 1 and {MAX_QUANTITY}")

    scope = f"checkout:{request.storefront_slug or '-'}"
    order_id = new_id()
    postgres = is_postgres(session)
    claim = _lookup_key(session, scope, request) if postgres else _claim_key(session, scope, request, order_id)
    if claim.replay_of is not None:
        return _replay(session, claim.replay_of)

    storefront = storefront_for_checkout(session, request.storefront_slug) if request.storefront_slug else None
    variants = load_variants_for_checkout(session, [item.variant_id for item in items])
    lines: list[engine.CartLine] = []
    for item in items:
        variant = variants.get(item.variant_id)
        if variant is None or not variant.orderable:
            raise CartInvalid(f"variant {item.variant_id} is not for sale")
        if storefront is not None and variant.product_id not in storefront.listed_product_ids:
            raise CartInvalid(f"variant {item.variant_id} is not listed in storefront {request.storefront_slug}")
        lines.append(engine.CartLine(
            variant_id=item.variant_id, product_id=variant.product_id, seller_id=variant.seller_id,
            quantity=item.quantity, unit_amount=variant.price_amount, currency=variant.currency,
        ))
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise CartInvalid(f"a cart is paid in one currency; this one mixes {', '.join(sorted(currencies))}")
    currency = currencies.pop()
    if storefront is not None and storefront.currency != currency:
        raise CartInvalid(f"storefront {request.storefront_slug} sells in {storefront.currency}, not {currency}")

    attribution = engine.resolve_attribution(
        session, storefront_id=storefront.id if storefront else None,
        attribution_token=request.attribution_token, coupon_code=request.coupon_code,
        buyer_email=request.buyer_email, at=now, seller_ids={line.seller_id for line in lines},
        storefront_affiliate_id=storefront.affiliate_id if storefront else None,
    )
    settlement = engine.settle_cart(
        session, lines, attribution, buyer_email=request.buyer_email,
        platform_fee_bps=settings.platform_fee_bps, at=now, coupon_code=request.coupon_code,
        is_first_order=claim.first_order_check() or partial(sellers_new_to_buyer, session),
    )

    order = _build_order(order_id, request, currency, lines, variants, settlement, settings, now,
                         make=_detached if postgres else _orm)
    if postgres:
        # One statement for every cart size: the key, the whole reservation, every order row and
        # the affiliate's month-to-date counters, all or nothing.
        twin = _write(session, scope, request, items, order, now, _monthly_rows(settlement, lines, now),
                      {line.variant_id: line.product_id for line in lines})
        if twin is not None:
            return _replay(session, twin)
        return CheckoutResult(order, replayed=False)
    # SQLite (the embedded default) serialises writers anyway: the same steps, one by one, with
    # the ORM writing the rows. Reserve in variant-id order, as on PostgreSQL.
    for item in sorted(items, key=lambda i: i.variant_id):
        if not reserve_stock(session, item.variant_id, item.quantity):
            # SQLite: this transaction already holds the write lock (the key claim), so the stock
            # read with the variants is still the stock now.
            raise _out_of_stock(item, variants[item.variant_id].sku, variants[item.variant_id].stock)
    session.add(order)
    session.flush()
    record_attributed_sale(session, settlement=settlement, lines=lines, at=now)
    return CheckoutResult(order, replayed=False)


def _replay(session: Session, order_id: uuid.UUID) -> CheckoutResult:
    order = session.get(Order, order_id)
    assert order is not None, "an idempotency key always points at its order"
    return CheckoutResult(order, replayed=True)


def _out_of_stock(item: CartItem, sku: str, left: int) -> OutOfStock:
    """Names the level as the buyer's storefront shows it (its SKU) and what is left, so a client
    can offer the rest; the id stays in the problem's fields for programs."""
    return OutOfStock(f"not enough stock of {sku}: {left} left, the cart asks for {item.quantity}",
                      variant_id=str(item.variant_id), sku=sku, available=left)


@dataclass(frozen=True, slots=True)
class _TableWriter:
    """A constant multi-row INSERT for one table: the rows travel as one JSON array that
    PostgreSQL turns back into rows of the table's type (json_populate_recordset), so the SQL
    text and its single parameter do not depend on the number of rows (the statement stays
    prepared, and psycopg does not re-parse a long query with a hundred placeholders)."""

    columns: tuple[tuple[str, Any], ...]  # (attribute key, Column)
    sql: str

    @classmethod
    def of(cls, model: type[Any], param: str) -> _TableWriter:
        mapper = sa_inspect(model)
        columns = tuple((attr.key, attr.columns[0]) for attr in mapper.column_attrs)
        table = mapper.local_table.name
        names = ", ".join(column.name for _, column in columns)
        sql = (f"INSERT INTO {table} ({names}) SELECT {names} "
               f"FROM json_populate_recordset(NULL::{table}, %({param})s::json)")
        return cls(columns, sql)

    def rows(self, objects: Sequence[Any]) -> list[dict[str, Any]]:
        """One JSON-ready dict per object, filling each unset column with its Python-side
        default (on the object too, so the response shows what was stored)."""
        out = []
        for obj in objects:
            row = {}
            for key, column in self.columns:
                value = getattr(obj, key)
                if value is None and column.default is not None:
                    default = column.default
                    value = default.arg(None) if default.is_callable else default.arg
                    setattr(obj, key, value)
                row[column.name] = value
            out.append(row)
        return out


@lru_cache(maxsize=1)
def _writers() -> tuple[_TableWriter, ...]:
    return tuple(_TableWriter.of(model, f"rows{n}") for n, model in enumerate((Order, SubOrder, OrderLine, Commission)))


def _monthly_rows(
    settlement: engine.Settlement, lines: Sequence[engine.CartLine], now: datetime
) -> list[dict[str, Any]]:
    """The rows `affiliates.service.record_attributed_sale` would upsert for this order (the
    engine's `attributed_sale_amounts`), for the write statement's own upsert."""
    affiliate_id = settlement.attribution.affiliate_id
    month = engine.month_key(now)
    return [
        {"affiliate_id": affiliate_id, "seller_id": seller_id, "month": month, "currency": lines[0].currency,
         "orders": 1, "amount": amount}
        for seller_id, amount in sorted(engine.attributed_sale_amounts(settlement, lines).items())
    ]


# The write statement (PostgreSQL). Its CTEs run in this order, each gated on the one before
# (a gate is an uncorrelated condition PostgreSQL evaluates once, before the CTE's first row):
#   locked, fits  the cart's variant rows locked in id order, and whether every line fits
#                 (catalog.stock.reserve_cart_ctes);
#   k             the Idempotency-Key, inserted only if the cart fits. A twin in flight holds the
#                 key's index entry: we wait for it to finish (it is past its variant locks, so
#                 it never waits on ours), then DO NOTHING if it committed: k is empty and
#                 nothing below happens (the caller replays the twin);
#   reserved, w0-w3, monthly  stock, the order's rows and the month-to-date counters (as
#                 affiliates' record_attributed_sale upserts them: `orders + 1, amount + n`), all
#                 gated on k. Counter rows are locked after every variant row, in seller order.
# Locks are always taken variants -> key -> counters, each in a fixed order: no deadlock between
# two checkouts. Foreign keys are checked at the end of the statement, when every CTE has run.
_KEY_CTE = """
k AS (
    INSERT INTO idempotency_keys (id, scope, key, request_hash, order_id, created_at)
    SELECT %(key_id)s, %(scope)s, %(key)s, %(request_hash)s, %(order_id)s, %(now)s
    WHERE (SELECT ok FROM fits)
    ON CONFLICT (scope, key) DO NOTHING RETURNING id
)"""
_CLAIMED = "EXISTS (SELECT 1 FROM k)"
_MONTHLY_CTE = f"""
monthly AS (
    INSERT INTO affiliate_monthly_sales (affiliate_id, seller_id, month, currency, orders, amount)
    SELECT m.affiliate_id, m.seller_id, m.month, m.currency, m.orders, m.amount
    FROM json_populate_recordset(NULL::affiliate_monthly_sales, %(monthly)s::json) AS m
    WHERE {_CLAIMED}
    ORDER BY m.seller_id
    ON CONFLICT (affiliate_id, seller_id, month, currency) DO UPDATE
    SET orders = affiliate_monthly_sales.orders + excluded.orders,
        amount = affiliate_monthly_sales.amount + excluded.amount
)"""


@lru_cache(maxsize=1)
def _write_sql() -> str:
    parts = [reserve_cart_ctes(gate=_CLAIMED, gate_ctes=f", {_KEY_CTE}")]
    parts += [f"w{n} AS ({writer.sql} WHERE {_CLAIMED})" for n, writer in enumerate(_writers())]
    parts.append(_MONTHLY_CTE)
    return (f"WITH {', '.join(parts)}\nSELECT (SELECT ok FROM fits), (SELECT count(*) FROM k), "
            "ARRAY(SELECT id FROM reserved ORDER BY id), ARRAY(SELECT stock FROM reserved ORDER BY id), "
            "ARRAY(SELECT id FROM locked), ARRAY(SELECT stock FROM locked)")


def _write(
    session: Session, scope: str, request: CheckoutRequest, items: Sequence[CartItem], order: Order,
    now: datetime, monthly: list[dict[str, Any]], product_of: dict[uuid.UUID, uuid.UUID],
) -> uuid.UUID | None:
    """Claim the key, reserve the whole cart and insert every row of the order in ONE statement
    (PostgreSQL; see _write_sql), all or nothing. Returns None when written; the order id of a
    committed twin with this key (a replay); raises OutOfStock for the first line (in variant-id
    order) that does not fit. The order objects stay out of the session (the caller renders the
    response from them). After commit the reserved variants' cached stock levels are lowered to
    what the UPDATE left, as `catalog.service.reserve_stock` does (the cached products stay)."""
    ordered = sorted(items, key=lambda i: i.variant_id)
    params: dict[str, Any] = {
        "ids": [i.variant_id for i in ordered], "qs": [i.quantity for i in ordered], "now": now,
        "key_id": new_id(), "scope": scope, "key": request.idempotency_key,
        "request_hash": request.fingerprint(), "order_id": order.id,
        "monthly": orjson.dumps(monthly).decode(),
    }
    groups: tuple[list[Any], ...] = ([order], list(order.sub_orders), list(order.lines), list(order.commissions))
    for n, (writer, objects) in enumerate(zip(_writers(), groups, strict=True)):
        # orjson writes UUIDs and aware datetimes (ISO 8601 with offset) the way PostgreSQL reads them.
        params[f"rows{n}"] = orjson.dumps(writer.rows(objects)).decode()
    fits, claimed, reserved_ids, reserved_stock, locked_ids, locked_stock = (
        driver_execute(session, _write_sql(), params).one()
    )
    if claimed:
        # The UPDATE set updated_at to `now` on every row it took.
        levels: dict[uuid.UUID, dict[uuid.UUID, StockLevel]] = {}
        for variant_id, stock in zip(reserved_ids, reserved_stock, strict=True):
            levels.setdefault(product_of[variant_id], {})[variant_id] = StockLevel(stock, now)
        lower_stock_after_commit(session, levels)
        return None
    if fits:  # the key was taken by a twin that committed while we waited on it
        return _committed_twin(session, scope, request)
    # Short of stock. A twin may have committed this very key meanwhile (and taken the stock):
    # then this is its replay, not an error. (A new statement: on the autocommit connection it
    # sees what committed since.)
    twin = driver_execute(
        session, "SELECT order_id FROM idempotency_keys WHERE scope = %(scope)s AND key = %(key)s",
        {"scope": scope, "key": request.idempotency_key},
    ).scalar()
    if twin is not None:
        return _committed_twin(session, scope, request)
    stock = dict(zip(locked_ids, locked_stock, strict=True))
    skus = {line.variant_id: line.sku for line in order.lines}
    for item in ordered:
        if stock.get(item.variant_id, 0) < item.quantity:
            raise _out_of_stock(item, skus[item.variant_id], stock.get(item.variant_id, 0))
    raise AssertionError("the cart did not fit, yet every line has stock")


def _orm(cls: type[Any], **values: Any) -> Any:
    return cls(**values)


def _detached(cls: type[Any], **values: Any) -> Any:
    """An instance of `cls` filled without an attribute event per column (the ORM's constructor
    costs ~1 ms for a 3-line order): for objects that are only read (the response) and written
    by our own statement (PostgreSQL), never added to a session."""
    obj = cls.__mapper__.class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


def _build_order(
    order_id: uuid.UUID, request: CheckoutRequest, currency: str, lines: Sequence[engine.CartLine],
    variants: dict[uuid.UUID, Any], settlement: engine.Settlement, settings: Settings, now: Any,
    make: Callable[..., Any] = _orm,
) -> Order:
    attribution = settlement.attribution
    order: Order = make(
        Order, lines=[], sub_orders=[], commissions=[],
        id=order_id, storefront_id=attribution.storefront_id, affiliate_id=attribution.affiliate_id,
        attribution_source=attribution.source, click_id=attribution.click_id, coupon_id=attribution.coupon_id,
        coupon_code=request.coupon_code, self_referral=attribution.self_referral,
        buyer_email=request.buyer_email, buyer_name=request.buyer_name,
        shipping_address=request.shipping_address, currency=currency,
        gross_amount=sum(s.gross for s in settlement.lines),
        discount_amount=sum(s.discount for s in settlement.lines),
        total_amount=sum(s.amount for s in settlement.lines),
        platform_fee_amount=sum(s.platform_fee for s in settlement.lines),
        commission_amount=sum(c.amount for s in settlement.lines for c in s.commissions),
        refunded_amount=0, status=OrderStatus.AWAITING_PAYMENT.value,
        payment_rail="stripe" if settings.stripe_enabled else "manual",
        expires_at=now + timedelta(minutes=settings.unpaid_order_timeout_minutes), created_at=now,
    )
    sub_orders: dict[uuid.UUID, SubOrder] = {}
    for position, (line, share) in enumerate(zip(lines, settlement.lines, strict=True)):
        sub = sub_orders.get(line.seller_id)
        if sub is None:
            sub = make(
                SubOrder, lines=[], id=new_id(), order_id=order_id, seller_id=line.seller_id, currency=currency,
                amount=0,
                platform_fee_amount=0, commission_amount=0, seller_net_amount=0, refunded_amount=0,
                created_at=now,
            )
            sub_orders[line.seller_id] = sub
        commission_total = sum(c.amount for c in share.commissions)
        sub.amount += share.amount
        sub.platform_fee_amount += share.platform_fee
        sub.commission_amount += commission_total
        sub.seller_net_amount += share.seller_net
        variant = variants[line.variant_id]
        order_line = make(
            OrderLine, commissions=[], id=new_id(), order_id=order_id, sub_order_id=sub.id, position=position,
            seller_id=line.seller_id,
            product_id=line.product_id, variant_id=line.variant_id, sku=variant.sku,
            product_name=variant.product_name, variant_name=variant.variant_name,
            unit_amount=line.unit_amount, quantity=line.quantity, gross_amount=share.gross,
            discount_amount=share.discount, amount=share.amount, platform_fee_amount=share.platform_fee,
            seller_net_amount=share.seller_net, refunded_quantity=0, refunded_amount=0,
            refunded_platform_fee=0, refunded_seller_net=0,
        )
        order.lines.append(order_line)
        sub.lines.append(order_line)
        for commission in share.commissions:
            if commission.amount == 0:
                continue
            commission_row = make(
                Commission, id=new_id(), order_id=order_id, order_line_id=order_line.id, sub_order_id=sub.id,
                seller_id=line.seller_id, affiliate_id=commission.affiliate_id, role=commission.role,
                program_id=commission.program_id, plan_version_id=commission.plan_version_id,
                funded_by=commission.funded_by, currency=currency, amount=commission.amount,
                reversed_amount=0, holding_period_days=commission.holding_period_days, created_at=now,
            )
            order.commissions.append(commission_row)
            order_line.commissions.append(commission_row)
    order.sub_orders.extend(sub_orders.values())
    return order
