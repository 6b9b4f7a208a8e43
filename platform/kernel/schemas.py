"""Pydantic shapes shared by every domain: money, pages, problems."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, model_validator

from kernel.errors import Unprocessable
from kernel.money import CURRENCY_EXPONENTS, MoneyError, normalize_currency

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


def holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value has a NUL character in any string (key or value)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False


class StrictModel(BaseModel):
    """Input models refuse unknown fields (a typo in a field name is an error, not a no-op) and
    text with NUL characters, which PostgreSQL cannot store (text or JSON): a 422 here, not a
    500 at the INSERT (and not a value SQLite would store and PostgreSQL refuse).

    Their money amounts, quantities and flags are `StrictInt` / `StrictBool`: `true`, `"1"` and
    `1.0` are not a quantity, `0` and `"yes"` not a flag (tests/test_strict_types.py checks
    every int and bool field of every input model)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        if holds_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


class MoneyIn(StrictModel):
    amount: StrictInt = Field(ge=0, le=MAX_AMOUNT, description="integer minor units (cents for USD)")
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
