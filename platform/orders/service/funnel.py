"""The Four E's funnel per affiliate, storefront and program (issue 16), read from rollups only.

- Exploration: unique storefront visits (growth_traffic_daily) and unique human referral clicks
  (referral_click_daily; a storefront's: the clicks on links to it).
- Evaluation: product views.
- Engagement: carts started, checkouts begun.
- Experience: paid orders (growth_daily), repeat buyers (buyers whose first order in the group was
  in the period and who paid again on a later day within `repeat_window_days` of it), and
  advocates (buyers active in the period who became affiliates and brought a buyer of their own).

A program's traffic is its seller's (one program per seller): product views of its products,
checkouts with its seller's lines. Clicks are counted per affiliate and storefront only.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from affiliates.models import Affiliate, ClickDailyCount, Program, ReferralLink, TrafficDaily
from orders.models import GrowthCustomer, GrowthDaily
from orders.service.reports import names_of, period

FunnelBy = Literal["affiliate", "storefront", "program"]


@dataclass(frozen=True)
class FunnelRow:
    group_id: uuid.UUID
    name: str
    visits: int
    clicks: int | None
    product_views: int
    carts_started: int
    checkouts_begun: int
    orders: int
    repeat_buyers: int
    advocates: int
    view_rate: float | None  # product views per visit or click
    cart_rate: float | None  # carts started per product view
    checkout_rate: float | None  # checkouts begun per cart started
    order_rate: float | None  # paid orders per checkout begun
    close_ratio: float | None  # paid orders per visit or click


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def funnel(session: Session, group_by: FunnelBy, *, days: int = 30, repeat_window_days: int = 30,
           only: Collection[uuid.UUID] | None = None) -> list[FunnelRow]:
    _, since, _ = period(days)
    if only is not None and not only:
        return []
    traffic = _traffic(session, group_by, since, only)
    orders = _sum_by_group(session, select(GrowthDaily.group_id, func.sum(GrowthDaily.orders)).where(
        GrowthDaily.group_type == group_by, GrowthDaily.day >= since), GrowthDaily.group_id, only)
    clicks = _clicks(session, group_by, since, only)
    repeat = _repeat_buyers(session, group_by, since, repeat_window_days, only)
    advocates = _advocates(session, group_by, since, only)
    ids = set(traffic) | set(orders) | set(clicks)
    names = names_of(session, group_by, ids)
    rows = []
    for group_id in sorted(ids, key=str):
        visits, views, carts, checkouts = traffic.get(group_id, (0, 0, 0, 0))
        n_clicks = clicks.get(group_id, 0) if group_by != "program" else None
        arrivals = visits + (n_clicks or 0)
        n_orders = orders.get(group_id, 0)
        rows.append(FunnelRow(
            group_id=group_id, name=names.get(group_id, ""), visits=visits, clicks=n_clicks, product_views=views,
            carts_started=carts, checkouts_begun=checkouts, orders=n_orders,
            repeat_buyers=repeat.get(group_id, 0), advocates=advocates.get(group_id, 0),
            view_rate=_ratio(views, arrivals), cart_rate=_ratio(carts, views),
            checkout_rate=_ratio(checkouts, carts), order_rate=_ratio(n_orders, checkouts),
            close_ratio=_ratio(n_orders, arrivals),
        ))
    return rows


def _sum_by_group(session: Session, stmt: Any, column: Any, only: Collection[uuid.UUID] | None) -> dict[uuid.UUID, int]:
    if only is not None:
        stmt = stmt.where(column.in_(only))
    return {group_id: int(n or 0) for group_id, n in session.execute(stmt.group_by(column)) if group_id is not None}


def _traffic(session: Session, group_by: FunnelBy, since: date,
             only: Collection[uuid.UUID] | None) -> dict[uuid.UUID, tuple[int, int, int, int]]:
    t = TrafficDaily
    sums = (func.sum(t.visits), func.sum(t.product_views), func.sum(t.carts_started), func.sum(t.checkouts_begun))
    if group_by == "program":  # a program's traffic is its seller's
        stmt: Any = select(Program.id, *sums).join(Program, Program.seller_id == t.group_id).where(
            t.group_type == "seller", t.day >= since)
        column: Any = Program.id
    else:
        stmt = select(t.group_id, *sums).where(t.group_type == group_by, t.day >= since)
        column = t.group_id
    if only is not None:
        stmt = stmt.where(column.in_(only))
    return {group_id: tuple(int(v or 0) for v in values)  # type: ignore[misc]
            for group_id, *values in session.execute(stmt.group_by(column))}


def _clicks(session: Session, group_by: FunnelBy, since: date,
            only: Collection[uuid.UUID] | None) -> dict[uuid.UUID, int]:
    c = ClickDailyCount
    if group_by == "affiliate":
        return _sum_by_group(session, select(c.affiliate_id, func.sum(c.clicks)).where(c.day >= since),
                             c.affiliate_id, only)
    if group_by == "storefront":
        return _sum_by_group(session, select(ReferralLink.storefront_id, func.sum(c.clicks)).join(
            ReferralLink, ReferralLink.id == c.link_id).where(c.day >= since), ReferralLink.storefront_id, only)
    return {}


def _repeat_buyers(session: Session, group_by: FunnelBy, since: date, window: int,
                   only: Collection[uuid.UUID] | None) -> dict[uuid.UUID, int]:
    g = GrowthCustomer
    if session.get_bind().dialect.name == "sqlite":
        gap: Any = func.julianday(g.second_day) - func.julianday(g.first_day)
    else:
        gap = g.second_day - g.first_day
    return _sum_by_group(session, select(g.group_id, func.count()).where(
        g.group_type == group_by, g.first_day >= since, g.second_day.is_not(None), gap <= window), g.group_id, only)


def _advocates(session: Session, group_by: FunnelBy, since: date,
               only: Collection[uuid.UUID] | None) -> dict[uuid.UUID, int]:
    """Buyers of the group active in the period whose email is an affiliate's that has buyers
    of its own (its self-referrals are not in its group: those are somebody else)."""
    buyer, theirs = GrowthCustomer, aliased(GrowthCustomer)
    brought = select(theirs.group_id).where(theirs.group_type == "affiliate", theirs.group_id == Affiliate.id)
    return _sum_by_group(session, select(buyer.group_id, func.count(func.distinct(buyer.buyer_email))).join(
        Affiliate, Affiliate.email == buyer.buyer_email).where(
        buyer.group_type == group_by, buyer.last_day >= since, brought.exists()), buyer.group_id, only)
