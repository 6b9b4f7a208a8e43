"""Shipping per seller: a seller's profiles (zones and rates) and what its part of a cart costs
to ship. Every shipping rule is here; checkout (orders) calls `chosen_shipping`.

- A zone is a country ("US": all of it) or one region of a country ("US-CA"). A destination
  (country, region) is in a profile when one of its zones is the country or country-region.
- A rate's price for a seller's part of a cart (its units, weight, and subtotal: unit price times
  quantity of its lines, before any coupon, so the quote and the checkout agree):
  `flat` its amount once; `per_item` its amount per unit; `weight_band` its amount once when
  min <= weight <= max grams (inclusive), otherwise the rate does not apply. Any rate with
  `free_over_amount` costs 0 once the subtotal reaches it.
- A seller with an active profile (`sellers.ships_with_profiles`, kept here) must be given one of
  its rates for its part at checkout; a seller without one ships at no charge, as before shipping
  existed, and such a cart costs checkout nothing more (the flag comes with the cart's variants).
- Archiving a profile stops its rates for new orders; orders keep what they were charged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import InvalidShipping, ShippingProfileNotFound
from catalog.models import Seller, ShippingProfile, ShippingRate, ShippingRateKind
from catalog.schemas import (
    ShippingOptionOut,
    ShippingProfileIn,
    ShippingProfileOut,
    ShippingRateOut,
    ShippingSellerQuoteOut,
)
from catalog.service.stock import VariantForCheckout, load_variants_for_checkout
from kernel.db import new_id
from kernel.schemas import money


@dataclass(frozen=True, slots=True)
class SellerPart:
    """One seller's part of a cart, as shipping prices it."""

    seller_id: uuid.UUID
    currency: str
    units: int
    weight_grams: int
    subtotal: int


@dataclass(frozen=True, slots=True)
class ShippingOption:
    rate_id: uuid.UUID
    seller_id: uuid.UUID
    name: str
    kind: str
    amount: int
    currency: str


def seller_parts(
    variants: Mapping[uuid.UUID, VariantForCheckout], quantities: Iterable[tuple[uuid.UUID, int]]
) -> dict[uuid.UUID, SellerPart]:
    """The cart's parts per seller (in order of first appearance)."""
    parts: dict[uuid.UUID, SellerPart] = {}
    for variant_id, quantity in quantities:
        variant = variants[variant_id]
        part = parts.get(variant.seller_id)
        units, weight, subtotal = (part.units, part.weight_grams, part.subtotal) if part else (0, 0, 0)
        parts[variant.seller_id] = SellerPart(
            variant.seller_id, variant.currency, units + quantity, weight + variant.weight_grams * quantity,
            subtotal + variant.price_amount * quantity,
        )
    return parts


def in_zone(zones: Sequence[str], country: str, region: str | None) -> bool:
    country = country.strip().upper()
    region = (region or "").strip().upper()
    return country in zones or (bool(region) and f"{country}-{region}" in zones)


def rate_price(rate: ShippingRate, part: SellerPart) -> int | None:
    """What `rate` charges for `part`; None when it does not apply (a weight outside its band)."""
    if rate.kind == ShippingRateKind.WEIGHT_BAND:
        low, high = rate.min_weight_grams or 0, rate.max_weight_grams or 0
        if not low <= part.weight_grams <= high:
            return None
    if rate.free_over_amount is not None and part.subtotal >= rate.free_over_amount:
        return 0
    return rate.amount * part.units if rate.kind == ShippingRateKind.PER_ITEM else rate.amount


# --- the seller's profiles ------------------------------------------------------------------------------


def create_profile(session: Session, seller_id: uuid.UUID, data: ShippingProfileIn) -> ShippingProfile:
    profile = ShippingProfile(id=new_id(), seller_id=seller_id, name=data.name, currency=data.currency,
                              zones=sorted(set(data.zones)), active=True)
    session.add(profile)
    for rate in data.rates:
        session.add(ShippingRate(
            id=new_id(), profile_id=profile.id, seller_id=seller_id, name=rate.name, kind=rate.kind,
            amount=rate.amount, min_weight_grams=rate.min_weight_grams, max_weight_grams=rate.max_weight_grams,
            free_over_amount=rate.free_over_amount,
        ))
    session.flush()
    _keep_flag(session, seller_id)
    session.refresh(profile)
    return profile


def list_profiles(session: Session, seller_id: uuid.UUID) -> list[ShippingProfile]:
    return list(session.scalars(
        select(ShippingProfile).where(ShippingProfile.seller_id == seller_id).order_by(ShippingProfile.id)))


def archive_profile(session: Session, seller_id: uuid.UUID, profile_id: uuid.UUID) -> ShippingProfile:
    profile = session.get(ShippingProfile, profile_id)
    if profile is None or profile.seller_id != seller_id:
        raise ShippingProfileNotFound(f"no shipping profile {profile_id}")
    # The seller's flag first (its row before its profiles: kernel.locking), then the profile.
    _keep_flag(session, seller_id, leaving=profile_id)
    profile.active = False
    session.flush()
    return profile


def _keep_flag(session: Session, seller_id: uuid.UUID, leaving: uuid.UUID | None = None) -> None:
    """`sellers.ships_with_profiles` says whether the seller has an active profile: checkout reads
    it with the cart's variants, so a seller without one costs it no extra statement."""
    seller = session.get(Seller, seller_id)
    assert seller is not None, "a seller key acts for an existing seller"
    seller.ships_with_profiles = session.scalar(select(ShippingProfile.id).where(
        ShippingProfile.seller_id == seller_id, ShippingProfile.active.is_(True),
        ShippingProfile.id != leaving if leaving else ShippingProfile.active.is_(True)).limit(1)) is not None
    session.flush()


def profile_out(profile: ShippingProfile) -> ShippingProfileOut:
    c = profile.currency
    return ShippingProfileOut(
        id=profile.id, seller_id=profile.seller_id, name=profile.name, currency=c, zones=list(profile.zones),
        active=profile.active, created_at=profile.created_at,
        rates=[ShippingRateOut(
            id=r.id, name=r.name, kind=r.kind, amount=money(r.amount, c), min_weight_grams=r.min_weight_grams,
            max_weight_grams=r.max_weight_grams,
            free_over=None if r.free_over_amount is None else money(r.free_over_amount, c),
        ) for r in profile.rates],
    )


# --- quotes and the checkout's choice --------------------------------------------------------------------


def _active_rates(session: Session, seller_ids: Iterable[uuid.UUID]) -> list[tuple[ShippingRate, ShippingProfile]]:
    rows = session.execute(
        select(ShippingRate, ShippingProfile).join(ShippingProfile, ShippingProfile.id == ShippingRate.profile_id)
        .where(ShippingProfile.seller_id.in_(list(seller_ids)), ShippingProfile.active.is_(True))
        .order_by(ShippingRate.id)
    ).all()
    return [(rate, profile) for rate, profile in rows]


def quote(
    session: Session, items: Sequence[tuple[uuid.UUID, int]], country: str, region: str | None
) -> list[ShippingSellerQuoteOut]:
    """Each seller's shipping options for the cart to (country, region), cheapest first. A seller
    that must ship with a rate and has none for this destination has `options: []`: the cart
    cannot be checked out to it as it is."""
    quantities: dict[uuid.UUID, int] = {}
    for variant_id, quantity in items:
        quantities[variant_id] = quantities.get(variant_id, 0) + quantity
    variants = load_variants_for_checkout(session, sorted(quantities))
    for variant_id in quantities:
        if variant_id not in variants or not variants[variant_id].orderable:
            raise InvalidShipping(f"variant {variant_id} is not for sale")
    parts = seller_parts(variants, quantities.items())
    options: dict[uuid.UUID, list[ShippingOption]] = {seller_id: [] for seller_id in parts}
    for rate, profile in _active_rates(session, parts):
        part = parts[profile.seller_id]
        price = rate_price(rate, part)
        if price is None or profile.currency != part.currency or not in_zone(profile.zones, country, region):
            continue
        options[part.seller_id].append(ShippingOption(rate.id, part.seller_id, rate.name, rate.kind, price,
                                                      part.currency))
    required = {v.seller_id for v in variants.values() if v.seller_ships_with_profiles}
    return [ShippingSellerQuoteOut(
        seller_id=seller_id, required=seller_id in required,
        options=[ShippingOptionOut(rate_id=o.rate_id, name=o.name, kind=o.kind, amount=money(o.amount, o.currency))
                 for o in sorted(found, key=lambda o: (o.amount, o.name))],
    ) for seller_id, found in options.items()]


def chosen_shipping(
    session: Session, parts: Mapping[uuid.UUID, SellerPart], choices: Mapping[uuid.UUID, uuid.UUID],
    required: set[uuid.UUID], country: str, region: str | None,
) -> dict[uuid.UUID, ShippingOption]:
    """The checkout's shipping, per seller: the rate the buyer chose (`choices`: seller -> rate),
    checked and priced by the rules above. No choice and nobody required: nothing, no statement."""
    for seller_id in choices:
        if seller_id not in parts:
            raise InvalidShipping(f"seller {seller_id} has nothing in this cart to ship")
    missing = sorted(str(seller_id) for seller_id in required - set(choices))
    if missing:
        raise InvalidShipping(f"choose a shipping rate for seller(s) {', '.join(missing)} "
                              "(POST /v1/shipping/quote lists them)")
    if not choices:
        return {}
    rows = session.execute(
        select(ShippingRate, ShippingProfile).join(ShippingProfile, ShippingProfile.id == ShippingRate.profile_id)
        .where(ShippingRate.id.in_(list(choices.values())))
    ).all()
    found = {rate.id: (rate, profile) for rate, profile in rows}
    out: dict[uuid.UUID, ShippingOption] = {}
    for seller_id, rate_id in choices.items():
        part = parts[seller_id]
        rate, profile = found.get(rate_id, (None, None))
        if rate is None or profile is None or rate.seller_id != seller_id or not profile.active:
            raise InvalidShipping(f"shipping rate {rate_id} is not one of seller {seller_id}'s")
        if profile.currency != part.currency:
            raise InvalidShipping(f"shipping rate {rate_id} is in {profile.currency}; the cart is in {part.currency}")
        if not in_zone(profile.zones, country, region):
            raise InvalidShipping(f"shipping rate {rate_id} does not ship to {country}"
                                  + (f"-{region}" if region else ""))
        price = rate_price(rate, part)
        if price is None:
            raise InvalidShipping(f"shipping rate {rate_id} is for {rate.min_weight_grams}-{rate.max_weight_grams} g; "
                                  f"this part weighs {part.weight_grams} g")
        out[seller_id] = ShippingOption(rate.id, seller_id, rate.name, rate.kind, price, part.currency)
    return out
