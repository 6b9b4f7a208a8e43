"""The purposes a buyer gives or refuses consent for, in ONE place.

A buyer answers per purpose at checkout (`CheckoutIn.consents`, e.g. `{"marketing": true}`);
a purpose the buyer did not answer takes its `default`. The order row keeps exactly what the
buyer sent (NULL when nothing was sent: a guest who sends no consents costs the checkout
nothing), and `resolved` fills in the defaults wherever consents are read. The buyer withdraws a
consent later through the order's secret link (`POST /v1/order-status/{token}/consent-withdrawals`):
the link withdraws, it never grants (whoever else holds the link, such as the storefront's
server, cannot consent on the buyer's behalf). Storefronts render the list from
`GET /v1/consent-purposes`.

What each purpose lets a party see of the buyer is the data-sharing charter's business (the
policy that reads these answers); this module only names the purposes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kernel.errors import Unprocessable


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    title: str
    description: str
    default: bool  # what an unanswered purpose means


PURPOSES: tuple[Purpose, ...] = (
    Purpose("order_updates", "Order updates",
            "Emails about this order after the confirmation: payment, shipping, delivery, refunds. The "
            "confirmation with the order's link is always sent.", default=True),
    Purpose("marketing", "Offers",
            "The sellers and the storefront that brought the order may send offers and news to the buyer's email.",
            default=False),
    Purpose("partner_contact", "Contact by the sales teams",
            "The seller's and the storefront's teams may see the buyer's email and phone to contact the buyer "
            "about this purchase and related ones.", default=False),
)
BY_NAME: dict[str, Purpose] = {purpose.name: purpose for purpose in PURPOSES}
NAMES: tuple[str, ...] = tuple(BY_NAME)


class UnknownPurpose(Unprocessable):
    type = "unknown-consent-purpose"
    title = "No such consent purpose"


def check_names(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise UnknownPurpose(f"unknown consent purpose(s): {', '.join(unknown)}; the purposes are "
                             f"{', '.join(NAMES)} (GET /v1/consent-purposes)")


def resolved(given: Mapping[str, bool] | None) -> dict[str, bool]:
    """Every purpose's answer: what the buyer said, else the purpose's default."""
    given = given or {}
    return {purpose.name: bool(given.get(purpose.name, purpose.default)) for purpose in PURPOSES}


def consented(given: Mapping[str, bool] | None, purpose: str) -> bool:
    return resolved(given)[purpose]
