"""Celery tasks of the order domain (thin: each opens a unit of work and calls the service).

Plain functions, listed in `TASKS` and `BEAT`: the composition root registers them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import select

from kernel.clock import clock
from kernel.payment_rail import PaymentRailError
from kernel.runtime import get_runtime
from kernel.tasking import BeatSpec, TaskSpec, enqueue, task_session
from orders.models import Order, Refund
from orders.service import buyer_orgs, health, refunds, settlement

log = structlog.get_logger(__name__)

SEND_REFUND = "orders.send_refund"


def expire_unpaid() -> int:
    """Cancel orders left unpaid past their timeout and give their stock back."""
    with task_session() as session:
        order_ids = settlement.expired_unpaid_order_ids(session)
    cancelled = 0
    for order_id in order_ids:
        with task_session() as session:  # one order per transaction: a failure spoils only itself
            order = session.get(Order, order_id)
            if order is not None and order.payment_id is not None and order.payment_rail == "stripe":
                try:
                    get_runtime().rail.cancel_payment(order.payment_id, idempotency_key=f"order-{order_id}-cancel")
                except PaymentRailError as exc:
                    log.warning("cancel_payment_failed", order_id=str(order_id), error=str(exc))
                    continue  # it may have been paid meanwhile; the webhook decides
            cancelled += settlement.cancel_unpaid(session, order_id, reason="payment timeout")
    return cancelled


def expire_approval_holds() -> int:
    """Cancel buyer organizations' orders that waited for an approver past their hold, and give
    their stock back (orders.service.buyer_orgs)."""
    with task_session() as session:
        order_ids = buyer_orgs.expired_hold_ids(session)
    expired = 0
    for order_id in order_ids:
        with task_session() as session:  # one order per transaction
            expired += buyer_orgs.expire_hold(session, order_id)
    return expired


def release_matured() -> dict[str, int]:
    """Move shares whose holding period passed from pending to available."""
    with task_session() as session:
        sellers, commissions = settlement.release_matured(session)
    return {"seller_shares": sellers, "commissions": commissions}


def send_refund(self: object, refund_id: str) -> str:
    """Send a recorded refund through Stripe. The idempotency key is the refund id, so a retry
    (or a duplicate delivery of this task) refunds once."""
    with task_session() as session:
        refund = session.get(Refund, uuid.UUID(refund_id), with_for_update=True)
        if refund is None or refund.status == "sent":
            return "skipped"
        order = session.get(Order, refund.order_id)
        assert order is not None and order.payment_id is not None
        try:
            refund.rail_refund_id = get_runtime().rail.refund(
                payment_id=order.payment_id, amount=refund.amount, metadata={"refund_id": refund_id},
                idempotency_key=f"refund-{refund_id}",
            )
            refund.status = "sent"
        except PaymentRailError as exc:
            if not exc.retryable:
                refunds.record_refund_failure(session, refund, f"{exc.code or 'refused'}: {exc.message}")
            log.warning("refund_failed", refund_id=refund_id, error=str(exc), retryable=exc.retryable)
            if exc.retryable and not self.request.is_eager:  # type: ignore[attr-defined]
                raise self.retry(countdown=30) from exc  # type: ignore[attr-defined]
        return refund.status


def retry_unsent_refunds() -> int:
    """Beat safety net: Stripe refunds recorded but not sent (a lost task, a broker outage)."""
    with task_session() as session:
        stale = clock.now() - timedelta(minutes=5)
        refund_ids = list(session.scalars(
            select(Refund.id).join(Order, Order.id == Refund.order_id).where(
                Refund.status == "recorded", Order.payment_rail == "stripe", Refund.created_at <= stale,
            ).limit(200)
        ))
    for refund_id in refund_ids:
        enqueue(SEND_REFUND, str(refund_id))
    return len(refund_ids)


def evaluate_partner_health() -> int:
    """Open the partner-health alarms the rollups show (orders.service.health); returns how many
    opened now (an alarm already open is not opened again)."""
    with task_session() as session:
        opened = [f"{a.rule}:{a.affiliate_id}:{a.currency}"
                  for a in health.evaluate(session, get_runtime().settings.operator_webhook_url)]
    if opened:
        log.info("partner_alarms_opened", alarms=opened)
    return len(opened)


TASKS = (
    TaskSpec("orders.expire_unpaid", expire_unpaid),
    TaskSpec("orders.expire_approval_holds", expire_approval_holds),
    TaskSpec("orders.release_matured", release_matured),
    TaskSpec(SEND_REFUND, send_refund, bind=True, max_retries=10),
    TaskSpec("orders.retry_unsent_refunds", retry_unsent_refunds),
    TaskSpec("orders.evaluate_partner_health", evaluate_partner_health),
)
BEAT = (
    BeatSpec("orders-retry-unsent-refunds", "orders.retry_unsent_refunds", 300.0),
    BeatSpec("orders-expire-unpaid", "orders.expire_unpaid", 60.0),
    BeatSpec("orders-expire-approval-holds", "orders.expire_approval_holds", 300.0),
    BeatSpec("orders-release-matured", "orders.release_matured", 300.0),
    BeatSpec("orders-evaluate-partner-health", "orders.evaluate_partner_health", 3600.0),
)
