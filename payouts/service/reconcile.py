"""Reconciliation: compare a batch's paid items with what the rail says happened.

Stripe: every transfer of the batch's transfer group (`payout-batch-{id}`); manual rail: the
lines of the batch's bank export. Findings (each a dict in `PayoutReconciliation.mismatches`):

- `missing_at_rail`: an item we recorded paid has no transfer / export line.
- `amount_differs`, `currency_differs`, `destination_differs`: the transfer is not what we froze.
- `reversed_at_rail`: the transfer was (partly) reversed at Stripe while our books say paid.
- `duplicate_transfer`: a second transfer for an item that already has one (a double payment).
- `unknown_transfer`: a transfer in the group that settles no paid item (e.g. for a failed item).

The rail is read outside any database transaction (a slow list never holds a lock).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.db import session_scope
from kernel.runtime import Runtime
from payouts.errors import BatchNotFound, RailMismatch
from payouts.models import ItemStatus, PayoutBatch, PayoutItem, PayoutReconciliation
from payouts.service import export


@dataclass(frozen=True, slots=True)
class RailRecord:
    reference: str  # transfer id or export reference
    item_id: str | None  # the payout item it names (Stripe metadata / export column)
    amount: int  # minor units
    amount_reversed: int
    currency: str
    destination: str | None


def fetch_records(runtime: Runtime, batch_id: uuid.UUID) -> tuple[str, list[RailRecord]]:
    """(rail, what the rail reports for the batch). No database transaction is open meanwhile."""
    with session_scope(runtime.sessions) as session:
        batch = session.get(PayoutBatch, batch_id)
        if batch is None:
            raise BatchNotFound(f"no payout batch {batch_id}")
        rail_name, group = batch.rail, batch.transfer_group
    if rail_name == "manual":
        lines = export.read(runtime.settings, batch_id) or []
        return rail_name, [
            RailRecord(line["reference"], line["payout_item_id"], int(line["amount_minor"]), 0, line["currency"],
                       line["bank_reference"])
            for line in lines
        ]
    if runtime.rail.name != rail_name:
        raise RailMismatch(f"payout batch {batch_id} went through {rail_name}; this process has {runtime.rail.name}")
    return rail_name, [
        RailRecord(t.id, t.metadata.get("payout_item_id"), t.amount, t.amount_reversed, t.currency, t.destination)
        for t in runtime.rail.list_transfers(transfer_group=group)
    ]


def compare(session: Session, batch_id: uuid.UUID, rail: str, records: list[RailRecord]) -> PayoutReconciliation:
    """Store and return the comparison of the batch's items with `records`."""
    # Columns, not objects: a batch may hold 100,000 items.
    items = session.execute(
        select(PayoutItem.id, PayoutItem.status, PayoutItem.amount, PayoutItem.currency, PayoutItem.destination,
               PayoutItem.rail_reference).where(PayoutItem.batch_id == batch_id).order_by(PayoutItem.id)
    ).all()
    by_reference = {item.rail_reference: item for item in items if item.rail_reference}
    by_id = {str(item.id): item for item in items}
    found: list[dict[str, Any]] = []

    def finding(kind: str, detail: str, item: Any = None, record: RailRecord | None = None,
                expected: object = None, actual: object = None) -> None:
        found.append({"kind": kind, "item_id": str(item.id) if item else (record.item_id if record else None),
                      "reference": record.reference if record else (item.rail_reference if item else None),
                      "expected": expected, "actual": actual, "detail": detail})

    seen: set[str] = set()
    for record in records:
        item = by_reference.get(record.reference)
        if item is None:
            named = by_id.get(record.item_id or "")
            if named is not None and named.rail_reference and named.rail_reference != record.reference:
                finding("duplicate_transfer", f"a second transfer for item {named.id}, which was settled by "
                        f"{named.rail_reference}", named, record, named.rail_reference, record.reference)
            else:
                status = named.status if named is not None else "not in this batch"
                finding("unknown_transfer", f"transfer {record.reference} settles no paid item "
                        f"(named item: {record.item_id}, {status})", named, record, None, record.amount)
            continue
        seen.add(record.reference)
        if item.status != ItemStatus.PAID:
            finding("unknown_transfer", f"transfer {record.reference} belongs to item {item.id}, which is "
                    f"{item.status}", item, record, item.status, "transferred")
            continue
        if record.amount != item.amount:
            finding("amount_differs", f"item {item.id}: we froze {item.amount}, the rail moved {record.amount}",
                    item, record, item.amount, record.amount)
        if record.currency.upper() != item.currency:
            finding("currency_differs", f"item {item.id}: {item.currency} vs {record.currency}",
                    item, record, item.currency, record.currency)
        if record.destination != item.destination:
            finding("destination_differs", f"item {item.id}: sent to {record.destination}, not {item.destination}",
                    item, record, item.destination, record.destination)
        if record.amount_reversed:
            finding("reversed_at_rail", f"item {item.id}: {record.amount_reversed} of the transfer was reversed",
                    item, record, 0, record.amount_reversed)
    paid = [item for item in items if item.status == ItemStatus.PAID]
    for item in paid:
        if item.rail_reference not in seen:
            finding("missing_at_rail", f"item {item.id} is paid with {item.rail_reference}, which the rail "
                    "does not list", item, None, item.amount, None)
    result = PayoutReconciliation(
        batch_id=batch_id, rail=rail, status="ok" if not found else "mismatches", paid_items=len(paid),
        rail_records=len(records), mismatches=found,
    )
    session.add(result)
    session.flush()
    return result


def reconcile(runtime: Runtime, batch_id: uuid.UUID) -> PayoutReconciliation:
    rail, records = fetch_records(runtime, batch_id)
    with session_scope(runtime.sessions) as session:
        return compare(session, batch_id, rail, records)


def latest(session: Session, batch_id: uuid.UUID) -> PayoutReconciliation | None:
    found: PayoutReconciliation | None = session.scalar(
        select(PayoutReconciliation).where(PayoutReconciliation.batch_id == batch_id)
        .order_by(PayoutReconciliation.ran_at.desc(), PayoutReconciliation.id.desc()).limit(1)
    )
    return found
