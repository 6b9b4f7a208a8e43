"""The checkout's Idempotency-Key: one path, whichever way the order is written.

1. `lookup` (in the checkout's first statement): the key's committed order, if any, and the
   sellers this buyer already has live orders with (the first-order rule). A committed key
   answers at once with its order (`replay_of`), before the cart is priced, so a replay answers
   even if the products changed since.
2. The write claims the key with `claim` (INSERT ... ON CONFLICT DO NOTHING), after the cart's
   stock rows are locked and before any order row is written. A twin still in flight holds
   the key's index entry: the claim waits for it to finish, then does nothing if it committed.
3. Not claimed, or short of stock: `committed` reads the key again (a new statement sees what
   committed since). A twin's order is replayed (`replay_of`); else the cart did not fit.

`replay_of` refuses a key reused with another request (IdempotencyKeyReused). The scope is the
route's (a key is one order per storefront, or outside any storefront).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kernel.pgsql import aggregated_ids, is_postgres, precompile, run_built
from orders.errors import IdempotencyKeyReused
from orders.models import IdempotencyKey
from orders.service.queries import ACTIVE_ORDER_STATES, buyer_sellers

_CLAIMED_COLUMNS = ("id", "scope", "key", "request_hash", "order_id", "created_at")


def scope_of(storefront_slug: str | None) -> str:
    return f"checkout:{storefront_slug or '-'}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the key lookup found: the committed order for the key (with the request hash it was
    made for), or None; and the sellers the buyer has live orders with."""

    request_hash: str | None
    order_id: uuid.UUID | None
    sellers_seen: frozenset[uuid.UUID]


def lookup(postgres: bool) -> Any:
    """SELECT (one row) the key's committed order and request hash, or NULLs, and the sellers
    the buyer has live orders with (parameters: `lookup_params`). The checkout reads it inside
    its first statement (orders.service.checkout); `found` reads the row back. A twin still in flight is
    not visible here; the write's claim waits for it."""
    one = select(literal(1).label("one")).subquery("one")
    seen = buyer_sellers(postgres).scalar_subquery()
    return (
        select(IdempotencyKey.request_hash, IdempotencyKey.order_id, seen.label("sellers_seen"))
        .select_from(one.outerjoin(IdempotencyKey, and_(
            IdempotencyKey.scope == bindparam("scope"), IdempotencyKey.key == bindparam("key"))))
    )


def lookup_params(scope: str, key: str, buyer_email: str) -> dict[str, Any]:
    return {"scope": scope, "key": key, "buyer_email": buyer_email, "states": list(ACTIVE_ORDER_STATES)}


LOOKUP_WIDTH = 3  # the columns of `lookup`


def found(row: Any) -> Lookup:
    """The `lookup` columns of `row` (its first LOOKUP_WIDTH)."""
    request_hash, order_id, seen = row[:LOOKUP_WIDTH]
    return Lookup(request_hash, order_id, aggregated_ids(seen))


def claim(insert: Any, gate: Any = None) -> Any:
    """INSERT the key row from the parameters `claim_params` names, RETURNING its id, or nothing
    when the key is already there (committed, or committed by a twin the INSERT waited for).
    `insert` is the dialect's (`postgresql.insert` / `sqlite.insert`); `gate`, a condition the
    row is inserted under (the one-statement write claims only a cart that fits)."""
    table = IdempotencyKey.__table__
    source = select(*(bindparam(name, type_=table.c[name].type) for name in _CLAIMED_COLUMNS))
    return (
        insert(table)
        .from_select(list(_CLAIMED_COLUMNS), source.where(true() if gate is None else gate))
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(table.c.id)
    )


def claim_params(
    scope: str, key: str, request_hash: str, order_id: uuid.UUID, now: datetime, key_id: uuid.UUID
) -> dict[str, Any]:
    return {"id": key_id, "scope": scope, "key": key, "request_hash": request_hash, "order_id": order_id,
            "created_at": now}


@lru_cache(maxsize=2)
def _claim_stmt(postgres: bool) -> Any:
    return claim(postgresql.insert if postgres else sqlite.insert)


def claim_now(session: Session, params: dict[str, Any]) -> bool:
    """Claim the key on its own (the step-by-step write): True when this request now holds it."""
    return session.execute(_claim_stmt(is_postgres(session)), params).first() is not None


@lru_cache(maxsize=2)
def _key_stmt(postgres: bool) -> Any:
    stmt = select(IdempotencyKey.request_hash, IdempotencyKey.order_id).where(
        IdempotencyKey.scope == bindparam("scope"), IdempotencyKey.key == bindparam("key"))
    return precompile(stmt) if postgres else stmt


def committed(session: Session, scope: str, key: str) -> tuple[str, uuid.UUID] | None:
    """(request hash, order id) of the key as committed now, or None."""
    row = run_built(session, _key_stmt, {"scope": scope, "key": key}).first()
    return None if row is None else (row[0], row[1])


def replay_of(request_hash: str, order_id: uuid.UUID, fingerprint: str) -> uuid.UUID:
    """The order to replay for a committed key, if the request is the one it was made for."""
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request; use a new key for a new order"
        )
    return order_id
