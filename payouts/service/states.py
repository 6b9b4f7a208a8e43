"""The payout item state machine: `queued -> frozen -> sending -> paid | failed` (and
`queued -> skipped`, `frozen -> failed`). It only moves forward; the database trigger of
migration 0005 refuses the same moves this guard refuses, so even a bug elsewhere cannot send an
item back to be paid again.

Two ways in, one table of legal moves (`ITEM_TRANSITIONS`): `advance` moves one loaded item (the
Stripe rail, an item at a time); `advance_all` moves a whole chunk in one UPDATE statement (the
run's set-based steps: a 100,000-payee batch would otherwise send 300,000 single-row UPDATEs)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, func, literal_column, update
from sqlalchemy.orm import Session

from kernel import pgsql
from kernel.clock import clock
from payouts.errors import InvalidItemTransition
from payouts.models import ITEM_TRANSITIONS, ItemStatus, PayoutItem

ITEMS: Table = PayoutItem.__table__  # type: ignore[assignment]


def advance(item: PayoutItem, new: ItemStatus) -> None:
    """Move `item` to `new`, stamping the time of the step; refuse any other move."""
    current = ItemStatus(item.status)
    if new not in ITEM_TRANSITIONS[current]:
        raise InvalidItemTransition(f"payout item {item.id} cannot go from {current} to {new}")
    now = clock.now()
    item.status = new.value
    if new is ItemStatus.FROZEN:
        item.frozen_at = now
    elif new is ItemStatus.SENDING:
        item.sending_at = item.sending_at or now
    else:
        item.settled_at = now


def advance_all(
    session: Session, new: ItemStatus, item_ids: Sequence[uuid.UUID], *, from_: Collection[ItemStatus],
    values: Mapping[str, Any] | None = None, rows: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Move the items `item_ids` (locked by the caller, each in one of `from_`) to `new` in one
    UPDATE, stamping the step's time like `advance`, with `values` (the same for every row: a
    value or a SQL expression) and `rows` (per item: {"id": item id, column: value, ...}, every
    row with the same columns; given, they name the items and `item_ids` is ignored). `from_` may
    hold `new` itself for items already there (a re-send stays `sending`). Any move outside
    ITEM_TRANSITIONS is refused before the statement; a row not in `from_` any more (which the
    caller's lock rules out) makes the count differ, and the caller's transaction must roll back."""
    for current in from_:
        if current is not new and new not in ITEM_TRANSITIONS[current]:
            raise InvalidItemTransition(f"payout items cannot go from {current} to {new}")
    ids = [row["id"] for row in rows] if rows is not None else list(item_ids)
    if not ids:
        return
    now = clock.now()
    fixed: dict[str, Any] = {"status": new.value, "updated_at": now, **(values or {})}
    if new is ItemStatus.FROZEN:
        fixed["frozen_at"] = now
    elif new is ItemStatus.SENDING:
        fixed["sending_at"] = func.coalesce(ITEMS.c.sending_at, now)
    else:
        fixed["settled_at"] = now
    sources = sorted(status.value for status in from_)
    # The statuses as SQL literals (enum values, not input): SQLite's executemany takes no IN list parameter.
    in_sources = ITEMS.c.status.in_([literal_column(f"'{source}'") for source in sources])
    postgres = pgsql.is_postgres(session)
    if rows is None:
        where = pgsql.in_list(ITEMS.c.id, "ids", postgres)
        stmt = update(ITEMS).where(where, in_sources).values(fixed)
        moved = session.execute(stmt, {"ids": ids}).rowcount  # type: ignore[attr-defined]
    elif postgres:
        # One statement for the chunk: the per-item values as one JSON parameter.
        names = tuple(sorted(name for name in rows[0] if name != "id"))
        payload = orjson.dumps([{name: row[name] for name in ("id", *names)} for row in rows]).decode()
        moved = session.execute(_update_from_json(names).where(in_sources).values(fixed),
                                {"rows": payload}).rowcount  # type: ignore[attr-defined]
    else:  # SQLite (one local writer): executemany of the same statement
        names = tuple(sorted(name for name in rows[0] if name != "id"))
        stmt = (update(ITEMS).where(ITEMS.c.id == bindparam("item_id"), in_sources)
                .values({**fixed, **{name: bindparam(f"v_{name}") for name in names}}))
        moved = session.execute(stmt, [
            {"item_id": row["id"], **{f"v_{name}": row[name] for name in names}} for row in rows
        ]).rowcount  # type: ignore[attr-defined]
    if moved != len(ids):
        raise InvalidItemTransition(f"{len(ids) - moved} of {len(ids)} payout items could not move to {new} "
                                    f"(only from {', '.join(sources)})")


@lru_cache(maxsize=16)
def _update_from_json(names: tuple[str, ...]) -> Any:
    source = pgsql.json_rows(ITEMS, "rows", "v")
    return update(ITEMS).where(ITEMS.c.id == source.c.id).values({name: source.c[name] for name in names})
