"""Today at a glance, for the operator console's home: orders placed and paid, sales, platform
fees, refunds and what payees are owed, per currency. "Today" is the UTC day of `clock.now()`.

Each figure is one aggregate statement grouped by currency (no order is loaded into Python):
orders placed (`created_at`), orders paid with their totals and fees (`paid_at`), refunds
(`created_at`), and the payees' balances from the journal (`queries.platform_balances`, an
index-only scan since migration 0014). The order and refund filters have no index of their own:
at millions of orders they scan the table once per read (a `paid_at` index is the next step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.clock import clock
from orders.models import Order, Refund
from orders.service import queries


@dataclass
class TodayFigures:
    currency: str
    orders_placed: int = 0
    orders_paid: int = 0
    sales: int = 0  # minor units: what buyers paid for today's paid orders
    platform_fees: int = 0  # minor units: the platform's fee on those orders
    commissions: int = 0  # minor units: affiliates' commissions on those orders
    refunds: int = 0  # count of refunds made today
    refunded: int = 0  # minor units
    payees_available: int = 0  # minor units: due to be paid in the next payout
    payees_pending: int = 0  # minor units: earned, still inside a holding period
    payees_in_transit: int = 0  # minor units: frozen in a running payout batch


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def today(session: Session) -> tuple[datetime, list[TodayFigures]]:
    """(the start of today, the figures per currency that has any), currencies sorted."""
    since = start_of_day(clock.now())
    figures: dict[str, TodayFigures] = {}

    def of(currency: str) -> TodayFigures:
        return figures.setdefault(currency, TodayFigures(currency))

    for currency, count in session.execute(
        select(Order.currency, func.count()).where(Order.created_at >= since).group_by(Order.currency)
    ):
        of(currency).orders_placed = count
    for currency, count, total, fees, commissions in session.execute(
        select(Order.currency, func.count(), func.sum(Order.total_amount), func.sum(Order.platform_fee_amount),
               func.sum(Order.commission_amount))
        .where(Order.paid_at >= since).group_by(Order.currency)
    ):
        row = of(currency)
        row.orders_paid, row.sales, row.platform_fees, row.commissions = count, int(total), int(fees), int(commissions)
    for currency, count, amount in session.execute(
        select(Refund.currency, func.count(), func.sum(Refund.amount)).where(Refund.created_at >= since)
        .group_by(Refund.currency)
    ):
        row = of(currency)
        row.refunds, row.refunded = count, int(amount)
    for balance in queries.platform_balances(session):
        if balance.payees_available or balance.payees_pending or balance.payees_in_transit:
            row = of(balance.currency)
            row.payees_available, row.payees_pending = balance.payees_available, balance.payees_pending
            row.payees_in_transit = balance.payees_in_transit
    return since, [figures[currency] for currency in sorted(figures)]
