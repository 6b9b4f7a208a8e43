"""Affiliate tables: market makers, seller programs, versioned commission plans, storefronts,
referral links, clicks, coupons, and the month-to-date sales counter the volume tiers read.

Money columns are integer minor units; rates are basis points (1 bps = 0.01 %).
"""

from __future__ import annotations

import enum
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
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.payout_accounts import PayoutAccountStatus


class AffiliateStatus(enum.StrEnum):
    PENDING = "pending"  # applied, waiting for an operator
    APPROVED = "approved"
    REJECTED = "rejected"


class MembershipStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the seller (programs with requires_approval)
    APPROVED = "approved"
    REJECTED = "rejected"
    REMOVED = "removed"  # was approved; the seller removed it


class Affiliate(TimestampMixin, Base):
    """A market maker: trade group, alliance, complementary business, or a single partner."""

    __tablename__ = "affiliates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased; self-referral check
    website: Mapped[str | None] = mapped_column(String(500))
    audience: Mapped[str] = mapped_column(Text, default="")
    markets: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=AffiliateStatus.PENDING.value, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    # The code other affiliates quote when they apply, to be recorded as recruited by this one.
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    # One level only: the recruiter earns `recruiter_override_bps` of a plan on this one's sales.
    recruited_by_affiliate_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("affiliates.id"), index=True)
    # Default commission split for sales not made through a storefront with its own list:
    # [{"affiliate_id": "...", "weight": 70}, ...]; null = the affiliate keeps everything.
    splits: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    payout_status: Mapped[str] = mapped_column(String(20), default=PayoutAccountStatus.NOT_STARTED.value)
    stripe_account_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # `created` (unix seconds) of the last account.updated event applied: older events are ignored.
    stripe_account_synced_at: Mapped[int | None] = mapped_column(BigInteger)
    bank_reference: Mapped[str | None] = mapped_column(String(200))  # manual rail: where to wire money
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())


class Program(TimestampMixin, Base):
    """A seller's affiliate program (one per seller). The plan lives in `PlanVersion` rows."""

    __tablename__ = "affiliate_programs"
    __table_args__ = (
        CheckConstraint("attribution_window_days >= 0", name="window_not_negative"),
        CheckConstraint("holding_period_days >= 0", name="holding_not_negative"),
        CheckConstraint("coupon_discount_bps >= 0 AND coupon_discount_bps <= 10000", name="coupon_bps_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"), unique=True)
    terms: Mapped[str] = mapped_column(Text, default="")
    requires_approval: Mapped[bool] = mapped_column(default=True)
    attribution_window_days: Mapped[int] = mapped_column(Integer, default=30)
    holding_period_days: Mapped[int] = mapped_column(Integer, default=30)
    coupon_discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())


class ProgramMembership(TimestampMixin, Base):
    __tablename__ = "program_memberships"
    __table_args__ = (UniqueConstraint("program_id", "affiliate_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliate_programs.id"))
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliates.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=MembershipStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(String(500))
    message: Mapped[str] = mapped_column(Text, default="")  # the affiliate's note when applying
    decided_at: Mapped[datetime | None] = mapped_column()


class PlanVersion(TimestampMixin, Base):
    """One immutable version of a program's commission plan, in force from `effective_from` until
    the next version's `effective_from`. Rows are never updated: a change is a new row, so a
    settlement computed at time t can always be recomputed from the version in force at t.

    `rules` is the plan as data (validated by `affiliates.schemas.PlanRules`, evaluated by
    `affiliates.service.commission.plans`)."""

    __tablename__ = "commission_plan_versions"
    __table_args__ = (UniqueConstraint("program_id", "effective_from"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliate_programs.id"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per program, for people to read
    effective_from: Mapped[datetime] = mapped_column()
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")


class Storefront(TimestampMixin, Base):
    __tablename__ = "storefronts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliates.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    # Commission split for this storefront's orders (overrides the affiliate's default list).
    splits: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Branding the storefront pages apply: an https logo URL and a `#rrggbb` colour that keeps
    # white text readable (checked in affiliates.schemas), each null for the platform's own.
    logo_url: Mapped[str | None] = mapped_column(String(500))
    brand_color: Mapped[str | None] = mapped_column(String(7))
    # Bumped whenever listings change; the public cache keys on it (see storefronts service).
    listings_version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())


class StorefrontListing(TimestampMixin, Base):
    __tablename__ = "storefront_listings"
    __table_args__ = (UniqueConstraint("storefront_id", "product_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    storefront_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("storefronts.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"))


class ReferralLink(TimestampMixin, Base):
    __tablename__ = "referral_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliates.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    target_url: Mapped[str | None] = mapped_column(String(1000))
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id"))
    storefront_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("storefronts.id"))
    # Where GET /r/{code} sends the visitor (target_url, or the storefront / catalog page of the
    # product), fixed when the link is made.
    destination: Mapped[str] = mapped_column(String(1000))
    active: Mapped[bool] = mapped_column(default=True)


class Click(Base):
    """One counted click on a referral link: the first visit of a visitor (not a known bot) to
    the link within settings.referral_unique_click_window_seconds. Written by `GET /r/{code}`
    itself (one INSERT), because a checkout may come a second later and must find the token; a
    repeat visit reuses this row's token and writes nothing. Only the per-day counters go through
    Redis (see `ClickDailyCount`). No client address is stored, hashed or not."""

    __tablename__ = "referral_clicks"
    __table_args__ = (Index("ix_referral_clicks_affiliate_created", "affiliate_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # the attribution token (random)
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_links.id"), index=True)
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliates.id"))
    storefront_id: Mapped[uuid.UUID | None] = mapped_column()
    referer: Mapped[str | None] = mapped_column(String(500))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class ClickDailyCount(Base):
    """Per link per UTC day: `clicks` (unique human visitors, the figure reports use), `hits`
    (every request on the link, repeats and bots included) and `bot_hits` (those flagged as
    bots, crawlers, link previewers or prefetches). Counted in Redis on the hot path and added
    here in batches by the `affiliates.flush_clicks` beat task (no row lock per click on a
    popular link); updated in the request itself when no Redis is configured."""

    __tablename__ = "referral_click_daily"

    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referral_links.id"), primary_key=True)
    day: Mapped[Any] = mapped_column(Date, primary_key=True)
    affiliate_id: Mapped[uuid.UUID] = mapped_column(index=True)
    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    hits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bot_hits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class TrafficDaily(Base):
    """The funnel's counted traffic per UTC day and group (affiliate, storefront, program):
    unique storefront visits (one per visitor per storefront per day), product views, carts
    started and checkouts begun; bots and prefetches are not counted. Counted in Redis (or in
    process without Redis) on the request and added here in batches by the
    `affiliates.flush_traffic` beat task: no row is written per request
    (affiliates.service.traffic)."""

    __tablename__ = "growth_traffic_daily"

    group_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[Any] = mapped_column(Date, primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    visits: Mapped[int] = mapped_column(BigInteger, default=0)
    product_views: Mapped[int] = mapped_column(BigInteger, default=0)
    carts_started: Mapped[int] = mapped_column(BigInteger, default=0)
    checkouts_begun: Mapped[int] = mapped_column(BigInteger, default=0)


class Quota(TimestampMixin, Base):
    """A target for one calendar month (UTC, `YYYY-MM`): of one affiliate in a program
    (`affiliate_id`), or of the program as a whole (`affiliate_id` null). `metric` is `orders`,
    `revenue` (minor units of `currency`) or `new_customers` (programs only). A plan version's
    `quota_bonus` pays on an affiliate's sales past its orders or revenue quota (the engine:
    affiliates.service.commission.plans, rule 7); attainment is read live (orders.service.attainment)."""

    __tablename__ = "quotas"
    __table_args__ = (
        UniqueConstraint("program_id", "affiliate_id", "month", "metric", name="uq_quotas_target"),
        Index("ix_quotas_engine", "program_id", "affiliate_id", "month"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliate_programs.id"))
    affiliate_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("affiliates.id"))
    month: Mapped[str] = mapped_column(String(7))
    metric: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    target: Mapped[int] = mapped_column(BigInteger)


class Coupon(TimestampMixin, Base):
    """A seller's coupon code tied to one affiliate. The buyer's discount is the program's
    `coupon_discount_bps` at order time, on that seller's lines."""

    __tablename__ = "coupons"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # upper-cased
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliate_programs.id"), index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sellers.id"))
    affiliate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliates.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)


class AffiliateMonthlySales(Base):
    """Month-to-date attributed sales of one affiliate with one seller, per currency.

    Written by `record_attributed_sale` at checkout with an atomic upsert
    (`orders = orders + 1`), so the volume tiers read one row per seller instead of scanning
    orders. `month` is "YYYY-MM" in UTC; `amount` is minor units of `currency`.
    """

    __tablename__ = "affiliate_monthly_sales"

    affiliate_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class ProgramCharter(Base):
    """One version of a seller program's data-sharing charter (affiliates.service.charters): what
    each party sees of the buyers an affiliate brings. Versions are never changed, only added."""

    __tablename__ = "program_charters"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("affiliate_programs.id"))
    version: Mapped[int] = mapped_column(Integer)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class CharterAcceptance(Base):
    """An affiliate accepted one charter version (kept: the history of who agreed to what, when)."""

    __tablename__ = "charter_acceptances"
    __table_args__ = (UniqueConstraint("charter_id", "affiliate_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    charter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("program_charters.id"))
    program_id: Mapped[uuid.UUID] = mapped_column(index=True)
    affiliate_id: Mapped[uuid.UUID] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())
