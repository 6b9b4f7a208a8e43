"""Rendering orders for each audience; the one place that decides who sees which fields."""

from __future__ import annotations

import orjson

from kernel.schemas import money
from orders.models import Commission, Order, OrderLine, Refund, SubOrder
from orders.schemas import (
    BuyerFieldsOut,
    CommissionOut,
    OrderBuyerOut,
    OrderLineOut,
    OrderOperatorOut,
    PaymentOut,
    RefundOut,
    ShippingOut,
    SubOrderBuyerOut,
    SubOrderSellerOut,
    SubOrderShareOut,
)
from orders.service.buyer_policy import BuyerView

PAID_STATES = {"paid", "accepted", "shipped", "delivered"}


def line_out(line: OrderLine, currency: str) -> OrderLineOut:
    return OrderLineOut(
        id=line.id, sub_order_id=line.sub_order_id, product_id=line.product_id, variant_id=line.variant_id,
        sku=line.sku, product_name=line.product_name, variant_name=line.variant_name, quantity=line.quantity,
        unit_price=money(line.unit_amount, currency), amount=money(line.amount, currency),
        discount=money(line.discount_amount, currency), refunded_quantity=line.refunded_quantity,
    )


def _payment_fields(order: Order) -> dict[str, object]:
    if order.payment_rail == "stripe":
        instructions = (
            "Confirm the PaymentIntent with Stripe.js using client_secret."
            if order.payment_client_secret else
            "The payment could not be prepared yet; retry the checkout with the same Idempotency-Key."
        )
        return {
            "rail": "stripe", "status": "paid" if order.status == "paid" else order.status,
            "payment_intent_id": order.payment_id, "client_secret": order.payment_client_secret,
            "instructions": instructions,
        }
    return {
        "rail": "manual", "status": order.status, "payment_intent_id": None, "client_secret": None,
        "instructions": f"Pay {order.total_amount} minor units of {order.currency} by bank transfer with "
                        f"reference {order.id}; the operator marks the order paid when it arrives.",
    }


def payment_out(order: Order) -> PaymentOut:
    return PaymentOut.model_validate(_payment_fields(order))


def _buyer_fields(order: Order) -> dict[str, object]:
    c = order.currency
    return {
        "id": order.id, "status": order.status, "currency": c,
        "subtotal": money(order.gross_amount, c), "discount": money(order.discount_amount, c),
        "shipping": money(order.shipping_amount, c), "total": money(order.total_amount, c),
        "refunded": money(order.refunded_amount, c),
        "lines": [line_out(line, c) for line in order.lines],
        "sub_orders": [
            SubOrderBuyerOut(id=s.id, seller_id=s.seller_id, status=s.status, amount=money(s.amount, c),
                             shipping=money(s.shipping_amount, c), shipping_method=s.shipping_method,
                             tracking_number=s.tracking_number, carrier=s.carrier)
            for s in order.sub_orders
        ],
        "payment": payment_out(order), "expires_at": order.expires_at, "created_at": order.created_at,
    }


def order_for_buyer(order: Order, link: tuple[str, str] | None = None) -> OrderBuyerOut:
    """`link`: the new order's (token, url), shown only in the response that placed it."""
    token, url = link or (None, None)
    return OrderBuyerOut.model_validate({**_buyer_fields(order), "status_token": token, "status_url": url})


def order_for_buyer_json(order: Order, link: tuple[str, str] | None = None) -> bytes:
    """`order_for_buyer(order).model_dump_json()`, byte for byte, rendered from plain dicts with
    orjson (the checkout's response: nested pydantic models cost more than the rest of the
    rendering). Same keys in the same order, money as integer minor units, UTC times with `Z`;
    tests/orders/test_views_json.py keeps the two equal."""
    c = order.currency
    return orjson.dumps({
        "id": order.id, "status": order.status, "currency": c,
        "subtotal": {"amount": order.gross_amount, "currency": c},
        "discount": {"amount": order.discount_amount, "currency": c},
        "shipping": {"amount": order.shipping_amount, "currency": c},
        "total": {"amount": order.total_amount, "currency": c},
        "refunded": {"amount": order.refunded_amount, "currency": c},
        "lines": [
            {"id": line.id, "sub_order_id": line.sub_order_id, "product_id": line.product_id,
             "variant_id": line.variant_id, "sku": line.sku, "product_name": line.product_name,
             "variant_name": line.variant_name, "quantity": line.quantity,
             "unit_price": {"amount": line.unit_amount, "currency": c},
             "amount": {"amount": line.amount, "currency": c},
             "discount": {"amount": line.discount_amount, "currency": c},
             "refunded_quantity": line.refunded_quantity}
            for line in order.lines
        ],
        "sub_orders": [
            {"id": s.id, "seller_id": s.seller_id, "status": s.status, "amount": {"amount": s.amount, "currency": c},
             "shipping": {"amount": s.shipping_amount, "currency": c}, "shipping_method": s.shipping_method,
             "tracking_number": s.tracking_number, "carrier": s.carrier}
            for s in order.sub_orders
        ],
        "payment": _payment_fields(order), "expires_at": order.expires_at, "created_at": order.created_at,
        "status_token": link[0] if link else None, "status_url": link[1] if link else None,
    }, option=orjson.OPT_UTC_Z)


def commission_out(c: Commission) -> CommissionOut:
    return CommissionOut(
        id=c.id, order_id=c.order_id, order_line_id=c.order_line_id, affiliate_id=c.affiliate_id, role=c.role,
        program_id=c.program_id, plan_version_id=c.plan_version_id, amount=money(c.amount, c.currency),
        reversed=money(c.reversed_amount, c.currency), status=c.status, available_at=c.available_at,
        created_at=c.created_at,
    )


def order_for_operator(order: Order, buyer: BuyerView) -> OrderOperatorOut:
    """`buyer`: what the operator's role may see of the buyer (orders.service.buyer_policy)."""
    c = order.currency
    return OrderOperatorOut.model_validate({
        **_buyer_fields(order),
        "buyer_email": buyer.email or "", "buyer_name": buyer.name or "", "buyer": buyer.as_json(),
        "storefront_id": order.storefront_id, "affiliate_id": order.affiliate_id,
        "attribution_source": order.attribution_source, "self_referral": order.self_referral,
        "platform_fee": money(order.platform_fee_amount, c), "commission_total": money(order.commission_amount, c),
        "shares": [
            SubOrderShareOut(
                id=s.id, seller_id=s.seller_id, status=s.status, amount=money(s.amount, c),
                platform_fee=money(s.platform_fee_amount, c), commission=money(s.commission_amount, c),
                seller_net=money(s.seller_net_amount, c), refunded=money(s.refunded_amount, c),
                shipping=money(s.shipping_amount, c), refunded_shipping=money(s.refunded_shipping_amount, c),
            )
            for s in order.sub_orders
        ],
        "commissions": [commission_out(cm) for cm in order.commissions],
    })


def sub_order_for_seller(sub: SubOrder, buyer: BuyerView) -> SubOrderSellerOut:
    """`buyer`: what the viewer may see of the buyer (orders.service.buyer_policy); the address to
    ship to once the part is paid."""
    c = sub.currency
    address = buyer.shipping_address
    return SubOrderSellerOut(
        id=sub.id, order_id=sub.order_id, status=sub.status, amount=money(sub.amount, c),
        platform_fee=money(sub.platform_fee_amount, c), commission=money(sub.commission_amount, c),
        seller_net=money(sub.seller_net_amount, c), refunded=money(sub.refunded_amount, c),
        shipping=money(sub.shipping_amount, c), shipping_method=sub.shipping_method,
        lines=[line_out(line, c) for line in sub.lines],
        ship_to=ShippingOut(name=buyer.name or "", address=address)
        if sub.status in PAID_STATES and address is not None else None,
        buyer=BuyerFieldsOut.model_validate(buyer.as_json()),
        tracking_number=sub.tracking_number, carrier=sub.carrier, shipped_at=sub.shipped_at,
        delivered_at=sub.delivered_at, created_at=sub.created_at,
    )


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(
        id=refund.id, order_id=refund.order_id, sub_order_id=refund.sub_order_id,
        amount=money(refund.amount, refund.currency), shipping=money(refund.shipping_amount, refund.currency),
        reason=refund.reason, requested_by=refund.requested_by,
        lines=refund.lines, status=refund.status, failure_reason=refund.failure_reason, created_at=refund.created_at,
    )
