"""`settle_cart`: load the terms a cart needs (few statements), then compute the split
(`rules.compute_settlement`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import Session

from affiliates.errors import CouponNotApplicable
from affiliates.service.commission.loaders import load_coupon, load_program_terms, load_terms
from affiliates.service.commission.rules import compute_settlement, every_seller_is_new
from affiliates.service.commission.terms import (
    Attribution,
    CartLine,
    FirstOrderCheck,
    Settlement,
    normalize_coupon_code,
    normalize_email,
)

# (seller_ids, buyer_email) -> the sellers this buyer has never ordered from. The real query
# reads orders, which this package cannot import: checkout passes the orders package's check,
# and the assembly hands it (as a SessionFirstOrderCheck) to the preview endpoint.
SessionFirstOrderCheck = Callable[[Session, frozenset[UUID], str], set[UUID]]


def settle_cart(
    session: Session,
    lines: Sequence[CartLine],
    attribution: Attribution,
    *,
    buyer_email: str,
    platform_fee_bps: int,
    at: datetime,
    coupon_code: str | None = None,
    is_first_order: FirstOrderCheck = every_seller_is_new,
) -> Settlement:
    """Every party's share of every line (the rule is in `affiliates.service.commission.rules`).

    Statements: the programs with the plan versions in force and, if attributed, the affiliate
    with its recruiter, splits, memberships (its own and its split partners') and month-to-date
    sales (1: `loaders.load_terms`), the coupon (1, only with a code the attribution did not
    already read), and whatever `is_first_order(seller_ids, buyer_email)` costs: the caller says
    whose history counts (the default, `every_seller_is_new`, reads none; checkout passes the
    orders package's one-SELECT check).
    An attribution with `self_referral_pending` is decided here (the returned Settlement holds
    the decided one: use `settlement.attribution` from then on).
    """
    if not lines:
        return Settlement(lines=(), attribution=attribution, first_order_sellers=frozenset())
    seller_ids = frozenset(line.seller_id for line in lines)
    currency = lines[0].currency
    earning_id = attribution.affiliate_id if not attribution.self_referral else None

    if earning_id is not None:
        affiliate, programs = load_terms(session, seller_ids, earning_id, attribution.storefront_id, at, currency)
    else:
        affiliate, programs = None, load_program_terms(session, seller_ids, None, at)
    if attribution.self_referral_pending:
        # The storefront's affiliate came from the caller (no SELECT in resolve_attribution): the
        # row just read says whether the buyer is that affiliate.
        self_referral = affiliate is not None and affiliate.email == normalize_email(buyer_email)
        attribution = replace(attribution, self_referral=self_referral, self_referral_pending=False)
        if self_referral:
            affiliate = None
    coupon = None
    if coupon_code:
        read = attribution.coupon  # the coupon attribution read this code already
        coupon = read if read is not None and read.code == normalize_coupon_code(coupon_code) else (
            load_coupon(session, coupon_code))
    if coupon is not None and coupon.seller_id not in seller_ids:
        raise CouponNotApplicable(
            f"coupon {coupon_code!r} is for another seller's products; none of them is in this cart"
        )
    month_sales = {seller_id: terms.month_sales for seller_id, terms in programs.items()}
    first = frozenset(is_first_order(seller_ids, buyer_email)) & seller_ids

    return compute_settlement(
        lines, attribution, programs=programs, affiliate=affiliate, coupon=coupon, month_sales=month_sales,
        first_order_sellers=first, platform_fee_bps=platform_fee_bps, at=at,
    )
