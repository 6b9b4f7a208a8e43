"""Money: integer minor units with an ISO 4217 currency. Never floats.

One rounding rule for every share (`bps_share`: round half to even) and one way to split an
amount between partners (`allocate`: largest remainder, ties to the partner listed first), so
a split always sums exactly to what was split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

# Minor-unit exponent per ISO 4217 currency we accept. Three-decimal currencies are left out on
# purpose: the payment rail and the price validation rules (2 or 0 decimals) do not cover them.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "MXN": 2, "BRL": 2, "SGD": 2,
    "HKD": 2, "INR": 2, "ZAR": 2, "ILS": 2, "AED": 2, "TRY": 2, "CNY": 2, "THB": 2, "MYR": 2,
    "PHP": 2, "IDR": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XOF": 0,
    "XAF": 0, "PYG": 0, "RWF": 0,
}

BPS_DENOMINATOR = 10_000


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


def normalize_currency(code: str) -> str:
    upper = code.strip().upper()
    if upper not in CURRENCY_EXPONENTS:
        raise MoneyError(f"unsupported currency {code!r}; use an ISO 4217 code such as USD or EUR")
    return upper


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[normalize_currency(currency)]


def to_minor(major: Decimal | str, currency: str) -> int:
    """Parse a major-unit decimal ("49.99") into minor units, refusing extra precision."""
    value = Decimal(str(major))
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{major} has more decimals than {currency} allows ({exponent(currency)})")
    return int(scaled)


def format_minor(amount: int, currency: str) -> str:
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits)
    return f"{value:,.{digits}f} {normalize_currency(currency)}"


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer number of minor units")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return format_minor(self.amount, self.currency)

    def as_dict(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}


def round_half_even_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, in exact integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def bps_share(amount: int, bps: int) -> int:
    """The design's one rounding rule: round_half_even(amount * bps / 10_000)."""
    return round_half_even_div(amount * bps, BPS_DENOMINATOR)


def prorate(share: int, part: int, whole: int) -> int:
    """share * part / whole with the same rounding; used for partial refunds."""
    if whole <= 0:
        raise ValueError("whole must be positive")
    return round_half_even_div(share * part, whole)


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` by integer `weights` so the parts sum exactly to `amount`.

    Largest-remainder method: each part gets the floor of its exact share, then the minor
    units left over go one each to the largest remainders, ties to the weight listed first.
    Negative amounts split symmetrically (the parts of -x are the negated parts of x), so a
    reversal of an allocation is the allocation of the reversal.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    total = sum(weights)
    if total == 0:
        raise ValueError("weights must not all be zero")
    if amount < 0:
        return [-part for part in allocate(-amount, weights)]
    floors = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    left = amount - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return floors
