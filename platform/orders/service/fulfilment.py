"""Sellers move their sub-orders through accepted -> shipped -> delivered, or reject them.

Every change locks the order row first (the same lock payment and refunds take), then the
sub-order (the global lock order, kernel.locking), and emits a signed `sub_order.<status>`
webhook to the seller after commit. The moves a sub-order can make at all are in
orders.service.states; `TRANSITIONS` here is the part of them a seller makes.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel import locking
from kernel.auth import Principal
from kernel.clock import clock
from kernel.settings import Settings
from orders.errors import InvalidTransition, SubOrderNotFound
from orders.models import SubOrder, SubOrderStatus
from orders.service.notifications import notify_seller
from orders.service.refunds import reject_sub_order
from orders.service.settlement import lock_order, start_holding_period
from orders.service.states import move_sub_order

# The only moves a seller can make, and from where (each one allowed by orders.service.states).
TRANSITIONS: dict[str, tuple[SubOrderStatus, ...]] = {
    "accept": (SubOrderStatus.PAID,),
    "ship": (SubOrderStatus.PAID, SubOrderStatus.ACCEPTED),
    "deliver": (SubOrderStatus.ACCEPTED, SubOrderStatus.SHIPPED),
}


def get_sub_order(session: Session, principal: Principal, sub_order_id: uuid.UUID) -> SubOrder:
    sub = session.get(SubOrder, sub_order_id)
    if sub is None or not (principal.is_operator or sub.seller_id == principal.subject_id):
        raise SubOrderNotFound(f"no sub-order {sub_order_id}")
    return sub


def _locked_sub_order(session: Session, principal: Principal, sub_order_id: uuid.UUID) -> SubOrder:
    sub = get_sub_order(session, principal, sub_order_id)
    lock_order(session, sub.order_id)
    # Locked too, and read again: delivery changes its commissions' clocks, which the release job
    # and payouts lock without the order (sub-orders before commissions, kernel.locking).
    locking.lock(session, select(SubOrder).where(SubOrder.id == sub.id), reread=True)
    return sub


def advance(
    session: Session, settings: Settings, principal: Principal, sub_order_id: uuid.UUID, action: str, *,
    tracking_number: str | None = None, carrier: str | None = None,
) -> SubOrder:
    sub = _locked_sub_order(session, principal, sub_order_id)
    allowed = TRANSITIONS[action]
    if sub.status not in allowed:
        raise InvalidTransition(
            f"cannot {action} a sub-order that is {sub.status} (allowed from: {', '.join(allowed)})"
        )
    if all(line.refunded_quantity >= line.quantity for line in sub.lines):
        # Refunds keep the sub-order's status (they may be partial); one refunded in full has
        # nothing left to send: goods must not go out for an order the buyer got back.
        raise InvalidTransition(f"cannot {action} sub-order {sub.id}: every line of it was refunded")
    now = clock.now()
    if action == "accept":
        move_sub_order(sub, SubOrderStatus.ACCEPTED)
    elif action == "ship":
        move_sub_order(sub, SubOrderStatus.SHIPPED)
        sub.shipped_at = now
        sub.tracking_number = tracking_number
        sub.carrier = carrier
    else:
        move_sub_order(sub, SubOrderStatus.DELIVERED)
        sub.delivered_at = now
        start_holding_period(session, settings, sub)
    session.flush()
    notify_seller(session, sub, f"sub_order.{sub.status}")
    return sub


def reject(session: Session, principal: Principal, sub_order_id: uuid.UUID, reason: str) -> SubOrder:
    sub = _locked_sub_order(session, principal, sub_order_id)
    reject_sub_order(session, sub, reason)
    session.flush()
    notify_seller(session, sub, "sub_order.rejected")
    return sub

