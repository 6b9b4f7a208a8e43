"""Quota attainment, live (issue 16): what each quota of a month has reached so far.

An affiliate's quota reads the same month-to-date counters its commissions read (the volume
tiers' `affiliate_monthly_sales`: orders summed over currencies, revenue in the quota's
currency), so the attainment shown and the plan's quota bonus (affiliates.service.commission.
plans, rule 7) never disagree. A program's quota reads the growth rollup of the program
(orders, revenue net of refunds, new customers) over the days of the month.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, AffiliateMonthlySales, Program, Quota
from orders.models import GrowthDaily
from orders.service.reports import names_of


@dataclass(frozen=True)
class Attainment:
    id: uuid.UUID
    program_id: uuid.UUID
    affiliate_id: uuid.UUID | None
    name: str  # the affiliate's, or for a program's quota its seller's
    month: str
    metric: str
    currency: str | None
    target: int
    actual: int
    attainment: float  # actual / target
    met: bool


def _month_days(month: str) -> tuple[date, date]:
    year, number = int(month[:4]), int(month[5:7])
    start = date(year, number, 1)
    return start, date(year + number // 12, number % 12 + 1, 1)


def attainment(session: Session, month: str, *, program_ids: Collection[uuid.UUID] | None = None,
               affiliate_id: uuid.UUID | None = None) -> list[Attainment]:
    stmt = select(Quota, Program.seller_id).join(Program, Program.id == Quota.program_id).where(Quota.month == month)
    if program_ids is not None:
        stmt = stmt.where(Quota.program_id.in_(program_ids))
    if affiliate_id is not None:
        stmt = stmt.where(Quota.affiliate_id == affiliate_id)
    rows = list(session.execute(stmt.order_by(Quota.program_id, Quota.affiliate_id, Quota.metric)))
    if not rows:
        return []
    sales = AffiliateMonthlySales
    by_affiliate: dict[tuple[uuid.UUID, uuid.UUID, str], tuple[int, int]] = {}
    affiliates = {quota.affiliate_id for quota, _ in rows if quota.affiliate_id is not None}
    if affiliates:
        for aid, sid, currency, orders, amount in session.execute(
            select(sales.affiliate_id, sales.seller_id, sales.currency, func.sum(sales.orders), func.sum(sales.amount))
            .where(sales.month == month, sales.affiliate_id.in_(affiliates))
            .group_by(sales.affiliate_id, sales.seller_id, sales.currency)
        ):
            by_affiliate[(aid, sid, currency)] = (int(orders or 0), int(amount or 0))
    start, end = _month_days(month)
    d = GrowthDaily
    by_program: dict[tuple[uuid.UUID, str], tuple[int, int, int]] = {}
    programs = {quota.program_id for quota, _ in rows if quota.affiliate_id is None}
    if programs:
        for pid, currency, orders, revenue, new in session.execute(
            select(d.group_id, d.currency, func.sum(d.orders), func.sum(d.revenue), func.sum(d.new_customers))
            .where(d.group_type == "program", d.group_id.in_(programs), d.day >= start, d.day < end)
            .group_by(d.group_id, d.currency)
        ):
            by_program[(pid, currency)] = (int(orders or 0), int(revenue or 0), int(new or 0))
    affiliate_names = {aid: name for aid, name in session.execute(
        select(Affiliate.id, Affiliate.name).where(Affiliate.id.in_(affiliates)))} if affiliates else {}
    program_names = names_of(session, "program", programs)
    out = []
    for quota, seller_id in rows:
        if quota.affiliate_id is not None:
            mine = [v for (aid, sid, cur), v in by_affiliate.items() if aid == quota.affiliate_id
                    and sid == seller_id and (quota.metric == "orders" or cur == quota.currency)]
            actual = sum(orders if quota.metric == "orders" else amount for orders, amount in mine)
            name = affiliate_names.get(quota.affiliate_id, "")
        else:
            figures = [v for (pid, cur), v in by_program.items()
                       if pid == quota.program_id and (quota.metric != "revenue" or cur == quota.currency)]
            index = {"orders": 0, "revenue": 1, "new_customers": 2}[quota.metric]
            actual = sum(f[index] for f in figures)
            name = program_names.get(quota.program_id, "")
        out.append(Attainment(
            id=quota.id, program_id=quota.program_id, affiliate_id=quota.affiliate_id, name=name, month=quota.month,
            metric=quota.metric, currency=quota.currency, target=quota.target, actual=actual,
            attainment=round(actual / quota.target, 3), met=actual >= quota.target,
        ))
    return out
