"""The commission engine's vocabulary: what goes in (a priced cart, an attribution, the terms
loaded for it) and what comes out (every party's share of every line). Plain values, no
database: the rules (`rules.py`) compute on these, the loaders (`loaders.py`) fill them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from affiliates.service.commission.plans import Plan

ROLE_AFFILIATE = "affiliate"
ROLE_SPLIT_PARTNER = "split_partner"
ROLE_RECRUITER = "recruiter_override"
FUNDED_BY_SELLER = "seller"

SOURCE_STOREFRONT = "storefront"
SOURCE_CLICK = "click"
SOURCE_COUPON = "coupon"
SOURCE_NONE = "none"


@dataclass(frozen=True, slots=True)
class CartLine:
    """A priced order line (prices come from the catalog, never the client). Minor units."""

    variant_id: UUID
    product_id: UUID
    seller_id: UUID
    quantity: int
    unit_amount: int
    currency: str

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True, slots=True)
class CouponTerms:
    coupon_id: UUID
    seller_id: UUID
    affiliate_id: UUID
    code: str = ""  # normalized (`normalize_coupon_code`)
    affiliate_email: str = ""  # as stored (lower case): attribution compares it with the buyer's


@dataclass(frozen=True, slots=True)
class Attribution:
    affiliate_id: UUID | None
    source: str  # "storefront" | "click" | "coupon" | "none"
    storefront_id: UUID | None = None
    click_id: UUID | None = None
    coupon_id: UUID | None = None
    self_referral: bool = False  # flagged; earns nothing
    clicked_at: datetime | None = None  # click attribution: per-program windows are checked per seller
    # True when the caller named the storefront's affiliate (checkout reads it from the storefront
    # cache) and nobody has compared the buyer with that affiliate yet: `settle_cart` decides
    # `self_referral` when it reads the affiliate anyway, and returns the decided attribution.
    self_referral_pending: bool = False
    # Coupon attribution: the coupon as `resolve_attribution` read it, so `settle_cart` does not
    # read the same code again for its discount.
    coupon: CouponTerms | None = None


@dataclass(frozen=True, slots=True)
class CommissionShare:
    affiliate_id: UUID
    amount: int  # minor units, >= 0
    role: str  # "affiliate" | "split_partner" | "recruiter_override"
    program_id: UUID
    plan_version_id: UUID
    funded_by: str = FUNDED_BY_SELLER
    holding_period_days: int = 0  # the program's holding period at order time


@dataclass(frozen=True, slots=True)
class LineSettlement:
    line_index: int
    gross: int  # unit_amount * quantity before discount
    discount: int  # coupon discount on this line (>= 0)
    amount: int  # what the buyer pays for the line = gross - discount
    platform_fee: int  # bps_share(amount, platform_fee_bps)
    commissions: tuple[CommissionShare, ...]  # only shares > 0
    seller_net: int  # residual: amount - platform_fee - sum(commissions)
    seller_id: UUID | None = None
    program_id: UUID | None = None
    plan_version_id: UUID | None = None  # the version in force at `at`, even when nothing was earned
    # Why this line earns nothing: no_attribution | self_referral | no_program | no_plan |
    # affiliate_not_approved | not_member | outside_window; None when the line earns.
    no_commission_reason: str | None = None

    @property
    def commission_total(self) -> int:
        return sum(c.amount for c in self.commissions)


@dataclass(frozen=True, slots=True)
class Settlement:
    lines: tuple[LineSettlement, ...]
    attribution: Attribution
    first_order_sellers: frozenset[UUID]  # sellers for whom this buyer is a new customer


@dataclass(frozen=True, slots=True)
class MonthSales:
    """The attributed affiliate's sales with one seller this calendar month, before this order."""

    orders: int = 0
    amount: int = 0  # minor units, in the cart's currency


@dataclass(frozen=True, slots=True)
class Quota:
    """An affiliate's monthly targets in one program: orders, revenue (minor units), or both."""

    orders: int | None = None
    amount: int | None = None

    def met_by(self, sales: MonthSales) -> bool:
        """Every target given is met by the month-to-date sales (and at least one is given)."""
        if self.orders is None and self.amount is None:
            return False
        return ((self.orders is None or sales.orders >= self.orders)
                and (self.amount is None or sales.amount >= self.amount))


@dataclass(frozen=True, slots=True)
class ProgramTerms:
    """What the engine needs of one seller's program at `at`."""

    program_id: UUID
    seller_id: UUID
    attribution_window_days: int
    holding_period_days: int
    coupon_discount_bps: int
    plan_version_id: UUID | None  # None: no version in force yet
    plan: Plan | None
    affiliate_is_member: bool  # the attributed affiliate is an approved member
    # The attributed affiliate's split partners that are approved affiliates and approved
    # members of this program: only they take a part of its pool (read only when there are
    # partners).
    member_partners: frozenset[UUID] = frozenset()
    # The attributed affiliate's sales with this seller this month before the order (volume tiers).
    month_sales: MonthSales = MonthSales()
    # The attributed affiliate's quota in this program this month (plan rule 7), if it has one.
    quota: Quota | None = None


@dataclass(frozen=True, slots=True)
class AffiliateTerms:
    """The attributed affiliate, as the engine needs it."""

    affiliate_id: UUID
    approved: bool
    recruiter_id: UUID | None  # an approved recruiter, else None
    splits: tuple[tuple[UUID, int], ...]  # (affiliate_id, weight); empty: keeps the whole pool
    email: str = ""  # as stored (lower case): settle_cart compares it with the buyer's


# (seller_ids, buyer_email) -> the sellers this buyer has never ordered from.
FirstOrderCheck = Callable[[frozenset[UUID], str], set[UUID]]


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_coupon_code(code: str) -> str:
    return code.strip().upper()
