"""The checkout renders its response with `views.order_for_buyer_json` (orjson from plain dicts);
it must be the very bytes `OrderBuyerOut` (the documented response_model) would serialise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from orders.models import Order, OrderLine, SubOrder
from orders.schemas import OrderBuyerOut
from orders.service import views


def _order(rail: str, secret: str | None, created_at: datetime, status: str = "awaiting_payment") -> Order:
    order_id, seller = uuid.uuid4(), uuid.uuid4()
    sub = SubOrder(id=uuid.uuid4(), order_id=order_id, seller_id=seller, currency="EUR", amount=2598,
                   platform_fee_amount=260, commission_amount=100, seller_net_amount=2238, refunded_amount=0,
                   shipping_amount=0,
                   status="awaiting_payment", tracking_number=None, carrier="DHL", created_at=created_at)
    line = OrderLine(id=uuid.uuid4(), order_id=order_id, sub_order_id=sub.id, position=0, seller_id=seller,
                     product_id=uuid.uuid4(), variant_id=uuid.uuid4(), sku="SKU-1", product_name="Théière «Ö»",
                     variant_name='1 L "blue"', unit_amount=1299, quantity=2, gross_amount=2598,
                     discount_amount=0, amount=2598, platform_fee_amount=260, seller_net_amount=2238,
                     refunded_quantity=0, refunded_amount=0, refunded_platform_fee=0, refunded_seller_net=0)
    return Order(
        id=order_id, buyer_email="b@example.com", buyer_name="B", shipping_address={}, currency="EUR",
        gross_amount=2598, discount_amount=0, total_amount=2598, platform_fee_amount=260, commission_amount=100,
        refunded_amount=0, shipping_amount=0, status=status, payment_rail=rail,
        payment_id="pi_1" if secret else None,
        payment_client_secret=secret, expires_at=created_at + timedelta(minutes=30), created_at=created_at,
        lines=[line], sub_orders=[sub],
    )


@pytest.mark.parametrize("rail,secret,status", [
    ("manual", None, "awaiting_payment"), ("stripe", "pi_1_secret", "awaiting_payment"),
    ("stripe", None, "awaiting_payment"), ("stripe", "pi_1_secret", "paid"),
])
@pytest.mark.parametrize("created_at", [
    datetime(2026, 11, 23, 13, 37, 32, 395576, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
])
def test_fast_buyer_json_is_the_models_json(rail: str, secret: str | None, status: str, created_at: datetime) -> None:
    order = _order(rail, secret, created_at, status)
    fast = views.order_for_buyer_json(order)
    assert fast == views.order_for_buyer(order).model_dump_json().encode()
    OrderBuyerOut.model_validate(orjson.loads(fast))
