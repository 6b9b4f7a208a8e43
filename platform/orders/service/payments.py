"""Taking the buyer's payment.

Stripe ("separate charges and transfers"): one PaymentIntent per order, created after the
checkout's write commits, outside any transaction (a network call must not hold rows locked),
then stored on the order by a conditional UPDATE (`create_payment`, `record_payment`), with
`transfer_group` = order id and the order id in metadata, and an idempotency key derived from
the order id, so a retried checkout never creates a second PaymentIntent. The signed
`payment_intent.succeeded` webhook marks the order paid; `payment_intent.payment_failed` and
`payment_intent.canceled` release the stock.

A failed attempt leaves a PaymentIntent open at Stripe (`requires_payment_method`): the buyer could
pay it later with another card. So before the order is cancelled on `payment_failed`, the
PaymentIntent is cancelled at Stripe too; if Stripe refuses because the payment went through
meanwhile, the order stays and the `succeeded` event pays it. Money the platform cannot book is
given back at once, in full: a payment that succeeds for an order already cancelled (a race with
expiry; the stock has been released, so the order cannot be revived), a payment whose amount or
currency is not the order's (the order is cancelled too: nothing is booked and its stock returns),
and a second PaymentIntent for an order another one already paid.

Manual rail: an operator marks the order paid (`POST /v1/orders/{id}/mark-paid`).
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kernel.payment_rail import Payment, PaymentRail, PaymentRailError
from kernel.stripe_webhooks import HandlerContext, StripeEventHandler
from orders.errors import OrderNotFound
from orders.models import Order, OrderStatus, Refund
from orders.service.refunds import record_refund_failure
from orders.service.settlement import cancel_unpaid, lock_order, mark_paid

log = structlog.get_logger(__name__)


def payment_needed(order: Any) -> bool:
    """Whether the checkout must still create this order's PaymentIntent (`order`: an `Order` or
    the rows checkout wrote, see orders.service.checkout)."""
    return bool(order.payment_rail == "stripe" and order.payment_id is None
                and order.status == OrderStatus.AWAITING_PAYMENT)


def create_payment(rail: PaymentRail, order: Any) -> Payment | None:
    """Create the order's PaymentIntent. A network call: the caller holds no transaction (no row
    lock waits on Stripe). Its idempotency key is derived from the order id, so a retried
    checkout, or a twin doing the same at the same time, gets the same PaymentIntent back. None
    when the rail fails: the order stands, and a replay of the checkout (same Idempotency-Key)
    tries again."""
    try:
        return rail.create_payment(
            amount=order.total_amount, currency=order.currency, transfer_group=str(order.id),
            metadata={"order_id": str(order.id)}, idempotency_key=f"order-{order.id}-payment",
        )
    except PaymentRailError as exc:
        log.warning("payment_intent_failed", order_id=str(order.id), error=str(exc))
        return None


def record_payment(session: Session, order_id: uuid.UUID, payment: Payment) -> bool:
    """Store the PaymentIntent on its order: one conditional UPDATE (the row is locked only while
    it runs), only while the order awaits payment and has none yet. False when not stored: a
    twin stored it first (the same PaymentIntent: same idempotency key), or the order stopped
    awaiting payment meanwhile (expired; if the buyer pays that PaymentIntent anyway, the
    `succeeded` webhook gives the money back, see `handle_payment_succeeded`)."""
    stored = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.payment_id.is_(None), Order.status == OrderStatus.AWAITING_PAYMENT)
        .values(payment_id=payment.id, payment_client_secret=payment.client_secret)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).first()
    return stored is not None


def _order_for_intent(session: Session, intent: dict[str, Any]) -> uuid.UUID | None:
    order_id = (intent.get("metadata") or {}).get("order_id")
    if order_id:
        try:
            return uuid.UUID(order_id)
        except ValueError:
            return None
    found: uuid.UUID | None = session.scalar(select(Order.id).where(Order.payment_id == intent.get("id")))
    return found


def handle_payment_succeeded(context: HandlerContext, event: dict[str, Any]) -> None:
    session = context.session
    intent = event["data"]["object"]
    order_id = _order_for_intent(session, intent)
    if order_id is None:
        log.warning("payment_for_unknown_order", payment_intent=intent.get("id"))
        return
    try:
        order = lock_order(session, order_id)  # decide on the order as its last writer left it
    except OrderNotFound:
        log.warning("payment_for_unknown_order", payment_intent=intent.get("id"), order_id=str(order_id))
        return
    if order.status == OrderStatus.CANCELLED:
        _give_back(context.rail, order, intent, "paid after cancellation", "late-payment-refund")
        return
    if order.status == OrderStatus.PAID and order.payment_id not in (None, intent.get("id")):
        _give_back(context.rail, order, intent, "a second payment for a paid order",
                   f"duplicate-payment-refund-{intent.get('id')}")
        return
    if order.status == OrderStatus.AWAITING_PAYMENT and not _pays_exactly(order, intent):
        # Never book shares for money that did not arrive as the order says.
        log.error("payment_does_not_match_order", order_id=str(order.id), payment_intent=intent.get("id"),
                  received=intent.get("amount_received"), currency=intent.get("currency"),
                  expected=order.total_amount, expected_currency=order.currency)
        _give_back(context.rail, order, intent, "the payment does not match the order", "mismatched-payment-refund")
        cancel_unpaid(session, order.id, reason="the payment did not match the order; it was refunded")
        return
    mark_paid(session, context.settings, order_id, payment_reference=intent.get("id"))


def _received(intent: dict[str, Any]) -> int:
    """What the buyer paid, in minor units (`amount_received`; `amount` on older event shapes)."""
    received = intent.get("amount_received")
    return int(intent["amount"] if received is None else received)


def _pays_exactly(order: Order, intent: dict[str, Any]) -> bool:
    return _received(intent) == order.total_amount and str(intent.get("currency", "")).upper() == order.currency


def _give_back(rail: PaymentRail, order: Order, intent: dict[str, Any], reason: str, key: str) -> None:
    """Refund everything this PaymentIntent received: money the platform will not book."""
    refund_id = rail.refund(
        payment_id=str(intent["id"]), amount=_received(intent),
        metadata={"order_id": str(order.id), "reason": reason},
        idempotency_key=f"order-{order.id}-{key}",
    )  # a PaymentRailError fails this event's handling; the inbox retries it with the same key
    log.warning("payment_refunded_in_full", order_id=str(order.id), payment_intent=intent["id"], reason=reason,
                refund=refund_id)


def handle_refund_failed(context: HandlerContext, event: dict[str, Any]) -> None:
    """Stripe could not return the money after all (the card was closed, ...): the refund is
    marked failed with Stripe's reason and the money becomes owed to the buyer in the journal
    (`refunds.record_refund_failure`); operators see it in `GET /v1/refunds?status=failed`, pay
    the buyer back another way and settle it (`POST /v1/refunds/{id}/settle`)."""
    stripe_refund = event["data"]["object"]
    session = context.session
    refund = session.scalars(
        select(Refund).where(Refund.rail_refund_id == stripe_refund.get("id")).with_for_update()
    ).one_or_none()
    if refund is None:
        log.warning("failed_refund_unknown", stripe_refund=stripe_refund.get("id"))
        return
    record_refund_failure(session, refund, str(stripe_refund.get("failure_reason") or "failed at Stripe"))
    log.error("refund_failed_at_stripe", refund_id=str(refund.id), order_id=str(refund.order_id),
              reason=refund.failure_reason)


def handle_payment_failed(context: HandlerContext, event: dict[str, Any]) -> None:
    session = context.session
    intent = event["data"]["object"]
    order_id = _order_for_intent(session, intent)
    if order_id is None:
        return
    order = session.get(Order, order_id)
    if order is None or order.status != OrderStatus.AWAITING_PAYMENT:
        return
    try:
        context.rail.cancel_payment(str(intent["id"]), idempotency_key=f"order-{order_id}-cancel")
    except PaymentRailError as exc:
        if exc.retryable:
            raise  # the inbox retries this event
        # Stripe refuses to cancel a PaymentIntent that succeeded or is processing: the buyer
        # paid after all, and the succeeded event will say so. Keep the order.
        log.info("payment_failed_but_not_cancellable", order_id=str(order_id), error=exc.message)
        return
    cancel_unpaid(session, order_id, reason=f"stripe {event['type']}")


def handle_payment_canceled(context: HandlerContext, event: dict[str, Any]) -> None:
    order_id = _order_for_intent(context.session, event["data"]["object"])
    if order_id is not None:
        cancel_unpaid(context.session, order_id, reason=f"stripe {event['type']}")


# The webhook inbox's handlers for payments (the composition root wires them).
STRIPE_HANDLERS: tuple[tuple[str, StripeEventHandler], ...] = (
    ("payment_intent.succeeded", handle_payment_succeeded),
    ("refund.failed", handle_refund_failed),
    ("payment_intent.payment_failed", handle_payment_failed),
    ("payment_intent.canceled", handle_payment_canceled),
)
