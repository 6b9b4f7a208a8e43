"""Plan simulation (issue 16): what a draft plan version would have paid on a program's stored
orders of a period, partner by partner, beside what they earned; nothing is written.

The same engine as checkout (affiliates.service.commission.plans.evaluate_line) prices every line
that earned a commission in the program, with what checkout knew then, rebuilt from the stored
orders: the line's amount, fee, variant and product; the volume tier and the quota from the
affiliate's month-to-date sales with the seller before the order (walked in order, from the
month's first order; only attributed, commission-earning orders count, as for the counters); a
first-order bonus when the buyer had no earlier live order with the seller; a recruiter override
when the line paid one. The draft pool is split between the partners in the proportions the line
was actually split (largest remainder, kernel.money.allocate). Which lines earn does not change
(a draft changes rates, not membership or attribution). Amounts are at sale: refunds are not
taken off either side. Apply the draft with `POST /v1/programs/{id}/plan-versions` and an
`effective_from`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, Quota
from affiliates.service.commission.plans import Plan, evaluate_line
from affiliates.service.commission.rules import month_key
from affiliates.service.commission.terms import ROLE_AFFILIATE, ROLE_RECRUITER, ROLE_SPLIT_PARTNER, MonthSales
from affiliates.service.commission.terms import Quota as QuotaTerms
from kernel.money import allocate
from orders.models import Commission, Order, OrderLine, OrderStatus, SubOrder

CHUNK = 2000


@dataclass
class PartnerResult:
    affiliate_id: uuid.UUID
    currency: str
    name: str = ""
    earned: int = 0
    would_earn: int = 0


@dataclass
class SimulationResult:
    orders: int = 0
    lines: int = 0
    partners: list[PartnerResult] = field(default_factory=list)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # currency -> (earned, would earn)


def simulate(session: Session, program_id: uuid.UUID, seller_id: uuid.UUID, rules: Mapping[str, Any],
             since: datetime, until: datetime) -> SimulationResult:
    draft = Plan.parse(rules)
    # One statement, streamed in order: every commission of the program on the period's paid
    # orders, with its line and order (plain rows, no ORM objects: 100,000 orders in seconds).
    rows: Any = session.execute(
        select(Order.id, Order.created_at, Order.affiliate_id, Order.currency, Order.buyer_email,
               OrderLine.id, OrderLine.variant_id, OrderLine.product_id, OrderLine.quantity, OrderLine.amount,
               OrderLine.platform_fee_amount, Commission.affiliate_id, Commission.role, Commission.amount)
        .join(OrderLine, OrderLine.id == Commission.order_line_id).join(Order, Order.id == Commission.order_id)
        .where(Commission.program_id == program_id, Order.status == OrderStatus.PAID.value,
               Order.created_at >= since, Order.created_at < until)
        .order_by(Order.created_at, Order.id, OrderLine.id, Commission.id)
        .execution_options(yield_per=CHUNK)
    )
    result = SimulationResult()
    partners: dict[tuple[uuid.UUID, str], PartnerResult] = {}
    month_sales: dict[tuple[uuid.UUID, str], MonthSales] = {}
    first_seen = _first_orders(session, seller_id, since, until)
    quotas = _quotas(session, program_id, since, until)
    for _, order_rows in groupby(rows, key=lambda row: row[0]):
        order = list(order_rows)
        order_id, created_at, affiliate_id, currency, buyer = order[0][:5]
        result.orders += 1
        month = month_key(created_at)
        key = (affiliate_id, month)
        before = month_sales.get(key, MonthSales())
        tier = draft.tier_rate(before.orders, before.amount)
        quota = quotas.get((affiliate_id, month, currency)) or quotas.get((affiliate_id, month, "*"))
        past_quota = quota is not None and quota.met_by(before)
        first = first_seen.get(buyer) == order_id
        counted = 0
        for _, line_rows in groupby(order, key=lambda row: row[5]):
            line = list(line_rows)
            _, _, _, _, _, _, variant_id, product_id, quantity, amount, fee = line[0][:11]
            result.lines += 1
            pool_parts = [(aid, paid) for *_, aid, role, paid in line if role in (ROLE_AFFILIATE, ROLE_SPLIT_PARTNER)]
            recruiter = [(aid, paid) for *_, aid, role, paid in line if role == ROLE_RECRUITER]
            priced = evaluate_line(
                draft, variant_id=variant_id, product_id=product_id, quantity=quantity, line_amount=amount,
                platform_fee=fee, tier=tier, first_order=first, has_recruiter=bool(recruiter), past_quota=past_quota)
            weights = [paid for _, paid in pool_parts]
            if pool_parts and sum(weights) == 0:
                weights = [1] + [0] * (len(pool_parts) - 1)
            parts = allocate(priced.pool, weights) if pool_parts else []
            shares = [*zip(pool_parts, parts, strict=True),
                      *((share, priced.recruiter_override if i == 0 else 0) for i, share in enumerate(recruiter))]
            for (aid, paid), part in shares:
                partner = partners.setdefault((aid, currency), PartnerResult(aid, currency))
                partner.earned += paid
                partner.would_earn += part
            if pool_parts:
                counted += amount
        if counted:
            month_sales[key] = MonthSales(before.orders + 1, before.amount + counted)
    names = {aid: name for aid, name in session.execute(
        select(Affiliate.id, Affiliate.name).where(Affiliate.id.in_({a for a, _ in partners})))} if partners else {}
    for (affiliate_id, currency), partner in sorted(partners.items(), key=lambda kv: (kv[0][1], str(kv[0][0]))):
        partner.name = names.get(affiliate_id, "")
        result.partners.append(partner)
        earned, would = result.totals.get(currency, (0, 0))
        result.totals[currency] = (earned + partner.earned, would + partner.would_earn)
    return result


def _first_orders(session: Session, seller_id: uuid.UUID, since: datetime, until: datetime) -> dict[str, uuid.UUID]:
    """buyer -> the id of the buyer's first live (not cancelled) order with the seller, for
    buyers of the period."""
    first_at = (
        select(Order.buyer_email, func.min(Order.created_at).label("at"))
        .join(SubOrder, SubOrder.order_id == Order.id)
        .where(SubOrder.seller_id == seller_id, Order.status != OrderStatus.CANCELLED.value, Order.created_at < until)
        .group_by(Order.buyer_email).subquery()
    )
    rows: Any = session.execute(
        select(Order.buyer_email, Order.id).join(first_at, (first_at.c.buyer_email == Order.buyer_email)
                                                 & (first_at.c.at == Order.created_at))
        .join(SubOrder, SubOrder.order_id == Order.id).where(SubOrder.seller_id == seller_id, first_at.c.at >= since)
    )
    return {email: order_id for email, order_id in rows}


def _quotas(session: Session, program_id: uuid.UUID, since: datetime,
            until: datetime) -> dict[tuple[uuid.UUID, str, str], QuotaTerms]:
    """(affiliate, month, currency) -> its quota terms: orders targets apply in every currency."""
    months = {month_key(since), month_key(until)}
    found: dict[tuple[uuid.UUID, str], dict[str, Any]] = defaultdict(dict)
    for quota in session.scalars(select(Quota).where(Quota.program_id == program_id, Quota.affiliate_id.is_not(None),
                                                     Quota.month >= min(months), Quota.month <= max(months))):
        assert quota.affiliate_id is not None
        found[(quota.affiliate_id, quota.month)][quota.metric if quota.metric == "orders" else
                                                 f"revenue:{quota.currency}"] = quota.target
    out: dict[tuple[uuid.UUID, str, str], QuotaTerms] = {}
    currencies = {key.split(":")[1] for targets in found.values() for key in targets if key.startswith("revenue:")}
    for (affiliate_id, month), targets in found.items():
        for currency in currencies | {"*"}:
            terms = QuotaTerms(targets.get("orders"), targets.get(f"revenue:{currency}"))
            if terms.orders is not None or terms.amount is not None:
                out[(affiliate_id, month, currency)] = terms
    return out
