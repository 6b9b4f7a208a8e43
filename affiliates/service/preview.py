"""The commission preview: price a cart from the catalog and settle it with the same engine
calls checkout makes (`resolve_attribution` then `settle_cart`), without writing anything.

Who may preview what (so a preview never shows another party's private terms):
* an operator: any cart, any attribution;
* a seller: carts of its own variants only (another seller's variant is a 404), any attribution;
* an affiliate: any cart, but only attribution to itself: its own storefront (another's is a 404),
  its own click token or coupon (another affiliate's is a 404).

Whether the buyer has ordered from a seller before (the first-order bonus) is buyers' order
history: only an operator's preview reads it. Sellers' and affiliates' previews price the cart as
the buyer's first order with each seller, so no answer depends on who the e-mail address is.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from functools import partial

from sqlalchemy.orm import Session

from affiliates.errors import CartInvalid, StorefrontNotFound
from affiliates.schemas import PreviewIn
from affiliates.service import commission
from affiliates.service.storefronts import public_storefront
from catalog.errors import VariantNotFound
from catalog.service import load_variants_for_checkout
from kernel.auth import Principal, Role
from kernel.cache import Store
from kernel.clock import clock
from kernel.errors import NotFound
from kernel.settings import Settings


class AttributionNotYours(NotFound):
    type = "attribution-not-found"
    title = "Attribution not found"


def preview(session: Session, store: Store, settings: Settings, principal: Principal, data: PreviewIn,
            first_order_check: commission.SessionFirstOrderCheck,
            ) -> tuple[list[commission.CartLine], commission.Settlement]:
    """`first_order_check`: the orders package's "which sellers is this buyer new to" query (the
    assembly passes it; this package cannot import orders). Only an operator's preview runs it."""
    merged: dict[uuid.UUID, int] = {}
    for item in data.items:  # same variant twice is one line, as in checkout
        merged[item.variant_id] = merged.get(item.variant_id, 0) + item.quantity
    variants = load_variants_for_checkout(session, merged)
    lines: list[commission.CartLine] = []
    for variant_id, quantity in merged.items():
        variant = variants.get(variant_id)
        if variant is None or (principal.role is Role.SELLER and variant.seller_id != principal.subject_id):
            raise VariantNotFound(f"no variant {variant_id}")
        if not variant.orderable:
            raise CartInvalid(f"variant {variant_id} is not for sale")
        lines.append(commission.CartLine(
            variant_id=variant_id, product_id=variant.product_id, seller_id=variant.seller_id, quantity=quantity,
            unit_amount=variant.price_amount, currency=variant.currency,
        ))
    currencies = {line.currency for line in lines}
    if len(currencies) != 1:
        raise CartInvalid(f"a cart is paid in one currency; this one mixes {', '.join(sorted(currencies))}")
    storefront_id = None
    if data.storefront_slug:
        storefront = public_storefront(session, store, data.storefront_slug)
        if principal.role is Role.AFFILIATE and storefront.affiliate_id != principal.subject_id:
            raise StorefrontNotFound(f"no storefront {data.storefront_slug!r}")
        listed = {pid for _, pid in storefront.listings}
        for line in lines:
            if line.product_id not in listed:
                raise CartInvalid(f"variant {line.variant_id} is not listed in storefront {data.storefront_slug}")
        if storefront.currency not in currencies:
            raise CartInvalid(f"storefront {data.storefront_slug} sells in {storefront.currency}")
        storefront_id = storefront.id
    now = clock.now()
    attribution = commission.resolve_attribution(
        session, storefront_id=storefront_id, attribution_token=data.attribution_token,
        coupon_code=data.coupon_code, buyer_email=str(data.buyer_email), at=now,
        seller_ids={line.seller_id for line in lines},
    )
    if principal.role is Role.AFFILIATE and attribution.affiliate_id not in (None, principal.subject_id):
        raise AttributionNotYours("the attribution token or coupon is not one of yours")
    settlement = commission.settle_cart(
        session, lines, attribution, buyer_email=str(data.buyer_email),
        platform_fee_bps=settings.platform_fee_bps, at=now, coupon_code=data.coupon_code,
        is_first_order=partial(first_order_check, session) if principal.role is Role.OPERATOR
        else commission.every_seller_is_new,
    )
    return lines, settlement


def party_totals(lines: list[commission.CartLine],
                 settlement: commission.Settlement) -> list[tuple[str, uuid.UUID | None, int]]:
    """(party type, id, amount) for the platform, every seller and every affiliate; sums to the total."""
    sellers: dict[uuid.UUID, int] = defaultdict(int)
    affiliates: dict[uuid.UUID, int] = defaultdict(int)
    fee = 0
    for line, settled in zip(lines, settlement.lines, strict=True):
        fee += settled.platform_fee
        sellers[line.seller_id] += settled.seller_net
        for share in settled.commissions:
            affiliates[share.affiliate_id] += share.amount
    out: list[tuple[str, uuid.UUID | None, int]] = [("platform", None, fee)]
    out += [("seller", sid, amount) for sid, amount in sellers.items()]
    out += [("affiliate", aid, amount) for aid, amount in affiliates.items()]
    return out
