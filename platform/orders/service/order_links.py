"""Every order's secret link: the buyer's way back to the order without an account.

- At checkout a random token is made in Python (`new_link`); the order row keeps only its SHA-256
  (`orders.status_token_hash`, unique), and the token travels in the confirmation mail (an outbox
  row written in the checkout's own statement: `confirmation_mail`) and in the response that
  placed the order (never in a replay: only the hash is stored).
- The link: `{public_base_url}/s/{slug}/orders/{token}` for a storefront's order (the storefront
  renders it), `{public_base_url}/order-status/{token}` for a direct checkout. The data behind
  either is `GET /v1/order-status/{token}`.
- Holding the link lets one read the order and WITHDRAW consents (`withdraw_consents`), never
  give them: the storefront's server saw the token too, and must not consent for the buyer.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.models import Storefront
from catalog.models import Seller
from kernel import consents as purposes
from kernel import mail
from kernel.locking import lock
from kernel.money import format_minor
from kernel.schemas import money
from kernel.settings import Settings
from orders.errors import OrderLinkNotFound
from orders.models import Order, OrderConsentChange, Refund
from orders.schemas import (
    OrderPartOut,
    OrderStatusBuyerOut,
    OrderStatusOut,
    ShipmentOut,
    StorefrontRefOut,
)
from orders.service import views

TOKEN_BYTES = 24  # 192 bits: not guessable, and short enough for a link


@dataclass(frozen=True, slots=True)
class NewLink:
    token: str
    token_hash: str
    url: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_url(settings: Settings, token: str, storefront_slug: str | None) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/s/{storefront_slug}/orders/{token}" if storefront_slug else f"{base}/order-status/{token}"


def new_link(settings: Settings, storefront_slug: str | None) -> NewLink:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return NewLink(token, hash_token(token), link_url(settings, token, storefront_slug))


def confirmation_mail(order: dict[str, Any], link: NewLink, now: datetime) -> dict[str, Any]:
    """The buyer's confirmation with the order's link, as the outbox row the checkout writes with
    the order (`kernel.mail.outbox_row`)."""
    total = format_minor(order["total_amount"], order["currency"])
    body = (
        f"Hello {order['buyer_name']},\n\n"
        f"thank you for your order {order['id']} ({total}).\n\n"
        f"Follow it, see how to pay and what each seller has shipped, and withdraw a consent you gave, here:\n"
        f"{link.url}\n\n"
        "Keep this link to yourself: whoever has it can see the order.\n"
    )
    return mail.outbox_row(order["buyer_email"], f"Your order {str(order['id'])[:8]}", body, kind="order_link",
                           now=now)


def order_by_token(session: Session, token: str, *, for_update: bool = False) -> Order:
    """The order this link token opens; an unknown token (or a malformed one) is a 404."""
    if not 16 <= len(token) <= 128:
        raise OrderLinkNotFound("no order has this link")
    stmt = select(Order).where(Order.status_token_hash == hash_token(token))
    found = (lock(session, stmt, reread=True).scalars() if for_update else session.scalars(stmt)).one_or_none()
    if found is None:
        raise OrderLinkNotFound("no order has this link")
    return found


def current_consents(order: Order) -> dict[str, bool]:
    return purposes.resolved(order.consents)


def withdraw_consents(session: Session, token: str, names: Sequence[str], *, now: datetime) -> Order:
    """Withdraw the buyer's consent for `names` on the order the link opens. Withdrawing what was
    never given (or already withdrawn) changes nothing and records nothing."""
    purposes.check_names(names)
    order = order_by_token(session, token, for_update=True)
    answers = dict(order.consents or {})
    now_given = purposes.resolved(answers)
    for name in dict.fromkeys(names):
        if not now_given[name]:
            continue
        answers[name] = False
        session.add(OrderConsentChange(order_id=order.id, purpose=name, granted=False, source="order_link",
                                       created_at=now))
    if answers != (order.consents or {}):
        order.consents = answers
        session.flush()
    return order


def status_view(session: Session, order: Order) -> OrderStatusOut:
    """The order as the buyer follows it: every seller's part with its lines and shipment, the
    refunds, the payment instructions, the buyer's own details and consents."""
    c = order.currency
    sellers = {row.id: row.name for row in session.execute(
        select(Seller.id, Seller.name).where(Seller.id.in_({s.seller_id for s in order.sub_orders})))}
    storefront = None
    if order.storefront_id is not None:
        row = session.execute(
            select(Storefront.slug, Storefront.name).where(Storefront.id == order.storefront_id)).one_or_none()
        storefront = StorefrontRefOut(slug=row.slug, name=row.name) if row is not None else None
    refunds = session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.created_at, Refund.id))
    parts = [
        OrderPartOut(
            id=s.id, seller_id=s.seller_id, seller_name=sellers.get(s.seller_id, ""), status=s.status,
            amount=money(s.amount, c), refunded=money(s.refunded_amount, c),
            lines=[views.line_out(line, c) for line in s.lines],
            shipment=ShipmentOut(carrier=s.carrier, tracking_number=s.tracking_number, shipped_at=s.shipped_at,
                                 delivered_at=s.delivered_at) if s.shipped_at or s.tracking_number else None,
            reject_reason=s.reject_reason,
        )
        for s in order.sub_orders
    ]
    address = {k: (str(v) if v is not None else None) for k, v in order.shipping_address.items()}
    return OrderStatusOut(
        id=order.id, status=order.status, currency=c, storefront=storefront,
        subtotal=money(order.gross_amount, c), discount=money(order.discount_amount, c),
        total=money(order.total_amount, c), refunded=money(order.refunded_amount, c),
        payment=views.payment_out(order), parts=parts, refunds=[views.refund_out(r) for r in refunds],
        buyer=OrderStatusBuyerOut(name=order.buyer_name, email=order.buyer_email, phone=order.buyer_phone,
                                  shipping_address=address),
        consents=current_consents(order), created_at=order.created_at, expires_at=order.expires_at,
        paid_at=order.paid_at, cancelled_at=order.cancelled_at, cancel_reason=order.cancel_reason,
    )
