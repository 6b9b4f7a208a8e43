"""Order shapes in and out. Buyers, sellers, affiliates and operators each see their own view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    field_validator,
)

from affiliates.schemas import PlanRules
from kernel.schemas import MoneyIn, MoneyOut, StrictModel


class CartItemIn(StrictModel):
    variant_id: uuid.UUID
    quantity: StrictInt = Field(ge=1, le=1000)


class BuyerIn(StrictModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, min_length=3, max_length=40, pattern=r"^\+?[0-9 ()./-]{3,40}$")


class AddressIn(StrictModel):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    region: str | None = Field(default=None, max_length=100)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


def _usd(amount: int) -> dict[str, int | str]:
    return {"amount": amount, "currency": "USD"}


CHECKOUT_EXAMPLE: dict[str, Any] = {
    "items": [{"variant_id": "01a2063a-1f3e-7ee6-b690-23d5b38ae31a", "quantity": 1},
              {"variant_id": "01a2063a-2a51-71b2-b0a8-34e91972cd9a", "quantity": 2}],
    "buyer": {"email": "ada@example.com", "name": "Ada Buyer"},
    "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
}
ORDER_EXAMPLE: dict[str, Any] = {
    "id": "01a2063a-5e0d-7b2a-901b-751061b9f240", "status": "awaiting_payment", "currency": "USD",
    "subtotal": _usd(7499), "discount": _usd(0), "shipping": _usd(0), "total": _usd(7499), "refunded": _usd(0),
    "lines": [
        {"id": "01a2063a-5e0e-743b-af90-0a08874b68d1", "sub_order_id": "01a2063a-5e0e-7450-afd3-7813955e8547",
         "product_id": "01a2063a-1f3e-7da6-9120-2c0f61d0a3ab", "variant_id": "01a2063a-1f3e-7ee6-b690-23d5b38ae31a",
         "sku": "LUMEN-PRO", "product_name": "Lumen Studio", "variant_name": "Pro", "quantity": 1,
         "unit_price": _usd(4999), "amount": _usd(4999), "discount": _usd(0), "refunded_quantity": 0},
        {"id": "01a2063a-5e0e-7104-91f9-c0725d055a52", "sub_order_id": "01a2063a-5e0e-71e5-aa2d-50cc5902d8f7",
         "product_id": "01a2063a-2a51-726c-9e7d-beac7ee4359b", "variant_id": "01a2063a-2a51-71b2-b0a8-34e91972cd9a",
         "sku": "NW-CABLE", "product_name": "Studio Cable Kit", "variant_name": "Standard", "quantity": 2,
         "unit_price": _usd(1250), "amount": _usd(2500), "discount": _usd(0), "refunded_quantity": 0},
    ],
    "sub_orders": [
        {"id": "01a2063a-5e0e-7450-afd3-7813955e8547", "seller_id": "01a2063a-1e30-7988-99c1-4778593675bc",
         "status": "awaiting_payment", "amount": _usd(4999), "shipping": _usd(0), "shipping_method": None,
         "tracking_number": None, "carrier": None},
        {"id": "01a2063a-5e0e-71e5-aa2d-50cc5902d8f7", "seller_id": "01a2063a-2a3b-7662-a43b-7c3c9716f19a",
         "status": "awaiting_payment", "amount": _usd(2500), "shipping": _usd(0), "shipping_method": None,
         "tracking_number": None, "carrier": None},
    ],
    "payment": {"rail": "manual", "status": "awaiting_payment", "payment_intent_id": None, "client_secret": None,
                "instructions": "Pay 7499 minor units of USD by bank transfer with reference "
                                "01a2063a-5e0d-7b2a-901b-751061b9f240; the operator marks the order paid when it "
                                "arrives."},
    "expires_at": "2026-12-04T17:43:56.241875Z", "created_at": "2026-12-04T16:43:56.241875Z",
}


_A, _S = "01a2063a-0a0a-7a0a-8a0a-0a0a0a0a0a0a", "01a2063a-0b0b-7b0b-8b0b-0b0b0b0b0b0b"  # market maker, specialist


def _commission(n: int, line: int, affiliate: str, role: str, amount: int) -> dict[str, Any]:
    return {
        "id": f"01a2063a-5e0f-7000-8000-00000000000{n}", "order_id": ORDER_EXAMPLE["id"],
        "order_line_id": ORDER_EXAMPLE["lines"][line]["id"], "affiliate_id": affiliate,
        "role": role, "program_id": f"01a2063a-1f40-7000-8000-00000000000{line}",
        "plan_version_id": f"01a2063a-1f41-7000-8000-00000000000{line}", "amount": _usd(amount),
        "reversed": _usd(0), "status": "pending", "available_at": None, "created_at": ORDER_EXAMPLE["created_at"],
    }


# The design's worked example, paid: 10 % platform fee, seller X's program pays 8 %, Y's 1.00 per
# unit, market maker A splits 70/30 with specialist S; each seller's net is the residual.
ORDER_OPERATOR_EXAMPLE: dict[str, Any] = {
    **ORDER_EXAMPLE, "status": "paid",
    "sub_orders": [{**sub, "status": "paid"} for sub in ORDER_EXAMPLE["sub_orders"]],
    "buyer_email": "ada@example.com", "buyer_name": "Ada Buyer",
    "buyer": {"name": "Ada Buyer", "email": "ada@example.com", "phone": None,
              "shipping_address": {"line1": "1 Main St", "line2": None, "city": "Springfield", "postal_code": "12345",
                                   "region": None, "country": "US"}},
    "storefront_id": "01a2063a-0c0c-7c0c-8c0c-0c0c0c0c0c0c", "affiliate_id": _A,
    "attribution_source": "storefront", "self_referral": False,
    "platform_fee": _usd(750), "commission_total": _usd(600),
    "shares": [
        {"id": sub["id"], "seller_id": sub["seller_id"], "status": "paid", "amount": sub["amount"],
         "platform_fee": _usd(fee), "commission": _usd(commission), "seller_net": _usd(net), "refunded": _usd(0),
         "shipping": _usd(0), "refunded_shipping": _usd(0)}
        for sub, (fee, commission, net) in zip(ORDER_EXAMPLE["sub_orders"],
                                               [(500, 400, 4099), (250, 200, 2050)], strict=True)
    ],
    "commissions": [_commission(1, 0, _A, "affiliate", 280), _commission(2, 0, _S, "split_partner", 120),
                    _commission(3, 1, _A, "affiliate", 140), _commission(4, 1, _S, "split_partner", 60)],
}


class ShippingChoiceIn(StrictModel):
    seller_id: uuid.UUID
    rate_id: uuid.UUID = Field(description="one of the seller's options from POST /v1/shipping/quote")


def _one_rate_per_seller(value: list[ShippingChoiceIn] | None) -> list[ShippingChoiceIn] | None:
    if value is not None and len({choice.seller_id for choice in value}) != len(value):
        raise ValueError("one shipping rate per seller")
    return value


ShippingChoices = Annotated[
    list[ShippingChoiceIn] | None,
    Field(default=None, max_length=50,
          description="the chosen shipping rate per seller (POST /v1/shipping/quote): required for each seller "
                      "that ships with a rate; the destination is the shipping address's country and region"),
    AfterValidator(_one_rate_per_seller),
]


class CheckoutIn(StrictModel):
    """A cart across any sellers: the platform prices it from the catalog, never from the client."""

    model_config = ConfigDict(json_schema_extra={"examples": [CHECKOUT_EXAMPLE]})

    items: list[CartItemIn] = Field(min_length=1, max_length=50)
    buyer: BuyerIn
    shipping_address: AddressIn
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)
    attribution_token: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="from a referral link (the `mk_ref` query parameter or cookie `GET /r/{code}` set)",
    )
    shipping: ShippingChoices = None
    consents: dict[str, StrictBool] | None = Field(
        default=None, max_length=20,
        description="the buyer's answer per purpose (`GET /v1/consent-purposes`), e.g. "
                    '`{"order_updates": true, "marketing": false}`; an unanswered purpose takes its default',
    )

    def canonical(self) -> dict[str, Any]:
        """The body an Idempotency-Key's fingerprint is taken of: the fields added with order links
        (phone, consents) count only when sent, so a key's fingerprint is what it was before them."""
        body = self.model_dump(mode="json")
        if body["consents"] is None:
            del body["consents"]
        if body["shipping"] is None:
            del body["shipping"]
        if body["buyer"]["phone"] is None:
            del body["buyer"]["phone"]
        return body


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
    amount: MoneyOut = Field(description="the seller's lines and its shipping")
    shipping: MoneyOut
    shipping_method: str | None = Field(description="the chosen shipping rate's name (null: no shipping charged)")
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

    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    id: uuid.UUID
    status: str
    currency: str
    subtotal: MoneyOut
    discount: MoneyOut
    shipping: MoneyOut = Field(description="every seller's shipping, inside total")
    total: MoneyOut
    refunded: MoneyOut
    lines: list[OrderLineOut]
    sub_orders: list[SubOrderBuyerOut]
    payment: PaymentOut
    expires_at: datetime
    created_at: datetime
    status_token: str | None = Field(
        default=None,
        description="the order's secret status-link token (`GET /v1/order-status/{token}`), also emailed to the "
                    "buyer; only in the response that placed the order (null on a replay: see the email)",
    )
    status_url: str | None = Field(default=None, description="the link the buyer was emailed (null with the token)")


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
    seller_net: MoneyOut = Field(description="the seller's lines net of fee and commissions, plus its shipping")
    refunded: MoneyOut
    shipping: MoneyOut
    refunded_shipping: MoneyOut


class OrderOperatorOut(OrderBuyerOut):
    """The whole picture: attribution, every party's share."""

    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_OPERATOR_EXAMPLE]})

    buyer_email: str = Field(description="masked for operator roles other than admin and support")
    buyer_name: str
    buyer: BuyerFieldsOut
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


class BuyerFieldsOut(BaseModel):
    """The buyer as the viewer may see it (orders.service.buyer_policy): null is not shown, a
    masked value (`a***@example.com`) is shown masked."""

    name: str | None
    email: str | None
    phone: str | None
    shipping_address: dict[str, str | None] | None


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
    shipping: MoneyOut
    shipping_method: str | None
    lines: list[OrderLineOut]
    ship_to: ShippingOut | None = Field(description="shown once the order is paid")
    buyer: BuyerFieldsOut = Field(description="the buyer fields the charter and the buyer's consents let you see")
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
    quantity: StrictInt = Field(ge=1, le=1000)


class RefundIn(StrictModel):
    lines: list[RefundLineIn] | None = Field(
        default=None, min_length=1, max_length=50,
        description="omit to refund everything left (a seller: everything left of its part)",
    )
    reason: str = Field(default="", max_length=500)
    include_shipping: StrictBool = Field(
        default=False,
        description="also refund what is left of the shipping of each sub-order these lines belong to; a "
                    "refund that leaves no unit of a sub-order unrefunded refunds its shipping anyway")


class RefundSettleIn(StrictModel):
    note: str = Field(min_length=1, max_length=200, description="how the buyer was paid back (kept in the journal)")


class RefundOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    sub_order_id: uuid.UUID | None
    amount: MoneyOut
    shipping: MoneyOut = Field(description="the shipping given back, inside amount")
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
    receivable: int = Field(default=0, description="what buyer organizations owe for orders on account, unpaid "
                                                   "invoices (negative: owed to the platform)")
    invoiced: int = Field(default=0, description="billed on account, not yet collected (mirrors `receivable`)")


class TodayCurrencyOut(BaseModel):
    currency: str
    orders_placed: int = Field(description="orders created today (any status)")
    orders_paid: int = Field(description="orders paid today")
    sales: int = Field(description="minor units: what buyers paid for the orders paid today")
    platform_fees: int = Field(description="minor units: the platform's fee on the orders paid today")
    commissions: int = Field(description="minor units: affiliates' commissions on the orders paid today")
    refunds: int = Field(description="refunds made today")
    refunded: int = Field(description="minor units refunded today")
    payees_available: int = Field(description="minor units due to payees in the next payout (all of it, now)")
    payees_pending: int = Field(description="minor units earned by payees, inside a holding period (now)")
    payees_in_transit: int = Field(description="minor units frozen in a payout batch (now)")


class TodayOut(BaseModel):
    date: str = Field(description="today (UTC), YYYY-MM-DD")
    since: datetime = Field(description="the start of today (UTC)")
    currencies: list[TodayCurrencyOut] = Field(description="one entry per currency with any figure")


class GrowthRowOut(BaseModel):
    group_id: uuid.UUID = Field(description="the seller, affiliate, storefront or program id")
    name: str = Field(description="the seller's, affiliate's or storefront's name (a program: its seller's)")
    currency: str
    orders: int
    customers: int = Field(description="distinct buyers with a paid order in the period")
    new_customers: int = Field(description="buyers whose first paid order in the group is in the period")
    returning_customers: int = Field(description="buyers back after an earlier order, once per day")
    revenue: int = Field(description="minor units, net of refunds")
    refunded: int = Field(description="minor units")
    fees: int = Field(description="the platform's fees, net of refunds (minor units)")
    average_order_value: int = Field(description="minor units")
    purchase_frequency: float = Field(description="orders per customer")
    commissions: int = Field(description="minor units, net of clawbacks")
    commission_per_new_customer: int | None = Field(description="minor units: the cost of a new customer")
    clicks: int | None = Field(description="unique human referral clicks (affiliates, storefronts)")
    close_ratio: float | None = Field(description="orders that came from a referral click, per click")
    sources: dict[str, int] = Field(description="orders by attribution source")
    previous_orders: int = Field(description="the period of the same length just before this one")
    previous_revenue: int
    previous_new_customers: int
    previous_commissions: int
    revenue_change: float | None = Field(description="(revenue - previous) / previous revenue")
    sales_last_30_days: int
    sales_previous_30_days: int
    falling_away: bool = Field(description="sales this month under half of last month's")


class ConsentPurposeOut(BaseModel):
    name: str
    title: str
    description: str
    default: bool = Field(description="what an unanswered purpose means")


class ConsentWithdrawalIn(StrictModel):
    purposes: list[str] = Field(min_length=1, max_length=20, description="purposes to withdraw consent for")


class ShipmentOut(BaseModel):
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class OrderPartOut(BaseModel):
    """One seller's part of the order, as the buyer follows it."""

    id: uuid.UUID
    seller_id: uuid.UUID
    seller_name: str
    status: str
    amount: MoneyOut
    refunded: MoneyOut
    lines: list[OrderLineOut]
    shipment: ShipmentOut | None = Field(description="once the seller shipped it")
    reject_reason: str | None


class OrderStatusBuyerOut(BaseModel):
    name: str
    email: str
    phone: str | None
    shipping_address: dict[str, str | None]


class StorefrontRefOut(BaseModel):
    slug: str
    name: str


class OrderStatusOut(BaseModel):
    """The order as its secret link shows it to the buyer."""

    id: uuid.UUID
    status: str
    currency: str
    storefront: StorefrontRefOut | None
    subtotal: MoneyOut
    discount: MoneyOut
    total: MoneyOut
    refunded: MoneyOut
    payment: PaymentOut
    parts: list[OrderPartOut]
    refunds: list[RefundOut]
    buyer: OrderStatusBuyerOut
    consents: dict[str, bool] = Field(description="every purpose's answer now (kernel.consents defaults filled in)")
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class FunnelRowOut(BaseModel):
    group_id: uuid.UUID = Field(description="the affiliate, storefront or program id")
    name: str = Field(description="the affiliate's or storefront's name (a program: its seller's)")
    visits: int = Field(description="Exploration: unique human storefront visits (one per visitor, storefront, day)")
    clicks: int | None = Field(description="Exploration: unique human referral clicks (affiliates, storefronts)")
    product_views: int = Field(description="Evaluation: product pages opened by human visitors")
    carts_started: int = Field(description="Engagement: checkout requests (a storefront's, or orders placed elsewhere)")
    checkouts_begun: int = Field(description="Engagement: orders placed, awaiting payment")
    orders: int = Field(description="Experience: paid orders")
    repeat_buyers: int = Field(description="Experience: buyers new in the period who paid again on a later day "
                                           "within repeat_window_days")
    advocates: int = Field(description="Experience: buyers who became affiliates and brought buyers of their own")
    view_rate: float | None = Field(description="product views per visit or click")
    cart_rate: float | None = Field(description="carts started per product view")
    checkout_rate: float | None = Field(description="checkouts begun per cart started")
    order_rate: float | None = Field(description="paid orders per checkout begun")
    close_ratio: float | None = Field(description="paid orders per visit or click")


class QuotaAttainmentOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    affiliate_id: uuid.UUID | None = Field(description="null: the program's own quota")
    name: str = Field(description="the affiliate's name (a program's quota: its seller's)")
    month: str
    metric: str
    currency: str | None
    target: int
    actual: int = Field(description="so far this month: orders, revenue (minor units) or new customers")
    attainment: float = Field(description="actual / target")
    met: bool


class AlarmOut(BaseModel):
    id: uuid.UUID
    rule: str = Field(description="falling_away, dormant, cost_per_new_customer, refund_spike or click_fraud")
    affiliate_id: uuid.UUID
    affiliate_name: str
    currency: str
    status: str = Field(description="open until an operator resolves it")
    figures: dict[str, Any] = Field(description="what the rule saw when it opened (minor units, counts)")
    opened_at: datetime
    resolved_at: datetime | None
    resolution_note: str | None


class AlarmResolveIn(StrictModel):
    note: str = Field(default="", max_length=500)


class SimulationIn(StrictModel):
    """A draft plan version (the rules of `POST /v1/programs/{id}/plan-versions`) and a period."""

    rules: PlanRules
    since: datetime = Field(description="UTC: orders placed from this time")
    until: datetime | None = Field(default=None, description="UTC: orders placed before this time; default now")

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-01-01T00:00:00Z)")
        return value


class SimulatedPartnerOut(BaseModel):
    affiliate_id: uuid.UUID
    name: str
    currency: str
    earned: int = Field(description="what the partner earned on these orders (minor units, at sale)")
    would_earn: int = Field(description="what the draft would have paid it")
    difference: int


class SimulationTotalOut(BaseModel):
    currency: str
    earned: int
    would_earn: int
    difference: int = Field(description="the seller's extra cost under the draft (negative: a saving)")


class SimulationOut(BaseModel):
    program_id: uuid.UUID
    since: datetime
    until: datetime
    orders: int
    lines: int = Field(description="order lines that earned a commission in the program")
    partners: list[SimulatedPartnerOut]
    cost_to_seller: list[SimulationTotalOut] = Field(description="every commission is funded by the seller")


class BuyerSignUpIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, description="the organization's name")
    email: EmailStr = Field(description="its first person's email: they become its admin")
    owner_name: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=10, max_length=200)


class BuyerAccountIn(StrictModel):
    email: EmailStr = Field(description="the email your orders were placed with; confirmed by a link mailed to it")
    name: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=10, max_length=200, description="a new password, or an existing "
                                                                         "person's own")


class BuyerAccountConfirmIn(StrictModel):
    token: str = Field(min_length=20, max_length=100, description="the token of the link mailed at sign-up")


class BuyerAccountOut(BaseModel):
    person_id: uuid.UUID
    email: str
    confirmed_at: datetime | None = Field(description="null until the emailed link is used: no orders shown before")


class BuyerAccountSignedUpOut(BuyerAccountOut):
    api_key: str = Field(description="a personal key for this account, shown once")


class SpendingLimitIn(StrictModel):
    limit: MoneyIn | None = Field(description="what the member may order per order without an approver (null: "
                                              "no limit set, every order waits for approval)")


class BuyerAddressIn(StrictModel):
    label: str = Field(min_length=1, max_length=100)
    address: AddressIn


class BuyerAddressOut(BaseModel):
    id: uuid.UUID
    label: str
    address: dict[str, str | None]


class BuyerMemberOut(BaseModel):
    person_id: uuid.UUID
    email: str
    name: str
    role: str
    spending_limit: MoneyOut | None


class BuyerOrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    invoice_terms_days: int | None = Field(description="net days an operator trusts it with (null: none)")
    members: list[BuyerMemberOut]
    addresses: list[BuyerAddressOut]


class BuyerSignedUpOut(BaseModel):
    organization: BuyerOrganizationOut
    person_id: uuid.UUID
    api_key: str = Field(description="the admin's personal key, shown once")


class BuyerOrderIn(StrictModel):
    """A buyer organization's member orders: the buyer is the member; the address is spelt out or
    one of the organization's."""

    items: list[CartItemIn] = Field(min_length=1, max_length=50)
    storefront: str | None = Field(default=None, min_length=1, max_length=64, description="a storefront's slug")
    shipping_address: AddressIn | None = None
    shipping_address_id: uuid.UUID | None = Field(default=None, description="one of the organization's addresses")
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)
    consents: dict[str, StrictBool] | None = Field(default=None, max_length=20)
    shipping: ShippingChoices = None

    def canonical(self) -> dict[str, Any]:
        """The body an Idempotency-Key's fingerprint is taken of (`shipping` only when sent, so a
        key's fingerprint is what it was before shipping existed)."""
        body = self.model_dump(mode="json")
        if body["shipping"] is None:
            del body["shipping"]
        return body


class ApprovalOut(BaseModel):
    decision: str = Field(description="approved | rejected | expired")
    person_id: uuid.UUID | None
    reason: str
    decided_at: datetime


class InvoiceOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    buyer_organization_id: uuid.UUID
    amount: MoneyOut
    status: Literal["open", "paid", "void"]
    overdue: bool = Field(description="open and past its due date")
    issued_at: datetime
    due_at: datetime
    paid_at: datetime | None
    payment_reference: str | None


class BuyerOrgOrderOut(OrderBuyerOut):
    placed_by_person_id: uuid.UUID | None
    approval: ApprovalOut | None
    invoice: InvoiceOut | None = Field(description="the order's invoice when placed on account (invoice terms)")


class InvoiceTermsIn(StrictModel):
    net_days: StrictInt | None = Field(ge=1, le=180, description="orders on the manual rail are placed on account, "
                                                                 "payable within this many days (null: no terms)")


class InvoiceTermsOut(BaseModel):
    buyer_organization_id: uuid.UUID
    net_days: int | None


class InvoicePaymentIn(StrictModel):
    amount: MoneyIn = Field(description="the invoice's amount, in full, in its currency")
    reference: str = Field(min_length=1, max_length=200, description="the bank transfer's reference, for the books")


class DecisionIn(StrictModel):
    reason: str = Field(default="", max_length=500)
