"""Signed webhooks the order domain sends to sellers (see kernel.outbound)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Seller
from kernel import outbound
from orders.models import Order, SubOrder
from orders.service import buyer_policy
from orders.service.views import PAID_STATES


def notify_seller(session: Session, sub: SubOrder, event_type: str) -> None:
    """The seller hears of its part; the payload's `buyer` is what the seller may see of the buyer
    (orders.service.buyer_policy, as the seller's own system: its full role), logged like any read."""
    url = session.scalar(select(Seller.webhook_url).where(Seller.id == sub.seller_id))
    data: dict[str, Any] = {"sub_order_id": str(sub.id), "order_id": str(sub.order_id), "status": sub.status,
                            "amount": {"amount": sub.amount, "currency": sub.currency}}
    if url:
        order = session.get(Order, sub.order_id)
        assert order is not None
        buyer = buyer_policy.view_and_log(session, order, buyer_policy.Viewer.seller_webhook(sub.seller_id),
                                          seller_id=sub.seller_id, shipping=sub.status in PAID_STATES)
        data["buyer"] = buyer.as_json()
    outbound.emit(session, recipient_type="seller", recipient_id=sub.seller_id, url=url, event_type=event_type,
                  data=data)
