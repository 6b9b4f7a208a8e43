"""Order shapes in and out. Buyers, sellers, affiliates and operators each see their own view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from kernel.schemas import MoneyOut, StrictModel


class CartItemIn(StrictModel):
    variant_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)


class BuyerIn(StrictModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)


class AddressIn(StrictModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class CheckoutIn(StrictModel):
    items: list[CartItemIn] = Field(min_length=1, max_length=50)
    buyer: BuyerIn
    shipping_address: AddressIn
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)
    attribution_token: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="from a referral link (the `mk_ref` query parameter or cookie `GET /r/{code}` set)",
    )


class OrderLineOut(BaseModel):
    id: uuid.UUID
    sub_order_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID
    sku: str
    product_name: str
    variant_name: str
    quantity: int
    unit_price: MoneyOut
    amount: MoneyOut
    discount: MoneyOut
    refunded_quantity: int


class SubOrderBuyerOut(BaseModel):
    id: uuid.UUID
    seller_id: uuid.UUID
    status: str
    amount: MoneyOut
    tracking_number: str | None
    carrier: str | None


class PaymentOut(BaseModel):
    rail: Literal["stripe", "manual"]
    status: str
    payment_intent_id: str | None = None
    client_secret: str | None = Field(default=None, description="confirm the PaymentIntent with Stripe.js")
    instructions: str


class OrderBuyerOut(BaseModel):
    """What the buyer (through the storefront) sees."""

    id: uuid.UUID
    status: str
    currency: str
    subtotal: MoneyOut
    discount: MoneyOut
    total: MoneyOut
    refunded: MoneyOut
    lines: list[OrderLineOut]
    sub_orders: list[SubOrderBuyerOut]
    payment: PaymentOut
    expires_at: datetime
    created_at: datetime


class CommissionOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    order_line_id: uuid.UUID
    affiliate_id: uuid.UUID
    role: str
    program_id: uuid.UUID
    plan_version_id: uuid.UUID
    amount: MoneyOut
    reversed: MoneyOut
    status: str
    available_at: datetime | None
    created_at: datetime


class SubOrderShareOut(BaseModel):
    id: uuid.UUID
    seller_id: uuid.UUID
    status: str
    amount: MoneyOut
    platform_fee: MoneyOut
    commission: MoneyOut
    seller_net: MoneyOut
    refunded: MoneyOut


class OrderOperatorOut(OrderBuyerOut):
    """The whole picture: attribution, every party's share."""

    buyer_email: str
    buyer_name: str
    storefront_id: uuid.UUID | None
    affiliate_id: uuid.UUID | None
    attribution_source: str
    self_referral: bool
    platform_fee: MoneyOut
    commission_total: MoneyOut
    shares: list[SubOrderShareOut]
    commissions: list[CommissionOut]


class ShippingOut(BaseModel):
    name: str
    address: dict[str, str | None]


class SubOrderSellerOut(BaseModel):
    """A seller's view: its lines, its money, and only the buyer data it needs to ship."""

    id: uuid.UUID
    order_id: uuid.UUID
    status: str
    amount: MoneyOut
    platform_fee: MoneyOut
    commission: MoneyOut
    seller_net: MoneyOut
    refunded: MoneyOut
    lines: list[OrderLineOut]
    ship_to: ShippingOut | None = Field(description="shown once the order is paid")
    tracking_number: str | None
    carrier: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class ShipIn(StrictModel):
    tracking_number: str = Field(min_length=1, max_length=100)
    carrier: str | None = Field(default=None, max_length=100)


class RejectIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500)


class RefundLineIn(StrictModel):
    order_line_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)


class RefundIn(StrictModel):
    lines: list[RefundLineIn] | None = Field(
        default=None, min_length=1, max_length=50,
        description="omit to refund everything left (a seller: everything left of its part)",
    )
    reason: str = Field(default="", max_length=500)


class RefundSettleIn(StrictModel):
    note: str = Field(min_length=1, max_length=200, description="how the buyer was paid back (kept in the journal)")


class RefundOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    sub_order_id: uuid.UUID | None
    amount: MoneyOut
    reason: str
    requested_by: str
    lines: list[dict[str, str | int]]
    status: str = Field(description="recorded | sent | failed (the buyer was not paid back: see failure_reason) "
                                    "| settled (paid back outside the rail)")
    failure_reason: str | None
    created_at: datetime


class BalanceOut(BaseModel):
    currency: str
    pending: int = Field(description="minor units, inside the holding period")
    available: int = Field(description="minor units, payable in the next payout (negative: owed back)")
    in_transit: int = Field(description="minor units, frozen in a payout batch")


class BalancesOut(BaseModel):
    owner_type: str
    owner_id: uuid.UUID | None
    balances: list[BalanceOut]


class PlatformBalanceOut(BaseModel):
    currency: str
    fees: int
    clearing: int = Field(description="money held for payees and refunds (negative: held)")
    payees_pending: int
    payees_available: int
    payees_in_transit: int
    paid_out: int
    refunds_owed: int = Field(description="refunds the rail failed to return, owed to buyers until settled")


class GrowthRowOut(BaseModel):
    group_id: uuid.UUID = Field(description="the seller, affiliate or storefront id")
    name: str = Field(description="the seller's, affiliate's or storefront's name")
    currency: str
    orders: int
    customers: int
    new_customers: int
    revenue: int = Field(description="minor units, net of refunds")
    average_order_value: int = Field(description="minor units")
    purchase_frequency: float = Field(description="orders per customer")
    commissions: int = Field(description="minor units, net of clawbacks")
    commission_per_new_customer: int | None = Field(description="minor units: the cost of a new customer")
    clicks: int | None
    close_ratio: float | None = Field(description="orders that came from a referral click, per click")
    sources: dict[str, int] = Field(description="orders by attribution source")
    sales_last_30_days: int
    sales_previous_30_days: int
    falling_away: bool = Field(description="sales this month under half of last month's")
