"""Catalog request and response shapes. Amounts are integer minor units with a currency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from catalog.models import ProductStatus, SellerStatus
from kernel.money import MoneyError, normalize_currency
from kernel.payout_accounts import PayoutAccountStatus
from kernel.people import OwnerSignUp
from kernel.schemas import MAX_AMOUNT, Currency, MoneyOut, StrictModel

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=20_000)]
Sku = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
          description="letters, digits and . _ / - ; unique among the seller's variants", examples=["PRO-1Y"]),
]
Tag = Annotated[str, Field(min_length=1, max_length=50)]
Category = Annotated[str, Field(min_length=1, max_length=100)]
StockLevel = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
WeightGrams = Annotated[StrictInt, Field(ge=0, le=1_000_000_000, description="grams, for weight-band shipping")]
Url = Annotated[AnyHttpUrl, Field(description="http(s) URL, at most 500 characters")]

MAX_VARIANTS = 100


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _url(value: AnyHttpUrl | None) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) > 500:
        raise ValueError("URL longer than 500 characters")
    return text


# --- sellers ------------------------------------------------------------------------------------


class SellerApply(OwnerSignUp):
    name: Name
    email: EmailStr
    website: Url | None = None
    description: Description = ""

    @field_validator("website")
    @classmethod
    def _website(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        _url(value)
        return value


class SellerUpdate(StrictModel):
    """Only the fields sent change; send `null` to clear website or webhook_url."""

    name: Name | None = None
    website: Url | None = None
    description: Description | None = None
    webhook_url: Url | None = Field(default=None, description="where the platform POSTs your signed events")

    @field_validator("website", "webhook_url")
    @classmethod
    def _length(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        _url(value)
        return value


class SellerReject(StrictModel):
    reason: str = Field(min_length=1, max_length=500)


class SellerOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    website: str | None
    description: str
    status: SellerStatus
    status_reason: str | None
    payout_status: PayoutAccountStatus
    stripe_account_id: str | None
    bank_reference: str | None
    webhook_url: str | None
    created_at: datetime
    updated_at: datetime


class SellerApplicationOut(BaseModel):
    seller: SellerOut
    api_key: str = Field(description="the seller's API key, shown once: store it now")
    api_key_id: uuid.UUID
    api_key_prefix: str
    owner_person_id: uuid.UUID | None = Field(default=None, description="the owner person, when a password was sent")


# --- products -----------------------------------------------------------------------------------


class PriceIn(StrictModel):
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="integer minor units (cents for USD, yen for JPY)")
    currency: Currency

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        return _currency(value)


class VariantIn(StrictModel):
    sku: Sku
    name: Name
    price: PriceIn
    stock: StockLevel = 0
    active: StrictBool = True
    weight_grams: WeightGrams = 0


PRODUCT_CREATE_EXAMPLE: dict[str, Any] = {
    "name": "Ledgerly Invoicing", "description": "Invoices, reminders and VAT reports for studios",
    "category": "Software", "tags": ["invoicing", "saas"], "currency": "USD", "requires_shipping": False,
    "variants": [{"sku": "LDG-BASIC", "name": "Basic", "price": {"amount": 1900, "currency": "USD"}, "stock": 1000},
                 {"sku": "LDG-PRO", "name": "Pro", "price": {"amount": 4900, "currency": "USD"}, "stock": 1000}],
}
PRODUCT_EXAMPLE: dict[str, Any] = {
    "id": "01a2063a-7c2b-7c2b-945a-b8372d14ebab", "seller_id": "01a2063a-7846-7846-8f56-c46ddf04a478",
    "name": "Ledgerly Invoicing", "description": "Invoices, reminders and VAT reports for studios",
    "category": "Software", "tags": ["invoicing", "saas"], "currency": "USD", "status": "published",
    "requires_shipping": False, "version": 2, "from_price": {"amount": 1900, "currency": "USD"},
    "variants": [
        {"id": "01a2063a-7602-7602-a016-ac609431b54e", "product_id": "01a2063a-7c2b-7c2b-945a-b8372d14ebab",
         "sku": "LDG-BASIC", "name": "Basic", "position": 0, "price": {"amount": 1900, "currency": "USD"},
         "stock": 1000, "active": True, "weight_grams": 0, "product_version": 2,
         "created_at": "2026-10-20T16:43:44.236565Z",
         "updated_at": "2026-10-20T16:43:44.236563Z"},
        {"id": "01a2063a-7807-7807-a4fe-17171d6cabf8", "product_id": "01a2063a-7c2b-7c2b-945a-b8372d14ebab",
         "sku": "LDG-PRO", "name": "Pro", "position": 1, "price": {"amount": 4900, "currency": "USD"},
         "stock": 996, "active": True, "weight_grams": 0, "product_version": 2,
         "created_at": "2026-10-20T16:43:44.236567Z",
         "updated_at": "2026-10-20T16:43:45.675200Z"},
    ],
    "created_at": "2026-10-20T16:43:44.235889Z", "updated_at": "2026-10-20T16:43:44.257513Z",
}


class ProductCreate(StrictModel):
    """A product with its levels (variants), each with its own SKU, price and stock; it starts as a draft."""

    model_config = ConfigDict(json_schema_extra={"examples": [PRODUCT_CREATE_EXAMPLE]})

    name: Name
    description: Description = ""
    category: Category | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    currency: Currency
    requires_shipping: StrictBool = Field(
        default=True, description="false for goods that are not shipped (software, services): a paid "
        "sale counts as delivered at once, so its holding periods start at payment")
    variants: list[VariantIn] = Field(min_length=1, max_length=MAX_VARIANTS)

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        return _currency(value)


class ProductUpdate(StrictModel):
    """Only the fields sent change; `category: null` clears it. The currency cannot change."""

    name: Name | None = None
    description: Description | None = None
    category: Category | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    requires_shipping: StrictBool | None = Field(default=None, description="applies to orders paid from now on")


class VariantUpdate(StrictModel):
    name: Name | None = None
    price: PriceIn | None = None
    active: StrictBool | None = None
    weight_grams: WeightGrams | None = None


class StockChange(StrictModel):
    """Exactly one of `delta` (add or remove units) or `set` (the new level). Stock never goes negative."""

    delta: StrictInt | None = Field(default=None, ge=-1_000_000_000, le=1_000_000_000)
    set_: StockLevel | None = Field(default=None, alias="set")

    @model_validator(mode="after")
    def _exactly_one(self) -> StockChange:
        if (self.delta is None) == (self.set_ is None):
            raise ValueError('send exactly one of "delta" or "set"')
        return self


class VariantOut(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    name: str
    position: int
    price: MoneyOut
    stock: int
    active: bool
    weight_grams: int = Field(description="what weight-band shipping rates weigh (0: not given)")
    product_version: int = Field(description="the product's version after this change")
    created_at: datetime
    updated_at: datetime


class ProductOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PRODUCT_EXAMPLE]})

    id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    description: str
    category: str | None
    tags: list[str]
    currency: str
    status: ProductStatus
    requires_shipping: bool
    version: int
    from_price: MoneyOut | None = Field(description="lowest price among active variants")
    variants: list[VariantOut]
    created_at: datetime
    updated_at: datetime


# --- the public catalog ---------------------------------------------------------------------


CatalogSort = Literal["newest", "price_asc", "price_desc", "name"]


class CatalogVariantOut(BaseModel):
    id: uuid.UUID
    sku: str
    name: str
    price: MoneyOut
    stock: int
    in_stock: bool


class CatalogProductOut(BaseModel):
    """A published product of an approved seller, as affiliates and storefronts see it
    (active variants only)."""

    id: uuid.UUID
    seller_id: uuid.UUID
    seller_name: str
    name: str
    description: str
    category: str | None
    tags: list[str]
    currency: str
    from_price: MoneyOut
    in_stock: bool
    version: int
    variants: list[CatalogVariantOut]
    created_at: datetime
    updated_at: datetime


# --- shipping (catalog.service.shipping) ---------------------------------------------------------

Zone = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
                            description='a country ("US", ISO 3166-1) or one of its regions ("US-CA", ISO 3166-2)')]
ShippingAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="minor units of the profile's currency")]


class ShippingRateIn(StrictModel):
    name: str = Field(min_length=1, max_length=100, description='what the buyer sees, e.g. "Standard (3-5 days)"')
    kind: Literal["flat", "per_item", "weight_band"] = Field(
        description="flat: once per sub-order; per_item: per unit; weight_band: once, for a part weighing "
                    "min_weight_grams..max_weight_grams")
    amount: ShippingAmount
    min_weight_grams: WeightGrams | None = None
    max_weight_grams: WeightGrams | None = None
    free_over_amount: StrictInt | None = Field(
        default=None, gt=0, le=MAX_AMOUNT,
        description="free once the seller's part of the cart (unit price x quantity) reaches this")

    @model_validator(mode="after")
    def _band(self) -> ShippingRateIn:
        banded = self.min_weight_grams is not None or self.max_weight_grams is not None
        if self.kind == "weight_band":
            if self.min_weight_grams is None or self.max_weight_grams is None:
                raise ValueError("a weight_band rate needs min_weight_grams and max_weight_grams")
            if self.min_weight_grams > self.max_weight_grams:
                raise ValueError("min_weight_grams must not exceed max_weight_grams")
        elif banded:
            raise ValueError("only a weight_band rate has weights")
        return self


class ShippingProfileIn(StrictModel):
    """Where a seller ships (zones) and at which rates; the buyer chooses one rate per seller."""

    name: str = Field(min_length=1, max_length=100)
    currency: Currency
    zones: list[Zone] = Field(min_length=1, max_length=250)
    rates: list[ShippingRateIn] = Field(min_length=1, max_length=20)

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        return _currency(value)


class ShippingRateOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    amount: MoneyOut
    min_weight_grams: int | None
    max_weight_grams: int | None
    free_over: MoneyOut | None


class ShippingProfileOut(BaseModel):
    id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    currency: str
    zones: list[str]
    active: bool
    rates: list[ShippingRateOut]
    created_at: datetime


class ShippingQuoteItemIn(StrictModel):
    variant_id: uuid.UUID
    quantity: StrictInt = Field(ge=1, le=1000)


class ShippingQuoteIn(StrictModel):
    items: list[ShippingQuoteItemIn] = Field(min_length=1, max_length=50)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=100, description='e.g. "CA" (matches zone "US-CA")')


class ShippingOptionOut(BaseModel):
    rate_id: uuid.UUID
    name: str
    kind: str
    amount: MoneyOut


class ShippingSellerQuoteOut(BaseModel):
    seller_id: uuid.UUID
    required: bool = Field(description="the seller ships with a rate: checkout must choose one of `options`")
    options: list[ShippingOptionOut] = Field(description="cheapest first; empty: no rate ships there")


class ShippingQuoteOut(BaseModel):
    sellers: list[ShippingSellerQuoteOut]
