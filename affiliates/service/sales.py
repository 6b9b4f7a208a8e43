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

from affiliates.engine import ROLE_AFFILIATE, ROLE_SPLIT_PARTNER, CartLine, Settlement, month_key
from affiliates.models import AffiliateMonthlySales


def record_attributed_sale(
    session: Session, *, settlement: Settlement, lines: Sequence[CartLine], at: datetime, sign: int = 1
) -> dict[uuid.UUID, int]:
    """Count one order for the attributed affiliate with every seller whose lines earned it
    commission (a line with an "affiliate" or "split_partner" share), in the calendar month (UTC)
    of `at`. The amount counted is what the buyer pays for that seller's lines, in the order's
    currency. Returns {seller_id: amount counted}; nothing is written for self-referrals or
    unattributed orders. `sign=-1` takes a cancelled order back out (same `at` as the order).
    """
    attribution = settlement.attribution
    if attribution.affiliate_id is None or attribution.self_referral or not lines:
        return {}
    amounts: dict[uuid.UUID, int] = {}
    for line, settled in zip(lines, settlement.lines, strict=True):
        if any(c.role in (ROLE_AFFILIATE, ROLE_SPLIT_PARTNER) for c in settled.commissions):
            amounts[line.seller_id] = amounts.get(line.seller_id, 0) + settled.amount
    if not amounts:
        return {}
    currency = lines[0].currency
    month = month_key(at)
    rows = [
        {"affiliate_id": attribution.affiliate_id, "seller_id": seller_id, "month": month, "currency": currency,
         "orders": sign, "amount": sign * amount}
        for seller_id, amount in sorted(amounts.items())  # fixed order: no deadlock between two upserts
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(AffiliateMonthlySales).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["affiliate_id", "seller_id", "month", "currency"],
        set_={"orders": AffiliateMonthlySales.orders + stmt.excluded.orders,
              "amount": AffiliateMonthlySales.amount + stmt.excluded.amount},
    )
    session.execute(stmt)
    return amounts


def monthly_sales(session: Session, affiliate_id: uuid.UUID, month: str) -> list[AffiliateMonthlySales]:
    return list(session.scalars(
        select(AffiliateMonthlySales)
        .where(AffiliateMonthlySales.affiliate_id == affiliate_id, AffiliateMonthlySales.month == month)
        .order_by(AffiliateMonthlySales.seller_id)
    ))
