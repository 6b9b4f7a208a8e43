"""Signed webhooks the order domain sends to sellers (see kernel.outbound)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Seller
from kernel import outbound
from orders.models import SubOrder


def notify_seller(session: Session, sub: SubOrder, event_type: str) -> None:
    url = session.scalar(select(Seller.webhook_url).where(Seller.id == sub.seller_id))
    outbound.emit(
        session, recipient_type="seller", recipient_id=sub.seller_id, url=url, event_type=event_type,
        data={"sub_order_id": str(sub.id), "order_id": str(sub.order_id), "status": sub.status,
              "amount": {"amount": sub.amount, "currency": sub.currency}},
    )
