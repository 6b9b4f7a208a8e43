"""Taking the buyer's payment.

Stripe ("separate charges and transfers"): one PaymentIntent per order, created after the
checkout transaction commits (never inside it: a network call must not hold stock rows locked),
with `transfer_group` = order id and the order id in metadata, and an idempotency key derived
from the order id, so a retried checkout never creates a second PaymentIntent. The signed
`payment_intent.succeeded` webhook marks the order paid; `payment_intent.payment_failed` and
`payment_intent.canceled` release the stock.

Manual rail: an operator marks the order paid (`POST /v1/orders/{id}/mark-paid`).
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.orders.models import Order, OrderStatus
from marketplace.orders.settlement import cancel_unpaid, mark_paid
from marketplace.payment_rail import PaymentRail, PaymentRailError
from marketplace.stripe_webhooks import on_stripe_event

log = structlog.get_logger(__name__)


def ensure_payment(session: Session, rail: PaymentRail, order: Order) -> None:
    """Create the order's PaymentIntent if it has none yet (safe to call again)."""
    if order.payment_rail != "stripe" or order.payment_id is not None or order.status != OrderStatus.AWAITING_PAYMENT:
        return
    try:
        payment = rail.create_payment(
            amount=order.total_amount, currency=order.currency, transfer_group=str(order.id),
            metadata={"order_id": str(order.id)}, idempotency_key=f"order-{order.id}-payment",
        )
    except PaymentRailError as exc:
        # The order stands; a replay of the checkout (same Idempotency-Key) tries again.
        log.warning("payment_intent_failed", order_id=str(order.id), error=str(exc))
        return
    order.payment_id = payment.id
    order.payment_client_secret = payment.client_secret


def _order_for_intent(session: Session, intent: dict[str, Any]) -> uuid.UUID | None:
    order_id = (intent.get("metadata") or {}).get("order_id")
    if order_id:
        try:
            return uuid.UUID(order_id)
        except ValueError:
            return None
    found: uuid.UUID | None = session.scalar(select(Order.id).where(Order.payment_id == intent.get("id")))
    return found


@on_stripe_event("payment_intent.succeeded")
def handle_payment_succeeded(session: Session, event: dict[str, Any]) -> None:
    intent = event["data"]["object"]
    order_id = _order_for_intent(session, intent)
    if order_id is None:
        log.warning("payment_for_unknown_order", payment_intent=intent.get("id"))
        return
    mark_paid(session, order_id, payment_reference=intent.get("id"))


@on_stripe_event("payment_intent.payment_failed")
@on_stripe_event("payment_intent.canceled")
def handle_payment_failed(session: Session, event: dict[str, Any]) -> None:
    intent = event["data"]["object"]
    order_id = _order_for_intent(session, intent)
    if order_id is not None:
        cancel_unpaid(session, order_id, reason=f"stripe {event['type']}")
