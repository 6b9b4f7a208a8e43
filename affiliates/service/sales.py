"""The month-to-date sales counter the volume tiers read (`affiliate_monthly_sales`).

Checkout counts each order in its own transaction, right after it wrote the order, so the counter
moves with the order (a rollback rolls it back too). The write is one atomic upsert
(`orders = orders + 1, amount = amount + n`) for all sellers of the order: concurrent checkouts
of one affiliate add up without a read-modify-write race and without a row lock held longer than
the statement. Rows go in seller order, so two upserts lock shared rows in the same order.

The upsert is written once (`_adding`) and comes in two forms: `count_sales` runs it (any
backend: checkout step by step, and cancellation with `sign=-1`), `count_sales_from_json` is the
same upsert as a SQLAlchemy Core statement that the checkout's one PostgreSQL statement
composes (orders.service.checkout_pg), fed with `attributed_sale_rows`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from affiliates.models import AffiliateMonthlySales
from affiliates.service.commission import CartLine, Settlement, attributed_sale_amounts, month_key
from kernel.pgsql import is_postgres, json_rows

_KEY = ["affiliate_id", "seller_id", "month", "currency"]


def _adding(stmt: Any) -> Any:
    """An INSERT into the counters that adds to a row already there instead of failing."""
    return stmt.on_conflict_do_update(
        index_elements=_KEY,
        set_={"orders": AffiliateMonthlySales.orders + stmt.excluded.orders,
              "amount": AffiliateMonthlySales.amount + stmt.excluded.amount},
    )


def _rows(
    affiliate_id: uuid.UUID, currency: str, at: datetime, amounts: dict[uuid.UUID, int], sign: int
) -> list[dict[str, Any]]:
    return [
        {"affiliate_id": affiliate_id, "seller_id": seller_id, "month": month_key(at), "currency": currency,
         "orders": sign, "amount": sign * amount}
        for seller_id, amount in sorted(amounts.items())  # key order: the global lock order, kernel.locking
    ]


def attributed_sale_rows(settlement: Settlement, lines: Sequence[CartLine], at: datetime) -> list[dict[str, Any]]:
    """The counter rows one order adds (`commission.attributed_sale_amounts`, in the calendar month
    (UTC) of `at`), in seller order; none for self-referrals and unattributed orders."""
    amounts = attributed_sale_amounts(settlement, lines)
    affiliate_id = settlement.attribution.affiliate_id
    if not amounts or affiliate_id is None:
        return []
    return _rows(affiliate_id, lines[0].currency, at, amounts, 1)


def record_attributed_sale(
    session: Session, *, settlement: Settlement, lines: Sequence[CartLine], at: datetime
) -> dict[uuid.UUID, int]:
    """Count one order for the attributed affiliate with every seller whose lines earned it
    commission (`attributed_sale_rows`). Returns {seller_id: amount counted}."""
    rows = attributed_sale_rows(settlement, lines, at)
    if rows:
        _upsert(session, rows)
    return {row["seller_id"]: row["amount"] for row in rows}


def count_sales(
    session: Session, affiliate_id: uuid.UUID, currency: str, at: datetime, amounts: dict[uuid.UUID, int], sign: int
) -> None:
    """Add (`sign=1`) or take back (`sign=-1`: an order cancelled unpaid, with the order's own
    `at`) one order and `amounts` per seller in the affiliate's month-to-date counters."""
    _upsert(session, _rows(affiliate_id, currency, at, amounts, sign))


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(_adding(insert(AffiliateMonthlySales).values(rows)))


def count_sales_from_json(param: str, gate: Any) -> Any:
    """The same upsert for the rows in JSON parameter `param` (as `attributed_sale_rows` makes
    them), as a PostgreSQL Core statement that writes only when `gate` (a condition evaluated
    once) holds: for a caller's one-statement write (orders.service.checkout_pg). Rows are taken in
    seller order, as `count_sales` takes them."""
    rows = json_rows(AffiliateMonthlySales.__table__, param, "m")  # type: ignore[arg-type]
    source = select(*(rows.c[name] for name in (*_KEY, "orders", "amount"))).where(gate).order_by(rows.c.seller_id)
    return _adding(postgresql.insert(AffiliateMonthlySales).from_select([*_KEY, "orders", "amount"], source))


def monthly_sales(session: Session, affiliate_id: uuid.UUID, month: str) -> list[AffiliateMonthlySales]:
    return list(session.scalars(
        select(AffiliateMonthlySales)
        .where(AffiliateMonthlySales.affiliate_id == affiliate_id, AffiliateMonthlySales.month == month)
        .order_by(AffiliateMonthlySales.seller_id)
    ))
