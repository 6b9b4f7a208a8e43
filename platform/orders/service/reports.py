"""Growth reports: the three levers the business watches (customers, average order value,
purchase frequency) for every seller, affiliate and storefront, plus close ratio (clicks to
orders), where orders come from, commission per new customer (the cost of acquiring one), and
partners whose sales are falling away (a channel partner leaving is a time bomb).

Computed from paid orders on read. That is fine for the order volumes of one marketplace; past
millions of orders the same figures come from a daily rollup table (one row per group and day).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, Click, Storefront
from catalog.models import Seller
from kernel.clock import clock
from orders.models import Commission, Order, OrderStatus, SubOrder

GroupBy = Literal["affiliate", "seller", "storefront"]
TREND_DAYS = 30
FALLING_AWAY_BELOW = 0.5  # this period's sales under half the previous period's


@dataclass
class _Acc:
    orders: set[uuid.UUID] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    new_customers: set[str] = field(default_factory=set)
    revenue: int = 0
    commissions: int = 0
    recent: int = 0
    previous: int = 0
    sources: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class GrowthRow:
    group_id: uuid.UUID
    name: str  # the seller's, affiliate's or storefront's name, so a reader need not look the id up
    currency: str
    orders: int
    customers: int
    new_customers: int
    revenue: int  # minor units, net of refunds
    average_order_value: int  # minor units
    purchase_frequency: float  # orders per customer
    commissions: int  # minor units, net of clawbacks
    commission_per_new_customer: int | None  # minor units
    clicks: int | None
    close_ratio: float | None  # click-attributed orders / clicks
    sources: dict[str, int]
    sales_last_30_days: int
    sales_previous_30_days: int
    falling_away: bool


def growth(
    session: Session, group_by: GroupBy, *, since: datetime | None = None, only: uuid.UUID | None = None
) -> list[GrowthRow]:
    now = clock.now()
    since = since or now - timedelta(days=90)
    recent_from, previous_from = now - timedelta(days=TREND_DAYS), now - timedelta(days=2 * TREND_DAYS)
    orders = list(session.scalars(
        select(Order).where(Order.status == OrderStatus.PAID, Order.paid_at >= min(since, previous_from))
    ))
    first_seen = _first_order_at(session, group_by)
    acc: dict[tuple[uuid.UUID, str], _Acc] = defaultdict(_Acc)
    # Commissions net of clawbacks, per (order, group): what the affiliate earned, what the
    # seller funded, what the storefront's order cost in commissions.
    commission_by_order: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
    for order_id, affiliate_id, seller_id, amount, reversed_amount in session.execute(
        select(Commission.order_id, Commission.affiliate_id, Commission.seller_id, Commission.amount,
               Commission.reversed_amount).where(Commission.order_id.in_([o.id for o in orders]))
    ):
        group_key = {"affiliate": affiliate_id, "seller": seller_id, "storefront": None}[group_by]
        commission_by_order[(order_id, group_key)] += amount - reversed_amount
    for order in orders:
        paid_at = order.paid_at
        assert paid_at is not None
        for group_id, amount in _groups_of(order, group_by):
            if only is not None and group_id != only:
                continue
            a = acc[(group_id, order.currency)]
            if paid_at >= recent_from:
                a.recent += amount
            elif paid_at >= previous_from:
                a.previous += amount
            if paid_at < since:
                continue
            a.orders.add(order.id)
            a.customers.add(order.buyer_email)
            if first_seen.get((group_id, order.buyer_email)) == order.id:
                a.new_customers.add(order.buyer_email)
            a.revenue += amount
            a.sources[order.attribution_source] += 1
            a.commissions += commission_by_order[(order.id, None if group_by == "storefront" else group_id)]
    clicks = _clicks(session, group_by, since)
    names = _names(session, group_by, {group_id for group_id, _ in acc})
    rows = []
    for (group_id, currency), a in sorted(acc.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        n_orders, n_customers = len(a.orders), len(a.customers)
        n_clicks = clicks.get(group_id) if group_by != "seller" else None
        rows.append(GrowthRow(
            group_id=group_id, name=names.get(group_id, ""), currency=currency, orders=n_orders, customers=n_customers,
            new_customers=len(a.new_customers), revenue=a.revenue,
            average_order_value=a.revenue // n_orders if n_orders else 0,
            purchase_frequency=round(n_orders / n_customers, 2) if n_customers else 0.0,
            commissions=a.commissions,
            commission_per_new_customer=a.commissions // len(a.new_customers) if a.new_customers else None,
            # Close ratio: orders that came from a referral click, per click.
            clicks=n_clicks, close_ratio=round(a.sources.get("click", 0) / n_clicks, 3) if n_clicks else None,
            sources=dict(a.sources), sales_last_30_days=a.recent, sales_previous_30_days=a.previous,
            falling_away=a.previous > 0 and a.recent < a.previous * FALLING_AWAY_BELOW,
        ))
    return rows


def _groups_of(order: Order, group_by: GroupBy) -> list[tuple[uuid.UUID, int]]:
    if group_by == "seller":
        return [(s.seller_id, s.amount - s.refunded_amount) for s in order.sub_orders]
    group_id = order.affiliate_id if group_by == "affiliate" else order.storefront_id
    if group_id is None or (group_by == "affiliate" and order.self_referral):
        return []
    return [(group_id, order.total_amount - order.refunded_amount)]


def _names(session: Session, group_by: GroupBy, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    columns = {"seller": (Seller.id, Seller.name), "affiliate": (Affiliate.id, Affiliate.name),
               "storefront": (Storefront.id, Storefront.name)}[group_by]
    return {row_id: name for row_id, name in session.execute(select(*columns).where(columns[0].in_(ids)))}


def _first_order_at(session: Session, group_by: GroupBy) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """(group, buyer) -> the id of the buyer's first paid order in that group (ids sort by time)."""
    rows: list[tuple[uuid.UUID | None, str, uuid.UUID]]
    if group_by == "seller":
        rows = [(g, e, o) for g, e, o in session.execute(
            select(SubOrder.seller_id, Order.buyer_email, Order.id)
            .join(Order, Order.id == SubOrder.order_id).where(Order.status == OrderStatus.PAID).order_by(Order.id)
        )]
    else:
        column = Order.affiliate_id if group_by == "affiliate" else Order.storefront_id
        rows = [(g, e, o) for g, e, o in session.execute(
            select(column, Order.buyer_email, Order.id)
            .where(Order.status == OrderStatus.PAID, column.is_not(None)).order_by(Order.id)
        )]
    first: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    for group_id, email, order_id in rows:
        if group_id is not None:
            first.setdefault((group_id, email), order_id)
    return first


def _clicks(session: Session, group_by: GroupBy, since: datetime) -> dict[uuid.UUID, int]:
    if group_by == "seller":
        return {}
    column = Click.affiliate_id if group_by == "affiliate" else Click.storefront_id
    rows = session.execute(select(column, func.count()).where(Click.created_at >= since).group_by(column))
    return {group_id: int(count) for group_id, count in rows if group_id is not None}
