"""The month-to-date sales counter the volume tiers read (`affiliate_monthly_sales`).

Checkout calls `record_attributed_sale` in its own transaction, right after it wrote the order,
so the counter moves with the order (a rollback rolls it back too). The write is one atomic
upsert (`orders = orders + 1, amount = amount + n`) for all sellers of the order: concurrent
checkouts of one affiliate add up without a read-modify-write race and without a row lock held
longer than the statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from affiliates.engine import CartLine, Settlement, attributed_sale_amounts, month_key
from affiliates.models import AffiliateMonthlySales
from kernel.pgsql import is_postgres


def record_attributed_sale(
    session: Session, *, settlement: Settlement, lines: Sequence[CartLine], at: datetime, sign: int = 1
) -> dict[uuid.UUID, int]:
    """Count one order for the attributed affiliate with every seller whose lines earned it
    commission (`engine.attributed_sale_amounts`), in the calendar month (UTC) of `at`. Returns
    {seller_id: amount counted}; nothing is written for self-referrals or unattributed orders."""
    amounts = attributed_sale_amounts(settlement, lines)
    if amounts and settlement.attribution.affiliate_id is not None:
        count_sales(session, settlement.attribution.affiliate_id, lines[0].currency, at, amounts, sign)
    return amounts


def count_sales(
    session: Session, affiliate_id: uuid.UUID, currency: str, at: datetime, amounts: dict[uuid.UUID, int], sign: int
) -> None:
    """Add (`sign=1`) or take back (`sign=-1`: an order cancelled unpaid, with the order's own
    `at`) one order and `amounts` per seller in the affiliate's month-to-date counters."""
    rows = [
        {"affiliate_id": affiliate_id, "seller_id": seller_id, "month": month_key(at), "currency": currency,
         "orders": sign, "amount": sign * amount}
        for seller_id, amount in sorted(amounts.items())  # key order: the global lock order, kernel.locking
    ]
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = insert(AffiliateMonthlySales).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["affiliate_id", "seller_id", "month", "currency"],
        set_={"orders": AffiliateMonthlySales.orders + stmt.excluded.orders,
              "amount": AffiliateMonthlySales.amount + stmt.excluded.amount},
    )
    session.execute(stmt)


def monthly_sales(session: Session, affiliate_id: uuid.UUID, month: str) -> list[AffiliateMonthlySales]:
    return list(session.scalars(
        select(AffiliateMonthlySales)
        .where(AffiliateMonthlySales.affiliate_id == affiliate_id, AffiliateMonthlySales.month == month)
        .order_by(AffiliateMonthlySales.seller_id)
    ))
