"""Read side of payouts: batches with their progress, items, a payee's payouts and what each covers."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.auth import Principal
from orders.models import Commission, SubOrder
from payouts.errors import BatchNotFound, PayoutNotFound
from payouts.models import ItemStatus, PayoutBatch, PayoutItem, PayoutRecovery


@dataclass
class StateTotal:
    count: int = 0
    amount: int = 0  # minor units: frozen amounts, or planned amounts for queued / skipped items


@dataclass
class Progress:
    by_status: dict[str, StateTotal] = field(default_factory=lambda: {s.value: StateTotal() for s in ItemStatus})

    @property
    def total(self) -> int:
        return sum(t.count for t in self.by_status.values())

    @property
    def done(self) -> int:
        return sum(self.by_status[s].count for s in ("paid", "failed", "skipped"))


def progress(session: Session, batch_ids: list[uuid.UUID]) -> dict[uuid.UUID, Progress]:
    """Counts and amounts per item status, for every batch in `batch_ids`, in one grouped query."""
    result: dict[uuid.UUID, Progress] = defaultdict(Progress)
    if not batch_ids:
        return result
    rows = session.execute(
        select(PayoutItem.batch_id, PayoutItem.status, func.count(),
               func.sum(func.coalesce(PayoutItem.amount, PayoutItem.planned_amount)))
        .where(PayoutItem.batch_id.in_(batch_ids)).group_by(PayoutItem.batch_id, PayoutItem.status)
    )
    for batch_id, status, count, amount in rows:
        result[batch_id].by_status[status] = StateTotal(int(count), int(amount or 0))
    return result


def get_batch(session: Session, batch_id: uuid.UUID) -> PayoutBatch:
    batch = session.get(PayoutBatch, batch_id)
    if batch is None:
        raise BatchNotFound(f"no payout batch {batch_id}")
    return batch


def list_batches(
    session: Session, *, status: str | None, currency: str | None, after: uuid.UUID | None, limit: int
) -> list[PayoutBatch]:
    """Newest first; one row more than `limit` says there is a next page."""
    stmt = select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(PayoutBatch.status == status)
    if currency:
        stmt = stmt.where(PayoutBatch.currency == currency.upper())
    if after is not None:
        stmt = stmt.where(PayoutBatch.id < after)
    return list(session.scalars(stmt))


def list_items(
    session: Session, *, principal: Principal, batch_id: uuid.UUID | None = None, status: str | None = None,
    after: uuid.UUID | None, limit: int,
) -> list[PayoutItem]:
    """Payout items newest first: a payee sees only its own, an operator every one."""
    stmt = select(PayoutItem).order_by(PayoutItem.id.desc()).limit(limit + 1)
    if not principal.is_operator:
        stmt = stmt.where(PayoutItem.owner_type == principal.role.value, PayoutItem.owner_id == principal.subject_id)
    if batch_id is not None:
        stmt = stmt.where(PayoutItem.batch_id == batch_id)
    if status:
        stmt = stmt.where(PayoutItem.status == status)
    if after is not None:
        stmt = stmt.where(PayoutItem.id < after)
    return list(session.scalars(stmt))


def get_item(session: Session, principal: Principal, item_id: uuid.UUID) -> PayoutItem:
    """Another payee's payout is a 404, like one that does not exist."""
    item = session.get(PayoutItem, item_id)
    mine = item is not None and (
        principal.is_operator
        or (item.owner_type == principal.role.value and item.owner_id == principal.subject_id)
    )
    if item is None or not mine:
        raise PayoutNotFound(f"no payout {item_id}")
    return item


def covered_commissions(session: Session, item_id: uuid.UUID) -> list[Commission]:
    return list(session.scalars(select(Commission).where(Commission.payout_item_id == item_id).order_by(Commission.id)))


def covered_sub_orders(session: Session, item_id: uuid.UUID) -> list[SubOrder]:
    return list(session.scalars(select(SubOrder).where(SubOrder.payout_item_id == item_id).order_by(SubOrder.id)))


def recoveries_of(session: Session, item_id: uuid.UUID) -> list[PayoutRecovery]:
    return list(session.scalars(
        select(PayoutRecovery).where(PayoutRecovery.payout_item_id == item_id).order_by(PayoutRecovery.id)
    ))
