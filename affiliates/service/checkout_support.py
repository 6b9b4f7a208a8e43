"""What checkout needs from storefronts, from the storefront cache (no SELECT on a hit)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from affiliates.service.storefronts import public_storefront
from kernel.cache import session_store


@dataclass(frozen=True, slots=True)
class CheckoutStorefront:
    id: uuid.UUID
    slug: str
    affiliate_id: uuid.UUID
    currency: str
    listed_product_ids: frozenset[uuid.UUID]


def storefront_for_checkout(session: Session, slug: str) -> CheckoutStorefront:
    """The storefront by slug with the ids of the products it lists, read through the public
    storefront cache (invalidated after commit whenever listings change; two SELECTs on a miss).
    Raises StorefrontNotFound (404) for an unknown slug or a storefront whose affiliate is not
    approved. Whether the affiliate still earns on each seller is checked live by the engine.
    The cache is the store of the runtime that opened `session`."""
    entry = public_storefront(session, session_store(session), slug)
    return CheckoutStorefront(
        id=entry.id, slug=entry.slug, affiliate_id=entry.affiliate_id, currency=entry.currency,
        listed_product_ids=frozenset(pid for _, pid in entry.listings),
    )
