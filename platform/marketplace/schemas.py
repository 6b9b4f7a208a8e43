"""Pydantic shapes shared by every domain: money, pages, problems."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from marketplace.errors import Unprocessable
from marketplace.money import CURRENCY_EXPONENTS, MoneyError, normalize_currency

T = TypeVar("T")

Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["USD"], description="ISO 4217 code")]


def _known_currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


KnownCurrency = Annotated[Currency, AfterValidator(_known_currency)]
"""A currency code checked against the currencies the platform knows, upper-cased."""
MAX_AMOUNT = 10**12  # minor units; a sanity bound far above any single order


class StrictModel(BaseModel):
    """Input models refuse unknown fields: a typo in a field name is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MoneyIn(StrictModel):
    amount: int = Field(ge=0, le=MAX_AMOUNT, description="integer minor units (cents for USD)")
    currency: KnownCurrency


class MoneyOut(BaseModel):
    amount: int = Field(description="integer minor units")
    currency: str


def money(amount: int, currency: str) -> MoneyOut:
    return MoneyOut(amount=amount, currency=currency)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page; null at the end")


Limit = Annotated[int, Field(ge=1, le=200)]


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise Unprocessable("cursor is not one this API returned") from None


def known_currencies() -> list[str]:
    return sorted(CURRENCY_EXPONENTS)
