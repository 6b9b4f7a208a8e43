"""The checkout's write on PostgreSQL: the key, the stock, every row of the order and the
affiliate's month-to-date counters in ONE statement, all or nothing.

The statement is composed from SQLAlchemy Core constructs, each exported by the package whose
rule it is, and compiled to text once (`kernel.pgsql`):

    locked, wanted, fits   the cart's variant rows locked in id order, and whether every line
                           fits                              (catalog: `cart_stock`)
    k                      the Idempotency-Key, claimed only if the cart fits
                                                             (orders.service.idempotency: `claim`)
    reserved               the stock taken                   (catalog: `CartStock.take`)
    w0..wN                 the order's rows, one INSERT per table from one JSON parameter each
                                                             (orders, from `OrderDraft`)
    monthly                the month-to-date counters upserted
                                                             (affiliates: `count_sales_from_json`)

Each is gated on the one before: a gate is an uncorrelated condition PostgreSQL evaluates once,
before the CTE's first row. `k` is gated on `fits`; everything after it on "k claimed the key"
(`EXISTS (SELECT FROM k)`). A twin in flight holds the key's index entry: we wait for it to finish
(it is past its variant locks, so it never waits on ours), then DO NOTHING if it committed: k is
empty and nothing below happens (the caller replays the twin). Locks are always taken variants ->
key -> counters, each in a fixed order (counters by seller): no deadlock between two checkouts.
Foreign keys are checked at the end of the statement, when every CTE has run.

The API runs it on an autocommit connection (`kernel.db.autocommit_engine`), so this statement IS
the transaction: no BEGIN/COMMIT round trips, and the stock rows are locked only while it runs,
never while Python works between statements. Every table's rows travel as one JSON array that
PostgreSQL turns back into rows of the table's type (json_populate_recordset), so the statement
text and its parameters do not depend on the number of rows (it stays prepared).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from affiliates.service import count_sales_from_json
from catalog.service import StockLevel, cart_stock
from kernel.pgsql import Precompiled, json_rows, precompile
from orders.service import idempotency


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a checkout write did (both forms return it). `written`: everything is in, and
    `levels` (`{product_id: {variant_id: StockLevel}}`) are the stock levels left, for the cache.
    Not written: `short` names the first variant (in id order) without enough stock, or is None
    when the cart fits but the key was not ours (a twin committed it)."""

    written: bool
    levels: dict[uuid.UUID, dict[uuid.UUID, StockLevel]] = field(default_factory=dict)
    short: uuid.UUID | None = None


def _aggregate(column: Any) -> Any:
    """`column` of every row of its CTE, in id order, as one array (NULL when there are none)."""
    return select(func.array_agg(postgresql.aggregate_order_by(column, column.table.c.id))).scalar_subquery()


@lru_cache(maxsize=4)
def _statement(tables: tuple[Table, ...]) -> Precompiled:
    stock = cart_stock()
    k = idempotency.claim(postgresql.insert, gate=stock.fits_gate).cte("k")
    claimed = select(k.c.id).exists()
    reserved = stock.take(claimed)
    writes = []
    for n, table in enumerate(tables):
        rows = json_rows(table, f"rows{n}", f"r{n}")
        names = [column.name for column in table.columns]
        source = select(*(rows.c[name] for name in names)).where(claimed)
        writes.append(insert(table).from_select(names, source).cte(f"w{n}"))
    monthly = count_sales_from_json("monthly", claimed).cte("monthly")
    statement = select(
        stock.fits_gate.label("fits"),
        select(func.count()).select_from(k).scalar_subquery().label("claimed"),
        _aggregate(reserved.c.product_id).label("reserved_products"),
        _aggregate(reserved.c.id).label("reserved_ids"),
        _aggregate(reserved.c.stock).label("reserved_stock"),
        _aggregate(stock.locked.c.id).label("locked_ids"),
        _aggregate(stock.locked.c.stock).label("locked_stock"),
    ).add_cte(*writes, monthly)
    return precompile(statement)


def write(
    session: Session, *, lines: Sequence[tuple[uuid.UUID, int]], now: datetime, key: dict[str, Any],
    tables: Sequence[tuple[Table, list[dict[str, Any]]]], monthly: list[dict[str, Any]],
) -> WriteOutcome:
    """Claim the key (`key`: `idempotency.claim_params`), reserve every line (variant id,
    quantity) and insert `tables`' rows (parents first) and the `monthly` counter rows in ONE
    statement (see the module docstring)."""
    ordered = sorted(lines)
    params: dict[str, Any] = {
        "ids": [variant_id for variant_id, _ in ordered], "qs": [quantity for _, quantity in ordered], "now": now,
        "monthly": orjson.dumps(monthly).decode(), **key,
    }
    for n, (_, rows) in enumerate(tables):
        # orjson writes UUIDs and aware datetimes (ISO 8601 with offset) the way PostgreSQL reads them.
        params[f"rows{n}"] = orjson.dumps(rows).decode()
    statement = _statement(tuple(table for table, _ in tables))
    fits, claimed, products, reserved_ids, reserved_stock, locked_ids, locked_stock = (
        statement.run(session, params).one()
    )
    if claimed:
        # The UPDATE set updated_at to `now` on every row it took.
        levels: dict[uuid.UUID, dict[uuid.UUID, StockLevel]] = {}
        for product_id, variant_id, left in zip(products or (), reserved_ids or (), reserved_stock or (), strict=True):
            levels.setdefault(product_id, {})[variant_id] = StockLevel(left, now)
        return WriteOutcome(True, levels)
    if fits:
        return WriteOutcome(False)  # the key was taken by a twin that committed while we waited on it
    stock = dict(zip(locked_ids or (), locked_stock or (), strict=True))
    short = next((variant_id for variant_id, quantity in ordered if stock.get(variant_id, 0) < quantity), None)
    assert short is not None, "the cart did not fit, yet every line has stock"
    return WriteOutcome(False, short=short)
