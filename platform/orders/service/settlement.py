"""Payment, cancellation and the holding period: every money movement of an order in the journal.

Journal transactions written here (kind -> reference):
- `order.paid` -> order: debits platform clearing with what the buyer paid and credits every
  seller's net (per sub-order), every commission (per commission) to `pending`, and the platform
  fee. This is the design's worked example, to the minor unit.
- `seller_share.available` -> sub-order, `commission.available` -> commission: pending ->
  available when the holding period has passed.
Refunds are in refunds.py. Each (kind, reference) is posted at most once (a UNIQUE constraint).
The growth rollup (orders.service.rollups) counts the payment in the same transaction.

Locks: a state change locks its order row first (`FOR UPDATE`), so payment, expiry, fulfilment
and refunds of one order never interleave; the release job takes rows with `SKIP LOCKED` so
several workers share the work without waiting on each other. Which rows after which: the
global lock order, kernel.locking. Status moves: orders.service.states.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.service import count_sales
from affiliates.service.commission import counted_sale_amounts
from catalog.models import Product
from catalog.service import release_stock
from kernel import ledger, locking
from kernel.clock import clock
from kernel.ledger import AFFILIATE, AVAILABLE, CLEARING, FEES, PENDING, PLATFORM, SELLER, Posting
from kernel.settings import Settings
from orders.errors import InvalidTransition, OrderNotFound
from orders.models import (
    Commission,
    CommissionStatus,
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    SubOrder,
    SubOrderStatus,
)
from orders.service import invoices, rollups
from orders.service.notifications import notify_seller
from orders.service.states import COMMISSIONS, SUB_ORDERS, move_commission, move_order, move_sub_order


def lock_order(session: Session, order_id: uuid.UUID) -> Order:
    """Lock the order row, and read it (and its eagerly loaded lines, sub-orders and commissions)
    again: a request that read them before taking the lock must decide on what the previous
    holder of the lock committed, not on its own earlier copy (SQLAlchemy keeps loaded objects
    as they are unless told to overwrite them)."""
    order = locking.lock(session, select(Order).where(Order.id == order_id), reread=True).scalar_one_or_none()
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def mark_paid(
    session: Session, settings: Settings, order_id: uuid.UUID, *, payment_reference: str | None = None,
    invoice_reference: str | None = None,
) -> bool:
    """Record the buyer's payment. Idempotent: paying a paid order changes nothing (False).
    `invoice_reference`: what the operator noted of an invoice's payment (a bank transfer's)."""
    order = lock_order(session, order_id)
    if order.status == OrderStatus.PAID:
        return False
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise InvalidTransition(f"order {order.id} is {order.status}; it cannot be paid")
    now = clock.now()
    move_order(order, OrderStatus.PAID)
    order.paid_at = now
    if payment_reference and order.payment_id is None:
        order.payment_id = payment_reference
    _move_shares(session, order, SubOrderStatus.PAID, CommissionStatus.PENDING)
    invoices.settle(session, order, invoice_reference)  # an order on account: its receivable is collected
    ledger.post(
        session, kind="order.paid", reference_type="order", reference_id=order.id, currency=order.currency,
        order_id=order.id, postings=paid_postings(order), memo=f"order {order.id} paid",
    )
    rollups.record_paid(session, order)  # the growth rollup, once: this order was not paid before
    _deliver_unshipped(session, settings, order)
    # Sellers hear of an order once it is paid: unpaid carts are not theirs to act on.
    for sub in order.sub_orders:
        notify_seller(session, sub, "order.created")
    return True


def _deliver_unshipped(session: Session, settings: Settings, order: Order) -> None:
    """A sub-order with nothing to ship (software levels, services: `requires_shipping` false on
    every product of it) is delivered when paid, so its holding periods start now; waiting for
    a delivery that never comes would keep the seller's and partners' money pending forever."""
    product_ids = {line.product_id for line in order.lines}
    shipped = set(session.scalars(
        select(Product.id).where(Product.id.in_(product_ids), Product.requires_shipping.is_(True))
    ))
    now = clock.now()
    for sub in order.sub_orders:
        if any(line.product_id in shipped for line in order.lines if line.sub_order_id == sub.id):
            continue
        move_sub_order(sub, SubOrderStatus.DELIVERED)
        sub.delivered_at = now
        start_holding_period(session, settings, sub)


def paid_postings(order: Order) -> list[Posting]:
    postings = [Posting(PLATFORM, None, CLEARING, -order.total_amount, "order", order.id)]
    postings += [
        Posting(SELLER, sub.seller_id, PENDING, sub.seller_net_amount, "sub_order", sub.id)
        for sub in order.sub_orders
    ]
    postings += [
        Posting(AFFILIATE, c.affiliate_id, PENDING, c.amount, "commission", c.id) for c in order.commissions
    ]
    postings.append(Posting(PLATFORM, None, FEES, order.platform_fee_amount, "order", order.id))
    return postings


def cancel_unpaid(session: Session, order_id: uuid.UUID, reason: str) -> bool:
    """Cancel an order that was never paid (awaiting payment, or a buyer organization's order
    awaiting approval) and give its stock back. Idempotent."""
    order = lock_order(session, order_id)
    if order.status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.AWAITING_APPROVAL):
        return False
    move_order(order, OrderStatus.CANCELLED)
    order.cancelled_at = clock.now()
    order.cancel_reason = reason
    _move_shares(session, order, SubOrderStatus.CANCELLED, CommissionStatus.CANCELLED)
    invoices.void(session, order)
    for line in sorted(order.lines, key=lambda item: item.variant_id):
        release_stock(session, line.variant_id, line.quantity)
    _uncount_attributed_sale(session, order)
    return True


def _move_shares(
    session: Session, order: Order, sub_status: SubOrderStatus, commission_status: CommissionStatus
) -> None:
    """Every sub-order and commission of the (locked) order moves with it: one guarded UPDATE per
    table, sub-orders before commissions, which also takes their row locks in the global order
    before the stock and counters a cancellation gives back (kernel.locking)."""
    SUB_ORDERS.move_all(session, sub_status, SubOrder.order_id == order.id, expected=len(order.sub_orders))
    COMMISSIONS.move_all(session, commission_status, Commission.order_id == order.id,
                         expected=len(order.commissions))


def _uncount_attributed_sale(session: Session, order: Order) -> None:
    """Checkout counted the order in the affiliate's month-to-date sales (the volume tiers); an
    order never paid must not lift an affiliate into a higher tier, so take it back out."""
    if order.affiliate_id is None or order.self_referral:
        return
    roles: dict[uuid.UUID, list[str]] = {}
    for commission in order.commissions:
        roles.setdefault(commission.order_line_id, []).append(commission.role)
    amounts = counted_sale_amounts((line.seller_id, line.amount, roles.get(line.id, [])) for line in order.lines)
    if amounts:
        count_sales(session, order.affiliate_id, order.currency, order.created_at, amounts, sign=-1)


def expired_unpaid_order_ids(session: Session, limit: int = 500) -> list[uuid.UUID]:
    """Unpaid orders past their timeout; not an order on account (orders.service.invoices), which
    the buyer pays by its due date, and which stays listed as overdue after it."""
    return list(session.scalars(
        select(Order.id).where(
            Order.status == OrderStatus.AWAITING_PAYMENT, Order.expires_at <= clock.now(),
            ~select(Invoice.id).where(Invoice.order_id == Order.id).exists(),
        ).order_by(Order.expires_at).limit(limit)
    ))


def record_invoice_payment(
    session: Session, settings: Settings, invoice_id: uuid.UUID, amount: int, currency: str, reference: str,
) -> Invoice:
    """Operator: the buyer paid an invoice (in full, in its currency: orders.service.invoices).
    Exactly once: the order's row lock orders two recordings, and the second finds it paid (409)."""
    invoice = invoices.get(session, invoice_id)
    invoices.check_payment(invoice, amount, currency)
    if not mark_paid(session, settings, invoice.order_id, invoice_reference=reference):
        raise InvalidTransition(f"invoice {invoice.id} was paid already")
    session.refresh(invoice)
    if invoice.status != InvoiceStatus.PAID:
        raise InvalidTransition(f"invoice {invoice.id} is {invoice.status}; it cannot be paid")
    return invoice


def start_holding_period(session: Session, settings: Settings, sub: SubOrder) -> None:
    """Delivery starts the clocks: the platform's return window for the seller's share, and for
    each commission the holding period its program had when the order was placed."""
    now = clock.now()
    sub.seller_share_available_at = now + timedelta(days=settings.seller_return_window_days)
    for commission in session.scalars(select(Commission).where(Commission.sub_order_id == sub.id)):
        if commission.status == CommissionStatus.PENDING:
            commission.available_at = now + timedelta(days=commission.holding_period_days)


def release_matured(session: Session, limit: int = 500) -> tuple[int, int]:
    """Move every share whose holding period has passed from pending to available.

    Returns (seller shares released, commissions released). Rows are claimed with
    `FOR UPDATE SKIP LOCKED`: two workers running this at once release disjoint rows.
    """
    now = clock.now()
    subs = list(locking.lock(session, select(SubOrder).where(
        SubOrder.seller_share_available_at <= now, SubOrder.seller_share_released.is_(False)
    ).limit(limit), skip_locked=True).scalars())
    for sub in subs:
        remaining = sub.seller_net_amount - _refunded_seller_net(sub)
        sub.seller_share_released = True
        if remaining != 0:
            ledger.post(
                session, kind="seller_share.available", reference_type="sub_order", reference_id=sub.id,
                currency=sub.currency, order_id=sub.order_id, memo="return window passed",
                postings=[Posting(SELLER, sub.seller_id, PENDING, -remaining, "sub_order", sub.id),
                          Posting(SELLER, sub.seller_id, AVAILABLE, remaining, "sub_order", sub.id)],
            )
    commissions = list(locking.lock(session, select(Commission).where(
        Commission.status == CommissionStatus.PENDING, Commission.available_at <= now
    ).limit(limit), skip_locked=True).scalars())
    for commission in commissions:
        remaining = commission.amount - commission.reversed_amount
        move_commission(commission, CommissionStatus.AVAILABLE)
        if remaining != 0:
            ledger.post(
                session, kind="commission.available", reference_type="commission", reference_id=commission.id,
                currency=commission.currency, order_id=commission.order_id, memo="holding period passed",
                postings=[
                    Posting(AFFILIATE, commission.affiliate_id, PENDING, -remaining, "commission", commission.id),
                    Posting(AFFILIATE, commission.affiliate_id, AVAILABLE, remaining, "commission", commission.id),
                ],
            )
    return len(subs), len(commissions)


def _refunded_seller_net(sub: SubOrder) -> int:
    """What refunds took of the seller's share: its lines' nets and its shipping."""
    return sum(line.refunded_seller_net for line in sub.lines) + sub.refunded_shipping_amount

