"""The split: every party's share of a cart, computed from loaded terms (pure: no database, so
the table-driven tests call `compute_settlement` directly). Also the two small rules that
travel with it: who counts as a first-time buyer of a seller, and what one order adds to the
affiliate's month-to-date counters (the volume tiers).

Split of one order line (all integer minor units; rates in basis points):

    gross        = unit_amount * quantity
    discount     = bps_share(gross, program.coupon_discount_bps)   only on the coupon seller's lines
    amount       = gross - discount                                  what the buyer pays
    platform_fee = bps_share(amount, platform_fee_bps)
    commissions  = the plan's pool split between partners + recruiter override  (affiliates.service.commission.plans)
    seller_net   = amount - platform_fee - sum(commissions)          the residual: nothing is lost

`bps_share` rounds half to even; splits use largest remainder, ties to the partner listed first
(`kernel.money.allocate`). Every commission is funded by the seller (it comes out of the
seller's residual); the platform fee is computed on the amount, independently of commissions.

Which lines earn: a line earns commission only when its seller has a program with a plan
version in force at `at`, the attributed affiliate is approved and an approved member of that
program, and (click attribution) `at <= clicked_at + that program's window`. Other lines settle
to fee + seller net only; `LineSettlement.no_commission_reason` says why.

Splits live on the selling affiliate: a storefront's `splits` list for storefront orders, else
the affiliate's own default `splits` (profile), else the affiliate keeps the whole pool. A line's
pool is split only among the partners that are approved members of that line's program (the
selling affiliate always is, or the line would not earn): a partner the seller never admitted,
or removed, takes nothing of that seller's sales, and the pool is split by the weights of the
partners that remain (with only the selling affiliate left, it keeps the whole pool).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from affiliates.service.commission.plans import Rate, evaluate_line
from affiliates.service.commission.terms import (
    FUNDED_BY_SELLER,
    ROLE_AFFILIATE,
    ROLE_RECRUITER,
    ROLE_SPLIT_PARTNER,
    SOURCE_CLICK,
    AffiliateTerms,
    Attribution,
    CartLine,
    CommissionShare,
    CouponTerms,
    LineSettlement,
    MonthSales,
    ProgramTerms,
    Settlement,
)
from kernel.clock import as_utc
from kernel.money import allocate, bps_share


def compute_settlement(
    lines: Sequence[CartLine],
    attribution: Attribution,
    *,
    programs: Mapping[UUID, ProgramTerms],
    affiliate: AffiliateTerms | None,
    coupon: CouponTerms | None,
    month_sales: Mapping[UUID, MonthSales],
    first_order_sellers: frozenset[UUID],
    platform_fee_bps: int,
    at: datetime,
) -> Settlement:
    """Every party's share of every line (the rule is in the module docstring)."""
    tiers: dict[UUID, Rate | None] = {}
    settled: list[LineSettlement] = []
    for index, line in enumerate(lines):
        program = programs.get(line.seller_id)
        gross = line.amount
        discount = 0
        if coupon is not None and program is not None and coupon.seller_id == line.seller_id:
            discount = bps_share(gross, program.coupon_discount_bps)
        amount = gross - discount
        fee = bps_share(amount, platform_fee_bps)
        reason = _no_commission_reason(attribution, affiliate, program, at)
        shares: tuple[CommissionShare, ...] = ()
        if reason is None:
            assert program is not None and program.plan is not None and program.plan_version_id is not None
            assert affiliate is not None
            sales = month_sales.get(line.seller_id, MonthSales())
            if line.seller_id not in tiers:
                tiers[line.seller_id] = program.plan.tier_rate(sales.orders, sales.amount)
            result = evaluate_line(
                program.plan, variant_id=line.variant_id, product_id=line.product_id, quantity=line.quantity,
                line_amount=amount, platform_fee=fee, tier=tiers[line.seller_id],
                first_order=line.seller_id in first_order_sellers, has_recruiter=affiliate.recruiter_id is not None,
                past_quota=program.quota is not None and program.quota.met_by(sales),
            )
            shares = _shares(affiliate, program, result.pool, result.recruiter_override)
        settled.append(LineSettlement(
            line_index=index, gross=gross, discount=discount, amount=amount, platform_fee=fee,
            commissions=shares, seller_net=amount - fee - sum(s.amount for s in shares),
            seller_id=line.seller_id,
            program_id=program.program_id if program else None,
            plan_version_id=program.plan_version_id if program else None,
            no_commission_reason=reason,
        ))
    return Settlement(lines=tuple(settled), attribution=attribution, first_order_sellers=first_order_sellers)


def _no_commission_reason(
    attribution: Attribution, affiliate: AffiliateTerms | None, program: ProgramTerms | None, at: datetime
) -> str | None:
    if attribution.affiliate_id is None:
        return "no_attribution"
    if attribution.self_referral:
        return "self_referral"
    if program is None:
        return "no_program"
    if program.plan is None:
        return "no_plan"
    if affiliate is None or not affiliate.approved:
        return "affiliate_not_approved"
    if not program.affiliate_is_member:
        return "not_member"
    if attribution.source == SOURCE_CLICK and attribution.clicked_at is not None:
        clicked = as_utc(attribution.clicked_at)
        if not clicked <= at <= clicked + timedelta(days=program.attribution_window_days):
            return "outside_window"
    return None


def _shares(affiliate: AffiliateTerms, program: ProgramTerms, pool: int, override: int) -> tuple[CommissionShare, ...]:
    assert program.plan_version_id is not None

    def share(affiliate_id: UUID, amount: int, role: str) -> CommissionShare:
        return CommissionShare(
            affiliate_id=affiliate_id, amount=amount, role=role, program_id=program.program_id,
            plan_version_id=program.plan_version_id,  # type: ignore[arg-type]
            funded_by=FUNDED_BY_SELLER, holding_period_days=program.holding_period_days,
        )

    out: list[CommissionShare] = []
    splits = [(partner_id, weight) for partner_id, weight in affiliate.splits
              if partner_id == affiliate.affiliate_id or partner_id in program.member_partners]
    if splits and sum(weight for _, weight in splits) > 0:
        parts = allocate(pool, [weight for _, weight in splits])
        for (partner_id, _), part in zip(splits, parts, strict=True):
            role = ROLE_AFFILIATE if partner_id == affiliate.affiliate_id else ROLE_SPLIT_PARTNER
            out.append(share(partner_id, part, role))
    else:
        out.append(share(affiliate.affiliate_id, pool, ROLE_AFFILIATE))
    if affiliate.recruiter_id is not None:
        out.append(share(affiliate.recruiter_id, override, ROLE_RECRUITER))
    return tuple(s for s in out if s.amount > 0)


# ---------------------------------------------------------------------------------------------
# First orders: the plan's first-order bonus is paid on a seller's lines when the buyer has no
# earlier live (unpaid or paid) order with that seller. The order history is the orders
# package's; it tells us which of the cart's sellers the buyer has already bought from.
# ---------------------------------------------------------------------------------------------


def new_to_buyer(seller_ids: Collection[UUID], sellers_seen: Collection[UUID]) -> set[UUID]:
    """The sellers among `seller_ids` this buyer is a new customer of."""
    return set(seller_ids) - set(sellers_seen)


def every_seller_is_new(seller_ids: frozenset[UUID], _buyer_email: str) -> set[UUID]:
    """The check that reads no history: every buyer is new to every seller."""
    return set(seller_ids)


# ---------------------------------------------------------------------------------------------
# Month-to-date counters (the volume tiers read them): what one order adds
# ---------------------------------------------------------------------------------------------


def attributed_sale_amounts(settlement: Settlement, lines: Sequence[CartLine]) -> dict[UUID, int]:
    """What one order adds to the attributed affiliate's month-to-date sales (the volume tiers'
    counter): {seller_id: amount the buyer pays for that seller's lines}, for every seller with a
    line that earned the affiliate (or its split partner) a commission. Empty for unattributed
    orders and self-referrals. `affiliates.service.sales` writes these."""
    attribution = settlement.attribution
    if attribution.affiliate_id is None or attribution.self_referral or not lines:
        return {}
    return counted_sale_amounts(
        (line.seller_id, settled.amount, [c.role for c in settled.commissions])
        for line, settled in zip(lines, settlement.lines, strict=True)
    )


def counted_sale_amounts(lines: Iterable[tuple[UUID, int, Iterable[str]]]) -> dict[UUID, int]:
    """The month-to-date rule itself, over (seller id, amount the buyer pays, commission roles) per
    line: a line counts for its seller when it earned the affiliate or its split partner a
    commission. Checkout applies it to the settlement; cancelling an unpaid order to its rows."""
    amounts: dict[UUID, int] = {}
    for seller_id, amount, roles in lines:
        if any(role in (ROLE_AFFILIATE, ROLE_SPLIT_PARTNER) for role in roles):
            amounts[seller_id] = amounts.get(seller_id, 0) + amount
    return amounts


def month_key(at: datetime) -> str:
    """The calendar month (UTC) a sale counts in, as stored in affiliate_monthly_sales."""
    return f"{at.year:04d}-{at.month:02d}"
