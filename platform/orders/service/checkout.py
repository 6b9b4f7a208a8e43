"""Checkout: the hot path. One request, one atomic write.

Steps, in order, each rule written once by the package that owns it:
1. look up the Idempotency-Key, with the buyer's earlier sellers (orders.service.idempotency: a
   committed key replays its order at once), and read the cart's variants in the same
   statement (`_first_read`);
2. price the cart from the catalog, never from the client (catalog.service);
3. attribute it and compute every party's share (affiliates.service.commission: the same calls the
   preview endpoint makes);
4. route it: one sub-order per seller, the lines, the commissions (`_build_order`: rows, not
   ORM objects);
5. write it, ALL OR NOTHING: claim the key, reserve the stock, insert the rows (the order carries
   the hash of its secret link and the buyer's consents; the buyer's confirmation mail with the
   link is an outbox row among them: orders.service.order_links), count the sale in the
   affiliate's month-to-date counters. Two forms of the same write:
   * PostgreSQL: ONE statement (orders.service.checkout_pg) composed from the owners' SQLAlchemy Core
     constructs. The API runs it on an autocommit connection (`kernel.db.autocommit_engine`), so
     that statement is the transaction: no BEGIN/COMMIT round trips, and the stock rows are
     locked only while it runs, never while Python works between statements (which, under
     load, is what made checkouts queue on popular variants);
   * step by step (`_write_step_by_step`) in the session's transaction, inside a SAVEPOINT: the
     same owners' functions one statement each, in the same lock order. SQLite (the embedded
     default) always writes this way; PostgreSQL does when asked (`one_statement=False`; the
     tests compare both forms row for row).
6. not written: a twin committed the key (replay its order), or the cart did not fit
   (OutOfStock for the first line, in variant-id order, that does not). Nothing is left
   behind, the key included.

Round trips are the cost that counts here (loadtests/README.md): on PostgreSQL a storefront
order is three statements (the key with the variants; the affiliate with the programs, as
`affiliates.service.commission.load_terms` reads them; the write); a referral adds the click, a coupon
its coupon.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, insert, select, true
from sqlalchemy.orm import Session
from sqlalchemy.schema import ColumnDefault

from affiliates.service import (
    CheckoutStorefront,
    attributed_sale_rows,
    commission,
    record_attributed_sale,
    storefront_for_checkout,
)
from catalog.service import (
    ShippingOption,
    VariantForCheckout,
    checkout_variants,
    chosen_shipping,
    current_stock,
    lower_stock_after_commit,
    seller_parts,
    take_stock,
    variants_from_rows,
)
from kernel import consents as consent_purposes
from kernel.clock import clock
from kernel.db import new_id
from kernel.mail import OutboxMail
from kernel.pgsql import Built, is_postgres, precompile, run_built
from kernel.settings import Settings
from orders.errors import CartInvalid, OutOfStock
from orders.models import (
    Commission,
    CommissionStatus,
    Order,
    OrderLine,
    OrderStatus,
    SubOrder,
    SubOrderStatus,
    request_fingerprint,
)
from orders.service import checkout_pg, idempotency, order_links
from orders.service.checkout_pg import WriteOutcome

MAX_LINES = 50
MAX_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class CartItem:
    variant_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class OrganizationBuyer:
    """A buyer organization's member placing the order (orders.service.buyer_orgs): an order above
    `limit` ((currency, amount) the member may order without an approver; None: no limit set, so
    every order waits) is written `awaiting_approval`, its stock held for the approval period."""

    organization_id: uuid.UUID
    person_id: uuid.UUID | None
    limit: tuple[str, int] | None

    def needs_approval(self, currency: str, total: int) -> bool:
        return self.limit is None or self.limit[0] != currency or total > self.limit[1]


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
    buyer_phone: str | None = None
    consents: dict[str, bool] | None = None  # as the buyer sent them (kernel.consents)
    organization: OrganizationBuyer | None = None
    shipping_choices: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # seller -> chosen rate

    def fingerprint(self) -> str:
        payload = {"storefront": self.storefront_slug, "body": self.canonical_body}
        return request_fingerprint(payload)


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    # The order: the stored `Order` for a replay; for a new order, its rows as written, with the
    # same attributes (`orders.service.views` renders either). `order.id`, `order.payment_rail`.
    order: Any
    replayed: bool
    # A new order's secret link (orders.service.order_links) and its confirmation mail's outbox id,
    # to send once committed; None on a replay (only the token's hash is stored).
    link: order_links.NewLink | None = None
    mail_id: uuid.UUID | None = None


def _merge_items(items: Sequence[CartItem]) -> list[CartItem]:
    """Same variant twice in a cart is one line with the summed quantity (first position kept)."""
    merged: dict[uuid.UUID, int] = {}
    for item in items:
        merged[item.variant_id] = merged.get(item.variant_id, 0) + item.quantity
    return [CartItem(variant_id, quantity) for variant_id, quantity in merged.items()]


def place_order(
    session: Session, settings: Settings, request: CheckoutRequest, *, one_statement: bool | None = None
) -> CheckoutResult:
    """Place the order `request` describes (see the module docstring). `one_statement`: write
    with PostgreSQL's one statement (the default on PostgreSQL) or step by step (the default
    elsewhere, and the only form SQLite has)."""
    now = clock.now()
    items = _valid_items(request.items)
    if request.consents:
        consent_purposes.check_names(request.consents)
    scope = idempotency.scope_of(request.storefront_slug)
    fingerprint = request.fingerprint()
    rows = run_built(session, _first_read, {
        **idempotency.lookup_params(scope, request.idempotency_key, request.buyer_email),
        "ids": sorted(item.variant_id for item in items),
    }).all()
    found = idempotency.found(rows[0])
    if found.order_id is not None:
        assert found.request_hash is not None
        return _replay(session, idempotency.replay_of(found.request_hash, found.order_id, fingerprint))

    storefront = storefront_for_checkout(session, request.storefront_slug) if request.storefront_slug else None
    variants = variants_from_rows(rows, start=idempotency.LOOKUP_WIDTH)
    lines, currency = _priced(request, items, variants, storefront)
    shipping = _shipping(session, request, items, variants)
    attribution = commission.resolve_attribution(
        session, storefront_id=storefront.id if storefront else None,
        attribution_token=request.attribution_token, coupon_code=request.coupon_code,
        buyer_email=request.buyer_email, at=now, seller_ids={line.seller_id for line in lines},
        storefront_affiliate_id=storefront.affiliate_id if storefront else None,
    )
    seen = found.sellers_seen
    settlement = commission.settle_cart(
        session, lines, attribution, buyer_email=request.buyer_email,
        platform_fee_bps=settings.platform_fee_bps, at=now, coupon_code=request.coupon_code,
        is_first_order=lambda seller_ids, _email: commission.new_to_buyer(seller_ids, seen),
    )

    link = order_links.new_link(settings, request.storefront_slug)
    draft = _build_order(new_id(), request, currency, lines, variants, settlement, settings, now, link, shipping)
    key = idempotency.claim_params(scope, request.idempotency_key, fingerprint, draft.id, now, new_id())
    quantities = [(item.variant_id, item.quantity) for item in items]
    if one_statement if one_statement is not None else is_postgres(session):
        outcome = checkout_pg.write(session, lines=quantities, now=now, key=key, tables=draft.tables(),
                                    monthly=attributed_sale_rows(settlement, lines, now))
    else:
        outcome = _write_step_by_step(session, quantities, now, key, draft, settlement, lines)

    if outcome.written:
        lower_stock_after_commit(session, outcome.levels)
        return CheckoutResult(draft.view(), replayed=False, link=link, mail_id=draft.mails[0]["id"])
    # Not written. A twin may have committed this very key meanwhile (and, if we are short, taken
    # the stock): then this is its replay, not an error.
    twin = idempotency.committed(session, scope, request.idempotency_key)
    if twin is not None:
        return _replay(session, idempotency.replay_of(*twin, fingerprint))
    assert outcome.short is not None, "the key was not claimed, yet no order holds it"
    raise _out_of_stock(session, outcome.short, dict(quantities)[outcome.short], variants[outcome.short].sku)


def _out_of_stock(session: Session, variant_id: uuid.UUID, quantity: int, sku: str) -> OutOfStock:
    """Names the level as the buyer's storefront shows it (its SKU) and what is left now (one
    read, on this error path only), so a client can offer the rest; the id stays in the
    problem's fields for programs."""
    left = current_stock(session, variant_id)
    return OutOfStock(f"not enough stock of {sku}: {left} left, the cart asks for {quantity}",
                      variant_id=str(variant_id), sku=sku, available=left)


def _valid_items(items: Sequence[CartItem]) -> list[CartItem]:
    merged = _merge_items(items)
    if not merged:
        raise CartInvalid("the cart is empty")
    if len(merged) > MAX_LINES:
        raise CartInvalid(f"a cart holds at most {MAX_LINES} different items")
    for item in merged:
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise CartInvalid(f"quantity of {item.variant_id} must be between 1 and {MAX_QUANTITY}")
    return merged


def _priced(
    request: CheckoutRequest, items: Sequence[CartItem], variants: dict[uuid.UUID, VariantForCheckout],
    storefront: CheckoutStorefront | None,
) -> tuple[list[commission.CartLine], str]:
    """The cart priced from the catalog (never from the client), and its one currency."""
    lines: list[commission.CartLine] = []
    for item in items:
        variant = variants.get(item.variant_id)
        if variant is None or not variant.orderable:
            raise CartInvalid(f"variant {item.variant_id} is not for sale")
        if storefront is not None and variant.product_id not in storefront.listed_product_ids:
            raise CartInvalid(f"variant {item.variant_id} is not listed in storefront {request.storefront_slug}")
        lines.append(commission.CartLine(
            variant_id=item.variant_id, product_id=variant.product_id, seller_id=variant.seller_id,
            quantity=item.quantity, unit_amount=variant.price_amount, currency=variant.currency,
        ))
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise CartInvalid(f"a cart is paid in one currency; this one mixes {', '.join(sorted(currencies))}")
    currency = currencies.pop()
    if storefront is not None and storefront.currency != currency:
        raise CartInvalid(f"storefront {request.storefront_slug} sells in {storefront.currency}, not {currency}")
    return lines, currency


def _shipping(
    session: Session, request: CheckoutRequest, items: Sequence[CartItem],
    variants: dict[uuid.UUID, VariantForCheckout],
) -> dict[uuid.UUID, ShippingOption]:
    """Each seller's chosen shipping, priced by the catalog (catalog.service.shipping). A cart whose
    sellers ship without rates, and that chose none, costs nothing here: no statement."""
    required = {variants[item.variant_id].seller_id for item in items
                if variants[item.variant_id].seller_ships_with_profiles}
    if not required and not request.shipping_choices:
        return {}
    address = request.shipping_address
    parts = seller_parts(variants, [(item.variant_id, item.quantity) for item in items])
    return chosen_shipping(session, parts, request.shipping_choices, required, str(address.get("country", "")),
                           address.get("region"))


def _add_shipping(order: dict[str, Any], sub_orders: dict[uuid.UUID, dict[str, Any]],
                  shipping: dict[uuid.UUID, ShippingOption]) -> None:
    """Shipping is part of its seller's sub-order and, all of it, the seller's: it carries no
    platform fee and no commission (orders.service.refunds gives it back by its own rules)."""
    for seller_id, option in shipping.items():
        sub = sub_orders[seller_id]
        sub["shipping_amount"] = option.amount
        sub["shipping_rate_id"] = option.rate_id
        sub["shipping_method"] = option.name
        sub["amount"] += option.amount
        sub["seller_net_amount"] += option.amount


@lru_cache(maxsize=2)
def _first_read(postgres: bool) -> Built:
    """The checkout's first statement: the key lookup (orders.service.idempotency), then the cart's
    variants (catalog), as rows `lookup columns + variant columns`: at least one row (the
    variants are outer-joined), one per variant found. One round trip instead of two; a replay
    ignores the variants."""
    key = idempotency.lookup(postgres).subquery("found")
    variants = checkout_variants(postgres).subquery("cart")
    stmt = select(*key.c, *variants.c).select_from(key.outerjoin(variants, true()))
    return precompile(stmt) if postgres else stmt


def _replay(session: Session, order_id: uuid.UUID) -> CheckoutResult:
    order = session.get(Order, order_id)
    assert order is not None, "an idempotency key always points at its order"
    return CheckoutResult(order, replayed=True)


class _NotWritten(Exception):
    def __init__(self, outcome: WriteOutcome) -> None:
        self.outcome = outcome


def _write_step_by_step(
    session: Session, lines: Sequence[tuple[uuid.UUID, int]], now: datetime, key: dict[str, Any],
    draft: OrderDraft, settlement: commission.Settlement, cart: Sequence[commission.CartLine],
) -> WriteOutcome:
    """The same write as `checkout_pg.write`, one statement per step, in the same lock order
    (variants by id -> key -> counters by seller), inside a SAVEPOINT so that a cart that does
    not fit or a key a twin committed leaves nothing behind."""
    try:
        with session.begin_nested():
            taken = take_stock(session, lines, now)
            if taken.short is not None:
                raise _NotWritten(WriteOutcome(False, short=taken.short))
            if not idempotency.claim_now(session, key):
                raise _NotWritten(WriteOutcome(False))
            for table, rows in draft.tables():
                if rows:
                    session.execute(insert(table), rows)
            record_attributed_sale(session, settlement=settlement, lines=cart, at=now)
    except _NotWritten as not_written:
        return not_written.outcome
    return WriteOutcome(True, taken.levels)


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """A new order as the rows it writes: every column of each table, keyed by column name."""

    order: dict[str, Any]
    sub_orders: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    commissions: list[dict[str, Any]]
    mails: list[dict[str, Any]]  # the buyer's confirmation with the order's link (kernel.mail's outbox)

    @property
    def id(self) -> uuid.UUID:
        order_id: uuid.UUID = self.order["id"]
        return order_id

    def tables(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """(table, rows) in insertion order: parents first."""
        return [(_TABLES[0], [self.order]), (_TABLES[1], self.sub_orders), (_TABLES[2], self.lines),
                (_TABLES[3], self.commissions), (_TABLES[4], self.mails)]

    def view(self) -> SimpleNamespace:
        """The order for `orders.service.views` (attribute access, like an `Order`)."""
        return SimpleNamespace(
            **self.order, lines=[SimpleNamespace(**row) for row in self.lines],
            sub_orders=[SimpleNamespace(**row) for row in self.sub_orders],
            commissions=[SimpleNamespace(**row) for row in self.commissions],
        )


_TABLES: tuple[Table, ...] = tuple(
    cast(Table, model.__table__) for model in (Order, SubOrder, OrderLine, Commission, OutboxMail))


@lru_cache(maxsize=4)
def _blank(table: Table) -> dict[str, Any]:
    """Every column of `table`, at its constant default (None when it has none or a computed one)."""
    blank: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        blank[column.name] = default.arg if isinstance(default, ColumnDefault) and default.is_scalar else None
    return blank


def _build_order(
    order_id: uuid.UUID, request: CheckoutRequest, currency: str, lines: Sequence[commission.CartLine],
    variants: dict[uuid.UUID, VariantForCheckout], settlement: commission.Settlement, settings: Settings,
    now: datetime, link: order_links.NewLink, shipping: dict[uuid.UUID, ShippingOption] | None = None,
) -> OrderDraft:
    """The order routed into one sub-order per seller (in order of first appearance), its lines
    (in cart order) and every commission above zero."""
    attribution = settlement.attribution
    order = {
        **_blank(_TABLES[0]),
        "id": order_id, "storefront_id": attribution.storefront_id, "affiliate_id": attribution.affiliate_id,
        "attribution_source": attribution.source, "click_id": attribution.click_id,
        "coupon_id": attribution.coupon_id, "coupon_code": request.coupon_code,
        "self_referral": attribution.self_referral, "buyer_email": request.buyer_email,
        "buyer_name": request.buyer_name, "buyer_phone": request.buyer_phone,
        "shipping_address": request.shipping_address, "currency": currency,
        "gross_amount": sum(s.gross for s in settlement.lines),
        "discount_amount": sum(s.discount for s in settlement.lines),
        "shipping_amount": sum(option.amount for option in (shipping or {}).values()),
        "total_amount": sum(s.amount for s in settlement.lines) + sum(o.amount for o in (shipping or {}).values()),
        "platform_fee_amount": sum(s.platform_fee for s in settlement.lines),
        "commission_amount": sum(c.amount for s in settlement.lines for c in s.commissions),
        "refunded_amount": 0, "status": OrderStatus.AWAITING_PAYMENT.value,
        "payment_rail": "stripe" if settings.stripe_enabled else "manual",
        "expires_at": now + timedelta(minutes=settings.unpaid_order_timeout_minutes), "created_at": now,
        "status_token_hash": link.token_hash, "consents": request.consents or None,
    }
    if (organization := request.organization) is not None:
        order["buyer_organization_id"] = organization.organization_id
        order["placed_by_person_id"] = organization.person_id
        if organization.needs_approval(currency, order["total_amount"]):
            order["status"] = OrderStatus.AWAITING_APPROVAL.value
            order["expires_at"] = now + timedelta(hours=settings.approval_hold_hours)
    sub_orders: dict[uuid.UUID, dict[str, Any]] = {}
    order_lines: list[dict[str, Any]] = []
    commissions: list[dict[str, Any]] = []
    for position, (line, share) in enumerate(zip(lines, settlement.lines, strict=True)):
        sub = sub_orders.get(line.seller_id)
        if sub is None:
            sub = sub_orders[line.seller_id] = {
                **_blank(_TABLES[1]),
                "id": new_id(), "order_id": order_id, "seller_id": line.seller_id, "currency": currency,
                "amount": 0, "platform_fee_amount": 0, "commission_amount": 0, "seller_net_amount": 0,
                "refunded_amount": 0, "status": SubOrderStatus.AWAITING_PAYMENT.value,
                "seller_share_released": False, "created_at": now,
            }
        sub["amount"] += share.amount
        sub["platform_fee_amount"] += share.platform_fee
        sub["commission_amount"] += share.commission_total
        sub["seller_net_amount"] += share.seller_net
        variant = variants[line.variant_id]
        line_id = new_id()
        order_lines.append({
            **_blank(_TABLES[2]),
            "id": line_id, "order_id": order_id, "sub_order_id": sub["id"], "position": position,
            "seller_id": line.seller_id, "product_id": line.product_id, "variant_id": line.variant_id,
            "sku": variant.sku, "product_name": variant.product_name, "variant_name": variant.variant_name,
            "unit_amount": line.unit_amount, "quantity": line.quantity, "gross_amount": share.gross,
            "discount_amount": share.discount, "amount": share.amount, "platform_fee_amount": share.platform_fee,
            "seller_net_amount": share.seller_net, "refunded_quantity": 0, "refunded_amount": 0,
            "refunded_platform_fee": 0, "refunded_seller_net": 0,
        })
        for part in share.commissions:
            if part.amount == 0:
                continue
            commissions.append({
                **_blank(_TABLES[3]),
                "id": new_id(), "order_id": order_id, "order_line_id": line_id, "sub_order_id": sub["id"],
                "seller_id": line.seller_id, "affiliate_id": part.affiliate_id, "role": part.role,
                "program_id": part.program_id, "plan_version_id": part.plan_version_id,
                "funded_by": part.funded_by, "currency": currency, "amount": part.amount, "reversed_amount": 0,
                "status": CommissionStatus.AWAITING_PAYMENT.value,
                "holding_period_days": part.holding_period_days, "created_at": now,
            })
    if shipping:
        _add_shipping(order, sub_orders, shipping)
    mails = [order_links.confirmation_mail(order, link, now)]
    return OrderDraft(order, list(sub_orders.values()), order_lines, commissions, mails)
