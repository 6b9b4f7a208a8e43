"""Growth reports: the three levers the business watches (customers, average order value,
purchase frequency) for every seller, affiliate, storefront and program, plus close ratio (clicks
to orders), where orders come from, commission per new customer (the cost of acquiring one), the
same figures for the period before (period over period), and partners whose sales are falling
away (a channel partner leaving is a time bomb).

Read from the rollups (orders.service.rollups: one row per day, group and currency; clicks from
`referral_click_daily`), never from the orders: a report reads a number of rows that grows with
days x groups, not with orders. `customers` is exact for the period (it ends today): the buyers
whose last paid order in the group falls inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, ClickDailyCount, Program, ReferralLink, Storefront
from catalog.models import Seller
from kernel.clock import clock
from orders.models import GrowthCustomer, GrowthDaily

GroupBy = Literal["affiliate", "seller", "storefront", "program"]
TREND_DAYS = 30
FALLING_AWAY_BELOW = 0.5  # this period's sales under half the previous period's


@dataclass(frozen=True)
class GrowthRow:
    group_id: uuid.UUID
    name: str  # the seller's, affiliate's, storefront's (a program: its seller's) name
    currency: str
    orders: int
    customers: int
    new_customers: int
    returning_customers: int  # buyer-days: a buyer back on two days counts twice
    revenue: int  # minor units, net of refunds
    refunded: int  # minor units
    fees: int  # the platform's fees, net of refunds (minor units)
    average_order_value: int  # minor units
    purchase_frequency: float  # orders per customer
    commissions: int  # minor units, net of clawbacks
    commission_per_new_customer: int | None  # minor units
    clicks: int | None
    close_ratio: float | None  # click-attributed orders / clicks
    sources: dict[str, int]
    previous_orders: int  # the period of the same length just before
    previous_revenue: int
    previous_new_customers: int
    previous_commissions: int
    revenue_change: float | None  # (revenue - previous) / previous; None without a previous
    sales_last_30_days: int
    sales_previous_30_days: int
    falling_away: bool


def period(days: int) -> tuple[date, date, date]:
    """(today, first day of the period, first day of the period before)."""
    today = clock.now().date()
    since = today - timedelta(days=days)
    return today, since, since - timedelta(days=days)


def growth(session: Session, group_by: GroupBy, *, days: int = 90,
           only: Collection[uuid.UUID] | None = None) -> list[GrowthRow]:
    today, since, previous_from = period(days)
    recent_from, trend_from = today - timedelta(days=TREND_DAYS), today - timedelta(days=2 * TREND_DAYS)
    d = GrowthDaily

    def total(column: Any, start: date, end: date | None = None) -> Any:
        window = d.day >= start if end is None else (d.day >= start) & (d.day < end)
        return func.sum(case((window, column), else_=0))

    stmt = select(
        d.group_id, d.currency,
        total(d.orders, since), total(d.new_customers, since), total(d.returning_customers, since),
        total(d.revenue, since), total(d.refunded, since), total(d.fees, since), total(d.commissions, since),
        total(d.orders_via_storefront, since), total(d.orders_via_click, since), total(d.orders_via_coupon, since),
        total(d.orders, previous_from, since), total(d.revenue, previous_from, since),
        total(d.new_customers, previous_from, since), total(d.commissions, previous_from, since),
        total(d.revenue, recent_from), total(d.revenue, trend_from, recent_from),
    ).where(d.group_type == group_by, d.day >= min(previous_from, trend_from)).group_by(d.group_id, d.currency)
    if only is not None:
        if not only:
            return []
        stmt = stmt.where(d.group_id.in_(only))
    found: list[tuple[Any, ...]] = [
        (row[0], row[1], *(int(v or 0) for v in row[2:])) for row in session.execute(stmt)]
    ids: set[uuid.UUID] = {row[0] for row in found}
    customers = _customers(session, group_by, since, ids)
    clicks = _clicks(session, group_by, since, ids)
    names = names_of(session, group_by, ids)
    rows = []
    for (group_id, currency, orders, new, back, revenue, refunded, fees, commissions, via_storefront, via_click,
         via_coupon, p_orders, p_revenue, p_new, p_commissions, recent, previous) in sorted(
            found, key=lambda r: (str(r[0]), r[1])):
        if not orders and not p_orders and not recent and not previous:
            continue
        n_customers = customers.get(group_id, 0)
        n_clicks = clicks.get(group_id) if group_by in ("affiliate", "storefront") else None
        sources = {"storefront": via_storefront, "click": via_click, "coupon": via_coupon,
                   "none": orders - via_storefront - via_click - via_coupon}
        rows.append(GrowthRow(
            group_id=group_id, name=names.get(group_id, ""), currency=currency, orders=orders,
            customers=n_customers, new_customers=new, returning_customers=back, revenue=revenue, refunded=refunded,
            fees=fees, average_order_value=revenue // orders if orders else 0,
            purchase_frequency=round(orders / n_customers, 2) if n_customers else 0.0,
            commissions=commissions, commission_per_new_customer=commissions // new if new else None,
            clicks=n_clicks, close_ratio=round(via_click / n_clicks, 3) if n_clicks else None,
            sources={k: v for k, v in sources.items() if v}, previous_orders=p_orders, previous_revenue=p_revenue,
            previous_new_customers=p_new, previous_commissions=p_commissions,
            revenue_change=round((revenue - p_revenue) / p_revenue, 3) if p_revenue else None,
            sales_last_30_days=recent, sales_previous_30_days=previous,
            falling_away=previous > 0 and recent < previous * FALLING_AWAY_BELOW,
        ))
    return rows


def _customers(session: Session, group_by: GroupBy, since: date, ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    c = GrowthCustomer
    rows = session.execute(select(c.group_id, func.count()).where(
        c.group_type == group_by, c.last_day >= since, c.group_id.in_(ids)).group_by(c.group_id))
    return {group_id: int(n) for group_id, n in rows}


def _clicks(session: Session, group_by: GroupBy, since: date, ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Unique human clicks per affiliate or storefront since `since` (flushed counters)."""
    if group_by == "affiliate":
        column: Any = ClickDailyCount.affiliate_id
        stmt = select(column, func.sum(ClickDailyCount.clicks))
    elif group_by == "storefront":
        column = ReferralLink.storefront_id
        stmt = select(column, func.sum(ClickDailyCount.clicks)).join(
            ReferralLink, ReferralLink.id == ClickDailyCount.link_id)
    else:
        return {}
    if not ids:
        return {}
    rows = session.execute(stmt.where(ClickDailyCount.day >= since, column.in_(ids)).group_by(column))
    return {group_id: int(n or 0) for group_id, n in rows if group_id is not None}


def names_of(session: Session, group_by: str, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each group's name: the seller's, affiliate's or storefront's; a program's is its seller's."""
    if not ids:
        return {}
    if group_by == "program":
        stmt: Any = select(Program.id, Seller.name).join(Seller, Seller.id == Program.seller_id).where(
            Program.id.in_(ids))
    else:
        model: Any = {"seller": Seller, "affiliate": Affiliate, "storefront": Storefront}[group_by]
        stmt = select(model.id, model.name).where(model.id.in_(ids))
    return {row_id: name for row_id, name in session.execute(stmt)}

