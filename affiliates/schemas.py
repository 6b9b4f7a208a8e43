"""Affiliate request and response shapes. Amounts are integer minor units with a currency; rates
are basis points (1 bps = 0.01 %, 10 000 bps = 100 %)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, EmailStr, Field, StrictBool, StrictInt, field_validator, model_validator

from affiliates.models import AffiliateStatus, MembershipStatus
from kernel.money import MoneyError, normalize_currency
from kernel.payout_accounts import PayoutAccountStatus
from kernel.people import OwnerSignUp
from kernel.schemas import MAX_AMOUNT, Currency, MoneyOut, StrictModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
Bps = Annotated[StrictInt, Field(ge=0, le=10_000, description="basis points: 100 = 1 %")]
Flat = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="minor units per unit sold, in the line's currency")]
Url = Annotated[AnyHttpUrl, Field(description="http(s) URL, at most 500 characters")]
Market = Annotated[str, Field(min_length=1, max_length=100)]
Slug = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                            description="lower-case letters, digits and inner hyphens", examples=["acme-partners"])]
Code = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
                            description="letters, digits, _ and -", examples=["SPRING-24"])]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
MAX_SPLITS = 10
MAX_OVERRIDES = 1000
MAX_TIERS = 20


def _url(value: AnyHttpUrl | None, limit: int = 500) -> AnyHttpUrl | None:
    if value is not None and len(str(value)) > limit:
        raise ValueError(f"URL longer than {limit} characters")
    return value


# --- splits ---------------------------------------------------------------------------------------


class SplitShare(StrictModel):
    affiliate_id: uuid.UUID
    weight: StrictInt = Field(ge=1, le=10_000, description="relative weight; 70 and 30 split 70/30")


Splits = Annotated[
    list[SplitShare],
    Field(max_length=MAX_SPLITS, description=(
        "who shares your commission, by weight; list yourself too. Largest remainder, ties to the "
        "partner listed first. Empty or null: you keep it all."
    )),
]


def _unique_partners(splits: list[SplitShare] | None) -> list[SplitShare] | None:
    if splits:
        ids = [s.affiliate_id for s in splits]
        if len(set(ids)) != len(ids):
            raise ValueError("each affiliate may appear once in splits")
    return splits


def splits_json(splits: list[SplitShare] | None) -> list[dict[str, object]] | None:
    if not splits:
        return None
    return [{"affiliate_id": str(s.affiliate_id), "weight": s.weight} for s in splits]


class SplitShareOut(BaseModel):
    affiliate_id: uuid.UUID
    weight: int


# --- affiliates -----------------------------------------------------------------------------------


class AffiliateApply(OwnerSignUp):
    name: Name
    email: EmailStr
    website: Url | None = None
    audience: str = Field(default="", max_length=5000, description="who you reach and how")
    markets: list[Market] = Field(default_factory=list, max_length=50, description="markets you serve")
    referral_code: str | None = Field(
        default=None, min_length=4, max_length=32,
        description="the referral code of the affiliate that recruited you (earns a one-level override)",
    )

    _website = field_validator("website")(_url)


class AffiliateUpdate(StrictModel):
    """Only the fields sent change."""

    name: Name | None = None
    website: Url | None = None
    audience: str | None = Field(default=None, max_length=5000)
    markets: list[Market] | None = Field(default=None, max_length=50)
    webhook_url: Url | None = None
    splits: Splits | None = Field(default=None, description="your default split for orders not made "
                                  "through a storefront with its own split list")

    _urls = field_validator("website", "webhook_url")(_url)
    _splits = field_validator("splits")(_unique_partners)


class AffiliateReject(StrictModel):
    reason: Reason


class AffiliateOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    website: str | None
    audience: str
    markets: list[str]
    status: AffiliateStatus
    status_reason: str | None
    referral_code: str = Field(description="give it to affiliates you recruit")
    recruited_by_affiliate_id: uuid.UUID | None
    splits: list[SplitShareOut] | None
    payout_status: PayoutAccountStatus
    webhook_url: str | None
    created_at: datetime
    updated_at: datetime


class AffiliatePublicOut(BaseModel):
    """What an operator's list shows and what other parties may see."""

    id: uuid.UUID
    name: str
    website: str | None
    status: AffiliateStatus


class AffiliateApplicationOut(BaseModel):
    affiliate: AffiliateOut
    api_key: str = Field(description="shown once; store it now")
    api_key_id: uuid.UUID
    api_key_prefix: str
    owner_person_id: uuid.UUID | None = Field(default=None, description="the owner person, when a password was sent")


# --- programs and memberships ---------------------------------------------------------------------


class ProgramIn(StrictModel):
    """Create (all optional fields take their defaults) or update (only the fields sent change)."""

    terms: str | None = Field(default=None, max_length=20_000)
    requires_approval: StrictBool | None = None
    attribution_window_days: StrictInt | None = Field(default=None, ge=0, le=365)
    holding_period_days: StrictInt | None = Field(default=None, ge=0, le=365)
    coupon_discount_bps: Bps | None = None


class ProgramOut(BaseModel):
    id: uuid.UUID
    seller_id: uuid.UUID
    seller_name: str | None = Field(default=None, description="the seller running the program")
    terms: str
    requires_approval: bool
    attribution_window_days: int
    holding_period_days: int
    coupon_discount_bps: int
    current_plan_version_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


# program_charters.version is an INTEGER column: a larger number is a 422, not a database error (500).
CHARTER_VERSION_MAX = 2**31 - 1


class MembershipApply(StrictModel):
    message: str = Field(default="", max_length=2000, description="a note for the seller")
    accept_charter_version: StrictInt | None = Field(
        default=None, ge=1, le=CHARTER_VERSION_MAX,
        description="the program's current data-sharing charter version, accepted by joining "
                    "(required when the program has a charter)")


class MembershipDecision(StrictModel):
    reason: str | None = Field(default=None, max_length=500)


class MembershipOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    affiliate_id: uuid.UUID
    affiliate_name: str | None = None
    status: MembershipStatus
    reason: str | None
    message: str
    decided_at: datetime | None
    created_at: datetime


# --- commission plans -----------------------------------------------------------------------------


class RateIn(StrictModel):
    """Exactly one of `bps` (of the line amount) or `flat` (minor units per unit sold)."""

    bps: Bps | None = None
    flat: Flat | None = None

    @model_validator(mode="after")
    def _one(self) -> RateIn:
        if (self.bps is None) == (self.flat is None):
            raise ValueError("give exactly one of bps or flat")
        return self


class ProductRate(RateIn):
    product_id: uuid.UUID


class VariantRate(RateIn):
    variant_id: uuid.UUID


class TierIn(StrictModel):
    """Reached when every threshold given is met by the affiliate's sales with this seller this
    calendar month BEFORE the order: orders >= min_orders, amount (minor units) >= min_amount."""

    min_orders: StrictInt | None = Field(default=None, ge=0, le=10**9)
    min_amount: StrictInt | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    bps: Bps

    @model_validator(mode="after")
    def _threshold(self) -> TierIn:
        if self.min_orders is None and self.min_amount is None:
            raise ValueError("a tier needs min_orders or min_amount")
        return self


class PlanRules(StrictModel):
    """A commission plan. Most specific rule wins: variant > product > default (tiers replace
    the default). First-order bonus adds; recruiter override is paid on top to the selling
    affiliate's recruiter. Every commission is funded by the seller."""

    default: RateIn
    products: list[ProductRate] = Field(default_factory=list, max_length=MAX_OVERRIDES)
    variants: list[VariantRate] = Field(default_factory=list, max_length=MAX_OVERRIDES)
    tiers: list[TierIn] = Field(default_factory=list, max_length=MAX_TIERS)
    first_order_bonus: RateIn | None = None
    recruiter_override_bps: Bps = 0
    quota_bonus: RateIn | None = Field(default=None, description=(
        "added on sales past the affiliate's monthly quota in this program (orders and/or revenue; "
        "POST /v1/programs/{program_id}/quotas)"))

    @model_validator(mode="after")
    def _unique(self) -> PlanRules:
        for items, field in ((self.products, "product_id"), (self.variants, "variant_id")):
            ids = [getattr(item, field) for item in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"each {field} may have one rule")
        return self

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True)


class PlanVersionIn(StrictModel):
    rules: PlanRules
    effective_from: datetime | None = Field(
        default=None, description="UTC; default now; never in the past (history is not rewritten)"
    )
    note: str = Field(default="", max_length=500)

    @field_validator("effective_from")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("effective_from needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        return value


class PlanVersionOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    version: int
    effective_from: datetime
    rules: dict[str, object]
    note: str
    created_at: datetime


# --- storefronts ----------------------------------------------------------------------------------


# --- storefronts ----------------------------------------------------------------------------------

WHITE_TEXT_MIN_CONTRAST = 4.5  # WCAG 2 AA for body text: the storefront's header writes white on the colour


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_with_white(hex_color: str) -> float:
    """WCAG 2 contrast ratio of white text on `#rrggbb` (1 to 21)."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)
    return 1.05 / (luminance + 0.05)


BrandColor = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$", examples=["#1d4e89"],
                                  description="`#rrggbb`; white text on it must reach contrast 4.5:1 (WCAG AA)")]
LogoUrl = Annotated[AnyHttpUrl, Field(description="an https URL of the logo image, at most 500 characters",
                                      examples=["https://example.com/logo.png"])]


class StorefrontCreate(StrictModel):
    slug: Slug
    name: Name
    currency: Currency
    description: str = Field(default="", max_length=5000)
    splits: Splits | None = None

    _splits = field_validator("splits")(_unique_partners)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return normalize_currency(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None


class StorefrontUpdate(StrictModel):
    """Only the fields sent change; `splits: null` removes the storefront's own split."""

    name: Name | None = None
    description: str | None = Field(default=None, max_length=5000)
    splits: Splits | None = None
    logo_url: LogoUrl | None = None
    brand_color: BrandColor | None = None

    _splits = field_validator("splits")(_unique_partners)

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and value.scheme != "https":
            raise ValueError("the logo must be an https URL")
        return _url(value)

    @field_validator("brand_color")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is None:
            return None
        ratio = contrast_with_white(value)
        if ratio < WHITE_TEXT_MIN_CONTRAST:
            raise ValueError(f"white text on {value} has contrast {ratio:.2f}:1; choose a darker colour "
                             f"(at least {WHITE_TEXT_MIN_CONTRAST}:1)")
        return value.lower()


class StorefrontOut(BaseModel):
    """The owner's view (settings included)."""

    id: uuid.UUID
    affiliate_id: uuid.UUID
    slug: str
    name: str
    description: str
    currency: str
    splits: list[SplitShareOut] | None
    logo_url: str | None
    brand_color: str | None
    created_at: datetime
    updated_at: datetime


class StorefrontSellerOut(BaseModel):
    id: uuid.UUID
    name: str


class StorefrontPublicOut(BaseModel):
    """What a buyer sees: no split or commission settings."""

    slug: str
    name: str
    description: str
    currency: str
    affiliate_name: str
    product_count: int
    logo_url: str | None = None
    brand_color: str | None = Field(default=None, description="`#rrggbb` (white text reads on it), or null")
    sellers: list[StorefrontSellerOut] = Field(default_factory=list,
                                               description="the sellers whose products it lists, by name")


class StorefrontDirectoryOut(BaseModel):
    """One storefront in the public directory (approved market makers only)."""

    slug: str
    name: str
    description: str
    currency: str
    affiliate_name: str
    logo_url: str | None
    brand_color: str | None


class ListingIn(StrictModel):
    product_id: uuid.UUID


class ListingOut(BaseModel):
    id: uuid.UUID
    storefront_id: uuid.UUID
    product_id: uuid.UUID
    seller_id: uuid.UUID
    created_at: datetime


# --- referral links, clicks, coupons --------------------------------------------------------------


class LinkCreate(StrictModel):
    """A target URL, or a product (of a program you belong to), or both; optionally a storefront
    of yours (a product link then lands on that storefront's product page)."""

    code: Code | None = Field(default=None, description="default: generated")
    target_url: Url | None = None
    product_id: uuid.UUID | None = None
    storefront_id: uuid.UUID | None = None

    @field_validator("target_url")
    @classmethod
    def _target(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        return _url(value, 1000)

    @model_validator(mode="after")
    def _somewhere(self) -> LinkCreate:
        if self.target_url is None and self.product_id is None and self.storefront_id is None:
            raise ValueError("give target_url, product_id or storefront_id")
        return self


class LinkOut(BaseModel):
    id: uuid.UUID
    affiliate_id: uuid.UUID
    code: str
    url: str = Field(description="share this: GET it to be redirected with an attribution token")
    target_url: str | None
    product_id: uuid.UUID | None
    storefront_id: uuid.UUID | None
    active: bool
    clicks: int = Field(description="unique human visitors counted so far (one per visitor per link per window; "
                                    "bots and repeats are not clicks; Redis counters are flushed every minute)")
    created_at: datetime


class ClickOut(BaseModel):
    id: uuid.UUID
    link_id: uuid.UUID
    storefront_id: uuid.UUID | None
    referer: str | None
    created_at: datetime


class DailyClicksOut(BaseModel):
    day: str
    clicks: int = Field(description="unique human visitors")
    hits: int = Field(description="every request on the link, repeats and bots included")
    bot_hits: int = Field(description="requests from known bots, link previewers and prefetches")


class CouponCreate(StrictModel):
    code: Code
    affiliate_id: uuid.UUID = Field(description="an approved member of your program")


class CouponOut(BaseModel):
    id: uuid.UUID
    code: str
    program_id: uuid.UUID
    seller_id: uuid.UUID
    affiliate_id: uuid.UUID
    discount_bps: int = Field(description="the program's coupon discount now (applied as of the order time)")
    active: bool
    created_at: datetime


# --- preview --------------------------------------------------------------------------------------


class PreviewItem(StrictModel):
    variant_id: uuid.UUID
    quantity: StrictInt = Field(ge=1, le=1000)


class PreviewIn(StrictModel):
    items: list[PreviewItem] = Field(min_length=1, max_length=50)
    buyer_email: EmailStr
    storefront_slug: str | None = Field(default=None, max_length=64)
    attribution_token: str | None = Field(default=None, max_length=64)
    coupon_code: str | None = Field(default=None, max_length=64)


class AttributionOut(BaseModel):
    affiliate_id: uuid.UUID | None
    source: Literal["storefront", "click", "coupon", "none"]
    storefront_id: uuid.UUID | None
    click_id: uuid.UUID | None
    coupon_id: uuid.UUID | None
    self_referral: bool


class CommissionShareOut(BaseModel):
    affiliate_id: uuid.UUID
    role: Literal["affiliate", "split_partner", "recruiter_override"]
    amount: MoneyOut
    program_id: uuid.UUID
    plan_version_id: uuid.UUID
    funded_by: str
    holding_period_days: int


class PreviewLineOut(BaseModel):
    variant_id: uuid.UUID
    product_id: uuid.UUID
    seller_id: uuid.UUID
    quantity: int
    unit_amount: MoneyOut
    gross: MoneyOut
    discount: MoneyOut
    amount: MoneyOut
    platform_fee: MoneyOut
    commissions: list[CommissionShareOut]
    seller_net: MoneyOut
    plan_version_id: uuid.UUID | None
    no_commission_reason: str | None


class PartyTotalOut(BaseModel):
    party_type: Literal["platform", "seller", "affiliate"]
    party_id: uuid.UUID | None
    amount: MoneyOut


class PreviewOut(BaseModel):
    currency: str
    attribution: AttributionOut
    lines: list[PreviewLineOut]
    total: MoneyOut = Field(description="what the buyer pays")
    platform_fee: MoneyOut
    commissions: MoneyOut
    seller_net: MoneyOut
    parties: list[PartyTotalOut] = Field(description="every party's total: platform, each seller, each affiliate")
    first_order_sellers: list[uuid.UUID]


QuotaMetric = Literal["orders", "revenue", "new_customers"]


class QuotaIn(StrictModel):
    """A monthly target: of one affiliate in the program (`affiliate_id`), or of the program as a
    whole (no `affiliate_id`). Setting the same program, affiliate, month and metric again
    replaces the target."""

    affiliate_id: uuid.UUID | None = None
    month: str = Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", description="calendar month (UTC), YYYY-MM")
    metric: QuotaMetric = Field(description="orders, revenue (minor units of `currency`), or new_customers "
                                            "(programs only)")
    target: StrictInt = Field(ge=1, le=MAX_AMOUNT)
    currency: Currency | None = Field(default=None, description="a revenue quota's currency")


class QuotaOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    affiliate_id: uuid.UUID | None
    month: str
    metric: str
    currency: str | None
    target: int


class CharterTermsIn(StrictModel):
    seller_contact_purposes: list[str] = Field(
        default_factory=lambda: ["partner_contact"], max_length=10,
        description="the seller's team sees a brought buyer's email and phone only with consent to one of these")
    affiliate_contact_purposes: list[str] = Field(
        default_factory=list, max_length=10,
        description="the affiliate sees its buyers' email and phone unmasked only with consent to one of these")
    affiliate_sees_name: StrictBool = False
    share_relationship_contacts: StrictBool = False


class CharterIn(StrictModel):
    terms: CharterTermsIn
    text: str = Field(default="", max_length=20_000, description="the charter as the parties read it")


class CharterOut(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    version: int
    terms: dict[str, Any]
    text: str
    created_at: datetime


class CharterAcceptIn(StrictModel):
    version: StrictInt = Field(ge=1, le=CHARTER_VERSION_MAX)


class CharterAcceptanceOut(BaseModel):
    program_id: uuid.UUID
    affiliate_id: uuid.UUID
    version: int
    accepted_at: datetime
