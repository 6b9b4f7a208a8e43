"""Order tables.

An order is one buyer payment in one currency; it is routed into one sub-order per seller.
Order lines snapshot what was bought (name, SKU, unit price) and every party's share as the
commission engine computed it at checkout, so later catalog or plan changes never alter it.

Shares become journal entries when the order is paid (see settlement.py): an unpaid order
owes nobody anything, so abandoned carts leave no trace in the ledger.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id


class OrderStatus(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # a buyer organization's order above its placer's limit; stock held
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CANCELLED = "cancelled"  # payment failed or the order expired unpaid; stock released


class SubOrderStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"  # the seller must accept or reject
    ACCEPTED = "accepted"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REJECTED = "rejected"  # the seller refused it; its part was refunded
    CANCELLED = "cancelled"


class CommissionStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PENDING = "pending"  # order paid, inside the holding period
    AVAILABLE = "available"  # payable in the next payout
    PAID = "paid"  # claimed by a payout item (payout_item_id)
    REVERSED = "reversed"  # fully clawed back by refunds before it became available
    CANCELLED = "cancelled"  # the order was never paid


class Order(TimestampMixin, Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    storefront_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    affiliate_id: Mapped[uuid.UUID | None] = mapped_column(index=True)  # the attributed affiliate
    attribution_source: Mapped[str] = mapped_column(String(16))  # storefront | click | coupon | none
    click_id: Mapped[uuid.UUID | None] = mapped_column()
    coupon_id: Mapped[uuid.UUID | None] = mapped_column()
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    self_referral: Mapped[bool] = mapped_column(default=False)
    buyer_email: Mapped[str] = mapped_column(String(254), index=True)
    buyer_name: Mapped[str] = mapped_column(String(200))
    buyer_phone: Mapped[str | None] = mapped_column(String(40))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    gross_amount: Mapped[int] = mapped_column(BigInteger)  # before coupon discount
    discount_amount: Mapped[int] = mapped_column(BigInteger)
    total_amount: Mapped[int] = mapped_column(BigInteger)  # what the buyer pays
    platform_fee_amount: Mapped[int] = mapped_column(BigInteger)
    commission_amount: Mapped[int] = mapped_column(BigInteger)
    # Every sub-order's shipping, inside total_amount (orders.service.shipping).
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.AWAITING_PAYMENT.value, index=True)
    payment_rail: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_client_secret: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    paid_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # The SHA-256 (hex) of the order's secret status-link token (orders.service.order_links): the
    # token itself travels only in the buyer's email and the response that created the order.
    status_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The buyer's consents as sent at checkout ({purpose: bool}; NULL: none sent, every purpose at
    # its default: kernel.consents), less what the buyer withdrew since (OrderConsentChange).
    consents: Mapped[dict[str, bool] | None] = mapped_column(JSON)
    # A buyer organization's order: the organization and the member who placed it (NULL: a guest's).
    buyer_organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("buyer_organizations.id"),
                                                                   index=True)
    placed_by_person_id: Mapped[uuid.UUID | None] = mapped_column()

    sub_orders: Mapped[list[SubOrder]] = relationship(order_by="SubOrder.id", lazy="selectin")
    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.position", lazy="selectin")
    commissions: Mapped[list[Commission]] = relationship(order_by="Commission.id", lazy="selectin")


class SubOrder(TimestampMixin, Base):
    """One seller's part of an order: what the seller fulfils and is paid for."""

    __tablename__ = "sub_orders"
    # A seller's list, newest first, reads its own rows in key order (migration 0017).
    __table_args__ = (Index("ix_sub_orders_seller_page", "seller_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # buyer pays for this seller's lines
    platform_fee_amount: Mapped[int] = mapped_column(BigInteger)
    commission_amount: Mapped[int] = mapped_column(BigInteger)
    seller_net_amount: Mapped[int] = mapped_column(BigInteger)  # its lines' nets + its shipping
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # The chosen shipping rate (orders.service.shipping): inside `amount` and, all of it, the
    # seller's (`seller_net_amount`); refunds give it back by the rules written there.
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    refunded_shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    shipping_rate_id: Mapped[uuid.UUID | None] = mapped_column()
    shipping_method: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=SubOrderStatus.AWAITING_PAYMENT.value, index=True)
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    carrier: Mapped[str | None] = mapped_column(String(100))
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    shipped_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    # The seller's share moves pending -> available at this time (return window after delivery).
    seller_share_available_at: Mapped[datetime | None] = mapped_column(index=True)
    seller_share_released: Mapped[bool] = mapped_column(default=False)
    # The payout item that paid the seller's share (set when a payout batch freezes the balance).
    payout_item_id: Mapped[uuid.UUID | None] = mapped_column(index=True)

    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.position", lazy="selectin")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("refunded_quantity >= 0 AND refunded_quantity <= quantity", name="refund_within_quantity"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sub_orders.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    seller_id: Mapped[uuid.UUID] = mapped_column()
    product_id: Mapped[uuid.UUID] = mapped_column()
    variant_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    variant_name: Mapped[str] = mapped_column(String(200))
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    gross_amount: Mapped[int] = mapped_column(BigInteger)
    discount_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    platform_fee_amount: Mapped[int] = mapped_column(BigInteger)
    seller_net_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    # What refunds have reversed so far, per share, so the refund that empties the line
    # reverses exactly what is left (no minor unit lost to rounding).
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_platform_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_seller_net: Mapped[int] = mapped_column(BigInteger, default=0)

    # Real (not view-only) relationships on purpose: they tell the unit of work to insert
    # sub-orders before their lines and lines before their commissions, in one batch each.
    commissions: Mapped[list[Commission]] = relationship(order_by="Commission.id", lazy="selectin")


class Commission(TimestampMixin, Base):
    """One affiliate's share of one order line, with the plan version that computed it."""

    __tablename__ = "commissions"
    # An affiliate's (and a funding seller's) list, newest first, in key order (migration 0017).
    __table_args__ = (
        Index("ix_commissions_affiliate_page", "affiliate_id", "id"),
        Index("ix_commissions_seller_page", "seller_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_lines.id"), index=True)
    sub_order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column()
    affiliate_id: Mapped[uuid.UUID] = mapped_column()
    role: Mapped[str] = mapped_column(String(24))
    program_id: Mapped[uuid.UUID] = mapped_column()
    plan_version_id: Mapped[uuid.UUID] = mapped_column()
    funded_by: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default=CommissionStatus.AWAITING_PAYMENT.value, index=True)
    holding_period_days: Mapped[int] = mapped_column(Integer)
    available_at: Mapped[datetime | None] = mapped_column(index=True)
    # The payout item that paid it (set when a payout batch freezes the affiliate's balance).
    payout_item_id: Mapped[uuid.UUID | None] = mapped_column(index=True)


class Refund(TimestampMixin, Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("order_id", "idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    sub_order_id: Mapped[uuid.UUID | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))  # inside amount
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(16))  # operator | seller
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{order_line_id, quantity, amount}]
    rail_refund_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="recorded", index=True)  # recorded | sent | failed
    # Why the rail refused it or failed it later (Stripe's failure_reason): the buyer was not paid
    # back, and an operator must settle it another way (operators list these: GET /v1/refunds).
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The client's Idempotency-Key (one refund per key and order) and a hash of its request, so a
    # retry returns this refund and the same key with another request is refused.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))


class BuyerOrganization(TimestampMixin, Base):
    """A business that buys: its people are members (kernel.accounts.Membership, kind "buyer")
    with buying roles (kernel.permissions.BUYER_ROLES)."""

    __tablename__ = "buyer_organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    # Invoice terms an operator trusts it with: its orders on the manual rail are placed on account,
    # payable within this many days (orders.service.invoices); None: paid at once like everyone's.
    invoice_terms_days: Mapped[int | None] = mapped_column(Integer)


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"  # issued, the buyer owes it (overdue once past due_at)
    PAID = "paid"  # its payment was recorded, once
    VOID = "void"  # its order was cancelled unpaid


class Invoice(Base):
    """An order placed on account (orders.service.invoices): payable by `due_at`; the ledger holds
    its amount as the organization's receivable while it is open. Written only under its order's
    row lock."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_status_due_at", "status", "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), unique=True)
    buyer_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("buyer_organizations.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8))
    issued_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column()
    payment_reference: Mapped[str | None] = mapped_column(String(200))


class BuyerAccount(TimestampMixin, Base):
    """A person's buyer account (orders.service.buyer_accounts): once `confirmed_at`, its person
    sees every order placed with `email`. Only the confirmation token's SHA-256 is stored."""

    __tablename__ = "buyer_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id"), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()


class BuyerSpendingLimit(Base):
    """What a member may order without an approver, per order, in one currency. No row: every
    order the member places waits for approval."""

    __tablename__ = "buyer_spending_limits"
    __table_args__ = (UniqueConstraint("organization_id", "person_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("buyer_organizations.id"))
    person_id: Mapped[uuid.UUID] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class BuyerAddress(TimestampMixin, Base):
    """A shipping address of a buyer organization; an order names it instead of spelling one out."""

    __tablename__ = "buyer_addresses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("buyer_organizations.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    address: Mapped[dict[str, Any]] = mapped_column(JSON)


class OrderApproval(Base):
    """The one decision on an order that waited for approval: the unique order id makes it one
    even if two approvers decide at once (the order's row lock decides which)."""

    __tablename__ = "order_approvals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), unique=True)
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected | expired
    person_id: Mapped[uuid.UUID | None] = mapped_column()  # NULL: expired
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class OrderConsentChange(Base):
    """A consent the buyer changed after checkout (the checkout's answers are on the order): the
    history a privacy request or a dispute reads."""

    __tablename__ = "order_consent_changes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column()
    source: Mapped[str] = mapped_column(String(20))  # order_link | account
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class RelationshipContact(TimestampMixin, Base):
    """A person at a buyer organization, as a seller's or an affiliate's team records them
    (orders.service.contacts): their buying role, influence, who they report to, notes, and which
    member of the recording team owns the relationship."""

    __tablename__ = "relationship_contacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    buyer_organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("buyer_organizations.id"), index=True)
    owner_kind: Mapped[str] = mapped_column(String(16))  # seller | affiliate: whose record
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    buying_role: Mapped[str] = mapped_column(String(20))  # decision_maker | influencer | user | gatekeeper | approver
    influence: Mapped[int] = mapped_column(Integer)  # 1 (little) .. 5 (decisive)
    reports_to_id: Mapped[uuid.UUID | None] = mapped_column()
    notes: Mapped[str] = mapped_column(Text, default="")
    relationship_owner_id: Mapped[uuid.UUID | None] = mapped_column()  # a person of the recording team


class BuyerDataAccess(Base):
    """One read of buyer contact data (orders.service.buyer_policy): who read which fields of which
    order's buyer, for what purpose. Append-only."""

    __tablename__ = "buyer_data_access"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    buyer_organization_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    viewer_kind: Mapped[str] = mapped_column(String(16))
    viewer_organization_id: Mapped[uuid.UUID] = mapped_column(index=True)
    viewer_role: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[uuid.UUID | None] = mapped_column()
    api_key_id: Mapped[uuid.UUID | None] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16))  # api | webhook
    fields: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


def request_fingerprint(payload: object) -> str:
    """What a request sent with an Idempotency-Key asked for, as stored in `request_hash`: a retry
    must match it; the same key with another request is refused."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyKey(Base):
    """One checkout per (scope, key): the unique constraint makes concurrent duplicates wait for
    the first to commit and then find its order."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class GrowthDaily(Base):
    """The growth rollup: per UTC day (the day the order was paid), group and currency, what the
    reports read instead of the orders (orders.service.rollups keeps it, in the transaction of
    each payment and refund; `marketplace growth rebuild` recomputes it and checks it).

    `group_type` is seller, affiliate, storefront or program. Money columns are minor units, net
    of refunds (a refund is taken from the day its order was paid, so a day's figures are its
    sales as they stand today): `revenue` what buyers paid less what was refunded, `refunded`
    what was refunded, `commissions` net of clawbacks, `fees` the platform's net fee.
    `new_customers`: buyers whose first paid order in the group was that day; `returning_customers`:
    buyers who had bought in the group before that day and bought again that day (once per day).
    `orders_via_*`: the orders by attribution source (the rest had none)."""

    __tablename__ = "growth_daily"
    __table_args__ = (Index("ix_growth_daily_group", "group_type", "group_id", "day"),)

    group_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[Any] = mapped_column(Date, primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    new_customers: Mapped[int] = mapped_column(BigInteger, default=0)
    returning_customers: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    commissions: Mapped[int] = mapped_column(BigInteger, default=0)
    fees: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_via_storefront: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_via_click: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_via_coupon: Mapped[int] = mapped_column(BigInteger, default=0)


class GrowthCustomer(Base):
    """One buyer of one group (seller, affiliate, storefront, program): the first and the last
    UTC day it paid for an order there. New versus returning is decided on it at payment time,
    and a trailing period's distinct customers are the rows whose `last_day` falls inside it.
    `seen_before` is scratch: the payment's UPDATE copies the old `last_day` into it and returns
    it, so one statement both records the visit and says whether it is the first of the day."""

    __tablename__ = "growth_customers"
    __table_args__ = (Index("ix_growth_customers_last_day", "group_type", "last_day"),)

    group_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    buyer_email: Mapped[str] = mapped_column(String(254), primary_key=True)
    first_day: Mapped[Any] = mapped_column(Date)
    last_day: Mapped[Any] = mapped_column(Date)
    # The first day after `first_day` it paid again (a repeat buyer; the funnel's Experience).
    second_day: Mapped[Any | None] = mapped_column(Date)
    seen_before: Mapped[Any | None] = mapped_column(Date)


class PartnerAlarm(TimestampMixin, Base):
    """A partner-health alarm (orders.service.health): one rule, one affiliate, one currency.
    Opened once (`open_key` is unique while it is open; null once resolved), it stays open until
    an operator resolves it, whatever the next evaluations find; the same rule may open again
    after that. `figures`: what the rule saw when it opened."""

    __tablename__ = "partner_alarms"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule: Mapped[str] = mapped_column(String(32))
    affiliate_id: Mapped[uuid.UUID] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | resolved
    open_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolution_note: Mapped[str | None] = mapped_column(String(500))
